/* planner.c -- job intake, result application, DAG advancement and timers (see planner.h).
 *
 * The centre is phx_planner_advance(): given a job id it reads the job's state from Redis and
 * does whatever is due -- skip steps whose dependencies failed, dispatch steps whose
 * dependencies succeeded, finish the job and reply when every step is terminal. Every event
 * (a new job, a result, a fired timer, a redelivered message) ends in advance(), and advance()
 * only acts through compare-and-set transitions, so running it twice, or in two replicas at
 * once, is harmless. That is also the repair path after a crash: whatever was half done is
 * finished by the next advance() of that job. */
#include "planner.h"
#include "dag.h"
#include "expand.h"
#include "gates.h"
#include "retry.h"
#include "jobstore.h"
#include "log.h"
#include "metrics.h"
#include "rbac.h"
#include "state.h"
#include "util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* How many jobs' steps a planner thread remembers (phx_planner_cache_put): well above the jobs
 * one thread has in flight (phx-bench's 64 in flight over 8 threads is 8 each); a finished
 * job's entry goes at once, so an idle planner holds none. */
#define PHX_PLANNER_CACHE 128

typedef struct phx_planner {
    phx_worker *w;
    const phx_planner_cfg *cfg;
    phx_redis *r;
    /* The steps (as stored: they never change for a job without a goal) of the autofinish
     * jobs this thread saw last, by job id, oldest evicted first (ring). With them a result
     * knows its step's dependants before it reads the job, and dispatches them in the same
     * round trip as it applies the outcome. A miss costs that round trip, nothing else. */
    json_t *specs;
    char *ring[PHX_PLANNER_CACHE];
    int ring_at;
} phx_planner;

/* Everything advance() needs to know about one job, loaded from Redis. */
typedef struct phx_pjob {
    const char *id;
    json_t *hash; /* phx:job:{ID} fields */
    json_t *spec; /* the job as submitted */
    const char *state, *tenant, *trace;
    /* Step states and outputs read in the same round trip as the write that preceded them
     * (NULL: not read yet). The first pass of advance() takes them instead of reading again. */
    json_t *steps, *outputs;
} phx_pjob;

static const char *phx_planner_schema_for(const char *topic)
{
    if (strcmp(topic, PHX_TOPIC_JOBS) == 0)
        return "job.v1";
    if (strcmp(topic, PHX_TOPIC_RESULTS) == 0)
        return "result.v1";
    return NULL;
}

static const char *phx_jstr(const json_t *o, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : def;
}

static void phx_planner_count(const char *name, const char *help, const char *labels)
{
    phx_metric_add(phx_counter(name, help, labels), 1);
}

/* Jobs by final state and tenant; tenants come from data, so at most 50 keep their name. */
static void phx_planner_count_job(const char *state, const char *tenant)
{
    char t[160], labels[220];
    phx_metrics_bounded_value("tenant", tenant && *tenant ? tenant : "unknown", 50, t, sizeof(t));
    snprintf(labels, sizeof(labels), "state=\"%s\",tenant=\"%s\"", state, t);
    phx_planner_count("phx_jobs_finished_total", "Jobs that reached a final state, by tenant.",
                      labels);
}

static void phx_pjob_free(phx_pjob *j)
{
    json_decref(j->hash);
    json_decref(j->spec);
    json_decref(j->steps);
    json_decref(j->outputs);
    memset(j, 0, sizeof(*j));
}

/* Job id from its hash (an HGETALL reply). 1 loaded, 0 unknown job. */
static int phx_pjob_from(phx_pjob *j, const char *id, const redisReply *rep)
{
    memset(j, 0, sizeof(*j));
    j->id = id;
    j->hash = phx_jobstore_hash_from(rep);
    if (json_object_size(j->hash) == 0)
        return 0;
    j->state = phx_jstr(j->hash, "state", "");
    j->tenant = phx_jstr(j->hash, "tenant", "default");
    j->trace = phx_jstr(j->hash, "trace", NULL);
    j->spec = json_loads(phx_jstr(j->hash, "spec", "{}"), 0, NULL);
    if (!j->spec)
        j->spec = json_object();
    return 1;
}

/* Load job id. 1 loaded, 0 unknown job, -1 error. */
static int phx_pjob_load(phx_planner *p, const char *id, phx_pjob *j, phx_err *err)
{
    char key[192];
    memset(j, 0, sizeof(*j));
    phx_key_job(key, sizeof(key), id);
    redisReply *rep = phx_redis_cmd(p->r, err, "HGETALL %s", key);
    if (!rep)
        return -1;
    int rc = phx_pjob_from(j, id, rep);
    freeReplyObject(rep);
    return rc;
}

/* HGETALL of job id's steps and outputs hashes, as pipeline calls (argv holds 4 entries). */
static void phx_planner_read_calls(phx_redis_call *calls, const char **argv, char *ks, char *ko,
                                   const char *id)
{
    phx_key_steps(ks, 200, id);
    phx_key_out(ko, 200, id);
    argv[0] = "HGETALL", argv[1] = ks, argv[2] = "HGETALL", argv[3] = ko;
    calls[0] = (phx_redis_call){NULL, 0, 2, argv, NULL};
    calls[1] = (phx_redis_call){NULL, 0, 2, argv + 2, NULL};
}

static const json_t *phx_pjob_step(const phx_pjob *j, const char *step_id)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(j->spec, "steps"), i, s)
    {
        if (strcmp(phx_jstr(s, "id", ""), step_id) == 0)
            return s;
    }
    return NULL;
}

static int phx_planner_max_attempts(const phx_planner *p, const json_t *step)
{
    json_t *m = json_object_get(json_object_get(step, "retry"), "max_attempts");
    return json_is_integer(m) ? (int)json_integer_value(m) : (int)p->cfg->retry_max_attempts;
}

/* The step's retry delay: its backoff_ms (or the default) * 2^(attempt-1), +-25%, <= 1 min;
 * never sooner than the error's retry_after_ms (a rate limit that said when it has room),
 * capped at 1 min too so a wrong hint cannot park a step for long. */
static int64_t phx_planner_backoff(const phx_planner *p, const json_t *step, int attempt,
                                   const json_t *error)
{
    json_t *b = json_object_get(json_object_get(step, "retry"), "backoff_ms");
    phx_retry_policy pol = {
        0, json_is_integer(b) ? json_integer_value(b) : p->cfg->retry_backoff_ms, 60000, 25};
    int64_t d = phx_retry_delay(&pol, attempt);
    json_t *ra = json_object_get(error, "retry_after_ms");
    if (json_is_integer(ra) && json_integer_value(ra) > d)
        d = json_integer_value(ra) < 60000 ? json_integer_value(ra) : 60000;
    return d;
}

static void phx_planner_event(phx_outbox *out, const phx_pjob *j, const char *type,
                              const char *step, int attempt, json_t *detail)
{
    char labels[64]; /* type is one of event.v1's enum: bounded */
    snprintf(labels, sizeof(labels), "type=\"%s\"", type);
    phx_planner_count("phx_planner_events_total",
                      "Lifecycle events the planner emitted (job.accepted, step.dispatched, "
                      "step.retry_scheduled, step.timed_out, ...), by type.",
                      labels);
    phx_outbox_add(out, PHX_TOPIC_EVENTS, j->id,
                   phx_event_new(j->id, j->tenant, type, step, attempt, detail), j->tenant,
                   j->trace, attempt);
}

static int phx_planner_zadd(phx_planner *p, const char *key, int64_t at, const char *member,
                            phx_err *err)
{
    redisReply *rep = phx_redis_cmd(p->r, err, "ZADD %s %lld %s", key, (long long)at, member);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    return 0;
}

/* After hook: the arg is "KEY\x1fMEMBER"; remove the timer entry once our outputs are safe. */
static void phx_planner_after_zrem(void *tctx, const char *arg)
{
    phx_planner *p = tctx;
    const char *sep = strchr(arg, '\x1f');
    if (!sep)
        return;
    phx_err err;
    redisReply *rep = phx_redis_cmd(p->r, &err, "ZREM %b %s", arg, (size_t)(sep - arg), sep + 1);
    if (rep)
        freeReplyObject(rep);
    /* On failure the entry fires again later and finds nothing to do: harmless. */
}

static void phx_planner_zrem_after(phx_outbox *out, const char *key, const char *member)
{
    char arg[512];
    snprintf(arg, sizeof(arg), "%s\x1f%s", key, member);
    phx_outbox_after(out, phx_planner_after_zrem, arg);
}

