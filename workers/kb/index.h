/* index.h -- one collection's in-memory copy: contiguous float32 vectors and exact search.
 *
 * Vectors sit in one array (slot i at vecs[i*dim]) so an exact search is a single sequential
 * pass over memory -- what the hardware prefetcher and SIMD units are best at; items (id,
 * text, metadata, timestamps) sit in a parallel array. Ids map to slots through a chained hash
 * table. A delete moves the last slot into the hole, so the arrays stay dense and the scan
 * never skips tombstones.
 *
 * Optionally (phx_kb_index_set_int8) the vectors are also held as int8 with one scale per
 * vector, a quarter of the bytes: an unfiltered exact search then scans the int8 copy for the
 * k * rerank best candidates and re-scores only those in float32, so its results are the
 * float32 ones whenever the true top k is among the candidates (the unit test measures how
 * often on a fixed seed). Costs dim + 8 bytes per vector on top of the float32 array.
 *
 * Not thread-safe: the collection's rwlock (store.h) guards it. */
#ifndef PHX_KB_INDEX_H
#define PHX_KB_INDEX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "hnsw.h"
#include "kbrec.h"
#include "vecmath.h"

/* When a collection gets an HNSW graph beside its exact scan. */
typedef struct phx_kb_ann_cfg {
    size_t min;      /* build the graph once the collection holds this many items (0 = never) */
    int M, efc;      /* graph degree and construction beam */
    int rebuild_pct; /* rebuild the graph when this % of its nodes are deleted */
    int metric;
    int threads; /* threads inserting into a graph being built whole (<= 1: the caller's) */
    /* 0: the index builds (and rebuilds) its graph itself, inside the put or del that crosses
     * the threshold -- simple, but that call then takes as long as the whole build (about a
     * minute at 100k 384-dim vectors). 1: it never does; phx_kb_index_graph_due says when a
     * graph is wanted and the caller builds one off to the side (phx_kb_graph_*, below) while
     * searches stay exact. Once attached, a graph is kept current by puts and dels either way. */
    int background;
} phx_kb_ann_cfg;

typedef struct phx_kb_item {
    char *id, *text;
    json_t *meta; /* parsed metadata object, for filters and hits */
    float importance;
    int64_t created_ms, updated_ms, expires_ms;
    uint32_t crc; /* the stored record's CRC: identifies the version a prune decided on */
    int32_t node; /* its HNSW node, or -1 */
    uint64_t ver; /* which put of this index wrote the vector (unique within the index) */
} phx_kb_item;

typedef struct phx_kb_index {
    int dim;
    size_t n, cap;
    float *vecs;
    phx_kb_item *items;
    int32_t *buckets, *next; /* id hash chains over slots; -1 ends a chain */
    size_t nbuckets;
    phx_kb_ann_cfg ann_cfg;
    phx_kb_hnsw *ann;   /* NULL below ann_cfg.min items */
    int32_t *node_slot; /* HNSW node -> slot (-1 once deleted) */
    size_t node_cap;
    int rerank;     /* int8 scan on (candidates = k * rerank), or 0 */
    int8_t *q8;     /* slot i at q8[i*dim] */
    float *q8scale; /* per slot: vector ~= q8scale * q8 */
    float *sqnorm;  /* per slot: squared length of the float32 vector (the l2 metric) */
    uint64_t puts;  /* puts so far: the next item's ver */
} phx_kb_index;

typedef struct phx_kb_hit {
    size_t slot;
    float score;
} phx_kb_hit;

void phx_kb_index_init(phx_kb_index *x, int dim);
/* Give x an HNSW graph once it holds cfg->min items (call right after init). */
void phx_kb_index_set_ann(phx_kb_index *x, const phx_kb_ann_cfg *cfg);
/* Keep an int8 copy and scan it for k * rerank candidates, re-ranked in float32 (call right
 * after init; rerank 0 = off). */
