"""recommender: exact top-K scoring, factor models and text indexes from librecommender.so.

A thin ctypes layer over the library's C ABI (include/recommender.h). NumPy arrays go in and
come out without copies: float32 C-contiguous inputs are read in place by the library, and
results are written by the library straight into the NumPy arrays returned.

>>> import numpy as np, recommender
>>> items = np.random.rand(100_000, 64).astype(np.float32)
>>> index = recommender.Index(items, metric="inner_product")     # like faiss.IndexFlatIP
>>> scores, ids = index.search(np.random.rand(8, 64).astype(np.float32), k=10)

Every search is exact; ties are broken by the lower item id. Errors raise :class:`RecommenderError`
(or a subclass) carrying the library's message. Objects are immutable and may be used from many
threads at once; the GIL is released during every library call.
"""
import ctypes
import os
from collections import namedtuple

import numpy as np

from . import _library
from ._library import lib

__all__ = [
    "RecommenderError", "InvalidArgumentError", "DimensionMismatchError", "FileFormatError", "NotFoundError",
    "build_info", "library_path", "Table", "Index", "FactorModel", "TextIndex", "TextMatch",
]

__version__ = "0.1.0"

#: Path of the loaded librecommender.so.
library_path = _library.path


# ---------------------------------------------------------------------------------------------
# Errors


class RecommenderError(Exception):
    """A call into librecommender.so failed. ``status`` is the rec_status code, ``message`` the
    library's message naming the problem (also ``str(error)``)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class InvalidArgumentError(RecommenderError, ValueError):
    """An argument out of range (k < 1, an id outside the catalog, a NaN value, ...), or NULL."""


class DimensionMismatchError(RecommenderError, ValueError):
    """Queries or vectors whose dimensions differ from the catalog's."""


class FileFormatError(RecommenderError, ValueError):
    """A file that is corrupt, truncated or of another kind."""


class NotFoundError(RecommenderError, LookupError):
    """An unknown id or document, a text with no known term, a missing representation."""


class LibraryIOError(RecommenderError, OSError):
    """A file that cannot be opened, read or mapped."""


_ERRORS = {1: InvalidArgumentError, 2: InvalidArgumentError, 3: DimensionMismatchError, 4: LibraryIOError,
           5: FileFormatError, 6: NotFoundError, 7: InvalidArgumentError}


def _check(status):
    if status != 0:
        message = lib.rec_last_error().decode("utf-8", "replace")
        raise _ERRORS.get(status, RecommenderError)(status, message)


if lib.rec_abi_version() != _library.ABI_VERSION:
    raise ImportError(f"{_library.path} has ABI version {lib.rec_abi_version()}, this package needs {_library.ABI_VERSION}")


def build_info():
    """What the library was built with and runs on: a dict with ``abi_version``, ``version``,
    ``simd_level`` (0 scalar, 1 AVX2+FMA, 2 AVX-512), ``simd_name``, ``blas`` (OpenBLAS's
    configuration) and ``cores`` (the default number of search threads)."""
    info = _library.BuildInfo()
    _check(lib.rec_get_build_info(ctypes.byref(info)))
    return {"abi_version": info.abi_version, "version": info.version.decode(), "simd_level": info.simd_level,
            "simd_name": info.simd_name.decode(), "blas": info.blas.decode(), "cores": info.cores,
            "library": _library.path}


def _pointer(array):
    return ctypes.c_void_p(array.ctypes.data) if array is not None and array.size else None


def _path(path):
    return os.fsencode(os.fspath(path))


class _Handle:
    """Owns one library handle and frees it once."""

    _free = None

    def __init__(self):
        self._handle = ctypes.c_void_p()

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value and self._free is not None:
            self._free(handle)
            self._handle = None


# ---------------------------------------------------------------------------------------------
# Tables