/* After hook: the reply of job arg was confirmed; mark it and let the keys expire. */
static void phx_planner_after_replied(void *tctx, const char *id)
{
    phx_planner *p = tctx;
    char kj[192], ks[200], ko[200];
    phx_key_job(kj, sizeof(kj), id);
    phx_key_steps(ks, sizeof(ks), id);
    phx_key_out(ko, sizeof(ko), id);
    phx_err err;
    long ttl = p->cfg->job_ttl_s;
    /* The mark matters: without it the reply lease expires and the reply is sent again. So
     * it is retried through a short outage (an open breaker fails fast; this waits it out),
     * for about as long as a breaker stays open, before giving up to at-least-once. */
    static const phx_retry_policy mark = {6, 100, 1600, 25};
    /* The mark, the expiries and the deadline's removal are idempotent: one round trip,
     * sent again whole on failure. */
    char t[24];
    snprintf(t, sizeof(t), "%ld", ttl);
    const char *hset[] = {"HSET", kj, "reply_sent", "1"}, *ej[] = {"EXPIRE", kj, t},
               *es[] = {"EXPIRE", ks, t}, *eo[] = {"EXPIRE", ko, t},
               *zrem[] = {"ZREM", PHX_KEY_DEADLINES, id};
    const phx_redis_call calls[] = {{NULL, 0, 4, hset, NULL},
                                    {NULL, 0, 3, ej, NULL},
                                    {NULL, 0, 3, es, NULL},
                                    {NULL, 0, 3, eo, NULL},
                                    {NULL, 0, 3, zrem, NULL}};
    redisReply *rep[5];
    for (int attempt = 1; phx_redis_pipeline(p->r, calls, 5, rep, &err) < 0; attempt++) {
        if (!phx_retry_should(&mark, &err, attempt)) {
            phx_logj(PHX_LOG_WARN, id, NULL,
                     "reply confirmed but not marked (%s): it may be sent again", err.message);
            return;
        }
        phx_sleep_ms(phx_retry_delay(&mark, attempt));
    }
    for (int i = 0; i < 5; i++)
        freeReplyObject(rep[i]);
}

/* Queue the reply (and its event) for a finished job, built from what Redis holds now: view
 * when the caller read it already (it is consumed), else read here. */
static int phx_planner_reply_view(phx_planner *p, const phx_pjob *j, json_t *view, phx_outbox *out,
                                  phx_err *err)
{
    if (!view && !(view = phx_jobstore_view(p->r, j->id, err)))
        return -1;
    const char *state = phx_jstr(view, "state", "failed");
    json_t *reply = json_object();
    json_object_set_new(reply, "schema", json_string("reply.v1"));
    json_object_update(reply, view);
    json_object_del(reply, "state");
    json_object_set_new(reply, "status", json_string(state));
    json_t *c = json_object_get(view, "created_ms"), *f = json_object_get(view, "finished_ms");
    if (json_is_integer(c) && json_is_integer(f))
        json_object_set_new(reply, "duration_ms",
                            json_integer(json_integer_value(f) - json_integer_value(c)));
    const char *reply_to = phx_jstr(j->hash, "reply_to", PHX_TOPIC_REPLIES);
    phx_outbox_add(out, reply_to, j->id, reply, j->tenant, j->trace, 0);
    char type[32];
    snprintf(type, sizeof(type), "job.%s", state);
    phx_planner_event(out, j, type, NULL, 0, NULL);
    phx_outbox_after(out, phx_planner_after_replied, j->id);
    phx_planner_count_job(state, j->tenant);
    json_object_del(p->specs, j->id); /* over: nothing left to dispatch */
    json_decref(view);
    return 0;
}

static int phx_planner_reply(phx_planner *p, const phx_pjob *j, phx_outbox *out, phx_err *err)
{
    return phx_planner_reply_view(p, j, NULL, out, err);
}

static json_t *phx_planner_outputs_from(const redisReply *rep)
{
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        json_t *v =
            json_loadb(rep->element[i + 1]->str, rep->element[i + 1]->len, JSON_DECODE_ANY, NULL);
        if (v)
            json_object_set_new(o, rep->element[i]->str, v);
    }
    return o;
}

/* HGETALL key, decoded by from. */
static json_t *phx_planner_hgetall(phx_planner *p, const char *key,
                                   json_t *(*from)(const redisReply *), phx_err *err)
{
    redisReply *rep = phx_redis_cmd(p->r, err, "HGETALL %s", key);
    if (!rep)
        return NULL;
    json_t *o = from(rep);
    freeReplyObject(rep);
    return o;
}

static json_t *phx_planner_outputs(phx_planner *p, const char *id, phx_err *err)
{
    char key[200];
    phx_key_out(key, sizeof(key), id);
    return phx_planner_hgetall(p, key, phx_planner_outputs_from, err);
}

static json_t *phx_planner_steps(phx_planner *p, const char *id, phx_err *err)
{
    char key[200];
    phx_key_steps(key, sizeof(key), id);
    return phx_planner_hgetall(p, key, phx_jobstore_hash_from, err);
}

/* Keep the steps and outputs a pipeline read (replies of phx_planner_read_calls) for the
 * first pass of advance(). */
static void phx_pjob_keep(phx_pjob *j, redisReply *steps, redisReply *outputs)
{
    json_decref(j->steps);
    json_decref(j->outputs);
    j->steps = phx_jobstore_hash_from(steps);
    j->outputs = phx_planner_outputs_from(outputs);
}

