"""Trains benfred/implicit's ALS and BPR on a train/test split exported by
`recommender evaluate --export-split DIR` and prints the same metrics, defined as in
RecModels' Metrics.swift (precision = hits / K; MAP normalized by min(K, |R|); binary NDCG),
with each user's training items excluded, plus seconds per ALS iteration.

Usage: python implicit_als.py DIR [--model als|bpr|cosine] [--factors 64] [--iterations 15]
       [--regularization 0.01] [--confidence-alpha 1] [--threads 1] [--neighbours 20]
Without DIR/test-N.csv it only trains and times. The last line printed is a JSON object of the
figures, for `recommender-bench train`.
implicit scales confidence as C = alpha * r; this engine uses C = 1 + alpha * r. For binary data
the same objective needs implicit's alpha = 1 + ours, which this script passes.
"""
import argparse, csv, math, os, sys, time

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before numpy loads OpenBLAS, as implicit asks
import numpy as np
import scipy.sparse as sp

p = argparse.ArgumentParser()
p.add_argument("directory")
p.add_argument("--fold", type=int, default=1)
p.add_argument("--factors", type=int, default=64)
p.add_argument("--iterations", type=int, default=15)
p.add_argument("--regularization", type=float, default=0.01)
p.add_argument("--confidence-alpha", type=float, default=1.0, help="this engine's alpha (C = 1 + alpha r)")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--model", choices=["als", "bpr", "cosine"], default="als")
p.add_argument("--neighbours", type=int, default=20)
p.add_argument("-k", type=int, default=10)
a = p.parse_args()
from implicit.als import AlternatingLeastSquares
from implicit.bpr import BayesianPersonalizedRanking
from implicit.nearest_neighbours import CosineRecommender
import json

def read(path, users, items):
    rows, cols, vals = [], [], []
    with open(path) as f:
        for r in csv.DictReader(f):
            rows.append(users.setdefault(r["user"], len(users)))
            cols.append(items.setdefault(r["item"], len(items)))
            vals.append(float(r["value"]))
    return rows, cols, vals

users, items = {}, {}
train = read(f"{a.directory}/train-{a.fold}.csv", users, items)
test_path = f"{a.directory}/test-{a.fold}.csv"
test = read(test_path, users, items) if os.path.exists(test_path) else ([], [], [])
shape = (len(users), len(items))
user_items = sp.csr_matrix((train[2], (train[0], train[1])), shape=shape, dtype=np.float32)
relevant = {}
for u, i in zip(test[0], test[1]):
    relevant.setdefault(u, set()).add(i)

if a.model == "bpr":
    model = BayesianPersonalizedRanking(factors=a.factors, iterations=a.iterations, num_threads=a.threads, random_state=1)
elif a.model == "cosine":
    model = CosineRecommender(K=a.neighbours, num_threads=a.threads)
    a.iterations = 1
else:
    model = AlternatingLeastSquares(factors=a.factors, iterations=a.iterations, regularization=a.regularization,
                                    alpha=1.0 + a.confidence_alpha, num_threads=a.threads, random_state=1,
                                    calculate_training_loss=False)
start = time.perf_counter()
model.fit(user_items, show_progress=False)
seconds = time.perf_counter() - start

figures = {"seconds": seconds, "seconds_per_iteration": seconds / a.iterations}
if not relevant:
    print(json.dumps(figures))
    sys.exit(0)
test_users = np.array(sorted(relevant))
ids, _ = model.recommend(test_users, user_items[test_users], N=a.k, filter_already_liked_items=True)
k = a.k
precision = recall = ap = ndcg = hit = 0.0
seen = set()
for row, u in enumerate(test_users):
    truth, hits, prec_sum, dcg = relevant[u], 0, 0.0, 0.0
    for pos, item in enumerate(ids[row][:k]):
        seen.add(int(item))
        if item in truth:
            hits += 1
            prec_sum += hits / (pos + 1)
            dcg += 1 / math.log2(pos + 2)
    idcg = sum(1 / math.log2(j + 2) for j in range(min(k, len(truth))))
    precision += hits / k; recall += hits / len(truth); hit += hits > 0
    ap += prec_sum / min(k, len(truth)); ndcg += dcg / idcg
n = len(test_users)
name = {"als": "implicit ALS", "bpr": "implicit BPR", "cosine": "implicit item-kNN (cosine)"}[a.model]
print(f"{name} {a.factors} factors, T={a.threads}: train {seconds:.3f} s ({seconds / a.iterations:.4f} s/iteration)  "
      f"P@{k} {precision / n:.4f}  R@{k} {recall / n:.4f}  MAP@{k} {ap / n:.4f}  NDCG@{k} {ndcg / n:.4f}  "
      f"HR@{k} {hit / n:.4f}  coverage {len(seen) / shape[1]:.4f}")
figures.update({"precision": precision / n, "ndcg": ndcg / n, "map": ap / n})
print(json.dumps(figures))
