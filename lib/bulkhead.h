/* bulkhead.h -- bounded in-flight calls per dependency inside one process (Redis, each LLM
 * provider, each outbound tool). One implementation for the whole system.
 *
 * Why: consumer threads (PHX_CONCURRENCY) bound a process's in-flight *messages*, but not how
 * many of them sit in the same dependency. Without a per-dependency bound, one slow
 * dependency (a provider answering in 60 s, a Redis that stalls) ties up every thread and
 * everything else the process does stops with it. A bulkhead caps the calls in flight to one
 * dependency; a call that finds it full waits at most wait_ms and then fails with the
 * retryable error code "bulkhead_full".
 *
 * What happens then is the caller's back-pressure, never a buffer: a pool step that hits a
 * full bulkhead is not a step failure -- the pool hands the message back to the worker loop
 * (PHX_RETRY_LATER), which pauses its Kafka partitions and tries the same message again once
 * the bulkhead has drained (worker.c). The work waits in Kafka as lag, where it is durable and
 * visible, not in our memory.
 *
 * Metrics, per bulkhead name (a fixed set per process: "redis", "llm:openai", "tool:webhook"):
 *   phx_bulkhead_limit{bulkhead}            the bound
 *   phx_bulkhead_inflight{bulkhead}         calls in flight now
 *   phx_bulkhead_inflight_max{bulkhead}     the most ever in flight at once (== limit once it
 *                                            saturated)
 *   phx_bulkhead_rejected_total{bulkhead}   calls refused because it stayed full for wait_ms
 *   phx_bulkhead_waits_total{bulkhead}      calls that found it full and had to wait
 * All functions are thread-safe (one mutex + condition variable per bulkhead). */
#ifndef PHX_BULKHEAD_H
#define PHX_BULKHEAD_H

#include <pthread.h>

#include "err.h"
#include "metrics.h"

#define PHX_BULKHEAD_FULL "bulkhead_full" /* the error code of a refused call */

typedef struct phx_bulkhead {
    pthread_mutex_t mu;
    pthread_cond_t drained; /* signalled when a call leaves */
    char name[48];
    long limit, wait_ms, inflight, peak;
    phx_metric *m_limit, *m_inflight, *m_peak, *m_rejected, *m_waits;
} phx_bulkhead;

/* limit >= 1 calls in flight at once; a call finding it full waits up to wait_ms (0 = not at
 * all) for a slot. name is the metric label. */
void phx_bulkhead_init(phx_bulkhead *b, const char *name, long limit, long wait_ms);
void phx_bulkhead_destroy(phx_bulkhead *b);
/* Take a slot, waiting up to the bulkhead's wait_ms for one to free. 0 when taken (pair it
 * with phx_bulkhead_leave); -1 with err = bulkhead_full (retryable) when still full. */
int phx_bulkhead_enter(phx_bulkhead *b, phx_err *err);
void phx_bulkhead_leave(phx_bulkhead *b);
long phx_bulkhead_inflight(phx_bulkhead *b);
/* Is err a refusal by a full bulkhead (so the message should wait in Kafka, not fail)? */
int phx_bulkhead_refused(const phx_err *err);

#endif