static char *phx_planner_errjson(const char *code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static char *phx_planner_errjson(const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    phx_utf8_scrub(msg);
    json_t *e = json_pack("{s:s, s:s}", "code", code, "message", msg);
    char *s = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    return s;
}

/* Queue the task of attempt a of step (now dispatched; input is consumed) and its event. */
static void phx_planner_task(const phx_pjob *j, const json_t *step, json_t *input, int a,
                             int64_t timeout, int64_t now, phx_outbox *out)
{
    const char *sid = phx_jstr(step, "id", ""), *kind = phx_jstr(step, "kind", "");
    json_t *task = json_object();
    json_object_set_new(task, "schema", json_string("task.v1"));
    json_object_set_new(task, "job_id", json_string(j->id));
    json_object_set_new(task, "step_id", json_string(sid));
    json_object_set_new(task, "attempt", json_integer(a));
    json_object_set_new(task, "kind", json_string(kind));
    json_object_set_new(task, "input", input);
    json_object_set_new(task, "tenant", json_string(j->tenant));
    json_object_set_new(task, "principal", json_string(phx_jstr(j->hash, "principal", "")));
    if (json_is_array(json_object_get(j->spec, "scopes")))
        json_object_set(task, "scopes", json_object_get(j->spec, "scopes"));
    json_object_set_new(task, "timeout_ms", json_integer(timeout));
    json_object_set_new(task, "deadline_at_ms",
                        json_integer(strtoll(phx_jstr(j->hash, "deadline_at", "0"), NULL, 10)));
    json_object_set_new(task, "dispatched_ms", json_integer(now));
    char topic[64];
    snprintf(topic, sizeof(topic), "%s%s", PHX_TASK_TOPIC_PREFIX, phx_kind_pool(kind));
    phx_outbox_add(out, topic, j->id, task, j->tenant, j->trace, a);
    phx_planner_event(out, j, "step.dispatched", sid, a, json_string(kind));
}

/* The timeout of step (its own, or the default). */
static int64_t phx_planner_timeout(const phx_planner *p, const json_t *step)
{
    json_t *t = json_object_get(step, "timeout_ms");
    return json_is_integer(t) ? json_integer_value(t) : p->cfg->step_timeout_ms;
}

/* Steps ready to be dispatched as attempt 1 by the script that changes their job's state
 * anyway: the root steps (no needs) of a job being created (job_create), or the steps that
 * need only the step whose success is being applied (step_result). Their inputs are rendered
 * before the script runs, from the outputs they can reference -- none for a root, that step's
 * output for a dependant -- exactly as advance() would render them after it, and their
 * timers are written earlier in the same pipeline, so those tasks cost no round trip of their
 * own. Past PHX_PLANNER_READY_MAX (the fixed buffers below) advance() dispatches the rest, as
 * before. */
#define PHX_PLANNER_READY_MAX 8
typedef struct phx_ready {
    json_t *ids, *steps, *inputs;    /* arrays, same order */
    int autofinish;                  /* (roots) see phx_job_new */
    int sent[PHX_PLANNER_READY_MAX]; /* the script dispatched it */
    char at[PHX_PLANNER_READY_MAX][32], member[PHX_PLANNER_READY_MAX][256];
    const char *targv[3 + 2 * PHX_PLANNER_READY_MAX]; /* ZADD timeouts NX (at member)... */
    int nt;                                           /* 0: no step, no timer command */
} phx_ready;

static void phx_ready_init(phx_ready *r)
{
    memset(r, 0, sizeof(*r));
    r->ids = json_array(), r->steps = json_array(), r->inputs = json_array();
    r->targv[0] = "ZADD", r->targv[1] = PHX_KEY_TIMEOUTS, r->targv[2] = "NX";
}

static void phx_ready_free(phx_ready *r)
{
    json_decref(r->ids);
    json_decref(r->steps);
    json_decref(r->inputs);
    r->ids = r->steps = r->inputs = NULL;
}

/* Render step s of job id (all: the job's steps) from outputs and add it; 0 when it cannot be
 * taken (full, or its input does not render: advance() fails it, with the reason). */
static int phx_ready_add(phx_ready *r, const phx_planner *p, const char *id, const json_t *all,
                         const json_t *s, const json_t *outputs, int64_t now)
{
    size_t k = json_array_size(r->ids);
    if (k >= PHX_PLANNER_READY_MAX)
        return 0;
    const char *sid = phx_jstr(s, "id", "");
    phx_err rerr;
    json_t *input = phx_dag_render_step(s, outputs, &rerr);
    if (!input)
        return 0;
    phx_gates_redact_input(all, sid, input, outputs);
    json_array_append(r->ids, json_object_get(s, "id"));
    json_array_append(r->steps, (json_t *)s);
    json_array_append_new(r->inputs, input);
    snprintf(r->at[k], sizeof(r->at[k]), "%lld",
             (long long)now + (long long)phx_planner_timeout(p, s));
    snprintf(r->member[k], sizeof(r->member[k]), "%s\t%s\t1", id, sid);
    if (r->nt == 0)
        r->nt = 3;
    r->targv[r->nt++] = r->at[k];
    r->targv[r->nt++] = r->member[k];
    return 1;
}

static void phx_planner_roots(const phx_planner *p, const char *id, const json_t *body, int64_t now,
                              phx_ready *r)
{
    const json_t *steps = json_object_get(body, "steps");
    json_t *none = json_object(), *s;
    size_t i;
    phx_ready_init(r);
    r->autofinish = !json_object_get(body, "goal");
    json_array_foreach(steps, i, s)
    {
        if (phx_gates_of(s))
            r->autofinish = 0;
        if (json_array_size(json_object_get(s, "needs")) == 0)
            phx_ready_add(r, p, id, steps, s, none, now);
    }
    json_decref(none);
}

/* Does a template under v reference any step but sid? (phx_dag_ref_steps callback) */
static void phx_planner_ref_other(const char *step_id, void *arg)
{
    const char **sid = arg;
    if (*sid && strcmp(step_id, *sid) != 0)
        *sid = NULL;
}

/* The steps that need only sid, of the job whose steps the cache holds (none on a miss),
 * rendered with sid's output. */
static void phx_planner_dependants(const phx_planner *p, const char *id, const json_t *steps,
                                   const char *sid, const json_t *output, int64_t now, phx_ready *r)
{
    phx_ready_init(r);
    if (!steps || !output)
        return;
    json_t *outputs = json_object(), *s;
    json_object_set(outputs, sid, (json_t *)output);
    size_t i;
    json_array_foreach(steps, i, s)
    {
        const json_t *needs = json_object_get(s, "needs");
        if (json_array_size(needs) != 1 || strcmp(phx_jstr(s, "id", ""), sid) == 0 ||
            !json_is_string(json_array_get(needs, 0)) ||
            strcmp(json_string_value(json_array_get(needs, 0)), sid) != 0)
            continue;
        const char *only = sid;
        phx_dag_ref_steps(json_object_get(s, "input"), phx_planner_ref_other, &only);
        if (only)
            phx_ready_add(r, p, id, steps, s, outputs, now);
    }
    json_decref(outputs);
}

/* After the script: send the tasks of the steps it dispatched (sent), and remove each timer
 * written for an attempt 1 nobody runs (NX left a live attempt 1's own timer as it was; a
 * running job's ready step still pending at attempt 0 is about to be dispatched by advance()
 * with that very timer). */
static void phx_planner_ready_done(const phx_planner *p, const phx_pjob *j, phx_ready *r,
                                   int64_t now, phx_outbox *out)
{
    const json_t *sh = j->steps;
    int running = j->state && strcmp(j->state, "running") == 0;
    for (size_t k = 0; k < json_array_size(r->ids); k++) {
        const json_t *step = json_array_get(r->steps, k);
        if (r->sent[k]) {
            json_t *input = json_array_get(r->inputs, k);
            phx_planner_task(j, step, json_incref(input), 1, phx_planner_timeout(p, step), now,
                             out);
            continue;
        }
        const char *sid = phx_jstr(step, "id", "");
        char af[160];
        snprintf(af, sizeof(af), "%s:attempt", sid);
        long a = strtol(phx_jstr(sh, af, "0"), NULL, 10);
        int live = a == 1 && strcmp(phx_jstr(sh, sid, ""), "dispatched") == 0;
        int next = running && a == 0 && strcmp(phx_jstr(sh, sid, ""), "pending") == 0;
        size_t i;
        json_t *need;
        json_array_foreach(json_object_get(step, "needs"), i, need)
        {
            if (strcmp(phx_jstr(sh, json_string_value(need), ""), "succeeded") != 0)
                next = 0; /* not ready: advance() will not dispatch it now */
        }
        if (!live && !next)
            phx_planner_zrem_after(out, PHX_KEY_TIMEOUTS, r->member[k]);
    }
}

/* Remember running job j's steps (cache above) unless it has a goal (its steps change) or a
 * safety gate (a gate's verdict decides what runs next). */
static void phx_planner_cache_put(phx_planner *p, const phx_pjob *j)
{
    const char *id = j->id;
    const json_t *spec = j->spec;
    if (!j->state || strcmp(j->state, "running") != 0 || json_object_get(spec, "goal") ||
        json_object_get(p->specs, id))
        return;
    json_t *steps = json_object_get(spec, "steps"), *s;
    size_t i;
    json_array_foreach(steps, i, s)
    {
        if (phx_gates_of(s))
            return;
    }
    char **slot = &p->ring[p->ring_at];
    p->ring_at = (p->ring_at + 1) % PHX_PLANNER_CACHE;
    if (*slot)
        json_object_del(p->specs, *slot);
    free(*slot);
    *slot = phx_xstrdup(id);
    json_object_set(p->specs, id, steps);
}

/* Dispatch one ready step: render its input, move it to dispatched, queue the task.
 * 1 dispatched, 2 failed instead (its input could not be rendered), 0 no longer pending. */
static int phx_planner_dispatch(phx_planner *p, const phx_pjob *j, const json_t *step, int attempt,
                                json_t *outputs, phx_outbox *out, phx_err *err)
{
    const char *sid = phx_jstr(step, "id", "");
    int64_t now = phx_now_ms();
    phx_err rerr;
    phx_err_clear(&rerr);
    /* A plan under review (a plan gate's, or a client's safety.review_plan) keeps its
     * templates: they are data, not this job's (lib/dag.h). */
    json_t *input = phx_dag_render_step(step, outputs, &rerr);
    if (input)
        phx_gates_redact_input(json_object_get(j->spec, "steps"), sid, input, outputs);
    if (!input) {
        char *e = phx_planner_errjson(rerr.code, "%s", rerr.message);
        int rc = phx_state_step_cas(p->r, j->id, sid, "pending", "failed", -1, e, now, err);
        free(e);
        if (rc > 0)
            phx_planner_event(out, j, "step.failed", sid, attempt, json_string(rerr.message));
        return rc < 0 ? -1 : rc > 0 ? 2 : 0;
    }
    int64_t timeout = phx_planner_timeout(p, step);
    char member[256];
    snprintf(member, sizeof(member), "%s\t%s\t%d", j->id, sid, attempt + 1);
    /* The timer goes in first (Redis runs a pipeline in order): if we die between here and
     * the task, it fires and repairs. One round trip for both. */
    char at[32];
    snprintf(at, sizeof(at), "%lld", (long long)now + (long long)timeout);
    const char *zadd[] = {"ZADD", PHX_KEY_TIMEOUTS, at, member};
    phx_state_call dc;
    phx_state_step_dispatch_call(&dc, j->id, sid, attempt, now);
    phx_redis_call calls[] = {{NULL, 0, 4, zadd, NULL}, dc.call};
    redisReply *rep[2];
    int prc = phx_redis_pipeline(p->r, calls, 2, rep, err);
    phx_state_call_free(&dc);
    if (prc < 0)
        goto err;
    int a = phx_state_int_reply(rep[1]);
    freeReplyObject(rep[0]);
    freeReplyObject(rep[1]);
    if (a <= 0) {
        /* Someone else moved it on. The timer we wrote is theirs too when they sent this
         * very attempt (a == 0); otherwise it guards nothing: left, it would fire at the
         * timeout only to be found stale, so it goes (once this message's output is out). */
        json_decref(input);
        if (a < 0)
            phx_planner_zrem_after(out, PHX_KEY_TIMEOUTS, member);
        return 0;
    }
    phx_planner_task(j, step, input, a, timeout, now, out);
    return 1;
err:
    json_decref(input);
    return -1;
}

/* A gate that finished (gates.h): 1 if it blocked the job, else 0 after applying an output
 * redaction it asked for (idempotent: an already redacted output is left alone), -1 error. */
static int phx_planner_gate_done(phx_planner *p, const phx_pjob *j, const json_t *gate,
                                 json_t *outputs, phx_err *err)
{
    const char *gid = phx_jstr(gate, "id", "");
    const char *v = phx_gates_verdict(outputs, gid);
    if (v && strcmp(v, "block") == 0)
        return 1;
    json_t *red = phx_gates_redact_output(gate, outputs);
    if (!red)
        return 0;
    const char *sid = phx_jstr(phx_gates_of(gate), "step", "");
    char key[200];
    phx_key_out(key, sizeof(key), j->id);
    char *text = json_dumps(red, JSON_COMPACT);
    redisReply *rep = phx_redis_cmd(p->r, err, "HSET %s %s %s", key, sid, text);
    free(text);
    if (!rep) {
        json_decref(red);
        return -1;
    }
    freeReplyObject(rep);
    json_object_set_new(outputs, sid, red);
    phx_logj(PHX_LOG_INFO, j->id, j->trace, "gate %s redacted the output of step %s", gid, sid);
    return 0;
}

/* One pass over the steps; *changed when a transition happened, *done when all are final.
 * *failed gets the first failed/skipped step id, *blocked the first gate that said block
 * (both borrowed from spec; a block ends the pass: nothing more may be dispatched). */
static int phx_planner_pass(phx_planner *p, phx_pjob *j, int *changed, int *done,
                            const char **failed, const char **blocked, phx_outbox *out,
                            phx_err *err)
{
    json_t *sh = j->steps, *outputs = j->outputs;
    j->steps = j->outputs = NULL; /* read once: a later pass reads what it changed */
    if (!sh && !(sh = phx_planner_steps(p, j->id, err))) {
        json_decref(outputs);
        return -1;
    }
    int rc = 0;
    size_t i;
    json_t *step;
    *changed = 0, *done = 1, *failed = NULL, *blocked = NULL;
    int64_t now = phx_now_ms();
    json_array_foreach(json_object_get(j->spec, "steps"), i, step)
    {
        const char *sid = phx_jstr(step, "id", "");
        const char *st = phx_jstr(sh, sid, "pending");
        if (strcmp(st, "succeeded") == 0) {
            if (!phx_gates_of(step))
                continue;
            if (!outputs && !(outputs = phx_planner_outputs(p, j->id, err)))
                goto err;
            int g = phx_planner_gate_done(p, j, step, outputs, err);
            if (g < 0)
                goto err;
            if (g > 0) {
                *blocked = sid;
                goto out;
            }
            continue;
        }
        if (strcmp(st, "failed") == 0 || strcmp(st, "skipped") == 0) {
            if (!*failed)
                *failed = sid;
            continue;
        }
        *done = 0;
        if (strcmp(st, "pending") != 0)
            continue;
        const char *blocked_by = NULL;
        int ready = 1;
        size_t k;
        json_t *need;
        json_array_foreach(json_object_get(step, "needs"), k, need)
        {
            const char *ns = phx_jstr(sh, json_string_value(need), "pending");
            if (strcmp(ns, "failed") == 0 || strcmp(ns, "skipped") == 0)
                blocked_by = json_string_value(need);
            else if (strcmp(ns, "succeeded") != 0)
                ready = 0;
        }
        if (blocked_by) {
            char *e = phx_planner_errjson("dependency_failed",
                                          "needs step %s, which did not succeed", blocked_by);
            int r = phx_state_step_cas(p->r, j->id, sid, "pending", "skipped", -1, e, now, err);
            free(e);
            if (r < 0)
                goto err;
            if (r > 0) {
                *changed = 1;
                phx_planner_event(out, j, "step.skipped", sid, 0, json_string(blocked_by));
            }
            continue;
        }
        if (!ready)
            continue;
        if (!outputs && !(outputs = phx_planner_outputs(p, j->id, err)))
            goto err;
        char af[160];
        snprintf(af, sizeof(af), "%s:attempt", sid);
        int attempt = (int)strtol(phx_jstr(sh, af, "0"), NULL, 10);
        int r = phx_planner_dispatch(p, j, step, attempt, outputs, out, err);
        if (r < 0)
            goto err;
        /* A dispatch does not change what later steps see in this pass; a failed step does
         * (its dependants must be skipped), so ask for another pass. */
        if (r == 2)
            *changed = 1;
    }
    goto out;
err:
    rc = -1;
out:
    json_decref(sh);
    json_decref(outputs);
    return rc;
}

/* Longer than any produce can take (message.timeout.ms is 30 s): a lease this old was held by
 * a planner that died before its reply was confirmed. */
#define PHX_REPLY_LEASE_MS 60000

/* Is the final job j's reply owed by us now? Claims it (see phx_state_reply_claim) so that
 * two actors -- a result and a timer, or two replicas -- never both send it. 1 yes. */
static int phx_planner_reply_owed(phx_planner *p, phx_pjob *j, phx_err *err)
{
    const char *sent = phx_jstr(j->hash, "reply_sent", "1");
    if (strcmp(sent, "1") == 0)
        return 0;
    int c = phx_state_reply_claim(p->r, j->id, phx_now_ms(), PHX_REPLY_LEASE_MS, err);
    if (c == 0 && sent[0] == 'p') {
        /* Someone holds a live lease -- maybe we did, in a finish whose answer a Redis crash
         * swallowed, so nobody will confirm it. Make sure a timer looks again when the lease
         * expires (LT: never postpone an earlier deadline); without it the reply waited for the
         * job's deadline, minutes away. */
        long long at = strtoll(sent + 1, NULL, 10) + PHX_REPLY_LEASE_MS + 1000;
        char key[32];
        snprintf(key, sizeof(key), "%lld", at);
        redisReply *rep =
            phx_redis_cmd(p->r, err, "ZADD %s LT %s %s", PHX_KEY_DEADLINES, key, j->id);
        if (!rep)
            return -1;
        freeReplyObject(rep);
    }
    return c;
}

/* A cancelled job (DELETE /v1/jobs/ID sets the state) dispatches nothing more; it owes one
 * "cancelled" reply, marked by reply_sent=0. Results of attempts still running are recorded
 * on their steps but change nothing else. */
static int phx_planner_cancelled(phx_planner *p, phx_pjob *j, phx_outbox *out, phx_err *err)
{
    int c = phx_planner_reply_owed(p, j, err);
    if (c <= 0)
        return c;
    /* Cancelled before the planner adopted it: the hash has no reply_to yet. */
    if (!json_object_get(j->hash, "reply_to") &&
        json_is_string(json_object_get(j->spec, "reply_to")))
        json_object_set(j->hash, "reply_to", json_object_get(j->spec, "reply_to"));
    phx_logj(PHX_LOG_INFO, j->id, j->trace, "job cancelled");
    return phx_planner_reply(p, j, out, err);
}

static int phx_planner_advance_loaded(phx_planner *p, phx_pjob *j, phx_outbox *out, phx_err *err);

/* The scopes of job j's principal (all of them for a job without one: an operator's). */
static int phx_planner_scopes(phx_planner *p, const char *id, const json_t *job, unsigned *scopes,
                              phx_err *err)
{
    char *roles = NULL;
    int rc = phx_jobstore_roles(p->r, id, phx_jstr(job, "tenant", "default"),
                                phx_jstr(job, "principal", NULL), &roles, err);
    if (rc < 0)
        return -1;
    *scopes = rc == 0 ? ~0u : phx_rbac_scopes(roles);
    free(roles);
    return 0;
}

/* Weave the safety gates the tenant's policy asks for into steps (gates.h). all: the job's
 * steps once these are added, or NULL when steps are the whole job. plan: also review them
 * as a plan. New reference, or NULL on a Redis error. */
static json_t *phx_planner_gates(phx_planner *p, const char *tenant, const json_t *steps,
                                 const json_t *all, int plan, phx_err *err)
{
    if (!p->cfg->safety_gates || (!plan && !phx_gates_wanted(steps)))
        return json_deep_copy(steps);
    phx_gates g;
    if (phx_gates_load(p->r, tenant, 1, &g, err) < 0)
        return NULL;
    return phx_gates_weave(steps, all, &g, plan);
}

/* The plan of goal job j, gated: reviewed as a plan, and each step guarded like a client's. */
static json_t *phx_planner_gate_plan(phx_planner *p, const phx_pjob *j, const json_t *plan,
                                     phx_err *err)
{
    json_t *all = json_deep_copy(json_object_get(j->spec, "steps"));
    json_array_extend(all, (json_t *)plan);
    json_t *woven = phx_planner_gates(p, j->tenant, plan, all, 1, err);
    json_decref(all);
    return woven;
}

/* A goal job whose "plan" step succeeded: check the plan and run it, or fail the job.
 * 0 nothing to do yet, 1 the job moved on (expanded or failed), -1 error. */
static int phx_planner_expand(phx_planner *p, phx_pjob *j, phx_outbox *out, phx_err *err)
{
    char key[200], id[160];
    snprintf(id, sizeof(id), "%s", j->id);
    phx_key_steps(key, sizeof(key), id);
    redisReply *rep = phx_redis_cmd(p->r, err, "HGET %s %s", key, PHX_PLAN_STEP_ID);
    if (!rep)
        return -1;
    int ready = rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "succeeded") == 0;
    freeReplyObject(rep);
    if (!ready)
        return 0;
    json_t *outputs = phx_planner_outputs(p, id, err), *reasons = NULL;
    unsigned scopes;
    if (!outputs || phx_planner_scopes(p, id, j->spec, &scopes, err) < 0) {
        json_decref(outputs);
        return -1;
    }
    const json_t *output = json_object_get(outputs, PHX_PLAN_STEP_ID);
    const phx_schema *js = phx_schema_set_get(phx_worker_schemas(p->w), "job.v1");
    int rc = 1;
    json_t *woven = NULL;
    if (phx_plan_check(js, j->spec, output, scopes, &reasons) == 0) {
        woven = phx_planner_gate_plan(
            p, j, json_object_get(json_object_get(output, "plan"), "steps"), err);
        if (!woven || phx_plan_expand(p->r, id, j->spec, woven, err) < 0) {
            rc = -1;
        } else {
            /* Run the plan with the new spec: reload and advance. */
            phx_pjob_free(j);
            rc =
                phx_pjob_load(p, id, j, err) <= 0 ? -1 : phx_planner_advance_loaded(p, j, out, err);
            rc = rc < 0 ? -1 : 1;
        }
    } else {
        json_t *e = json_pack("{s:s, s:s, s:O}", "code", "invalid_plan", "message",
                              "the plan from llm.plan cannot run", "details", reasons);
        char *ej = json_dumps(e, JSON_COMPACT);
        int f = phx_state_job_finish(p->r, id, "failed", ej, phx_now_ms(), err);
        free(ej);
        json_decref(e);
        phx_logj(PHX_LOG_INFO, id, j->trace, "plan refused");
        rc = f < 0 ? -1 : f == 0 ? 1 : phx_planner_reply(p, j, out, err) < 0 ? -1 : 1;
    }
    json_decref(woven);
    json_decref(reasons);
    json_decref(outputs);
    return rc;
}

