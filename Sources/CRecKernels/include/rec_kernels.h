// C kernels behind RecKernels: the parts that need explicit SIMD (per-function target attributes
// and run-time CPU dispatch, as faiss and numpy do), because Swift's default x86-64 target has no
// FMA. Every function is reached only through RecKernels' internal wrappers; none is public API.
#ifndef REC_KERNELS_H
#define REC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction-set levels the SIMD kernels are compiled for. Higher levels imply lower ones.
typedef enum {
    RK_ISA_SCALAR = 0,  ///< portable C, any CPU
    RK_ISA_AVX2 = 1,    ///< x86-64 AVX2 + FMA
    RK_ISA_AVX512 = 2,  ///< x86-64 AVX-512F (with OS support for the ZMM state)
} rk_isa;

/// The highest level this CPU and operating system support (CPUID + XGETBV), cached after the
/// first call.
int rk_best_isa(void);

/// CPUs this process may run on (its affinity mask), or the online count where there is none.
int rk_available_cpus(void);

/// CRC-32C (Castagnoli), continuing from `crc` (pass 0 to start). Uses the SSE4.2 instruction
/// when present, a table otherwise; both give the same value.
uint32_t rk_crc32c(uint32_t crc, const void *data, size_t length);

/// The table-driven CRC-32C alone, so tests can prove both paths agree.
uint32_t rk_crc32c_portable(uint32_t crc, const void *data, size_t length);

/// 1 when none of the `count` floats is NaN or ±Inf, 0 otherwise.
int rk_all_finite(int isa, const float *values, size_t count);

/// Squared Euclidean norm (sum of squares) of each of `rows` rows of `dims` floats, `stride`
/// floats apart. Squared, so integer-valued rows give exact results.
void rk_row_squared_norms(int isa, const float *values, size_t rows, size_t dims, size_t stride,
                          float *squared_norms);

/// Floats of scratch `rk_sgemm_nt` needs to pack `n` rows of `k` dims.
size_t rk_sgemm_pack_floats(size_t n, size_t k);

/// C[i, j] = dot(A row i, B row j) for i < m, j < n over k dims; A, B and C row-major with
/// leading dimensions lda, ldb, ldc (in floats). `pack` holds rk_sgemm_pack_floats(n, k) floats.
void rk_sgemm_nt(int isa, size_t m, size_t n, size_t k, const float *a, size_t lda,
                 const float *b, size_t ldb, float *c, size_t ldc, float *pack);

/// y[j] = dot(B row j, x) for j < n over k dims.
void rk_sgemv_n(int isa, size_t n, size_t k, const float *b, size_t ldb, const float *x,
                float *y);

/// A bounded top-K selection: a binary heap whose root is the worst kept entry (lowest score;
/// among equal scores, the highest id), so ties are broken toward the lower id.
typedef struct {
    float *scores;     ///< `capacity` slots
    int32_t *ids;      ///< `capacity` slots
    int32_t count;     ///< entries kept so far
    int32_t capacity;  ///< K
} rk_topk;

/// Which items of a block may enter a top-K. Every pointer may be NULL.
typedef struct {
    const float *scale;        ///< key = score * scale[j] (+ offset[j]), j relative to the block
    const float *offset;
    const uint64_t *eligible;  ///< bit `id` set = item `id` may be returned (absolute ids)
    const int32_t *excluded;   ///< sorted absolute ids that may not be returned
    size_t excluded_count;
} rk_fold_filter;

/// Folds `n` scores of items first_id ..< first_id + n into `heap`. Scores that are NaN never
/// enter. Items must arrive in increasing id order only for speed, not for correctness.
void rk_topk_fold(int isa, rk_topk *heap, const float *scores, size_t n, int32_t first_id,
                  const rk_fold_filter *filter);

/// Offers one entry to `heap` (used to merge per-thread heaps).
void rk_topk_push(rk_topk *heap, float score, int32_t id);

/// Sorts the kept entries best first (score descending, then id ascending). The heap property
/// is gone afterwards: only read the result.
void rk_topk_sort(rk_topk *heap);

#ifdef __cplusplus
}
#endif

#endif
