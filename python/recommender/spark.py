"""Batch scoring on Apache Spark: every user of a table against a catalog, top K per user, as
Parquet, through librecommender.so inside ``mapInArrow``.

The catalog is a file this engine reads — a table saved as a model file (``EmbeddingTable.save``,
``recommender demo --catalog-path``), a factor model (``recommender train -o``; its item
factors are used) or a ``.npy`` — shipped to every executor with ``SparkContext.addFile`` (or
read from a path every executor sees, ``shipped=False``) and memory-mapped there: executors on
one machine share its pages. Each Python worker opens it once and keeps the index for the
worker's life (``spark.python.worker.reuse``, on by default).

The users table has a user id column (``user``, integer) and a factor column (``factors``,
``array<float>`` of the catalog's dimensions). The output has one row per (user, rank):
``user long, rank int, item long, score float``, best first (rank 1), ties to the lower item.

Command line (``spark-submit`` or plain ``python``, with pyspark installed)::

    python -m recommender.spark --users users.parquet --catalog items.rkm -k 10 --output top10.parquet \\
        --master 'local[2]'

Threads: Spark runs one task per executor core, each task in its own Python worker; the library
then uses ``threads`` (default 1) threads per search. Keep executor cores × threads at or below
the cores the executor really has.
"""
import argparse
import os
import time

import numpy as np

_CACHE = {}


def _open_catalog(path):
    """The index over the catalog at ``path``, opened once per Python worker."""
    index = _CACHE.get(path)
    if index is None:
        import recommender
        try:
            index = recommender.FactorModel(path).index
        except recommender.FileFormatError:
            index = recommender.Index(path, "inner_product")
        _CACHE[path] = index
    return index


def score_batches(batches, catalog_path, k, threads=1, user_column="user", factor_column="factors", shipped=True):
    """The ``mapInArrow`` function: scores each Arrow record batch of users and yields their top
    ``k`` as (user, rank, item, score) record batches. Factors are read from the Arrow buffers
    without a copy when the column is float32 without nulls."""
    import pyarrow as pa

    if shipped:
        from pyspark import SparkFiles
        catalog_path = SparkFiles.get(os.path.basename(catalog_path))
    index = _open_catalog(catalog_path)
    ranks = np.arange(1, k + 1, dtype=np.int32)
    for batch in batches:
        n = batch.num_rows
        if n == 0:
            continue
        users = batch.column(user_column).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        factors = batch.column(factor_column)
        if factors.null_count:
            raise ValueError(f"{factor_column} has {factors.null_count} null rows")
        lengths = factors.value_lengths().to_numpy(zero_copy_only=False)
        if not (lengths == index.d).all():
            bad = int(np.flatnonzero(lengths != index.d)[0])
            raise ValueError(f"user {users[bad]} has {lengths[bad]} factors; the catalog has {index.d} dimensions")
        values = factors.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        scores, ids = index.search(values.reshape(n, index.d), k, threads=threads)
        found = ids.ravel() >= 0
        yield pa.RecordBatch.from_arrays(
            [pa.array(np.repeat(users, k)[found]), pa.array(np.tile(ranks, n)[found]), pa.array(ids.ravel()[found]),
             pa.array(scores.ravel()[found])],
            names=["user", "rank", "item", "score"])


OUTPUT_SCHEMA = "user long, rank int, item long, score float"


def score_users(spark, users, catalog_path, k, threads=1, shipped=True, user_column="user", factor_column="factors"):
    """A DataFrame of every user's top ``k`` items: ``users`` is a DataFrame (or a Parquet path)
    with ``user_column`` and ``factor_column``; ``catalog_path`` is shipped to the executors with
    ``addFile`` unless ``shipped`` is False (then it must be readable at that path everywhere)."""
    if isinstance(users, str):
        users = spark.read.parquet(users)
    if shipped:
        spark.sparkContext.addFile(os.path.abspath(catalog_path))
    path, size = catalog_path if not shipped else os.path.basename(catalog_path), int(k)

    def score(batches):
        return score_batches(batches, path, size, threads, user_column, factor_column, shipped)

    return users.select(user_column, factor_column).mapInArrow(score, OUTPUT_SCHEMA)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Top-K items for every user of a Parquet table, with Spark.")
    parser.add_argument("--users", required=True, help="Parquet table with the user and factor columns")
    parser.add_argument("--catalog", required=True, help="catalog: a table or factor model file, or a .npy")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--output", required=True, help="Parquet directory to write")
    parser.add_argument("--master", default=None, help="e.g. local[2]; default: spark-submit's")
    parser.add_argument("--threads", type=int, default=1, help="library threads per task (default 1)")
    parser.add_argument("--shared-path", action="store_true", help="the catalog path is readable on every executor: do not ship it")
    parser.add_argument("--user-column", default="user")
    parser.add_argument("--factor-column", default="factors")
    arguments = parser.parse_args(argv)

    from pyspark.sql import SparkSession
    builder = SparkSession.builder.appName("recommender-score-users")
    if arguments.master:
        builder = builder.master(arguments.master)
    spark = builder.getOrCreate()
    start = time.perf_counter()
    top = score_users(spark, arguments.users, arguments.catalog, arguments.k, arguments.threads,
                      not arguments.shared_path, arguments.user_column, arguments.factor_column)
    top.write.mode("overwrite").parquet(arguments.output)
    elapsed = time.perf_counter() - start
    users = spark.read.parquet(arguments.users).count()
    print(f"scored {users} users in {elapsed:.2f} s ({users / elapsed:,.0f} users/s) -> {arguments.output}")
    spark.stop()


if __name__ == "__main__":
    main()