/* A gate said block: the job ends `rejected`, its error carrying the gate's findings. */
static int phx_planner_blocked(phx_planner *p, phx_pjob *j, const char *gid, phx_outbox *out,
                               phx_err *err)
{
    json_t *outputs = phx_planner_outputs(p, j->id, err);
    if (!outputs)
        return -1;
    const json_t *gate = phx_gates_of(phx_pjob_step(j, gid));
    const char *guarded = phx_jstr(gate, "step", "");
    char msg[512];
    if (*guarded)
        snprintf(msg, sizeof(msg), "safety gate %s blocked step %s", gid, guarded);
    else
        snprintf(msg, sizeof(msg), "safety gate %s blocked the plan", gid);
    json_t *go = json_object_get(outputs, gid);
    json_t *e = json_pack("{s:s, s:s, s:{s:s, s:O*, s:O*}}", "code", "safety_blocked", "message",
                          msg, "details", "gate", gid, "score", json_object_get(go, "score"),
                          "findings", json_object_get(go, "findings"));
    char *ej = json_dumps(e, JSON_COMPACT);
    int rc = phx_state_job_finish(p->r, j->id, "rejected", ej, phx_now_ms(), err);
    free(ej);
    json_decref(e);
    json_decref(outputs);
    if (rc <= 0)
        return rc; /* another actor finished it (and replies) */
    phx_logj(PHX_LOG_INFO, j->id, j->trace, "%s", msg);
    return phx_planner_reply(p, j, out, err);
}

