/* bench_kb.c -- phx-kb's search engines on synthetic data, for `make bench-kb`.
 *
 * Generates N unit vectors of DIM dimensions (uniform random, or clustered around 100 centres)
 * and Q queries from a fixed seed, writes them as raw float32 files for the faiss side
 * (tests/bench/kb/faiss_bench.py), and measures on the same data: the exact scan (vectors/s),
 * the HNSW build (time, memory per vector), and HNSW queries/s at each ef with recall@10
 * against the exact answers (also written out, as the faiss side's ground truth).
 * Memory per vector is the growth of the malloc heap (mallinfo2: bytes in use, so it includes
 * allocator overhead and spare capacity) while the structure is built, divided by N.
 *
 * usage: bench_kb N DIM Q uniform|clustered OUTDIR [HNSW]   -> one JSON line per measurement
 * HNSW 0 skips the graph (exact scan only); default 1. BENCH_KB_BUILD_THREADS (default 1)
 * threads build the graph (phx_kb_hnsw_add_many). BENCH_KB_INT8_RERANK (default "4 16";
 * "0" skips it) also measures the exact scan over the int8 copy (index.h) with each of these
 * re-ranking factors, and its recall@10 against the float32 scan. Lines are flushed as they
 * are measured (a long run can be read, or stopped, part way).
 *
 * bench_kb load REDIS_URL COLLECTION N DIM uniform|clustered  fills an existing collection
 * (phx kb create) with the same data for the cold-start benchmark (tests/bench/kb/coldstart.sh):
 * records encoded by phx_kb_rec_encode and written by phx_kb_write, the function kb.upsert
 * writes with (the Lua script that also appends the change log), 256 items per call. */
#include "../../../workers/kb/hnsw.h"
#include "../../../workers/kb/index.h"
#include "../../../workers/kb/store.h"
#include "util.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* This thread's CPU time, not wall time: the benchmark machine is shared and loaded, and CPU
 * time measures the work per core without the time spent waiting for one (faiss_bench.py
 * uses the same clock). */
static double bench_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double bench_now(void)
{
    return bench_clock(CLOCK_THREAD_CPUTIME_ID);
}

/* Bytes the malloc heap holds now (small blocks in use plus mmapped large ones). */
static double bench_heap(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks + (double)mi.hblkhd;
}

static uint64_t bench_rng = 88172645463325252ULL;

static float bench_uniform(void)
{
    bench_rng ^= bench_rng << 13, bench_rng ^= bench_rng >> 7, bench_rng ^= bench_rng << 17;
    return (float)((bench_rng >> 11) * (1.0 / 9007199254740992.0)) - 0.5f;
}

static void bench_fill(float *v, size_t n, int dim, int clustered, const float *centres)
{
    for (size_t i = 0; i < n; i++) {
        float *x = v + i * (size_t)dim;
        double norm = 0;
        size_t c = (size_t)((bench_uniform() + 0.5f) * 99.999f);
        for (int d = 0; d < dim; d++) {
            x[d] = clustered ? centres[c * (size_t)dim + (size_t)d] + 0.1f * bench_uniform()
                             : bench_uniform();
            norm += (double)x[d] * x[d];
        }
        for (int d = 0; d < dim; d++)
            x[d] = (float)(x[d] / sqrt(norm));
    }
}

