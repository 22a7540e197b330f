/* test_kb.c -- phx-kb's pure parts: the record format (CRC32C, round trip, every kind of
 * damage detected), metadata filters, and the in-memory index (put/replace/delete keep the
 * id map consistent; exact search equals a brute-force ranking on a fixed seed). */
#include "../../workers/kb/filter.h"
#include "../../workers/kb/hnsw.h"
#include "../../workers/kb/index.h"
#include "kbrec.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_crc32c_known(void **st)
{
    (void)st;
    /* The check value of CRC-32C (Castagnoli) over "123456789". */
    assert_int_equal(phx_crc32c(0, "123456789", 9), 0xE3069283u);
    /* Incremental == one shot (the record CRC is computed in two pieces). */
    uint32_t c = phx_crc32c(0, "1234", 4);
    assert_int_equal(phx_crc32c(c, "56789", 5), 0xE3069283u);
}

static unsigned char *make_rec(const char *id, size_t *len)
{
    float v[3] = {0.5f, -1.25f, 3.0f};
    phx_kb_rec r = {.dim = 3,
                    .created_ms = 1000,
                    .updated_ms = 2000,
                    .expires_ms = 0,
                    .importance = 0.75f,
                    .text = "hello",
                    .text_len = 5,
                    .meta = "{\"a\":1}",
                    .meta_len = 7};
    return phx_kb_rec_encode(id, &r, v, len);
}

static void test_record_roundtrip(void **st)
{
    (void)st;
    size_t len;
    unsigned char *b = make_rec("doc1", &len);
    phx_kb_rec r;
    char why[160];
    assert_int_equal(phx_kb_rec_decode("doc1", b, len, &r, why, sizeof(why)), 0);
    assert_int_equal(r.dim, 3);
    assert_int_equal(r.updated_ms, 2000);
    assert_true(r.importance == 0.75f);
    assert_memory_equal(r.text, "hello", 5);
    assert_memory_equal(r.meta, "{\"a\":1}", 7);
    float f;
    memcpy(&f, r.vec + 4, 4);
    assert_true(f == -1.25f);
    free(b);
}

static void test_record_damage(void **st)
{
    (void)st;
    size_t len;
    unsigned char *b = make_rec("doc1", &len);
    phx_kb_rec r;
    char why[160];
    /* Every single-bit flip anywhere is caught. */
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (unsigned char)(1 << bit);
            assert_int_equal(phx_kb_rec_decode("doc1", b, len, &r, why, sizeof(why)), -1);
            b[i] ^= (unsigned char)(1 << bit);
        }
    /* The same bytes under another id, truncated, or with bytes appended. */
    assert_int_equal(phx_kb_rec_decode("doc2", b, len, &r, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "crc mismatch"));
    assert_int_equal(phx_kb_rec_decode("doc1", b, len - 1, &r, why, sizeof(why)), -1);
    assert_int_equal(phx_kb_rec_decode("doc1", b, 10, &r, why, sizeof(why)), -1);
    free(b);
}

static void test_filters(void **st)
{
    (void)st;
    json_t *meta = json_pack("{s:s, s:i, s:b}", "lang", "en", "year", 2022, "draft", 0);
    struct {
        const char *f;
        int match;
    } cases[] = {
        {"{}", 1},
        {"{\"lang\": \"en\"}", 1},
        {"{\"lang\": \"de\"}", 0},
        {"{\"year\": 2022.0}", 1},
        {"{\"year\": {\"$gte\": 2020, \"$lt\": 2023}}", 1},
        {"{\"year\": {\"$gt\": 2022}}", 0},
        {"{\"lang\": {\"$in\": [\"fr\", \"en\"]}}", 1},
        {"{\"lang\": {\"$ne\": \"en\"}}", 0},
        {"{\"missing\": {\"$ne\": 1}}", 1},
        {"{\"missing\": 1}", 0},
        {"{\"draft\": false, \"lang\": \"en\"}", 1},
        {"{\"lang\": {\"$gt\": \"de\"}}", 1},
        {"{\"year\": {\"$gt\": \"a\"}}", 0}, /* number vs string: not ordered, no match */
    };
    phx_err err;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *f = json_loads(cases[i].f, 0, NULL);
        assert_non_null(f);
        assert_int_equal(phx_kb_filter_check(f, &err), 0);
        if (phx_kb_filter_match(f, meta) != cases[i].match)
            fail_msg("filter %s: want %d", cases[i].f, cases[i].match);
        json_decref(f);
    }
    const char *bad[] = {"[]",
                         "{\"a\": {\"$regex\": \"x\"}}",
                         "{\"a\": {}}",
                         "{\"a\": {\"$in\": 3}}",
                         "{\"a\": {\"$gt\": true}}",
                         "{\"a\": [1]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *f = json_loads(bad[i], 0, NULL);
        phx_err_clear(&err);
        if (phx_kb_filter_check(f, &err) != -1 || strcmp(err.code, "invalid_input") != 0)
            fail_msg("filter %s should be refused", bad[i]);
        json_decref(f);
    }
    json_decref(meta);
}

