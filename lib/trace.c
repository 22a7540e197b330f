/* trace.c -- spans, the JSON-log record of each, and the OTLP/HTTP JSON exporter (trace.h).
 *
 * The export queue is a ring of span copies guarded by one mutex. The producer side (every
 * thread that ends a span) only copies; one exporter thread takes up to a batch at a time and
 * posts it with libcurl, so a slow or dead collector costs dropped spans (counted), never
 * latency on the hot path. A batch goes out when it is full or every PHX_TRACE_FLUSH_MS,
 * whichever comes first. There is no retry of a failed post: the next batch is newer and just
 * as useful, and retrying would let a dead collector hold the queue full. */
#include "trace.h"
#include "log.h"
#include "metrics.h"
#include "redact.h"
#include "util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PHX_TRACE_BATCH    256
#define PHX_TRACE_FLUSH_MS 500

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    phx_span *ring;
    size_t cap, head, n;
    int running, stop;
    pthread_t tid;
    char service[64];
    char *endpoint;
    long timeout_ms;
    int64_t stop_by_ms; /* shutdown: give up on what is left after this (monotonic) */
    phx_metric *m_queue_full, *m_export_failed, *m_exported, *m_queued;
} phx_tracer = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static __thread phx_span *phx_trace_cur;

static int64_t phx_trace_clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Span ids need uniqueness, not secrecy: the thread-local PRNG (seeded from getrandom) avoids a
 * system call per Redis command. */
static void phx_trace_hex_id(char *out, int nwords)
{
    for (int i = 0; i < nwords; i++)
        snprintf(out + 16 * i, 17, "%016llx", (unsigned long long)phx_rand_u64());
}

static int phx_trace_parse(const char *tp, char trace[33], char span[17])
{
    if (!tp || strlen(tp) != 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
        return -1;
    for (int i = 3; i < 52; i++)
        if (i != 35 && !((tp[i] >= '0' && tp[i] <= '9') || (tp[i] >= 'a' && tp[i] <= 'f')))
            return -1;
    memcpy(trace, tp + 3, 32);
    trace[32] = '\0';
    memcpy(span, tp + 36, 16);
    span[16] = '\0';
    return strspn(trace, "0") == 32 || strspn(span, "0") == 16 ? -1 : 0;
}

static void phx_span_begin(phx_span *s, const char *name, enum phx_span_kind kind)
{
    s->active = 1;
    s->kind = kind;
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->job_id[0] = '\0';
    s->error = 0;
    s->status_msg[0] = '\0';
    s->nattrs = 0;
    phx_trace_hex_id(s->span_id, 1);
    s->start_ns = phx_trace_clock_ns(CLOCK_REALTIME);
    s->mono_ns = phx_trace_clock_ns(CLOCK_MONOTONIC);
    s->outer = phx_trace_cur;
    phx_trace_cur = s;
}

void phx_span_start(phx_span *s, const char *name, enum phx_span_kind kind, const char *parent)
{
    if (phx_trace_parse(parent, s->trace_id, s->parent_id) < 0) {
        if (phx_trace_cur) {
            memcpy(s->trace_id, phx_trace_cur->trace_id, sizeof(s->trace_id));
            memcpy(s->parent_id, phx_trace_cur->span_id, sizeof(s->parent_id));
        } else {
            phx_trace_hex_id(s->trace_id, 2);
            s->parent_id[0] = '\0';
        }
    }
    phx_span_begin(s, name, kind);
    if (s->outer && s->outer->job_id[0])
        memcpy(s->job_id, s->outer->job_id, sizeof(s->job_id));
}

int phx_span_call(phx_span *s, const char *name, enum phx_span_kind kind)
{
    s->active = 0;
    if (!phx_trace_cur)
        return 0;
    phx_span_start(s, name, kind, NULL);
    return 1;
}

void phx_span_set(phx_span *s, const char *key, const char *fmt, ...)
{
    if (!s->active || s->nattrs >= PHX_SPAN_MAX_ATTRS)
        return;
    va_list ap;
    va_start(ap, fmt);
    snprintf(s->attrs[s->nattrs].key, sizeof(s->attrs[0].key), "%s", key);
    vsnprintf(s->attrs[s->nattrs].val, sizeof(s->attrs[0].val), fmt, ap);
    va_end(ap);
    phx_redact_buf(s->attrs[s->nattrs].val, sizeof(s->attrs[0].val));
    phx_utf8_scrub(s->attrs[s->nattrs].val);
    s->nattrs++;
}

void phx_span_job(phx_span *s, const char *job_id)
{
    if (s->active && job_id) {
        snprintf(s->job_id, sizeof(s->job_id), "%s", job_id);
        phx_utf8_scrub(s->job_id);
    }
}

void phx_span_fail(phx_span *s, const char *fmt, ...)
{
    if (!s->active)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->status_msg, sizeof(s->status_msg), fmt, ap);
    va_end(ap);
    phx_redact_buf(s->status_msg, sizeof(s->status_msg));
    phx_utf8_scrub(s->status_msg);
    s->error = 1;
}

