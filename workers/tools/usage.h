/* usage.h -- the tools pool's per-tenant usage counters, summed in the process and written to
 * Redis on a short interval instead of once per call.
 *
 * Why: counting every tool call with its own HINCRBY pipeline was the tools pool's only Redis
 * round trip for tool.calc (one per step, ~30 % of a 2-step chain's round trips). Usage is a
 * sum, so the calls of an interval add up in memory and leave as one pipeline per interval
 * (one HINCRBY per tenant, day and field, one EXPIRE per key), sent by the pool's tick thread.
 *
 * The bound (docs/architecture.md, "Redis keys"): a call shows in phx:usage:{TENANT}:DAY within
 * the flush interval (PHX_TOOLS_USAGE_FLUSH_MS) plus one round trip. What is summed survives a
 * Redis outage (kept and sent again) and SIGTERM (the last flush runs after the loop stopped);
 * a kill -9 loses at most the calls of the interval in hand, and while Redis is down, the
 * calls since it went down. A flush whose reply is lost may be applied twice when it is sent
 * again, as any resent HINCRBY was before. Counting stays exact in the process's metrics
 * (phx_tool_calls_total), which do not wait.
 *
 * Thread-safety: phx_usage_add and phx_usage_flush may be called from any thread (a mutex
 * guards the table; a flush holds it only to take the counts, never across a round trip). */
#ifndef PHX_TOOLS_USAGE_H
#define PHX_TOOLS_USAGE_H

#include "err.h"
#include "redis.h"

typedef struct phx_usage phx_usage;

phx_usage *phx_usage_new(void);
/* Frees what is left unflushed: call phx_usage_flush first. */
void phx_usage_free(phx_usage *u);

/* Add n to field of hash key (phx:usage:{T}:DAY). 0, or -1 when the table is full (too many
 * distinct keys and fields within one interval): the caller writes that count itself. */
int phx_usage_add(phx_usage *u, const char *key, const char *field, long long n);

/* Write every summed count to Redis through r: HINCRBY per field, EXPIRE ttl_s per key,
 * PHX_REDIS_PIPELINE_MAX commands per round trip; nothing to send costs nothing. 0, or -1
 * with err: counts Redis did not take (unreachable) are summed back for the next flush;
 * counts it refused with an error reply (e.g. a key of the wrong type) are dropped and logged,
 * since sending them again cannot succeed. */
int phx_usage_flush(phx_usage *u, phx_redis *r, long ttl_s, phx_err *err);

#endif
