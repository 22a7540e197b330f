/* hnsw.h -- an HNSW graph (Malkov & Yashunin, 2016) for approximate nearest-neighbour search.
 *
 * Nodes are added one at a time (no batch build needed), deleted by tombstone (a deleted node
 * still routes searches but is never returned) and identified by a stable node number that the
 * index stores beside its item. The graph keeps its own copy of each vector: the index moves
 * vectors when it compacts after a delete, and a graph reading through moving slots would need
 * a back-map updated on every move; the copy costs 4*dim bytes per vector and keeps the two
 * structures independent. Neighbours are chosen with the paper's heuristic (a candidate is kept
 * only if it is closer to the new node than to every neighbour kept so far), which keeps the
 * graph navigable on clustered data.
 *
 * Distances: cosine and dot use minus the dot product, l2 the squared distance; smaller is
 * nearer. Not thread-safe for writes; searches may run concurrently (each has its own visited
 * set). The collection's rwlock (store.h) provides both. phx_kb_hnsw_add_many inserts with
 * several threads inside one call (per-node locks, see hnsw.c). */
#ifndef PHX_KB_HNSW_H
#define PHX_KB_HNSW_H

#include <stddef.h>
#include <stdint.h>

typedef struct phx_kb_hnsw phx_kb_hnsw;

typedef struct phx_kb_ann {
    int32_t node;
    float dist;
} phx_kb_ann;

/* M: neighbours per node per layer (2*M on layer 0); efc: candidates while inserting. */
phx_kb_hnsw *phx_kb_hnsw_new(int dim, int metric, int M, int efc, uint64_t seed);
void phx_kb_hnsw_free(phx_kb_hnsw *h);
/* Add vec (dim floats); returns the new node number. */
int32_t phx_kb_hnsw_add(phx_kb_hnsw *h, const float *vec);
/* Add count vectors (count * dim floats, contiguous) with up to `threads` threads inserting
 * in parallel (the caller's thread is one of them; 1 = all on the caller's). Nodes are
 * numbered first, first + 1, ... in the order of vecs; returns first. The graph must not be
 * searched or changed by anyone else meanwhile (the same rule as for phx_kb_hnsw_add). With
 * threads > 1 the graph depends on the scheduling (not repeatable run to run). */
int32_t phx_kb_hnsw_add_many(phx_kb_hnsw *h, const float *vecs, size_t count, int threads);
void phx_kb_hnsw_delete(phx_kb_hnsw *h, int32_t node);
/* Up to ef live nodes nearest to q, nearest first, in out (room for ef); returns how many. */
size_t phx_kb_hnsw_search(const phx_kb_hnsw *h, const float *q, size_t ef, phx_kb_ann *out);
/* The dimension the graph was made for. */
int phx_kb_hnsw_dim(const phx_kb_hnsw *h);
/* Nodes in the graph, and of those deleted (a rebuild pays off when many are). */
size_t phx_kb_hnsw_size(const phx_kb_hnsw *h);
size_t phx_kb_hnsw_deleted(const phx_kb_hnsw *h);
/* Bytes the graph holds (vectors and links), for stats and benchmarks. */
size_t phx_kb_hnsw_bytes(const phx_kb_hnsw *h);

#endif
