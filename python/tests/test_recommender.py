"""Tests of the Python package against NumPy brute force and files written by the Swift CLI.

Run by scripts/test.d/41-python after `pip install ./python`. The CLI (for model files) is
found at $RECOMMENDER_CLI or the repository's .build/release/recommender.
"""
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import recommender

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.environ.get("RECOMMENDER_CLI", os.path.join(REPO, ".build", "release", "recommender"))


def grid(rng, shape):
    """Values on a 1/8 grid in [-1, 1]: inner products and squared distances are exact in float32
    whatever the summation order, so results compare exactly — and ties are frequent."""
    return (rng.integers(-8, 9, size=shape) / 8).astype(np.float32)


def brute_force(items, queries, k, metric="inner_product", excluded=None, eligible=None):
    """Reference top-k in float64, ties broken by the lower id (np.lexsort on (id, -key))."""
    q, x = queries.astype(np.float64), items.astype(np.float64)
    if metric == "inner_product":
        scores = q @ x.T
        keys = scores
    elif metric == "cosine":
        norms = np.linalg.norm(x, axis=1)
        scores = (q @ x.T) / np.linalg.norm(q, axis=1)[:, None] / np.where(norms == 0, 1, norms)[None, :]
        scores[:, norms == 0] = 0
        keys = scores
    else:
        scores = (q * q).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2 * q @ x.T
        keys = -scores
    n = items.shape[0]
    ids = np.full((len(q), k), -1, dtype=np.int64)
    out = np.full((len(q), k), np.nan)
    for row in range(len(q)):
        allowed = np.ones(n, dtype=bool) if eligible is None else eligible.copy()
        if excluded is not None:
            allowed[np.asarray(excluded[row], dtype=np.int64)] = False
        candidates = np.flatnonzero(allowed)
        order = candidates[np.lexsort((candidates, -keys[row, candidates]))][:k]
        ids[row, : len(order)] = order
        out[row, : len(order)] = scores[row, order]
    return out, ids


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(12)


@pytest.mark.parametrize("metric", ["inner_product", "cosine", "squared_euclidean"])
@pytest.mark.parametrize("k", [1, 10, 100])
def test_search_equals_numpy_brute_force(rng, metric, k):
    items, queries = grid(rng, (3000, 24)), grid(rng, (50, 24))
    queries[:, 0] = np.where(queries[:, 0] == 0, 0.5, queries[:, 0])  # no zero query under cosine
    index = recommender.Index(items, metric=metric)
    scores, ids = index.search(queries, k)
    expected_scores, expected_ids = brute_force(items, queries, k, metric)
    assert scores.dtype == np.float32 and ids.dtype == np.int64 and ids.shape == (50, k)
    if metric == "cosine":
        np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
        # Each returned id's true cosine is its reported score (near-ties may swap in float32).
        q, x = queries.astype(np.float64), items.astype(np.float64)
        norms = np.linalg.norm(x, axis=1)
        true = (q @ x.T) / np.linalg.norm(q, axis=1)[:, None] / np.where(norms == 0, 1, norms)[None, :]
        np.testing.assert_allclose(np.take_along_axis(true, ids, 1), scores, atol=1e-5)
    else:
        np.testing.assert_array_equal(ids, expected_ids)
        np.testing.assert_array_equal(scores, expected_scores.astype(np.float32))


def test_random_floats_match_within_rounding(rng):
    items = rng.standard_normal((5000, 64)).astype(np.float32)
    queries = rng.standard_normal((300, 64)).astype(np.float32)
    scores, ids = recommender.Index(items).search(queries, 10)
    expected_scores, expected_ids = brute_force(items, queries, 10)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-4, atol=1e-4)
    assert (ids == expected_ids).mean() > 0.999  # float32 vs float64 may swap a near-tie


def test_no_copies_in_or_out(rng):
    items = grid(rng, (500, 8))
    index = recommender.Index(items)
    assert np.shares_memory(index.table.to_numpy(), items), "a float32 C-contiguous catalog must be borrowed, not copied"
    view = index.table.to_numpy()
    assert not view.flags.writeable
    # A non-contiguous or float64 input is converted once and still gives the right answer.
    scores, ids = index.search(grid(rng, (20, 16))[:, ::2].astype(np.float64), 5)
    assert ids.shape == (20, 5)


def test_one_query_gives_the_batch_row(rng):
    items, queries = grid(rng, (800, 12)), grid(rng, (5, 12))
    index = recommender.Index(items, "squared_euclidean")
    scores, ids = index.search(queries, 7)
    one_scores, one_ids = index.search(queries[3], 7)
    assert one_ids.shape == (7,)
    np.testing.assert_array_equal(one_ids, ids[3])
    np.testing.assert_array_equal(one_scores, scores[3])