/* Move job j forward as far as its state allows (see the file comment). */
static int phx_planner_advance_loaded(phx_planner *p, phx_pjob *j, phx_outbox *out, phx_err *err)
{
    if (strcmp(j->state, "cancelled") == 0)
        return phx_planner_cancelled(p, j, out, err);
    if (strcmp(j->state, "succeeded") == 0 || strcmp(j->state, "failed") == 0 ||
        strcmp(j->state, "rejected") == 0) {
        /* Finished but the reply was never confirmed (its sender died): send it again. */
        int c = phx_planner_reply_owed(p, j, err);
        return c <= 0 ? c : phx_planner_reply(p, j, out, err);
    }
    if (strcmp(j->state, "running") != 0)
        return 0;
    if (json_object_get(j->spec, "goal") && strcmp(phx_jstr(j->hash, "expanded", "0"), "1") != 0) {
        int rc = phx_planner_expand(p, j, out, err);
        if (rc != 0)
            return rc < 0 ? -1 : 0; /* expanded (and advanced) or the job failed */
    }
    int changed = 1, done = 0;
    const char *failed = NULL, *blocked = NULL;
    for (int pass = 0; changed && !blocked && pass < 300; pass++) {
        if (phx_planner_pass(p, j, &changed, &done, &failed, &blocked, out, err) < 0)
            return -1;
    }
    if (blocked)
        return phx_planner_blocked(p, j, blocked, out, err);
    if (!done)
        return 0;
    char *e = NULL;
    if (failed) {
        char ef[160];
        snprintf(ef, sizeof(ef), "%s:err", failed);
        char key[200];
        phx_key_steps(key, sizeof(key), j->id);
        redisReply *rep = phx_redis_cmd(p->r, err, "HGET %s %s", key, ef);
        if (!rep)
            return -1;
        json_t *se = rep->type == REDIS_REPLY_STRING ? json_loads(rep->str, 0, NULL) : NULL;
        freeReplyObject(rep);
        e = phx_planner_errjson("step_failed", "step %s failed: %s: %s", failed,
                                phx_jstr(se, "code", "error"), phx_jstr(se, "message", ""));
        json_decref(se);
    }
    /* Finish, and read what the reply is built from, in one round trip. */
    phx_state_call fc;
    phx_state_job_finish_call(&fc, j->id, failed ? "failed" : "succeeded", e, phx_now_ms());
    const char *hj[] = {"HGETALL", fc.job}, *rargv[4];
    char ks[200], ko[200];
    phx_redis_call calls[4] = {fc.call, {NULL, 0, 2, hj, NULL}};
    phx_planner_read_calls(calls + 2, rargv, ks, ko, j->id);
    redisReply *rep[4];
    int rc = phx_redis_pipeline(p->r, calls, 4, rep, err);
    phx_state_call_free(&fc);
    free(e);
    if (rc < 0)
        return -1;
    json_t *view = NULL;
    if ((rc = phx_state_int_reply(rep[0])) == 1) {
        json_t *hash = phx_jobstore_hash_from(rep[1]), *steps = phx_jobstore_hash_from(rep[2]),
               *outs = phx_jobstore_hash_from(rep[3]);
        view = phx_jobstore_view_build(j->id, hash, steps, outs);
        json_decref(hash);
        json_decref(steps);
        json_decref(outs);
    }
    for (int i = 0; i < 4; i++)
        freeReplyObject(rep[i]);
    if (rc == 0)
        return 0; /* another actor (deadline, replica) finished it and replies */
    return phx_planner_reply_view(p, j, view, out, err);
}

static int phx_planner_advance(phx_planner *p, const char *id, phx_outbox *out, phx_err *err)
{
    phx_pjob j;
    int rc = phx_pjob_load(p, id, &j, err);
    if (rc > 0)
        rc = phx_planner_advance_loaded(p, &j, out, err);
    phx_pjob_free(&j);
    return rc;
}

/* Reply "rejected" for job id (only if the id was never used: we never answer for a job
 * someone else owns). reasons: array of strings, or NULL. */
