/* test_kb_vecmath.c -- phx-kb's distance kernels: the AVX2+FMA and portable implementations
 * agree with a double-precision reference (and so with each other) within float tolerance on
 * odd dimensions (tails of every length), and the exact search -- block kernel without a
 * filter, pair kernel with one -- returns the same ranking as a brute force over the portable
 * kernel, for every metric; the gather kernel (vectors picked by id) equals the block kernel
 * on the same vectors. On a CPU without AVX2 the AVX2 comparison is skipped (and says so);
 * the dispatching entry points are still checked. The int8 kernels give exactly the integer
 * dot product on every tail length and at the extremes (no int16 saturation), and the exact
 * search over the int8 copy with float32 re-ranking keeps recall@10 against the float32 scan
 * above 0.99 on a fixed seed (uniform and clustered data, dot and l2, and after deletes moved
 * slots around), returning float32 scores. */
#include "../../workers/kb/index.h"
#include "../../workers/kb/vecmath.h"
#include "kbrec.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static uint64_t rng_state;

static float rnd(void)
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* |got - want| within the worst-case float rounding of a sum of dim terms whose absolute
 * values sum to mag, as the kernels add it (8+ lanes of about dim/8 terms each, then the
 * lanes): (dim/8 + 8) roundings of at most FLT_EPSILON/2 relative to mag, doubled for slack.
 * A term left out or counted twice (a tail bug) is far outside this. */
static void near(double got, double want, double mag, int dim, const char *what)
{
    double tol = (dim / 8 + 8) * 1.2e-7 * mag + 1e-7;
    if (fabs(got - want) > tol)
        fail_msg("%s dim %d: %.9g vs %.9g (tolerance %.3g)", what, dim, got, want, tol);
}

static void test_kernels_agree(void **st)
{
    (void)st;
    static const int dims[] = {1, 3, 17, 384, 385};
    enum { NV = 11 }; /* several vectors through the block kernel */
    int avx2 = phx_kb_simd_avx2();
    if (!avx2)
        printf("# this CPU has no AVX2+FMA: only the portable kernels are checked\n");
    rng_state = 0x9E3779B97F4A7C15ULL;
    for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
        int dim = dims[di];
        float *q = malloc(sizeof(float) * (size_t)dim);
        float *v = malloc(sizeof(float) * (size_t)dim * NV);
        float got_p[NV], got_a[NV], got_d[NV];
        for (int i = 0; i < dim; i++)
            q[i] = rnd();
        for (int i = 0; i < dim * NV; i++)
            v[i] = rnd();
        for (int l2 = 0; l2 <= 1; l2++) {
            phx_kb_scores_portable(q, v, NV, dim, l2, got_p);
            phx_kb_scores(q, v, NV, dim, l2, got_d);
            if (avx2)
                phx_kb_scores_avx2(q, v, NV, dim, l2, got_a);
            /* The gather kernel (HNSW neighbours) runs the same pair kernel on vectors picked
             * by id, so it equals the block kernel's result for that vector bit for bit. */
            int32_t ids[NV];
            float gat_p[NV], gat_a[NV], gat_d[NV];
            for (int j = 0; j < NV; j++)
                ids[j] = (int32_t)((j * 7 + 3) % NV);
            phx_kb_scores_gather_portable(q, v, ids, NV, dim, l2, gat_p);
            phx_kb_scores_gather(q, v, ids, NV, dim, l2, gat_d);
            if (avx2)
                phx_kb_scores_gather_avx2(q, v, ids, NV, dim, l2, gat_a);
            for (int j = 0; j < NV; j++) {
                assert_true(gat_p[j] == got_p[ids[j]]);
                assert_true(gat_d[j] == got_d[ids[j]]);
                if (avx2)
                    assert_true(gat_a[j] == got_a[ids[j]]);
            }
            for (int j = 0; j < NV; j++) {
                const float *x = v + (size_t)j * dim;
                double want = 0, mag = 0;
                for (int i = 0; i < dim; i++) {
                    double t =
                        l2 ? ((double)q[i] - x[i]) * ((double)q[i] - x[i]) : (double)q[i] * x[i];
                    want += t;
                    mag += fabs(t);
                }
                const char *name = l2 ? "l2sq" : "dot";
                float pair_p =
                    l2 ? phx_kb_l2sq_portable(q, x, dim) : phx_kb_dot_portable(q, x, dim);
                float pair_d = l2 ? phx_kb_l2sq(q, x, dim) : phx_kb_dot(q, x, dim);
                near(pair_p, want, mag, dim, name);
                near(pair_d, want, mag, dim, name);
                near(got_p[j], want, mag, dim, name);
                near(got_d[j], want, mag, dim, name);
                if (avx2) {
                    float pair_a = l2 ? phx_kb_l2sq_avx2(q, x, dim) : phx_kb_dot_avx2(q, x, dim);
                    near(pair_a, want, mag, dim, name);
                    near(got_a[j], want, mag, dim, name);
                    near(pair_a, pair_p, mag, dim, name);
                }
            }
        }
        free(q);
        free(v);
    }
}

