/*
 * Tests of librecommender.so through include/recommender.h only, as a C program would use it.
 *
 *   test_recommender FIXTURES_DIR             every check below; prints "N passed, M failed"
 *   test_recommender --leak-loop N FIXTURES   open/wrap/index/search/close N times (run under valgrind)
 *
 * FIXTURES_DIR holds files made by the `recommender` CLI (scripts/test.d/40-c-abi makes them):
 * catalog.rkm (a saved table), als.rkm (an implicit ALS model), text.rkm (a text index of
 * documents.csv), and garbage.rkm (not a model file). The brute-force references are computed
 * here, in double precision, independently of the library.
 */
#include "recommender.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;
static const char *fixtures;

#define CHECK(condition, ...)                                                                      \
    do {                                                                                           \
        if (condition) {                                                                           \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

/* A call that must succeed; on failure prints the library's message. */
#define OK(expression)                                                                             \
    do {                                                                                           \
        rec_status status_ = (expression);                                                         \
        CHECK(status_ == REC_OK, "%s returned %d: %s", #expression, (int)status_, rec_last_error()); \
    } while (0)

/* A call that must fail with `expected` and a message containing `fragment`. */
#define FAILS(expression, expected, fragment)                                                      \
    do {                                                                                           \
        rec_status status_ = (expression);                                                         \
        const char *message_ = rec_last_error();                                                   \
        CHECK(status_ == (expected) && strstr(message_, (fragment)) != NULL,                       \
              "%s returned %d (expected %d), message \"%s\" (expected to contain \"%s\")",         \
              #expression, (int)status_, (int)(expected), message_, (fragment));                   \
    } while (0)

static char *fixture(const char *name) {
    static char paths[8][1024];
    static int next;
    char *path = paths[next++ % 8];
    snprintf(path, 1024, "%s/%s", fixtures, name);
    return path;
}

/* A deterministic generator (xorshift64*), so failures reproduce. */
static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint64_t next_random(void) {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 2685821657736338717ull;
}

/* Values on a grid of 1/8 in [-1, 1]: every inner product and squared distance of up to a few
 * hundred dimensions is exact in float, whatever the summation order, so results can be
 * compared exactly — ties included, which the grid makes frequent. */
static float grid_value(void) { return (float)((int)(next_random() % 17) - 8) / 8.0f; }

static float *random_table(int64_t rows, int64_t dimensions) {
    float *values = malloc(sizeof(float) * (size_t)(rows * dimensions));
    for (int64_t i = 0; i < rows * dimensions; i++) values[i] = grid_value();
    return values;
}

/* ---- The reference: brute force in double, ties broken by the lower id ---- */

typedef struct {
    double key; /* higher is better */
    int64_t id;
} candidate;

static int better_first(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

static double metric_score(rec_metric metric, const float *q, const float *x, int64_t d) {
    double dot = 0, qq = 0, xx = 0, dist = 0;
    for (int64_t f = 0; f < d; f++) {
        dot += (double)q[f] * x[f];
        qq += (double)q[f] * q[f];
        xx += (double)x[f] * x[f];
        dist += ((double)q[f] - x[f]) * ((double)q[f] - x[f]);
    }
    switch (metric) {
    case REC_METRIC_COSINE: return xx == 0 ? 0 : dot / sqrt(qq * xx);
    case REC_METRIC_SQUARED_EUCLIDEAN: return dist;
    default: return dot;
    }
}

static int is_excluded(int64_t id, const int64_t *ids, int64_t from, int64_t to) {
    for (int64_t e = from; e < to; e++)
        if (ids[e] == id) return 1;
    return 0;
}

static int bit(const uint64_t *set, int64_t i) { return (int)((set[i / 64] >> (i % 64)) & 1); }

/* Reference top-k of one query; returns how many were filled (ids -1 after). */
static int reference_search(rec_metric metric, const float *items, int64_t n, int64_t d, const float *q, int k,
                            const int64_t *excluded, int64_t excluded_from, int64_t excluded_to, const uint64_t *allowed,
                            const uint64_t *denied, int64_t *ids, double *scores) {
    candidate *all = malloc(sizeof(candidate) * (size_t)n);
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++) {
        if (excluded && is_excluded(i, excluded, excluded_from, excluded_to)) continue;
        if (allowed && !bit(allowed, i)) continue;
        if (denied && bit(denied, i)) continue;
        double s = metric_score(metric, q, items + i * d, d);
        all[count].key = metric == REC_METRIC_SQUARED_EUCLIDEAN ? -s : s;
        all[count].id = i;
        count++;
    }
    qsort(all, (size_t)count, sizeof(candidate), better_first);
    int filled = count < k ? (int)count : k;
    for (int r = 0; r < k; r++) {
        ids[r] = r < filled ? all[r].id : -1;
        scores[r] = r < filled ? (metric == REC_METRIC_SQUARED_EUCLIDEAN ? -all[r].key : all[r].key) : NAN;
    }
    free(all);
    return filled;
}

/* Compares a library result row with the reference: exact ids and scores for inner product and
 * squared Euclidean on grid data; for cosine (a division and a square root in float) scores
 * within 1e-5 and each id's true cosine equal to its reported score. */
static int same_row(rec_metric metric, const float *items, int64_t d, const float *q, int k, const int64_t *ids,
                    const float *scores, const int64_t *expected_ids, const double *expected_scores, int64_t query) {
    for (int r = 0; r < k; r++) {
        if (expected_ids[r] < 0) {
            if (ids[r] != -1 || !isnan(scores[r])) {
                fprintf(stderr, "  query %lld rank %d: expected padding, got id %lld score %g\n", (long long)query, r,
                        (long long)ids[r], scores[r]);
                return 0;
            }
            continue;
        }
        if (metric == REC_METRIC_COSINE) {
            if (ids[r] < 0 || fabs(scores[r] - expected_scores[r]) > 1e-5 ||
                fabs(metric_score(metric, q, items + ids[r] * d, d) - scores[r]) > 1e-5) {
                fprintf(stderr, "  query %lld rank %d: got %lld (%.7f), expected %lld (%.7f)\n", (long long)query, r,
                        (long long)ids[r], scores[r], (long long)expected_ids[r], expected_scores[r]);
                return 0;
            }
        } else if (ids[r] != expected_ids[r] || (double)scores[r] != expected_scores[r]) {
            fprintf(stderr, "  query %lld rank %d: got %lld (%.7f), expected %lld (%.7f)\n", (long long)query, r,
                    (long long)ids[r], scores[r], (long long)expected_ids[r], expected_scores[r]);
            return 0;
        }
    }
    return 1;
}

/* ---- Tests ---- */

static void test_version_and_build_info(void) {
    CHECK(rec_abi_version() == REC_ABI_VERSION, "rec_abi_version() = %d, header says %d", rec_abi_version(), REC_ABI_VERSION);
    OK(rec_check_abi(REC_ABI_VERSION));
    FAILS(rec_check_abi(REC_ABI_VERSION + 1), REC_ERROR_ABI_MISMATCH, "ABI version");
    rec_build_info info;
    memset(&info, 0, sizeof info);
    OK(rec_get_build_info(&info));
    CHECK(info.abi_version == REC_ABI_VERSION, "build info abi_version %d", info.abi_version);
    CHECK(info.version && strlen(info.version) > 0, "empty version");
    CHECK(info.simd_level >= 0 && info.simd_level <= 2, "simd_level %d", info.simd_level);
    CHECK(info.simd_name && (strcmp(info.simd_name, "scalar") == 0 || strcmp(info.simd_name, "AVX2+FMA") == 0 ||
                             strcmp(info.simd_name, "AVX-512") == 0),
          "simd_name %s", info.simd_name ? info.simd_name : "(null)");
    CHECK(info.blas && strstr(info.blas, "OpenBLAS") != NULL, "blas %s", info.blas ? info.blas : "(null)");
    CHECK(info.cores >= 1, "cores %d", info.cores);
    FAILS(rec_get_build_info(NULL), REC_ERROR_NULL_ARGUMENT, "info is NULL");
}

/* Every metric, several k, against the brute force, on a wrapped (borrowed) buffer. */
static void test_search_matches_brute_force(void) {
    const int64_t n = 2500, d = 19, nq = 40;
    float *items = random_table(n, d), *queries = random_table(nq, d);
    queries[0] = 0.5f; /* no zero query under cosine */
    for (int64_t q = 0; q < nq; q++) queries[q * d] = queries[q * d] == 0 ? 0.25f : queries[q * d];
    rec_table *table = NULL;
    OK(rec_table_wrap(items, n, d, &table));
    const float *data = NULL;
    OK(rec_table_data(table, &data));
    CHECK(data == items, "a wrapped table must use the caller's buffer, not a copy");
    int64_t rows = 0, dims = 0;
    OK(rec_table_shape(table, &rows, &dims));
    CHECK(rows == n && dims == d, "shape %lld x %lld", (long long)rows, (long long)dims);
    const int ks[] = {1, 10, 64};
    for (int metric = 0; metric < 3; metric++) {
        rec_index *index = NULL;
        OK(rec_index_create(table, (rec_metric)metric, &index));
        for (size_t kk = 0; kk < sizeof ks / sizeof *ks; kk++) {
            int k = ks[kk];
            int64_t *ids = malloc(sizeof(int64_t) * (size_t)(nq * k)), *expected = malloc(sizeof(int64_t) * (size_t)k);
            float *scores = malloc(sizeof(float) * (size_t)(nq * k));
            double *expected_scores = malloc(sizeof(double) * (size_t)k);
            int32_t *counts = malloc(sizeof(int32_t) * (size_t)nq);
            for (int threads = 1; threads <= 2; threads++) {
                OK(rec_index_search(index, queries, nq, d, k, NULL, threads, ids, scores, counts));
                int all_same = 1;
                for (int64_t q = 0; q < nq; q++) {
                    reference_search((rec_metric)metric, items, n, d, queries + q * d, k, NULL, 0, 0, NULL, NULL, expected,
                                     expected_scores);
                    all_same &= same_row((rec_metric)metric, items, d, queries + q * d, k, ids + q * k, scores + q * k,
                                         expected, expected_scores, q);
                    all_same &= counts[q] == k;
                }
                CHECK(all_same, "metric %d, k %d, threads %d: results differ from the brute force", metric, k, threads);
            }
            /* One query through rec_index_search_one gives the batch's row. */
            int64_t one_ids[64];
            float one_scores[64];
            int32_t one_count = 0;
            OK(rec_index_search_one(index, queries + 7 * d, d, k, NULL, 0, NULL, 0, one_ids, one_scores, &one_count));
            CHECK(one_count == k && memcmp(one_ids, ids + 7 * k, sizeof(int64_t) * (size_t)k) == 0 &&
                      memcmp(one_scores, scores + 7 * k, sizeof(float) * (size_t)k) == 0,
                  "metric %d k %d: search_one differs from the batch's row", metric, k);
            free(ids); free(expected); free(scores); free(expected_scores); free(counts);
        }
        int64_t items_out = 0, dims_out = 0;
        rec_metric metric_out = REC_METRIC_INNER_PRODUCT;
        OK(rec_index_info(index, &items_out, &dims_out, &metric_out));
        CHECK(items_out == n && dims_out == d && (int)metric_out == metric, "index info");
        OK(rec_index_free(index));
    }
    OK(rec_table_free(table));
    free(items);
    free(queries);
}

/* Per-query exclusions and allow/deny bitsets inside the kernel; k beyond the eligible items. */
static void test_exclusions_and_filters(void) {
    const int64_t n = 300, d = 8, nq = 5;
    const int k = 12;
    float *items = random_table(n, d), *queries = random_table(nq, d);
    rec_table *table = NULL;
    rec_index *index = NULL;
    OK(rec_table_wrap(items, n, d, &table));
    OK(rec_index_create(table, REC_METRIC_INNER_PRODUCT, &index));
    OK(rec_table_free(table)); /* the index keeps what it needs */

    /* Exclude each query's unfiltered top 5 (and some ids twice); allow even ids; deny multiples of 3. */
    int64_t top[5 * 5];
    float top_scores[5 * 5];
    OK(rec_index_search(index, queries, nq, d, 5, NULL, 1, top, top_scores, NULL));
    int64_t offsets[6] = {0}, excluded[64];
    int64_t e = 0;
    for (int64_t q = 0; q < nq; q++) {
        for (int r = 0; r < 5; r++) excluded[e++] = top[q * 5 + r];
        excluded[e++] = top[q * 5]; /* a duplicate */
        offsets[q + 1] = e;
    }
    uint64_t allowed[(300 + 63) / 64] = {0}, denied[(300 + 63) / 64] = {0};
    for (int64_t i = 0; i < n; i++) {
        if (i % 2 == 0) allowed[i / 64] |= 1ull << (i % 64);
        if (i % 3 == 0) denied[i / 64] |= 1ull << (i % 64);
    }
    rec_filter filter = {offsets, excluded, allowed, denied};
    int64_t ids[5 * 12], expected[12];
    float scores[5 * 12];
    double expected_scores[12];
    int32_t counts[5];
    OK(rec_index_search(index, queries, nq, d, k, &filter, 2, ids, scores, counts));
    int all_same = 1;
    for (int64_t q = 0; q < nq; q++) {
        int filled = reference_search(REC_METRIC_INNER_PRODUCT, items, n, d, queries + q * d, k, excluded, offsets[q],
                                      offsets[q + 1], allowed, denied, expected, expected_scores);
        all_same &= same_row(REC_METRIC_INNER_PRODUCT, items, d, queries + q * d, k, ids + q * k, scores + q * k, expected,
                             expected_scores, q);
        all_same &= counts[q] == filled;
        for (int r = 0; r < counts[q]; r++)
            all_same &= ids[q * k + r] % 2 == 0 && ids[q * k + r] % 3 != 0 &&
                        !is_excluded(ids[q * k + r], excluded, offsets[q], offsets[q + 1]);
    }
    CHECK(all_same, "exclusions and filters: results differ from the brute force");

    /* One query with exclusions and the bitsets. */
    int64_t one[12];
    float one_scores[12];
    int32_t one_count = 0;
    rec_filter bitsets_only = {NULL, NULL, allowed, denied};
    OK(rec_index_search_one(index, queries + 2 * d, d, k, excluded + offsets[2], offsets[3] - offsets[2], &bitsets_only, 1, one,
                            one_scores, &one_count));
    CHECK(one_count == counts[2] && memcmp(one, ids + 2 * k, sizeof one) == 0, "search_one with exclusions differs from the batch");

    /* Allow only 3 items: k = 12 gives 3 results, then -1 / NaN padding. */
    uint64_t three[(300 + 63) / 64] = {0};
    three[0] = (1ull << 4) | (1ull << 40);
    three[4] = 1ull << (299 % 64);
    rec_filter only_three = {NULL, NULL, three, NULL};
    OK(rec_index_search(index, queries, 1, d, k, &only_three, 1, ids, scores, counts));
    int padded = counts[0] == 3;
    for (int r = 0; r < 3; r++) padded &= ids[r] == 4 || ids[r] == 40 || ids[r] == 299;
    for (int r = 3; r < k; r++) padded &= ids[r] == -1 && isnan(scores[r]);
    CHECK(padded, "three allowed items: count %d, ids %lld %lld %lld %lld", counts[0], (long long)ids[0], (long long)ids[1],
          (long long)ids[2], (long long)ids[3]);
    OK(rec_index_free(index));
    free(items);
    free(queries);
}

/* A table saved by `recommender demo --catalog-path` (mapped), and a .npy written here. */
static void test_files(void) {
    rec_table *table = NULL;
    OK(rec_table_open(fixture("catalog.rkm"), NULL, &table));
    int64_t rows = 0, dims = 0;
    OK(rec_table_shape(table, &rows, &dims));
    CHECK(rows == 3000 && dims == 16, "catalog.rkm shape %lld x %lld", (long long)rows, (long long)dims);
    const float *data = NULL;
    OK(rec_table_data(table, &data));
    /* The same values through a .npy file (float32, C order) written here. */
    const char *npy = fixture("catalog-copy.npy");
    FILE *file = fopen(npy, "wb");
    char header[128];
    int length = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                          (long long)rows, (long long)dims);
    while ((10 + length + 1) % 64 != 0) header[length++] = ' ';
    header[length++] = '\n';
    fwrite("\x93NUMPY\x01\x00", 1, 8, file);
    unsigned char header_length[2] = {(unsigned char)(length & 0xFF), (unsigned char)(length >> 8)};
    fwrite(header_length, 1, 2, file);
    fwrite(header, 1, (size_t)length, file);
    fwrite(data, sizeof(float), (size_t)(rows * dims), file);
    fclose(file);
    rec_table *copy = NULL;
    OK(rec_table_open(npy, NULL, &copy));
    const float *copy_data = NULL;
    OK(rec_table_data(copy, &copy_data));
    CHECK(copy_data && memcmp(copy_data, data, sizeof(float) * (size_t)(rows * dims)) == 0, ".npy copy differs");
    /* Search the mapped table: same as the brute force on its values. */
    rec_index *index = NULL;
    OK(rec_index_create(table, REC_METRIC_COSINE, &index));
    int64_t ids[10], expected[10];
    float scores[10];
    double expected_scores[10];
    OK(rec_index_search_one(index, data + 17 * dims, dims, 10, NULL, 0, NULL, 0, ids, scores, NULL));
    reference_search(REC_METRIC_COSINE, data, rows, dims, data + 17 * dims, 10, NULL, 0, 0, NULL, NULL, expected, expected_scores);
    CHECK(same_row(REC_METRIC_COSINE, data, dims, data + 17 * dims, 10, ids, scores, expected, expected_scores, 17),
          "mapped catalog: results differ from the brute force");
    CHECK(ids[0] == 17, "an item is its own nearest under cosine, got %lld", (long long)ids[0]);
    OK(rec_index_free(index));
    OK(rec_table_free(copy));
    OK(rec_table_free(table));
}

/* A model written by `recommender train`: shapes, ids, fold-in. */
static void test_model(void) {
    rec_model *model = NULL;
    OK(rec_model_open(fixture("als.rkm"), &model));
    if (!model) return;
    int64_t users = 0, items = 0, dims = 0;
    OK(rec_model_shape(model, &users, &items, &dims));
    CHECK(users == 200 && items == 120 && dims == 8, "model shape %lld users, %lld items, %lld dims", (long long)users,
          (long long)items, (long long)dims);
    int64_t index = -1;
    OK(rec_model_item_index(model, "i7", &index));
    char id[16];
    size_t length = 0;
    OK(rec_model_item_id(model, index, id, sizeof id, &length));
    CHECK(strcmp(id, "i7") == 0 && length == 2, "item id round trip: %s", id);
    FAILS(rec_model_item_id(model, index, id, 2, &length), REC_ERROR_BUFFER_TOO_SMALL, "3 are needed");
    FAILS(rec_model_item_index(model, "no-such-item", &index), REC_ERROR_NOT_FOUND, "no-such-item");
    FAILS(rec_model_user_index(model, "no-such-user", &index), REC_ERROR_NOT_FOUND, "no-such-user");

    /* Fold in user u3's training items (every generated user has items (3u + j) % 120 for j < 6):
     * implicit ALS fold-in of a training user's history gives (nearly) its trained vector. */
    int64_t user = -1;
    OK(rec_model_user_index(model, "u3", &user));
    int64_t history[6];
    for (int j = 0; j < 6; j++) {
        char name[16];
        snprintf(name, sizeof name, "i%d", (3 * 3 + j) % 120);
        OK(rec_model_item_index(model, name, &history[j]));
    }
    float folded[8];
    OK(rec_model_fold_in(model, history, NULL, 6, folded, 8));
    rec_table *user_factors = NULL;
    OK(rec_model_user_factors(model, &user_factors));
    const float *u = NULL;
    OK(rec_table_data(user_factors, &u));
    double dot = 0, a = 0, b = 0;
    for (int f = 0; f < 8; f++) {
        dot += folded[f] * u[user * 8 + f];
        a += folded[f] * folded[f];
        b += u[user * 8 + f] * u[user * 8 + f];
    }
    double cosine = dot / sqrt(a * b);
    CHECK(cosine > 0.95, "fold-in of u3's history vs its trained vector: cosine %.4f", cosine);
    FAILS(rec_model_fold_in(model, history, NULL, 6, folded, 7), REC_ERROR_DIMENSION_MISMATCH, "7 floats");
    FAILS(rec_model_fold_in(model, history, NULL, 0, folded, 8), REC_ERROR_INVALID_ARGUMENT, "empty");
    int64_t bad_history[2] = {1, 120};
    FAILS(rec_model_fold_in(model, bad_history, NULL, 2, folded, 8), REC_ERROR_INVALID_ARGUMENT, "items[1] = 120");
    float nan_weights[2] = {1, NAN};
    int64_t good_history[2] = {1, 2};
    FAILS(rec_model_fold_in(model, good_history, nan_weights, 2, folded, 8), REC_ERROR_INVALID_ARGUMENT, "non-finite");

    /* Rank with the item factors: the user's trained vector recommends through an index. */
    rec_table *item_factors = NULL;
    rec_index *index_items = NULL;
    OK(rec_model_item_factors(model, &item_factors));
    OK(rec_model_free(model)); /* tables taken from it stay valid */
    OK(rec_index_create(item_factors, REC_METRIC_INNER_PRODUCT, &index_items));
    int64_t ids[5];
    float scores[5];
    OK(rec_index_search_one(index_items, u + user * 8, 8, 5, NULL, 0, NULL, 1, ids, scores, NULL));
    const float *v = NULL;
    OK(rec_table_data(item_factors, &v));
    int64_t expected[5];
    double expected_scores[5];
    reference_search(REC_METRIC_INNER_PRODUCT, v, items, 8, u + user * 8, 5, NULL, 0, 0, NULL, NULL, expected, expected_scores);
    int same = 1;
    for (int r = 0; r < 5; r++) same &= ids[r] == expected[r] && fabs(scores[r] - expected_scores[r]) < 1e-4;
    CHECK(same, "model ranking differs from the brute force");
    OK(rec_index_free(index_items));
    OK(rec_table_free(item_factors));
    OK(rec_table_free(user_factors));
}

/* A text index written by `recommender text index` over documents.csv. */
static void test_text(void) {
    rec_text_index *text = NULL;
    OK(rec_text_open(fixture("text.rkm"), &text));
    if (!text) return;
    int64_t documents = 0;
    OK(rec_text_count(text, &documents));
    CHECK(documents == 6, "text index has %lld documents", (long long)documents);
    int64_t rows[3];
    float scores[3];
    int32_t count = 0;
    OK(rec_text_query(text, "a wizard school of magic", 3, REC_TEXT_TFIDF, rows, scores, &count));
    char id[32], label[64];
    size_t id_length = 0, label_length = 0;
    OK(rec_text_document(text, rows[0], id, sizeof id, &id_length, label, sizeof label, &label_length));
    CHECK(count >= 1 && strcmp(id, "d2") == 0 && strcmp(label, "Wizards") == 0, "best match for the wizard query: %s (%s)", id, label);
    CHECK(scores[0] > 0 && scores[0] <= 1.0001f, "cosine score %g", scores[0]);
    OK(rec_text_similar(text, "d5", 3, REC_TEXT_TFIDF, rows, scores, &count));
    int never_itself = 1;
    for (int r = 0; r < count; r++) {
        OK(rec_text_document(text, rows[r], id, sizeof id, NULL, NULL, 0, NULL));
        never_itself &= strcmp(id, "d5") != 0;
    }
    CHECK(never_itself, "more like d5 returned d5");
    OK(rec_text_document(text, rows[0], id, sizeof id, NULL, NULL, 0, NULL));
    CHECK(strcmp(id, "d6") == 0, "more like d5 (space ships) should start with d6 (space stations), got %s", id);
    FAILS(rec_text_document(text, 0, id, 1, &id_length, NULL, 0, NULL), REC_ERROR_BUFFER_TOO_SMALL, "id holds 1 bytes");
    CHECK(id_length == 2, "id_length reported on a too-small buffer: %zu", id_length);
    FAILS(rec_text_document(text, 6, id, sizeof id, NULL, NULL, 0, NULL), REC_ERROR_INVALID_ARGUMENT, "row 6");
    FAILS(rec_text_query(text, "zzzz qqqq", 3, REC_TEXT_TFIDF, rows, scores, &count), REC_ERROR_NOT_FOUND, "zzzz qqqq");
    FAILS(rec_text_query(text, "wizard", 3, REC_TEXT_LSI, rows, scores, &count), REC_ERROR_NOT_FOUND, "lsi");
    FAILS(rec_text_query(text, "wizard", 0, REC_TEXT_TFIDF, rows, scores, &count), REC_ERROR_INVALID_ARGUMENT, "k must be at least 1");
    FAILS(rec_text_query(text, "wizard", 3, (rec_text_representation)7, rows, scores, &count), REC_ERROR_INVALID_ARGUMENT,
          "unknown representation 7");
    FAILS(rec_text_similar(text, "nope", 3, REC_TEXT_TFIDF, rows, scores, &count), REC_ERROR_NOT_FOUND, "nope");
    OK(rec_text_free(text));
}

static void *other_thread_error(void *unused) {
    (void)unused;
    /* A fresh thread has no error yet, whatever failed on the main thread. */
    const char *before = rec_last_error();
    int fresh = before != NULL && before[0] == '\0';
    rec_index_search(NULL, NULL, 0, 0, 1, NULL, 0, NULL, NULL, NULL);
    int own = strstr(rec_last_error(), "index is NULL") != NULL;
    return (void *)(intptr_t)(fresh && own);
}

static void test_errors(void) {
    rec_table *table = NULL;
    rec_index *index = NULL;
    FAILS(rec_table_open(fixture("does-not-exist.rkm"), NULL, &table), REC_ERROR_IO, "does-not-exist.rkm");
    CHECK(table == NULL, "a failed open must not set its out-parameter");
    FAILS(rec_table_open(fixture("garbage.rkm"), NULL, &table), REC_ERROR_FORMAT, "garbage.rkm");
    FAILS(rec_table_open(fixture("catalog.rkm"), "no-such-section", &table), REC_ERROR_FORMAT, "no-such-section");
    FAILS(rec_model_open(fixture("catalog.rkm"), NULL), REC_ERROR_NULL_ARGUMENT, "model is NULL");
    rec_model *model = NULL;
    FAILS(rec_model_open(fixture("garbage.rkm"), &model), REC_ERROR_FORMAT, "garbage.rkm");
    FAILS(rec_model_open(NULL, &model), REC_ERROR_NULL_ARGUMENT, "path is NULL");
    rec_text_index *text = NULL;
    FAILS(rec_text_open(fixture("als.rkm"), &text), REC_ERROR_FORMAT, "als.rkm");
    FAILS(rec_table_wrap(NULL, 3, 4, &table), REC_ERROR_NULL_ARGUMENT, "data is NULL");
    float values[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    FAILS(rec_table_wrap(values, -1, 4, &table), REC_ERROR_INVALID_ARGUMENT, "rows must be");
    FAILS(rec_table_wrap(values, 3, 0, &table), REC_ERROR_INVALID_ARGUMENT, "dimensions must be at least 1");
    FAILS(rec_table_shape(NULL, NULL, NULL), REC_ERROR_NULL_ARGUMENT, "table is NULL");

    /* Index creation: empty catalog, NaN item, unknown metric. */
    OK(rec_table_wrap(values, 0, 4, &table));
    FAILS(rec_index_create(table, REC_METRIC_INNER_PRODUCT, &index), REC_ERROR_INVALID_ARGUMENT, "empty");
    OK(rec_table_free(table));
    values[6] = NAN;
    OK(rec_table_wrap(values, 3, 4, &table));
    FAILS(rec_index_create(table, REC_METRIC_INNER_PRODUCT, &index), REC_ERROR_INVALID_ARGUMENT, "item 1");
    values[6] = 7;
    FAILS(rec_index_create(table, (rec_metric)9, &index), REC_ERROR_INVALID_ARGUMENT, "unknown metric 9");
    FAILS(rec_index_create(NULL, REC_METRIC_COSINE, &index), REC_ERROR_NULL_ARGUMENT, "items is NULL");
    OK(rec_index_create(table, REC_METRIC_COSINE, &index));
    OK(rec_table_free(table));

    /* Searches. */
    float query[4] = {1, 0, 0, 0}, zero[4] = {0, 0, 0, 0}, nan_query[4] = {1, NAN, 0, 0};
    int64_t ids[6];
    float scores[6];
    FAILS(rec_index_search(index, query, 1, 4, 0, NULL, 0, ids, scores, NULL), REC_ERROR_INVALID_ARGUMENT, "k must be at least 1, got 0");
    FAILS(rec_index_search(index, query, 1, 4, -3, NULL, 0, ids, scores, NULL), REC_ERROR_INVALID_ARGUMENT, "got -3");
    FAILS(rec_index_search(index, query, 1, 3, 2, NULL, 0, ids, scores, NULL), REC_ERROR_DIMENSION_MISMATCH, "3 dimensions");
    FAILS(rec_index_search_one(index, query, 5, 2, NULL, 0, NULL, 0, ids, scores, NULL), REC_ERROR_DIMENSION_MISMATCH, "catalog 4");
    FAILS(rec_index_search(NULL, query, 1, 4, 2, NULL, 0, ids, scores, NULL), REC_ERROR_NULL_ARGUMENT, "index is NULL");
    FAILS(rec_index_search(index, NULL, 1, 4, 2, NULL, 0, ids, scores, NULL), REC_ERROR_NULL_ARGUMENT, "queries is NULL");
    FAILS(rec_index_search(index, query, 1, 4, 2, NULL, 0, NULL, scores, NULL), REC_ERROR_NULL_ARGUMENT, "ids is NULL");
    FAILS(rec_index_search(index, query, 1, 4, 2, NULL, 0, ids, NULL, NULL), REC_ERROR_NULL_ARGUMENT, "scores is NULL");
    FAILS(rec_index_search(index, query, -1, 4, 2, NULL, 0, ids, scores, NULL), REC_ERROR_INVALID_ARGUMENT, "query_count");
    FAILS(rec_index_search(index, query, 1, 4, 2, NULL, -2, ids, scores, NULL), REC_ERROR_INVALID_ARGUMENT, "threads");
    FAILS(rec_index_search(index, zero, 1, 4, 2, NULL, 0, ids, scores, NULL), REC_ERROR_INVALID_ARGUMENT, "zero vector");
    FAILS(rec_index_search(index, nan_query, 1, 4, 2, NULL, 0, ids, scores, NULL), REC_ERROR_INVALID_ARGUMENT, "dimension 1");
    int64_t offsets[2] = {0, 1}, bad_ids[1] = {3}, decreasing[2] = {0, -1};
    rec_filter out_of_range = {offsets, bad_ids, NULL, NULL}, half = {offsets, NULL, NULL, NULL}, backwards = {decreasing, bad_ids, NULL, NULL};
    FAILS(rec_index_search(index, query, 1, 4, 2, &out_of_range, 0, ids, scores, NULL), REC_ERROR_INVALID_ARGUMENT, "exclusion_ids[0] = 3");
    FAILS(rec_index_search(index, query, 1, 4, 2, &half, 0, ids, scores, NULL), REC_ERROR_NULL_ARGUMENT, "exclusion_ids is NULL");
    FAILS(rec_index_search(index, query, 1, 4, 2, &backwards, 0, ids, scores, NULL), REC_ERROR_INVALID_ARGUMENT, "must not decrease");
    FAILS(rec_index_search_one(index, query, 4, 2, bad_ids, 1, NULL, 0, ids, scores, NULL), REC_ERROR_INVALID_ARGUMENT, "outside the catalog");
    FAILS(rec_index_search_one(index, query, 4, 2, NULL, 2, NULL, 0, ids, scores, NULL), REC_ERROR_NULL_ARGUMENT, "excluded is NULL");
    /* Zero queries is not an error, and writes nothing. */
    ids[0] = 12345;
    OK(rec_index_search(index, query, 0, 4, 2, NULL, 0, ids, scores, NULL));
    CHECK(ids[0] == 12345, "an empty batch wrote results");
    /* The message is per thread. */
    pthread_t thread;
    void *result = NULL;
    pthread_create(&thread, NULL, other_thread_error, NULL);
    pthread_join(thread, &result);
    CHECK(result == (void *)1, "the error message is not thread-local");
    CHECK(strstr(rec_last_error(), "excluded is NULL") != NULL, "another thread's error replaced this one's: %s", rec_last_error());
    OK(rec_index_free(index));
    OK(rec_index_free(NULL));
    OK(rec_table_free(NULL));
    OK(rec_model_free(NULL));
    OK(rec_text_free(NULL));
}

/* ---- Many threads searching one index ---- */

typedef struct {
    const rec_index *index;
    const float *queries;
    int64_t nq, d;
    int k, threads, repeats, single;
    const int64_t *expected_ids;
    const float *expected_scores;
    int mismatches, errors;
} worker;

static void *search_worker(void *argument) {
    worker *w = argument;
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)(w->nq * w->k));
    float *scores = malloc(sizeof(float) * (size_t)(w->nq * w->k));
    for (int r = 0; r < w->repeats; r++) {
        if (w->single) {
            for (int64_t q = 0; q < w->nq; q++)
                if (rec_index_search_one(w->index, w->queries + q * w->d, w->d, w->k, NULL, 0, NULL, w->threads, ids + q * w->k,
                                         scores + q * w->k, NULL) != REC_OK)
                    w->errors++;
        } else if (rec_index_search(w->index, w->queries, w->nq, w->d, w->k, NULL, w->threads, ids, scores, NULL) != REC_OK) {
            w->errors++;
        }
        if (memcmp(ids, w->expected_ids, sizeof(int64_t) * (size_t)(w->nq * w->k)) != 0 ||
            memcmp(scores, w->expected_scores, sizeof(float) * (size_t)(w->nq * w->k)) != 0)
            w->mismatches++;
    }
    free(ids);
    free(scores);
    return NULL;
}

static void test_threads(void) {
    const int64_t n = 20000, d = 32, nq = 64;
    const int k = 10, workers = 8;
    float *items = random_table(n, d), *queries = random_table(nq, d);
    rec_table *table = NULL;
    rec_index *index = NULL;
    OK(rec_table_wrap(items, n, d, &table));
    OK(rec_index_create(table, REC_METRIC_SQUARED_EUCLIDEAN, &index));
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)(nq * k));
    float *scores = malloc(sizeof(float) * (size_t)(nq * k));
    OK(rec_index_search(index, queries, nq, d, k, NULL, 1, ids, scores, NULL));
    pthread_t threads[8];
    worker work[8];
    for (int t = 0; t < workers; t++) {
        work[t] = (worker){index, queries, nq, d, k, 1 + t % 2, 4, t % 4 == 3, ids, scores, 0, 0};
        pthread_create(&threads[t], NULL, search_worker, &work[t]);
    }
    int mismatches = 0, errors = 0;
    for (int t = 0; t < workers; t++) {
        pthread_join(threads[t], NULL);
        mismatches += work[t].mismatches;
        errors += work[t].errors;
    }
    CHECK(errors == 0 && mismatches == 0, "%d threads on one index: %d errors, %d results differing from sequential", workers, errors,
          mismatches);
    free(ids);
    free(scores);
    OK(rec_index_free(index));
    OK(rec_table_free(table));
    free(items);
    free(queries);
}

