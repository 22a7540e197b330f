/* trace.c -- `phx trace JOB_ID`: one job's life as a timeline.
 *
 * Three sources, each the authority for its part: Redis holds the job's current state (its
 * hash, step states and attempts, the trace id); phx.events holds what the planner decided and
 * when (accepted, dispatched, retried, timed out, finished); phx.results holds what the pools
 * reported (status, duration, which worker). The topics are read as snapshots (every partition
 * up to its end when the command started) and filtered by key = job id, so the command never
 * joins a consumer group and never disturbs the pipeline. Reading whole topics costs time on a
 * big cluster: --timeout bounds it, and what was read by then is still printed.
 *
 * Output: a text timeline (offsets from the first entry), then one line per step; or with
 * --json one object {job, trace_id, timeline: [...], steps: {...}} for tools. A job with no
 * Redis record (expired) and no event is "not found" (exit 1). */
#include "cli.h"
#include "jobstore.h"
#include "kafka.h"
#include "msg.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct phx_trace_ctx {
    const char *id;
    const char *source; /* "event" or "result" */
    json_t *timeline;
} phx_trace_ctx;

static int phx_trace_visit(void *arg, const rd_kafka_message_t *m)
{
    phx_trace_ctx *x = arg;
    size_t n = strlen(x->id);
    if (!m->key || m->key_len != n || memcmp(m->key, x->id, n) != 0)
        return 0;
    json_t *body = json_loadb(m->payload, m->len, 0, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    json_t *e = json_object();
    json_int_t ts = json_integer_value(json_object_get(body, "ts_ms"));
    if (!ts) /* results carry no timestamp of their own: the broker's is when it was sent */
        ts = (json_int_t)rd_kafka_message_timestamp(m, NULL);
    json_object_set_new(e, "ts_ms", json_integer(ts));
    json_object_set_new(e, "source", json_string(x->source));
    if (strcmp(x->source, "event") == 0) {
        json_object_set(e, "type", json_object_get(body, "type"));
        json_object_set(e, "detail", json_object_get(body, "detail"));
    } else {
        json_object_set_new(e, "type", json_string("result"));
        json_object_set(e, "status", json_object_get(body, "status"));
        json_object_set(e, "duration_ms", json_object_get(body, "duration_ms"));
        json_object_set(e, "worker", json_object_get(body, "worker"));
        json_object_set(e, "error", json_object_get(json_object_get(body, "error"), "code"));
    }
    json_object_set(e, "step", json_object_get(body, "step_id"));
    json_object_set(e, "attempt", json_object_get(body, "attempt"));
    json_array_append_new(x->timeline, e);
    json_decref(body);
    return 0;
}

/* Append job id's messages on topic to timeline. 0, or -1 when the topic could not be read. */
static int phx_trace_read(const phx_cli_env *env, const char *topic, const char *source,
                          const char *id, int timeout_ms, json_t *timeline)
{
    phx_err err;
    int64_t *hi = NULL;
    int nparts = 0;
    rd_kafka_t *rk =
        phx_kafka_reader(env->brokers, topic, "phx-trace", PHX_READ_FROM_START, &hi, &nparts, &err);
    if (!rk) {
        fprintf(stderr, "phx trace: %s: %s\n", topic, err.message);
        return -1;
    }
    phx_trace_ctx x = {.id = id, .source = source, .timeline = timeline};
    int rc = phx_cli_snapshot_scan(rk, hi, nparts, timeout_ms, topic, phx_trace_visit, &x);
    free(hi);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

/* By time, then by the order read (events before results at equal times): qsort is not
 * stable, so the read index is kept in a side field for the tie. */
static int phx_trace_by_ts(const void *a, const void *b)
{
    json_t *p = *(json_t *const *)a, *q = *(json_t *const *)b;
    json_int_t x = json_integer_value(json_object_get(p, "ts_ms"));
    json_int_t y = json_integer_value(json_object_get(q, "ts_ms"));
    if (x != y)
        return x < y ? -1 : 1;
    x = json_integer_value(json_object_get(p, "_i"));
    y = json_integer_value(json_object_get(q, "_i"));
    return x < y ? -1 : x > y;
}

static json_t *phx_trace_sorted(json_t *timeline)
{
    size_t n = json_array_size(timeline);
    json_t **v = calloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i] = json_array_get(timeline, i);
        json_object_set_new(v[i], "_i", json_integer((json_int_t)i));
    }
    qsort(v, n, sizeof(*v), phx_trace_by_ts);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        json_object_del(v[i], "_i");
        json_array_append(out, v[i]);
    }
    free(v);
    return out;
}