static int phx_planner_reject(phx_planner *p, const json_t *body, const char *code,
                              const char *message, const json_t *reasons, phx_outbox *out,
                              phx_err *err)
{
    const char *id = phx_jstr(body, "id", NULL);
    const char *tenant = phx_jstr(body, "tenant", "default");
    const char *reply_to = phx_jstr(body, "reply_to", PHX_TOPIC_REPLIES);
    if (!id || !phx_id_valid(id))
        return 0; /* nobody to answer: the dead letter is all we can do */
    if (!phx_id_valid(tenant))
        tenant = "default";
    json_t *e = json_pack("{s:s, s:s}", "code", code, "message", message);
    if (reasons)
        json_object_set(e, "details", (json_t *)reasons);
    char *ejson = json_dumps(e, JSON_COMPACT);
    char *spec = json_dumps(body, JSON_COMPACT);
    int64_t now = phx_now_ms();
    int rc = phx_state_job_reject(p->r, id, tenant, spec, ejson, now, err);
    free(spec);
    free(ejson);
    if (rc <= 0) {
        json_decref(e);
        return rc;
    }
    json_t *reply =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:I}", "schema", "reply.v1", "job_id", id,
                  "tenant", tenant, "status", "rejected", "error", e, "created_ms", (json_int_t)now,
                  "finished_ms", (json_int_t)now, "duration_ms", (json_int_t)0);
    /* A reply_to that is not a valid topic name would fail forever: use the default. */
    int topic_ok = strlen(reply_to) < 250 && phx_id_valid(reply_to) && !strchr(reply_to, ':');
    phx_outbox_add(out, topic_ok ? reply_to : PHX_TOPIC_REPLIES, id, reply, tenant, NULL, 0);
    phx_pjob j = {.id = id, .tenant = tenant};
    phx_planner_event(out, &j, "job.rejected", NULL, 0, json_string(message));
    phx_planner_count_job("rejected", tenant);
    phx_logj(PHX_LOG_INFO, id, NULL, "job rejected: %s", message);
    return 1;
}

static void phx_planner_on_invalid(void *tctx, const phx_inmsg *in, const json_t *errors,
                                   phx_outbox *out)
{
    phx_planner *p = tctx;
    if (strcmp(in->topic, PHX_TOPIC_JOBS) != 0)
        return;
    phx_err err;
    if (phx_planner_reject(p, in->body, "invalid_job", "the job does not match schema job.v1",
                           errors, out, &err) < 0)
        phx_logj(PHX_LOG_WARN, NULL, NULL, "rejecting invalid job: %s", err.message);
}

/* RBAC, again: jobs can reach phx.jobs without the ingress. Every step kind must be allowed
 * by the roles of the job's principal (lib/rbac.c, the table the ingress uses). 1 allowed
 * (*scopes: the principal's, every scope for a job without one), 0 refused (*reasons says
 * why), -1 error. */
static int phx_planner_authorize(phx_planner *p, const json_t *body, unsigned *scopes,
                                 json_t **reasons, phx_err *err)
{
    char *roles = NULL;
    *reasons = NULL;
    *scopes = PHX_SCOPE_ALL;
    int rc = phx_jobstore_roles(p->r, phx_jstr(body, "id", ""), phx_jstr(body, "tenant", "default"),
                                phx_jstr(body, "principal", NULL), &roles, err);
    if (rc <= 0)
        return rc < 0 ? -1 : 1; /* no principal: an operator trusted by the Kafka ACLs */
    *scopes = phx_rbac_scopes(roles);
    rc = phx_rbac_check_steps(json_object_get(body, "steps"), *scopes, reasons);
    free(roles);
    return rc == 0;
}

static phx_handle_rc phx_planner_store(phx_planner *p, const phx_inmsg *in, const json_t *body,
                                       phx_outbox *out, phx_err *err);

/* Take in a job (body: as received, or with its planning step added): check it, weave its
 * safety gates, store it and start it. */
static phx_handle_rc phx_planner_intake(phx_planner *p, const phx_inmsg *in, const json_t *body,
                                        phx_outbox *out, phx_err *err)
{
    const char *id = phx_jstr(body, "id", "");
    const char *tenant = phx_jstr(body, "tenant", "default");
    json_t *steps = json_object_get(body, "steps"), *reasons = NULL;
    int rc;

    if (phx_dag_check(steps, &reasons) < 0) {
        rc = phx_planner_reject(p, body, "invalid_job", "the job's steps are not a valid DAG",
                                reasons, out, err);
        json_decref(reasons);
        return rc < 0 ? PHX_RETRY_LATER : PHX_HANDLED;
    }
    unsigned scopes;
    if ((rc = phx_planner_authorize(p, body, &scopes, &reasons, err)) <= 0) {
        if (rc == 0)
            rc = phx_planner_reject(p, body, "forbidden",
                                    "the job's principal lacks a scope its steps need", reasons,
                                    out, err);
        json_decref(reasons);
        return rc < 0 ? PHX_RETRY_LATER : PHX_HANDLED;
    }
    const char *idem = phx_jstr(body, "idempotency_key", NULL);
    if (idem) {
        char *owner = phx_jobstore_idem_claim(p->r, tenant, idem, id, err);
        if (!owner)
            return PHX_RETRY_LATER;
        if (strcmp(owner, id) != 0) {
            char msg[300];
            snprintf(msg, sizeof(msg), "idempotency key already used by job %s", owner);
            json_t *d = json_pack("[s]", owner);
            rc = phx_planner_reject(p, body, "duplicate", msg, d, out, err);
            json_decref(d);
            free(owner);
            return rc < 0 ? PHX_RETRY_LATER : PHX_HANDLED;
        }
        free(owner);
    }
    json_t *gated = phx_planner_gates(p, tenant, steps, NULL, 0, err);
    if (!gated)
        return PHX_RETRY_LATER;
    json_t *stored = json_deep_copy(body);
    json_object_set_new(stored, "steps", gated);
    /* Every task carries the principal's scopes; each pool checks its step's (lib/pool.c). */
    json_object_set_new(stored, "scopes", phx_rbac_scopes_json(scopes));
    phx_handle_rc hrc = phx_planner_store(p, in, stored, out, err);
    json_decref(stored);
    return hrc;
}

/* Store a checked job (first sight) and advance it (also on a redelivery). */
static phx_handle_rc phx_planner_store(phx_planner *p, const phx_inmsg *in, const json_t *body,
                                       phx_outbox *out, phx_err *err)
{
    const char *id = phx_jstr(body, "id", "");
    const char *tenant = phx_jstr(body, "tenant", "default");
    json_t *steps = json_object_get(body, "steps");
    int rc;
    int64_t now = phx_now_ms();
    json_t *sub = json_object_get(body, "submitted_ms"), *dl = json_object_get(body, "deadline_ms");
    int64_t start = json_is_integer(sub) ? json_integer_value(sub) : now;
    int64_t deadline_at =
        start + (json_is_integer(dl) ? json_integer_value(dl) : p->cfg->job_deadline_ms);
    json_t *ids = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s) json_array_append(ids, json_object_get(s, "id"));
    phx_ready roots;
    phx_planner_roots(p, id, body, now, &roots);
    char *spec = json_dumps(body, JSON_COMPACT), *state = NULL;
    phx_job_new jn = {.id = id,
                      .tenant = tenant,
                      .principal = phx_jstr(body, "principal", ""),
                      .reply_to = phx_jstr(body, "reply_to", PHX_TOPIC_REPLIES),
                      .spec = spec,
                      .trace = in->traceparent,
                      .now_ms = now,
                      .deadline_at = deadline_at,
                      .step_ids = ids,
                      .dispatch = roots.ids,
                      .autofinish = roots.autofinish};
    /* One round trip: the root steps' timers (before the tasks they guard, as in dispatch()),
     * create (or find) the job -- dispatching those roots when it is new --, its deadline
     * timer -- also after a duplicate: a redelivery must finish whatever the first attempt
     * left -- and the job, steps and outputs as they are now, for advance(). */
    phx_state_call cc;
    phx_state_job_create_call(&cc, &jn);
    char dl_at[32], ks[200], ko[200];
    snprintf(dl_at, sizeof(dl_at), "%lld", (long long)deadline_at);
    const char *zadd[] = {"ZADD", PHX_KEY_DEADLINES, dl_at, id}, *hj[] = {"HGETALL", cc.job};
    const char *rargv[4];
    phx_redis_call calls[6];
    int n = 0;
    if (roots.nt)
        calls[n++] = (phx_redis_call){NULL, 0, roots.nt, roots.targv, NULL};
    int first = n;
    calls[n++] = cc.call;
    calls[n++] = (phx_redis_call){NULL, 0, 4, zadd, NULL};
    calls[n++] = (phx_redis_call){NULL, 0, 2, hj, NULL};
    phx_planner_read_calls(calls + n, rargv, ks, ko, id);
    n += 2;
    redisReply *rep[6];
    rc = phx_redis_pipeline(p->r, calls, n, rep, err);
    phx_state_call_free(&cc);
    free(spec);
    json_decref(ids);
    if (rc < 0) {
        phx_ready_free(&roots);
        return PHX_RETRY_LATER;
    }
    phx_pjob j;
    rc = phx_state_job_create_reply(rep[first], &state);
    int loaded = phx_pjob_from(&j, id, rep[first + 2]);
    phx_pjob_keep(&j, rep[n - 2], rep[n - 1]);
    for (int k = 0; k < n; k++)
        freeReplyObject(rep[k]);
    if (rc == 0) {
        phx_logj(PHX_LOG_INFO, id, in->traceparent, "job id seen before (state %s)", state);
        phx_pjob d = {.id = id, .tenant = tenant};
        phx_planner_event(out, &d, "job.duplicate", NULL, 0, json_string(state));
    }
    free(state);
    if (rc < 0 || loaded <= 0) {
        phx_pjob_free(&j);
        phx_ready_free(&roots);
        return PHX_RETRY_LATER;
    }
    /* A redelivery of a job that is over and answered wrote a deadline that guards nothing:
     * left, it would fire at the deadline (minutes away) only to be found done. */
    const char *st = phx_jstr(j.hash, "state", "");
    if (rc == 0 && strcmp(st, "running") != 0 && strcmp(st, "submitted") != 0 &&
        strcmp(phx_jstr(j.hash, "reply_sent", ""), "1") == 0)
        phx_planner_zrem_after(out, PHX_KEY_DEADLINES, id);
    if (rc == 1) {
        phx_planner_event(out, &j, "job.accepted", NULL, 0, NULL);
        phx_logj(PHX_LOG_INFO, id, in->traceparent, "job accepted: %zu steps",
                 json_array_size(steps));
    }
    for (size_t k = 0; k < json_array_size(roots.ids); k++)
        roots.sent[k] = rc == 1; /* the script dispatched them all, or did not run them */
    phx_planner_ready_done(p, &j, &roots, now, out);
    phx_planner_cache_put(p, &j);
    phx_ready_free(&roots);
    int arc = phx_planner_advance_loaded(p, &j, out, err);
    phx_pjob_free(&j);
    return arc < 0 ? PHX_RETRY_LATER : PHX_HANDLED;
}

