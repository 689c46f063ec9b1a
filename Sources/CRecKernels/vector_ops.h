// Vector helpers shared by the kernels: dot products and axpy at each instruction set, as
// static inline functions with per-function target attributes.
#ifndef REC_VECTOR_OPS_H
#define REC_VECTOR_OPS_H

#include <stddef.h>

#if defined(__x86_64__) || defined(__i386__)
#ifndef RK_X86
#define RK_X86 1
#endif
#include <immintrin.h>
#endif

static inline float dot_scalar(const float *a, const float *b, size_t k) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= k; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < k; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

#ifdef RK_X86
__attribute__((target("avx512f"))) static inline float dot_avx512(const float *a, const float *b,
                                                                  size_t k) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= k; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= k; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < k) {
        const __mmask16 tail = (__mmask16)((1u << (k - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, a + i), _mm512_maskz_loadu_ps(tail, b + i),
                             s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx2,fma"))) static inline float dot_avx2(const float *a, const float *b,
                                                                 size_t k) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= k; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= k; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    __m256 s = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float total = _mm_cvtss_f32(h);
    for (; i < k; i++) total += a[i] * b[i];
    return total;
}
#endif


static inline void axpy_scalar(float alpha, const float *x, float *y, size_t k) {
    for (size_t i = 0; i < k; i++) y[i] += alpha * x[i];
}

#ifdef RK_X86
__attribute__((target("avx512f"))) static inline void axpy_avx512(float alpha, const float *x, float *y,
                                                                  size_t k) {
    const __m512 a = _mm512_set1_ps(alpha);
    size_t i = 0;
    for (; i + 16 <= k; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < k) {
        const __mmask16 tail = (__mmask16)((1u << (k - i)) - 1);
        _mm512_mask_storeu_ps(y + i, tail, _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(tail, x + i),
                                                          _mm512_maskz_loadu_ps(tail, y + i)));
    }
}

__attribute__((target("avx2,fma"))) static inline void axpy_avx2(float alpha, const float *x, float *y,
                                                                 size_t k) {
    const __m256 a = _mm256_set1_ps(alpha);
    size_t i = 0;
    for (; i + 8 <= k; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < k; i++) y[i] += alpha * x[i];
}
#endif

/// out = G · p for symmetric G (d × d), as a combination of G's rows: out = Σ_j p[j]·G[j].
static inline void symv_scalar(size_t d, const float *g, const float *p, float *out) {
    for (size_t f = 0; f < d; f++) out[f] = 0;
    for (size_t j = 0; j < d; j++) axpy_scalar(p[j], g + j * d, out, d);
}

#ifdef RK_X86
/// The same with 64 outputs at a time held in four registers across all d rows.
__attribute__((target("avx512f"))) static inline void symv_avx512(size_t d, const float *g, const float *p,
                                                                  float *out) {
    for (size_t c = 0; c < d; c += 64) {
        const size_t width = d - c < 64 ? d - c : 64;
        __mmask16 m[4];
        for (int v = 0; v < 4; v++) {
            const size_t lanes = width > (size_t)v * 16 ? (width - (size_t)v * 16 > 16 ? 16 : width - (size_t)v * 16) : 0;
            m[v] = (__mmask16)((1u << lanes) - 1);
        }
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < d; j++) {
            const __m512 b = _mm512_set1_ps(p[j]);
            const float *row = g + j * d + c;
            a0 = _mm512_fmadd_ps(b, _mm512_maskz_loadu_ps(m[0], row), a0);
            a1 = _mm512_fmadd_ps(b, _mm512_maskz_loadu_ps(m[1], row + 16), a1);
            a2 = _mm512_fmadd_ps(b, _mm512_maskz_loadu_ps(m[2], row + 32), a2);
            a3 = _mm512_fmadd_ps(b, _mm512_maskz_loadu_ps(m[3], row + 48), a3);
        }
        _mm512_mask_storeu_ps(out + c, m[0], a0);
        _mm512_mask_storeu_ps(out + c + 16, m[1], a1);
        _mm512_mask_storeu_ps(out + c + 32, m[2], a2);
        _mm512_mask_storeu_ps(out + c + 48, m[3], a3);
    }
}

__attribute__((target("avx2,fma"))) static inline void symv_avx2(size_t d, const float *g, const float *p,
                                                                 float *out) {
    size_t c = 0;
    for (; c + 32 <= d; c += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < d; j++) {
            const __m256 b = _mm256_set1_ps(p[j]);
            const float *row = g + j * d + c;
            a0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(row), a0);
            a1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(row + 8), a1);
            a2 = _mm256_fmadd_ps(b, _mm256_loadu_ps(row + 16), a2);
            a3 = _mm256_fmadd_ps(b, _mm256_loadu_ps(row + 24), a3);
        }
        _mm256_storeu_ps(out + c, a0);
        _mm256_storeu_ps(out + c + 8, a1);
        _mm256_storeu_ps(out + c + 16, a2);
        _mm256_storeu_ps(out + c + 24, a3);
    }
    for (; c < d; c++) {
        float s = 0;
        for (size_t j = 0; j < d; j++) s += p[j] * g[j * d + c];
        out[c] = s;
    }
}
#endif

#endif