/* Put one vector under id (through an encoded record, as the load does). */
static void put_one(phx_kb_index *x, const char *id, const float *v, int dim)
{
    phx_kb_rec r = {.dim = (uint32_t)dim, .text = "", .importance = 0.5f};
    size_t len;
    unsigned char *b = phx_kb_rec_encode(id, &r, v, &len);
    phx_kb_rec dec;
    char why[64];
    assert_int_equal(phx_kb_rec_decode(id, b, len, &dec, why, sizeof(why)), 0);
    phx_kb_index_put(x, id, &dec);
    free(b);
}

/* Put n random unit vectors (fixed seed) into x under ids "v<i>". */
static void fill(phx_kb_index *x, float *all, int n, int dim, unsigned seed)
{
    srand(seed);
    for (int i = 0; i < n; i++) {
        double norm = 0;
        for (int d = 0; d < dim; d++) {
            all[i * dim + d] = (float)rand() / (float)RAND_MAX - 0.5f;
            norm += all[i * dim + d] * all[i * dim + d];
        }
        for (int d = 0; d < dim; d++)
            all[i * dim + d] /= (float)sqrt(norm);
        char id[16];
        snprintf(id, sizeof(id), "v%d", i);
        put_one(x, id, all + i * dim, dim);
    }
}

static void test_index_search_exact(void **st)
{
    (void)st;
    enum { N = 2000, DIM = 37, K = 10 }; /* 37: exercises the non-multiple-of-8 tail */
    phx_kb_index x;
    phx_kb_index_init(&x, DIM);
    float *all = malloc(sizeof(float) * N * DIM);
    fill(&x, all, N, DIM, 42);
    assert_int_equal(x.n, N);
    /* Delete every third, then check each survivor's id still maps to its own vector. */
    for (int i = 0; i < N; i += 3) {
        char id[16];
        snprintf(id, sizeof(id), "v%d", i);
        assert_int_equal(phx_kb_index_del(&x, id), 1);
        assert_int_equal(phx_kb_index_del(&x, id), 0);
    }
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof(id), "v%d", i);
        long s = phx_kb_index_find(&x, id);
        if (i % 3 == 0) {
            assert_int_equal(s, -1);
            continue;
        }
        assert_true(s >= 0);
        assert_memory_equal(x.vecs + (size_t)s * DIM, all + i * DIM, sizeof(float) * DIM);
    }
    /* Search = brute force over the survivors. */
    const float *q = all + 1 * DIM;
    phx_kb_hit hits[K];
    size_t scanned;
    size_t n = phx_kb_index_search(&x, PHX_KB_COSINE, q, K, NULL, -INFINITY, 0, hits, &scanned);
    assert_int_equal(n, K);
    assert_int_equal(scanned, x.n);
    assert_string_equal(x.items[hits[0].slot].id, "v1");
    for (size_t i = 1; i < n; i++)
        assert_true(hits[i - 1].score >= hits[i].score);
    /* Nothing left out scores above the k-th. */
    int above = 0;
    for (size_t s = 0; s < x.n; s++) {
        double dot = 0;
        for (int d = 0; d < DIM; d++)
            dot += (double)q[d] * x.vecs[s * DIM + d];
        above += dot > hits[K - 1].score + 1e-5;
    }
    assert_int_equal(above, K - 1);
    /* min_score and expiry are honoured. */
    n = phx_kb_index_search(&x, PHX_KB_COSINE, q, K, NULL, 0.99, 0, hits, &scanned);
    assert_int_equal(n, 1);
    x.items[phx_kb_index_find(&x, "v1")].expires_ms = 5;
    n = phx_kb_index_search(&x, PHX_KB_COSINE, q, K, NULL, 0.99, 10, hits, &scanned);
    assert_int_equal(n, 0);
    n = phx_kb_index_search(&x, PHX_KB_L2, q, 1, NULL, -INFINITY, 0, hits, &scanned);
    assert_true(hits[0].score <= 0);
    phx_kb_index_free(&x);
    free(all);
}

