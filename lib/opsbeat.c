/* opsbeat.c -- the ops heartbeat (see opsbeat.h): summarise the process's own metrics into a
 * small JSON status in Redis, and read everyone's back for the ops page. */
#include "opsbeat.h"
#include "breaker.h"
#include "metrics.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct phx_opsbeat {
    char proc[64], host[128], instance[256];
    int admin_port;
    int64_t started_ms, last_write;
    double last_ok, last_err; /* cumulative totals at the previous sample */
    int sampled;
    /* ring of per-slot increases; slot_of says which wall-clock slot a cell holds */
    int64_t slot_of[PHX_OPSBEAT_SLOTS];
    double ok[PHX_OPSBEAT_SLOTS], err[PHX_OPSBEAT_SLOTS];
};

phx_opsbeat *phx_opsbeat_new(const char *proc, int admin_port)
{
    phx_opsbeat *b = phx_xcalloc(1, sizeof(*b));
    snprintf(b->proc, sizeof(b->proc), "%s", proc);
    if (gethostname(b->host, sizeof(b->host) - 1) != 0)
        snprintf(b->host, sizeof(b->host), "unknown");
    snprintf(b->instance, sizeof(b->instance), "%s@%s:%d", b->proc, b->host, (int)getpid());
    b->admin_port = admin_port;
    b->started_ms = phx_now_ms();
    for (int i = 0; i < PHX_OPSBEAT_SLOTS; i++)
        b->slot_of[i] = -1;
    return b;
}

void phx_opsbeat_free(phx_opsbeat *b)
{
    free(b);
}

/* --- the process's numbers, from its metrics registry ------------------------------------ */

typedef struct phx_opsbeat_sum {
    double ok, err, lag, lag_max;
    json_t *breakers;
} phx_opsbeat_sum;

static void phx_opsbeat_messages(void *arg, const char *labels, double v)
{
    phx_opsbeat_sum *s = arg;
    if (strstr(labels, "outcome=\"ok\""))
        s->ok += v;
    else
        s->err += v; /* poison, retried (a dependency failed), unproducible */
}

static void phx_opsbeat_steps(void *arg, const char *labels, double v)
{
    phx_opsbeat_sum *s = arg;
    if (strstr(labels, "outcome=\"error\""))
        s->err += v; /* the step's message itself was handled: already counted as ok */
}

static void phx_opsbeat_http(void *arg, const char *labels, double v)
{
    phx_opsbeat_sum *s = arg;
    if (strstr(labels, "code=\"5"))
        s->err += v;
    else
        s->ok += v; /* a 4xx is the client's mistake, not the service failing */
}

static void phx_opsbeat_lagv(void *arg, const char *labels, double v)
{
    (void)labels;
    phx_opsbeat_sum *s = arg;
    s->lag += v;
    if (v > s->lag_max)
        s->lag_max = v;
}

/* The value of the only label of a canonical set (`dep="redis"` -> redis). */
static void phx_opsbeat_label1(const char *labels, const char *prefix, char *out, size_t outlen)
{
    const char *q = strchr(labels, '"');
    const char *e = q ? strchr(q + 1, '"') : NULL;
    if (!q || !e)
        snprintf(out, outlen, "%s?", prefix);
    else
        snprintf(out, outlen, "%s%.*s", prefix, (int)(e - q - 1), q + 1);
}

static void phx_opsbeat_breaker(json_t *into, const char *name, double v)
{
    int st = (int)v;
    json_object_set_new(into, name,
                        json_string(phx_breaker_state_name(st >= 0 && st <= 2 ? st : 0)));
}

static void phx_opsbeat_breaker_dep(void *arg, const char *labels, double v)
{
    char name[96];
    phx_opsbeat_label1(labels, "", name, sizeof(name));
    phx_opsbeat_breaker(((phx_opsbeat_sum *)arg)->breakers, name, v);
}

static void phx_opsbeat_breaker_llm(void *arg, const char *labels, double v)
{
    char name[96];
    phx_opsbeat_label1(labels, "llm:", name, sizeof(name));
    phx_opsbeat_breaker(((phx_opsbeat_sum *)arg)->breakers, name, v);
}

void phx_opsbeat_lag(double *total, double *max_partition)
{
    phx_opsbeat_sum s = {0};
    phx_metrics_each("phx_kafka_consumer_lag_messages", phx_opsbeat_lagv, &s);
    *total = s.lag;
    *max_partition = s.lag_max;
}

static double phx_opsbeat_gauge(const char *name)
{
    phx_opsbeat_sum s = {0};
    phx_metrics_each(name, phx_opsbeat_lagv, &s); /* a gauge without labels: its one value */
    return s.lag;
}

/* --- writing ----------------------------------------------------------------------------- */

static json_t *phx_opsbeat_series(const phx_opsbeat *b, int64_t slot)
{
    json_t *ok = json_array(), *er = json_array();
    for (int64_t s = slot - PHX_OPSBEAT_SLOTS + 1; s <= slot; s++) {
        int i = (int)(s % PHX_OPSBEAT_SLOTS);
        int have = s >= 0 && b->slot_of[i] == s;
        json_array_append_new(ok, json_real(have ? b->ok[i] : 0));
        json_array_append_new(er, json_real(have ? b->err[i] : 0));
    }
    return json_pack("{s:i, s:I, s:o, s:o}", "step_ms", PHX_OPSBEAT_INTERVAL_MS, "last_slot",
                     (json_int_t)slot, "ok", ok, "err", er);
}

