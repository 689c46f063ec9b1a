// Dense SIMD kernels: tile products (A·Bᵀ), matrix-vector products, norms and finiteness checks.
// Each has a portable C version and, on x86-64, AVX2+FMA and AVX-512F versions compiled with
// per-function target attributes; callers pass the level (see rk_best_isa).
#include "rec_kernels.h"
#include "vector_ops.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define RK_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

// MARK: - CPU detection

#ifdef RK_X86
static uint64_t rk_xgetbv0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}
#endif

static int rk_detect_isa(void) {
#ifdef RK_X86
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return RK_ISA_SCALAR;
    const int has_fma = (ecx >> 12) & 1, has_osxsave = (ecx >> 27) & 1, has_avx = (ecx >> 28) & 1;
    if (!(has_osxsave && has_avx && has_fma)) return RK_ISA_SCALAR;
    const uint64_t xcr0 = rk_xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return RK_ISA_SCALAR;  // XMM and YMM state saved by the OS
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return RK_ISA_SCALAR;
    const int has_avx2 = (ebx >> 5) & 1, has_avx512f = (ebx >> 16) & 1;
    if (!has_avx2) return RK_ISA_SCALAR;
    if (has_avx512f && (xcr0 & 0xE6) == 0xE6) return RK_ISA_AVX512;  // opmask + ZMM state
    return RK_ISA_AVX2;
#else
    return RK_ISA_SCALAR;
#endif
}

int rk_best_isa(void) {
    static int cached = -1;
    int isa = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (isa < 0) {
        isa = rk_detect_isa();
        __atomic_store_n(&cached, isa, __ATOMIC_RELAXED);
    }
    return isa;
}

// MARK: - Finiteness and norms

static int all_finite_scalar(const float *x, size_t n) {
    const uint32_t *bits = (const uint32_t *)x;
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) bad |= ((bits[i] & 0x7f800000u) == 0x7f800000u);
    return !bad;
}

#ifdef RK_X86
__attribute__((target("avx512f"))) static int all_finite_avx512(const float *x, size_t n) {
    const __m512i exponent = _mm512_set1_epi32(0x7f800000);
    __mmask16 bad = 0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i v = _mm512_loadu_si512((const void *)(x + i));
        bad |= _mm512_cmpeq_epi32_mask(_mm512_and_si512(v, exponent), exponent);
    }
    return !bad && all_finite_scalar(x + i, n - i);
}

__attribute__((target("avx2"))) static int all_finite_avx2(const float *x, size_t n) {
    const __m256i exponent = _mm256_set1_epi32(0x7f800000);
    __m256i bad = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(x + i));
        bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(_mm256_and_si256(v, exponent), exponent));
    }
    return _mm256_testz_si256(bad, bad) && all_finite_scalar(x + i, n - i);
}
#endif

int rk_all_finite(int isa, const float *values, size_t count) {
#ifdef RK_X86
    if (isa >= RK_ISA_AVX512) return all_finite_avx512(values, count);
    if (isa >= RK_ISA_AVX2) return all_finite_avx2(values, count);
#endif
    (void)isa;
    return all_finite_scalar(values, count);
}

void rk_row_squared_norms(int isa, const float *values, size_t rows, size_t dims, size_t stride,
                          float *squared_norms) {
    for (size_t r = 0; r < rows; r++) {
        const float *row = values + r * stride;
        float squares;
#ifdef RK_X86
        if (isa >= RK_ISA_AVX512) squares = dot_avx512(row, row, dims);
        else if (isa >= RK_ISA_AVX2) squares = dot_avx2(row, row, dims);
        else
#endif
            squares = dot_scalar(row, row, dims);
        squared_norms[r] = squares;
    }
    (void)isa;
}

// MARK: - Matrix-vector product

void rk_sgemv_n(int isa, size_t n, size_t k, const float *b, size_t ldb, const float *x,
                float *y) {
#ifdef RK_X86
    if (isa >= RK_ISA_AVX512) {
        for (size_t j = 0; j < n; j++) y[j] = dot_avx512(b + j * ldb, x, k);
        return;
    }
    if (isa >= RK_ISA_AVX2) {
        for (size_t j = 0; j < n; j++) y[j] = dot_avx2(b + j * ldb, x, k);
        return;
    }
#endif
    (void)isa;
    for (size_t j = 0; j < n; j++) y[j] = dot_scalar(b + j * ldb, x, k);
}

// MARK: - Tile product C = A·Bᵀ
//
// B (the item rows) is packed into panels of NR rows stored dimension-major (panel[kk][jj]), so a
// micro-kernel can load NR item values for one dimension with aligned vector loads and broadcast
// one query value against them. The micro-kernel keeps an MR × NR tile of C in registers for the
// whole k loop. Rows of A past m are served by repeating the last row and never stored.

enum { PACK_NR_MAX = 32 };

size_t rk_sgemm_pack_floats(size_t n, size_t k) {
    return ((n + PACK_NR_MAX - 1) / PACK_NR_MAX) * PACK_NR_MAX * (k ? k : 1);
}

