/* hnsw.c -- HNSW graph (see hnsw.h).
 *
 * Memory layout, chosen for the 1M-vector case where the graph is far larger than the cache
 * and a build is bound by memory latency, not arithmetic:
 *  - vectors in one contiguous array (node i at vecs[i*dim]);
 *  - layer 0's links (every node has them) in one contiguous array of fixed-size rows
 *    [count, M0 ids], so reading a node's neighbours is one or two cache lines at a computable
 *    address instead of a pointer chase into a per-node malloc block;
 *  - the upper layers (about 1/M of the nodes have any) in per-node blocks.
 * A node's neighbours are scored with phx_kb_scores_gather, which prefetches the next
 * neighbour's vector while it scores the current one.
 *
 * Visited sets are small open-addressing hash sets, cleared by walking the entries that were
 * set: a search or an insert touches a few thousand nodes, so clearing an n-bit bitset per
 * layer (the earlier design: 125 KB per insert at 1M, allocated and zeroed every time) cost
 * more than the set's use.
 *
 * Parallel insertion (phx_kb_hnsw_add_many with threads > 1), as hnswlib does it: node
 * numbers, levels, vectors and upper-layer blocks are all assigned before the threads start,
 * so the arrays never move while they run; each node's link rows are guarded by its own
 * one-byte spin lock (held only to copy a row out, or to rewrite it: never two at once, so no
 * lock order to keep); the entry point and top level are read under a mutex, and an insert
 * whose level is above the current top holds that mutex throughout (rare: log_M(n) times).
 * Such a build is not deterministic (the order in which nodes see each other depends on the
 * scheduling); the recall is the same within noise (tests/unit/test_kb.c checks both). */
#include "hnsw.h"
#include "index.h"
#include "util.h"
#include "vecmath.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

enum { PHX_HNSW_MAXLEVEL = 16 };

struct phx_kb_hnsw {
    int dim, metric, M, M0, efc, maxlevel;
    int32_t entry;
    size_t n, cap, ndeleted, upbytes;
    double ml; /* level multiplier 1/ln(M) */
    float *vecs;
    int32_t *l0;    /* cap rows of 1 + M0: layer 0's [count, ids] */
    int32_t **up;   /* per node: NULL, or per layer 1..level [count, M ids] */
    uint8_t *level; /* per node */
    uint8_t *locks; /* per node: its link rows' spin lock (parallel inserts only) */
    uint8_t *deleted;
    pthread_mutex_t glock; /* entry and maxlevel while parallel inserts run */
    uint64_t rng;
};

static const float *phx_hnsw_vec(const phx_kb_hnsw *h, int32_t n)
{
    return h->vecs + (size_t)n * (size_t)h->dim;
}

static int32_t *phx_hnsw_links(const phx_kb_hnsw *h, int32_t n, int l)
{
    if (l == 0)
        return h->l0 + (size_t)n * (size_t)(1 + h->M0);
    return h->up[n] + (size_t)(l - 1) * (size_t)(1 + h->M);
}

/* Distances: smaller is nearer (minus the dot product for cosine and dot). */
static float phx_hnsw_dist(const phx_kb_hnsw *h, const float *a, const float *b)
{
    return h->metric == PHX_KB_L2 ? phx_kb_l2sq(a, b, h->dim) : -phx_kb_dot(a, b, h->dim);
}

static void phx_hnsw_dists(const phx_kb_hnsw *h, const float *q, const int32_t *ids, size_t n,
                           float *out)
{
    int l2 = h->metric == PHX_KB_L2;
    phx_kb_scores_gather(q, h->vecs, ids, n, h->dim, l2, out);
    if (!l2)
        for (size_t i = 0; i < n; i++)
            out[i] = -out[i];
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
    pthread_mutex_init(&h->glock, NULL);
    return h;
}

void phx_kb_hnsw_free(phx_kb_hnsw *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        free(h->up[i]);
    free(h->up);
    free(h->l0);
    free(h->vecs);
    free(h->deleted);
    free(h->level);
    free(h->locks);
    pthread_mutex_destroy(&h->glock);
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
    return h->cap * ((size_t)h->dim * sizeof(float) + (size_t)(1 + h->M0) * sizeof(int32_t) +
                     sizeof(int32_t *) + 3) +
           h->upbytes;
}

