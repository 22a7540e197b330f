/* store.h -- collections in Redis and their in-memory copies.
 *
 * Writes are Lua scripts, one per batch: they change the records and append one entry per
 * changed id to the collection's log (a Redis stream, entries {seq, op: put|del, id}) in the
 * same atomic step, so the log can never miss a change. A replica catches up by reading the
 * log after the last entry it applied and loading the records named by puts; a put whose
 * record is already gone is skipped (a later del follows), so replaying is harmless. The log
 * is trimmed to PHX_KB_LOG_MAXLEN entries; a replica that finds a gap in the sequence numbers
 * rebuilds from the records themselves.
 *
 * Every record is verified (kbrec.h) when loaded; one that fails is moved to the quarantine
 * hash and a del is logged, so no replica serves it. */
#ifndef PHX_KB_STORE_H
#define PHX_KB_STORE_H

#include "err.h"
#include "kb.h"

void phx_kb_app_free(phx_kb_app *app);

/* The collection named name (loaded from Redis on first use). err "no_collection" (not
 * retryable) when it does not exist. */
phx_kb_coll *phx_kb_coll_get(phx_kb_app *app, phx_redis *r, const char *name, phx_err *err);
/* Catch up with the collection's log (rebuild from the records on first use or after a
 * gap). 0, or -1 with err (Redis unreachable: retryable). */
int phx_kb_sync(phx_kb_app *app, phx_kb_coll *c, phx_redis *r, phx_err *err);
/* Load and catch up with every collection in phx:kb:collections. Until the first call that
 * succeeds, records its progress for phx_kb_ready. */
int phx_kb_sync_all(phx_kb_app *app, phx_redis *r, phx_err *err);
/* phx_worker_ops.ready for phx-kb: 0 once every collection that existed at start is loaded,
 * else -1 with the progress in why. Thread-safe. */
int phx_kb_ready(phx_kb_app *app, char *why, size_t whylen);

/* One item of a write: its id and encoded record. */
typedef struct phx_kb_put {
    const char *id;
    unsigned char *rec;
    size_t len;
    int64_t expires_ms;
} phx_kb_put;

/* Write items (all or none). With hard_cap, refuse (err "capacity_exceeded") when the
 * collection would hold more than c->capacity records. Returns the record count after. */
long phx_kb_write(phx_kb_app *app, phx_kb_coll *c, phx_redis *r, const phx_kb_put *items, int n,
                  int hard_cap, phx_err *err);
/* Delete ids; crcs (4-byte stored CRCs, or NULL) make each delete conditional on the record
 * still being the version that was judged. Returns the number deleted, or -1. */
long phx_kb_delete(phx_kb_app *app, phx_kb_coll *c, phx_redis *r, const char *const *ids,
                   const uint32_t *crcs, int n, phx_err *err);
/* Delete every record whose TTL has passed (in batches). Returns how many, or -1. */
long phx_kb_expire(phx_kb_app *app, phx_kb_coll *c, phx_redis *r, int64_t now_ms, phx_err *err);
/* Count a search hit on each id (hits +1, seen = now). */
int phx_kb_touch(phx_kb_coll *c, phx_redis *r, const char *const *ids, int n, phx_err *err);

#endif