static void pack_panels(size_t n, size_t k, const float *b, size_t ldb, size_t nr, float *pack) {
    for (size_t p = 0; p * nr < n; p++) {
        float *panel = pack + p * nr * k;
        const size_t rows = (n - p * nr < nr) ? n - p * nr : nr;
        for (size_t jj = 0; jj < rows; jj++) {
            const float *src = b + (p * nr + jj) * ldb;
            for (size_t kk = 0; kk < k; kk++) panel[kk * nr + jj] = src[kk];
        }
        for (size_t jj = rows; jj < nr; jj++)
            for (size_t kk = 0; kk < k; kk++) panel[kk * nr + jj] = 0;
    }
}

#ifdef RK_X86
// 8 rows × 32 items: 16 accumulators, 2 panel loads and 8 broadcasts per dimension.
__attribute__((target("avx512f"))) static void micro_avx512(size_t k, const float *a, size_t lda,
                                                            size_t mr, const float *panel,
                                                            float *c, size_t ldc, size_t nr) {
    const float *r[8];
    for (size_t i = 0; i < 8; i++) r[i] = a + (i < mr ? i : mr - 1) * lda;
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00,
           c61 = c00, c70 = c00, c71 = c00;
    for (size_t kk = 0; kk < k; kk++) {
        const __m512 b0 = _mm512_load_ps(panel + kk * 32), b1 = _mm512_load_ps(panel + kk * 32 + 16);
        __m512 av;
#define RK_ROW(i)                                   \
    av = _mm512_set1_ps(r[i][kk]);                  \
    c##i##0 = _mm512_fmadd_ps(av, b0, c##i##0);     \
    c##i##1 = _mm512_fmadd_ps(av, b1, c##i##1);
        RK_ROW(0) RK_ROW(1) RK_ROW(2) RK_ROW(3) RK_ROW(4) RK_ROW(5) RK_ROW(6) RK_ROW(7)
#undef RK_ROW
    }
    __m512 acc[16] = {c00, c01, c10, c11, c20, c21, c30, c31,
                      c40, c41, c50, c51, c60, c61, c70, c71};
    if (nr == 32) {
        for (size_t i = 0; i < mr; i++) {
            _mm512_storeu_ps(c + i * ldc, acc[2 * i]);
            _mm512_storeu_ps(c + i * ldc + 16, acc[2 * i + 1]);
        }
    } else {
        const __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
        const __mmask16 m1 = nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
        for (size_t i = 0; i < mr; i++) {
            _mm512_mask_storeu_ps(c + i * ldc, m0, acc[2 * i]);
            _mm512_mask_storeu_ps(c + i * ldc + 16, m1, acc[2 * i + 1]);
        }
    }
}

// 6 rows × 16 items: 12 accumulators, 2 panel loads and 6 broadcasts per dimension (16 YMM).
__attribute__((target("avx2,fma"))) static void micro_avx2(size_t k, const float *a, size_t lda,
                                                           size_t mr, const float *panel, float *c,
                                                           size_t ldc, size_t nr) {
    const float *r[6];
    for (size_t i = 0; i < 6; i++) r[i] = a + (i < mr ? i : mr - 1) * lda;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (size_t kk = 0; kk < k; kk++) {
        const __m256 b0 = _mm256_load_ps(panel + kk * 16), b1 = _mm256_load_ps(panel + kk * 16 + 8);
        __m256 av;
#define RK_ROW(i)                                   \
    av = _mm256_broadcast_ss(r[i] + kk);            \
    c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0);     \
    c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1);
        RK_ROW(0) RK_ROW(1) RK_ROW(2) RK_ROW(3) RK_ROW(4) RK_ROW(5)
#undef RK_ROW
    }
    __m256 acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    for (size_t i = 0; i < mr; i++) {
        if (nr == 16) {
            _mm256_storeu_ps(c + i * ldc, acc[2 * i]);
            _mm256_storeu_ps(c + i * ldc + 8, acc[2 * i + 1]);
        } else {
            float tile[16];
            _mm256_storeu_ps(tile, acc[2 * i]);
            _mm256_storeu_ps(tile + 8, acc[2 * i + 1]);
            memcpy(c + i * ldc, tile, nr * sizeof(float));
        }
    }
}
#endif

void rk_sgemm_nt(int isa, size_t m, size_t n, size_t k, const float *a, size_t lda,
                 const float *b, size_t ldb, float *c, size_t ldc, float *pack) {
    if (m == 0 || n == 0) return;
#ifdef RK_X86
    if (isa >= RK_ISA_AVX2) {
        const size_t nr = isa >= RK_ISA_AVX512 ? 32 : 16, mr = isa >= RK_ISA_AVX512 ? 8 : 6;
        pack_panels(n, k, b, ldb, nr, pack);
        for (size_t p = 0; p * nr < n; p++) {
            const float *panel = pack + p * nr * k;
            const size_t cols = (n - p * nr < nr) ? n - p * nr : nr;
            for (size_t i = 0; i < m; i += mr) {
                const size_t rows = (m - i < mr) ? m - i : mr;
                if (isa >= RK_ISA_AVX512)
                    micro_avx512(k, a + i * lda, lda, rows, panel, c + i * ldc + p * nr, ldc, cols);
                else
                    micro_avx2(k, a + i * lda, lda, rows, panel, c + i * ldc + p * nr, ldc, cols);
            }
        }
        return;
    }
#endif
    (void)isa;
    (void)pack;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) c[i * ldc + j] = dot_scalar(a + i * lda, b + j * ldb, k);
}