void phx_kb_hnsw_delete(phx_kb_hnsw *h, int32_t node)
{
    if (node >= 0 && (size_t)node < h->n && !h->deleted[node]) {
        h->deleted[node] = 1;
        h->ndeleted++;
    }
}

/* --- per-node spin locks --------------------------------------------------------------------
 * A byte per node rather than a pthread mutex (40 bytes: 40 MB at 1M nodes). Held for a copy
 * of at most 1 + M0 ids or one neighbour-list rewrite (a few microseconds); a waiter yields
 * after a short spin, so a holder that was preempted (2 shared cores) gets the CPU back. */

static void phx_hnsw_lock(const phx_kb_hnsw *h, int32_t n)
{
    for (int spins = 0; __atomic_test_and_set(&h->locks[n], __ATOMIC_ACQUIRE);)
        if (++spins > 64) {
            sched_yield();
            spins = 0;
        }
}

static void phx_hnsw_unlock(const phx_kb_hnsw *h, int32_t n)
{
    __atomic_clear(&h->locks[n], __ATOMIC_RELEASE);
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
        hp->cap = hp->cap ? hp->cap * 2 : 256;
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

/* --- a search's or an insert's working memory ------------------------------------------------
 * Reused across the layers of one insert and across the inserts of one thread, so the hot
 * loop allocates nothing. */

typedef struct phx_hnsw_ctx {
    uint32_t *vis;  /* visited set: node + 1 per used slot, 0 = free; power-of-2 size */
    uint32_t *used; /* the slots set since the last clear */
    size_t viscap, nused;
    phx_hnsw_heap cand, res;
    int32_t *row;   /* a copy of one link row, 1 + M0 */
    int32_t *ids;   /* the unvisited neighbours of one node, M0 */
    float *ds;      /* their distances */
    phx_kb_ann *sc; /* a neighbour list being pruned or merged, M + M0 + 1 */
    int32_t *sel;   /* the heuristic's choice, M0 */
    int locked;     /* parallel inserts: take the per-node locks */
} phx_hnsw_ctx;

static void phx_hnsw_ctx_init(phx_hnsw_ctx *c, const phx_kb_hnsw *h, int locked)
{
    memset(c, 0, sizeof(*c));
    c->viscap = 4096;
    c->vis = phx_xcalloc(c->viscap, sizeof(*c->vis));
    c->used = phx_xmalloc(c->viscap / 2 * sizeof(*c->used));
    c->res.max = 1;
    c->row = phx_xmalloc(sizeof(int32_t) * (size_t)(1 + h->M0));
    c->ids = phx_xmalloc(sizeof(int32_t) * (size_t)h->M0);
    c->ds = phx_xmalloc(sizeof(float) * (size_t)(h->M0 + 1));
    c->sc = phx_xmalloc(sizeof(phx_kb_ann) * (size_t)(h->M + h->M0 + 1));
    c->sel = phx_xmalloc(sizeof(int32_t) * (size_t)h->M0);
    c->locked = locked;
}

static void phx_hnsw_ctx_free(phx_hnsw_ctx *c)
{
    free(c->vis);
    free(c->used);
    free(c->cand.a);
    free(c->res.a);
    free(c->row);
    free(c->ids);
    free(c->ds);
    free(c->sc);
    free(c->sel);
}

static size_t phx_hnsw_slot(uint32_t key, size_t cap)
{
    return (size_t)((key * 2654435761u) & (uint32_t)(cap - 1));
}

static void phx_hnsw_vis_clear(phx_hnsw_ctx *c)
{
    for (size_t i = 0; i < c->nused; i++)
        c->vis[c->used[i]] = 0;
    c->nused = 0;
}

/* Mark node visited; 1 when it already was. The set doubles at half full. */
static int phx_hnsw_visit(phx_hnsw_ctx *c, int32_t node)
{
    uint32_t key = (uint32_t)node + 1;
    if (c->nused + 1 > c->viscap / 2) {
        size_t ncap = c->viscap * 2;
        uint32_t *nv = phx_xcalloc(ncap, sizeof(*nv));
        uint32_t *nu = phx_xmalloc(ncap / 2 * sizeof(*nu));
        for (size_t i = 0; i < c->nused; i++) {
            uint32_t k = c->vis[c->used[i]];
            size_t s = phx_hnsw_slot(k, ncap);
            while (nv[s])
                s = (s + 1) & (ncap - 1);
            nv[s] = k;
            nu[i] = (uint32_t)s;
        }
        free(c->vis);
        free(c->used);
        c->vis = nv;
        c->used = nu;
        c->viscap = ncap;
    }
    size_t s = phx_hnsw_slot(key, c->viscap);
    while (c->vis[s]) {
        if (c->vis[s] == key)
            return 1;
        s = (s + 1) & (c->viscap - 1);
    }
    c->vis[s] = key;
    c->used[c->nused++] = (uint32_t)s;
    return 0;
}

/* Copy node's row on layer l into c->row (under its lock when inserts run in parallel). */
static const int32_t *phx_hnsw_row(const phx_kb_hnsw *h, phx_hnsw_ctx *c, int32_t node, int l)
{
    const int32_t *lk = phx_hnsw_links(h, node, l);
    if (!c->locked)
        return lk;
    phx_hnsw_lock(h, node);
    memcpy(c->row, lk, sizeof(int32_t) * (size_t)(1 + lk[0]));
    phx_hnsw_unlock(h, node);
    return c->row;
}

/* The ef nearest nodes to q on layer l starting from ep at distance dep (deleted ones
 * included: they route), left in c->res.a[0 .. return value), sorted nearest first. */
static size_t phx_hnsw_layer(const phx_kb_hnsw *h, phx_hnsw_ctx *c, const float *q, int32_t ep,
                             float dep, size_t ef, int l)
{
    c->cand.n = c->res.n = 0;
    phx_hnsw_vis_clear(c);
    phx_hnsw_push(&c->cand, ep, dep);
    phx_hnsw_push(&c->res, ep, dep);
    phx_hnsw_visit(c, ep);
    while (c->cand.n) {
        phx_kb_ann cur = phx_hnsw_pop(&c->cand);
        if (c->res.n >= ef && cur.dist > c->res.a[0].dist)
            break;
        const int32_t *lk = phx_hnsw_row(h, c, cur.node, l);
        size_t m = 0;
        for (int32_t i = 1; i <= lk[0]; i++)
            if (!phx_hnsw_visit(c, lk[i]))
                c->ids[m++] = lk[i];
        phx_hnsw_dists(h, q, c->ids, m, c->ds);
        for (size_t i = 0; i < m; i++) {
            float de = c->ds[i];
            if (c->res.n < ef || de < c->res.a[0].dist) {
                phx_hnsw_push(&c->cand, c->ids[i], de);
                phx_hnsw_push(&c->res, c->ids[i], de);
                if (c->res.n > ef)
                    phx_hnsw_pop(&c->res);
            }
        }
    }
    qsort(c->res.a, c->res.n, sizeof(*c->res.a), phx_hnsw_ann_cmp);
    return c->res.n;
}

/* Greedy descent from ep (at distance *dep) through the layers from top down to above
 * `down_to`: the nearest node found on layer down_to + 1, where the beam search of the lower
 * layers starts; *dep gets its distance. */
static int32_t phx_hnsw_greedy(const phx_kb_hnsw *h, phx_hnsw_ctx *c, const float *q, int32_t ep,
                               int top, int down_to, float *dep)
{
    for (int l = top; l > down_to; l--) {
        for (int moved = 1; moved;) {
            moved = 0;
            const int32_t *lk = phx_hnsw_row(h, c, ep, l);
            size_t m = (size_t)lk[0];
            memcpy(c->ids, lk + 1, m * sizeof(int32_t));
            phx_hnsw_dists(h, q, c->ids, m, c->ds);
            for (size_t i = 0; i < m; i++)
                if (c->ds[i] < *dep)
                    *dep = c->ds[i], ep = c->ids[i], moved = 1;
        }
    }
    return ep;
}

/* The paper's neighbour heuristic over cands (sorted nearest first): keep a candidate only if
 * it is nearer to the base than to every neighbour already kept. Writes up to max ids to sel.
 * The vectors compared are immutable once inserted: no lock needed. */
static int phx_hnsw_select(const phx_kb_hnsw *h, const phx_kb_ann *cands, size_t n, int max,
                           int32_t *sel)
{
    int k = 0;
    for (size_t i = 0; i < n && k < max; i++) {
        int keep = 1;
        const float *vi = phx_hnsw_vec(h, cands[i].node);
        for (int j = 0; j < k && keep; j++)
            if (phx_hnsw_dist(h, vi, phx_hnsw_vec(h, sel[j])) < cands[i].dist)
                keep = 0;
        if (keep)
            sel[k++] = cands[i].node;
    }
    return k;
}

/* Link node into e's list on layer l, pruning e's list with the heuristic when full. */
static void phx_hnsw_connect(phx_kb_hnsw *h, phx_hnsw_ctx *c, int32_t e, int32_t node, int l)
{
    int max = l == 0 ? h->M0 : h->M;
    if (c->locked)
        phx_hnsw_lock(h, e);
    int32_t *lk = phx_hnsw_links(h, e, l);
    if (lk[0] < max) {
        lk[++lk[0]] = node;
    } else {
        const float *ve = phx_hnsw_vec(h, e);
        memcpy(c->ids, lk + 1, sizeof(int32_t) * (size_t)max);
        phx_hnsw_dists(h, ve, c->ids, (size_t)max, c->ds);
        for (int i = 0; i < max; i++)
            c->sc[i] = (phx_kb_ann){c->ids[i], c->ds[i]};
        c->sc[max] = (phx_kb_ann){node, phx_hnsw_dist(h, ve, phx_hnsw_vec(h, node))};
        qsort(c->sc, (size_t)max + 1, sizeof(*c->sc), phx_hnsw_ann_cmp);
        lk[0] = phx_hnsw_select(h, c->sc, (size_t)max + 1, max, lk + 1);
    }
    if (c->locked)
        phx_hnsw_unlock(h, e);
}

/* Write node's own list on layer l: the k neighbours its search selected. In a parallel build
 * the list may not be empty by then: another insert can reach node through an upper layer
 * before node's lower lists are written, find nothing else from there, select node and link
 * itself into node's list (phx_hnsw_connect). Overwriting would drop that back-link and leave
 * the other node with no in-link at all -- unreachable by any search (test_kb saw 199 of 200
 * found; about 1 two-thread build in 20 of a small 2-D set). So the links already there are
 * merged with sel, pruned by the same heuristic when they do not fit. A serial build always
 * finds the list empty and writes sel as it is. */
static void phx_hnsw_setrow(phx_kb_hnsw *h, phx_hnsw_ctx *c, int32_t node, int l,
                            const int32_t *sel, int k)
{
    int max = l == 0 ? h->M0 : h->M;
    if (c->locked)
        phx_hnsw_lock(h, node);
    int32_t *lk = phx_hnsw_links(h, node, l);
    if (lk[0] == 0) {
        lk[0] = k;
        memcpy(lk + 1, sel, sizeof(int32_t) * (size_t)k);
        goto out;
    }
    const float *v = phx_hnsw_vec(h, node);
    int m = 0;
    for (int i = 0; i < k; i++)
        c->sc[m++] = (phx_kb_ann){sel[i], phx_hnsw_dist(h, v, phx_hnsw_vec(h, sel[i]))};
    for (int32_t j = 1; j <= lk[0]; j++) {
        int dup = 0;
        for (int i = 0; i < k && !dup; i++)
            dup = sel[i] == lk[j];
        if (!dup)
            c->sc[m++] = (phx_kb_ann){lk[j], phx_hnsw_dist(h, v, phx_hnsw_vec(h, lk[j]))};
    }
    qsort(c->sc, (size_t)m, sizeof(*c->sc), phx_hnsw_ann_cmp);
    if (m <= max) {
        for (int i = 0; i < m; i++)
            lk[1 + i] = c->sc[i].node;
        lk[0] = m;
    } else {
        lk[0] = phx_hnsw_select(h, c->sc, (size_t)m, max, lk + 1);
    }
out:
    if (c->locked)
        phx_hnsw_unlock(h, node);
}

/* The two big arrays (vectors, bottom-layer links: 1.6 GB at 1M x 384) are 2 MB-aligned and
 * marked MADV_HUGEPAGE before first use. Why: a graph walk reads vectors at random places, and
 * with 4 KB pages nearly every one is also a TLB miss -- in a VM a two-dimensional page walk
 * that itself misses the cache once the page tables (3 MB of them for 1.5 GB) outgrow it. That
 * is what made the 1M build slow down ~10x from 100k. Where THP is off (or no huge page can be
 * had), the memory is ordinary pages and nothing else changes. Growth copies (no realloc for
 * aligned blocks); the arrays double, so that is amortised. */
static void *phx_hnsw_big(void *old, size_t oldbytes, size_t bytes)
{
    enum { HUGE = 2 << 20 };
    size_t round = (bytes + HUGE - 1) / HUGE * HUGE;
    void *p = NULL;
    if (posix_memalign(&p, HUGE, round) != 0)
        p = phx_xmalloc(bytes); /* aborts when memory is out, as every phx_x* allocation */
    else
        madvise(p, round, MADV_HUGEPAGE); /* advice: failure only means small pages */
    if (old)
        memcpy(p, old, oldbytes);
    free(old);
    return p;
}

/* Make room for n nodes in every per-node array (before any parallel insert starts: the
 * arrays must not move while threads read them). */
static void phx_hnsw_reserve(phx_kb_hnsw *h, size_t n)
{
    if (n <= h->cap)
        return;
    size_t cap = h->cap ? h->cap : 1024;
    while (cap < n)
        cap *= 2;
    size_t vrow = (size_t)h->dim * sizeof(float), lrow = (size_t)(1 + h->M0) * sizeof(int32_t);
    h->vecs = phx_hnsw_big(h->vecs, h->n * vrow, cap * vrow);
    h->l0 = phx_hnsw_big(h->l0, h->n * lrow, cap * lrow);
    h->up = phx_xrealloc(h->up, cap * sizeof(*h->up));
    h->level = phx_xrealloc(h->level, cap);
    h->locks = phx_xrealloc(h->locks, cap);
    h->deleted = phx_xrealloc(h->deleted, cap);
    h->cap = cap;
}

/* Append a node holding vec, with its level drawn (not yet linked). */
static int32_t phx_hnsw_append(phx_kb_hnsw *h, const float *vec)
{
    int32_t node = (int32_t)h->n++;
    memcpy(h->vecs + (size_t)node * (size_t)h->dim, vec, (size_t)h->dim * sizeof(float));
    h->deleted[node] = 0;
    h->locks[node] = 0;
    /* xorshift64*: a deterministic level per seed, so tests and benchmarks repeat. */
    h->rng ^= h->rng >> 12, h->rng ^= h->rng << 25, h->rng ^= h->rng >> 27;
    double u = (double)((h->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
    int level = (int)(-log(u > 0 ? u : 1e-300) * h->ml);
    if (level > PHX_HNSW_MAXLEVEL)
        level = PHX_HNSW_MAXLEVEL;
    h->level[node] = (uint8_t)level;
    h->l0[(size_t)node * (size_t)(1 + h->M0)] = 0;
    h->up[node] = NULL;
    if (level > 0) {
        size_t words = (size_t)level * (size_t)(1 + h->M);
        h->up[node] = phx_xcalloc(words, sizeof(int32_t));
        h->upbytes += words * sizeof(int32_t);
    }
    return node;
}

/* Link an appended node into the graph. */
static void phx_hnsw_insert(phx_kb_hnsw *h, phx_hnsw_ctx *c, int32_t node)
{
    const float *vec = phx_hnsw_vec(h, node);
    int level = h->level[node];
    if (c->locked)
        pthread_mutex_lock(&h->glock);
    int32_t ep = h->entry;
    int top = h->maxlevel;
    if (ep < 0) { /* the first node: nothing to link to */
        h->entry = node;
        h->maxlevel = level;
        if (c->locked)
            pthread_mutex_unlock(&h->glock);
        return;
    }
    /* A new top node keeps the lock to the end: no other insert may start from an entry
     * point that is about to change. */
    int holding = c->locked && level > top;
    if (c->locked && !holding)
        pthread_mutex_unlock(&h->glock);
    float dep = phx_hnsw_dist(h, vec, phx_hnsw_vec(h, ep));
    ep = phx_hnsw_greedy(h, c, vec, ep, top, level, &dep);
    for (int l = level < top ? level : top; l >= 0; l--) {
        size_t nw = phx_hnsw_layer(h, c, vec, ep, dep, (size_t)h->efc, l);
        int k = phx_hnsw_select(h, c->res.a, nw, h->M, c->sel);
        ep = c->res.a[0].node;
        dep = c->res.a[0].dist;
        phx_hnsw_setrow(h, c, node, l, c->sel, k);
        for (int i = 0; i < k; i++)
            phx_hnsw_connect(h, c, c->sel[i], node, l);
    }
    if (level > top) {
        h->maxlevel = level;
        h->entry = node;
    }
    if (holding)
        pthread_mutex_unlock(&h->glock);
}

int32_t phx_kb_hnsw_add(phx_kb_hnsw *h, const float *vec)
{
    return phx_kb_hnsw_add_many(h, vec, 1, 1);
}

typedef struct phx_hnsw_job {
    phx_kb_hnsw *h;
    size_t next, end; /* next node to insert (taken atomically), one past the last */
} phx_hnsw_job;

static void *phx_hnsw_worker(void *arg)
{
    phx_hnsw_job *j = arg;
    phx_hnsw_ctx c;
    phx_hnsw_ctx_init(&c, j->h, 1);
    for (;;) {
        size_t node = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (node >= j->end)
            break;
        phx_hnsw_insert(j->h, &c, (int32_t)node);
    }
    phx_hnsw_ctx_free(&c);
    return NULL;
}

int32_t phx_kb_hnsw_add_many(phx_kb_hnsw *h, const float *vecs, size_t count, int threads)
{
    phx_hnsw_reserve(h, h->n + count);
    int32_t first = (int32_t)h->n;
    for (size_t i = 0; i < count; i++)
        phx_hnsw_append(h, vecs + i * (size_t)h->dim);
    phx_hnsw_ctx c;
    phx_hnsw_ctx_init(&c, h, 0);
    size_t done = 0;
    /* Parallel only with enough work to share (thread start-up is ~50 us, an insert at
     * efConstruction 200 a few hundred), and from a graph that has its entry point. */
    if (threads > 1 && count >= 64 * (size_t)threads) {
        if (h->entry < 0)
            phx_hnsw_insert(h, &c, first + (int32_t)done++);
        phx_hnsw_job job = {.h = h, .next = (size_t)first + done, .end = h->n};
        pthread_t *tid = phx_xcalloc((size_t)threads, sizeof(*tid));
        int started = 0;
        for (; started < threads - 1; started++)
            if (pthread_create(&tid[started], NULL, phx_hnsw_worker, &job) != 0)
                break; /* fewer threads: the rest of the work still gets done below */
        phx_hnsw_worker(&job);
        for (int i = 0; i < started; i++)
            pthread_join(tid[i], NULL);
        free(tid);
        done = count;
    }
    for (; done < count; done++)
        phx_hnsw_insert(h, &c, first + (int32_t)done);
    phx_hnsw_ctx_free(&c);
    return first;
}

size_t phx_kb_hnsw_search(const phx_kb_hnsw *h, const float *q, size_t ef, phx_kb_ann *out)
{
    if (h->entry < 0 || ef == 0)
        return 0;
    phx_hnsw_ctx c;
    phx_hnsw_ctx_init(&c, h, 0);
    float dep = phx_hnsw_dist(h, q, phx_hnsw_vec(h, h->entry));
    int32_t ep = phx_hnsw_greedy(h, &c, q, h->entry, h->maxlevel, 0, &dep);
    /* Deleted nodes take places in the beam: widen it by their share. */
    size_t want = ef + (h->n ? ef * h->ndeleted / h->n : 0);
    size_t nw = phx_hnsw_layer(h, &c, q, ep, dep, want, 0), k = 0;
    for (size_t i = 0; i < nw && k < ef; i++)
        if (!h->deleted[c.res.a[i].node])
            out[k++] = c.res.a[i];
    phx_hnsw_ctx_free(&c);
    return k;
}
