// Scans of compressed item tables (int8 with a per-row scale, bf16) fused with a bounded top-K of
// lower bounds, and the exact float32 re-scoring of the candidates they leave. The scan computes
// an approximate key per item and a rigorous bound on |float32 key − approximate key| (from the
// per-row radius the caller derived from the quantization error and float rounding); an item is a
// candidate when its upper bound can still reach the K-th best lower bound seen so far. Codes are
// stored in panels of RK_CQ_PANEL rows, dimension-major inside a panel, so one vector load holds
// one dimension of 16 items and the products need no horizontal sums.
#include "rec_kernels.h"
#include "vector_ops.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#ifndef RK_X86
#define RK_X86 1
#endif
#include <immintrin.h>
#endif

enum { PANEL = RK_CQ_PANEL, GROUP = 4 };

// MARK: - Products of up to GROUP queries with one panel

static void products_scalar(int kind, const void *panel, size_t d, const float *const *q, size_t nq,
                            float *out) {
    for (size_t i = 0; i < nq; i++) {
        float acc[PANEL] = {0};
        for (size_t kk = 0; kk < d; kk++) {
            const float qv = q[i][kk];
            for (size_t jj = 0; jj < PANEL; jj++) {
                float x;
                if (kind == RK_CODE_INT8) {
                    x = (float)((const int8_t *)panel)[kk * PANEL + jj];
                } else {
                    const uint32_t bits = (uint32_t)((const uint16_t *)panel)[kk * PANEL + jj] << 16;
                    memcpy(&x, &bits, 4);
                }
                acc[jj] += qv * x;
            }
        }
        memcpy(out + i * PANEL, acc, sizeof acc);
    }
}

#ifdef RK_X86
__attribute__((target("avx512f"))) static inline __m512 load16_avx512(int kind, const void *panel, size_t kk) {
    if (kind == RK_CODE_INT8)
        return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)((const int8_t *)panel + kk * PANEL))));
    const __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)panel + kk * PANEL));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

__attribute__((target("avx512f"))) static void products_avx512(int kind, const void *panel, size_t d,
                                                               const float *const *q, size_t nq, float *out) {
    if (nq == 1) {
        // Four independent chains over the dimensions hide the FMA latency.
        const float *q0 = q[0];
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        size_t kk = 0;
        for (; kk + 4 <= d; kk += 4) {
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(q0[kk]), load16_avx512(kind, panel, kk), a0);
            a1 = _mm512_fmadd_ps(_mm512_set1_ps(q0[kk + 1]), load16_avx512(kind, panel, kk + 1), a1);
            a2 = _mm512_fmadd_ps(_mm512_set1_ps(q0[kk + 2]), load16_avx512(kind, panel, kk + 2), a2);
            a3 = _mm512_fmadd_ps(_mm512_set1_ps(q0[kk + 3]), load16_avx512(kind, panel, kk + 3), a3);
        }
        for (; kk < d; kk++) a0 = _mm512_fmadd_ps(_mm512_set1_ps(q0[kk]), load16_avx512(kind, panel, kk), a0);
        _mm512_storeu_ps(out, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        return;
    }
    // GROUP queries share each converted load; missing ones repeat the last and are not stored.
    const float *q0 = q[0], *q1 = q[nq > 1 ? 1 : 0], *q2 = q[nq > 2 ? 2 : nq - 1], *q3 = q[nq > 3 ? 3 : nq - 1];
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t kk = 0; kk < d; kk++) {
        const __m512 x = load16_avx512(kind, panel, kk);
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(q0[kk]), x, a0);
        a1 = _mm512_fmadd_ps(_mm512_set1_ps(q1[kk]), x, a1);
        a2 = _mm512_fmadd_ps(_mm512_set1_ps(q2[kk]), x, a2);
        a3 = _mm512_fmadd_ps(_mm512_set1_ps(q3[kk]), x, a3);
    }
    const __m512 acc[4] = {a0, a1, a2, a3};
    for (size_t i = 0; i < nq; i++) _mm512_storeu_ps(out + i * PANEL, acc[i]);
}

