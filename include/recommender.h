/*
 * recommender.h — the C ABI of librecommender.so: exact top-K scoring, factor models and text
 * indexes from the recommender engine, callable from C, C++, Go, Java (JNI/FFM), Python (ctypes)
 * or anything else that can call C.
 *
 * CONVENTIONS
 *   - Every symbol of this ABI starts with `rec_` (types `rec_…`, macros `REC_…`). Symbols of
 *     the library that are not declared here are not part of the ABI and may change.
 *   - Objects are opaque handles (rec_table, rec_index, rec_model, rec_text_index), created by a
 *     `rec_…_open/_wrap/_create` function through an out-parameter and released with the
 *     matching `rec_…_free`. Freeing NULL is allowed and does nothing.
 *   - Every function returns a rec_status: REC_OK (0) on success, a positive code otherwise.
 *     When a function fails, its out-parameters are left untouched (an output array may be
 *     partly written) and rec_last_error() returns a message naming the problem (the argument,
 *     file, row or value at fault and what was expected). Nothing is ever thrown or aborted
 *     across this boundary for bad input.
 *   - rec_last_error() is thread-local: it describes the last failed call made by the calling
 *     thread, and stays valid until that thread's next failing call.
 *   - Only plain C types cross the boundary: integers, floats, pointers to caller-owned arrays,
 *     NUL-terminated UTF-8 strings.
 *   - Item ids are row indices into the catalog (0 … items − 1), as int64_t.
 *   - Arrays are row-major (C order). A batch of `n` queries of `d` floats is `n * d`
 *     consecutive floats; results of a batch are `n * k` ids and `n * k` scores, query q's in
 *     [q * k, (q + 1) * k), best first, ties broken by the lower id. A query with fewer than k
 *     eligible items gets id -1 and score NaN in its unused slots.
 *
 * THREAD SAFETY
 *   Handles are immutable once created. Any number of threads may use one handle at once
 *   (search one rec_index from many threads, fold in with one rec_model, query one
 *   rec_text_index). Freeing a handle while another thread uses it is the caller's error.
 *   A search uses `threads` worker threads of its own (0: the number of cores); a caller that
 *   runs its own threads (a server, a Spark executor with several cores) should pass 1.
 *
 * LIFETIMES
 *   - A table opened from a file maps the file read-only: opening copies nothing. The mapping
 *     lives as long as any handle that uses it (the table, an index built on it, a model).
 *   - rec_table_wrap() borrows the caller's buffer without copying: the caller keeps it alive
 *     and unchanged until every handle built on it (the table and its indexes) is freed.
 *   - An index keeps what it needs of its table: the table handle may be freed first.
 *
 * ABI STABILITY RULE
 *   REC_ABI_VERSION changes when any declaration here changes incompatibly (a signature, a
 *   struct layout, an enum value's meaning). Additions (new functions, new status codes, new
 *   enum values) do not change it. A program compiled against this header calls
 *   rec_abi_version() once at start-up and refuses to run when it differs from the
 *   REC_ABI_VERSION it was compiled with; rec_check_abi(REC_ABI_VERSION) does exactly that and
 *   sets the error message. The library's soname is not versioned.
 *
 * RUNNING WITHOUT A SWIFT TOOLCHAIN
 *   librecommender.so is written in Swift. A machine that loads it needs, besides this file and
 *   the .so: OpenBLAS and LAPACKE (Debian: libopenblas0, liblapacke; they bring libgfortran),
 *   libstdc++, and these eleven Swift runtime libraries (25 MB, Swift 6.3.1) copied from the
 *   toolchain's usr/lib/swift/linux/ into the directory of librecommender.so — its RUNPATH
 *   includes $ORIGIN — or onto LD_LIBRARY_PATH: libswiftCore.so, libswift_Concurrency.so,
 *   libswift_StringProcessing.so, libswift_RegexParser.so, libswiftSynchronization.so,
 *   libswiftGlibc.so, libswift_Builtin_float.so, libswiftDispatch.so, libdispatch.so,
 *   libBlocksRuntime.so, libFoundationEssentials.so. `ldd librecommender.so` lists them. This
 *   was checked by hiding /opt/swift (an empty bind mount) and running a C program against such
 *   a directory. Alternatively, `swift build -c release --product recommender-c -Xswiftc
 *   -static-stdlib --scratch-path .build-static` links the Swift runtime in (25 MB; needs only
 *   OpenBLAS, LAPACKE, libstdc++, libc); do not load it into a process that has another Swift
 *   runtime. See README.md ("Calling it from C").
 *
 * BUILDING AGAINST IT
 *   swift build -c release --product recommender-c     # .build/release/librecommender-c.so
 *   scripts/build-c-library                             # the same, plus .build/release/librecommender.so
 *   gcc -I include app.c -L .build/release -lrecommender -Wl,-rpath,$PWD/.build/release
 */
