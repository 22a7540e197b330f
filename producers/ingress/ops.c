/* ops.c -- the built-in ops page (GET /ops) and its JSON API (GET /v1/ops/...).
 *
 * The page is three static files (ops/page/: index.html, ops.js, ops.css) compiled into the
 * binary at build time (ops/build/embed-files.sh), like the message schemas: one artifact to
 * deploy, a page that always matches the API of the binary serving it, and no directory to
 * install or mount. They hold no data, so they are served without credentials; everything the
 * page shows comes from the API, which needs the `ops:read` (or `admin`) scope like any route.
 * The browser keeps the credential in sessionStorage and sends it as an Authorization header:
 * it never appears in a URL, so neither access logs nor Referer headers can carry it.
 *
 * Where the data comes from, and why it is cheap and bounded:
 *   - pools and replicas, lag, throughput and error series, breaker states: every process's
 *     heartbeat in Redis (lib/opsbeat.h), one HGETALL per call;
 *   - DLQ size: the high minus low watermarks of phx.dlq's partitions, asked of the brokers at
 *     most every PHX_OPS_DLQ_CACHE_MS by one caller at a time (others get the cached figure);
 *   - recent jobs: the ring the phx.events tail keeps anyway (events.c);
 *   - a job's timeline: lib/jobtrace.c, the code behind `phx trace`, which reads phx.events and
 *     phx.results as snapshots -- the one expensive call, so at most PHX_OPS_TRACES run at once
 *     per ingress (503 with Retry-After beyond) and each topic read is bounded by
 *     PHX_OPS_TRACE_TIMEOUT_MS. */
#include "ingress_int.h"
#include "jobtrace.h"
#include "msg.h"
#include "opsbeat.h"
#include "schemas_embedded.h"
#include "util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define PHX_OPS_DLQ_CACHE_MS     5000
#define PHX_OPS_TRACES           2
#define PHX_OPS_TRACE_TIMEOUT_MS 5000
#define PHX_OPS_RECENT           50

/* Generated from ops/page/ by ops/build/embed-files.sh (build/gen/ops_assets.c). */
extern const phx_embedded_file phx_ops_assets[];
extern const int phx_ops_assets_count;

struct phx_ops {
    pthread_mutex_t mu; /* the DLQ cache; held while refreshing it */
    int64_t dlq_at_ms;  /* 0 = never measured */
    long long dlq_messages;
    int dlq_partitions;
    char dlq_error[160];
    atomic_int traces; /* timelines being read now */
};

phx_ops *phx_ops_new(void)
{
    phx_ops *ops = calloc(1, sizeof(*ops));
    pthread_mutex_init(&ops->mu, NULL);
    return ops;
}

void phx_ops_free(phx_ops *ops)
{
    if (!ops)
        return;
    pthread_mutex_destroy(&ops->mu);
    free(ops);
}

/* --- the static page --------------------------------------------------------------------- */