__attribute__((target("avx2,fma"))) static inline __m256 load8_avx2(int kind, const void *panel, size_t kk, size_t half) {
    if (kind == RK_CODE_INT8)
        return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((const int8_t *)panel + kk * PANEL + half))));
    const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)panel + kk * PANEL + half));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

__attribute__((target("avx2,fma"))) static void products_avx2(int kind, const void *panel, size_t d,
                                                              const float *const *q, size_t nq, float *out) {
    if (nq == 1) {
        const float *q0 = q[0];
        __m256 l0 = _mm256_setzero_ps(), l1 = l0, h0 = l0, h1 = l0;
        size_t kk = 0;
        for (; kk + 2 <= d; kk += 2) {
            const __m256 b0 = _mm256_set1_ps(q0[kk]), b1 = _mm256_set1_ps(q0[kk + 1]);
            l0 = _mm256_fmadd_ps(b0, load8_avx2(kind, panel, kk, 0), l0);
            h0 = _mm256_fmadd_ps(b0, load8_avx2(kind, panel, kk, 8), h0);
            l1 = _mm256_fmadd_ps(b1, load8_avx2(kind, panel, kk + 1, 0), l1);
            h1 = _mm256_fmadd_ps(b1, load8_avx2(kind, panel, kk + 1, 8), h1);
        }
        for (; kk < d; kk++) {
            const __m256 b0 = _mm256_set1_ps(q0[kk]);
            l0 = _mm256_fmadd_ps(b0, load8_avx2(kind, panel, kk, 0), l0);
            h0 = _mm256_fmadd_ps(b0, load8_avx2(kind, panel, kk, 8), h0);
        }
        _mm256_storeu_ps(out, _mm256_add_ps(l0, l1));
        _mm256_storeu_ps(out + 8, _mm256_add_ps(h0, h1));
        return;
    }
    const float *q0 = q[0], *q1 = q[nq > 1 ? 1 : 0], *q2 = q[nq > 2 ? 2 : nq - 1], *q3 = q[nq > 3 ? 3 : nq - 1];
    __m256 l0 = _mm256_setzero_ps(), l1 = l0, l2 = l0, l3 = l0, h0 = l0, h1 = l0, h2 = l0, h3 = l0;
    for (size_t kk = 0; kk < d; kk++) {
        const __m256 lo = load8_avx2(kind, panel, kk, 0), hi = load8_avx2(kind, panel, kk, 8);
        __m256 b = _mm256_set1_ps(q0[kk]);
        l0 = _mm256_fmadd_ps(b, lo, l0); h0 = _mm256_fmadd_ps(b, hi, h0);
        b = _mm256_set1_ps(q1[kk]);
        l1 = _mm256_fmadd_ps(b, lo, l1); h1 = _mm256_fmadd_ps(b, hi, h1);
        b = _mm256_set1_ps(q2[kk]);
        l2 = _mm256_fmadd_ps(b, lo, l2); h2 = _mm256_fmadd_ps(b, hi, h2);
        b = _mm256_set1_ps(q3[kk]);
        l3 = _mm256_fmadd_ps(b, lo, l3); h3 = _mm256_fmadd_ps(b, hi, h3);
    }
    const __m256 lows[4] = {l0, l1, l2, l3}, highs[4] = {h0, h1, h2, h3};
    for (size_t i = 0; i < nq; i++) {
        _mm256_storeu_ps(out + i * PANEL, lows[i]);
        _mm256_storeu_ps(out + i * PANEL + 8, highs[i]);
    }
}
#endif

// MARK: - Keys, bounds and the candidate test

/// Relative slack applied to every bound, covering the rounding of the bound itself, of the key's
/// scale and offset, and of the upper and lower bounds computed from it.
#define RK_CQ_SLACK (16.0f * 5.9604645e-8f)

static inline float fold_tau(const rk_topk *h) { return h->count < h->capacity ? -INFINITY : h->scores[0]; }

