// The factorization kernels' algorithms, written once. factorization.c includes this file once
// per instruction set after defining:
//   RK_TARGET    the function attribute (target("avx512f"), …, or nothing)
//   RK_NAME(x)   the per-ISA name of x
//   RK_NAME(dot)(a, b, d), RK_NAME(axpy)(alpha, x, y, d) (y += alpha·x) and RK_NAME(symv)(d, G, p, out)
//   (out = G·p), the vector helpers of vector_ops.h.
// Element-wise loops are left to the compiler's vectorizer, which targets the same ISA.

/// Implicit ALS, conjugate gradient (Takács et al.; benfred/implicit's least_squares_cg): a few
/// CG steps on (G + Σ (c_i − 1) y_i y_iᵀ) x = Σ c_i y_i from the current x, c_i = 1 + α w_i,
/// G = YᵀY + λI.
RK_TARGET static void RK_NAME(als_cg)(size_t d, const float *gram, const float *y, const int32_t *items,
                                      const float *weights, size_t n, float alpha, float *x, int steps,
                                      float *scratch) {
    float *r = scratch, *p = scratch + d, *ap = scratch + 2 * d;
    RK_NAME(symv)(d, gram, x, r);
    for (size_t f = 0; f < d; f++) r[f] = -r[f];
    for (size_t k = 0; k < n; k++) {
        const float *yi = y + (size_t)items[k] * d;
        const float c = 1 + alpha * weights[k];
        RK_NAME(axpy)(c - (c - 1) * RK_NAME(dot)(yi, x, d), yi, r, d);
    }
    for (size_t f = 0; f < d; f++) p[f] = r[f];
    float rs_old = RK_NAME(dot)(r, r, d);
    if (rs_old < 1e-20f) return;
    for (int step = 0; step < steps; step++) {
        RK_NAME(symv)(d, gram, p, ap);
        for (size_t k = 0; k < n; k++) {
            const float *yi = y + (size_t)items[k] * d;
            RK_NAME(axpy)(alpha * weights[k] * RK_NAME(dot)(yi, p, d), yi, ap, d);
        }
        const float pap = RK_NAME(dot)(p, ap, d);
        if (!(pap > 0)) break;
        const float step_size = rs_old / pap;
        RK_NAME(axpy)(step_size, p, x, d);
        RK_NAME(axpy)(-step_size, ap, r, d);
        const float rs_new = RK_NAME(dot)(r, r, d);
        if (rs_new < 1e-20f) break;
        const float beta = rs_new / rs_old;
        for (size_t f = 0; f < d; f++) p[f] = r[f] + beta * p[f];
        rs_old = rs_new;
    }
}

/// In-place Cholesky of the d × d row-major matrix a: its lower triangle becomes L with
/// a = L·Lᵀ. Returns 0, or the order of the leading minor that is not positive definite.
RK_TARGET static int RK_NAME(cholesky_lower)(size_t d, float *a) {
    for (size_t j = 0; j < d; j++) {
        const float s = a[j * d + j] - RK_NAME(dot)(a + j * d, a + j * d, j);
        if (!(s > 0)) return (int)j + 1;
        const float l = sqrtf(s);
        a[j * d + j] = l;
        for (size_t i = j + 1; i < d; i++) a[i * d + j] = (a[i * d + j] - RK_NAME(dot)(a + i * d, a + j * d, j)) / l;
    }
    return 0;
}

/// Solves L z = b into x, with L the lower triangle ``cholesky_lower`` left in l.
RK_TARGET static void RK_NAME(solve_lower)(size_t d, const float *l, const float *b, float *x) {
    for (size_t i = 0; i < d; i++) x[i] = (b[i] - RK_NAME(dot)(l + i * d, x, i)) / l[i * d + i];
}

/// Solves Lᵀ x = z in place (x holds z on entry), with L as in ``solve_lower``.
RK_TARGET static void RK_NAME(solve_lower_transposed)(size_t d, const float *l, float *x) {
    for (size_t i = d; i-- > 0;) {
        float s = x[i];
        for (size_t k = i + 1; k < d; k++) s -= l[k * d + i] * x[k];
        x[i] = s / l[i * d + i];
    }
}

