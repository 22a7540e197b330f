/* index.c -- in-memory vectors and exact top-k search (see index.h). */
#include "index.h"
#include "filter.h"
#include "util.h"
#include "vecmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a: ids are short and attacker-chosen only by authorised writers. */
static uint64_t phx_kb_hash(const char *s)
{
    return phx_fnv64(PHX_FNV64_SEED, s, strlen(s));
}

void phx_kb_index_init(phx_kb_index *x, int dim)
{
    memset(x, 0, sizeof(*x));
    x->dim = dim;
}

static void phx_kb_item_clear(phx_kb_item *it)
{
    free(it->id);
    free(it->text);
    json_decref(it->meta);
    memset(it, 0, sizeof(*it));
}

void phx_kb_index_set_ann(phx_kb_index *x, const phx_kb_ann_cfg *cfg)
{
    x->ann_cfg = *cfg;
}

void phx_kb_index_set_int8(phx_kb_index *x, int rerank)
{
    x->rerank = rerank > 0 ? rerank : 0;
}

/* (Re)build the graph from every item: at the threshold, and when too many nodes are dead. */
static void phx_kb_ann_build(phx_kb_index *x)
{
    phx_kb_hnsw_free(x->ann);
    x->ann = phx_kb_hnsw_new(x->dim, x->ann_cfg.metric, x->ann_cfg.M, x->ann_cfg.efc, 42);
    if (x->node_cap < x->cap) {
        x->node_cap = x->cap;
        x->node_slot = phx_xrealloc(x->node_slot, x->node_cap * sizeof(*x->node_slot));
    }
    /* slot i becomes node i: add_many numbers nodes in the order of the vectors */
    phx_kb_hnsw_add_many(x->ann, x->vecs, x->n, x->ann_cfg.threads);
    for (size_t i = 0; i < x->n; i++) {
        x->items[i].node = (int32_t)i;
        x->node_slot[i] = (int32_t)i;
    }
}

/* Add slot s to the graph (when there is one). */
static void phx_kb_ann_add(phx_kb_index *x, size_t s)
{
    if (!x->ann) {
        x->items[s].node = -1;
        if (!x->ann_cfg.background && x->ann_cfg.min > 0 && x->n >= x->ann_cfg.min)
            phx_kb_ann_build(x);
        return;
    }
    int32_t node = phx_kb_hnsw_add(x->ann, x->vecs + s * (size_t)x->dim);
    if ((size_t)node >= x->node_cap) {
        x->node_cap = x->node_cap ? x->node_cap * 2 : 1024;
        x->node_slot = phx_xrealloc(x->node_slot, x->node_cap * sizeof(*x->node_slot));
    }
    x->node_slot[node] = (int32_t)s;
    x->items[s].node = node;
}

static void phx_kb_ann_del(phx_kb_index *x, int32_t node)
{
    if (!x->ann || node < 0)
        return;
    phx_kb_hnsw_delete(x->ann, node);
    x->node_slot[node] = -1;
}

void phx_kb_index_free(phx_kb_index *x)
{
    phx_kb_hnsw_free(x->ann);
    free(x->node_slot);
    for (size_t i = 0; i < x->n; i++)
        phx_kb_item_clear(&x->items[i]);
    free(x->vecs);
    free(x->items);
    free(x->buckets);
    free(x->next);
    free(x->q8);
    free(x->q8scale);
    free(x->sqnorm);
    memset(x, 0, sizeof(*x));
}

static void phx_kb_link(phx_kb_index *x, size_t slot)
{
    /* nbuckets > 0 whenever an item is linked: put grows the table first (clang's analyzer
     * loses that through grow's int32_t stores to buckets, which it cannot rule out as
     * aliasing the field) */
    // NOLINTNEXTLINE(clang-analyzer-core.DivideZero)
    size_t b = phx_kb_hash(x->items[slot].id) % x->nbuckets;
    x->next[slot] = x->buckets[b];
    x->buckets[b] = (int32_t)slot;
}

