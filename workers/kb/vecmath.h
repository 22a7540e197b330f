/* vecmath.h -- the distance kernels behind phx-kb's searches: dot product and squared L2
 * distance, one pair at a time (HNSW) or one query against a block of contiguous vectors (the
 * exact scan).
 *
 * Two implementations: a portable one (GCC vector extensions, lowered to whatever the build's
 * target has -- SSE2 on plain x86-64) and an AVX2+FMA one compiled with a per-function target
 * attribute. The public entry points pick AVX2 at run time with __builtin_cpu_supports, so one
 * binary runs everywhere and uses the wider units where they exist. Both are exported so tests
 * can check they agree. Results of the two differ only by float rounding (different summation
 * order), never by more than a few ulps of the sum's magnitude. */
#ifndef PHX_KB_VECMATH_H
#define PHX_KB_VECMATH_H

#include <stddef.h>
#include <stdint.h>

/* Dispatching entry points. */
float phx_kb_dot(const float *a, const float *b, int dim);
float phx_kb_l2sq(const float *a, const float *b, int dim);
/* out[i] = dot(q, vecs + i*dim) (l2 == 0) or l2sq(q, vecs + i*dim) (l2 == 1), i < n. */
void phx_kb_scores(const float *q, const float *vecs, size_t n, int dim, int l2, float *out);
/* out[i] = the same score of q against base + ids[i]*dim, i < n: the HNSW graph's neighbours,
 * scattered through memory. While one vector is scored the next one's cache lines are
 * prefetched, so the memory latency of a random vector (the cost of a graph walk at 1M
 * vectors, where the vectors are far larger than the cache) overlaps the arithmetic. */
void phx_kb_scores_gather(const float *q, const float *base, const int32_t *ids, size_t n, int dim,
                          int l2, float *out);

/* int8 quantisation (the exact scan's optional compact copy, index.h): v ~= scale * out, one
 * symmetric scale per vector (max |v| / 127, so every element lands in -127..127 and -128
 * never occurs: the AVX2 kernel's sign trick needs that). Returns scale (0 for a zero vector,
 * whose out is all zeros). */
float phx_kb_quantize_i8(const float *v, int dim, int8_t *out);
/* out[i] = sum q[d] * vecs[i*dim + d] in exact integer arithmetic, i < n. */
void phx_kb_scores_i8(const int8_t *q, const int8_t *vecs, size_t n, int dim, int32_t *out);

/* 1 when this CPU runs the AVX2+FMA kernels (what the entry points use). */
int phx_kb_simd_avx2(void);

/* The implementations, for tests and benchmarks. The _avx2 ones must only be called when
 * phx_kb_simd_avx2() is 1. */
float phx_kb_dot_portable(const float *a, const float *b, int dim);
float phx_kb_l2sq_portable(const float *a, const float *b, int dim);
void phx_kb_scores_portable(const float *q, const float *vecs, size_t n, int dim, int l2,
                            float *out);
float phx_kb_dot_avx2(const float *a, const float *b, int dim);
float phx_kb_l2sq_avx2(const float *a, const float *b, int dim);
void phx_kb_scores_avx2(const float *q, const float *vecs, size_t n, int dim, int l2, float *out);
void phx_kb_scores_gather_portable(const float *q, const float *base, const int32_t *ids, size_t n,
                                   int dim, int l2, float *out);
void phx_kb_scores_gather_avx2(const float *q, const float *base, const int32_t *ids, size_t n,
                               int dim, int l2, float *out);
void phx_kb_scores_i8_portable(const int8_t *q, const int8_t *vecs, size_t n, int dim,
                               int32_t *out);
void phx_kb_scores_i8_avx2(const int8_t *q, const int8_t *vecs, size_t n, int dim, int32_t *out);

#endif