#ifndef RECOMMENDER_H
#define RECOMMENDER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version this header describes; compare with rec_abi_version(). */
#define REC_ABI_VERSION 1

/** What a call returned. Codes are stable; new ones may be added. */
typedef enum rec_status {
    REC_OK = 0,
    /** A required pointer argument was NULL. */
    REC_ERROR_NULL_ARGUMENT = 1,
    /** An argument is out of range: k < 1, a negative count, an id outside the catalog, a NaN
     *  or infinite value, a zero query under cosine, an unknown metric or representation. */
    REC_ERROR_INVALID_ARGUMENT = 2,
    /** Dimensions differ: queries vs catalog, a vector buffer vs the model. */
    REC_ERROR_DIMENSION_MISMATCH = 3,
    /** A file could not be opened, read or mapped (the message carries the path and errno). */
    REC_ERROR_IO = 4,
    /** A file is not what was expected: corrupt, truncated, another kind of model, a NumPy
     *  array of an unsupported type. */
    REC_ERROR_FORMAT = 5,
    /** An id, document or representation that does not exist; a text without known terms. */
    REC_ERROR_NOT_FOUND = 6,
    /** A caller's buffer is too small (the message says how large it must be). */
    REC_ERROR_BUFFER_TOO_SMALL = 7,
    /** The caller was compiled against another ABI version. */
    REC_ERROR_ABI_MISMATCH = 8,
    /** Anything else (a bug: please report the message). */
    REC_ERROR_INTERNAL = 99
} rec_status;

/** How query-item similarity is measured. */
typedef enum rec_metric {
    /** q · x; higher is better. */
    REC_METRIC_INNER_PRODUCT = 0,
    /** q · x / (|q| |x|); higher is better. A zero catalog vector scores 0; a zero query is an
     *  error. */
    REC_METRIC_COSINE = 1,
    /** |q − x|²; lower is better, and results come nearest first. */
    REC_METRIC_SQUARED_EUCLIDEAN = 2
} rec_metric;

/** Which vectors a text query is answered with. */
typedef enum rec_text_representation {
    /** Sparse TF-IDF vectors, exact cosine. Always present. */
    REC_TEXT_TFIDF = 0,
    /** LSI coordinates (present when the index was built with --lsi-topics). */
    REC_TEXT_LSI = 1,
    /** word2vec document vectors (present when built with --word2vec-dimensions). */
    REC_TEXT_WORD2VEC = 2
} rec_text_representation;

/** A dense float table: rows × dimensions, row-major (a catalog, a batch of queries). */
typedef struct rec_table rec_table;
/** An exact top-K index over a table (faiss IndexFlat-like). */
typedef struct rec_index rec_index;
/** A trained matrix-factorization model (ALS, BPR, biased MF) opened from a model file. */
typedef struct rec_model rec_model;
/** A text index ("more like this") opened from a model file written by `recommender text index`. */
typedef struct rec_text_index rec_text_index;

/**
 * Restrictions on a search; every field is optional (NULL: no restriction). The struct is
 * read during the call only.
 *
 * - exclusion_offsets / exclusion_ids: per-query exclusions in CSR form. For a batch of n
 *   queries, exclusion_offsets has n + 1 entries, non-decreasing from 0, and query q must not
 *   get back the ids exclusion_ids[exclusion_offsets[q] … exclusion_offsets[q + 1] − 1]
 *   (any order, duplicates allowed). Both NULL or both set.
 * - allowed / denied: catalog-wide bitsets of (items + 63) / 64 words; item i is bit i % 64 of
 *   word i / 64. An item may be returned when it is in `allowed` (or allowed is NULL) and not in
 *   `denied`.
 */
typedef struct rec_filter {
    const int64_t *exclusion_offsets;
    const int64_t *exclusion_ids;
    const uint64_t *allowed;
    const uint64_t *denied;
} rec_filter;

/** What this library was built with and runs on. Strings are static: never freed. */
typedef struct rec_build_info {
    /** REC_ABI_VERSION of the library. */
    int32_t abi_version;
    /** The library's version, e.g. "0.1.0". */
    const char *version;
    /** The SIMD level the kernels run at on this CPU: 0 scalar, 1 AVX2+FMA, 2 AVX-512. */
    int32_t simd_level;
    /** The same as a name: "scalar", "AVX2+FMA" or "AVX-512". */
    const char *simd_name;
    /** OpenBLAS's configuration string (version, architecture, core it selected). */
    const char *blas;
    /** Cores this process may use: the default number of search threads. */
    int32_t cores;
} rec_build_info;