static int cmp_desc(const void *a, const void *b)
{
    const phx_kb_hit *x = a, *y = b;
    return x->score < y->score ? 1 : x->score > y->score ? -1 : 0;
}

/* The index's search (whichever kernel this CPU uses) = brute force with the portable one. */
static void test_search_identical(void **st)
{
    (void)st;
    enum { N = 1003, DIM = 385, K = 20 };
    static const int metrics[] = {PHX_KB_COSINE, PHX_KB_DOT, PHX_KB_L2};
    phx_kb_index x;
    phx_kb_index_init(&x, DIM);
    float *all = malloc(sizeof(float) * N * DIM);
    rng_state = 42;
    for (int i = 0; i < N; i++) {
        for (int d = 0; d < DIM; d++)
            all[i * DIM + d] = rnd();
        char id[16];
        snprintf(id, sizeof(id), "v%d", i);
        phx_kb_rec r = {.dim = DIM, .text = "", .importance = 0.5f};
        size_t len;
        unsigned char *b = phx_kb_rec_encode(id, &r, all + i * DIM, &len);
        phx_kb_rec dec;
        char why[64];
        assert_int_equal(phx_kb_rec_decode(id, b, len, &dec, why, sizeof(why)), 0);
        phx_kb_index_put(&x, id, &dec);
        free(b);
    }
    phx_kb_hit *ref = malloc(sizeof(*ref) * N);
    json_t *all_match = json_object(); /* an empty filter: every item, through the pair path */
    for (size_t m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
        const float *q = all + 5 * DIM;
        for (size_t s = 0; s < x.n; s++) {
            const float *v = x.vecs + s * DIM;
            float sc = metrics[m] == PHX_KB_L2 ? -sqrtf(phx_kb_l2sq_portable(q, v, DIM))
                                               : phx_kb_dot_portable(q, v, DIM);
            ref[s] = (phx_kb_hit){s, sc};
        }
        qsort(ref, x.n, sizeof(*ref), cmp_desc);
        for (int filtered = 0; filtered <= 1; filtered++) {
            phx_kb_hit hits[K];
            size_t scanned;
            size_t n = phx_kb_index_search(&x, metrics[m], q, K, filtered ? all_match : NULL,
                                           -INFINITY, 0, hits, &scanned);
            assert_int_equal(n, K);
            assert_int_equal(scanned, N);
            for (int i = 0; i < K; i++) {
                if (hits[i].slot != ref[i].slot)
                    fail_msg("metric %d filtered %d: rank %d is slot %zu, brute force says %zu",
                             metrics[m], filtered, i, hits[i].slot, ref[i].slot);
                assert_true(fabsf(hits[i].score - ref[i].score) <= 1e-3f);
            }
        }
    }
    json_decref(all_match);
    free(ref);
    free(all);
    phx_kb_index_free(&x);
}

static void test_i8_kernels(void **st)
{
    (void)st;
    static const int dims[] = {1, 3, 31, 32, 33, 63, 64, 65, 100, 384, 385};
    enum { NV = 5 };
    int avx2 = phx_kb_simd_avx2();
    rng_state = 7;
    for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
        int dim = dims[di];
        float *f = malloc(sizeof(float) * (size_t)dim);
        int8_t *q = malloc((size_t)dim), *v = malloc((size_t)dim * NV);
        int32_t got_p[NV], got_a[NV], got_d[NV];
        for (int i = 0; i < dim; i++)
            f[i] = rnd() * 3;
        float scale = phx_kb_quantize_i8(f, dim, q);
        for (int i = 0; i < dim; i++) {
            assert_true(q[i] >= -127 && q[i] <= 127);
            assert_true(fabsf(scale * q[i] - f[i]) <= scale * 0.5f + 1e-6f);
        }
        /* Vector 0: every byte at an extreme (sign opposite to q's where it can), the worst
         * case for an int16 intermediate; the others random. */
        for (int i = 0; i < dim; i++)
            v[i] = q[i] < 0 ? 127 : -127;
        for (int i = dim; i < dim * NV; i++)
            v[i] = (int8_t)(rnd() * 127);
        phx_kb_scores_i8_portable(q, v, NV, dim, got_p);
        phx_kb_scores_i8(q, v, NV, dim, got_d);
        if (avx2)
            phx_kb_scores_i8_avx2(q, v, NV, dim, got_a);
        for (int j = 0; j < NV; j++) {
            int32_t want = 0;
            for (int i = 0; i < dim; i++)
                want += q[i] * v[j * dim + i];
            assert_int_equal(got_p[j], want);
            assert_int_equal(got_d[j], want);
            if (avx2)
                assert_int_equal(got_a[j], want);
        }
        free(f);
        free(q);
        free(v);
    }
    /* A zero vector quantises to zeros with scale 0 (no division by zero). */
    float z[4] = {0};
    int8_t zq[4] = {1, 1, 1, 1};
    assert_true(phx_kb_quantize_i8(z, 4, zq) == 0.0f);
    assert_int_equal(zq[0] | zq[1] | zq[2] | zq[3], 0);
}

