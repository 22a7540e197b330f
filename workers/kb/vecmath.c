/* vecmath.c -- phx-kb's distance kernels, portable and AVX2+FMA (see vecmath.h).
 *
 * Why the AVX2 path is faster than the portable one beyond the width: a dot product is one
 * long chain of dependent adds, so a single accumulator runs at the add latency (4 cycles)
 * instead of the FMA throughput (2 per cycle). The kernels keep several independent
 * accumulators (32 floats per iteration). */
#include "vecmath.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* --- portable: GCC vector extensions -------------------------------------------------------- */

/* 8 floats per operation, lowered to SSE (two registers) or AVX as the build's target allows;
 * two of them make 16 independent lanes. */
typedef float phx_v8f __attribute__((vector_size(32)));

/* By pointer: a 32-byte vector passed by value draws GCC's -Wpsabi note on SSE2 targets. */
static float phx_kb_hsum8(const phx_v8f *v)
{
    const phx_v8f a = *v;
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

float phx_kb_dot_portable(const float *a, const float *b, int dim)
{
    phx_v8f acc0 = {0}, acc1 = {0}, va, vb, wa, wb;
    int i = 0;
    for (; i + 16 <= dim; i += 16) {
        memcpy(&va, a + i, sizeof(va));
        memcpy(&vb, b + i, sizeof(vb));
        memcpy(&wa, a + i + 8, sizeof(wa));
        memcpy(&wb, b + i + 8, sizeof(wb));
        acc0 += va * vb;
        acc1 += wa * wb;
    }
    for (; i + 8 <= dim; i += 8) {
        memcpy(&va, a + i, sizeof(va));
        memcpy(&vb, b + i, sizeof(vb));
        acc0 += va * vb;
    }
    acc0 += acc1;
    float s = phx_kb_hsum8(&acc0);
    for (; i < dim; i++)
        s += a[i] * b[i];
    return s;
}

float phx_kb_l2sq_portable(const float *a, const float *b, int dim)
{
    phx_v8f acc0 = {0}, acc1 = {0}, va, vb, wa, wb, d, e;
    int i = 0;
    for (; i + 16 <= dim; i += 16) {
        memcpy(&va, a + i, sizeof(va));
        memcpy(&vb, b + i, sizeof(vb));
        memcpy(&wa, a + i + 8, sizeof(wa));
        memcpy(&wb, b + i + 8, sizeof(wb));
        d = va - vb;
        e = wa - wb;
        acc0 += d * d;
        acc1 += e * e;
    }
    for (; i + 8 <= dim; i += 8) {
        memcpy(&va, a + i, sizeof(va));
        memcpy(&vb, b + i, sizeof(vb));
        d = va - vb;
        acc0 += d * d;
    }
    acc0 += acc1;
    float s = phx_kb_hsum8(&acc0);
    for (; i < dim; i++)
        s += (a[i] - b[i]) * (a[i] - b[i]);
    return s;
}

void phx_kb_scores_portable(const float *q, const float *vecs, size_t n, int dim, int l2,
                            float *out)
{
    for (size_t i = 0; i < n; i++) {
        const float *v = vecs + i * (size_t)dim;
        out[i] = l2 ? phx_kb_l2sq_portable(q, v, dim) : phx_kb_dot_portable(q, v, dim);
    }
}

/* --- AVX2 + FMA ------------------------------------------------------------------------------ */

#if defined(__x86_64__)
#define PHX_KB_AVX2 __attribute__((target("avx2,fma")))

PHX_KB_AVX2 static float phx_kb_hsum256(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* One term of the sum for 8 lanes: a*b, or (a-b)^2 for l2, added to acc. */
PHX_KB_AVX2 static inline __m256 phx_kb_term(__m256 acc, __m256 a, __m256 b, int l2)
{
    if (l2) {
        __m256 d = _mm256_sub_ps(a, b);
        return _mm256_fmadd_ps(d, d, acc);
    }
    return _mm256_fmadd_ps(a, b, acc);
}

/* Scalar tail (dim % 8 elements) of one pair. */
static inline float phx_kb_tail(const float *a, const float *b, int from, int dim, int l2)
{
    float s = 0;
    for (int i = from; i < dim; i++)
        s += l2 ? (a[i] - b[i]) * (a[i] - b[i]) : a[i] * b[i];
    return s;
}

PHX_KB_AVX2 static inline float phx_kb_pair_avx2(const float *a, const float *b, int dim, int l2)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int i = 0;
    for (; i + 32 <= dim; i += 32) {
        acc0 = phx_kb_term(acc0, _mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), l2);
        acc1 = phx_kb_term(acc1, _mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), l2);
        acc2 = phx_kb_term(acc2, _mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), l2);
        acc3 = phx_kb_term(acc3, _mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), l2);
    }
    for (; i + 8 <= dim; i += 8)
        acc0 = phx_kb_term(acc0, _mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), l2);
    __m256 acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
    return phx_kb_hsum256(acc) + phx_kb_tail(a, b, i, dim, l2);
}

