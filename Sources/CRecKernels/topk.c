// Bounded top-K selection fused with filtering. A block of scores is compared against the
// current K-th best in SIMD registers; only the rare candidates that beat it go through the
// scalar path (filters, then the heap). After the first K items almost nothing does.
#include "rec_kernels.h"
#include "rec_sparse.h"

#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#define RK_X86 1
#include <immintrin.h>
#endif

/// Whether (sa, ia) ranks below (sb, ib): lower score, or the same score and a higher id.
static inline int rk_worse(float sa, int32_t ia, float sb, int32_t ib) {
    return sa < sb || (sa == sb && ia > ib);
}

static void sift_down(rk_topk *h, int32_t i) {
    float *s = h->scores;
    int32_t *id = h->ids;
    const int32_t n = h->count;
    const float sv = s[i];
    const int32_t iv = id[i];
    for (;;) {
        int32_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && rk_worse(s[child + 1], id[child + 1], s[child], id[child])) child++;
        if (!rk_worse(s[child], id[child], sv, iv)) break;
        s[i] = s[child];
        id[i] = id[child];
        i = child;
    }
    s[i] = sv;
    id[i] = iv;
}

static void sift_up(rk_topk *h, int32_t i) {
    float *s = h->scores;
    int32_t *id = h->ids;
    const float sv = s[i];
    const int32_t iv = id[i];
    while (i > 0) {
        const int32_t parent = (i - 1) / 2;
        if (!rk_worse(sv, iv, s[parent], id[parent])) break;
        s[i] = s[parent];
        id[i] = id[parent];
        i = parent;
    }
    s[i] = sv;
    id[i] = iv;
}

void rk_topk_push(rk_topk *h, float score, int32_t id) {
    if (isnan(score) || h->capacity <= 0) return;
    if (h->count < h->capacity) {
        h->scores[h->count] = score;
        h->ids[h->count] = id;
        h->count++;
        sift_up(h, h->count - 1);
    } else if (rk_worse(h->scores[0], h->ids[0], score, id)) {
        h->scores[0] = score;
        h->ids[0] = id;
        sift_down(h, 0);
    }
}

void rk_topk_sort(rk_topk *h) {
    // Heap-sort in place: repeatedly move the worst entry to the end of the shrinking heap,
    // which leaves the array best first.
    const int32_t n = h->count;
    for (int32_t end = n - 1; end > 0; end--) {
        const float s = h->scores[0];
        const int32_t i = h->ids[0];
        h->scores[0] = h->scores[end];
        h->ids[0] = h->ids[end];
        h->scores[end] = s;
        h->ids[end] = i;
        h->count = end;
        sift_down(h, 0);
    }
    h->count = n;
}

static inline int is_excluded(const rk_fold_filter *f, int32_t id) {
    if (f->eligible && !((f->eligible[(uint32_t)id >> 6] >> ((uint32_t)id & 63)) & 1)) return 1;
    if (f->excluded_count) {
        size_t lo = 0, hi = f->excluded_count;
        while (lo < hi) {
            const size_t mid = (lo + hi) / 2;
            if (f->excluded[mid] < id) lo = mid + 1;
            else hi = mid;
        }
        if (lo < f->excluded_count && f->excluded[lo] == id) return 1;
    }
    return 0;
}

/// The key of item j of the block: its score with the metric's per-item scale and offset.
static inline float fold_key(const rk_fold_filter *f, const float *scores, size_t j) {
    float v = scores[j];
    if (f->scale) v *= f->scale[j];
    if (f->offset) v += f->offset[j];
    return v;
}

static inline float fold_threshold(const rk_topk *h) {
    return h->count < h->capacity ? -INFINITY : h->scores[0];
}

static inline void consider(rk_topk *h, const rk_fold_filter *f, float key, int32_t id) {
    if (is_excluded(f, id)) return;
    rk_topk_push(h, key, id);
}

static void fold_scalar(rk_topk *h, const float *scores, size_t n, int32_t first_id,
                        const rk_fold_filter *f, size_t from) {
    float threshold = fold_threshold(h);
    for (size_t j = from; j < n; j++) {
        const float key = fold_key(f, scores, j);
        if (key >= threshold) {  // false for NaN
            consider(h, f, key, first_id + (int32_t)j);
            threshold = fold_threshold(h);
        }
    }
}

#ifdef RK_X86
__attribute__((target("avx512f"))) static void fold_avx512(rk_topk *h, const float *scores,
                                                           size_t n, int32_t first_id,
                                                           const rk_fold_filter *f) {
    __m512 threshold = _mm512_set1_ps(fold_threshold(h));
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 v = _mm512_loadu_ps(scores + j);
        if (f->scale) v = _mm512_mul_ps(v, _mm512_loadu_ps(f->scale + j));
        if (f->offset) v = _mm512_add_ps(v, _mm512_loadu_ps(f->offset + j));
        __mmask16 hits = _mm512_cmp_ps_mask(v, threshold, _CMP_GE_OQ);
        if (!hits) continue;
        float keys[16];
        _mm512_storeu_ps(keys, v);
        while (hits) {
            const int lane = __builtin_ctz(hits);
            hits &= (__mmask16)(hits - 1);
            if (keys[lane] >= fold_threshold(h)) consider(h, f, keys[lane], first_id + (int32_t)(j + lane));
        }
        threshold = _mm512_set1_ps(fold_threshold(h));
    }
    fold_scalar(h, scores, n, first_id, f, j);
}

__attribute__((target("avx2"))) static void fold_avx2(rk_topk *h, const float *scores, size_t n,
                                                      int32_t first_id, const rk_fold_filter *f) {
    __m256 threshold = _mm256_set1_ps(fold_threshold(h));
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = _mm256_loadu_ps(scores + j);
        if (f->scale) v = _mm256_mul_ps(v, _mm256_loadu_ps(f->scale + j));
        if (f->offset) v = _mm256_add_ps(v, _mm256_loadu_ps(f->offset + j));
        int hits = _mm256_movemask_ps(_mm256_cmp_ps(v, threshold, _CMP_GE_OQ));
        if (!hits) continue;
        float keys[8];
        _mm256_storeu_ps(keys, v);
        while (hits) {
            const int lane = __builtin_ctz((unsigned)hits);
            hits &= hits - 1;
            if (keys[lane] >= fold_threshold(h)) consider(h, f, keys[lane], first_id + (int32_t)(j + lane));
        }
        threshold = _mm256_set1_ps(fold_threshold(h));
    }
    fold_scalar(h, scores, n, first_id, f, j);
}
#endif

void rk_topk_fold(int isa, rk_topk *heap, const float *scores, size_t n, int32_t first_id,
                  const rk_fold_filter *filter) {
    if (heap->capacity <= 0) return;
#ifdef RK_X86
    if (isa >= RK_ISA_AVX512) { fold_avx512(heap, scores, n, first_id, filter); return; }
    if (isa >= RK_ISA_AVX2) { fold_avx2(heap, scores, n, first_id, filter); return; }
#endif
    (void)isa;
    fold_scalar(heap, scores, n, first_id, filter, 0);
}

void rk_topk_consider(rk_topk *heap, const rk_fold_filter *filter, float score, int32_t id) {
    if (filter) consider(heap, filter, score, id);
    else rk_topk_push(heap, score, id);
}

int rk_fold_excluded(const rk_fold_filter *filter, int32_t id) { return is_excluded(filter, id); }