/* ---------------------------------------------------------------------------------------- */
/* Version, errors, build information                                                        */

/** The ABI version of the loaded library (REC_ABI_VERSION it was built with). Never fails. */
int32_t rec_abi_version(void);

/** REC_OK when `expected` (pass REC_ABI_VERSION) is the loaded library's ABI version;
 *  REC_ERROR_ABI_MISMATCH, with a message giving both, otherwise. */
rec_status rec_check_abi(int32_t expected);

/** The message of the calling thread's last failed call, or "" when none failed yet. Never NULL;
 *  valid until the thread's next failing call. */
const char *rec_last_error(void);

/** Fills *info. */
rec_status rec_get_build_info(rec_build_info *info);

/* ---------------------------------------------------------------------------------------- */
/* Tables                                                                                    */

/**
 * Opens a table from a file: a model file written by this engine (the section named `section`,
 * or, when section is NULL, the section a saved table uses, "embeddings") — memory-mapped, no
 * copy — or a NumPy .npy file (float32 or float64, C order; read into memory), told apart by
 * their magic bytes. Every checksum of a model file is verified.
 * Errors: REC_ERROR_IO, REC_ERROR_FORMAT (corrupt, truncated, no such section, not float32).
 */
rec_status rec_table_open(const char *path, const char *section, rec_table **table);

/**
 * Wraps the caller's `rows * dimensions` floats, row-major, without copying them. The caller
 * keeps `data` alive and unchanged until this table and every index built on it are freed. No
 * alignment is required. Values are checked when an index is built on the table.
 * Errors: REC_ERROR_INVALID_ARGUMENT (rows < 0, dimensions < 1, rows > INT32_MAX).
 */
rec_status rec_table_wrap(const float *data, int64_t rows, int64_t dimensions, rec_table **table);

/** The table's shape; either out-pointer may be NULL. */
rec_status rec_table_shape(const rec_table *table, int64_t *rows, int64_t *dimensions);

/**
 * The table's floats (rows * dimensions, row-major), read-only: the mapped file, the wrapped
 * buffer or the library's heap copy. Valid while the table handle lives.
 */
rec_status rec_table_data(const rec_table *table, const float **data);

/** Releases a table (NULL: nothing). Indexes built on it stay valid. */
rec_status rec_table_free(rec_table *table);

/* ---------------------------------------------------------------------------------------- */
/* Exact top-K indexes                                                                       */

/**
 * Builds an exact index over `items` with `metric`: checks every value is finite and
 * precomputes the metric's per-item terms (norms). O(items × dimensions).
 * Errors: REC_ERROR_INVALID_ARGUMENT (empty catalog, a NaN or infinite value — the message
 * names the row and column, an unknown metric).
 */
rec_status rec_index_create(const rec_table *items, rec_metric metric, rec_index **index);

/** The index's shape and metric; any out-pointer may be NULL. */
rec_status rec_index_info(const rec_index *index, int64_t *items, int64_t *dimensions, rec_metric *metric);

/**
 * The best k items for each of `query_count` queries (row-major, `dimensions` floats each; read
 * in place, not copied). Writes query_count * k ids and scores (see CONVENTIONS for padding).
 * `filter` may be NULL. `threads` is the number of worker threads (0: one per core).
 * `ids` and `scores` must hold query_count * k elements; `counts`, when not NULL,
 * receives the number of results filled per query (query_count elements).
 * O(query_count × items × dimensions) time; no memory beyond the results and per-thread tiles.
 * Errors: REC_ERROR_NULL_ARGUMENT, REC_ERROR_INVALID_ARGUMENT (k < 1, query_count < 0,
 * threads < 0, a NaN query, a zero query under cosine, an excluded id outside the catalog,
 * malformed exclusion offsets), REC_ERROR_DIMENSION_MISMATCH.
 */
rec_status rec_index_search(const rec_index *index, const float *queries, int64_t query_count,
                            int64_t dimensions, int32_t k, const rec_filter *filter, int32_t threads,
                            int64_t *ids, float *scores, int32_t *counts);

/**
 * The best k items for one query: rec_index_search with one query whose exclusions are
 * `excluded` (excluded_count ids; NULL when 0). `filter`'s exclusion fields must be NULL; its
 * allowed/denied bitsets apply. `count` (may be NULL) receives the number of results.
 */
rec_status rec_index_search_one(const rec_index *index, const float *query, int64_t dimensions, int32_t k,
                                const int64_t *excluded, int64_t excluded_count, const rec_filter *filter,
                                int32_t threads, int64_t *ids, float *scores, int32_t *count);

/** Releases an index (NULL: nothing). */
rec_status rec_index_free(rec_index *index);

/* ---------------------------------------------------------------------------------------- */
/* Factor models (recommender train / models add)                                            */