static void phx_kb_unlink(phx_kb_index *x, size_t slot)
{
    size_t b = phx_kb_hash(x->items[slot].id) % x->nbuckets;
    int32_t *p = &x->buckets[b];
    while (*p != (int32_t)slot)
        p = &x->next[*p];
    *p = x->next[slot];
}

static void phx_kb_grow(phx_kb_index *x)
{
    size_t cap = x->cap ? x->cap * 2 : 64;
    x->vecs = phx_xrealloc(x->vecs, cap * (size_t)x->dim * sizeof(float));
    x->items = phx_xrealloc(x->items, cap * sizeof(*x->items));
    x->next = phx_xrealloc(x->next, cap * sizeof(*x->next));
    if (x->rerank) {
        x->q8 = phx_xrealloc(x->q8, cap * (size_t)x->dim);
        x->q8scale = phx_xrealloc(x->q8scale, cap * sizeof(*x->q8scale));
        x->sqnorm = phx_xrealloc(x->sqnorm, cap * sizeof(*x->sqnorm));
    }
    x->cap = cap;
    /* Rehash with a load factor of at most 1. */
    free(x->buckets);
    x->nbuckets = cap;
    x->buckets = phx_xmalloc(cap * sizeof(*x->buckets));
    for (size_t i = 0; i < cap; i++)
        x->buckets[i] = -1;
    for (size_t i = 0; i < x->n; i++)
        phx_kb_link(x, i);
}

long phx_kb_index_find(const phx_kb_index *x, const char *id)
{
    if (!x->nbuckets)
        return -1;
    for (int32_t s = x->buckets[phx_kb_hash(id) % x->nbuckets]; s >= 0; s = x->next[s])
        if (strcmp(x->items[s].id, id) == 0)
            return s;
    return -1;
}

void phx_kb_index_put(phx_kb_index *x, const char *id, const phx_kb_rec *rec)
{
    long s = phx_kb_index_find(x, id);
    phx_kb_item *it;
    if (s < 0) {
        if (x->n == x->cap)
            phx_kb_grow(x);
        s = (long)x->n++;
        it = &x->items[s];
        memset(it, 0, sizeof(*it));
        it->id = phx_xstrdup(id);
        phx_kb_link(x, (size_t)s);
    } else {
        it = &x->items[s];
        free(it->text);
        json_decref(it->meta);
        phx_kb_ann_del(x, it->node);
    }
    it->text = phx_xstrndup(rec->text, rec->text_len);
    it->meta = rec->meta_len ? json_loadb(rec->meta, rec->meta_len, 0, NULL) : NULL;
    it->importance = rec->importance;
    it->created_ms = rec->created_ms;
    it->updated_ms = rec->updated_ms;
    it->expires_ms = rec->expires_ms;
    it->crc = rec->crc;
    it->ver = x->puts++;
    float *v = x->vecs + (size_t)s * (size_t)x->dim;
    for (int i = 0; i < x->dim; i++) {
        const unsigned char *p = rec->vec + 4 * i;
        uint32_t u =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        memcpy(&v[i], &u, 4);
    }
    if (x->rerank) {
        x->q8scale[s] = phx_kb_quantize_i8(v, x->dim, x->q8 + (size_t)s * (size_t)x->dim);
        x->sqnorm[s] = phx_kb_dot(v, v, x->dim);
    }
    phx_kb_ann_add(x, (size_t)s);
}

int phx_kb_index_del(phx_kb_index *x, const char *id)
{
    long s = phx_kb_index_find(x, id);
    if (s < 0)
        return 0;
    size_t last = x->n - 1;
    phx_kb_ann_del(x, x->items[s].node);
    phx_kb_unlink(x, (size_t)s);
    phx_kb_item_clear(&x->items[s]);
    if ((size_t)s != last) {
        phx_kb_unlink(x, last);
        x->items[s] = x->items[last];
        memcpy(x->vecs + (size_t)s * (size_t)x->dim, x->vecs + last * (size_t)x->dim,
               (size_t)x->dim * sizeof(float));
        if (x->rerank) {
            memcpy(x->q8 + (size_t)s * (size_t)x->dim, x->q8 + last * (size_t)x->dim,
                   (size_t)x->dim);
            x->q8scale[s] = x->q8scale[last];
            x->sqnorm[s] = x->sqnorm[last];
        }
        phx_kb_link(x, (size_t)s);
        if (x->ann && x->items[s].node >= 0)
            x->node_slot[x->items[s].node] = (int32_t)s;
    }
    x->n--;
    if (x->ann && !x->ann_cfg.background &&
        phx_kb_hnsw_deleted(x->ann) * 100 >
            phx_kb_hnsw_size(x->ann) * (size_t)x->ann_cfg.rebuild_pct)
        phx_kb_ann_build(x);
    return 1;
}