class Table(_Handle):
    """A dense float32 table, rows × dimensions, row-major: a catalog or a model's factors.

    Make one with :meth:`open` (a model file, memory-mapped, or a .npy file) or
    :meth:`from_array` (a NumPy array, borrowed without a copy).
    """

    _free = staticmethod(lib.rec_table_free)

    @classmethod
    def open(cls, path, section=None):
        """Opens ``path``: a model file written by this engine (the table saved under ``section``,
        default the section ``EmbeddingTable.save`` uses), mapped without a copy and with every
        checksum verified; or a NumPy ``.npy`` file (float32/float64, C order), read into memory."""
        table = cls()
        _check(lib.rec_table_open(_path(path), section.encode() if section else None, ctypes.byref(table._handle)))
        table._owner = None
        return table

    @classmethod
    def from_array(cls, array):
        """Wraps a 2-D array without copying it when it is float32 and C-contiguous (otherwise a
        float32 C-contiguous copy is made once). The table keeps a reference to the array, which
        must not be modified while the table or an index built on it is in use."""
        values = np.ascontiguousarray(array, dtype=np.float32)
        if values.ndim != 2:
            raise InvalidArgumentError(2, f"a table must be 2-D (rows × dimensions), got shape {values.shape}")
        table = cls()
        _check(lib.rec_table_wrap(_pointer(values), values.shape[0], values.shape[1], ctypes.byref(table._handle)))
        table._owner = values
        return table

    @classmethod
    def _adopt(cls, handle, owner):
        table = cls()
        table._handle = handle
        table._owner = owner
        return table

    @property
    def shape(self):
        """(rows, dimensions)."""
        rows, dimensions = ctypes.c_int64(), ctypes.c_int64()
        _check(lib.rec_table_shape(self._handle, ctypes.byref(rows), ctypes.byref(dimensions)))
        return rows.value, dimensions.value

    def to_numpy(self):
        """The table's values as a read-only float32 array of shape (rows, dimensions) that shares
        the table's memory (the mapped file, the wrapped array or the library's copy) — no copy.
        The array keeps the table alive."""
        rows, dimensions = self.shape
        data = ctypes.c_void_p()
        _check(lib.rec_table_data(self._handle, ctypes.byref(data)))
        if rows * dimensions == 0:
            return np.zeros((rows, dimensions), dtype=np.float32)
        buffer = (ctypes.c_float * (rows * dimensions)).from_address(data.value)
        buffer._table = self  # the memory lives as long as the table handle
        array = np.frombuffer(buffer, dtype=np.float32).reshape(rows, dimensions)
        array.flags.writeable = False
        return array


# ---------------------------------------------------------------------------------------------
# Exact indexes

_METRICS = {"inner_product": 0, "ip": 0, "dot": 0, "cosine": 1, "squared_euclidean": 2, "l2": 2}
_METRIC_NAMES = {0: "inner_product", 1: "cosine", 2: "squared_euclidean"}


