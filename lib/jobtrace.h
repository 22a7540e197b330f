/* jobtrace.h -- one job's life as data: its Redis record joined with its messages on
 * phx.events (planner decisions) and phx.results (pool outcomes, durations, workers).
 *
 * `phx trace JOB_ID` prints it; the ingress's ops API serves it to the ops page
 * (GET /v1/ops/jobs/{id}/trace). Reading whole topics costs time on a big cluster: timeout_ms
 * bounds each topic, and what was read by then is still returned. */
#ifndef PHX_JOBTRACE_H
#define PHX_JOBTRACE_H

#include "err.h"
#include "redis.h"

#include <jansson.h>

/* {job: the job's view (phx_jobstore_view) or absent when expired, trace_id (32 hex, when the
 * job has one), timeline: [{ts_ms, source: event|result, type, step, attempt, detail | status,
 * duration_ms, worker, error}] sorted by time, steps: {STEP: {state, attempts, workers: [...],
 * busy_ms, first_dispatch_ms, last_result_ms}}}. *partial = 1 (err says which topic) when a
 * topic could not be read to its end. NULL with err: code "not_found" when there is neither a
 * Redis record nor an event, else Redis failed. */
json_t *phx_jobtrace_collect(phx_redis *r, const char *brokers, const char *id, int timeout_ms,
                             int *partial, phx_err *err);

#endif
