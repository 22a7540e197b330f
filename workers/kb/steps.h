/* steps.h -- the kb.* step kinds: input checks, embedding, and the calls into store and index.
 *
 * kb.upsert {"collection", "items": [{"id", "text"?, "vector"?, "metadata"?, "importance"?,
 *            "ttl_s"?}]}                       -> {"upserted", "count", "evicted", "embedded"}
 * kb.search {"collection", "query" | "vector", "k"?, "filter"?, "min_score"?}
 *                                              -> {"hits": [{"id", "score", "text",
 *                                                  "metadata"}], "scanned", "method"}
 * kb.delete {"collection", "ids" | "filter"}   -> {"deleted"}
 * kb.prune  {"collection"}                     -> {"expired", "evicted", "count"}
 *
 * Every input is checked in full before anything is written (an upsert is all or nothing):
 * unknown fields, bad ids, duplicate ids in one batch, vectors of the wrong dimension or with
 * NaN/Inf (or beyond float32), all-zero vectors in a cosine collection, an item with neither
 * text nor vector, oversized text or metadata, importance outside [0,1], a bad TTL or filter
 * -- each is invalid_input (not retryable) naming the item and field. */
#ifndef PHX_KB_STEPS_H
#define PHX_KB_STEPS_H

#include <jansson.h>

#include "kb.h"

json_t *phx_kb_upsert_step(phx_kb_thread *t, const json_t *in, phx_err *err);
json_t *phx_kb_search_step(phx_kb_thread *t, const json_t *in, phx_err *err);
json_t *phx_kb_delete_step(phx_kb_thread *t, const json_t *in, phx_err *err);
json_t *phx_kb_prune_step(phx_kb_thread *t, const json_t *in, phx_err *err);

#endif