static const char *phx_ops_ctype(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot && strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (dot && strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    return "text/html; charset=utf-8";
}

int phx_ops_static(const char *method, const char *url, phx_answer *a)
{
    const char *name;
    if (strcmp(url, "/ops") == 0 || strcmp(url, "/ops/") == 0)
        name = "index.html";
    else if (strncmp(url, "/ops/", 5) == 0)
        name = url + 5;
    else
        return 0;
    const phx_embedded_file *f = NULL;
    for (int i = 0; i < phx_ops_assets_count && !f; i++)
        if (strcmp(phx_ops_assets[i].name, name) == 0)
            f = &phx_ops_assets[i];
    if (!f) {
        phx_problem(a, 404, "not_found", "Not found", "no such file of the ops page", NULL);
        return 1;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        phx_problem(a, 405, "method_not_allowed", "Method not allowed", NULL, NULL);
        return 1;
    }
    a->status = 200;
    a->stream =
        MHD_create_response_from_buffer(strlen(f->text), (void *)f->text, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(a->stream, "Content-Type", phx_ops_ctype(name));
    /* Only our own files and our own API: no inline script, no third party, no framing. */
    MHD_add_response_header(a->stream, "Content-Security-Policy",
                            "default-src 'none'; script-src 'self'; style-src 'self'; "
                            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                            "form-action 'none'; frame-ancestors 'none'");
    MHD_add_response_header(a->stream, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(a->stream, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(a->stream, "Cache-Control", "no-cache");
    return 1;
}

/* --- GET /v1/ops/overview ---------------------------------------------------------------- */

/* Add src's series into dst's (both {step_ms, last_slot, ok, err}), slot by slot. */
static void phx_ops_series_add(json_t *dst, const json_t *src)
{
    json_int_t dl = json_integer_value(json_object_get(dst, "last_slot"));
    json_int_t sl = json_integer_value(json_object_get(src, "last_slot"));
    const char *keys[] = {"ok", "err"};
    for (int k = 0; k < 2; k++) {
        json_t *d = json_object_get(dst, keys[k]), *s = json_object_get(src, keys[k]);
        size_t dn = json_array_size(d), sn = json_array_size(s);
        for (size_t i = 0; i < sn; i++) {
            /* slot of s[i] = sl - (sn-1-i); its place in d = dn-1 - (dl - slot) */
            json_int_t slot = sl - (json_int_t)(sn - 1 - i);
            json_int_t j = (json_int_t)dn - 1 - (dl - slot);
            if (j < 0 || j >= (json_int_t)dn)
                continue;
            json_t *cell = json_array_get(d, (size_t)j);
            json_array_set_new(
                d, (size_t)j,
                json_real(json_number_value(cell) + json_number_value(json_array_get(s, i))));
        }
    }
}

static const char *phx_ops_worse(const char *a, const char *b)
{
    /* open > half_open > closed */
    if (!a || strcmp(b, "open") == 0 || (strcmp(b, "half_open") == 0 && strcmp(a, "open") != 0))
        return b;
    return a;
}

/* Group the processes by proc: replicas alive and ready, summed lag, busy and threads, the
 * worst state of each breaker, and the series of the live replicas added up. */
static json_t *phx_ops_pools(json_t *procs, int64_t now_ms)
{
    json_t *pools = json_array(), *p;
    size_t i;
    json_int_t last_slot = now_ms / PHX_OPSBEAT_INTERVAL_MS;
    json_array_foreach(procs, i, p)
    {
        const char *proc = json_string_value(json_object_get(p, "proc"));
        json_t *pool = json_array_get(pools, json_array_size(pools) - 1);
        if (!pool || strcmp(json_string_value(json_object_get(pool, "pool")), proc) != 0) {
            json_t *ok = json_array(), *err = json_array();
            for (int k = 0; k < PHX_OPSBEAT_SLOTS; k++) {
                json_array_append_new(ok, json_real(0));
                json_array_append_new(err, json_real(0));
            }
            pool = json_pack("{s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:{}, s:{s:i, s:I, s:o, "
                             "s:o}, s:[]}",
                             "pool", proc, "replicas", 0, "ready", 0, "gone", 0, "lag", 0.0,
                             "lag_max", 0.0, "busy", 0.0, "threads", 0.0, "breakers", "series",
                             "step_ms", PHX_OPSBEAT_INTERVAL_MS, "last_slot", last_slot, "ok", ok,
                             "err", err, "instances");
            json_array_append_new(pools, pool);
        }
        json_t *series = json_object_get(p, "series");
        json_incref(series);
        json_object_del(p, "series"); /* the instance list stays small */
        json_array_append(json_object_get(pool, "instances"), p);
        if (!json_is_true(json_object_get(p, "alive"))) {
            json_object_set_new(
                pool, "gone", json_integer(json_integer_value(json_object_get(pool, "gone")) + 1));
            json_decref(series);
            continue;
        }
        const char *sum[][2] = {{"replicas", NULL}, {"ready", "ready"}};
        for (int k = 0; k < 2; k++)
            if (!sum[k][1] || json_is_true(json_object_get(p, sum[k][1])))
                json_object_set_new(
                    pool, sum[k][0],
                    json_integer(json_integer_value(json_object_get(pool, sum[k][0])) + 1));
        const char *add[] = {"lag", "busy", "threads"};
        for (int k = 0; k < 3; k++)
            json_object_set_new(pool, add[k],
                                json_real(json_number_value(json_object_get(pool, add[k])) +
                                          json_number_value(json_object_get(p, add[k]))));
        double lm = json_number_value(json_object_get(p, "lag_max"));
        if (lm > json_number_value(json_object_get(pool, "lag_max")))
            json_object_set_new(pool, "lag_max", json_real(lm));
        const char *bname;
        json_t *bstate, *pb = json_object_get(pool, "breakers");
        json_object_foreach(json_object_get(p, "breakers"), bname, bstate)
        {
            const char *w = phx_ops_worse(json_string_value(json_object_get(pb, bname)),
                                          json_string_value(bstate) ?: "closed");
            json_object_set_new(pb, bname, json_string(w));
        }
        phx_ops_series_add(json_object_get(pool, "series"), series);
        json_decref(series);
    }
    return pools;
}

/* phx.dlq's size from the brokers' watermarks, cached; the first caller past the cache's age
 * refreshes it while the others answer with the cached figure. */
static json_t *phx_ops_dlq(phx_ingress *in)
{
    phx_ops *ops = in->ops;
    int64_t now = phx_mono_ms();
    if (pthread_mutex_trylock(&ops->mu) == 0) {
        if (!ops->dlq_at_ms || now - ops->dlq_at_ms >= PHX_OPS_DLQ_CACHE_MS) {
            rd_kafka_t *rk = phx_producer_handle(in->producer);
            const struct rd_kafka_metadata *md = NULL;
            rd_kafka_topic_t *t = rd_kafka_topic_new(rk, PHX_TOPIC_DLQ, NULL);
            rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 2000);
            rd_kafka_topic_destroy(t);
            long long total = 0;
            int nparts = 0;
            if (!e && md->topic_cnt == 1 && !md->topics[0].err) {
                nparts = md->topics[0].partition_cnt;
                for (int i = 0; i < nparts && !e; i++) {
                    int64_t lo = 0, hi = 0;
                    e = rd_kafka_query_watermark_offsets(
                        rk, PHX_TOPIC_DLQ, md->topics[0].partitions[i].id, &lo, &hi, 1000);
                    total += hi > lo ? hi - lo : 0;
                }
            } else if (!e) {
                e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
            }
            if (md)
                rd_kafka_metadata_destroy(md);
            if (e) {
                snprintf(ops->dlq_error, sizeof(ops->dlq_error), "%s: %s", PHX_TOPIC_DLQ,
                         rd_kafka_err2str(e));
            } else {
                ops->dlq_error[0] = '\0';
                ops->dlq_messages = total;
                ops->dlq_partitions = nparts;
            }
            ops->dlq_at_ms = phx_mono_ms();
        }
        pthread_mutex_unlock(&ops->mu);
    }
    pthread_mutex_lock(&ops->mu);
    now = phx_mono_ms();
    json_t *o = json_pack("{s:s, s:I, s:i, s:I}", "topic", PHX_TOPIC_DLQ, "messages",
                          (json_int_t)ops->dlq_messages, "partitions", ops->dlq_partitions,
                          "age_ms", (json_int_t)(ops->dlq_at_ms ? now - ops->dlq_at_ms : -1));
    if (ops->dlq_error[0])
        json_object_set_new(o, "error", json_string(ops->dlq_error));
    pthread_mutex_unlock(&ops->mu);
    return o;
}

void phx_ops_overview(const phx_ctx *c, phx_answer *a)
{
    phx_err err;
    phx_err_clear(&err);
    int64_t now = phx_now_ms();
    phx_redis *r = phx_ingress_redis_get(c->in, &err);
    json_t *procs = r ? phx_opsbeat_read(r, now, &err) : NULL;
    if (r)
        phx_ingress_redis_put(c->in, r);
    if (!procs) {
        phx_unavailable(a, err.message);
        return;
    }
    json_t *pools = phx_ops_pools(procs, now);
    json_decref(procs);
    phx_ok(a, 200,
           json_pack("{s:I, s:i, s:i, s:o, s:o, s:o}", "now_ms", (json_int_t)now, "stale_ms",
                     PHX_OPSBEAT_STALE_MS, "slots", PHX_OPSBEAT_SLOTS, "pools", pools, "dlq",
                     phx_ops_dlq(c->in), "recent_jobs",
                     phx_events_recent(c->in->events, PHX_OPS_RECENT)));
}

/* --- GET /v1/ops/jobs/{id}/trace --------------------------------------------------------- */

void phx_ops_trace(const phx_ctx *c, phx_answer *a)
{
    phx_ops *ops = c->in->ops;
    if (!phx_id_valid(c->arg)) {
        phx_problem(a, 404, "not_found", "No such job", NULL, NULL);
        return;
    }
    if (atomic_fetch_add(&ops->traces, 1) >= PHX_OPS_TRACES) {
        atomic_fetch_sub(&ops->traces, 1);
        phx_unavailable(a, "enough timelines are being read right now; retry in a moment");
        return;
    }
    phx_err err;
    phx_err_clear(&err);
    int partial = 0;
    json_t *o = NULL;
    phx_redis *r = phx_ingress_redis_get(c->in, &err);
    if (r) {
        o = phx_jobtrace_collect(r, c->in->cfg->common.kafka_brokers, c->arg,
                                 PHX_OPS_TRACE_TIMEOUT_MS, &partial, &err);
        phx_ingress_redis_put(c->in, r);
    }
    atomic_fetch_sub(&ops->traces, 1);
    if (!o) {
        if (r && strcmp(err.code, "not_found") == 0)
            phx_problem(a, 404, "not_found", "No such job", err.message, NULL);
        else
            phx_unavailable(a, err.message);
        return;
    }
    json_object_set_new(o, "job_id", json_string(c->arg));
    json_object_set_new(o, "partial", json_boolean(partial));
    if (partial)
        json_object_set_new(o, "detail", json_string(err.message));
    phx_ok(a, 200, o);
}