/* Recall@10 of HNSW against exact search on a fixed seed: uniform and clustered data, then again
 * after deleting a tenth (deleted nodes must never be returned). */
static double hnsw_recall(const float *all, int n, int dim, const uint8_t *gone,
                          const phx_kb_hnsw *h, int nq, unsigned seed)
{
    enum { K = 10 };
    srand(seed);
    double hit = 0;
    phx_kb_ann got[100];
    for (int qi = 0; qi < nq; qi++) {
        const float *q = all + (size_t)(rand() % n) * dim;
        /* Exact top K among live vectors (by dot product: they are unit length). */
        int best[K];
        float bs[K];
        for (int i = 0; i < K; i++)
            best[i] = -1, bs[i] = -1e30f;
        for (int i = 0; i < n; i++) {
            if (gone && gone[i])
                continue;
            float s = phx_kb_dot(q, all + (size_t)i * dim, dim);
            if (s <= bs[K - 1])
                continue;
            int j = K - 1;
            while (j > 0 && bs[j - 1] < s)
                bs[j] = bs[j - 1], best[j] = best[j - 1], j--;
            bs[j] = s, best[j] = i;
        }
        size_t m = phx_kb_hnsw_search(h, q, 100, got);
        for (size_t i = 0; i < m; i++)
            if (gone && gone[got[i].node])
                fail_msg("deleted node %d returned", got[i].node);
        for (int i = 0; i < K; i++)
            for (size_t j = 0; j < m && j < K; j++)
                if (got[j].node == best[i])
                    hit++;
    }
    return hit / (nq * K);
}

static void test_hnsw_recall(void **st)
{
    (void)st;
    enum { N = 6000, DIM = 32, NQ = 200 };
    float *all = malloc(sizeof(float) * N * DIM);
    for (int clustered = 0; clustered <= 1; clustered++) {
        srand(7 + clustered);
        float centres[20][DIM];
        for (int c = 0; c < 20; c++)
            for (int d = 0; d < DIM; d++)
                centres[c][d] = (float)rand() / (float)RAND_MAX - 0.5f;
        for (int i = 0; i < N; i++) {
            double norm = 0;
            for (int d = 0; d < DIM; d++) {
                float x = (float)rand() / (float)RAND_MAX - 0.5f;
                all[i * DIM + d] = clustered ? centres[i % 20][d] + 0.15f * x : x;
                norm += all[i * DIM + d] * all[i * DIM + d];
            }
            for (int d = 0; d < DIM; d++)
                all[i * DIM + d] /= (float)sqrt(norm);
        }
        /* The parallel build (two threads, per-node locks) must reach the same recall; its
         * nodes are numbered in the order of the vectors like one add at a time. */
        phx_kb_hnsw *hp = phx_kb_hnsw_new(DIM, PHX_KB_COSINE, 16, 100, 42);
        assert_int_equal(phx_kb_hnsw_add_many(hp, all, N - 500, 2), 0);
        assert_int_equal(phx_kb_hnsw_add_many(hp, all + (N - 500) * DIM, 500, 2), N - 500);
        assert_int_equal(phx_kb_hnsw_size(hp), N);
        double r = hnsw_recall(all, N, DIM, NULL, hp, NQ, 99);
        print_message("hnsw recall@10 %s, built by 2 threads: %.3f\n",
                      clustered ? "clustered" : "uniform", r);
        assert_true(r >= 0.95);
        phx_kb_hnsw_free(hp);
        phx_kb_hnsw *h = phx_kb_hnsw_new(DIM, PHX_KB_COSINE, 16, 100, 42);
        for (int i = 0; i < N; i++)
            assert_int_equal(phx_kb_hnsw_add(h, all + i * DIM), i);
        r = hnsw_recall(all, N, DIM, NULL, h, NQ, 99);
        print_message("hnsw recall@10 %s: %.3f\n", clustered ? "clustered" : "uniform", r);
        assert_true(r >= 0.95);
        uint8_t *gone = calloc(N, 1);
        /* A random tenth (not whole clusters: a region deleted outright is what the index's
         * rebuild at PHX_KB_HNSW_REBUILD_PCT is for). */
        size_t ndel = 0;
        for (int i = 0; i < N; i++)
            if (rand() % 10 == 0) {
                gone[i] = 1;
                phx_kb_hnsw_delete(h, i);
                ndel++;
            }
        assert_int_equal(phx_kb_hnsw_deleted(h), ndel);
        r = hnsw_recall(all, N, DIM, gone, h, NQ, 100);
        print_message("hnsw recall@10 %s after deletes: %.3f\n",
                      clustered ? "clustered" : "uniform", r);
        assert_true(r >= 0.95);
        free(gone);
        phx_kb_hnsw_free(h);
    }
    free(all);
}