/* ---- The leak loop (valgrind) ---- */

static int leak_loop(int iterations) {
    const int64_t n = 500, d = 16, nq = 20;
    const int k = 5;
    float *items = random_table(n, d), *queries = random_table(nq, d);
    int64_t ids[20 * 5];
    float scores[20 * 5];
    int errors = 0;
    for (int i = 0; i < iterations; i++) {
        rec_table *mapped = NULL, *wrapped = NULL;
        rec_index *index = NULL, *cosine = NULL;
        rec_model *model = NULL;
        rec_text_index *text = NULL;
        errors += rec_table_open(fixture("catalog.rkm"), NULL, &mapped) != REC_OK;
        errors += rec_index_create(mapped, REC_METRIC_COSINE, &cosine) != REC_OK;
        const float *data = NULL;
        errors += rec_table_data(mapped, &data) != REC_OK;
        errors += rec_index_search(cosine, data, nq, d, k, NULL, 2, ids, scores, NULL) != REC_OK;
        errors += rec_table_wrap(items, n, d, &wrapped) != REC_OK;
        errors += rec_index_create(wrapped, REC_METRIC_INNER_PRODUCT, &index) != REC_OK;
        int64_t offsets[21], excluded[20];
        for (int q = 0; q <= 20; q++) offsets[q] = q;
        for (int q = 0; q < 20; q++) excluded[q] = q;
        rec_filter filter = {offsets, excluded, NULL, NULL};
        errors += rec_index_search(index, queries, nq, d, k, &filter, 1, ids, scores, NULL) != REC_OK;
        errors += rec_index_search_one(index, queries, d, k, excluded, 3, NULL, 1, ids, scores, NULL) != REC_OK;
        /* Failing calls allocate messages: they must not leak either. */
        errors += rec_index_search(index, queries, nq, d, 0, NULL, 1, ids, scores, NULL) == REC_OK;
        errors += rec_table_open(fixture("does-not-exist.rkm"), NULL, &mapped) == REC_OK;
        errors += rec_model_open(fixture("als.rkm"), &model) != REC_OK;
        float vector[8];
        int64_t history[3] = {1, 2, 3};
        errors += rec_model_fold_in(model, history, NULL, 3, vector, 8) != REC_OK;
        errors += rec_text_open(fixture("text.rkm"), &text) != REC_OK;
        int64_t rows[3];
        errors += rec_text_query(text, "wizard magic", 3, REC_TEXT_TFIDF, rows, scores, NULL) != REC_OK;
        rec_text_free(text);
        rec_model_free(model);
        rec_index_free(index);
        rec_index_free(cosine);
        rec_table_free(wrapped);
        rec_table_free(mapped);
    }
    free(items);
    free(queries);
    printf("leak loop: %d iterations, %d unexpected statuses\n", iterations, errors);
    return errors == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--leak-loop") == 0) {
        fixtures = argv[3];
        return leak_loop(atoi(argv[2]));
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIXTURES_DIR | --leak-loop N FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    fixtures = argv[1];
    if (rec_check_abi(REC_ABI_VERSION) != REC_OK) {
        fprintf(stderr, "%s\n", rec_last_error());
        return 1;
    }
    test_version_and_build_info();
    test_search_matches_brute_force();
    test_exclusions_and_filters();
    test_files();
    test_model();
    test_text();
    test_errors();
    test_threads();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