def test_exclusions_and_filters(rng):
    items, queries = grid(rng, (400, 10)), grid(rng, (6, 10))
    index = recommender.Index(items)
    _, top = index.search(queries, 5)
    excluded = [list(row) + [row[0]] for row in top]  # each query's top 5, one twice
    mask = np.arange(400) % 2 == 0
    denied = np.arange(0, 400, 3)
    scores, ids = index.search(queries, 12, exclude=excluded, allowed=mask, denied=denied)
    eligible = mask.copy()
    eligible[denied] = False
    expected_scores, expected_ids = brute_force(items, queries, 12, excluded=excluded, eligible=eligible)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(scores, expected_scores.astype(np.float32))
    for row, query_ids in enumerate(ids):
        assert not set(query_ids) & set(excluded[row])
        assert all(i % 2 == 0 and i % 3 != 0 for i in query_ids)
    # Allowed as ids rather than a mask; fewer eligible than k pads with -1 / NaN.
    scores, ids = index.search(queries[:1], 5, allowed=[7, 300, 11])
    assert sorted(ids[0, :3]) == [7, 11, 300] and list(ids[0, 3:]) == [-1, -1] and np.isnan(scores[0, 3:]).all()


def test_exclusions_from_a_csr_matrix(rng):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    items, queries = grid(rng, (300, 6)), grid(rng, (4, 6))
    seen = scipy_sparse.random(4, 300, density=0.1, format="csr", random_state=3)
    scores, ids = recommender.Index(items).search(queries, 8, exclude=seen)
    lists = [seen.indices[seen.indptr[r]:seen.indptr[r + 1]] for r in range(4)]
    np.testing.assert_array_equal(ids, brute_force(items, queries, 8, excluded=lists)[1])


def test_errors_carry_the_library_message(rng, tmp_path):
    index = recommender.Index(grid(rng, (50, 4)), "cosine")
    with pytest.raises(recommender.InvalidArgumentError, match="k must be at least 1, got 0"):
        index.search(np.ones((1, 4), np.float32), 0)
    with pytest.raises(recommender.DimensionMismatchError, match="the queries have 3 dimensions, the catalog 4"):
        index.search(np.ones((2, 3), np.float32), 5)
    with pytest.raises(recommender.InvalidArgumentError, match="zero vector"):
        index.search(np.zeros((1, 4), np.float32), 5)
    with pytest.raises(recommender.InvalidArgumentError, match="query 1 has a NaN"):
        index.search(np.array([[1, 0, 0, 0], [0, np.nan, 0, 0]], np.float32), 5)
    with pytest.raises(recommender.InvalidArgumentError, match="exclusion_ids\\[0\\] = 99"):
        index.search(np.ones((1, 4), np.float32), 5, exclude=[[99]])
    with pytest.raises(recommender.InvalidArgumentError, match="outside the catalog"):
        index.search(np.ones((1, 4), np.float32), 5, denied=[50])
    with pytest.raises(recommender.InvalidArgumentError, match="item 1 has a NaN"):
        recommender.Index(np.array([[1, 2], [np.nan, 1]], np.float32))
    with pytest.raises(recommender.InvalidArgumentError, match="empty"):
        recommender.Index(np.zeros((0, 3), np.float32))
    with pytest.raises(recommender.LibraryIOError, match="missing.rkm"):
        recommender.Index(str(tmp_path / "missing.rkm"))
    garbage = tmp_path / "garbage.rkm"
    garbage.write_bytes(b"not a model file" * 10)
    with pytest.raises(recommender.FileFormatError, match="garbage.rkm"):
        recommender.FactorModel(garbage)
    with pytest.raises(recommender.RecommenderError) as error:
        index.search(np.ones((1, 4), np.float32), -2)
    assert error.value.status == 2 and "rec_index_search" in error.value.message


def test_concurrent_searches_equal_sequential(rng):
    items, queries = grid(rng, (20000, 32)), grid(rng, (64, 32))
    index = recommender.Index(items, "inner_product")
    batches = [queries[i:i + 16] for i in range(0, 64, 16)] * 8
    sequential = [index.search(batch, 10, threads=1) for batch in batches]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda batch: index.search(batch, 10, threads=1), batches))
        with_workers = list(pool.map(lambda batch: index.search(batch, 10, threads=2), batches))
    for (s, i), (cs, ci), (ws, wi) in zip(sequential, concurrent, with_workers):
        np.testing.assert_array_equal(ci, i)
        np.testing.assert_array_equal(cs, s)
        np.testing.assert_array_equal(wi, i)
        np.testing.assert_array_equal(ws, s)


def test_build_info():
    info = recommender.build_info()
    assert info["abi_version"] == 1
    assert info["simd_name"] in ("scalar", "AVX2+FMA", "AVX-512")
    assert "OpenBLAS" in info["blas"] and info["cores"] >= 1


