/* jobtrace.c -- one job's life as data (see jobtrace.h): `phx trace` prints it, the ingress's
 * ops API (GET /v1/ops/jobs/{id}/trace) serves it to the ops page. One copy of the joining.
 *
 * Three sources, each the authority for its part: Redis holds the job's current state (its
 * hash, step states and attempts, the trace id); phx.events holds what the planner decided and
 * when (accepted, dispatched, retried, timed out, finished); phx.results holds what the pools
 * reported (status, duration, which worker). The topics are read as snapshots (every partition
 * up to its end when the call started) and filtered by key = job id, so the reader never
 * joins a consumer group and never disturbs the pipeline. */
#include "jobtrace.h"
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

/* Append job id's messages on topic to timeline. 0, or -1 with err when the topic could not be
 * read to its end (what was read stays in timeline). */
static int phx_trace_read(const char *brokers, const char *topic, const char *source,
                          const char *id, int timeout_ms, json_t *timeline, phx_err *err)
{
    int64_t *hi = NULL;
    int nparts = 0;
    rd_kafka_t *rk =
        phx_kafka_reader(brokers, topic, "phx-trace", PHX_READ_FROM_START, &hi, &nparts, err);
    if (!rk)
        return phx_err_set(err, err->code, 1, "%s: %s", topic, err->message);
    phx_trace_ctx x = {.id = id, .source = source, .timeline = timeline};
    int rc = phx_kafka_snapshot_scan(rk, hi, nparts, timeout_ms, phx_trace_visit, &x);
    if (rc < 0)
        phx_err_set(err, "timeout", 1, "timed out reading %s", topic);
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
    json_t **v = phx_xcalloc(n ? n : 1, sizeof(*v));
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

json_t *phx_jobtrace_collect(phx_redis *r, const char *brokers, const char *id, int timeout_ms,
                             int *partial, phx_err *err)
{
    *partial = 0;
    json_t *view = phx_jobstore_view(r, id, err);
    if (!view && strcmp(err->code, "not_found") != 0)
        return NULL;
    phx_err_clear(err);
    char key[160], *trace = NULL;
    snprintf(key, sizeof(key), "phx:job:{%s}", id);
    redisReply *rep = phx_redis_cmd(r, err, "HGET %s trace", key);
    if (rep && rep->type == REDIS_REPLY_STRING)
        trace = phx_xstrdup(rep->str);
    if (rep)
        freeReplyObject(rep);
    phx_err_clear(err);

    json_t *raw = json_array();
    phx_err terr;
    phx_err_clear(&terr);
    if (phx_trace_read(brokers, PHX_TOPIC_EVENTS, "event", id, timeout_ms, raw, &terr) < 0 ||
        phx_trace_read(brokers, PHX_TOPIC_RESULTS, "result", id, timeout_ms, raw, &terr) < 0) {
        *partial = 1; /* still return what was read */
        *err = terr;
    }
    json_t *timeline = phx_trace_sorted(raw);
    json_decref(raw);
    if (!view && json_array_size(timeline) == 0 && !*partial) {
        json_decref(timeline);
        free(trace);
        phx_err_set(err, "not_found", 0, "job %s not found (no Redis record, no events)", id);
        return NULL;
    }
    json_t *steps = phx_trace_steps(timeline, view);
    /* A traceparent is 00-TRACEID-SPANID-FLAGS: the 32 hex digits after "00-" name the trace. */
    json_t *o = json_pack("{s:o?, s:o?, s:o, s:o}", "job", view, "trace_id",
                          !trace                ? NULL
                          : strlen(trace) == 55 ? json_stringn(trace + 3, 32)
                                                : json_string(trace),
                          "timeline", timeline, "steps", steps);
    free(trace);
    return o;
}