void phx_kb_index_set_int8(phx_kb_index *x, int rerank);
void phx_kb_index_free(phx_kb_index *x);
/* The slot of id, or -1. */
long phx_kb_index_find(const phx_kb_index *x, const char *id);
/* Insert or replace id from a verified record (its dim must be x->dim); meta is parsed here. */
void phx_kb_index_put(phx_kb_index *x, const char *id, const phx_kb_rec *rec);
/* Remove id; 1 if it was there. */
int phx_kb_index_del(phx_kb_index *x, const char *id);

/* The k best slots for query q (dim floats; unit length for cosine) by metric: cosine and dot
 * score by dot product, l2 by minus the Euclidean distance (higher is better everywhere).
 * Items expired at now_ms, failing filter (may be NULL) or scoring below min_score are
 * skipped. out holds k; returns how many were found, best first. *scanned gets the number of
 * vectors scored. Without a filter and with the int8 copy on, the scan runs on the int8 copy
 * (see the top of this file). */
size_t phx_kb_index_search(const phx_kb_index *x, int metric, const float *q, size_t k,
                           const json_t *filter, double min_score, int64_t now_ms, phx_kb_hit *out,
                           size_t *scanned);

/* ann_cfg.background: does x want a (new) graph? It has at least ann_cfg.min items and no
 * graph, or one with more than rebuild_pct % of its nodes deleted. */
int phx_kb_index_graph_due(const phx_kb_index *x);

/* A graph built off to the side of a live index, in three phases so that the index's lock is
 * held only briefly: take (read lock: copy a batch of slots' vectors, ids and vers), add (no
 * lock: insert that batch into the private graph -- the slow part) and, once every slot that
 * existed at begin (and, for up to 3 more rounds, what was appended meanwhile) was taken,
 * attach (write lock). Writes may change the index between
 * batches: attach keeps a node only when its id is still in the index with the same ver (the
 * vector it was built from), deletes the others from the graph and inserts whatever the
 * graph lacks (items put since they were taken, or never seen because a delete moved them
 * behind the cursor) directly. */
typedef struct phx_kb_graph_build {
    phx_kb_hnsw *h;
    char **ids;     /* per node: the item's id ... */
    uint64_t *vers; /* ... and its ver when taken */
    size_t n, cap;
    size_t cursor, end; /* next slot to take; the index's size at begin (or a later round) */
    int rounds;         /* times end was moved on to take items appended during the build */
    float *buf;         /* the batch taken, batch * dim floats */
    size_t batch, nbuf;
    int threads; /* ann_cfg.threads at begin: inserts of one batch run in parallel */
} phx_kb_graph_build;

void phx_kb_graph_begin(phx_kb_graph_build *b, const phx_kb_index *x, size_t batch);
/* Copy the next batch from x (caller holds x's read lock); 0 when every slot was taken. */
size_t phx_kb_graph_take(phx_kb_graph_build *b, const phx_kb_index *x);
/* Insert the batch taken into the graph (no lock: the graph is private until attached). */
void phx_kb_graph_add(phx_kb_graph_build *b);
/* Replace x's graph (if any) by b's, reconciled as above (caller holds x's write lock); b is
 * left empty. Returns the nodes inserted at attach time (writes made during the build). */
size_t phx_kb_graph_attach(phx_kb_graph_build *b, phx_kb_index *x);
void phx_kb_graph_free(phx_kb_graph_build *b);

/* Like phx_kb_index_search, but through the HNSW graph when there is one and ef > 0 (beam
 * max(ef, k), wider with a filter). Hits the graph cannot fill (a selective filter, expired
 * items) fall back to the exact scan. *method gets "hnsw" or "exact". */
size_t phx_kb_index_query(const phx_kb_index *x, int metric, const float *q, size_t k,
                          const json_t *filter, double min_score, int64_t now_ms, size_t ef,
                          phx_kb_hit *out, size_t *scanned, const char **method);

#endif