void phx_span_traceparent(const phx_span *s, char out[56])
{
    snprintf(out, 56, "00-%s-%s-01", s->trace_id, s->span_id);
}

int phx_trace_current(char out[56])
{
    if (!phx_trace_cur)
        return -1;
    phx_span_traceparent(phx_trace_cur, out);
    return 0;
}

const char *phx_trace_current_job(void)
{
    return phx_trace_cur && phx_trace_cur->job_id[0] ? phx_trace_cur->job_id : NULL;
}

static void phx_trace_enqueue(const phx_span *s)
{
    pthread_mutex_lock(&phx_tracer.mu);
    if (!phx_tracer.running || phx_tracer.stop) {
        pthread_mutex_unlock(&phx_tracer.mu);
        return;
    }
    if (phx_tracer.n == phx_tracer.cap) {
        pthread_mutex_unlock(&phx_tracer.mu);
        phx_metric_add(phx_tracer.m_queue_full, 1);
        return;
    }
    phx_tracer.ring[(phx_tracer.head + phx_tracer.n) % phx_tracer.cap] = *s;
    phx_tracer.n++;
    /* Wake the exporter for a full batch, or when a small queue is half full. */
    if (phx_tracer.n ==
        (phx_tracer.cap / 2 < PHX_TRACE_BATCH ? phx_tracer.cap / 2 : PHX_TRACE_BATCH))
        pthread_cond_signal(&phx_tracer.cv);
    pthread_mutex_unlock(&phx_tracer.mu);
}

/* The span's record in the JSON log (msg "span NAME"). */
static void phx_span_log(const phx_span *s)
{
    char tp[56];
    phx_span_traceparent(s, tp);
    phx_logf f;
    phx_logf_init(&f);
    phx_logf_str(&f, "span", s->name);
    if (s->parent_id[0])
        phx_logf_str(&f, "parent_id", s->parent_id);
    phx_logf_num(&f, "duration_ms", (double)(s->end_ns - s->start_ns) / 1e6);
    if (s->nattrs) {
        phx_logf_begin(&f, "attrs");
        for (int i = 0; i < s->nattrs; i++)
            phx_logf_str(&f, s->attrs[i].key, s->attrs[i].val);
        phx_logf_end(&f);
    }
    if (s->error)
        phx_logf_str(&f, "error", s->status_msg);
    phx_log_fields(PHX_LOG_INFO, s->job_id[0] ? s->job_id : NULL, tp, &f, "span %s", s->name);
}

void phx_span_end(phx_span *s)
{
    if (!s->active)
        return;
    s->active = 0;
    s->end_ns = s->start_ns + (phx_trace_clock_ns(CLOCK_MONOTONIC) - s->mono_ns);
    /* Spans end in reverse order of their start; if a caller broke that, unwinding to this
     * span's outer one keeps the thread's context sane rather than pointing at a dead frame. */
    phx_trace_cur = s->outer;
    /* The log record is built only when it will be written: at PHX_LOG_LEVEL=warn (busy
     * production) the JSON of every span of every request was built and thrown away. */
    if (phx_log_enabled(PHX_LOG_INFO))
        phx_span_log(s);
    phx_trace_enqueue(s);
}

void phx_span_detach(phx_span *s)
{
    if (phx_trace_cur == s)
        phx_trace_cur = s->outer;
}

/* --- OTLP/HTTP JSON export ------------------------------------------------------------- */