static json_t *phx_opsbeat_status(phx_opsbeat *b, int64_t now, int64_t slot,
                                  const phx_opsbeat_sum *s, int ready, const char *why)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:b, s:f, s:f, s:f, s:f, s:O, "
        "s:f, s:f}",
        "proc", b->proc, "instance", b->instance, "host", b->host, "pid", (int)getpid(),
        "admin_port", b->admin_port, "started_ms", (json_int_t)b->started_ms, "ts_ms",
        (json_int_t)now, "ready", ready, "threads", phx_opsbeat_gauge("phx_worker_threads"), "busy",
        phx_opsbeat_gauge("phx_worker_busy_threads"), "lag", s->lag, "lag_max", s->lag_max,
        "breakers", s->breakers, "ok_total", s->ok, "err_total", s->err);
    if (!ready && why)
        json_object_set_new(o, "reason", json_string(why));
    json_object_set_new(o, "series", phx_opsbeat_series(b, slot));
    return o;
}

int phx_opsbeat_due(const phx_opsbeat *b)
{
    return !b->last_write || phx_now_ms() - b->last_write >= PHX_OPSBEAT_INTERVAL_MS;
}

int phx_opsbeat_tick(phx_opsbeat *b, phx_redis *r, int ready, const char *why, phx_err *err)
{
    int64_t now = phx_now_ms();
    if (!phx_opsbeat_due(b))
        return 1;
    phx_opsbeat_sum s = {.breakers = json_object()};
    phx_metrics_each("phx_messages_total", phx_opsbeat_messages, &s);
    phx_metrics_each("phx_steps_total", phx_opsbeat_steps, &s);
    phx_metrics_each("phx_http_requests_total", phx_opsbeat_http, &s);
    phx_metrics_each("phx_kafka_consumer_lag_messages", phx_opsbeat_lagv, &s);
    phx_metrics_each("phx_breaker_state", phx_opsbeat_breaker_dep, &s);
    phx_metrics_each("phx_llm_breaker_state", phx_opsbeat_breaker_llm, &s);

    /* The increase since the last sample goes to the slot of now. */
    int64_t slot = now / PHX_OPSBEAT_INTERVAL_MS;
    int i = (int)(slot % PHX_OPSBEAT_SLOTS);
    if (b->slot_of[i] != slot) {
        b->slot_of[i] = slot;
        b->ok[i] = b->err[i] = 0;
    }
    if (b->sampled) {
        b->ok[i] += s.ok > b->last_ok ? s.ok - b->last_ok : 0;
        b->err[i] += s.err > b->last_err ? s.err - b->last_err : 0;
    }
    b->last_ok = s.ok, b->last_err = s.err, b->sampled = 1;

    b->last_write = now; /* a failed write is retried at the next interval, not at once */
    json_t *o = phx_opsbeat_status(b, now, slot, &s, ready, why);
    json_decref(s.breakers);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    const char *argv[] = {"HSET", PHX_OPS_PROCS_KEY, b->instance, text};
    const char *exv[] = {"PEXPIRE", PHX_OPS_PROCS_KEY, "600000"};
    phx_redis_call calls[] = {{NULL, 0, 4, argv, NULL}, {NULL, 0, 3, exv, NULL}};
    redisReply *rep[2] = {0};
    int rc = phx_redis_pipeline(r, calls, 2, rep, err);
    free(text);
    if (rc < 0)
        return -1;
    freeReplyObject(rep[0]);
    freeReplyObject(rep[1]);
    return 0;
}

void phx_opsbeat_gone(phx_opsbeat *b, phx_redis *r)
{
    phx_err err;
    phx_err_clear(&err);
    redisReply *rep = phx_redis_cmd(r, &err, "HDEL %s %s", PHX_OPS_PROCS_KEY, b->instance);
    if (rep)
        freeReplyObject(rep);
}

/* --- reading ----------------------------------------------------------------------------- */

static int phx_opsbeat_cmp(const void *a, const void *c)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)c;
    int d = strcmp(json_string_value(json_object_get(x, "proc")) ?: "",
                   json_string_value(json_object_get(y, "proc")) ?: "");
    return d ? d
             : strcmp(json_string_value(json_object_get(x, "instance")) ?: "",
                      json_string_value(json_object_get(y, "instance")) ?: "");
}

json_t *phx_opsbeat_read(phx_redis *r, int64_t now_ms, phx_err *err)
{
    redisReply *rep = phx_redis_cmd(r, err, "HGETALL %s", PHX_OPS_PROCS_KEY);
    if (!rep)
        return NULL;
    size_t n = rep->type == REDIS_REPLY_ARRAY ? rep->elements / 2 : 0, k = 0;
    json_t **v = phx_xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        const redisReply *f = rep->element[2 * i], *t = rep->element[2 * i + 1];
        json_t *o = t->type == REDIS_REPLY_STRING ? json_loadb(t->str, t->len, 0, NULL) : NULL;
        json_int_t ts = json_integer_value(json_object_get(o, "ts_ms"));
        if (!json_is_object(o) || !json_string_value(json_object_get(o, "proc")) ||
            now_ms - ts > PHX_OPSBEAT_FORGET_MS) {
            json_decref(o);
            phx_err e2;
            phx_err_clear(&e2);
            redisReply *d = phx_redis_cmd(r, &e2, "HDEL %s %b", PHX_OPS_PROCS_KEY, f->str, f->len);
            if (d)
                freeReplyObject(d);
            continue;
        }
        json_object_set_new(o, "alive", json_boolean(now_ms - ts <= PHX_OPSBEAT_STALE_MS));
        v[k++] = o;
    }
    freeReplyObject(rep);
    qsort(v, k, sizeof(*v), phx_opsbeat_cmp);
    json_t *out = json_array();
    for (size_t i = 0; i < k; i++)
        json_array_append_new(out, v[i]);
    free(v);
    return out;
}
