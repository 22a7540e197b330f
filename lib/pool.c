/* pool.c -- task -> step function -> result (see pool.h). */
#include "pool.h"
#include "bulkhead.h"
#include "rbac.h"
#include "redact.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct phx_pool_thread {
    phx_pool_def *def;
    void *state;
    char worker[128]; /* host:pid, reported in results for tracing a step to a replica */
} phx_pool_thread;

static const char *phx_pool_schema_for(const char *topic)
{
    (void)topic;
    return "task.v1";
}

json_t *phx_pool_result(const json_t *task, json_t *output, const phx_err *err, const char *worker,
                        long duration_ms)
{
    json_t *r = json_object();
    json_object_set_new(r, "schema", json_string("result.v1"));
    json_object_set(r, "job_id", json_object_get(task, "job_id"));
    json_object_set(r, "step_id", json_object_get(task, "step_id"));
    json_object_set(r, "attempt", json_object_get(task, "attempt"));
    json_object_set(r, "kind", json_object_get(task, "kind"));
    if (output) {
        json_object_set_new(r, "status", json_string("ok"));
        json_object_set_new(r, "output", output);
    } else {
        char msg[sizeof(err->message)];
        snprintf(msg, sizeof(msg), "%s", err->message);
        phx_utf8_scrub(msg);
        json_object_set_new(r, "status", json_string("error"));
        json_t *e = json_pack("{s:s, s:s, s:b}", "code", err->code[0] ? err->code : "error",
                              "message", msg, "retryable", err->retryable);
        if (err->cause[0]) {
            char cause[sizeof(err->cause)];
            snprintf(cause, sizeof(cause), "%s", err->cause);
            phx_utf8_scrub(cause);
            json_object_set_new(e, "cause", json_string(cause));
        }
        if (err->retryable && err->retry_after_ms > 0)
            json_object_set_new(e, "retry_after_ms", json_integer(err->retry_after_ms));
        json_object_set_new(r, "error", e);
    }
    /* A secret a tool or provider echoed (registered values, API keys, JWTs) stops here,
     * before it can reach Redis, replies and events. */
    phx_redact_json(json_object_get(r, "output"));
    phx_redact_json(json_object_get(r, "error"));
    json_object_set_new(r, "worker", json_string(worker));
    json_object_set_new(r, "duration_ms", json_integer(duration_ms));
    return r;
}

static const phx_step_kind *phx_pool_find(const phx_pool_def *def, const char *kind)
{
    for (int i = 0; i < def->nkinds; i++)
        if (strcmp(def->kinds[i].kind, kind) == 0)
            return &def->kinds[i];
    return NULL;
}

/* The task a step function of this thread is running (see pool.h). */
static __thread const json_t *phx_pool_task_cur;

const json_t *phx_pool_current_task(void)
{
    return phx_pool_task_cur;
}

/* Clock skew allowed between the planner that stamped dispatched_ms and this worker. */
#define PHX_POOL_EXPIRED_GRACE_MS 1000

/* Has the planner given up on this attempt already (dispatched_ms + timeout_ms is past)? It
 * then counts the attempt a step_timeout and sends the next one, or fails the step, and it
 * ignores this attempt's result as stale. Running it anyway is how a backlog becomes a retry
 * storm: every queued attempt past its timeout costs a whole run and delays the fresh attempts
 * queued behind it, which then time out in turn. A task without both fields (sent by
 * something else than the planner) is never expired. */
static int phx_pool_attempt_expired(const json_t *task)
{
    json_t *d = json_object_get(task, "dispatched_ms"), *t = json_object_get(task, "timeout_ms");
    if (!json_is_integer(d) || !json_is_integer(t) || json_integer_value(t) <= 0)
        return 0;
    return phx_now_ms() > json_integer_value(d) + json_integer_value(t) + PHX_POOL_EXPIRED_GRACE_MS;
}