/// One lane whose upper bound reached τ: filters, then candidate list and lower-bound heap.
static inline void cq_hit(rk_cq_query *s, const rk_fold_filter *f, int32_t id, float key, float bound) {
    if (rk_fold_excluded(f, id)) return;
    float upper = key + bound, lower = key - bound;
    if (!(isfinite(key) && isfinite(bound))) { upper = INFINITY; lower = -INFINITY; }
    if (upper < fold_tau(s->lower)) return;
    s->candidate_ids[s->candidate_count] = id;
    s->candidate_upper[s->candidate_count] = upper;
    s->candidate_count++;
    rk_topk_push(s->lower, lower, id);
}

static void finish_scalar(const rk_cq_table *t, size_t first_row, size_t rows, const float *products,
                          float query_norm, rk_cq_query *s, const rk_fold_filter *f) {
    for (size_t jj = 0; jj < rows; jj++) {
        const size_t r = first_row + jj;
        float key = products[jj];
        if (t->multiplier) key *= t->multiplier[r];
        if (t->offset) key += t->offset[r];
        float bound = query_norm * t->radius[r] + t->absolute;
        bound = bound * (1.0f + RK_CQ_SLACK) + RK_CQ_SLACK * fabsf(key);
        const float upper = key + bound;
        if (!(upper < fold_tau(s->lower))) cq_hit(s, f, (int32_t)r, key, bound);
    }
}

#ifdef RK_X86
__attribute__((target("avx512f"))) static void finish_avx512(const rk_cq_table *t, size_t first_row, size_t rows,
                                                             const float *products, float query_norm,
                                                             rk_cq_query *s, const rk_fold_filter *f) {
    if (rows < PANEL) { finish_scalar(t, first_row, rows, products, query_norm, s, f); return; }
    __m512 key = _mm512_loadu_ps(products);
    if (t->multiplier) key = _mm512_mul_ps(key, _mm512_loadu_ps(t->multiplier + first_row));
    if (t->offset) key = _mm512_add_ps(key, _mm512_loadu_ps(t->offset + first_row));
    __m512 bound = _mm512_fmadd_ps(_mm512_set1_ps(query_norm), _mm512_loadu_ps(t->radius + first_row), _mm512_set1_ps(t->absolute));
    bound = _mm512_fmadd_ps(bound, _mm512_set1_ps(1.0f + RK_CQ_SLACK), _mm512_mul_ps(_mm512_set1_ps(RK_CQ_SLACK), _mm512_abs_ps(key)));
    const __m512 upper = _mm512_add_ps(key, bound);
    __mmask16 hits = _mm512_cmp_ps_mask(upper, _mm512_set1_ps(fold_tau(s->lower)), _CMP_NLT_UQ);
    if (!hits) return;
    float keys[PANEL], bounds[PANEL];
    _mm512_storeu_ps(keys, key);
    _mm512_storeu_ps(bounds, bound);
    while (hits) {
        const int lane = __builtin_ctz(hits);
        hits &= (__mmask16)(hits - 1);
        cq_hit(s, f, (int32_t)(first_row + (size_t)lane), keys[lane], bounds[lane]);
    }
}

__attribute__((target("avx2,fma"))) static void finish_avx2(const rk_cq_table *t, size_t first_row, size_t rows,
                                                            const float *products, float query_norm,
                                                            rk_cq_query *s, const rk_fold_filter *f) {
    if (rows < PANEL) { finish_scalar(t, first_row, rows, products, query_norm, s, f); return; }
    const __m256 sign = _mm256_set1_ps(-0.0f), slack = _mm256_set1_ps(RK_CQ_SLACK), grow = _mm256_set1_ps(1.0f + RK_CQ_SLACK);
    const __m256 qn = _mm256_set1_ps(query_norm), absolute = _mm256_set1_ps(t->absolute);
    for (size_t half = 0; half < PANEL; half += 8) {
        const size_t r = first_row + half;
        __m256 key = _mm256_loadu_ps(products + half);
        if (t->multiplier) key = _mm256_mul_ps(key, _mm256_loadu_ps(t->multiplier + r));
        if (t->offset) key = _mm256_add_ps(key, _mm256_loadu_ps(t->offset + r));
        __m256 bound = _mm256_fmadd_ps(qn, _mm256_loadu_ps(t->radius + r), absolute);
        bound = _mm256_fmadd_ps(bound, grow, _mm256_mul_ps(slack, _mm256_andnot_ps(sign, key)));
        const __m256 upper = _mm256_add_ps(key, bound);
        int hits = _mm256_movemask_ps(_mm256_cmp_ps(upper, _mm256_set1_ps(fold_tau(s->lower)), _CMP_NLT_UQ));
        if (!hits) continue;
        float keys[8], bounds[8];
        _mm256_storeu_ps(keys, key);
        _mm256_storeu_ps(bounds, bound);
        while (hits) {
            const int lane = __builtin_ctz((unsigned)hits);
            hits &= hits - 1;
            cq_hit(s, f, (int32_t)(r + (size_t)lane), keys[lane], bounds[lane]);
        }
    }
}
#endif