/**
 * Opens a factor model file (implicit or explicit ALS, BPR, biased MF) written by
 * `recommender train -o` or stored by `recommender models add`; factor tables are mapped.
 * Errors: REC_ERROR_IO, REC_ERROR_FORMAT (corrupt, or another kind of model).
 */
rec_status rec_model_open(const char *path, rec_model **model);

/** Users, items, and the dimensions of the vectors items are ranked by (factors, plus one for
 *  the bias column of BPR and biased MF); any out-pointer may be NULL. */
rec_status rec_model_shape(const rec_model *model, int64_t *users, int64_t *items, int64_t *dimensions);

/** The model's item vectors (items × dimensions) as a new table handle sharing the mapping:
 *  build a REC_METRIC_INNER_PRODUCT index on it to rank items for user vectors. */
rec_status rec_model_item_factors(const rec_model *model, rec_table **table);

/** The model's user vectors (users × dimensions), as rec_model_item_factors. */
rec_status rec_model_user_factors(const rec_model *model, rec_table **table);

/**
 * The index of external id `id` (as in the training data) among the model's users or items.
 * Errors: REC_ERROR_NOT_FOUND.
 */
rec_status rec_model_user_index(const rec_model *model, const char *id, int64_t *index);
rec_status rec_model_item_index(const rec_model *model, const char *id, int64_t *index);

/**
 * The external id of item `index`, NUL-terminated, into `buffer` of `capacity` bytes;
 * `length` (may be NULL) receives its length without the NUL. Errors:
 * REC_ERROR_INVALID_ARGUMENT (index out of range), REC_ERROR_BUFFER_TOO_SMALL.
 */
rec_status rec_model_item_id(const rec_model *model, int64_t index, char *buffer, size_t capacity, size_t *length);

/**
 * Folds a history into a user vector with the model's items held fixed — what training would
 * give a user with that history — without retraining. `items` are `count` item indices,
 * `weights` their strengths (NULL: all 1). Writes `dimensions` floats to `vector`, which must
 * be the model's dimensions (rec_model_shape). O(d³ + count × d²) for ALS and biased MF.
 * Errors: REC_ERROR_INVALID_ARGUMENT (empty history, an item outside the catalog, a non-finite
 * weight), REC_ERROR_DIMENSION_MISMATCH.
 */
rec_status rec_model_fold_in(const rec_model *model, const int64_t *items, const float *weights, int64_t count,
                             float *vector, int64_t dimensions);

/** Releases a model (NULL: nothing). Tables taken from it stay valid. */
rec_status rec_model_free(rec_model *model);

/* ---------------------------------------------------------------------------------------- */
/* Text indexes (recommender text index)                                                     */

/** Opens a text index file written by `recommender text index -o`.
 *  Errors: REC_ERROR_IO, REC_ERROR_FORMAT. */
rec_status rec_text_open(const char *path, rec_text_index **index);

/** Number of documents. */
rec_status rec_text_count(const rec_text_index *index, int64_t *documents);

/**
 * The k documents most similar to `text` (UTF-8), best first: `rows` and `scores` (cosine) of k
 * elements each, *count of them filled (the rest are -1 / NaN). Rows index the documents; get
 * their ids with rec_text_document.
 * Errors: REC_ERROR_INVALID_ARGUMENT (k < 1, unknown representation), REC_ERROR_NOT_FOUND (no
 * known term, a representation the index was built without).
 */
rec_status rec_text_query(const rec_text_index *index, const char *text, int32_t k, rec_text_representation using,
                          int64_t *rows, float *scores, int32_t *count);

/** "More like this": the k documents most similar to document `id`, never itself; as
 *  rec_text_query. Errors also: REC_ERROR_NOT_FOUND for an unknown document. */
rec_status rec_text_similar(const rec_text_index *index, const char *id, int32_t k, rec_text_representation using,
                            int64_t *rows, float *scores, int32_t *count);

/**
 * Document `row`'s id and label (NUL-terminated UTF-8) into caller buffers; either buffer may
 * be NULL (with capacity 0) to skip it; `id_length`/`label_length` (may be NULL) receive the
 * lengths without the NUL, also when the buffer is too small, so a caller can size a retry.
 * Errors: REC_ERROR_INVALID_ARGUMENT (row out of range), REC_ERROR_BUFFER_TOO_SMALL.
 */
rec_status rec_text_document(const rec_text_index *index, int64_t row, char *id, size_t id_capacity, size_t *id_length,
                             char *label, size_t label_capacity, size_t *label_length);

/** Releases a text index (NULL: nothing). */
rec_status rec_text_free(rec_text_index *index);

#ifdef __cplusplus
}
#endif

#endif /* RECOMMENDER_H */
