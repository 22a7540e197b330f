/* bench_kb.c -- phx-kb's search engines on synthetic data, for `make bench-kb`.
 *
 * Generates N unit vectors of DIM dimensions (uniform random, or clustered around 100 centres)
 * and Q queries from a fixed seed, writes them as raw float32 files for the faiss side
 * (tests/bench/kb/faiss_bench.py), and measures on the same data: the exact scan (vectors/s),
 * the HNSW build (time, memory per vector), and HNSW queries/s at each ef with recall@10
 * against the exact answers (also written out, as the faiss side's ground truth).
 *
 * usage: bench_kb N DIM Q uniform|clustered OUTDIR   -> one JSON line per measurement */
#include "../../../workers/kb/hnsw.h"
#include "../../../workers/kb/index.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* This thread's CPU time, not wall time: the benchmark machine is shared and loaded, and CPU
 * time measures the work per core without the time spent waiting for one (faiss_bench.py
 * uses the same clock). */
static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: bench_kb N DIM Q uniform|clustered OUTDIR\n");
        return 2;
    }
    size_t n = strtoul(argv[1], NULL, 10), nq = strtoul(argv[3], NULL, 10);
    int dim = atoi(argv[2]), clustered = strcmp(argv[4], "clustered") == 0;
    const char *dir = argv[5];
    enum { K = 10 };
    float *centres = malloc(sizeof(float) * 100 * (size_t)dim);
    for (size_t i = 0; i < 100 * (size_t)dim; i++)
        centres[i] = bench_uniform();
    float *base = malloc(sizeof(float) * n * (size_t)dim);
    float *qs = malloc(sizeof(float) * nq * (size_t)dim);
    bench_fill(base, n, dim, clustered, centres);
    bench_fill(qs, nq, dim, clustered, centres);
    if (bench_write(dir, "base.f32", base, sizeof(float) * n * (size_t)dim) < 0 ||
        bench_write(dir, "queries.f32", qs, sizeof(float) * nq * (size_t)dim) < 0)
        return 1;

    /* Exact: the index's own scan. */
    phx_kb_index x;
    phx_kb_index_init(&x, dim);
    char id[32];
    for (size_t i = 0; i < n; i++) {
        phx_kb_rec r = {.dim = (uint32_t)dim, .text = "", .importance = 0.5f};
        size_t len;
        snprintf(id, sizeof(id), "%zu", i);
        unsigned char *b = phx_kb_rec_encode(id, &r, base + i * (size_t)dim, &len);
        phx_kb_rec dec;
        char why[64];
        phx_kb_rec_decode(id, b, len, &dec, why, sizeof(why));
        phx_kb_index_put(&x, id, &dec);
        free(b);
    }
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
           "\"vectors_per_s\":%.0f,\"qps\":%.1f}\n",
           n, dim, argv[4], (double)n * (double)nq / te, (double)nq / te);
    if (bench_write(dir, "truth.i32", truth, sizeof(int32_t) * nq * K) < 0)
        return 1;
    phx_kb_index_free(&x);

    /* HNSW: build, then each ef. */
    t0 = bench_now();
    phx_kb_hnsw *h = phx_kb_hnsw_new(dim, PHX_KB_COSINE, 16, 200, 42);
    for (size_t i = 0; i < n; i++)
        phx_kb_hnsw_add(h, base + i * (size_t)dim);
    double tb = bench_now() - t0;
    printf("{\"engine\":\"phx\",\"index\":\"hnsw\",\"n\":%zu,\"dim\":%d,\"data\":\"%s\","
           "\"build_s\":%.2f,\"bytes_per_vector\":%.0f}\n",
           n, dim, argv[4], tb, (double)phx_kb_hnsw_bytes(h) / (double)n);
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
    free(base);
    free(qs);
    free(truth);
    free(centres);
    return 0;
}