static phx_handle_rc phx_planner_on_job(phx_planner *p, const phx_inmsg *in, phx_outbox *out,
                                        phx_err *err)
{
    if (json_object_get(in->body, "steps"))
        return phx_planner_intake(p, in, in->body, out, err);
    /* Goal only: the job starts with its planning step (see expand.h). */
    unsigned scopes;
    if (phx_planner_scopes(p, phx_jstr(in->body, "id", ""), in->body, &scopes, err) < 0)
        return PHX_RETRY_LATER;
    json_t *planned = json_deep_copy(in->body);
    json_object_set_new(planned, "steps", phx_plan_initial_steps(in->body, scopes));
    phx_handle_rc rc = phx_planner_intake(p, in, planned, out, err);
    json_decref(planned);
    return rc;
}

/* Apply one attempt's outcome (a result, or a timeout) and move the job on. */
static int phx_planner_apply(phx_planner *p, const char *id, const char *sid, int attempt,
                             const json_t *output, const json_t *error, const char *timer,
                             phx_outbox *out, phx_err *err)
{
    phx_pjob j;
    memset(&j, 0, sizeof(j));
    int rc = 0;
    json_t *view = NULL; /* the reply's, when the outcome finished the job */
    phx_ready next;      /* dependants dispatched with the outcome */
    memset(&next, 0, sizeof(next));
    const json_t *step = NULL;
    const char *ns = NULL;
    char *oj = output ? json_dumps(output, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char *ej = error ? json_dumps(error, JSON_COMPACT) : NULL;
    int retryable = json_is_true(json_object_get(error, "retryable"));
    /* A success needs nothing from the job to be applied (the attempt limit only matters for
     * a failure), so its job read travels in the same round trip as the outcome. A failure
     * reads the job first: its step's max_attempts decides retry or fail. */
    int early = error != NULL;
    if (early) {
        rc = phx_pjob_load(p, id, &j, err);
        if (rc <= 0)
            goto out; /* unknown job: a result for a job we never stored, nothing to do */
        if (!(step = phx_pjob_step(&j, sid))) {
            rc = 0;
            goto out;
        }
    }
    char member[256];
    snprintf(member, sizeof(member), "%s\t%s\t%d", id, sid, attempt);
    /* One round trip: [the job,] the outcome, then (for a result) the attempt's timer, then
     * the step states and outputs advance() needs. The outcome is a compare-and-set on the
     * step's state and attempt, so for an unknown job or step (never dispatched) it changes
     * nothing. The timer may go before our outputs are confirmed: if they never are, this
     * result message comes again and repairs (a timer fired by the tick, on the contrary, is
     * removed only after its outputs are safe). */
    int64_t now = phx_now_ms();
    if (!early)
        phx_planner_dependants(p, id, json_object_get(p->specs, id), sid, output, now, &next);
    phx_state_call rc_call;
    phx_state_step_result_call(&rc_call, id, sid, attempt, oj, ej, retryable,
                               early ? phx_planner_max_attempts(p, step) : 1, now, next.ids);
    const char *zrem[] = {"ZREM", PHX_KEY_TIMEOUTS, member}, *rargv[4];
    char ks[200], ko[200], kj[192];
    phx_key_job(kj, sizeof(kj), id);
    const char *hj[] = {"HGETALL", kj};
    phx_redis_call calls[6];
    int n = 0, finished = 0;
    if (next.nt) /* the dependants' timers, before the script that dispatches them */
        calls[n++] = (phx_redis_call){NULL, 0, next.nt, next.targv, NULL};
    int first = n;
    calls[n++] = rc_call.call;
    /* After the outcome: a success may have finished the job, and the reply is built from it. */
    if (!early)
        calls[n++] = (phx_redis_call){NULL, 0, 2, hj, NULL};
    if (!timer)
        calls[n++] = (phx_redis_call){NULL, 0, 3, zrem, NULL};
    phx_planner_read_calls(calls + n, rargv, ks, ko, id);
    n += 2;
    redisReply *rep[6];
    rc = phx_redis_pipeline(p->r, calls, n, rep, err);
    phx_state_call_free(&rc_call);
    if (rc < 0) {
        /* The dependants' timers may be written: a redelivery of this result writes the same
         * ones again (NX) and settles them. */
        goto out;
    }
    int known = 1;
    if (!early && (phx_pjob_from(&j, id, rep[first + 1]) <= 0 || !(step = phx_pjob_step(&j, sid))))
        known = 0; /* unknown job or step: the outcome found no dispatched step either */
    rc = phx_state_step_result_reply(rep[first], &ns, &finished);
    for (size_t i = 3; rc == 1 && i < rep[first]->elements; i++)
        for (size_t k = 0; k < json_array_size(next.ids); k++)
            if (rep[first]->element[i]->type == REDIS_REPLY_STRING &&
                strcmp(rep[first]->element[i]->str,
                       json_string_value(json_array_get(next.ids, k))) == 0)
                next.sent[k] = 1;
    if (known && finished) {
        json_t *steps = phx_jobstore_hash_from(rep[n - 2]),
               *outs = phx_jobstore_hash_from(rep[n - 1]);
        view = phx_jobstore_view_build(id, j.hash, steps, outs);
        json_decref(steps);
        json_decref(outs);
    } else if (known) {
        phx_pjob_keep(&j, rep[n - 2], rep[n - 1]);
    }
    for (int i = 0; i < n; i++)
        freeReplyObject(rep[i]);
    if (!known) {
        phx_planner_ready_done(p, &j, &next, now, out); /* nothing dispatched: timers go */
        rc = 0;
        goto out;
    }
    phx_planner_cache_put(p, &j);
    if (rc < 0) {
        phx_planner_ready_done(p, &j, &next, now, out);
        rc = phx_err_set(err, "redis_error", 0, "step_result: unexpected reply");
        goto out;
    }
    char labels[128];
    snprintf(labels, sizeof(labels), "kind=\"%s\",outcome=\"%s\"", phx_jstr(step, "kind", ""),
             rc ? ns : "stale");
    phx_planner_count("phx_step_outcomes_total",
                      "Step attempt outcomes applied by the planner (stale = duplicate or late).",
                      labels);
    if (rc == 1) {
        if (strcmp(ns, "retry_wait") == 0) {
            int64_t due = phx_now_ms() + phx_planner_backoff(p, step, attempt, error);
            if (phx_planner_zadd(p, PHX_KEY_DELAY, due, member, err) < 0) {
                rc = -1;
                goto out;
            }
            phx_planner_event(out, &j, "step.retry_scheduled", sid, attempt, json_deep_copy(error));
        } else {
            phx_planner_event(out, &j,
                              strcmp(ns, "succeeded") == 0 ? "step.succeeded" : "step.failed", sid,
                              attempt, error ? json_deep_copy(error) : NULL);
        }
        const json_t *gate = phx_gates_of(step);
        if (gate) {
            char gl[128];
            snprintf(gl, sizeof(gl), "on=\"%s\",verdict=\"%s\"", phx_jstr(gate, "on", ""),
                     strcmp(ns, "succeeded") == 0 ? phx_jstr(output, "verdict", "unknown") : ns);
            phx_planner_count("phx_safety_gate_outcomes_total",
                              "Safety gate results by what they guard (input, output, plan) and "
                              "verdict (or failed / retry_wait when the scan itself failed).",
                              gl);
        }
        if (timer)
            phx_planner_event(out, &j, "step.timed_out", sid, attempt, NULL);
    }
    if (timer)
        phx_planner_zrem_after(out, PHX_KEY_TIMEOUTS, member);
    phx_planner_ready_done(p, &j, &next, now, out);
    if (view) {
        /* The outcome finished the job (all its steps succeeded) and took the reply lease:
         * what advance() would have done next, without its round trip. */
        rc = phx_planner_reply_view(p, &j, view, out, err);
        view = NULL;
        goto out;
    }
    rc = phx_planner_advance_loaded(p, &j, out, err);
out:
    json_decref(view);
    phx_ready_free(&next);
    free(oj);
    free(ej);
    phx_pjob_free(&j);
    return rc;
}

static phx_handle_rc phx_planner_on_result(phx_planner *p, const phx_inmsg *in, phx_outbox *out,
                                           phx_err *err)
{
    const json_t *b = in->body;
    const char *ok = phx_jstr(b, "status", "");
    int rc = phx_planner_apply(p, phx_jstr(b, "job_id", ""), phx_jstr(b, "step_id", ""),
                               (int)json_integer_value(json_object_get(b, "attempt")),
                               strcmp(ok, "ok") == 0 ? json_object_get(b, "output") : NULL,
                               strcmp(ok, "ok") == 0 ? NULL : json_object_get(b, "error"), NULL,
                               out, err);
    return rc < 0 ? PHX_RETRY_LATER : PHX_HANDLED;
}

static phx_handle_rc phx_planner_handle(void *tctx, const phx_inmsg *in, phx_outbox *out,
                                        phx_err *err)
{
    phx_planner *p = tctx;
    if (strcmp(in->topic, PHX_TOPIC_JOBS) == 0)
        return phx_planner_on_job(p, in, out, err);
    return phx_planner_on_result(p, in, out, err);
}

/* Is job id's reply leased but not confirmed (after this tick's own outputs: no)? */
static int phx_planner_reply_pending(phx_planner *p, const char *id, phx_err *err)
{
    char key[192];
    phx_key_job(key, sizeof(key), id);
    redisReply *rep = phx_redis_cmd(p->r, err, "HGET %s reply_sent", key);
    int pending = rep && rep->type == REDIS_REPLY_STRING && rep->str[0] == 'p';
    if (rep)
        freeReplyObject(rep);
    return pending;
}

/* Due members of the three timer zsets (delay, timeouts, deadlines: at most 100 each per
 * tick, so one tick stays short), read in one round trip: an idle planner costs Redis one
 * round trip per tick, not three. A timer that falls due while the tick works waits for the
 * next one (tick_ms). 0, or -1 with err. */
static int phx_planner_due(phx_planner *p, redisReply **due, phx_err *err)
{
    static const char *const keys[3] = {PHX_KEY_DELAY, PHX_KEY_TIMEOUTS, PHX_KEY_DEADLINES};
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)phx_now_ms());
    const char *argv[3][7];
    phx_redis_call calls[3];
    for (int i = 0; i < 3; i++) {
        const char *a[7] = {"ZRANGEBYSCORE", keys[i], "-inf", now, "LIMIT", "0", "100"};
        memcpy(argv[i], a, sizeof(a));
        calls[i] = (phx_redis_call){NULL, 0, 7, argv[i], NULL};
    }
    return phx_redis_pipeline(p->r, calls, 3, due, err);
}

