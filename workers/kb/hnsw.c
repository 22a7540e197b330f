/* hnsw.c -- HNSW graph (see hnsw.h). */
#include "hnsw.h"
#include "index.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct phx_kb_hnsw {
    int dim, metric, M, M0, efc, maxlevel;
    int32_t entry;
    size_t n, cap, ndeleted, linkbytes;
    double ml; /* level multiplier 1/ln(M) */
    float *vecs;
    uint8_t *deleted;
    int *level;
    int32_t **links; /* per node: layer 0 [count, M0 ids], then per layer [count, M ids] */
    uint64_t rng;
};

static float phx_hnsw_dist(const phx_kb_hnsw *h, const float *a, const float *b)
{
    return h->metric == PHX_KB_L2 ? phx_kb_l2sq(a, b, h->dim) : -phx_kb_dot(a, b, h->dim);
}

static const float *phx_hnsw_vec(const phx_kb_hnsw *h, int32_t n)
{
    return h->vecs + (size_t)n * (size_t)h->dim;
}

static int32_t *phx_hnsw_links(const phx_kb_hnsw *h, int32_t n, int l)
{
    return h->links[n] + (l == 0 ? 0 : (1 + h->M0) + (l - 1) * (1 + h->M));
}

phx_kb_hnsw *phx_kb_hnsw_new(int dim, int metric, int M, int efc, uint64_t seed)
{
    phx_kb_hnsw *h = phx_xcalloc(1, sizeof(*h));
    h->dim = dim;
    h->metric = metric;
    h->M = M < 2 ? 2 : M;
    h->M0 = 2 * h->M;
    h->efc = efc < h->M ? h->M : efc;
    h->ml = 1.0 / log((double)h->M);
    h->entry = -1;
    h->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
    return h;
}

void phx_kb_hnsw_free(phx_kb_hnsw *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        free(h->links[i]);
    free(h->links);
    free(h->vecs);
    free(h->deleted);
    free(h->level);
    free(h);
}

int phx_kb_hnsw_dim(const phx_kb_hnsw *h)
{
    return h->dim;
}

size_t phx_kb_hnsw_size(const phx_kb_hnsw *h)
{
    return h->n;
}

size_t phx_kb_hnsw_deleted(const phx_kb_hnsw *h)
{
    return h->ndeleted;
}

size_t phx_kb_hnsw_bytes(const phx_kb_hnsw *h)
{
    return h->cap * ((size_t)h->dim * sizeof(float) + sizeof(int32_t *) + sizeof(int) + 1) +
           h->linkbytes;
}

void phx_kb_hnsw_delete(phx_kb_hnsw *h, int32_t node)
{
    if (node >= 0 && (size_t)node < h->n && !h->deleted[node]) {
        h->deleted[node] = 1;
        h->ndeleted++;
    }
}

/* --- heaps of (node, dist): min-heap when max == 0, max-heap when max == 1 ------------------ */

typedef struct phx_hnsw_heap {
    phx_kb_ann *a;
    size_t n, cap;
    int max;
} phx_hnsw_heap;

static int phx_hnsw_before(const phx_hnsw_heap *hp, size_t i, size_t j)
{
    return hp->max ? hp->a[i].dist > hp->a[j].dist : hp->a[i].dist < hp->a[j].dist;
}