/* A two-thread build must leave every node reachable. An insert could reach a node through an
 * upper layer before that node's lower lists were written, link itself into the empty list,
 * and then lose the link when the node wrote its own list: about 1 build in 20 of this small
 * set (unit vectors on an arc, test_kb's "many" collection) had a node no search found. Many
 * small builds, since whether the race happens depends on scheduling. */
static void test_hnsw_parallel_reachable(void **st)
{
    (void)st;
    enum { N = 200, BUILDS = 300 };
    float v[2 * N];
    for (int i = 0; i < N; i++) {
        float a = (float)(i + 1), b = (float)(N - i), n = sqrtf(a * a + b * b);
        v[2 * i] = a / n, v[2 * i + 1] = b / n;
    }
    phx_kb_ann *out = malloc(sizeof(*out) * 1000);
    int missed = 0;
    for (int r = 0; r < BUILDS; r++) {
        phx_kb_hnsw *h = phx_kb_hnsw_new(2, PHX_KB_COSINE, 16, 200, 42 + (uint64_t)r);
        phx_kb_hnsw_add_many(h, v, N, 2);
        float q[2] = {1, 0};
        missed += phx_kb_hnsw_search(h, q, 1000, out) != N;
        phx_kb_hnsw_free(h);
    }
    free(out);
    assert_int_equal(missed, 0);
}

/* The index with a graph: built at the threshold, kept through replace and delete (a deleted
 * id is never returned), and a selective filter falls back to the exact scan. */
static void test_index_ann(void **st)
{
    (void)st;
    enum { N = 3000, DIM = 16, K = 5 };
    phx_kb_index x;
    phx_kb_index_init(&x, DIM);
    phx_kb_ann_cfg cfg = {
        .min = 1000, .M = 12, .efc = 100, .rebuild_pct = 30, .metric = PHX_KB_COSINE};
    phx_kb_index_set_ann(&x, &cfg);
    float *all = malloc(sizeof(float) * N * DIM);
    fill(&x, all, N, DIM, 5);
    assert_non_null(x.ann);
    phx_kb_hit hits[K];
    size_t scanned;
    const char *method;
    size_t n = phx_kb_index_query(&x, PHX_KB_COSINE, all + 7 * DIM, K, NULL, -INFINITY, 0, 64, hits,
                                  &scanned, &method);
    assert_string_equal(method, "hnsw");
    assert_int_equal(n, K);
    assert_string_equal(x.items[hits[0].slot].id, "v7");
    assert_true(hits[0].score > 0.999f);
    /* Deleting most of the collection forces a graph rebuild on the way; v7 itself goes. */
    for (int i = 0; i < N; i++)
        if (i % 3 != 0 || i == 7) {
            char id[16];
            snprintf(id, sizeof(id), "v%d", i);
            assert_int_equal(phx_kb_index_del(&x, id), 1);
        }
    assert_true(phx_kb_hnsw_deleted(x.ann) * 100 <= phx_kb_hnsw_size(x.ann) * 30);
    n = phx_kb_index_query(&x, PHX_KB_COSINE, all + 7 * DIM, K, NULL, -INFINITY, 0, 64, hits,
                           &scanned, &method);
    assert_int_equal(n, K);
    for (size_t i = 0; i < n; i++) {
        int num = atoi(x.items[hits[i].slot].id + 1);
        assert_true(num % 3 == 0 && num != 7);
    }
    /* A filter no graph candidate satisfies: the exact scan answers. */
    json_t *f = json_loads("{\"missing\": 1}", 0, NULL);
    n = phx_kb_index_query(&x, PHX_KB_COSINE, all + 9 * DIM, K, f, -INFINITY, 0, 64, hits, &scanned,
                           &method);
    assert_int_equal(n, 0);
    assert_string_equal(method, "exact");
    json_decref(f);
    /* ef = 0 means exact. */
    phx_kb_index_query(&x, PHX_KB_COSINE, all + 9 * DIM, K, NULL, -INFINITY, 0, 0, hits, &scanned,
                       &method);
    assert_string_equal(method, "exact");
    phx_kb_index_free(&x);
    free(all);
}