void rk_cq_scan(int isa, const rk_cq_table *t, size_t first_panel, size_t end_panel, const float *queries,
                size_t query_count, const float *query_norms, rk_cq_query *states, const rk_fold_filter *filters) {
    const size_t d = t->dims, element = t->kind == RK_CODE_INT8 ? 1 : 2;
    float products[GROUP * PANEL];
    for (size_t p = first_panel; p < end_panel; p++) {
        const void *panel = (const char *)t->codes + p * PANEL * d * element;
        const size_t first_row = p * PANEL;
        if (first_row >= t->rows) break;
        const size_t rows = t->rows - first_row < PANEL ? t->rows - first_row : PANEL;
        for (size_t g = 0; g < query_count; g += GROUP) {
            const size_t nq = query_count - g < GROUP ? query_count - g : GROUP;
            const float *q[GROUP];
            for (size_t i = 0; i < nq; i++) q[i] = queries + (g + i) * d;
#ifdef RK_X86
            if (isa >= RK_ISA_AVX512) {
                products_avx512(t->kind, panel, d, q, nq, products);
                for (size_t i = 0; i < nq; i++)
                    finish_avx512(t, first_row, rows, products + i * PANEL, query_norms[g + i], states + g + i, filters + g + i);
                continue;
            }
            if (isa >= RK_ISA_AVX2) {
                products_avx2(t->kind, panel, d, q, nq, products);
                for (size_t i = 0; i < nq; i++)
                    finish_avx2(t, first_row, rows, products + i * PANEL, query_norms[g + i], states + g + i, filters + g + i);
                continue;
            }
#endif
            products_scalar(t->kind, panel, d, q, nq, products);
            for (size_t i = 0; i < nq; i++)
                finish_scalar(t, first_row, rows, products + i * PANEL, query_norms[g + i], states + g + i, filters + g + i);
        }
    }
    (void)isa;
}

// MARK: - Exact re-scoring

#ifdef RK_X86
/// The tile kernels' arithmetic for one product: one fused multiply-add per dimension, in order.
__attribute__((target("avx2,fma"))) static float chain_fma(const float *a, const float *b, size_t k) {
    float c = 0;
    for (size_t i = 0; i < k; i++) c = __builtin_fmaf(a[i], b[i], c);
    return c;
}
#endif

void rk_cq_rescore(int isa, int tile_arithmetic, const float *items, size_t dims, const float *query,
                   const int32_t *ids, size_t count, const float *scale, const float *offset, rk_topk *heap) {
    for (size_t c = 0; c < count; c++) {
        const int32_t id = ids[c];
        const float *row = items + (size_t)id * dims;
        float v;
#ifdef RK_X86
        if (isa >= RK_ISA_AVX2 && tile_arithmetic) v = chain_fma(row, query, dims);
        else if (isa >= RK_ISA_AVX512) v = dot_avx512(row, query, dims);
        else if (isa >= RK_ISA_AVX2) v = dot_avx2(row, query, dims);
        else
#endif
            v = dot_scalar(row, query, dims);
        if (scale) v *= scale[id];
        if (offset) v += offset[id];
        rk_topk_push(heap, v, id);
    }
    (void)isa;
    (void)tile_arithmetic;
}
