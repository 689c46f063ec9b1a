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

/// The calling thread's kernel id (Linux `gettid`; elsewhere 0).
int rk_thread_id(void);

/// A spin-wait hint (x86 `pause`): a waiting loop yields the core's shared resources to its
/// sibling and wakes promptly when the awaited store lands.
static inline void rk_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

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

// MARK: Matrix factorization (factorization.c)

/// Implicit ALS by conjugate gradient: `steps` CG steps from the current `x` (d floats) on
/// (G + Σ (c_k − 1) y y ᵀ) x = Σ c_k y, c_k = 1 + alpha·weights[k], over the rows `items[k]` of
/// `y` (row-major, d columns). `gram` is G = YᵀY + λI (d × d). `scratch` holds 3·d floats.
void rk_als_cg(int isa, size_t d, const float *gram, const float *y, const int32_t *items,
               const float *weights, size_t n, float alpha, float *x, int steps, float *scratch);

/// Solves (G + diag·I + Σ a_k y yᵀ) x = Σ b_k y exactly by Cholesky, a_k = a_scale·weights[k]
/// (1 when weighted_a is 0), b_k = b_offset + b_scale·weights[k]; G may be NULL (zero).
/// `scratch` holds d·d + d floats. Returns 0, or the order of the first leading minor that is
/// not positive definite (x is then unchanged).
int rk_normal_solve(int isa, size_t d, const float *gram, float diag, const float *y,
                    const int32_t *items, const float *weights, size_t n, int weighted_a,
                    float a_scale, float b_offset, float b_scale, float *x, float *scratch);

/// One Gibbs draw of a row's vector in Bayesian matrix factorization: x ~ N(A⁻¹b, A⁻¹) with
/// A = precision + α Σ y yᵀ and b = linear + α Σ (r − shift − offsets[item]) y over the n entries
/// (items index rows of y, d columns; offsets may be NULL), using the d standard normal values
/// `normals` (NULL gives the mean A⁻¹b). `scratch` holds d·d + d floats. Returns 0, or the order
/// of the first leading minor that is not positive definite (x is then unchanged).
int rk_gibbs_row(int isa, size_t d, const float *precision, const float *linear, float alpha, const float *y,
                 const int32_t *items, const float *ratings, const float *offsets, float shift, size_t n,
                 const float *normals, float *x, float *scratch);

/// `samples` BPR SGD steps on users' factors `x` and items' `y` (d columns each, the last an item
/// bias users hold at 1), drawing positives from the CSR rows (offsets, items; entry_users[e] is
/// entry e's row) and negatives uniformly. Returns how many triples were ranked right before
/// their update.
size_t rk_bpr(int isa, size_t d, float *x, float *y, const int64_t *offsets, const int32_t *items,
              const int32_t *entry_users, size_t entries, size_t item_count, size_t samples,
              float learning_rate, float regularization, uint64_t seed);

/// One SGD pass of biased matrix factorization over the entries order[0 ..< n]. Returns the sum
/// of squared errors.
double rk_sgd_mf(int isa, size_t d, float *p, float *q, float *user_bias, float *item_bias,
                 float mean, const int32_t *users, const int32_t *items, const float *ratings,
                 const int64_t *order, size_t n, float lr_bias, float reg_bias, float lr_factor,
                 float reg_factor);

/// The implicit-ALS data term Σ_u Σ_i c_ui (p_ui − x_u·y_i)² over rows [begin, end), with
/// gram = YᵀY (no λ). `scratch` holds d floats.
double rk_als_loss(int isa, size_t d, const float *gram, const float *x, const float *y,
                   const int64_t *offsets, const int32_t *items, const float *weights, size_t begin,
                   size_t end, float alpha, float *scratch);

/// Σ (value − x_u·y_i)² over the stored entries of rows [begin, end).
double rk_squared_residuals(int isa, size_t d, const float *x, const float *y,
                            const int64_t *offsets, const int32_t *items, const float *values,
                            size_t begin, size_t end);

// MARK: Compressed item tables (compressed.c)

/// Codes a compressed table holds: int8 with a per-row scale, or the top half of a float (bf16).
typedef enum { RK_CODE_INT8 = 0, RK_CODE_BF16 = 1 } rk_code_kind;

/// Rows per panel of a compressed table: panel p holds rows p·16 ..< p·16 + 16, dimension-major
/// (code of row p·16 + jj, dimension kk at element (p·dims + kk)·16 + jj); rows past the end are 0.
enum { RK_CQ_PANEL = 16 };

/// A compressed table and the per-row terms of one metric's key and error bound.
typedef struct {
    int kind;                 ///< rk_code_kind
    const void *codes;        ///< panels
    size_t dims, rows;
    const float *multiplier;  ///< key = product·multiplier[r] (+ offset[r]); NULL = 1
    const float *offset;      ///< NULL = 0
    const float *radius;      ///< |float32 key − compressed key| ≤ ‖q‖·radius[r] + absolute (before slack)
    float absolute;
} rk_cq_table;

/// One query's state across scan calls.
typedef struct {
    rk_topk *lower;           ///< the K best lower bounds of eligible items: its root is τ
    int32_t *candidate_ids;   ///< appended: room for every row one call scans
    float *candidate_upper;   ///< their upper bounds
    size_t candidate_count;
} rk_cq_query;

/// Scans panels [first_panel, end_panel) for `query_count` queries (rows of `dims` floats; their
/// norms rounded up in `query_norms`), appending every eligible item whose upper bound is not
/// below the query's τ at that moment, and offering its lower bound to the query's heap.
void rk_cq_scan(int isa, const rk_cq_table *table, size_t first_panel, size_t end_panel,
                const float *queries, size_t query_count, const float *query_norms,
                rk_cq_query *states, const rk_fold_filter *filters);

/// Re-scores items `ids` from the float32 table exactly as the search kernels do at level `isa`
/// (the GEMV dot, or with `tile_arithmetic` the tile kernels' FMA chain), keys them with
/// scale/offset (indexed by id, may be NULL) and offers them to `heap`.
void rk_cq_rescore(int isa, int tile_arithmetic, const float *items, size_t dims, const float *query,
                   const int32_t *ids, size_t count, const float *scale, const float *offset, rk_topk *heap);

/// 1 when `filter` keeps item `id` out of a result.
int rk_fold_excluded(const rk_fold_filter *filter, int32_t id);

#ifdef __cplusplus
}
#endif

#endif