static void phx_hnsw_push(phx_hnsw_heap *hp, int32_t node, float dist)
{
    if (hp->n == hp->cap) {
        hp->cap = hp->cap ? hp->cap * 2 : 64;
        hp->a = phx_xrealloc(hp->a, hp->cap * sizeof(*hp->a));
    }
    size_t i = hp->n++;
    hp->a[i] = (phx_kb_ann){node, dist};
    while (i > 0 && phx_hnsw_before(hp, i, (i - 1) / 2)) {
        phx_kb_ann t = hp->a[i];
        hp->a[i] = hp->a[(i - 1) / 2];
        hp->a[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static phx_kb_ann phx_hnsw_pop(phx_hnsw_heap *hp)
{
    phx_kb_ann top = hp->a[0];
    hp->a[0] = hp->a[--hp->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < hp->n && phx_hnsw_before(hp, l, m))
            m = l;
        if (r < hp->n && phx_hnsw_before(hp, r, m))
            m = r;
        if (m == i)
            break;
        phx_kb_ann t = hp->a[i];
        hp->a[i] = hp->a[m];
        hp->a[m] = t;
        i = m;
    }
    return top;
}

static int phx_hnsw_ann_cmp(const void *a, const void *b)
{
    float x = ((const phx_kb_ann *)a)->dist, y = ((const phx_kb_ann *)b)->dist;
    return x < y ? -1 : x > y;
}

/* The ef nearest nodes to q on layer l starting from ep (deleted ones included: they route),
 * into out (malloc'd, sorted nearest first). Returns the count. */
static size_t phx_hnsw_layer(const phx_kb_hnsw *h, const float *q, int32_t ep, size_t ef, int l,
                             uint8_t *visited, phx_kb_ann **out)
{
    phx_hnsw_heap cand = {0}, res = {.max = 1};
    float d = phx_hnsw_dist(h, q, phx_hnsw_vec(h, ep));
    phx_hnsw_push(&cand, ep, d);
    phx_hnsw_push(&res, ep, d);
    visited[ep >> 3] |= (uint8_t)(1u << (ep & 7));
    while (cand.n) {
        phx_kb_ann c = phx_hnsw_pop(&cand);
        if (res.n >= ef && c.dist > res.a[0].dist)
            break;
        const int32_t *lk = phx_hnsw_links(h, c.node, l);
        for (int32_t i = 1; i <= lk[0]; i++) {
            int32_t e = lk[i];
            if (visited[e >> 3] & (1u << (e & 7)))
                continue;
            visited[e >> 3] |= (uint8_t)(1u << (e & 7));
            float de = phx_hnsw_dist(h, q, phx_hnsw_vec(h, e));
            if (res.n < ef || de < res.a[0].dist) {
                phx_hnsw_push(&cand, e, de);
                phx_hnsw_push(&res, e, de);
                if (res.n > ef)
                    phx_hnsw_pop(&res);
            }
        }
    }
    free(cand.a);
    qsort(res.a, res.n, sizeof(*res.a), phx_hnsw_ann_cmp);
    *out = res.a;
    return res.n;
}

/* Greedy descent from the entry point through the layers above `down_to`: the nearest node
 * to q found on layer down_to + 1, where the beam search of the lower layers starts. */
static int32_t phx_hnsw_greedy(const phx_kb_hnsw *h, const float *q, int down_to)
{
    int32_t ep = h->entry;
    float dep = phx_hnsw_dist(h, q, phx_hnsw_vec(h, ep));
    for (int l = h->maxlevel; l > down_to; l--) {
        for (int moved = 1; moved;) {
            moved = 0;
            const int32_t *lk = phx_hnsw_links(h, ep, l);
            for (int32_t i = 1; i <= lk[0]; i++) {
                float d = phx_hnsw_dist(h, q, phx_hnsw_vec(h, lk[i]));
                if (d < dep)
                    dep = d, ep = lk[i], moved = 1;
            }
        }
    }
    return ep;
}

/* The paper's neighbour heuristic over cands (sorted nearest first): keep c only if it is
 * nearer to the base than to every neighbour already kept. Writes up to max ids to sel. */
static int phx_hnsw_select(const phx_kb_hnsw *h, const phx_kb_ann *cands, size_t n, int max,
                           int32_t *sel)
{
    int k = 0;
    for (size_t i = 0; i < n && k < max; i++) {
        int keep = 1;
        for (int j = 0; j < k && keep; j++)
            if (phx_hnsw_dist(h, phx_hnsw_vec(h, cands[i].node), phx_hnsw_vec(h, sel[j])) <
                cands[i].dist)
                keep = 0;
        if (keep)
            sel[k++] = cands[i].node;
    }
    return k;
}

/* Link node into e's list on layer l, pruning e's list with the heuristic when full. */
static void phx_hnsw_connect(phx_kb_hnsw *h, int32_t e, int32_t node, int l)
{
    int max = l == 0 ? h->M0 : h->M;
    int32_t *lk = phx_hnsw_links(h, e, l);
    if (lk[0] < max) {
        lk[++lk[0]] = node;
        return;
    }
    phx_kb_ann *c = phx_xmalloc(sizeof(*c) * (size_t)(max + 1));
    const float *ve = phx_hnsw_vec(h, e);
    for (int i = 0; i < max; i++)
        c[i] = (phx_kb_ann){lk[i + 1], phx_hnsw_dist(h, ve, phx_hnsw_vec(h, lk[i + 1]))};
    c[max] = (phx_kb_ann){node, phx_hnsw_dist(h, ve, phx_hnsw_vec(h, node))};
    qsort(c, (size_t)max + 1, sizeof(*c), phx_hnsw_ann_cmp);
    lk[0] = phx_hnsw_select(h, c, (size_t)max + 1, max, lk + 1);
    free(c);
}

int32_t phx_kb_hnsw_add(phx_kb_hnsw *h, const float *vec)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1024;
        h->vecs = phx_xrealloc(h->vecs, h->cap * (size_t)h->dim * sizeof(float));
        h->links = phx_xrealloc(h->links, h->cap * sizeof(*h->links));
        h->deleted = phx_xrealloc(h->deleted, h->cap);
        h->level = phx_xrealloc(h->level, h->cap * sizeof(*h->level));
    }
    int32_t node = (int32_t)h->n++;
    memcpy(h->vecs + (size_t)node * (size_t)h->dim, vec, (size_t)h->dim * sizeof(float));
    h->deleted[node] = 0;
    /* xorshift64*: a deterministic level per seed, so tests and benchmarks repeat. */
    h->rng ^= h->rng >> 12, h->rng ^= h->rng << 25, h->rng ^= h->rng >> 27;
    double u = (double)((h->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
    int level = (int)(-log(u > 0 ? u : 1e-300) * h->ml);
    if (level > 16)
        level = 16;
    h->level[node] = level;
    size_t words = (size_t)(1 + h->M0) + (size_t)level * (size_t)(1 + h->M);
    h->links[node] = phx_xcalloc(words, sizeof(int32_t));
    h->linkbytes += words * sizeof(int32_t);
    if (h->entry < 0) {
        h->entry = node;
        h->maxlevel = level;
        return node;
    }
    int32_t ep = phx_hnsw_greedy(h, vec, level);
    uint8_t *visited = phx_xmalloc((h->n + 7) / 8);
    int32_t *sel = phx_xmalloc(sizeof(int32_t) * (size_t)h->M0);
    for (int l = level < h->maxlevel ? level : h->maxlevel; l >= 0; l--) {
        memset(visited, 0, (h->n + 7) / 8);
        phx_kb_ann *w;
        size_t nw = phx_hnsw_layer(h, vec, ep, (size_t)h->efc, l, visited, &w);
        int max = l == 0 ? h->M0 : h->M;
        int k = phx_hnsw_select(h, w, nw, h->M, sel);
        int32_t *lk = phx_hnsw_links(h, node, l);
        lk[0] = k;
        for (int i = 0; i < k && i < max; i++) {
            lk[i + 1] = sel[i];
            phx_hnsw_connect(h, sel[i], node, l);
        }
        ep = w[0].node;
        free(w);
    }
    free(visited);
    free(sel);
    if (level > h->maxlevel) {
        h->maxlevel = level;
        h->entry = node;
    }
    return node;
}

size_t phx_kb_hnsw_search(const phx_kb_hnsw *h, const float *q, size_t ef, phx_kb_ann *out)
{
    if (h->entry < 0 || ef == 0)
        return 0;
    int32_t ep = phx_hnsw_greedy(h, q, 0);
    uint8_t *visited = phx_xcalloc((h->n + 7) / 8, 1);
    phx_kb_ann *w;
    /* Deleted nodes take places in the beam: widen it by their share. */
    size_t want = ef + (h->n ? ef * h->ndeleted / h->n : 0);
    size_t nw = phx_hnsw_layer(h, q, ep, want, 0, visited, &w), k = 0;
    for (size_t i = 0; i < nw && k < ef; i++)
        if (!h->deleted[w[i].node])
            out[k++] = w[i];
    free(w);
    free(visited);
    return k;
}