static json_t *phx_trace_kv(const char *key, const char *val)
{
    return json_pack("{s:s, s:{s:s}}", "key", key, "value", "stringValue", val);
}

static json_t *phx_trace_otlp_span(const phx_span *s)
{
    char t[24];
    json_t *o = json_object();
    json_object_set_new(o, "traceId", json_string(s->trace_id));
    json_object_set_new(o, "spanId", json_string(s->span_id));
    if (s->parent_id[0])
        json_object_set_new(o, "parentSpanId", json_string(s->parent_id));
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "kind", json_integer(s->kind));
    /* OTLP/JSON carries 64-bit integers as decimal strings (JSON numbers lose precision). */
    snprintf(t, sizeof(t), "%lld", (long long)s->start_ns);
    json_object_set_new(o, "startTimeUnixNano", json_string(t));
    snprintf(t, sizeof(t), "%lld", (long long)s->end_ns);
    json_object_set_new(o, "endTimeUnixNano", json_string(t));
    json_t *attrs = json_array();
    if (s->job_id[0])
        json_array_append_new(attrs, phx_trace_kv("phx.job_id", s->job_id));
    for (int i = 0; i < s->nattrs; i++)
        json_array_append_new(attrs, phx_trace_kv(s->attrs[i].key, s->attrs[i].val));
    json_object_set_new(o, "attributes", attrs);
    json_object_set_new(o, "status",
                        s->error ? json_pack("{s:i, s:s}", "code", 2, "message", s->status_msg)
                                 : json_pack("{s:i}", "code", 0));
    return o;
}

static char *phx_trace_otlp_body(const phx_span *spans, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, phx_trace_otlp_span(&spans[i]));
    json_t *root = json_pack("{s:[{s:{s:[o]}, s:[{s:{s:s}, s:o}]}]}", "resourceSpans", "resource",
                             "attributes", phx_trace_kv("service.name", phx_tracer.service),
                             "scopeSpans", "scope", "name", "phoenix", "spans", arr);
    char *body = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return body;
}

static size_t phx_trace_discard(void *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return sz * n;
}

/* Post one batch; 0 when the collector answered 2xx. */
static int phx_trace_post(CURL *h, const phx_span *spans, size_t n, char *why, size_t whylen)
{
    char *body = phx_trace_otlp_body(spans, n);
    if (!body) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, phx_tracer.endpoint);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, phx_tracer.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, phx_tracer.timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, phx_trace_discard);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdrs);
    free(body);
    if (rc != CURLE_OK) {
        snprintf(why, whylen, "%s", curl_easy_strerror(rc));
        return -1;
    }
    if (code < 200 || code > 299) {
        snprintf(why, whylen, "collector answered HTTP %ld", code);
        return -1;
    }
    return 0;
}

static void *phx_trace_main(void *arg)
{
    (void)arg;
    phx_span *batch = phx_xmalloc(PHX_TRACE_BATCH * sizeof(*batch));
    CURL *h = curl_easy_init();
    int64_t last_warn = 0;
    for (;;) {
        pthread_mutex_lock(&phx_tracer.mu);
        if (phx_tracer.n < phx_tracer.cap / 2 && phx_tracer.n < PHX_TRACE_BATCH &&
            !phx_tracer.stop) {
            struct timespec until = phx_deadline_ms(CLOCK_MONOTONIC, PHX_TRACE_FLUSH_MS);
            pthread_cond_timedwait(&phx_tracer.cv, &phx_tracer.mu, &until);
        }
        size_t k = phx_tracer.n < PHX_TRACE_BATCH ? phx_tracer.n : PHX_TRACE_BATCH;
        for (size_t i = 0; i < k; i++)
            batch[i] = phx_tracer.ring[(phx_tracer.head + i) % phx_tracer.cap];
        phx_tracer.head = (phx_tracer.head + k) % phx_tracer.cap;
        phx_tracer.n -= k;
        int stop = phx_tracer.stop;
        size_t left = phx_tracer.n;
        if (stop && left > 0 && phx_mono_ms() >= phx_tracer.stop_by_ms) {
            phx_metric_add(phx_tracer.m_export_failed, (double)left);
            phx_tracer.n = left = 0;
        }
        pthread_mutex_unlock(&phx_tracer.mu);
        phx_metric_set(phx_tracer.m_queued, (double)left);
        if (k > 0 && batch && h) {
            char why[256];
            if (phx_trace_post(h, batch, k, why, sizeof(why)) == 0) {
                phx_metric_add(phx_tracer.m_exported, (double)k);
            } else {
                phx_metric_add(phx_tracer.m_export_failed, (double)k);
                /* One line per 10 s at most: a dead collector must not flood the log. */
                if (phx_mono_ms() - last_warn >= 10000) {
                    last_warn = phx_mono_ms();
                    phx_log_warn("trace export to %s failed: %s (%zu spans dropped)",
                                 phx_tracer.endpoint, why, k);
                }
            }
        } else if (k > 0) {
            phx_metric_add(phx_tracer.m_export_failed, (double)k);
        }
        if (stop && left == 0)
            break;
    }
    if (h)
        curl_easy_cleanup(h);
    free(batch);
    return NULL;
}