/* The nearest item to v through the graph: its id. */
static const char *ann_top(const phx_kb_index *x, const float *v)
{
    phx_kb_hit hit;
    size_t scanned;
    const char *method;
    size_t n =
        phx_kb_index_query(x, PHX_KB_COSINE, v, 1, NULL, -INFINITY, 0, 64, &hit, &scanned, &method);
    assert_string_equal(method, "hnsw");
    assert_int_equal(n, 1);
    return x->items[hit.slot].id;
}

/* background = 1: the index never builds a graph itself; one built beside it in batches, with
 * deletes (one moving an untaken item behind the cursor), a replace and new puts between the
 * batches, attaches with every live item mapped to a node holding its current vector. */
static void test_index_graph_background(void **st)
{
    (void)st;
    enum { N = 2000, DIM = 16, EXTRA = 50 };
    phx_kb_index x;
    phx_kb_index_init(&x, DIM);
    phx_kb_ann_cfg cfg = {.min = 1000,
                          .M = 12,
                          .efc = 100,
                          .rebuild_pct = 30,
                          .metric = PHX_KB_COSINE,
                          .background = 1};
    phx_kb_index_set_ann(&x, &cfg);
    float *all = malloc(sizeof(float) * (N + EXTRA + 1) * DIM);
    fill(&x, all, N, DIM, 11);
    assert_null(x.ann);
    assert_true(phx_kb_index_graph_due(&x));
    phx_kb_graph_build b;
    phx_kb_graph_begin(&b, &x, 100);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(phx_kb_graph_take(&b, &x), 100);
        phx_kb_graph_add(&b);
    }
    /* Writes between batches: v0..v99 go (v0's hole takes the last, untaken item), v200 (taken)
     * gets another vector, n0..n49 are new. */
    char id[16];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "v%d", i);
        assert_int_equal(phx_kb_index_del(&x, id), 1);
    }
    float *nv = all + (N + EXTRA) * DIM;
    for (int d = 0; d < DIM; d++)
        nv[d] = d == 3 ? 1.0f : 0.0f;
    put_one(&x, "v200", nv, DIM);
    for (int i = 0; i < EXTRA; i++) {
        float *v = all + (N + i) * DIM;
        for (int d = 0; d < DIM; d++)
            v[d] = all[(i * 37 % N) * DIM + (DIM - 1 - d)]; /* unit length, new directions */
        snprintf(id, sizeof(id), "n%d", i);
        put_one(&x, id, v, DIM);
    }
    assert_null(x.ann); /* still exact */
    while (phx_kb_graph_take(&b, &x) > 0)
        phx_kb_graph_add(&b);
    size_t late = phx_kb_graph_attach(&b, &x);
    phx_kb_graph_free(&b);
    assert_non_null(x.ann);
    assert_true(late >= EXTRA + 1); /* the new ones and v200's new vector at least */
    assert_false(phx_kb_index_graph_due(&x));
    for (size_t s = 0; s < x.n; s++) {
        assert_true(x.items[s].node >= 0);
        assert_int_equal(x.node_slot[x.items[s].node], (int32_t)s);
    }
    assert_string_equal(ann_top(&x, nv), "v200");
    assert_string_equal(ann_top(&x, all + (N - 1) * DIM), "v1999");
    assert_string_equal(ann_top(&x, all + (N + 7) * DIM), "n7");
    assert_string_equal(ann_top(&x, all + 500 * DIM), "v500");
    assert_string_not_equal(ann_top(&x, all + 5 * DIM), "v5");
    /* A graph attached to an index that is no longer due is kept current by puts. */
    put_one(&x, "late", all + 600 * DIM, DIM);
    assert_true(x.items[phx_kb_index_find(&x, "late")].node >= 0);
    phx_kb_index_free(&x);
    free(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known),
        cmocka_unit_test(test_record_roundtrip),
        cmocka_unit_test(test_record_damage),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_index_search_exact),
        cmocka_unit_test(test_hnsw_recall),
        cmocka_unit_test(test_index_ann),
        cmocka_unit_test(test_index_graph_background),
        cmocka_unit_test(test_hnsw_parallel_reachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
