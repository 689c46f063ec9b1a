// Matrix-factorization kernels (implicit ALS by conjugate gradient or Cholesky, explicit ALS,
// BPR, biased SGD MF), compiled once per instruction set from factorization_body.h and
// dispatched on the level the caller passes.
#include "rec_kernels.h"
#include "vector_ops.h"

#include <math.h>

/// SplitMix64: one 64-bit state per thread.
static inline uint64_t rk_next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/// Uniform in [0, bound) by Lemire's multiply-shift (bias below 2⁻³² for bounds < 2³²).
static inline size_t rk_random_below(uint64_t *state, size_t bound) {
    return (size_t)(((unsigned __int128)rk_next_random(state) * bound) >> 64);
}

static inline int rk_sorted_contains(const int32_t *row, size_t n, int32_t value) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if (row[mid] < value) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && row[lo] == value;
}

#define RK_TARGET
#define RK_NAME(x) x##_scalar
#include "factorization_body.h"
#undef RK_TARGET
#undef RK_NAME

#ifdef RK_X86
#define RK_TARGET __attribute__((target("avx2,fma")))
#define RK_NAME(x) x##_avx2
#include "factorization_body.h"
#undef RK_TARGET
#undef RK_NAME

#define RK_TARGET __attribute__((target("avx512f")))
#define RK_NAME(x) x##_avx512
#include "factorization_body.h"
#undef RK_TARGET
#undef RK_NAME
#define RK_DISPATCH(isa, call)                                   \
    ((isa) >= RK_ISA_AVX512 ? call##_avx512                      \
     : (isa) >= RK_ISA_AVX2 ? call##_avx2 : call##_scalar)
#else
#define RK_DISPATCH(isa, call) call##_scalar
#endif

void rk_als_cg(int isa, size_t d, const float *gram, const float *y, const int32_t *items, const float *weights,
               size_t n, float alpha, float *x, int steps, float *scratch) {
    RK_DISPATCH(isa, als_cg)(d, gram, y, items, weights, n, alpha, x, steps, scratch);
}

int rk_normal_solve(int isa, size_t d, const float *gram, float diag, const float *y, const int32_t *items,
                    const float *weights, size_t n, int weighted_a, float a_scale, float b_offset, float b_scale,
                    float *x, float *scratch) {
    return RK_DISPATCH(isa, normal_solve)(d, gram, diag, y, items, weights, n, weighted_a, a_scale, b_offset,
                                          b_scale, x, scratch, scratch + d * d);
}

int rk_gibbs_row(int isa, size_t d, const float *precision, const float *linear, float alpha, const float *y,
                 const int32_t *items, const float *ratings, const float *offsets, float shift, size_t n,
                 const float *normals, float *x, float *scratch) {
    return RK_DISPATCH(isa, gibbs_row)(d, precision, linear, alpha, y, items, ratings, offsets, shift, n, normals, x,
                                       scratch, scratch + d * d);
}

size_t rk_bpr(int isa, size_t d, float *x, float *y, const int64_t *offsets, const int32_t *items,
              const int32_t *entry_users, size_t entries, size_t item_count, size_t samples, float learning_rate,
              float regularization, uint64_t seed) {
    uint64_t state = seed;
    return RK_DISPATCH(isa, bpr)(d, x, y, offsets, items, entry_users, entries, item_count, samples, learning_rate,
                                 regularization, &state);
}

double rk_sgd_mf(int isa, size_t d, float *p, float *q, float *user_bias, float *item_bias, float mean,
                 const int32_t *users, const int32_t *items, const float *ratings, const int64_t *order, size_t n,
                 float lr_bias, float reg_bias, float lr_factor, float reg_factor) {
    return RK_DISPATCH(isa, sgd_mf)(d, p, q, user_bias, item_bias, mean, users, items, ratings, order, n, lr_bias,
                                    reg_bias, lr_factor, reg_factor);
}

double rk_als_loss(int isa, size_t d, const float *gram, const float *x, const float *y, const int64_t *offsets,
                   const int32_t *items, const float *weights, size_t begin, size_t end, float alpha, float *scratch) {
    return RK_DISPATCH(isa, als_loss)(d, gram, x, y, offsets, items, weights, begin, end, alpha, scratch);
}

double rk_squared_residuals(int isa, size_t d, const float *x, const float *y, const int64_t *offsets,
                            const int32_t *items, const float *values, size_t begin, size_t end) {
    return RK_DISPATCH(isa, squared_residuals)(d, x, y, offsets, items, values, begin, end);
}
