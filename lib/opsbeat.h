/* opsbeat.h -- every long-running process's heartbeat for the ops page (phx-ingress /ops).
 *
 * Why a heartbeat in Redis: the ops page must list the pools and their replicas, with lag,
 * throughput, errors and breaker states, and the ingress cannot scrape every process's admin
 * port (it does not know where they run, and in K8s it should not have to). Each process
 * instead writes one small JSON status, at most every PHX_OPSBEAT_INTERVAL_MS, into one hash:
 *
 *   phx:ops:procs   field "PROC@HOST:PID" -> {proc, instance, host, pid, admin_port,
 *                   started_ms, ts_ms, ready, reason, threads, busy, lag, lag_max, breakers,
 *                   ok_total, err_total, series: {step_ms, last_slot, ok: [...], err: [...]}}
 *
 * Cost: one HSET (plus an EXPIRE, same round trip) every 2 s per process, ~1-2 KiB each; the
 * reader is one HGETALL. Bounded: one field per live process; a field not refreshed for
 * PHX_OPSBEAT_FORGET_MS is deleted by the next reader, and the whole hash expires when no
 * process writes it any more.
 *
 * The numbers come from the process's own metrics registry (metrics.h), so the page and
 * Prometheus can never disagree: ok/err from phx_messages_total (outcome ok vs. the rest),
 * phx_steps_total{outcome="error"} and phx_http_requests_total (5xx = error); lag from
 * phx_kafka_consumer_lag_messages; breakers from phx_breaker_state and phx_llm_breaker_state.
 * The series is the per-interval increase of ok and err over the last PHX_OPSBEAT_SLOTS
 * intervals, on slots aligned to wall-clock time (slot = ts / step), so the reader can add
 * up the replicas of a pool slot by slot and the page has a history the moment it opens. */
#ifndef PHX_OPSBEAT_H
#define PHX_OPSBEAT_H

#include "err.h"
#include "redis.h"

#include <jansson.h>
#include <stdint.h>

#define PHX_OPS_PROCS_KEY       "phx:ops:procs"
#define PHX_OPSBEAT_INTERVAL_MS 2000
#define PHX_OPSBEAT_SLOTS       60     /* two minutes of sparkline */
#define PHX_OPSBEAT_STALE_MS    10000  /* older: the process is shown as gone */
#define PHX_OPSBEAT_FORGET_MS   300000 /* older: the reader deletes the field */

typedef struct phx_opsbeat phx_opsbeat;

/* A heartbeat for process proc whose admin listener is on admin_port. */
phx_opsbeat *phx_opsbeat_new(const char *proc, int admin_port);
void phx_opsbeat_free(phx_opsbeat *b);
/* 1 when the next phx_opsbeat_tick would write (the interval has passed): lets the caller
 * skip computing its readiness on the calls in between. */
int phx_opsbeat_due(const phx_opsbeat *b);
/* Call from the main loop as often as convenient: samples the counters and, when the interval
 * has passed, writes the status with ready/why (why may be NULL when ready). 0, 1 when nothing
 * was due, -1 with err when Redis failed (the next call tries again). */
int phx_opsbeat_tick(phx_opsbeat *b, phx_redis *r, int ready, const char *why, phx_err *err);
/* A clean stop: remove this process's field (a crashed one goes stale instead). */
void phx_opsbeat_gone(phx_opsbeat *b, phx_redis *r);

/* This process's consumer lag, from its phx_kafka_consumer_lag_messages gauges: the total
 * over its partitions and the largest single partition's. */
void phx_opsbeat_lag(double *total, double *max_partition);

/* Reader: every process's last status as a JSON array (sorted by proc, then instance), each
 * with "alive" (refreshed within PHX_OPSBEAT_STALE_MS of now_ms) added; fields older than
 * PHX_OPSBEAT_FORGET_MS (or unparsable) are deleted. NULL with err when Redis failed. */
json_t *phx_opsbeat_read(phx_redis *r, int64_t now_ms, phx_err *err);

#endif
