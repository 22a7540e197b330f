/* jobstore.h -- the Redis layout of a job, shared by the planner, the ingress and the CLI.
 *
 * Every key of one job carries the hash tag {ID}, so Redis Cluster keeps a job in one slot and
 * the planner's Lua scripts (which touch several of its keys) stay legal:
 *
 *   phx:job:{ID}         hash  state, tenant, principal, spec (job JSON), reply_to, trace,
 *                              created_ms, deadline_at, finished_ms, error (JSON), reply_sent
 *   phx:job:{ID}:steps   hash  STEP -> state; STEP:attempt -> n; STEP:err -> error JSON;
 *                              STEP:t0 / STEP:t1 -> first dispatch / finish (ms)
 *   phx:job:{ID}:out     hash  STEP -> output JSON
 *
 * Job states: submitted (ingress stored it, planner has not seen it) -> running -> succeeded |
 * failed | rejected. Step states: pending -> dispatched -> succeeded | failed | retry_wait
 * (-> pending again) ; pending -> skipped when a step it needs failed.
 *
 * Global keys (not per job, so never touched by the same script as job keys):
 *   phx:delay      zset  "ID\tSTEP\tATTEMPT" scored by when a retry is due
 *   phx:timeouts   zset  "ID\tSTEP\tATTEMPT" scored by when a dispatched attempt times out
 *   phx:deadlines  zset  "ID" scored by the job deadline
 *   phx:idem:TENANT:KEY  string -> job id (idempotency keys, with a TTL)
 *   phx:apikey:SHA256    hash  tenant, principal, roles, created_ms (API keys, stored hashed) */
#ifndef PHX_JOBSTORE_H
#define PHX_JOBSTORE_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "redis.h"

#define PHX_KEY_DELAY     "phx:delay"
#define PHX_KEY_TIMEOUTS  "phx:timeouts"
#define PHX_KEY_DEADLINES "phx:deadlines"
#define PHX_IDEM_TTL_S    86400

void phx_key_job(char *buf, size_t n, const char *id);
void phx_key_steps(char *buf, size_t n, const char *id);
void phx_key_out(char *buf, size_t n, const char *id);
void phx_key_idem(char *buf, size_t n, const char *tenant, const char *key);

/* Store a job as "submitted" (the ingress, before publishing). 1 stored, 0 the id exists
 * already, -1 on error. */
int phx_jobstore_submit(phx_redis *r, const char *id, const char *tenant, const char *spec,
                        int64_t now_ms, phx_err *err);

/* Claim an idempotency key for job_id. Returns the job id that owns the key (malloc'd;
 * equal to job_id when this call claimed it), or NULL with err. */
char *phx_jobstore_idem_claim(phx_redis *r, const char *tenant, const char *key, const char *job_id,
                              phx_err *err);

/* The job's status as JSON: {job_id, tenant, state, created_ms, finished_ms, steps: {id:
 * {state, attempts, error}}, outputs, error}. NULL with err code "not_found" when unknown. */
json_t *phx_jobstore_view(phx_redis *r, const char *id, phx_err *err);

/* Look up an API key (the raw secret): on success fills tenant/principal/roles (malloc'd)
 * and returns 0; -1 with err code "unauthorized" or a Redis error. */
int phx_apikey_lookup(phx_redis *r, const char *secret, char **tenant, char **principal,
                      char **roles, phx_err *err);
/* Store a new API key for tenant/principal/roles; the key itself is only hashed. */
int phx_apikey_store(phx_redis *r, const char *secret, const char *tenant, const char *principal,
                     const char *roles, phx_err *err);

#endif
