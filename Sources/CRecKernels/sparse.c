// Sparse kernels: CSR × dense, the fused A·Aᵀ·Q of randomized SVD, and inverted-index top-K.
// The dense inner loops are short axpys, written once per instruction-set level and selected by
// the `isa` argument (see rk_best_isa).
#include "rec_sparse.h"

#include <string.h>

#include "vector_ops.h"

// Instantiates a function body once per level: BODY uses DOT and AXPY.
#define RK_CSR_MULTIPLY_BODY(AXPY)                                                      \
    for (size_t r = first_row; r < end_row; r++) {                                      \
        float *o = out + (r - first_row) * dims;                                        \
        memset(o, 0, dims * sizeof(float));                                             \
        for (ptrdiff_t p = offsets[r]; p < offsets[r + 1]; p++)                         \
            AXPY(values[p], dense + (size_t)indices[p] * dims, o, dims);                \
    }

#define RK_GRAM_APPLY_BODY(AXPY)                                                        \
    for (size_t c = first_column; c < end_column; c++) {                                \
        const ptrdiff_t begin = offsets[c], end = offsets[c + 1];                       \
        if (begin == end) continue;                                                     \
        memset(scratch, 0, dims * sizeof(float));                                       \
        for (ptrdiff_t p = begin; p < end; p++)                                         \
            AXPY(values[p], q + (size_t)indices[p] * dims, scratch, dims);              \
        for (ptrdiff_t p = begin; p < end; p++)                                         \
            AXPY(values[p], scratch, y + (size_t)indices[p] * dims, dims);              \
    }

#ifdef RK_X86
__attribute__((target("avx512f"))) static void csr_multiply_avx512(
    size_t first_row, size_t end_row, const ptrdiff_t *offsets, const int32_t *indices,
    const float *values, const float *dense, size_t dims, float *out) {
    RK_CSR_MULTIPLY_BODY(axpy_avx512)
}
__attribute__((target("avx2,fma"))) static void csr_multiply_avx2(
    size_t first_row, size_t end_row, const ptrdiff_t *offsets, const int32_t *indices,
    const float *values, const float *dense, size_t dims, float *out) {
    RK_CSR_MULTIPLY_BODY(axpy_avx2)
}
__attribute__((target("avx512f"))) static void gram_apply_avx512(
    size_t first_column, size_t end_column, const ptrdiff_t *offsets, const int32_t *indices,
    const float *values, const float *q, size_t dims, float *y, float *scratch) {
    RK_GRAM_APPLY_BODY(axpy_avx512)
}
__attribute__((target("avx2,fma"))) static void gram_apply_avx2(
    size_t first_column, size_t end_column, const ptrdiff_t *offsets, const int32_t *indices,
    const float *values, const float *q, size_t dims, float *y, float *scratch) {
    RK_GRAM_APPLY_BODY(axpy_avx2)
}
#endif

void rk_csr_dense_multiply(int isa, size_t first_row, size_t end_row, const ptrdiff_t *offsets,
                           const int32_t *indices, const float *values, const float *dense,
                           size_t dims, float *out) {
#ifdef RK_X86
    if (isa >= RK_ISA_AVX512) {
        csr_multiply_avx512(first_row, end_row, offsets, indices, values, dense, dims, out);
        return;
    }
    if (isa >= RK_ISA_AVX2) {
        csr_multiply_avx2(first_row, end_row, offsets, indices, values, dense, dims, out);
        return;
    }
#endif
    (void)isa;
    RK_CSR_MULTIPLY_BODY(axpy_scalar)
}

void rk_sparse_gram_apply(int isa, size_t first_column, size_t end_column,
                          const ptrdiff_t *offsets, const int32_t *indices, const float *values,
                          const float *q, size_t dims, float *y, float *scratch) {
#ifdef RK_X86
    if (isa >= RK_ISA_AVX512) {
        gram_apply_avx512(first_column, end_column, offsets, indices, values, q, dims, y, scratch);
        return;
    }
    if (isa >= RK_ISA_AVX2) {
        gram_apply_avx2(first_column, end_column, offsets, indices, values, q, dims, y, scratch);
        return;
    }
#endif
    (void)isa;
    RK_GRAM_APPLY_BODY(axpy_scalar)
}

void rk_sparse_topk(rk_topk *heap, const rk_fold_filter *filter, size_t query_count,
                    const int32_t *query_terms, const float *query_weights,
                    const ptrdiff_t *posting_offsets, const int32_t *posting_documents,
                    const float *posting_values, const float *scale, float *accumulator,
                    uint8_t *touched, int32_t *touched_ids) {
    // Scatter: one pass over each query term's postings into a dense accumulator, remembering
    // which documents were reached, so the gather below costs what the query touched, not the
    // corpus size.
    size_t reached = 0;
    for (size_t t = 0; t < query_count; t++) {
        const int32_t term = query_terms[t];
        const float weight = query_weights[t];
        for (ptrdiff_t p = posting_offsets[term]; p < posting_offsets[term + 1]; p++) {
            const int32_t document = posting_documents[p];
            accumulator[document] += weight * posting_values[p];
            if (!touched[document]) {
                touched[document] = 1;
                touched_ids[reached++] = document;
            }
        }
    }
    for (size_t i = 0; i < reached; i++) {
        const int32_t document = touched_ids[i];
        const float key = scale ? accumulator[document] * scale[document] : accumulator[document];
        accumulator[document] = 0;
        touched[document] = 0;
        rk_topk_consider(heap, filter, key, document);
    }
}