def _exclusion_csr(exclude, query_count, item_count):
    """(offsets, ids) int64 arrays from per-query lists or a CSR matrix (anything with ``indptr``
    and ``indices``, e.g. scipy.sparse.csr_matrix) of ``query_count`` rows."""
    if hasattr(exclude, "indptr") and hasattr(exclude, "indices"):
        offsets = np.ascontiguousarray(exclude.indptr, dtype=np.int64)
        ids = np.ascontiguousarray(exclude.indices, dtype=np.int64)
        if offsets.shape[0] != query_count + 1:
            raise InvalidArgumentError(2, f"exclude has {offsets.shape[0] - 1} rows for {query_count} queries")
        return offsets, ids
    lists = list(exclude)
    if len(lists) != query_count:
        raise InvalidArgumentError(2, f"exclude has {len(lists)} lists for {query_count} queries")
    lengths = np.fromiter((len(items) for items in lists), dtype=np.int64, count=len(lists))
    offsets = np.zeros(query_count + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.concatenate([np.asarray(items, dtype=np.int64).ravel() for items in lists]) if lists else np.zeros(0, np.int64)
    return offsets, np.ascontiguousarray(ids, dtype=np.int64)


def _bitset(items, item_count, name):
    """A uint64 bitset of ``item_count`` bits from a boolean mask of length item_count or an
    array of item ids."""
    values = np.asarray(items)
    if values.dtype == np.bool_:
        if values.shape != (item_count,):
            raise InvalidArgumentError(2, f"{name} is a mask of shape {values.shape}; the catalog has {item_count} items")
        mask = values
    else:
        ids = values.astype(np.int64, copy=False).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= item_count):
            bad = ids[(ids < 0) | (ids >= item_count)][0]
            raise InvalidArgumentError(2, f"{name} holds item {bad}, outside the catalog (0..<{item_count})")
        mask = np.zeros(item_count, dtype=np.bool_)
        mask[ids] = True
    words = (item_count + 63) // 64
    packed = np.zeros(words * 8, dtype=np.uint8)
    packed[: (item_count + 7) // 8] = np.packbits(mask, bitorder="little")
    return packed.view("<u8")


class Index(_Handle):
    """An exact top-K index over a catalog of item vectors, like faiss's ``IndexFlatIP`` /
    ``IndexFlatL2``: every item is scored, results are exact, ties go to the lower id.

    ``items`` is a 2-D array (borrowed without a copy when float32 C-contiguous), a
    :class:`Table`, or the path of a model file or .npy file. ``metric`` is ``"inner_product"``
    (alias ``"ip"``), ``"cosine"`` or ``"squared_euclidean"`` (alias ``"l2"``; lower is better,
    results nearest first). Building checks every value is finite: O(items × dimensions).
    """

    _free = staticmethod(lib.rec_index_free)

    def __init__(self, items, metric="inner_product"):
        super().__init__()
        if metric not in _METRICS:
            raise InvalidArgumentError(2, f"unknown metric {metric!r}: expected one of {sorted(_METRICS)}")
        if isinstance(items, Table):
            self.table = items
        elif isinstance(items, (str, bytes, os.PathLike)):
            self.table = Table.open(items)
        else:
            self.table = Table.from_array(items)
        _check(lib.rec_index_create(self.table._handle, _METRICS[metric], ctypes.byref(self._handle)))
        count, dimensions, code = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int32()
        _check(lib.rec_index_info(self._handle, ctypes.byref(count), ctypes.byref(dimensions), ctypes.byref(code)))
        #: Number of items (faiss: ``ntotal``).
        self.ntotal = count.value
        #: Dimensions (faiss: ``d``).
        self.d = dimensions.value
        #: "inner_product", "cosine" or "squared_euclidean".
        self.metric = _METRIC_NAMES[code.value]

    def __len__(self):
        return self.ntotal

    def search(self, queries, k, *, exclude=None, allowed=None, denied=None, threads=0):
        """The best ``k`` items for each query: ``(scores, ids)``, like faiss's ``index.search``.

        ``queries``: (n, d) array, read in place when float32 C-contiguous; a 1-D (d,) array is
        one query and gives 1-D results. ``exclude``: per-query items never returned — a list of
        n id lists, or an n-row CSR matrix (``scipy.sparse.csr_matrix`` of user × item
        interactions: each user's seen items). ``allowed`` / ``denied``: items (ids, or a
        boolean mask over the catalog) that may / may never be returned, for every query.
        ``threads``: library worker threads for this call (0: one per core; pass 1 when calling
        from several Python threads at once).

        Returns ``scores`` float32 (n, k) and ``ids`` int64 (n, k), best first, ties by the lower
        id; rows with fewer than k eligible items end with id -1 and score NaN. Raises
        :class:`InvalidArgumentError` (k < 1, NaN queries, a zero query under cosine, bad ids),
        :class:`DimensionMismatchError`.
        """
        values = np.ascontiguousarray(queries, dtype=np.float32)
        one = values.ndim == 1
        if one:
            values = values.reshape(1, -1)
        if values.ndim != 2:
            raise InvalidArgumentError(2, f"queries must be 1-D or 2-D, got shape {np.shape(queries)}")
        n = values.shape[0]
        k = int(k)
        if k < 1:  # checked here too so no (n, k) array is allocated for a negative k
            _check(lib.rec_index_search(self._handle, None, 0, values.shape[1], k, None, 0, None, None, None))
        scores = np.empty((n, k), dtype=np.float32)
        ids = np.empty((n, k), dtype=np.int64)
        keep = []
        search_filter = None
        if exclude is not None or allowed is not None or denied is not None:
            search_filter = _library.Filter()
            if exclude is not None:
                offsets, excluded = _exclusion_csr(exclude, n, self.ntotal)
                keep += [offsets, excluded]
                search_filter.exclusion_offsets = offsets.ctypes.data
                search_filter.exclusion_ids = excluded.ctypes.data if excluded.size else offsets.ctypes.data
            if allowed is not None:
                bits = _bitset(allowed, self.ntotal, "allowed")
                keep.append(bits)
                search_filter.allowed = bits.ctypes.data
            if denied is not None:
                bits = _bitset(denied, self.ntotal, "denied")
                keep.append(bits)
                search_filter.denied = bits.ctypes.data
        _check(lib.rec_index_search(self._handle, _pointer(values), n, values.shape[1], k,
                                    ctypes.byref(search_filter) if search_filter is not None else None,
                                    int(threads), _pointer(ids), _pointer(scores), None))
        return (scores[0], ids[0]) if one else (scores, ids)


# ---------------------------------------------------------------------------------------------
# Factor models


class FactorModel(_Handle):
    """A matrix-factorization model (implicit or explicit ALS, BPR, biased MF) written by
    ``recommender train -o`` or ``recommender models add``, opened by memory-mapping.

    ``user_factors`` and ``item_factors`` are read-only NumPy views of the mapped file (no copy).
    Items and users are addressed by index (``0 … items − 1``); ``item_index``/``user_index``
    map the external ids of the training data, ``item_id`` maps back.
    """

    _free = staticmethod(lib.rec_model_free)

    def __init__(self, path):
        super().__init__()
        _check(lib.rec_model_open(_path(path), ctypes.byref(self._handle)))
        users, items, dimensions = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
        _check(lib.rec_model_shape(self._handle, ctypes.byref(users), ctypes.byref(items), ctypes.byref(dimensions)))
        self.users, self.items, self.dimensions = users.value, items.value, dimensions.value
        item_table, user_table = ctypes.c_void_p(), ctypes.c_void_p()
        _check(lib.rec_model_item_factors(self._handle, ctypes.byref(item_table)))
        self._item_table = Table._adopt(item_table, None)
        _check(lib.rec_model_user_factors(self._handle, ctypes.byref(user_table)))
        self._user_table = Table._adopt(user_table, None)
        #: items × dimensions, read-only, shared with the mapped file.
        self.item_factors = self._item_table.to_numpy()
        #: users × dimensions, read-only, shared with the mapped file.
        self.user_factors = self._user_table.to_numpy()
        #: The inner-product index over the item vectors that ranks items for a user vector.
        self.index = Index(self._item_table, "inner_product")

    def user_index(self, user_id):
        """The index of external user id ``user_id``; :class:`NotFoundError` when unknown."""
        index = ctypes.c_int64()
        _check(lib.rec_model_user_index(self._handle, str(user_id).encode(), ctypes.byref(index)))
        return index.value

    def item_index(self, item_id):
        """The index of external item id ``item_id``; :class:`NotFoundError` when unknown."""
        index = ctypes.c_int64()
        _check(lib.rec_model_item_index(self._handle, str(item_id).encode(), ctypes.byref(index)))
        return index.value

    def item_id(self, index):
        """The external id of item ``index``."""
        length = ctypes.c_size_t()
        lib.rec_model_item_id(self._handle, int(index), None, 0, ctypes.byref(length))
        buffer = ctypes.create_string_buffer(length.value + 1)
        _check(lib.rec_model_item_id(self._handle, int(index), buffer, len(buffer), ctypes.byref(length)))
        return buffer.value.decode()

    def fold_in(self, items, weights=None):
        """The user vector a history gives with the item vectors held fixed (what training would
        give that user), without retraining: float32 array of ``dimensions``. ``items`` are item
        indices, ``weights`` their strengths (default 1)."""
        history = np.ascontiguousarray(items, dtype=np.int64).ravel()
        strengths = None if weights is None else np.ascontiguousarray(weights, dtype=np.float32).ravel()
        if strengths is not None and strengths.shape != history.shape:
            raise InvalidArgumentError(2, f"{history.size} history items but {strengths.size} weights")
        vector = np.empty(self.dimensions, dtype=np.float32)
        _check(lib.rec_model_fold_in(self._handle, _pointer(history), _pointer(strengths), history.size,
                                     _pointer(vector), self.dimensions))
        return vector

    def recommend(self, userid, user_items=None, N=10, filter_already_liked_items=True, filter_items=None,
                  recalculate_user=False, items=None, threads=0):
        """The top ``N`` items for a user or users, like implicit's ``model.recommend``.

        ``userid``: a user index, or an array of them. ``user_items``: the users' interactions,
        one row per entry of ``userid`` (a CSR matrix such as ``scipy.sparse.csr_matrix`` of
        users × items, or a list of item-index lists); needed when
        ``filter_already_liked_items`` (those items are excluded) or ``recalculate_user`` (the
        user vector is folded in from that row instead of read from the model).
        ``filter_items``: items never returned. ``items``: only these items may be returned.

        Returns ``(ids, scores)``: 1-D arrays for one user, (users, N) arrays for an array of
        users; best first, ties to the lower id, padded with -1 / NaN when fewer items qualify.
        """
        single = np.isscalar(userid)
        users = np.atleast_1d(np.asarray(userid, dtype=np.int64))
        if users.size and (users.min() < 0 or users.max() >= self.users):
            bad = users[(users < 0) | (users >= self.users)][0]
            raise NotFoundError(6, f"user index {bad} is outside the model (0..<{self.users})")
        rows = None
        if user_items is not None:
            rows = _rows(user_items, users.size)
        elif filter_already_liked_items or recalculate_user:
            raise InvalidArgumentError(2, "user_items is needed with filter_already_liked_items=True or recalculate_user=True")
        if recalculate_user:
            queries = np.stack([self.fold_in(row_items, row_weights) for row_items, row_weights in rows])
        else:
            queries = self.user_factors[users]
        exclude = [row_items for row_items, _ in rows] if (filter_already_liked_items and rows is not None) else None
        scores, ids = self.index.search(queries, N, exclude=exclude, allowed=items, denied=filter_items, threads=threads)
        return (ids[0], scores[0]) if single else (ids, scores)


def _rows(user_items, count):
    """[(item indices, weights)] per row from a CSR matrix or a list of lists."""
    if hasattr(user_items, "indptr"):
        indptr, indices = np.asarray(user_items.indptr), np.asarray(user_items.indices)
        data = np.asarray(user_items.data, dtype=np.float32)
        if indptr.shape[0] - 1 != count:
            raise InvalidArgumentError(2, f"user_items has {indptr.shape[0] - 1} rows for {count} users")
        return [(indices[indptr[r]:indptr[r + 1]], data[indptr[r]:indptr[r + 1]]) for r in range(count)]
    lists = [user_items] if count == 1 and len(user_items) and np.isscalar(user_items[0]) else list(user_items)
    if len(lists) != count:
        raise InvalidArgumentError(2, f"user_items has {len(lists)} rows for {count} users")
    return [(np.asarray(row, dtype=np.int64), None) for row in lists]


# ---------------------------------------------------------------------------------------------
# Text indexes

#: One result of a text query: the document's row, id, label (title) and cosine score.
TextMatch = namedtuple("TextMatch", "row id label score")

_REPRESENTATIONS = {"tfidf": 0, "lsi": 1, "word2vec": 2}


class TextIndex(_Handle):
    """A text index ("more like this") written by ``recommender text index -o``: TF-IDF, and LSI
    or word2vec document vectors when it was built with them."""

    _free = staticmethod(lib.rec_text_free)

    def __init__(self, path):
        super().__init__()
        _check(lib.rec_text_open(_path(path), ctypes.byref(self._handle)))
        count = ctypes.c_int64()
        _check(lib.rec_text_count(self._handle, ctypes.byref(count)))
        self._count = count.value

    def __len__(self):
        return self._count

    def document(self, row):
        """(id, label) of document ``row``."""
        id_length, label_length = ctypes.c_size_t(), ctypes.c_size_t()
        lib.rec_text_document(self._handle, int(row), None, 0, ctypes.byref(id_length), None, 0, ctypes.byref(label_length))
        ids, labels = ctypes.create_string_buffer(id_length.value + 1), ctypes.create_string_buffer(label_length.value + 1)
        _check(lib.rec_text_document(self._handle, int(row), ids, len(ids), None, labels, len(labels), None))
        return ids.value.decode(), labels.value.decode()

    def _search(self, function, key, k, using):
        if using not in _REPRESENTATIONS:
            raise InvalidArgumentError(2, f"unknown representation {using!r}: expected one of {sorted(_REPRESENTATIONS)}")
        k = int(k)
        rows = np.empty(max(k, 1), dtype=np.int64)
        scores = np.empty(max(k, 1), dtype=np.float32)
        count = ctypes.c_int32()
        _check(function(self._handle, key.encode(), k, _REPRESENTATIONS[using], _pointer(rows), _pointer(scores), ctypes.byref(count)))
        return [TextMatch(int(rows[r]), *self.document(rows[r]), float(scores[r])) for r in range(count.value)]

    def query(self, text, k=10, using="tfidf"):
        """The ``k`` documents most similar to ``text``: a list of :class:`TextMatch`, best first.
        ``using``: "tfidf", "lsi" or "word2vec". :class:`NotFoundError` when no term is known."""
        return self._search(lib.rec_text_query, text, k, using)

    def similar(self, document_id, k=10, using="tfidf"):
        """"More like this": the ``k`` documents most similar to document ``document_id``, never
        itself."""
        return self._search(lib.rec_text_similar, str(document_id), k, using)
