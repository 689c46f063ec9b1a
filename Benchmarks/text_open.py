#!/usr/bin/env python3
"""Time `recommender text query` and `text similar` processes on one index with two builds,
alternating runs in the same session: the open cost (mapping the file, validating the vocabulary's
hash slots) dominates a one-shot process. Prints the median wall time of each and the ratio."""
import subprocess, sys, time, statistics
# usage: open-bench.py INDEX BEFORE_BINARY AFTER_BINARY [runs]
index, before, after = sys.argv[1:4]
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 15
commands = {
    "text query": ["text", "query", "--index", index, "-k", "5", "a boy wizard goes to a school of magic"],
    "text similar": ["text", "similar", "--index", index, "-k", "5", "155"],
}
for name, args in commands.items():
    times = {"before": [], "after": []}
    for _ in range(runs):
        for label, binary in (("before", before), ("after", after)):
            start = time.perf_counter()
            subprocess.run([binary] + args, check=True, stdout=subprocess.DEVNULL)
            times[label].append(time.perf_counter() - start)
    b, a = statistics.median(times["before"]), statistics.median(times["after"])
    print(f"{name}: process wall time, median of {runs}: before {b*1000:.0f} ms, after {a*1000:.0f} ms, ratio {b/a:.1f}x")