int phx_trace_init(const char *service, const char *endpoint, long timeout_ms, long queue_max,
                   char *err, size_t errlen)
{
    pthread_mutex_lock(&phx_tracer.mu);
    int done = phx_tracer.running;
    if (!done)
        snprintf(phx_tracer.service, sizeof(phx_tracer.service), "%s", service);
    pthread_mutex_unlock(&phx_tracer.mu);
    if (done || !endpoint || !*endpoint)
        return 0;
    if (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0) {
        snprintf(err, errlen, "PHX_OTLP_ENDPOINT=%s: must be an http:// or https:// URL", endpoint);
        return -1;
    }
    phx_tracer.m_queue_full =
        phx_counter("phx_trace_spans_dropped_total",
                    "Spans not exported: the queue was full (collector slow) or the post failed.",
                    "reason=\"queue_full\"");
    phx_tracer.m_export_failed =
        phx_counter("phx_trace_spans_dropped_total",
                    "Spans not exported: the queue was full (collector slow) or the post failed.",
                    "reason=\"export_failed\"");
    phx_tracer.m_exported =
        phx_counter("phx_trace_spans_exported_total", "Spans the OTLP collector accepted.", NULL);
    phx_tracer.m_queued =
        phx_gauge("phx_trace_queue_spans", "Spans waiting in the export queue.", NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_mutex_lock(&phx_tracer.mu);
    phx_tracer.endpoint = phx_xstrdup(endpoint);
    phx_tracer.timeout_ms = timeout_ms;
    phx_tracer.cap = (size_t)queue_max;
    phx_tracer.ring = calloc(phx_tracer.cap, sizeof(phx_span));
    phx_tracer.head = phx_tracer.n = 0;
    phx_tracer.stop = 0;
    /* its waits are on the monotonic clock; under mu, as every signal of it is */
    phx_cond_init_monotonic(&phx_tracer.cv);
    int rc = phx_tracer.ring ? pthread_create(&phx_tracer.tid, NULL, phx_trace_main, NULL) : -1;
    phx_tracer.running = rc == 0;
    pthread_mutex_unlock(&phx_tracer.mu);
    if (rc != 0) {
        snprintf(err, errlen, "trace exporter: cannot start its thread");
        return -1;
    }
    return 0;
}

void phx_trace_shutdown(long wait_ms)
{
    pthread_mutex_lock(&phx_tracer.mu);
    int running = phx_tracer.running;
    if (running) {
        /* Posts go on until the queue is empty or wait_ms has passed (plus the one post in
         * flight then, bounded by PHX_OTLP_TIMEOUT_MS); what is left is counted as dropped. */
        phx_tracer.stop = 1;
        phx_tracer.stop_by_ms = phx_mono_ms() + wait_ms;
        pthread_cond_signal(&phx_tracer.cv);
    }
    pthread_mutex_unlock(&phx_tracer.mu);
    if (!running)
        return;
    pthread_join(phx_tracer.tid, NULL);
    pthread_mutex_lock(&phx_tracer.mu);
    phx_tracer.running = 0;
    free(phx_tracer.ring);
    phx_tracer.ring = NULL;
    free(phx_tracer.endpoint);
    phx_tracer.endpoint = NULL;
    pthread_mutex_unlock(&phx_tracer.mu);
}
