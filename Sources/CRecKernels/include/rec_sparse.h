// Sparse and embedding-training kernels behind RecKernels: sparse × dense products, the fused
// A·Aᵀ·Q product of randomized SVD, inverted-index top-K scoring and skip-gram training with
// negative sampling. Reached only through RecKernels' internal wrappers; none is public API.
#ifndef REC_SPARSE_H
#define REC_SPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "rec_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Offers `score` for `id` to `heap` unless `filter` (which may be NULL) rules the id out.
void rk_topk_consider(rk_topk *heap, const rk_fold_filter *filter, float score, int32_t id);

/// out[r, :] = sum over row r's entries (c, v) of v * dense[c, :] for rows first_row ..< end_row
/// of a CSR matrix (offsets indexed by absolute row); `out` points at row first_row's output
/// and is overwritten. `dense` and `out` are row-major with `dims` columns.
void rk_csr_dense_multiply(int isa, size_t first_row, size_t end_row, const ptrdiff_t *offsets,
                           const int32_t *indices, const float *values, const float *dense,
                           size_t dims, float *out);

/// Adds A·(Aᵀ·Q) restricted to columns first_column ..< end_column of A into `y` (rows × dims),
/// given Aᵀ in CSR form (its rows are A's columns). Each column's dims-vector Aᵀ[c]·Q lives in
/// `scratch` (dims floats) only, so the columns × dims product is never stored.
void rk_sparse_gram_apply(int isa, size_t first_column, size_t end_column,
                          const ptrdiff_t *offsets, const int32_t *indices, const float *values,
                          const float *q, size_t dims, float *y, float *scratch);

/// Scores one sparse query (terms with weights) against documents through their postings (the
/// transposed document × term matrix in CSR form) and offers every document that shares a term
/// to `heap` with key = dot · scale[doc] (scale may be NULL). `accumulator` (documents floats)
/// must be zero and `touched` (documents flags) false on entry; both are left so on return.
/// `touched_ids` holds room for every document.
void rk_sparse_topk(rk_topk *heap, const rk_fold_filter *filter, size_t query_count,
                    const int32_t *query_terms, const float *query_weights,
                    const ptrdiff_t *posting_offsets, const int32_t *posting_documents,
                    const float *posting_values, const float *scale, float *accumulator,
                    uint8_t *touched, int32_t *touched_ids);

/// One worker's share of one epoch of skip-gram training with negative sampling (word2vec's
/// SGNS, as gensim's fast_sentence_sg_neg): Hogwild updates of `input` and `output` shared
/// with the other workers.
typedef struct {
    float *input;                    ///< vocabulary × dims: the word (item) vectors
    float *output;                   ///< vocabulary × dims: the negative-sampling weights
    size_t dims;
    const int32_t *corpus;           ///< vocabulary ids, sentence after sentence
    const ptrdiff_t *sentence_offsets;
    size_t first_sentence, end_sentence;
    const uint32_t *keep_threshold;  ///< per id: kept when a 32-bit random draw is below it
    const int32_t *negative_table;   ///< ids drawn in proportion to count^0.75
    size_t negative_table_size;
    int32_t window, negatives;
    float alpha_start, alpha_end;
    int64_t total_words;             ///< raw words over all epochs: alpha decays linearly over them
    int64_t *words_done;             ///< shared progress counter (updated atomically)
    uint64_t seed;
} rk_sgns_job;

/// Trains on the job's sentences; returns the words actually trained on (after subsampling).
int64_t rk_sgns_train(int isa, const rk_sgns_job *job);

#ifdef __cplusplus
}
#endif

#endif