PHX_KB_AVX2 float phx_kb_dot_avx2(const float *a, const float *b, int dim)
{
    return phx_kb_pair_avx2(a, b, dim, 0);
}

PHX_KB_AVX2 float phx_kb_l2sq_avx2(const float *a, const float *b, int dim)
{
    return phx_kb_pair_avx2(a, b, dim, 1);
}

/* One vector at a time with four accumulators. A 4-vectors-per-pass variant (the query's 8
 * floats loaded once for 4 FMAs, 2 accumulators per vector) was measured and dropped: at 384
 * dims it ran 8-10 M vectors/s out of cache (20,000 vectors) and 21 M/s in cache (2,000)
 * against 17-18 and 28-29 M/s for this loop (thread CPU time, 2 shared vCPUs): one sequential
 * stream suits the prefetcher better than four, and 4 accumulators already cover the FMA
 * latency. */
PHX_KB_AVX2 void phx_kb_scores_avx2(const float *q, const float *vecs, size_t n, int dim, int l2,
                                    float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = phx_kb_pair_avx2(q, vecs + i * (size_t)dim, dim, l2);
}

int phx_kb_simd_avx2(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
/* Not x86-64: the portable kernels are all there is. */
float phx_kb_dot_avx2(const float *a, const float *b, int dim)
{
    return phx_kb_dot_portable(a, b, dim);
}

float phx_kb_l2sq_avx2(const float *a, const float *b, int dim)
{
    return phx_kb_l2sq_portable(a, b, dim);
}

void phx_kb_scores_avx2(const float *q, const float *vecs, size_t n, int dim, int l2, float *out)
{
    phx_kb_scores_portable(q, vecs, n, dim, l2, out);
}

int phx_kb_simd_avx2(void)
{
    return 0;
}
#endif

/* --- dispatch ---------------------------------------------------------------------------------
 * __builtin_cpu_supports reads a word the runtime filled at start-up: checking it on every
 * call costs a load and a branch (predicted), and needs no function pointer of our own to
 * initialise (no mutable global state). */

float phx_kb_dot(const float *a, const float *b, int dim)
{
    return phx_kb_simd_avx2() ? phx_kb_dot_avx2(a, b, dim) : phx_kb_dot_portable(a, b, dim);
}

float phx_kb_l2sq(const float *a, const float *b, int dim)
{
    return phx_kb_simd_avx2() ? phx_kb_l2sq_avx2(a, b, dim) : phx_kb_l2sq_portable(a, b, dim);
}

void phx_kb_scores(const float *q, const float *vecs, size_t n, int dim, int l2, float *out)
{
    if (phx_kb_simd_avx2())
        phx_kb_scores_avx2(q, vecs, n, dim, l2, out);
    else
        phx_kb_scores_portable(q, vecs, n, dim, l2, out);
}
