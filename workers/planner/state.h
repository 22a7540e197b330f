/* state.h -- the planner's state transitions in Redis, each one a Lua compare-and-set.
 *
 * A transition names the state (and attempt) it expects; if Redis holds anything else the
 * script changes nothing and says so. That single rule is what makes duplicate results,
 * late results from a timed-out attempt, redelivered jobs and racing planner replicas
 * harmless: whoever comes second finds the state moved on. */
#ifndef PHX_PLANNER_STATE_H
#define PHX_PLANNER_STATE_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "redis.h"

typedef struct phx_job_new {
    const char *id, *tenant, *principal, *reply_to, *spec, *trace;
    int64_t now_ms, deadline_at;
    json_t *step_ids; /* array of strings */
    /* Steps (a subset of step_ids, may be NULL) moved to dispatched, attempt 1, by the same
     * script when it creates the job: the caller wrote their timers earlier in the same
     * pipeline and sends their tasks when the job was created. */
    json_t *dispatch;
    /* Nothing but all steps succeeding can end the job (no goal, no safety gate): the result
     * that completes it finishes it too (phx_state_step_result_call). */
    int autofinish;
} phx_job_new;

/* A transition prepared to run inside a pipeline (phx_redis_pipeline) next to the reads and
 * timer writes that go with it, so that one network round trip carries them all: fill it with
 * a phx_state_*_call, send c.call, decode the reply with the matching phx_state_*_reply (same
 * meaning as the function's return), then phx_state_call_free. */
typedef struct phx_state_call {
    char job[192], steps[200], out[200];
    char a[16], m[32], now[32];
    const char *argv[12];
    phx_redis_call call;
} phx_state_call;

void phx_state_call_free(phx_state_call *c);
void phx_state_job_create_call(phx_state_call *c, const phx_job_new *j);
int phx_state_job_create_reply(const redisReply *rep, char **state);
/* pending|retry_wait -> dispatched with attempt+1 when the attempt is still `expect_attempt`
 * and the job running. Its reply (phx_state_int_reply): the new attempt (> 0); 0 when another
 * planner already dispatched that same attempt; -1 when the step or job had moved on. */
void phx_state_step_dispatch_call(phx_state_call *c, const char *job, const char *step,
                                  int expect_attempt, int64_t now_ms);
/* dispatch (array of step ids, may be NULL): steps that need only this one, moved to
 * dispatched, attempt 1, when a success applies (the caller wrote their timers first); the
 * reply names those it moved (phx_state_step_result_reply). */
void phx_state_step_result_call(phx_state_call *c, const char *job, const char *step, int attempt,
                                const char *output_json, const char *error_json, int retryable,
                                int max_attempts, int64_t now_ms, const json_t *dispatch);
/* *finished (may be NULL): 1 when this success also finished the job (succeeded, with the
 * reply lease taken, as phx_state_job_finish would): the caller replies. The reply's elements
 * from index 3 on are the steps it dispatched. */
int phx_state_step_result_reply(const redisReply *rep, const char **new_state, int *finished);
void phx_state_job_finish_call(phx_state_call *c, const char *job, const char *status,
                               const char *error_json, int64_t now_ms);
/* An integer reply (dispatch, finish) as the int the function would return. */
int phx_state_int_reply(const redisReply *rep);

/* Create (or adopt a "submitted") job as running. Returns 1 created, 0 it existed (*state
 * gets its state, malloc'd), -1 error. */
int phx_state_job_create(phx_redis *r, const phx_job_new *j, char **state, phx_err *err);
/* Store a job that was rejected before it could run (only if the id is unused). */
int phx_state_job_reject(phx_redis *r, const char *id, const char *tenant, const char *spec,
                         const char *error_json, int64_t now_ms, phx_err *err);

/* Apply an attempt's outcome to a dispatched step whose attempt matches. For an error:
 * retry_wait when retryable and attempts remain, failed otherwise. Returns 1 applied (and
 * *new_state set to a static string), 0 ignored (stale/duplicate), -1 error. */
int phx_state_step_result(phx_redis *r, const char *job, const char *step, int attempt,
                          const char *output_json, const char *error_json, int retryable,
                          int max_attempts, int64_t now_ms, const char **new_state, phx_err *err);

/* Generic compare-and-set of a step's state (pending -> skipped, retry_wait -> pending,
 * pending -> failed with an error). 1 applied, 0 not, -1 error. */
int phx_state_step_cas(phx_redis *r, const char *job, const char *step, const char *from,
                       const char *to, int expect_attempt, const char *error_json, int64_t now_ms,
                       phx_err *err);

/* The reply of a final job is sent by exactly one actor at a time: finishing a job takes the
 * reply lease (reply_sent 'p<ms>') in the same script, and anyone else who finds the reply
 * unconfirmed must claim it: 1 claimed (send it), 0 someone holds a live lease or it was
 * confirmed, -1 error. A lease older than lease_ms is a sender that died: claimable. */
int phx_state_reply_claim(phx_redis *r, const char *job, int64_t now_ms, int64_t lease_ms,
                          phx_err *err);

/* running -> succeeded|failed (with error JSON, may be NULL), taking the reply lease.
 * 1 applied, 0 not, -1 error. */
int phx_state_job_finish(phx_redis *r, const char *job, const char *status, const char *error_json,
                         int64_t now_ms, phx_err *err);

#endif
