/* vecmath.c -- phx-kb's distance kernels, portable and AVX2+FMA (see vecmath.h).
 *
 * Why the AVX2 path is faster than the portable one beyond the width: a dot product is one
 * long chain of dependent adds, so a single accumulator runs at the add latency (4 cycles)
 * instead of the FMA throughput (2 per cycle). The kernels keep several independent
 * accumulators (32 floats per iteration). */
#include "vecmath.h"

#include <math.h>
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

/* Every cache line of one vector, ahead of its use (see phx_kb_scores_gather). Only the first
 * line would leave the rest to the hardware prefetcher, which starts late and stops at page
 * boundaries; 24 prefetches for a 384-dim vector cost less than one miss. */
static inline void phx_kb_prefetch_vec(const float *v, int dim)
{
    const char *p = (const char *)v, *end = (const char *)(v + dim);
    for (; p < end; p += 64)
        __builtin_prefetch(p, 0, 3);
}

void phx_kb_scores_gather_portable(const float *q, const float *base, const int32_t *ids, size_t n,
                                   int dim, int l2, float *out)
{
    if (n > 0)
        phx_kb_prefetch_vec(base + (size_t)ids[0] * (size_t)dim, dim);
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n)
            phx_kb_prefetch_vec(base + (size_t)ids[i + 1] * (size_t)dim, dim);
        const float *v = base + (size_t)ids[i] * (size_t)dim;
        out[i] = l2 ? phx_kb_l2sq_portable(q, v, dim) : phx_kb_dot_portable(q, v, dim);
    }
}

float phx_kb_quantize_i8(const float *v, int dim, int8_t *out)
{
    float m = 0;
    for (int i = 0; i < dim; i++)
        m = fmaxf(m, fabsf(v[i]));
    if (!(m > 0) || !isfinite(m)) {
        memset(out, 0, (size_t)dim);
        return 0;
    }
    float inv = 127.0f / m;
    for (int i = 0; i < dim; i++) {
        long x = lrintf(v[i] * inv);
        out[i] = (int8_t)(x > 127 ? 127 : x < -127 ? -127 : x);
    }
    return m / 127.0f;
}

/* Plain loops: int8 x int8 into int32 is a pattern GCC vectorises by itself at -O2 -ftree-
 * vectorize and above; at -O2 alone it stays scalar, which is what the AVX2 path is for. */
void phx_kb_scores_i8_portable(const int8_t *q, const int8_t *vecs, size_t n, int dim, int32_t *out)
{
    for (size_t i = 0; i < n; i++) {
        const int8_t *v = vecs + i * (size_t)dim;
        int32_t s = 0;
        for (int d = 0; d < dim; d++)
            s += (int32_t)q[d] * (int32_t)v[d];
        out[i] = s;
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

PHX_KB_AVX2 void phx_kb_scores_gather_avx2(const float *q, const float *base, const int32_t *ids,
                                           size_t n, int dim, int l2, float *out)
{
    if (n > 0)
        phx_kb_prefetch_vec(base + (size_t)ids[0] * (size_t)dim, dim);
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n)
            phx_kb_prefetch_vec(base + (size_t)ids[i + 1] * (size_t)dim, dim);
        out[i] = phx_kb_pair_avx2(q, base + (size_t)ids[i] * (size_t)dim, dim, l2);
    }
}

/* int8 dot products, 32 elements per step. _mm256_maddubs_epi16 multiplies unsigned by signed
 * bytes, so the query goes in as |q| and each vector byte takes q's sign (_mm256_sign_epi8):
 * |q| * sign(v, q) = q * v. Pairs of products are summed into int16 (at most 2 * 127 * 127 =
 * 32258: no saturation, as no byte is -128), then _mm256_madd_epi16 with ones widens them into
 * int32 accumulators. Two accumulators per vector: 64 bytes in flight. */
PHX_KB_AVX2 void phx_kb_scores_i8_avx2(const int8_t *q, const int8_t *vecs, size_t n, int dim,
                                       int32_t *out)
{
    const __m256i ones = _mm256_set1_epi16(1);
    for (size_t i = 0; i < n; i++) {
        const int8_t *v = vecs + i * (size_t)dim;
        __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0;
        int d = 0;
        for (; d + 64 <= dim; d += 64) {
            __m256i q0 = _mm256_loadu_si256((const __m256i *)(q + d));
            __m256i q1 = _mm256_loadu_si256((const __m256i *)(q + d + 32));
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(v + d));
            __m256i v1 = _mm256_loadu_si256((const __m256i *)(v + d + 32));
            __m256i p0 = _mm256_maddubs_epi16(_mm256_abs_epi8(q0), _mm256_sign_epi8(v0, q0));
            __m256i p1 = _mm256_maddubs_epi16(_mm256_abs_epi8(q1), _mm256_sign_epi8(v1, q1));
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p0, ones));
            acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(p1, ones));
        }
        for (; d + 32 <= dim; d += 32) {
            __m256i q0 = _mm256_loadu_si256((const __m256i *)(q + d));
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(v + d));
            __m256i p0 = _mm256_maddubs_epi16(_mm256_abs_epi8(q0), _mm256_sign_epi8(v0, q0));
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p0, ones));
        }
        __m256i acc = _mm256_add_epi32(acc0, acc1);
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
        int32_t t = _mm_cvtsi128_si32(s);
        for (; d < dim; d++)
            t += (int32_t)q[d] * (int32_t)v[d];
        out[i] = t;
    }
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

void phx_kb_scores_i8_avx2(const int8_t *q, const int8_t *vecs, size_t n, int dim, int32_t *out)
{
    phx_kb_scores_i8_portable(q, vecs, n, dim, out);
}

void phx_kb_scores_gather_avx2(const float *q, const float *base, const int32_t *ids, size_t n,
                               int dim, int l2, float *out)
{
    phx_kb_scores_gather_portable(q, base, ids, n, dim, l2, out);
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

void phx_kb_scores_gather(const float *q, const float *base, const int32_t *ids, size_t n, int dim,
                          int l2, float *out)
{
    if (phx_kb_simd_avx2())
        phx_kb_scores_gather_avx2(q, base, ids, n, dim, l2, out);
    else
        phx_kb_scores_gather_portable(q, base, ids, n, dim, l2, out);
}

void phx_kb_scores_i8(const int8_t *q, const int8_t *vecs, size_t n, int dim, int32_t *out)
{
    if (phx_kb_simd_avx2())
        phx_kb_scores_i8_avx2(q, vecs, n, dim, out);
    else
        phx_kb_scores_i8_portable(q, vecs, n, dim, out);
}