int phx_kb_index_graph_due(const phx_kb_index *x)
{
    if (!x->ann_cfg.background || x->ann_cfg.min == 0 || x->n < x->ann_cfg.min)
        return 0;
    return !x->ann || phx_kb_hnsw_deleted(x->ann) * 100 >
                          phx_kb_hnsw_size(x->ann) * (size_t)x->ann_cfg.rebuild_pct;
}

void phx_kb_graph_begin(phx_kb_graph_build *b, const phx_kb_index *x, size_t batch)
{
    memset(b, 0, sizeof(*b));
    b->h = phx_kb_hnsw_new(x->dim, x->ann_cfg.metric, x->ann_cfg.M, x->ann_cfg.efc, 42);
    b->end = x->n;
    b->batch = batch ? batch : 1;
    b->threads = x->ann_cfg.threads;
    b->buf = phx_xmalloc(b->batch * (size_t)x->dim * sizeof(float));
}

size_t phx_kb_graph_take(phx_kb_graph_build *b, const phx_kb_index *x)
{
    /* Stop at the size the index had at begin (or less, after deletes). Items appended since
     * are taken too, but for at most 3 more rounds: the rest are inserted at attach (under the
     * write lock, so fewer is better), and a steady stream of writes cannot keep the build
     * from ending. */
    if (b->cursor >= b->end && x->n > b->end && b->rounds < 3) {
        b->end = x->n;
        b->rounds++;
    }
    size_t end = b->end < x->n ? b->end : x->n, m = 0;
    if (b->n + b->batch > b->cap) {
        b->cap = b->cap ? b->cap * 2 : 1024;
        if (b->cap < b->n + b->batch)
            b->cap = b->n + b->batch;
        b->ids = phx_xrealloc(b->ids, b->cap * sizeof(*b->ids));
        b->vers = phx_xrealloc(b->vers, b->cap * sizeof(*b->vers));
    }
    for (; b->cursor < end && m < b->batch; b->cursor++, m++) {
        memcpy(b->buf + m * (size_t)x->dim, x->vecs + b->cursor * (size_t)x->dim,
               (size_t)x->dim * sizeof(float));
        b->ids[b->n + m] = phx_xstrdup(x->items[b->cursor].id);
        b->vers[b->n + m] = x->items[b->cursor].ver;
    }
    b->nbuf = m;
    return m;
}

void phx_kb_graph_add(phx_kb_graph_build *b)
{
    /* node numbers are dense from 0 in insertion order: node b->n is ids[b->n] */
    phx_kb_hnsw_add_many(b->h, b->buf, b->nbuf, b->threads);
    b->n += b->nbuf;
    b->nbuf = 0;
}

size_t phx_kb_graph_attach(phx_kb_graph_build *b, phx_kb_index *x)
{
    phx_kb_hnsw_free(x->ann);
    x->ann = b->h;
    b->h = NULL;
    if (x->node_cap < b->n) {
        x->node_cap = b->n;
        x->node_slot = phx_xrealloc(x->node_slot, x->node_cap * sizeof(*x->node_slot));
    }
    for (size_t s = 0; s < x->n; s++)
        x->items[s].node = -1;
    for (size_t k = 0; k < b->n; k++) {
        long s = phx_kb_index_find(x, b->ids[k]);
        /* ver is unique per put, so an equal ver means the very vector the node holds; a node
         * already claimed (node >= 0) would be a duplicate -- a tombstone, never returned */
        if (s >= 0 && x->items[s].ver == b->vers[k] && x->items[s].node < 0) {
            x->items[s].node = (int32_t)k;
            x->node_slot[k] = (int32_t)s;
        } else {
            phx_kb_hnsw_delete(x->ann, (int32_t)k);
            x->node_slot[k] = -1;
        }
    }
    size_t late = 0;
    for (size_t s = 0; s < x->n; s++)
        if (x->items[s].node < 0) {
            phx_kb_ann_add(x, s);
            late++;
        }
    return late;
}