/* Split "ID\tSTEP\tATTEMPT" (in place). */
static int phx_planner_member(char *m, char **id, char **step, int *attempt)
{
    char *t1 = strchr(m, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
    if (!t2)
        return -1;
    *t1 = *t2 = '\0';
    *id = m, *step = t1 + 1, *attempt = (int)strtol(t2 + 1, NULL, 10);
    return 0;
}

static int phx_planner_tick(void *tctx, phx_outbox *out, phx_err *err)
{
    phx_planner *p = tctx;
    redisReply *dues[3], *due;
    char *id, *step;
    int attempt, trc = -1;
    if (phx_planner_due(p, dues, err) < 0)
        return -1;

    /* Retries whose backoff has passed: back to pending, then dispatch. */
    due = dues[0];
    for (size_t i = 0; i < due->elements; i++) {
        char *m = phx_xstrdup(due->element[i]->str);
        if (phx_planner_member(m, &id, &step, &attempt) == 0) {
            if (phx_state_step_cas(p->r, id, step, "retry_wait", "pending", attempt, NULL,
                                   phx_now_ms(), err) < 0 ||
                phx_planner_advance(p, id, out, err) < 0) {
                free(m);
                goto err;
            }
        }
        phx_planner_zrem_after(out, PHX_KEY_DELAY, due->element[i]->str);
        free(m);
    }

    /* Attempts that outlived their timeout: a retryable failure of that attempt. */
    due = dues[1];
    for (size_t i = 0; i < due->elements; i++) {
        char *m = phx_xstrdup(due->element[i]->str);
        if (phx_planner_member(m, &id, &step, &attempt) == 0) {
            json_t *e = json_pack("{s:s, s:s, s:b}", "code", "step_timeout", "message",
                                  "no result before the step's timeout", "retryable", 1);
            int rc = phx_planner_apply(p, id, step, attempt, NULL, e, "timeout", out, err);
            json_decref(e);
            if (rc < 0) {
                free(m);
                goto err;
            }
        }
        phx_planner_zrem_after(out, PHX_KEY_TIMEOUTS, due->element[i]->str);
        free(m);
    }

    /* Job deadlines: fail the job whatever its steps are doing. */
    due = dues[2];
    for (size_t i = 0; i < due->elements; i++) {
        const char *jid = due->element[i]->str;
        char *e = phx_planner_errjson("deadline_exceeded", "the job did not finish before its "
                                                           "deadline");
        int rc = phx_state_job_finish(p->r, jid, "failed", e, phx_now_ms(), err);
        free(e);
        if (rc < 0)
            goto err;
        /* Not running: cancelled (the canceller set the timer to now to wake us) or finished
         * with a reply still owed; advance() sends what is owed and nothing else. While
         * another actor holds the reply lease, keep the timer: it is how a reply whose sender
         * died gets sent after all. */
        if (rc == 0) {
            if (phx_planner_advance(p, jid, out, err) < 0)
                goto err;
            if (phx_planner_reply_pending(p, jid, err)) {
                if (phx_planner_zadd(p, PHX_KEY_DEADLINES, phx_now_ms() + PHX_REPLY_LEASE_MS, jid,
                                     err) < 0)
                    goto err;
                continue;
            }
        }
        if (rc == 1) {
            phx_pjob j;
            if (phx_pjob_load(p, jid, &j, err) <= 0 || phx_planner_reply(p, &j, out, err) < 0) {
                phx_pjob_free(&j);
                goto err;
            }
            phx_planner_event(out, &j, "job.deadline_exceeded", NULL, 0, NULL);
            phx_logj(PHX_LOG_INFO, jid, j.trace, "job deadline exceeded");
            phx_pjob_free(&j);
        }
        phx_planner_zrem_after(out, PHX_KEY_DEADLINES, jid);
    }
    trc = 0;
err:
    for (int i = 0; i < 3; i++)
        freeReplyObject(dues[i]);
    return trc;
}

static void *phx_planner_thread_init(phx_worker *w, phx_err *err)
{
    phx_planner *p = phx_xcalloc(1, sizeof(*p));
    p->w = w;
    p->cfg = phx_worker_app(w);
    const phx_common *c = phx_worker_common(w);
    p->r = phx_redis_from_common(c, err);
    if (!p->r) {
        free(p);
        return NULL;
    }
    phx_redis_set_breaker(p->r, phx_worker_redis_breaker(w));
    p->specs = json_object();
    return p;
}

static void phx_planner_thread_free(void *tctx)
{
    phx_planner *p = tctx;
    phx_redis_free(p->r);
    json_decref(p->specs);
    for (int i = 0; i < PHX_PLANNER_CACHE; i++)
        free(p->ring[i]);
    free(p);
}

void phx_planner_ops(phx_worker_ops *ops, phx_planner_cfg *cfg)
{
    static const char *const topics[] = {PHX_TOPIC_JOBS, PHX_TOPIC_RESULTS};
    memset(ops, 0, sizeof(*ops));
    ops->proc = "phx-planner";
    ops->group = "phx-planner";
    ops->topics = topics;
    ops->ntopics = 2;
    ops->schema_for = phx_planner_schema_for;
    ops->thread_init = phx_planner_thread_init;
    ops->thread_free = phx_planner_thread_free;
    ops->handle = phx_planner_handle;
    ops->on_invalid = phx_planner_on_invalid;
    ops->tick = phx_planner_tick;
    ops->tick_ms = 50;
    ops->app = cfg;
}