/// Builds and solves the normal equations (G + diag·I + Σ a_i y_i y_iᵀ) x = Σ b_i y_i exactly
/// by Cholesky, where a_i = a_scale·w_i (1 when a_weights is NULL) and b_i = b_offset + b_scale·w_i.
/// Returns 0, or the order of the leading minor that is not positive definite.
RK_TARGET static int RK_NAME(normal_solve)(size_t d, const float *gram, float diag, const float *y,
                                           const int32_t *items, const float *weights, size_t n,
                                           int weighted_a, float a_scale, float b_offset, float b_scale,
                                           float *x, float *a, float *b) {
    for (size_t i = 0; i < d * d; i++) a[i] = gram ? gram[i] : 0;
    for (size_t f = 0; f < d; f++) {
        a[f * d + f] += diag;
        b[f] = 0;
    }
    for (size_t k = 0; k < n; k++) {
        const float *yi = y + (size_t)items[k] * d;
        const float ak = weighted_a ? a_scale * weights[k] : 1;
        for (size_t j = 0; j < d; j++) RK_NAME(axpy)(ak * yi[j], yi, a + j * d, d);
        RK_NAME(axpy)(b_offset + b_scale * weights[k], yi, b, d);
    }
    const int failed = RK_NAME(cholesky_lower)(d, a);
    if (failed) return failed;
    // L z = b, then Lᵀ x = z.
    RK_NAME(solve_lower)(d, a, b, x);
    RK_NAME(solve_lower_transposed)(d, a, x);
    return 0;
}

/// One Gibbs draw of a row's vector in Bayesian matrix factorization (Salakhutdinov & Mnih
/// 2008): with A = P + α Σ y yᵀ and b = h + α Σ (r − shift − offsets[item]) y over the row's
/// entries (P the prior precision, h = P·μ₀), x = A⁻¹b + L⁻ᵀε with A = L·Lᵀ and ε standard
/// normal, i.e. a draw from N(A⁻¹b, A⁻¹). `normals` holds d standard normal values; a, b are
/// d·d and d floats of scratch. Returns 0, or the order of the leading minor that is not
/// positive definite (x is then unchanged).
RK_TARGET static int RK_NAME(gibbs_row)(size_t d, const float *precision, const float *linear, float alpha,
                                        const float *y, const int32_t *items, const float *ratings,
                                        const float *offsets, float shift, size_t n, const float *normals,
                                        float *x, float *a, float *b) {
    for (size_t i = 0; i < d * d; i++) a[i] = precision[i];
    for (size_t f = 0; f < d; f++) b[f] = linear[f];
    for (size_t k = 0; k < n; k++) {
        const float *yi = y + (size_t)items[k] * d;
        const float target = ratings[k] - shift - (offsets ? offsets[items[k]] : 0);
        for (size_t j = 0; j < d; j++) RK_NAME(axpy)(alpha * yi[j], yi, a + j * d, d);
        RK_NAME(axpy)(alpha * target, yi, b, d);
    }
    const int failed = RK_NAME(cholesky_lower)(d, a);
    if (failed) return failed;
    // L z = b, then Lᵀ x = z + ε: x = A⁻¹b + L⁻ᵀε.
    RK_NAME(solve_lower)(d, a, b, x);
    for (size_t i = 0; i < d; i++) x[i] += normals ? normals[i] : 0;
    RK_NAME(solve_lower_transposed)(d, a, x);
    return 0;
}

/// BPR (Rendle et al. 2009) by SGD over `samples` (user, positive, negative) triples: a positive
/// is a uniformly drawn stored entry, a negative a uniformly drawn item the user does not have
/// (re-drawn up to 16 times). The last of the d columns is an item bias: users hold 1 there
/// and it is never updated on their side. Returns how many triples were already ranked right.
///
/// The factor rows are random accesses into tables larger than the caches, so triples are drawn
/// two steps ahead: the entry (and the user's row, for the negative check) first, then the
/// negative, with each stage prefetching what the next one reads.
RK_TARGET static size_t RK_NAME(bpr)(size_t d, float *x, float *y, const int64_t *offsets, const int32_t *items,
                                     const int32_t *entry_users, size_t entries, size_t item_count, size_t samples,
                                     float learning_rate, float regularization, uint64_t *rng) {
    size_t correct = 0;
    const size_t factors = d - 1;
    int32_t pending_u[2], pending_i[2];  // stage 1: drawn entries whose negatives are not drawn yet
    for (int k = 0; k < 2; k++) {
        const size_t entry = rk_random_below(rng, entries);
        pending_u[k] = entry_users[entry];
        pending_i[k] = items[entry];
        __builtin_prefetch(items + offsets[pending_u[k]]);
    }
    int32_t ready_u = -1, ready_i = -1, ready_j = -1;  // stage 2: a full triple, rows prefetched
    for (size_t s = 0; s < samples + 1; s++) {
        const int32_t u = ready_u, i = ready_i, j = ready_j;
        // Advance the pipeline: the oldest pending entry gets its negative.
        {
            const int32_t nu = pending_u[0], ni = pending_i[0];
            const int32_t *row = items + offsets[nu];
            const size_t row_length = (size_t)(offsets[nu + 1] - offsets[nu]);
            int32_t nj = (int32_t)rk_random_below(rng, item_count);
            for (int attempt = 0; attempt < 16 && rk_sorted_contains(row, row_length, nj); attempt++)
                nj = (int32_t)rk_random_below(rng, item_count);
            ready_u = nu; ready_i = ni; ready_j = nj;
            for (size_t line = 0; line < d; line += 16) {
                __builtin_prefetch(x + (size_t)nu * d + line, 1);
                __builtin_prefetch(y + (size_t)ni * d + line, 1);
                __builtin_prefetch(y + (size_t)nj * d + line, 1);
            }
            pending_u[0] = pending_u[1]; pending_i[0] = pending_i[1];
            const size_t entry = rk_random_below(rng, entries);
            pending_u[1] = entry_users[entry];
            pending_i[1] = items[entry];
            __builtin_prefetch(items + offsets[pending_u[1]]);
        }
        if (u < 0 || j == i) continue;
        float *xu = x + (size_t)u * d, *yi = y + (size_t)i * d, *yj = y + (size_t)j * d;
        const float score = RK_NAME(dot)(xu, yi, d) - RK_NAME(dot)(xu, yj, d);
        if (score > 0) correct++;
        const float z = 1 / (1 + expf(score));  // σ(−score): the gradient's weight
        for (size_t f = 0; f < factors; f++) {
            const float xf = xu[f], yif = yi[f], yjf = yj[f];
            xu[f] += learning_rate * (z * (yif - yjf) - regularization * xf);
            yi[f] += learning_rate * (z * xf - regularization * yif);
            yj[f] += learning_rate * (-z * xf - regularization * yjf);
        }
        yi[factors] += learning_rate * (z - regularization * yi[factors]);
        yj[factors] += learning_rate * (-z - regularization * yj[factors]);
    }
    return correct;
}