static int bench_write(const char *dir, const char *name, const void *p, size_t bytes)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, bytes, f) != bytes || fclose(f) != 0) {
        fprintf(stderr, "bench_kb: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

static void bench_centres(float *centres, int dim)
{
    for (size_t i = 0; i < 100 * (size_t)dim; i++)
        centres[i] = bench_uniform();
}

/* Fill x with the n vectors of base as kb records (encoded, verified, put: the load path);
 * *secs gets the time, *bytes the heap growth per vector. */
static void bench_index(phx_kb_index *x, const float *base, size_t n, int dim, int rerank,
                        double *secs, double *bytes)
{
    double heap0 = bench_heap(), t0 = bench_now();
    phx_kb_index_init(x, dim);
    phx_kb_index_set_int8(x, rerank);
    char id[32];
    for (size_t i = 0; i < n; i++) {
        phx_kb_rec r = {.dim = (uint32_t)dim, .text = "", .importance = 0.5f};
        size_t len;
        snprintf(id, sizeof(id), "%zu", i);
        unsigned char *b = phx_kb_rec_encode(id, &r, base + i * (size_t)dim, &len);
        phx_kb_rec dec;
        char why[64];
        phx_kb_rec_decode(id, b, len, &dec, why, sizeof(why));
        phx_kb_index_put(x, id, &dec);
        free(b);
    }
    *secs = bench_now() - t0;
    *bytes = (bench_heap() - heap0) / (double)n;
}

/* The load mode (see the top of the file). */
static int bench_load(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: bench_kb load REDIS_URL COLLECTION N DIM uniform|clustered\n");
        return 2;
    }
    size_t n = strtoul(argv[4], NULL, 10);
    int dim = atoi(argv[5]), rc = 1;
    enum { BATCH = 256 };
    phx_err err;
    phx_err_clear(&err);
    phx_kb_app app = {.log_maxlen = 100000};
    pthread_mutex_init(&app.mu, NULL);
    float *centres = malloc(sizeof(float) * 100 * (size_t)dim);
    float *vec = malloc(sizeof(float) * BATCH * (size_t)dim);
    phx_kb_put items[BATCH];
    char ids[BATCH][32];
    size_t m = 0;
    phx_redis *r = phx_redis_new(argv[2], NULL, 10000, &err);
    phx_kb_coll *c = r ? phx_kb_coll_get(&app, r, argv[3], &err) : NULL;
    if (!c)
        goto out;
    if (c->dim != dim) {
        fprintf(stderr, "bench_kb load: collection %s has dim %d, not %d\n", argv[3], c->dim, dim);
        goto out;
    }
    bench_centres(centres, dim);
    int64_t now = phx_now_ms();
    double t0 = bench_now();
    for (size_t i = 0; i < n; i += m) {
        m = n - i < BATCH ? n - i : BATCH;
        bench_fill(vec, m, dim, strcmp(argv[6], "clustered") == 0, centres);
        for (size_t j = 0; j < m; j++) {
            phx_kb_rec rec = {.dim = (uint32_t)dim,
                              .text = "",
                              .importance = 0.5f,
                              .created_ms = now,
                              .updated_ms = now};
            snprintf(ids[j], sizeof(ids[j]), "%zu", i + j);
            items[j] = (phx_kb_put){.id = ids[j]};
            items[j].rec = phx_kb_rec_encode(ids[j], &rec, vec + j * (size_t)dim, &items[j].len);
        }
        long count = phx_kb_write(&app, c, r, items, (int)m, 0, &err);
        for (size_t j = 0; j < m; j++)
            free(items[j].rec);
        if (count < 0)
            goto out;
    }
    fprintf(stderr, "bench_kb load: %zu records into %s in %.1f s of this thread's CPU\n", n,
            argv[3], bench_now() - t0);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "bench_kb load: %s: %s\n", err.code, err.message);
    phx_kb_app_free(&app);
    pthread_mutex_destroy(&app.mu);
    if (r)
        phx_redis_free(r);
    free(centres);
    free(vec);
    return rc;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line per measurement, out as it is made */
    if (argc > 1 && strcmp(argv[1], "load") == 0)
        return bench_load(argc, argv);
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: bench_kb N DIM Q uniform|clustered OUTDIR [HNSW]\n");
        return 2;
    }
    size_t n = strtoul(argv[1], NULL, 10), nq = strtoul(argv[3], NULL, 10);
    int dim = atoi(argv[2]), clustered = strcmp(argv[4], "clustered") == 0;
    const char *dir = argv[5];
    int with_hnsw = argc == 7 ? atoi(argv[6]) : 1;
    enum { K = 10 };
    float *centres = malloc(sizeof(float) * 100 * (size_t)dim);
    bench_centres(centres, dim);
    float *base = malloc(sizeof(float) * n * (size_t)dim);
    float *qs = malloc(sizeof(float) * nq * (size_t)dim);
    bench_fill(base, n, dim, clustered, centres);
    bench_fill(qs, nq, dim, clustered, centres);
    if (bench_write(dir, "base.f32", base, sizeof(float) * n * (size_t)dim) < 0 ||
        bench_write(dir, "queries.f32", qs, sizeof(float) * nq * (size_t)dim) < 0)
        return 1;

    /* Exact: the index's own scan. */
    phx_kb_index x;
    double tput, exact_bytes;
    bench_index(&x, base, n, dim, 0, &tput, &exact_bytes);
    int32_t *truth = malloc(sizeof(int32_t) * nq * K);
    phx_kb_hit hits[K];
    size_t scanned;
    double t0 = bench_now();
    for (size_t q = 0; q < nq; q++) {
        phx_kb_index_search(&x, PHX_KB_COSINE, qs + q * (size_t)dim, K, NULL, -INFINITY, 0, hits,
                            &scanned);
        for (int k = 0; k < K; k++)
            truth[q * K + k] = (int32_t)atol(x.items[hits[k].slot].id);
    }
    double te = bench_now() - t0;
    printf("{\"engine\":\"phx\",\"index\":\"exact\",\"n\":%zu,\"dim\":%d,\"data\":\"%s\","
           "\"vectors_per_s\":%.0f,\"qps\":%.1f,\"load_s\":%.2f,\"bytes_per_vector\":%.0f}\n",
           n, dim, argv[4], (double)n * (double)nq / te, (double)nq / te, tput, exact_bytes);
    if (bench_write(dir, "truth.i32", truth, sizeof(int32_t) * nq * K) < 0)
        return 1;
    phx_kb_index_free(&x);

    /* Exact over the int8 copy, re-ranked in float32: speed, memory, recall against float32. */
    const char *rr = getenv("BENCH_KB_INT8_RERANK");
    char *rest = NULL, *list = strdup(rr ? rr : "4 16");
    int built = 0;
    for (char *tok = strtok_r(list, " ,", &rest); tok; tok = strtok_r(NULL, " ,", &rest)) {
        int rerank = atoi(tok);
        if (rerank <= 0)
            continue;
        if (!built) {
            bench_index(&x, base, n, dim, rerank, &tput, &exact_bytes);
            built = 1;
        }
        x.rerank = rerank; /* the int8 copy is the same for every factor */
        size_t found = 0;
        t0 = bench_now();
        for (size_t q = 0; q < nq; q++) {
            size_t m = phx_kb_index_search(&x, PHX_KB_COSINE, qs + q * (size_t)dim, K, NULL,
                                           -INFINITY, 0, hits, &scanned);
            for (size_t j = 0; j < m; j++)
                for (int k = 0; k < K; k++)
                    found += atol(x.items[hits[j].slot].id) == truth[q * K + k];
        }
        te = bench_now() - t0;
        printf("{\"engine\":\"phx\",\"index\":\"exact_int8\",\"n\":%zu,\"dim\":%d,"
               "\"data\":\"%s\",\"rerank\":%d,\"vectors_per_s\":%.0f,\"qps\":%.1f,"
               "\"bytes_per_vector\":%.0f,\"recall10\":%.4f}\n",
               n, dim, argv[4], rerank, (double)n * (double)nq / te, (double)nq / te, exact_bytes,
               (double)found / (double)(nq * K));
    }
    if (built)
        phx_kb_index_free(&x);
    free(list);
    if (!with_hnsw)
        goto done;

    /* HNSW: build (BENCH_KB_BUILD_THREADS threads, default 1), then each ef. The build is
     * timed by the process's CPU time (every thread's; with one thread, the same as the thread
     * clock) and by the wall clock, which is what a parallel build shortens. */
    const char *bt = getenv("BENCH_KB_BUILD_THREADS");
    int threads = bt && atoi(bt) > 0 ? atoi(bt) : 1;
    double heap0 = bench_heap(), c0 = bench_clock(CLOCK_PROCESS_CPUTIME_ID),
           w0 = bench_clock(CLOCK_MONOTONIC);
    phx_kb_hnsw *h = phx_kb_hnsw_new(dim, PHX_KB_COSINE, 16, 200, 42);
    phx_kb_hnsw_add_many(h, base, n, threads);
    double tb = bench_clock(CLOCK_PROCESS_CPUTIME_ID) - c0, tw = bench_clock(CLOCK_MONOTONIC) - w0;
    printf("{\"engine\":\"phx\",\"index\":\"hnsw\",\"n\":%zu,\"dim\":%d,\"data\":\"%s\","
           "\"threads\":%d,\"build_s\":%.2f,\"build_wall_s\":%.2f,\"bytes_per_vector\":%.0f,"
           "\"heap_bytes_per_vector\":%.0f}\n",
           n, dim, argv[4], threads, tb, tw, (double)phx_kb_hnsw_bytes(h) / (double)n,
           (bench_heap() - heap0) / (double)n);
    static const int efs[] = {16, 32, 64, 128, 256, 512};
    phx_kb_ann out[512];
    for (size_t e = 0; e < sizeof(efs) / sizeof(efs[0]); e++) {
        size_t found = 0;
        t0 = bench_now();
        for (size_t q = 0; q < nq; q++) {
            size_t m = phx_kb_hnsw_search(h, qs + q * (size_t)dim, (size_t)efs[e], out);
            for (size_t j = 0; j < m && j < K; j++)
                for (int k = 0; k < K; k++)
                    found += out[j].node == truth[q * K + k];
        }
        double ts = bench_now() - t0;
        printf("{\"engine\":\"phx\",\"index\":\"hnsw\",\"n\":%zu,\"data\":\"%s\",\"ef\":%d,"
               "\"qps\":%.1f,\"recall10\":%.4f}\n",
               n, argv[4], efs[e], (double)nq / ts, (double)found / (double)(nq * K));
    }
    phx_kb_hnsw_free(h);
done:
    free(base);
    free(qs);
    free(truth);
    free(centres);
    return 0;
}
