/* jobstore.h -- the Redis layout of a job, shared by the planner, the ingress and the CLI.
 *
 * Every key of one job carries the hash tag {ID}, so Redis Cluster keeps a job in one slot and
 * the planner's Lua scripts (which touch several of its keys) stay legal:
 *
 *   phx:job:{ID}         hash  state, tenant, principal, roles (ingress-verified), spec (job
 *                              JSON), reply_to, trace, created_ms, deadline_at, finished_ms,
 *                              error (JSON), reply_sent
 *   phx:job:{ID}:steps   hash  STEP -> state; STEP:attempt -> n; STEP:err -> error JSON;
 *                              STEP:t0 / STEP:t1 -> first dispatch / finish (ms)
 *   phx:job:{ID}:out     hash  STEP -> output JSON
 *
 * Job states: submitted (ingress stored it, planner has not seen it) -> running -> succeeded |
 * failed | rejected; submitted | running -> cancelled (DELETE /v1/jobs/ID). Step states: pending ->
 * dispatched -> succeeded | failed | retry_wait
 * (-> pending again) ; pending -> skipped when a step it needs failed.
 *
 * Global keys (not per job, so never touched by the same script as job keys):
 *   phx:delay      zset  "ID\tSTEP\tATTEMPT" scored by when a retry is due
 *   phx:timeouts   zset  "ID\tSTEP\tATTEMPT" scored by when a dispatched attempt times out
 *   phx:deadlines  zset  "ID" scored by the job deadline
 *   phx:idem:TENANT:KEY  string -> job id (idempotency keys, with a TTL); the ingress's claims
 *                        are "ID FINGERPRINT" (the body's, so a request with another body
 *                        is refused at the claim: producers/ingress/commit.c)
 *   phx:jobs:TENANT      zset  job id scored by created_ms (jobs submitted through the ingress)
 *   phx:principal:TENANT:PRINCIPAL  hash  roles (registered by `phx keys create`)
 *   phx:apikey:SHA256, phx:apikeys  API keys, see apikey.h */
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
/* Safety policy documents (schemas/policy.v1.json), by tenant or name: the safety pool reads
 * them all, the planner reads their `gates`. */
#define PHX_KEY_SAFETY_POLICY "phx:safety:policy:"

void phx_key_job(char *buf, size_t n, const char *id);
void phx_key_steps(char *buf, size_t n, const char *id);
void phx_key_out(char *buf, size_t n, const char *id);
void phx_key_idem(char *buf, size_t n, const char *tenant, const char *key);
void phx_key_principal(char *buf, size_t n, const char *tenant, const char *principal);
void phx_key_tenant_jobs(char *buf, size_t n, const char *tenant);

/* A job the ingress stores as "submitted" before publishing it. fingerprint: what makes two
 * requests the same submission (the ingress hashes the job without its own clock). */
typedef struct phx_job_submit {
    const char *id, *tenant, *principal, *roles, *spec, *fingerprint;
    int64_t now_ms;
} phx_job_submit;

/* phx_jobstore_submit's answers besides -1 (error). */
enum {
    PHX_SUBMIT_TAKEN = 0,    /* the id holds another submission (the listing is left as it was) */
    PHX_SUBMIT_STORED = 1,   /* stored now */
    PHX_SUBMIT_UNSENT = 2,   /* this submission was stored before and still waits to be published */
    PHX_SUBMIT_TAKEN_UP = 3, /* this submission was stored and published before */
};

/* Store a job as "submitted" (with the principal's roles and fingerprint) and index it under
 * its tenant, in one round trip. PHX_SUBMIT_* or -1 on error. */
int phx_jobstore_submit(phx_redis *r, const phx_job_submit *s, phx_err *err);

/* phx_jobstore_submit as two commands of a batch (phx_redis_batch; the ingress's group
 * commit): fill c (its calls point into its own buffers and s), send c->calls, then hand
 * their two replies (not consumed) to phx_jobstore_submit_finish, which makes the rare
 * follow-up on r and answers as phx_jobstore_submit does. */
typedef struct phx_job_submit_call {
    char key[256], list[300], now[32];
    const char *argv[7], *zadd[5];
    phx_redis_call calls[2];
} phx_job_submit_call;
void phx_jobstore_submit_call(const phx_job_submit *s, phx_job_submit_call *c);
int phx_jobstore_submit_finish(phx_redis *r, const phx_job_submit *s, phx_job_submit_call *c,
                               redisReply **rep, phx_err *err);

/* Roles to check job id against (see jobstore.c): 1 with *roles (malloc'd; "" = none), 0 when
 * the job names no principal (an operator with write access to phx.jobs), -1 error. */
int phx_jobstore_roles(phx_redis *r, const char *id, const char *tenant, const char *principal,
                       char **roles, phx_err *err);

/* Cancel job id of tenant (by: who, for the error text). 1 cancelled (the planner is woken
 * through phx:deadlines), 0 no such job for this tenant, 2 already final (*state = its state,
 * malloc'd, when state is not NULL), -1 error. */
int phx_jobstore_cancel(phx_redis *r, const char *id, const char *tenant, const char *by,
                        int64_t now_ms, char **state, phx_err *err);

/* Claim an idempotency key for job_id. Returns the job id that owns the key (malloc'd, without
 * the fingerprint an ingress claim carries;
 * equal to job_id when this call claimed it), or NULL with err. */
char *phx_jobstore_idem_claim(phx_redis *r, const char *tenant, const char *key, const char *job_id,
                              phx_err *err);

/* The job's status as JSON: {job_id, tenant, state, created_ms, finished_ms, steps: {id:
 * {state, attempts, error}}, outputs, error}. NULL with err code "not_found" when unknown. */
json_t *phx_jobstore_view(phx_redis *r, const char *id, phx_err *err);
/* The same view from hashes already read (HGETALL of the job, steps and outputs keys, e.g. in
 * one pipeline with the write that finished the job). None of them is consumed. */
json_t *phx_jobstore_view_build(const char *id, json_t *job, json_t *steps, json_t *out);
/* An HGETALL reply as a JSON object of strings. */
json_t *phx_jobstore_hash_from(const redisReply *rep);

#endif
