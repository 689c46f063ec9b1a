// Skip-gram with negative sampling, as gensim's word2vec_inner.pyx (fast_sentence_sg_neg):
// for each kept word and each context word within a randomly reduced window, the context word's
// input vector learns to predict the word against `negatives` noise words. Random numbers come
// from word2vec's 48-bit linear congruential generator, sigmoid from a 1,000-entry table over
// [-6, 6]; updates are Hogwild (unsynchronized), as in gensim and the original word2vec.
#include "rec_sparse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vector_ops.h"

enum { SIGMOID_TABLE_SIZE = 1000, MAX_EXP = 6, PROGRESS_BATCH = 10000 };

static inline uint64_t next_random(uint64_t *state) {
    *state = (*state * 25214903917ULL + 11ULL) & 0xFFFFFFFFFFFFULL;
    return *state;
}

#define RK_SGNS_BODY(DOT, AXPY)                                                                 \
    {                                                                                           \
        const size_t dims = job->dims;                                                          \
        float sigmoid[SIGMOID_TABLE_SIZE];                                                      \
        for (int i = 0; i < SIGMOID_TABLE_SIZE; i++) {                                          \
            const double x = exp(((double)i / SIGMOID_TABLE_SIZE * 2 - 1) * MAX_EXP);           \
            sigmoid[i] = (float)(x / (x + 1));                                                  \
        }                                                                                       \
        size_t longest = 0;                                                                     \
        for (size_t s = job->first_sentence; s < job->end_sentence; s++) {                      \
            const size_t n = (size_t)(job->sentence_offsets[s + 1] - job->sentence_offsets[s]); \
            if (n > longest) longest = n;                                                       \
        }                                                                                       \
        int32_t *kept = malloc((longest ? longest : 1) * sizeof(int32_t));                      \
        float *work = malloc(dims * sizeof(float));                                             \
        uint64_t state = job->seed & 0xFFFFFFFFFFFFULL;                                         \
        int64_t trained = 0;                                                                    \
        const float alpha_span = job->alpha_start - job->alpha_end;                             \
        int64_t pending = 0;                                                                    \
        int64_t done = __atomic_load_n(job->words_done, __ATOMIC_RELAXED);                      \
        float alpha = job->alpha_start - alpha_span * (float)((double)done / (double)job->total_words); \
        if (alpha < job->alpha_end) alpha = job->alpha_end;                                     \
        for (size_t s = job->first_sentence; s < job->end_sentence; s++) {                      \
            const int32_t *words = job->corpus + job->sentence_offsets[s];                      \
            const size_t n = (size_t)(job->sentence_offsets[s + 1] - job->sentence_offsets[s]); \
            /* Progress is published in batches of PROGRESS_BATCH words: a shared counter     \
               bumped per (short) sentence would bounce its cache line between workers. */       \
            pending += (int64_t)n;                                                              \
            if (pending >= PROGRESS_BATCH) {                                                    \
                done = __atomic_add_fetch(job->words_done, pending, __ATOMIC_RELAXED);          \
                pending = 0;                                                                    \
                alpha = job->alpha_start - alpha_span * (float)((double)done / (double)job->total_words); \
                if (alpha < job->alpha_end) alpha = job->alpha_end;                             \
            }                                                                                   \
            size_t count = 0;                                                                   \
            for (size_t i = 0; i < n; i++) {                                                    \
                const int32_t w = words[i];                                                     \
                if (job->keep_threshold[w] < 0xFFFFFFFFu &&                                     \
                    job->keep_threshold[w] < (uint32_t)(next_random(&state) >> 16))             \
                    continue;                                                                   \
                kept[count++] = w;                                                              \
            }                                                                                   \
            trained += (int64_t)count;                                                          \
            for (size_t i = 0; i < count; i++) {                                                \
                const int32_t reduced = (int32_t)(next_random(&state) % (uint64_t)job->window); \
                const size_t span = (size_t)(job->window - reduced);                            \
                const size_t from = i > span ? i - span : 0;                                    \
                const size_t to = i + span + 1 < count ? i + span + 1 : count;                  \
                const int32_t word = kept[i];                                                   \
                for (size_t j = from; j < to; j++) {                                            \
                    if (j == i) continue;                                                       \
                    float *context = job->input + (size_t)kept[j] * dims;                       \
                    memset(work, 0, dims * sizeof(float));                                      \
                    for (int32_t d = 0; d <= job->negatives; d++) {                             \
                        int32_t target;                                                         \
                        float label;                                                            \
                        if (d == 0) {                                                           \
                            target = word;                                                      \
                            label = 1;                                                          \
                        } else {                                                                \
                            target = job->negative_table[(next_random(&state) >> 16) %          \
                                                         job->negative_table_size];             \
                            if (target == word) continue;                                       \
                            label = 0;                                                          \
                        }                                                                       \
                        float *weights = job->output + (size_t)target * dims;                   \
                        const float f = DOT(context, weights, dims);                            \
                        if (f <= -MAX_EXP || f >= MAX_EXP) continue;                            \
                        const int slot = (int)((f + MAX_EXP) * ((float)SIGMOID_TABLE_SIZE / MAX_EXP / 2)); \
                        const float g = (label - sigmoid[slot]) * alpha;                        \
                        AXPY(g, weights, work, dims);                                           \
                        AXPY(g, context, weights, dims);                                        \
                    }                                                                           \
                    AXPY(1.0f, work, context, dims);                                            \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
        __atomic_add_fetch(job->words_done, pending, __ATOMIC_RELAXED);                         \
        free(kept);                                                                             \
        free(work);                                                                             \
        return trained;                                                                         \
    }

#ifdef RK_X86
__attribute__((target("avx512f"))) static int64_t sgns_avx512(const rk_sgns_job *job)
    RK_SGNS_BODY(dot_avx512, axpy_avx512)
__attribute__((target("avx2,fma"))) static int64_t sgns_avx2(const rk_sgns_job *job)
    RK_SGNS_BODY(dot_avx2, axpy_avx2)
#endif
static int64_t sgns_scalar(const rk_sgns_job *job) RK_SGNS_BODY(dot_scalar, axpy_scalar)

int64_t rk_sgns_train(int isa, const rk_sgns_job *job) {
    if (job->window < 1 || job->negative_table_size == 0 || job->total_words <= 0) return 0;
#ifdef RK_X86
    if (isa >= RK_ISA_AVX512) return sgns_avx512(job);
    if (isa >= RK_ISA_AVX2) return sgns_avx2(job);
#endif
    (void)isa;
    return sgns_scalar(job);
}