/* Per step: first dispatch, last finish, attempts seen, workers, result durations. */
static json_t *phx_trace_steps(json_t *timeline, json_t *view)
{
    json_t *steps = json_object(), *e;
    size_t i;
    json_array_foreach(timeline, i, e)
    {
        const char *sid = json_string_value(json_object_get(e, "step"));
        if (!sid)
            continue;
        json_t *s = json_object_get(steps, sid);
        if (!s) {
            s = json_pack("{s:o, s:i, s:[], s:i}", "state",
                          json_deep_copy(json_object_get(
                              json_object_get(json_object_get(view, "steps"), sid), "state"))
                              ?: json_null(),
                          "attempts", 0, "workers", "busy_ms", 0);
            json_object_set_new(steps, sid, s);
        }
        const char *type = json_string_value(json_object_get(e, "type"));
        json_int_t ts = json_integer_value(json_object_get(e, "ts_ms"));
        json_int_t att = json_integer_value(json_object_get(e, "attempt"));
        if (att > json_integer_value(json_object_get(s, "attempts")))
            json_object_set_new(s, "attempts", json_integer(att));
        if (strcmp(type, "step.dispatched") == 0 && !json_object_get(s, "first_dispatch_ms"))
            json_object_set_new(s, "first_dispatch_ms", json_integer(ts));
        if (strcmp(type, "result") == 0) {
            json_object_set_new(s, "last_result_ms", json_integer(ts));
            json_object_set_new(
                s, "busy_ms",
                json_integer(json_integer_value(json_object_get(s, "busy_ms")) +
                             json_integer_value(json_object_get(e, "duration_ms"))));
            const char *w = json_string_value(json_object_get(e, "worker"));
            json_t *ws = json_object_get(s, "workers"), *x;
            size_t k;
            int have = 0;
            json_array_foreach(ws, k, x) have |=
                w && json_string_value(x) && strcmp(json_string_value(x), w) == 0;
            if (w && !have)
                json_array_append_new(ws, json_string(w));
        }
    }
    return steps;
}

static void phx_trace_print_entry(json_t *e, json_int_t t0)
{
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *step = json_string_value(json_object_get(e, "step"));
    json_int_t att = json_integer_value(json_object_get(e, "attempt"));
    printf("  %+8lld ms  %-20s", (long long)(json_integer_value(json_object_get(e, "ts_ms")) - t0),
           type ? type : "?");
    if (step)
        printf(" %s", step);
    if (att)
        printf(" #%lld", (long long)att);
    if (strcmp(type ? type : "", "result") == 0) {
        printf("  %s", json_string_value(json_object_get(e, "status")) ?: "?");
        if (json_string_value(json_object_get(e, "error")))
            printf(" (%s)", json_string_value(json_object_get(e, "error")));
        printf("  %lld ms  by %s", (long long)json_integer_value(json_object_get(e, "duration_ms")),
               json_string_value(json_object_get(e, "worker")) ?: "?");
    } else {
        json_t *d = json_object_get(e, "detail");
        if (json_is_string(d))
            printf("  %s", json_string_value(d));
        else if (d && !json_is_null(d)) {
            char *s = json_dumps(d, JSON_COMPACT);
            printf("  %.160s", s ? s : "");
            free(s);
        }
    }
    printf("\n");
}