void phx_kb_graph_free(phx_kb_graph_build *b)
{
    phx_kb_hnsw_free(b->h);
    for (size_t i = 0; i < b->n; i++)
        free(b->ids[i]);
    free(b->ids);
    free(b->vers);
    free(b->buf);
    memset(b, 0, sizeof(*b));
}

/* A min-heap of size k on score keeps the best k seen so far: its root is the one to beat. */
static void phx_kb_heap_down(phx_kb_hit *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l].score < h[m].score)
            m = l;
        if (r < n && h[r].score < h[m].score)
            m = r;
        if (m == i)
            return;
        phx_kb_hit t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void phx_kb_heap_up(phx_kb_hit *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].score <= h[i].score)
            return;
        phx_kb_hit t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static int phx_kb_hit_cmp(const void *a, const void *b)
{
    float x = ((const phx_kb_hit *)a)->score, y = ((const phx_kb_hit *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Offer slot i with score s to the top-k heap out (n entries so far). */
static void phx_kb_offer(phx_kb_hit *out, size_t *n, size_t k, size_t i, float s)
{
    if (*n < k) {
        out[*n] = (phx_kb_hit){i, s};
        phx_kb_heap_up(out, (*n)++);
    } else if (s > out[0].score) {
        out[0] = (phx_kb_hit){i, s};
        phx_kb_heap_down(out, *n, 0);
    }
}

/* Vectors scored per call of the block kernel: 256 x 4 bytes of scores stay in L1, and the
 * per-block work (expiry, heap) runs on scores already computed. */
enum { PHX_KB_BLOCK = 256 };

/* The unfiltered scan over the int8 copy: the nc = k * rerank best by approximate score
 * (dot: scale_q * scale_v * the integer dot; l2: |q|^2 + |v|^2 - 2 * that), then the float32
 * score of each decides, as in the plain scan. Returns how many landed in out. */
static size_t phx_kb_search_i8(const phx_kb_index *x, int l2, const float *q, size_t k,
                               double min_score, int64_t now_ms, phx_kb_hit *out, size_t *seen)
{
    size_t nc = k * (size_t)x->rerank, nfound = 0, n = 0;
    phx_kb_hit *cand = phx_xmalloc(nc * sizeof(*cand));
    int8_t *q8 = phx_xmalloc((size_t)x->dim);
    float qs = phx_kb_quantize_i8(q, x->dim, q8), qn = l2 ? phx_kb_dot(q, q, x->dim) : 0;
    int32_t dots[PHX_KB_BLOCK];
    for (size_t b = 0; b < x->n; b += PHX_KB_BLOCK) {
        size_t m = x->n - b < PHX_KB_BLOCK ? x->n - b : PHX_KB_BLOCK;
        phx_kb_scores_i8(q8, x->q8 + b * (size_t)x->dim, m, x->dim, dots);
        for (size_t j = 0; j < m; j++) {
            const phx_kb_item *it = &x->items[b + j];
            if (it->expires_ms && it->expires_ms <= now_ms)
                continue;
            float dot = qs * x->q8scale[b + j] * (float)dots[j];
            (*seen)++;
            phx_kb_offer(cand, &nfound, nc, b + j, l2 ? 2 * dot - qn - x->sqnorm[b + j] : dot);
        }
    }
    for (size_t i = 0; i < nfound; i++) {
        const float *v = x->vecs + cand[i].slot * (size_t)x->dim;
        float s = l2 ? -sqrtf(phx_kb_l2sq(q, v, x->dim)) : phx_kb_dot(q, v, x->dim);
        if (s >= min_score)
            phx_kb_offer(out, &n, k, cand[i].slot, s);
    }
    free(cand);
    free(q8);
    return n;
}

size_t phx_kb_index_search(const phx_kb_index *x, int metric, const float *q, size_t k,
                           const json_t *filter, double min_score, int64_t now_ms, phx_kb_hit *out,
                           size_t *scanned)
{
    size_t n = 0, seen = 0;
    int l2 = metric == PHX_KB_L2;
    if (k == 0)
        return 0;
    if (!filter && x->rerank && k * (size_t)x->rerank < x->n) {
        n = phx_kb_search_i8(x, l2, q, k, min_score, now_ms, out, &seen);
    } else if (filter) {
        /* A filter may reject most items: test it first, score only what passes. */
        for (size_t i = 0; i < x->n; i++) {
            const phx_kb_item *it = &x->items[i];
            if ((it->expires_ms && it->expires_ms <= now_ms) ||
                !phx_kb_filter_match(filter, it->meta))
                continue;
            const float *v = x->vecs + i * (size_t)x->dim;
            float s = l2 ? -sqrtf(phx_kb_l2sq(q, v, x->dim)) : phx_kb_dot(q, v, x->dim);
            seen++;
            if (s >= min_score)
                phx_kb_offer(out, &n, k, i, s);
        }
    } else {
        /* No filter: score whole blocks with the SIMD block kernel (expired items are rare,
         * so scoring them too costs less than breaking up the blocks). */
        float sc[PHX_KB_BLOCK];
        for (size_t b = 0; b < x->n; b += PHX_KB_BLOCK) {
            size_t m = x->n - b < PHX_KB_BLOCK ? x->n - b : PHX_KB_BLOCK;
            phx_kb_scores(q, x->vecs + b * (size_t)x->dim, m, x->dim, l2, sc);
            for (size_t j = 0; j < m; j++) {
                const phx_kb_item *it = &x->items[b + j];
                if (it->expires_ms && it->expires_ms <= now_ms)
                    continue;
                float s = l2 ? -sqrtf(sc[j]) : sc[j];
                seen++;
                if (s >= min_score)
                    phx_kb_offer(out, &n, k, b + j, s);
            }
        }
    }
    qsort(out, n, sizeof(*out), phx_kb_hit_cmp);
    if (scanned)
        *scanned = seen;
    return n;
}

size_t phx_kb_index_query(const phx_kb_index *x, int metric, const float *q, size_t k,
                          const json_t *filter, double min_score, int64_t now_ms, size_t ef,
                          phx_kb_hit *out, size_t *scanned, const char **method)
{
    if (!x->ann || ef == 0 || k == 0) {
        *method = "exact";
        return phx_kb_index_search(x, metric, q, k, filter, min_score, now_ms, out, scanned);
    }
    size_t beam = ef > k ? ef : k;
    if (filter)
        beam *= 4; /* filtered-out candidates take places in the beam */
    phx_kb_ann *cand = phx_xmalloc(sizeof(*cand) * beam);
    size_t nc = phx_kb_hnsw_search(x->ann, q, beam, cand), n = 0;
    int skipped = 0;
    for (size_t i = 0; i < nc && n < k; i++) {
        int32_t slot = x->node_slot[cand[i].node];
        const phx_kb_item *it = &x->items[slot];
        if ((it->expires_ms && it->expires_ms <= now_ms) ||
            (filter && !phx_kb_filter_match(filter, it->meta))) {
            skipped = 1;
            continue;
        }
        float sc = metric == PHX_KB_L2 ? -sqrtf(cand[i].dist) : -cand[i].dist;
        if (sc < min_score)
            break; /* candidates come nearest first: the rest score lower still */
        out[n++] = (phx_kb_hit){(size_t)slot, sc};
    }
    free(cand);
    /* Fewer than k although items were skipped: the graph's beam ran out before the filter
     * was satisfied, so the exact scan decides. */
    if (n < k && skipped && x->n > n) {
        *method = "exact";
        return phx_kb_index_search(x, metric, q, k, filter, min_score, now_ms, out, scanned);
    }
    *scanned = nc;
    *method = "hnsw";
    return n;
}
