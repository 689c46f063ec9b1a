#!/usr/bin/env python3
"""The Python package's figures (issue 12), each against a reference timed in the same run:

1. Python call overhead: `Index.search` from Python (ctypes, NumPy in and out) against the same
   fused top-K search from Swift (`recommender-bench kernel`, run as a subprocess here), for one
   query (p50 over --single-queries) and for a batch of 1,024 (p50 over --repeats), on an
   --items × --dimensions catalog, top --k, --threads threads.
2. Queries/s against faiss `IndexFlatIP` (faiss-cpu in a throwaway virtualenv, --faiss-python)
   on 1,024 queries × --items × --dimensions, top --k, the same float32 data, OpenMP threads = --threads.

Usage (after scripts/build-c-library and `swift build -c release --product recommender-bench`):

    python3 -m venv /tmp/faiss-venv && /tmp/faiss-venv/bin/pip install faiss-cpu==1.15.1 numpy==2.4.6
    PYTHONPATH=python python3 Benchmarks/python_bench.py --threads 2
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(REPO, "python"))
import recommender  # noqa: E402

FAISS_SCRIPT = r"""
import json, sys, time, numpy as np, faiss
items, queries, k, threads, repeats = np.load(sys.argv[1]), np.load(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
faiss.omp_set_num_threads(threads)
index = faiss.IndexFlatIP(items.shape[1]); index.add(items)
index.search(queries, k)
times = []
for _ in range(repeats):
    start = time.perf_counter(); D, I = index.search(queries, k); times.append(time.perf_counter() - start)
np.save(sys.argv[6], I)
print(json.dumps({"p50": float(np.median(times)), "version": faiss.__version__}))
"""


def p50(function, repeats):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def swift_reference(bench, items, dimensions, k, threads, repeats, single_queries):
    """p50 seconds of the fused search from Swift for 1 query and for 1,024 queries."""
    output = subprocess.run([bench, "kernel", "--shapes", f"1x{items}x{dimensions}", f"1024x{items}x{dimensions}",
                             "--threads", str(threads), "-k", str(k), "--repeats", str(repeats),
                             "--single-queries", str(single_queries)], check=True, capture_output=True, text=True).stdout
    found = {}  # (queries, path) -> p50 seconds; rows: shape, T, path…, p50, p99, queries/s, GFLOP/s, ratio
    for line in output.splitlines():
        tokens = line.split()
        if (len(tokens) >= 8 and re.fullmatch(r"\d+x\d+x\d+", tokens[0]) and tokens[1].isdigit() and tokens[2] == "top-K"
                and re.fullmatch(r"[\d.]+", tokens[-5])):
            found[(int(tokens[0].split("x")[0]), " ".join(tokens[2:-5]))] = float(tokens[-5]) / 1000
    return found, output


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dimensions", type=int, default=64)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--single-queries", type=int, default=200)
    parser.add_argument("--small-items", type=int, default=1000, help="a small catalog, where the fixed per-call cost shows")
    parser.add_argument("--bench", default=os.path.join(REPO, ".build", "release", "recommender-bench"))
    parser.add_argument("--faiss-python", default="/tmp/faiss-venv/bin/python")
    arguments = parser.parse_args()
    n, d, k, threads = arguments.items, arguments.dimensions, arguments.k, arguments.threads

    info = recommender.build_info()
    print(f"librecommender {info['version']} ({info['simd_name']}), {n:,} items × {d}, top {k}, threads {threads}")
    rng = np.random.default_rng(3)
    items = rng.standard_normal((n, d), dtype=np.float32)
    queries = rng.standard_normal((1024, d), dtype=np.float32)
    index = recommender.Index(items, "inner_product")

    # 1. Python over Swift, on the full catalog and on a small one (where a fixed cost shows).
    for size, catalog in ((n, index), (arguments.small_items, recommender.Index(items[: arguments.small_items]))):
        singles = rng.standard_normal((arguments.single_queries, d), dtype=np.float32)
        one_times = []
        for q in singles:
            start = time.perf_counter()
            catalog.search(q, k, threads=threads)
            one_times.append(time.perf_counter() - start)
        python_one = float(np.median(one_times))
        python_batch = p50(lambda: catalog.search(queries, k, threads=threads), arguments.repeats)
        if not os.path.exists(arguments.bench):
            print(f"(no {arguments.bench}: build it with `swift build -c release --product recommender-bench`)")
            print(f"  Python p50, {size:,} items: 1 query {python_one * 1e3:.3f} ms, 1,024 queries {python_batch * 1e3:.1f} ms")
            continue
        found, _ = swift_reference(arguments.bench, size, d, k, threads, arguments.repeats, arguments.single_queries)
        # What `.automatic` (the library's choice) runs: SIMD for one query and small batches, OpenBLAS otherwise.
        swift_one = next(seconds for (count, path), seconds in found.items() if count == 1 and "SIMD" in path)
        batch_path = "top-K OpenBLAS" if 1024 * size * d >= 1 << 22 else next(
            path for (count, path) in found if count == 1024 and "SIMD" in path)
        swift_batch = found[(1024, batch_path)]
        print(f"\nPython call over the same search from Swift, {size:,} items (p50):")
        print(f"  1 query:       Python {python_one * 1e3:9.3f} ms   Swift {swift_one * 1e3:9.3f} ms   "
              f"overhead {(python_one - swift_one) * 1e6:+9.1f} µs ({python_one / swift_one:.3f}×)")
        print(f"  1,024 queries: Python {python_batch * 1e3:9.3f} ms   Swift {swift_batch * 1e3:9.3f} ms   "
              f"overhead {(python_batch - swift_batch) * 1e6:+9.1f} µs ({python_batch / swift_batch:.3f}×)")

    # 2. Against faiss IndexFlatIP.
    if os.path.exists(arguments.faiss_python):
        with tempfile.TemporaryDirectory() as directory:
            np.save(os.path.join(directory, "items.npy"), items)
            np.save(os.path.join(directory, "queries.npy"), queries)
            script = os.path.join(directory, "faiss_peer.py")
            with open(script, "w") as file:
                file.write(FAISS_SCRIPT)
            peer = json.loads(subprocess.run(
                [arguments.faiss_python, script, os.path.join(directory, "items.npy"), os.path.join(directory, "queries.npy"),
                 str(k), str(threads), str(arguments.repeats), os.path.join(directory, "faiss_ids.npy")],
                check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            faiss_ids = np.load(os.path.join(directory, "faiss_ids.npy"))
        ours = p50(lambda: index.search(queries, k, threads=threads), arguments.repeats)
        _, our_ids = index.search(queries, k, threads=threads)
        agreement = np.mean([len(set(a) & set(b)) / k for a, b in zip(our_ids, faiss_ids)])
        print(f"\n1,024 × {n:,} × {d}, top {k}, {threads} threads (p50 of {arguments.repeats}):")
        print(f"  recommender (Python) {1024 / ours:10,.0f} queries/s   faiss {peer['version']} IndexFlatIP "
              f"{1024 / peer['p50']:10,.0f} queries/s   ratio {peer['p50'] / ours:.2f}× (faiss time / ours); "
              f"top-{k} sets agree {agreement:.4f}")
    else:
        print(f"(no {arguments.faiss_python}: see the usage for the faiss virtualenv)")


if __name__ == "__main__":
    main()