static void phx_trace_print(const char *id, json_t *view, const char *trace, json_t *timeline,
                            json_t *steps)
{
    printf("job %s  state %s  tenant %s\n", id,
           json_string_value(json_object_get(view, "state")) ?: "(not in redis: expired?)",
           json_string_value(json_object_get(view, "tenant")) ?: "?");
    if (trace && *trace)
        printf("trace %.32s\n", strlen(trace) == 55 ? trace + 3 : trace);
    json_int_t t0 = json_integer_value(json_object_get(json_array_get(timeline, 0), "ts_ms"));
    json_int_t t1 = json_integer_value(
        json_object_get(json_array_get(timeline, json_array_size(timeline) - 1), "ts_ms"));
    if (json_array_size(timeline))
        printf("timeline (%zu entries, %lld ms first to last):\n", json_array_size(timeline),
               (long long)(t1 - t0));
    size_t i;
    json_t *e;
    json_array_foreach(timeline, i, e) phx_trace_print_entry(e, t0);
    const char *sid;
    json_t *s;
    if (json_object_size(steps))
        printf("steps:\n");
    json_object_foreach(steps, sid, s)
    {
        json_t *d = json_object_get(s, "first_dispatch_ms"),
               *r = json_object_get(s, "last_result_ms");
        printf("  %-16s %-10s attempts %lld", sid,
               json_string_value(json_object_get(s, "state")) ?: "?",
               (long long)json_integer_value(json_object_get(s, "attempts")));
        if (d && r)
            printf("  dispatch->result %lld ms",
                   (long long)(json_integer_value(r) - json_integer_value(d)));
        printf("  busy %lld ms", (long long)json_integer_value(json_object_get(s, "busy_ms")));
        json_t *ws = json_object_get(s, "workers"), *w;
        size_t k;
        json_array_foreach(ws, k, w) printf("%s%s", k ? ", " : "  workers ", json_string_value(w));
        printf("\n");
    }
}

int phx_cli_trace(const phx_cli_env *env, int argc, char **argv)
{
    int as_json = 0, timeout_s = 30;
    const char *id;
    if (phx_cli_job_args(argc, argv, "json", &as_json, &timeout_s, &id) < 0) {
        fprintf(stderr, "usage: phx trace JOB_ID [--json] [--timeout S]\n");
        return PHX_EXIT_USAGE;
    }
    phx_redis *r = phx_cli_redis(env);
    if (!r)
        return PHX_EXIT_USAGE;
    phx_err err;
    phx_err_clear(&err);
    json_t *view = phx_jobstore_view(r, id, &err);
    char *trace = NULL;
    if (!view && strcmp(err.code, "not_found") != 0) {
        fprintf(stderr, "phx trace: %s\n", err.message);
        phx_redis_free(r);
        return PHX_EXIT_INFRA;
    }
    char key[160];
    snprintf(key, sizeof(key), "phx:job:{%s}", id);
    redisReply *rep = phx_redis_cmd(r, &err, "HGET %s trace", key);
    if (rep && rep->type == REDIS_REPLY_STRING)
        trace = strdup(rep->str);
    if (rep)
        freeReplyObject(rep);
    phx_redis_free(r);

    json_t *raw = json_array();
    int rc = PHX_EXIT_OK;
    if (phx_trace_read(env, PHX_TOPIC_EVENTS, "event", id, timeout_s * 1000, raw) < 0 ||
        phx_trace_read(env, PHX_TOPIC_RESULTS, "result", id, timeout_s * 1000, raw) < 0)
        rc = PHX_EXIT_INFRA; /* still print what was read */
    json_t *timeline = phx_trace_sorted(raw);
    json_decref(raw);
    if (!view && json_array_size(timeline) == 0 && rc == PHX_EXIT_OK) {
        fprintf(stderr, "phx trace: job %s not found (no Redis record, no events)\n", id);
        rc = PHX_EXIT_FAILED;
    } else {
        json_t *steps = phx_trace_steps(timeline, view);
        if (as_json) {
            json_t *o = json_pack("{s:O?, s:s?, s:O, s:O}", "job", view, "trace_id",
                                  trace && strlen(trace) == 55 ? trace + 3 : trace, "timeline",
                                  timeline, "steps", steps);
            if (trace && strlen(trace) == 55)
                json_object_set_new(o, "trace_id", json_stringn(trace + 3, 32));
            char *s = json_dumps(o, JSON_INDENT(2));
            printf("%s\n", s);
            free(s);
            json_decref(o);
        } else {
            phx_trace_print(id, view, trace, timeline, steps);
        }
        json_decref(steps);
    }
    free(trace);
    json_decref(timeline);
    json_decref(view);
    return rc;
}
