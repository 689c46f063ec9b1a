#!/usr/bin/env python3
"""EASE (Steck 2019) fitted the usual NumPy way, the reference `Benchmarks/movielens.sh` times ours against.

    python3 Benchmarks/peers/ease_numpy.py TRAIN.csv [--lambda 500] [--repeats 3] [--check]

TRAIN.csv is `user,item,value` (what `recommender evaluate --export-split DIR` writes). Prints the
best of --repeats fit times (X from CSR: G = XᵀX densified, G += λI, P = inv(G), B = P / −diag(P),
diag(B) = 0) as `numpy_ease_fit_seconds S`, with NumPy on every core OpenBLAS sees.

--check also fits B in single precision the way the Swift model does (Cholesky: LAPACK spotrf +
spotri through SciPy) and prints the largest |B32 − B64| relative to the largest |B64|: whether
float32 loses accuracy for this λ.
"""
import argparse
import csv
import time

import numpy as np
import scipy.sparse as sp


def load(path):
    users, items = {}, {}
    rows, columns, values = [], [], []
    with open(path) as handle:
        reader = csv.reader(handle)
        next(reader)
        for user, item, value in reader:
            rows.append(users.setdefault(user, len(users)))
            columns.append(items.setdefault(item, len(items)))
            values.append(float(value))
    return sp.csr_matrix((np.array(values, dtype=np.float32), (rows, columns)), shape=(len(users), len(items)))


def fit64(x, lam):
    g = (x.T @ x).toarray().astype(np.float64)
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = p / (-np.diag(p))
    b[np.diag_indices_from(b)] = 0
    return b


def fit32_cholesky(x, lam):
    from scipy.linalg import lapack
    g = (x.T @ x).toarray().astype(np.float32)
    g[np.diag_indices_from(g)] += lam
    c, info = lapack.spotrf(g, lower=False)
    assert info == 0, info
    p, info = lapack.spotri(c, lower=False)
    assert info == 0, info
    p = np.triu(p) + np.triu(p, 1).T
    b = p / (-np.diag(p))
    b[np.diag_indices_from(b)] = 0
    return b


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("train")
    parser.add_argument("--lambda", dest="lam", type=float, default=500.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    x = load(args.train)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        b = fit64(x, args.lam)
        times.append(time.perf_counter() - start)
    print(f"numpy_ease_fit_seconds {min(times):.4f}  ({x.shape[0]} users, {x.shape[1]} items, {x.nnz} entries)")
    if args.check:
        b32 = fit32_cholesky(x, args.lam)
        print(f"float32_cholesky_relative_error {np.abs(b32 - b).max() / np.abs(b).max():.2e}")


if __name__ == "__main__":
    main()