static phx_handle_rc phx_pool_handle(void *tctx, const phx_inmsg *in, phx_outbox *out, phx_err *err)
{
    phx_pool_thread *t = tctx;
    const json_t *task = in->body;
    const char *kind = json_string_value(json_object_get(task, "kind"));
    const char *job = json_string_value(json_object_get(task, "job_id"));
    const char *tenant = json_string_value(json_object_get(task, "tenant"));
    json_t *dl = json_object_get(task, "deadline_at_ms");
    phx_err serr;
    phx_err_clear(&serr);
    json_t *output = NULL;
    int64_t t0 = phx_mono_ms();

    if (phx_pool_attempt_expired(task)) {
        char labels[160];
        snprintf(labels, sizeof(labels), "kind=\"%s\"",
                 phx_pool_find(t->def, kind) ? kind : "unknown");
        phx_metric_add(phx_counter("phx_tasks_expired_total",
                                   "Tasks not run: the planner had timed their attempt out "
                                   "before a thread took them (a backlog).",
                                   labels),
                       1);
        phx_logj(PHX_LOG_INFO, job, in->traceparent,
                 "step %s (%s) attempt %lld not run: it timed out before it was taken",
                 json_string_value(json_object_get(task, "step_id")), kind,
                 (long long)json_integer_value(json_object_get(task, "attempt")));
        return PHX_HANDLED;
    }

    const phx_step_kind *k = phx_pool_find(t->def, kind);
    if (!k) {
        /* Not poison: the planner must learn the step failed, or the job would hang. */
        phx_err_set(&serr, "unknown_kind", 0, "pool %s does not run step kind %s", t->def->pool,
                    kind);
    } else if (!phx_rbac_kind_allowed(phx_rbac_scopes_from_json(json_object_get(task, "scopes")),
                                      kind)) {
        /* The planner checked the principal already; this catches a task that reached the
         * topic some other way (or a planner bug) before it acts on anyone's behalf. A task
         * without scopes may run only kinds that need none. */
        phx_err_set(&serr, "forbidden", 0,
                    "step kind %s needs scope %s, which the task does not carry", kind,
                    phx_rbac_scope_name(phx_rbac_kind_scope(kind)));
    } else if (json_is_integer(dl) && json_integer_value(dl) > 0 &&
               json_integer_value(dl) < phx_now_ms()) {
        phx_err_set(&serr, "deadline_exceeded", 0, "the job's deadline passed before the step ran");
    } else {
        phx_pool_task_cur = task;
        output = k->run(t->def->app, t->state, json_object_get(task, "input"), &serr);
        phx_pool_task_cur = NULL;
        /* A full bulkhead (Redis, a provider, an outbound tool) is not the step's failure: the
         * message goes back to the loop, which holds it with its partitions paused and runs it
         * again once a slot is free. Failing the step would spend one of its attempts (and
         * the planner's retry delay) on our own congestion. */
        if (!output && phx_bulkhead_refused(&serr)) {
            *err = serr;
            return PHX_RETRY_LATER;
        }
        if (!output && !serr.code[0])
            phx_err_set(&serr, "internal", 1, "step %s failed without a reason", kind);
    }
    long ms = (long)(phx_mono_ms() - t0);
    char labels[160];
    snprintf(labels, sizeof(labels), "kind=\"%s\",outcome=\"%s\"", k ? kind : "unknown",
             output ? "ok" : "error");
    phx_metric_add(
        phx_counter("phx_steps_total", "Steps run by this pool, by kind and outcome.", labels), 1);
    snprintf(labels, sizeof(labels), "kind=\"%s\"", k ? kind : "unknown");
    phx_metric_observe(
        phx_histogram("phx_step_duration_seconds", "Time spent running a step.", labels, NULL, 0),
        (double)ms / 1000.0);
    if (!output)
        phx_logj(PHX_LOG_INFO, job, in->traceparent, "step %s (%s) failed: %s: %s",
                 json_string_value(json_object_get(task, "step_id")), kind, serr.code,
                 serr.message);
    json_t *res = phx_pool_result(task, output, &serr, t->worker, ms);
    int attempt = (int)json_integer_value(json_object_get(task, "attempt"));
    phx_outbox_add(out, PHX_TOPIC_RESULTS, job, res, tenant, in->traceparent, attempt);
    return PHX_HANDLED;
}

static void *phx_pool_thread_init(phx_worker *w, phx_err *err)
{
    phx_pool_def *def = phx_worker_app(w);
    phx_pool_thread *t = phx_xcalloc(1, sizeof(*t));
    t->def = def;
    char host[64] = "";
    gethostname(host, sizeof(host) - 1);
    snprintf(t->worker, sizeof(t->worker), "%s/%s:%d", def->pool, host, (int)getpid());
    if (def->thread_init && !(t->state = def->thread_init(def->app, err))) {
        free(t);
        return NULL;
    }
    return t;
}

void *phx_pool_thread_state(void *tctx)
{
    return ((phx_pool_thread *)tctx)->state;
}

static void phx_pool_thread_free(void *tctx)
{
    phx_pool_thread *t = tctx;
    if (t->def->thread_free)
        t->def->thread_free(t->state);
    free(t);
}

void phx_pool_ops(phx_worker_ops *ops, phx_pool_def *def)
{
    snprintf(def->topic, sizeof(def->topic), "%s%s", PHX_TASK_TOPIC_PREFIX, def->pool);
    snprintf(def->group, sizeof(def->group), "phx-%s", def->pool);
    def->topics[0] = def->topic;
    memset(ops, 0, sizeof(*ops));
    ops->proc = def->proc;
    ops->group = def->group;
    ops->topics = def->topics;
    ops->ntopics = 1;
    ops->schema_for = phx_pool_schema_for;
    ops->thread_init = phx_pool_thread_init;
    ops->thread_free = phx_pool_thread_free;
    ops->handle = phx_pool_handle;
    ops->app = def;
}
