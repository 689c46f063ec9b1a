"""The Spark batch-scoring job on local[2] against `recommender score` on the same data.

Generated data: a catalog of ITEMS × 64 written by `recommender demo --catalog-path` (a model
file, shipped to the executors with SparkFiles) and USERS × 64 user factors (a Parquet table for
Spark, the same values as .npy for the CLI). Sizes come from $SPARK_TEST_USERS / $SPARK_TEST_ITEMS
(default 200,000 × 100,000). Prints users/s for both, timed in the same run.
"""
import os
import subprocess
import time

import numpy as np
import pytest

pyspark = pytest.importorskip("pyspark")
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.environ.get("RECOMMENDER_CLI", os.path.join(REPO, ".build", "release", "recommender"))
USERS = int(os.environ.get("SPARK_TEST_USERS", "200000"))
ITEMS = int(os.environ.get("SPARK_TEST_ITEMS", "100000"))
DIMENSIONS, K = 64, 10


def test_spark_top_k_equals_the_cli(tmp_path):
    from pyspark.sql import SparkSession

    from recommender.spark import score_users

    catalog = tmp_path / "items.rkm"
    subprocess.run([CLI, "demo", "--items", str(ITEMS), "--dimensions", str(DIMENSIONS), "--users", "1",
                    "--catalog-path", str(catalog)], check=True, capture_output=True)
    rng = np.random.default_rng(7)
    factors = rng.standard_normal((USERS, DIMENSIONS)).astype(np.float32)
    user_ids = np.arange(USERS, dtype=np.int64) * 3 + 1000  # ids that are not row numbers
    np.save(tmp_path / "users.npy", factors)
    table = pa.table({"user": user_ids,
                      "factors": pa.ListArray.from_arrays(np.arange(0, USERS * DIMENSIONS + 1, DIMENSIONS, dtype=np.int32),
                                                          factors.ravel())})
    pq.write_table(table, tmp_path / "users.parquet", row_group_size=50_000)

    start = time.perf_counter()
    subprocess.run([CLI, "score", "--items", str(catalog), "--queries", str(tmp_path / "users.npy"), "-k", str(K),
                    "-o", str(tmp_path / "cli.csv")], check=True, capture_output=True)
    cli_seconds = time.perf_counter() - start

    spark = (SparkSession.builder.master("local[2]").appName("recommender-spark-test")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false").config("spark.sql.shuffle.partitions", "2")
             .config("spark.driver.memory", "2g").getOrCreate())
    try:
        start = time.perf_counter()
        score_users(spark, str(tmp_path / "users.parquet"), str(catalog), K, threads=1) \
            .write.mode("overwrite").parquet(str(tmp_path / "spark-out"))
        spark_seconds = time.perf_counter() - start
    finally:
        spark.stop()
    print(f"\n{USERS} users × {ITEMS} items × {DIMENSIONS}, top {K}: CLI (2 threads) {cli_seconds:.1f} s, "
          f"{USERS / cli_seconds:,.0f} users/s; Spark local[2] {spark_seconds:.1f} s, {USERS / spark_seconds:,.0f} users/s "
          f"(ratio Spark/CLI time {spark_seconds / cli_seconds:.2f})")

    # The CLI's rows are (query row, rank, item, score); Spark's (user id, rank, item, score).
    cli = np.loadtxt(tmp_path / "cli.csv", delimiter=",", skiprows=1, dtype=np.float64)
    assert cli.shape == (USERS * K, 4)
    cli = cli[np.lexsort((cli[:, 1], cli[:, 0]))]
    out = pq.read_table(tmp_path / "spark-out").to_pandas()
    assert len(out) == USERS * K
    out = out.sort_values(["user", "rank"]).reset_index(drop=True)
    np.testing.assert_array_equal(out["user"].to_numpy(), np.repeat(user_ids, K))
    np.testing.assert_array_equal(out["rank"].to_numpy(), np.tile(np.arange(1, K + 1), USERS))
    cli_items = cli[:, 2].astype(np.int64).reshape(USERS, K)
    cli_scores = cli[:, 3].reshape(USERS, K)
    items = out["item"].to_numpy().reshape(USERS, K)
    scores = out["score"].to_numpy().astype(np.float64).reshape(USERS, K)
    # Scores: the CLI prints float32 in shortest round-trip form, so they compare exactly when the
    # same kernel produced them; allow float32 rounding of a different summation order anyway.
    np.testing.assert_allclose(scores, cli_scores, rtol=1e-5, atol=1e-5)
    differing = items != cli_items
    # An id may differ only inside a near-tie (two scores within rounding), where order is not
    # defined by the arithmetic.
    if differing.any():
        rows, ranks = np.nonzero(differing)
        gaps = np.abs(np.diff(cli_scores, axis=1))
        near_tie = np.zeros_like(differing)
        near_tie[:, :-1] |= gaps < 1e-4
        near_tie[:, 1:] |= gaps < 1e-4
        assert near_tie[rows, ranks].all(), f"{(~near_tie[rows, ranks]).sum()} ids differ outside near-ties"
    print(f"identical ids: {1 - differing.mean():.6f} of {USERS * K}; identical scores: "
          f"{(scores.astype(np.float32) == cli_scores.astype(np.float32)).mean():.6f}")
