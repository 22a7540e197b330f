/* prune.h -- pruning that deletes: TTL expiry and capacity enforcement.
 *
 * A prune first deletes every record whose TTL passed, then, when the collection holds more
 * than its capacity and its policy is not "none", deletes the lowest-ranked records down to
 * the capacity. Ranks by policy:
 *   lru    most recent of (last write, last search hit), oldest first
 *   lfu    search hits, fewest first (ties: least recent first)
 *   score  0.4 importance + 0.3 recency + 0.3 frequency, lowest first, where recency halves
 *          for every day since the last write or hit and frequency is log(1+hits) over
 *          log(1+the collection's most hits)
 * A victim is deleted only if its record is still the version that was ranked (its CRC), so a
 * record rewritten meanwhile survives.
 *
 * Leases in Redis keep replicas from pruning one collection at the same time
 * (phx:kb:{kb:C}:prune_lock, held for the run) and make the periodic pruner run once per
 * interval across all replicas (phx:kb:{kb:C}:prune_due, PX = the interval). */
#ifndef PHX_KB_PRUNE_H
#define PHX_KB_PRUNE_H

#include "kb.h"

typedef struct phx_kb_prune_stats {
    long expired, evicted;
} phx_kb_prune_stats;

/* Prune c now, waiting up to wait_ms for another replica's run to end. 0 when pruned, 1 when
 * another run held the lock throughout, -1 with err. */
int phx_kb_prune(phx_kb_app *app, phx_kb_coll *c, phx_redis *r, long wait_ms,
                 phx_kb_prune_stats *st, phx_err *err);
/* The periodic pruner (called from the tick thread): prune each loaded collection whose
 * interval lease this replica wins. */
int phx_kb_prune_due(phx_kb_app *app, phx_redis *r, phx_err *err);

#endif