# ---- Files written by the Swift CLI ----

needs_cli = pytest.mark.skipif(not os.path.exists(CLI), reason=f"the recommender CLI is not built ({CLI})")


@pytest.fixture(scope="module")
def als_model(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli")
    data = directory / "interactions.csv"
    rows = ["user,item,value"] + [f"u{u},i{(3 * u + j) % 120},{1 + (u + j) % 3}" for u in range(200) for j in range(6)]
    data.write_text("\n".join(rows) + "\n")
    path = directory / "als.rkm"
    subprocess.run([CLI, "train", "--format", "csv", "--data", str(data), "--value-column", "value", "--model", "als",
                    "--factors", "8", "--iterations", "15", "-o", str(path)], check=True, capture_output=True)
    return path


@needs_cli
def test_model_written_by_the_cli(als_model):
    model = recommender.FactorModel(als_model)
    assert (model.users, model.items, model.dimensions) == (200, 120, 8)
    assert not model.item_factors.flags.writeable
    assert model.item_id(model.item_index("i7")) == "i7"
    with pytest.raises(recommender.NotFoundError, match="no-such-user"):
        model.user_index("no-such-user")
    user = model.user_index("u5")
    liked = [model.item_index(f"i{(15 + j) % 120}") for j in range(6)]
    ids, scores = model.recommend(user, [liked], N=10)
    # The reference: the user's factors against every item factor, training items excluded.
    expected_scores, expected_ids = brute_force(np.array(model.item_factors), np.array(model.user_factors[[user]]), 10,
                                                excluded=[liked])
    np.testing.assert_array_equal(ids, expected_ids[0])
    np.testing.assert_allclose(scores, expected_scores[0], rtol=1e-5, atol=1e-5)
    assert not set(ids) & set(liked)
    # Unfiltered, only some items allowed, some denied.
    ids_all, _ = model.recommend(user, N=5, filter_already_liked_items=False)
    assert ids_all.tolist() == brute_force(np.array(model.item_factors), np.array(model.user_factors[[user]]), 5)[1][0].tolist()
    allowed = np.arange(0, 120, 4)
    ids_some, _ = model.recommend(user, N=5, filter_already_liked_items=False, items=allowed, filter_items=[0, 4])
    assert set(ids_some) <= set(allowed) - {0, 4}
    # A batch of users, and a user folded in from its history (implicit ALS: near its trained vector).
    batch_ids, _ = model.recommend(np.array([user, user]), [liked, liked], N=10)
    np.testing.assert_array_equal(batch_ids[1], ids)
    folded = model.fold_in(liked, [1 + (5 + j) % 3 for j in range(6)])
    trained = model.user_factors[user]
    assert folded @ trained / np.linalg.norm(folded) / np.linalg.norm(trained) > 0.95
    with pytest.raises(recommender.InvalidArgumentError, match="user_items is needed"):
        model.recommend(user, N=3)


@needs_cli
def test_catalog_and_text_index_written_by_the_cli(tmp_path, rng):
    catalog = tmp_path / "catalog.rkm"
    subprocess.run([CLI, "demo", "--items", "2000", "--dimensions", "16", "--users", "5", "--catalog-path", str(catalog)],
                   check=True, capture_output=True)
    index = recommender.Index(str(catalog), "cosine")
    items = index.table.to_numpy()
    assert items.shape == (2000, 16)
    queries = items[[3, 50, 999]]
    scores, ids = index.search(queries, 5)
    assert ids[:, 0].tolist() == [3, 50, 999]  # an item is its own nearest under cosine
    np.testing.assert_allclose(scores, brute_force(items, queries, 5, "cosine")[0], atol=1e-5)

    documents = tmp_path / "documents.csv"
    documents.write_text("id,title,text\n"
                         "d1,Cooking,a book of recipes for bread and cakes baked at home\n"
                         "d2,Wizards,a young wizard goes to a school of magic and learns spells\n"
                         "d3,Football,the team wins the league after a long season of matches\n")
    text_path = tmp_path / "text.rkm"
    subprocess.run([CLI, "text", "index", "--documents", str(documents), "--id-column", "id", "--text-columns", "text",
                    "--label-column", "title", "-o", str(text_path)], check=True, capture_output=True)
    text = recommender.TextIndex(text_path)
    assert len(text) == 3
    best = text.query("school of magic", k=2)[0]
    assert (best.id, best.label) == ("d2", "Wizards") and 0 < best.score <= 1.0001
    assert all(match.id != "d2" for match in text.similar("d2", k=3))
    with pytest.raises(recommender.NotFoundError, match="no term of the vocabulary"):
        text.query("zzzz", k=2)
    with pytest.raises(recommender.NotFoundError, match="lsi"):
        text.query("magic", k=2, using="lsi")