/* Put vectors all[0..n) as items "v<i>" into x. */
static void put_all(phx_kb_index *x, const float *all, int n, int dim)
{
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof(id), "v%d", i);
        phx_kb_rec r = {.dim = (uint32_t)dim, .text = "", .importance = 0.5f};
        size_t len;
        unsigned char *b = phx_kb_rec_encode(id, &r, all + (size_t)i * dim, &len);
        phx_kb_rec dec;
        char why[64];
        assert_int_equal(phx_kb_rec_decode(id, b, len, &dec, why, sizeof(why)), 0);
        phx_kb_index_put(x, id, &dec);
        free(b);
    }
}

/* recall@k of the int8 index y against the float32 index x (same items) over nq queries. */
static double i8_recall(const phx_kb_index *x, const phx_kb_index *y, int metric, const float *qs,
                        int nq, int dim)
{
    enum { K = 10 };
    int found = 0;
    for (int qi = 0; qi < nq; qi++) {
        phx_kb_hit a[K], b[K];
        size_t sa, sb;
        const float *q = qs + (size_t)qi * dim;
        size_t na = phx_kb_index_search(x, metric, q, K, NULL, -INFINITY, 0, a, &sa);
        size_t nb = phx_kb_index_search(y, metric, q, K, NULL, -INFINITY, 0, b, &sb);
        assert_int_equal(na, K);
        assert_int_equal(nb, K);
        assert_int_equal(sa, sb); /* both score every live vector */
        for (int i = 0; i < K; i++) {
            long s = phx_kb_index_find(x, y->items[b[i].slot].id);
            assert_true(s >= 0); /* never a deleted item */
            for (int j = 0; j < K; j++)
                if ((size_t)s == a[j].slot) {
                    found++;
                    /* re-ranked in float32: the very score the float32 scan computes */
                    assert_true(fabsf(a[j].score - b[i].score) <= 1e-5f);
                }
        }
    }
    return (double)found / (nq * K);
}

static void test_int8_recall(void **st)
{
    (void)st;
    enum { N = 4000, DIM = 384, NQ = 100, RERANK = 4 };
    float *all = malloc(sizeof(float) * N * DIM), *qs = malloc(sizeof(float) * NQ * DIM);
    float *centres = malloc(sizeof(float) * 50 * DIM);
    for (int clustered = 0; clustered <= 1; clustered++) {
        rng_state = 1234 + (uint64_t)clustered;
        for (int i = 0; i < 50 * DIM; i++)
            centres[i] = rnd();
        for (int i = 0; i < N + NQ; i++) {
            float *v = i < N ? all + (size_t)i * DIM : qs + (size_t)(i - N) * DIM;
            double norm = 0;
            int c = (int)((rnd() + 1) * 24.99f);
            for (int d = 0; d < DIM; d++) {
                v[d] = clustered ? centres[c * DIM + d] + 0.1f * rnd() : rnd();
                norm += (double)v[d] * v[d];
            }
            for (int d = 0; d < DIM; d++)
                v[d] = (float)(v[d] / sqrt(norm));
        }
        phx_kb_index x, y;
        phx_kb_index_init(&x, DIM);
        phx_kb_index_init(&y, DIM);
        phx_kb_index_set_int8(&y, RERANK);
        put_all(&x, all, N, DIM);
        put_all(&y, all, N, DIM);
        for (int metric = PHX_KB_COSINE; metric <= PHX_KB_L2; metric += PHX_KB_L2) {
            double r = i8_recall(&x, &y, metric, qs, NQ, DIM);
            print_message("int8 x%d recall@10 %s %s: %.4f\n", RERANK,
                          clustered ? "clustered" : "uniform", metric ? "l2" : "dot", r);
            assert_true(r >= 0.99);
        }
        /* Delete every third item: slots move, the int8 copy must move with them. */
        for (int i = 0; i < N; i += 3) {
            char id[16];
            snprintf(id, sizeof(id), "v%d", i);
            assert_int_equal(phx_kb_index_del(&x, id), 1);
            assert_int_equal(phx_kb_index_del(&y, id), 1);
        }
        double r = i8_recall(&x, &y, PHX_KB_COSINE, qs, NQ, DIM);
        print_message("int8 x%d recall@10 %s after deletes: %.4f\n", RERANK,
                      clustered ? "clustered" : "uniform", r);
        assert_true(r >= 0.99);
        phx_kb_index_free(&x);
        phx_kb_index_free(&y);
    }
    free(all);
    free(qs);
    free(centres);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels_agree),
        cmocka_unit_test(test_search_identical),
        cmocka_unit_test(test_i8_kernels),
        cmocka_unit_test(test_int8_recall),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
