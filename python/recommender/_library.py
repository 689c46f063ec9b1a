"""Loading librecommender.so and declaring its C functions (include/recommender.h) to ctypes.

Where the library is looked for, first found wins:

1. the file named by the environment variable ``RECOMMENDER_LIBRARY``;
2. ``librecommender.so`` next to this module (``pip install ./python`` copies it there when the
   repository's library was built first);
3. ``.build/release/librecommender.so`` of the repository this package sits in (a source
   checkout used in place, e.g. ``PYTHONPATH=python``), then of the current directory.

ctypes releases the GIL around every call, so searches from several Python threads run in
parallel inside the library.
"""
import ctypes
import os

ABI_VERSION = 1  # REC_ABI_VERSION of the header these declarations follow

_HERE = os.path.dirname(os.path.abspath(__file__))


def _candidates():
    explicit = os.environ.get("RECOMMENDER_LIBRARY")
    if explicit:
        return [explicit]
    return [
        os.path.join(_HERE, "librecommender.so"),
        os.path.join(_HERE, "..", "..", ".build", "release", "librecommender.so"),
        os.path.join(os.getcwd(), ".build", "release", "librecommender.so"),
    ]


def _load():
    tried = []
    for path in _candidates():
        if os.path.isfile(path):
            return ctypes.CDLL(os.path.abspath(path)), os.path.abspath(path)
        tried.append(path)
    raise ImportError(
        "librecommender.so not found; tried " + ", ".join(tried)
        + ". Build it with scripts/build-c-library, or set RECOMMENDER_LIBRARY to its path.")


lib, path = _load()

c_int32, c_int64, c_float, c_size = ctypes.c_int32, ctypes.c_int64, ctypes.c_float, ctypes.c_size_t
c_void, c_char = ctypes.c_void_p, ctypes.c_char_p
P = ctypes.POINTER


class Filter(ctypes.Structure):
    """``rec_filter``: per-query exclusions (CSR) and catalog-wide allow/deny bitsets."""
    _fields_ = [("exclusion_offsets", c_void), ("exclusion_ids", c_void), ("allowed", c_void), ("denied", c_void)]


class BuildInfo(ctypes.Structure):
    """``rec_build_info``."""
    _fields_ = [("abi_version", c_int32), ("version", c_char), ("simd_level", c_int32),
                ("simd_name", c_char), ("blas", c_char), ("cores", c_int32)]


def _declare(name, *arguments, restype=c_int32):
    function = getattr(lib, name)
    function.argtypes = list(arguments)
    function.restype = restype
    return function


_declare("rec_abi_version")
_declare("rec_check_abi", c_int32)
_declare("rec_last_error", restype=c_char)
_declare("rec_get_build_info", P(BuildInfo))
_declare("rec_table_open", c_char, c_char, P(c_void))
_declare("rec_table_wrap", c_void, c_int64, c_int64, P(c_void))
_declare("rec_table_shape", c_void, P(c_int64), P(c_int64))
_declare("rec_table_data", c_void, P(c_void))
_declare("rec_table_free", c_void)
_declare("rec_index_create", c_void, c_int32, P(c_void))
_declare("rec_index_info", c_void, P(c_int64), P(c_int64), P(c_int32))
_declare("rec_index_search", c_void, c_void, c_int64, c_int64, c_int32, P(Filter), c_int32, c_void, c_void, c_void)
_declare("rec_index_search_one", c_void, c_void, c_int64, c_int32, c_void, c_int64, P(Filter), c_int32, c_void, c_void,
         P(c_int32))
_declare("rec_index_free", c_void)
_declare("rec_model_open", c_char, P(c_void))
_declare("rec_model_shape", c_void, P(c_int64), P(c_int64), P(c_int64))
_declare("rec_model_item_factors", c_void, P(c_void))
_declare("rec_model_user_factors", c_void, P(c_void))
_declare("rec_model_user_index", c_void, c_char, P(c_int64))
_declare("rec_model_item_index", c_void, c_char, P(c_int64))
_declare("rec_model_item_id", c_void, c_int64, c_void, c_size, P(c_size))
_declare("rec_model_fold_in", c_void, c_void, c_void, c_int64, c_void, c_int64)
_declare("rec_model_free", c_void)
_declare("rec_text_open", c_char, P(c_void))
_declare("rec_text_count", c_void, P(c_int64))
_declare("rec_text_query", c_void, c_char, c_int32, c_int32, c_void, c_void, P(c_int32))
_declare("rec_text_similar", c_void, c_char, c_int32, c_int32, c_void, c_void, P(c_int32))
_declare("rec_text_document", c_void, c_int64, c_void, c_size, P(c_size), c_void, c_size, P(c_size))
_declare("rec_text_free", c_void)

STATUS_NAMES = {
    1: "null argument", 2: "invalid argument", 3: "dimension mismatch", 4: "I/O error", 5: "format error",
    6: "not found", 7: "buffer too small", 8: "ABI mismatch", 99: "internal error",
}
