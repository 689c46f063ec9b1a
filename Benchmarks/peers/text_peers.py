"""The peers of `recommender-bench text`: scikit-learn and gensim on the same files, same run.

Called by `recommender-bench text` (see README) with the scratch virtualenv's python:
    text_peers.py --tmdb FILE --synthetic FILE --sessions FILE --threads T [--tfidf]
Prints one JSON object of timings (seconds) and sizes on stdout.
"""
import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--tmdb", required=True)
parser.add_argument("--synthetic", required=True)
parser.add_argument("--sessions", required=True)
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--tfidf", action="store_true", help="also time TF-IDF fit and top-K (single-threaded)")
parser.add_argument("--lsi-topics", type=int, default=100)
parser.add_argument("--queries", type=int, default=1000)
args = parser.parse_args()
# BLAS threads must be fixed before numpy loads.
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = str(args.threads)

import csv  # noqa: E402
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import gensim  # noqa: E402
from gensim.models import LsiModel, Word2Vec  # noqa: E402
from gensim.matutils import Sparse2Corpus  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402

csv.field_size_limit(sys.maxsize)
with open(args.tmdb, newline="", encoding="utf-8") as f:
    tmdb = [row["overview"] for row in csv.DictReader(f)]
with open(args.synthetic, encoding="utf-8") as f:
    synthetic = f.read().split("\n")[:-1]
with open(args.sessions, encoding="utf-8") as f:
    sessions = [line.split() for line in f.read().split("\n")[:-1]]

result = {"sklearn": sklearn.__version__, "gensim": gensim.__version__, "threads": args.threads}
original = dict(stop_words="english", ngram_range=(1, 2), sublinear_tf=True)


def timed(function):
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def top_k_queries(matrix, count, k=10):
    """More like this for `count` documents, one query at a time: X·xᵀ then argpartition."""
    rows = np.linspace(0, matrix.shape[0] - 1, count).astype(int)
    start = time.perf_counter()
    for r in rows:
        scores = (matrix @ matrix[r].T).toarray().ravel()
        scores[r] = -1
        top = np.argpartition(-scores, k)[:k]
        top[np.argsort(-scores[top])]
    return (time.perf_counter() - start) / count


if args.tfidf:
    result["tmdb_tfidf_fit"], tmdb_matrix = timed(lambda: TfidfVectorizer(**original).fit_transform(tmdb))
    result["tmdb_features"] = tmdb_matrix.shape[1]
    result["synthetic_tfidf_fit"], synthetic_matrix = timed(lambda: TfidfVectorizer(**original).fit_transform(synthetic))
    result["synthetic_features"] = synthetic_matrix.shape[1]
    result["tmdb_query_seconds"] = top_k_queries(tmdb_matrix, args.queries)
    result["synthetic_query_seconds"] = top_k_queries(synthetic_matrix, args.queries)

# LSI: gensim's LsiModel on the TF-IDF matrices (documents as rows), 100 topics.
for name, texts, options in (("tmdb_bigram", tmdb, original),
                             ("synthetic_unigram", synthetic, dict(stop_words="english", sublinear_tf=True))):
    matrix = TfidfVectorizer(**options).fit_transform(texts)
    corpus = Sparse2Corpus(matrix, documents_columns=False)
    vocabulary = {i: str(i) for i in range(matrix.shape[1])}
    result[f"lsi_{name}"], _ = timed(lambda: LsiModel(corpus, num_topics=args.lsi_topics, id2word=vocabulary))

# word2vec skip-gram on synthetic sessions: 64 dims, window 5, 5 negatives, 5 epochs, min_count 1.
words = sum(len(s) for s in sessions)
seconds, _ = timed(lambda: Word2Vec(sessions, sg=1, vector_size=64, window=5, negative=5, min_count=1, epochs=5,
                                    workers=args.threads, seed=1))
result["word2vec_seconds"] = seconds
result["word2vec_words_per_second"] = words * 5 / seconds
print(json.dumps(result))