/// Biased matrix factorization by SGD (Funk; Koren; Surprise's SVD), one pass over the
/// entries in `order`: r̂ = μ + b_u + b_i + p_u·q_i. Returns the sum of squared errors seen.
RK_TARGET static double RK_NAME(sgd_mf)(size_t d, float *p, float *q, float *user_bias, float *item_bias, float mean,
                                        const int32_t *users, const int32_t *items, const float *ratings,
                                        const int64_t *order, size_t n, float lr_bias, float reg_bias,
                                        float lr_factor, float reg_factor) {
    double squared_errors = 0;
    for (size_t t = 0; t < n; t++) {
        const int64_t e = order[t];
        const int32_t u = users[e], i = items[e];
        float *pu = p + (size_t)u * d, *qi = q + (size_t)i * d;
        const float error = ratings[e] - (mean + user_bias[u] + item_bias[i] + RK_NAME(dot)(pu, qi, d));
        squared_errors += (double)error * error;
        user_bias[u] += lr_bias * (error - reg_bias * user_bias[u]);
        item_bias[i] += lr_bias * (error - reg_bias * item_bias[i]);
        for (size_t f = 0; f < d; f++) {
            const float pf = pu[f], qf = qi[f];
            pu[f] += lr_factor * (error * qf - reg_factor * pf);
            qi[f] += lr_factor * (error * pf - reg_factor * qf);
        }
    }
    return squared_errors;
}

/// The implicit-ALS objective's data term over rows [begin, end): Σ_u Σ_i c_ui (p_ui − x_u·y_i)²
/// with c = 1, p = 0 off the stored entries, using G = YᵀY for the all-items part.
RK_TARGET static double RK_NAME(als_loss)(size_t d, const float *gram, const float *x, const float *y,
                                          const int64_t *offsets, const int32_t *items, const float *weights,
                                          size_t begin, size_t end, float alpha, float *scratch) {
    double loss = 0;
    for (size_t u = begin; u < end; u++) {
        const float *xu = x + u * d;
        RK_NAME(symv)(d, gram, xu, scratch);
        loss += RK_NAME(dot)(xu, scratch, d);
        for (int64_t e = offsets[u]; e < offsets[u + 1]; e++) {
            const float s = RK_NAME(dot)(xu, y + (size_t)items[e] * d, d);
            const float c = 1 + alpha * weights[e];
            loss += (double)c * (1 - s) * (1 - s) - (double)s * s;
        }
    }
    return loss;
}

/// Σ over stored entries of (value − x_u·y_i)², rows [begin, end).
RK_TARGET static double RK_NAME(squared_residuals)(size_t d, const float *x, const float *y, const int64_t *offsets,
                                                   const int32_t *items, const float *values, size_t begin,
                                                   size_t end) {
    double total = 0;
    for (size_t u = begin; u < end; u++)
        for (int64_t e = offsets[u]; e < offsets[u + 1]; e++) {
            const double r = values[e] - RK_NAME(dot)(x + u * d, y + (size_t)items[e] * d, d);
            total += r * r;
        }
    return total;
}
