/* events.c -- GET /v1/jobs/{id}/events: Server-Sent Events from phx.events.
 *
 * One thread per ingress tails phx.events (every partition, from the end at start; no
 * consumer group, so replicas do not share the stream and each sees every event) and hands
 * each event to the streams watching its job id (the Kafka key). A stream first sends a
 * `snapshot` event with the job's current view -- so a client that connects late loses
 * nothing that matters -- then the live events, and ends after the job's final event.
 *
 * Streams must not hold libmicrohttpd's worker threads, which serve many connections each:
 * when a stream has nothing to send, its content reader suspends the connection and the tail
 * thread resumes it when data arrives (or every 15 s with a comment line, which also notices
 * clients that went away).
 *
 * The same tail keeps the ops page's "recent jobs" (phx_events_recent): the last
 * PHX_RECENT_JOBS jobs that had an event, with their latest state, in a fixed ring. It costs
 * the pipeline nothing (the events are read anyway) and is bounded; what it cannot know is
 * what happened before this ingress started, or while SSE is disabled (PHX_INGRESS_MAX_STREAMS
 * =0 stops the tail). */
#include "ingress_int.h"
#include "jobstore.h"
#include "kafka.h"
#include "log.h"
#include "msg.h"
#include "util.h"

#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

#define PHX_SSE_KEEPALIVE_MS 15000
#define PHX_RECENT_JOBS      100

/* One job of the recent-jobs ring. */
typedef struct phx_recent {
    char job[129], tenant[65], state[24], last[32];
    int64_t first_ms, last_ms, seq; /* seq: 0 = empty; larger = touched later */
    int events;
} phx_recent;

typedef struct phx_stream {
    struct phx_stream *next;
    phx_events *ev;
    struct MHD_Connection *conn;
    char job[160];
    char *buf; /* queued bytes not yet handed to libmicrohttpd */
    size_t len, off;
    int done, suspended;
} phx_stream;

struct phx_events {
    rd_kafka_t *rk;
    pthread_t th;
    int running, stop;
    long max_streams;
    pthread_mutex_t mu;
    phx_stream *streams;
    long nstreams;
    phx_recent recent[PHX_RECENT_JOBS]; /* under mu */
    int64_t recent_seq;
};

/* Queue bytes on a stream and wake its connection (ev->mu held). */
static void phx_stream_push(phx_stream *s, const char *data, size_t n)
{
    s->buf = phx_xrealloc(s->buf, s->len + n);
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    if (s->suspended) {
        s->suspended = 0;
        MHD_resume_connection(s->conn);
    }
}

/* Put bytes in front of everything queued (ev->mu held). The snapshot goes this way: live
 * events that the tail thread delivered while the snapshot was being read must follow it,
 * since clients (and the protocol's promise) expect the snapshot first. */
static void phx_stream_unshift(phx_stream *s, const char *data, size_t n)
{
    char *nb = phx_xmalloc(s->len - s->off + n);
    memcpy(nb, data, n);
    if (s->len > s->off)
        memcpy(nb + n, s->buf + s->off, s->len - s->off);
    free(s->buf);
    s->buf = nb;
    s->len = s->len - s->off + n;
    s->off = 0;
    if (s->suspended) {
        s->suspended = 0;
        MHD_resume_connection(s->conn);
    }
}

static void phx_stream_finish(phx_stream *s)
{
    s->done = 1;
    if (s->suspended) {
        s->suspended = 0;
        MHD_resume_connection(s->conn);
    }
}

static int phx_events_final(const char *type)
{
    return strcmp(type, "job.succeeded") == 0 || strcmp(type, "job.failed") == 0 ||
           strcmp(type, "job.cancelled") == 0 || strcmp(type, "job.rejected") == 0;
}

/* The state an event moves its job to, or NULL when it does not change it. */
static const char *phx_recent_state(const char *type)
{
    static const char *const map[][2] = {
        {"job.accepted", "running"},    {"job.succeeded", "succeeded"},
        {"job.failed", "failed"},       {"job.deadline_exceeded", "failed"},
        {"job.cancelled", "cancelled"}, {"job.rejected", "rejected"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(type, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* Note an event in the recent-jobs ring: update the job's entry, or take the least recently
 * touched one. A linear scan of 100 entries per event is cheaper than any index would be. */
static void phx_recent_note(phx_events *ev, const char *job, const rd_kafka_message_t *m)
{
    json_t *e = json_loadb(m->payload, m->len, 0, NULL);
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *tenant = json_string_value(json_object_get(e, "tenant"));
    json_int_t ts = json_integer_value(json_object_get(e, "ts_ms"));
    if (!type || !phx_id_valid(job)) {
        json_decref(e);
        return;
    }
    pthread_mutex_lock(&ev->mu);
    phx_recent *r = NULL, *oldest = &ev->recent[0];
    for (int i = 0; i < PHX_RECENT_JOBS && !r; i++) {
        if (ev->recent[i].seq && strcmp(ev->recent[i].job, job) == 0)
            r = &ev->recent[i];
        else if (ev->recent[i].seq < oldest->seq)
            oldest = &ev->recent[i];
    }
    if (!r) {
        r = oldest;
        memset(r, 0, sizeof(*r));
        snprintf(r->job, sizeof(r->job), "%s", job);
        snprintf(r->state, sizeof(r->state), "running");
        r->first_ms = ts;
    }
    if (tenant)
        snprintf(r->tenant, sizeof(r->tenant), "%s", tenant);
    const char *st = phx_recent_state(type);
    if (st)
        snprintf(r->state, sizeof(r->state), "%s", st);
    snprintf(r->last, sizeof(r->last), "%s", type);
    r->last_ms = ts;
    r->events++;
    r->seq = ++ev->recent_seq;
    pthread_mutex_unlock(&ev->mu);
    json_decref(e);
}

static int phx_recent_by_seq(const void *a, const void *b)
{
    const phx_recent *x = a, *y = b;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

json_t *phx_events_recent(phx_events *ev, int limit)
{
    phx_recent *copy = malloc(sizeof(ev->recent));
    pthread_mutex_lock(&ev->mu);
    memcpy(copy, ev->recent, sizeof(ev->recent));
    pthread_mutex_unlock(&ev->mu);
    qsort(copy, PHX_RECENT_JOBS, sizeof(*copy), phx_recent_by_seq);
    json_t *out = json_array();
    for (int i = 0; i < PHX_RECENT_JOBS && i < limit && copy[i].seq; i++) {
        const phx_recent *r = &copy[i];
        json_array_append_new(out,
                              json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:i}", "job_id", r->job,
                                        "tenant", r->tenant, "state", r->state, "last_event",
                                        r->last, "first_ms", (json_int_t)r->first_ms, "last_ms",
                                        (json_int_t)r->last_ms, "events", r->events));
    }
    free(copy);
    return out;
}

/* One Kafka message: to the recent-jobs ring, and to every stream of its job. */
static void phx_events_dispatch(phx_events *ev, const rd_kafka_message_t *m)
{
    if (!m->key || m->key_len >= 160 || !m->payload)
        return;
    char job[160];
    memcpy(job, m->key, m->key_len);
    job[m->key_len] = '\0';
    phx_recent_note(ev, job, m);
    pthread_mutex_lock(&ev->mu);
    phx_stream *s = ev->streams;
    while (s && strcmp(s->job, job) != 0)
        s = s->next;
    if (!s) {
        pthread_mutex_unlock(&ev->mu);
        return;
    }
    pthread_mutex_unlock(&ev->mu);
    json_t *e = json_loadb(m->payload, m->len, 0, NULL);
    const char *type = json_string_value(json_object_get(e, "type"));
    if (!type || strchr(type, '\n')) {
        json_decref(e);
        return;
    }
    char *data = json_dumps(e, JSON_COMPACT);
    size_t cap = strlen(data) + strlen(type) + 96;
    char *frame = phx_xmalloc(cap);
    int n = snprintf(frame, cap, "id: %d:%lld\nevent: %s\ndata: %s\n\n", (int)m->partition,
                     (long long)m->offset, type, data);
    pthread_mutex_lock(&ev->mu);
    for (s = ev->streams; s; s = s->next) {
        if (s->done || strcmp(s->job, job) != 0)
            continue;
        phx_stream_push(s, frame, (size_t)n);
        if (phx_events_final(type))
            phx_stream_finish(s);
    }
    pthread_mutex_unlock(&ev->mu);
    free(frame);
    free(data);
    json_decref(e);
}

static void phx_events_keepalive(phx_events *ev)
{
    pthread_mutex_lock(&ev->mu);
    for (phx_stream *s = ev->streams; s; s = s->next)
        if (!s->done)
            phx_stream_push(s, ": keepalive\n\n", 13);
    pthread_mutex_unlock(&ev->mu);
}

static void *phx_events_run(void *arg)
{
    phx_events *ev = arg;
    int64_t last = phx_mono_ms();
    while (!__atomic_load_n(&ev->stop, __ATOMIC_ACQUIRE)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ev->rk, 200);
        if (m) {
            if (!m->err)
                phx_events_dispatch(ev, m);
            rd_kafka_message_destroy(m);
        }
        if (phx_mono_ms() - last >= PHX_SSE_KEEPALIVE_MS) {
            phx_events_keepalive(ev);
            last = phx_mono_ms();
        }
    }
    return NULL;
}

/* Assign every partition of phx.events at its end. */
static int phx_events_assign(phx_events *ev, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(ev->rk, PHX_TOPIC_EVENTS, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(ev->rk, 0, t, &md, 5000);
    rd_kafka_topic_destroy(t);
    if (e || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
        snprintf(err, errlen, "%s: no metadata (%s)", PHX_TOPIC_EVENTS,
                 e ? rd_kafka_err2str(e) : "topic unknown");
        if (md)
            rd_kafka_metadata_destroy(md);
        return -1;
    }
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(l, PHX_TOPIC_EVENTS, md->topics[0].partitions[i].id)
            ->offset = RD_KAFKA_OFFSET_END;
    rd_kafka_metadata_destroy(md);
    e = rd_kafka_assign(ev->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        snprintf(err, errlen, "%s: assign: %s", PHX_TOPIC_EVENTS, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

phx_events *phx_events_start(const char *brokers, long max_streams, char *err, size_t errlen)
{
    phx_err e;
    char es[256];
    phx_events *ev = phx_xcalloc(1, sizeof(*ev));
    ev->max_streams = max_streams;
    pthread_mutex_init(&ev->mu, NULL);
    if (max_streams == 0)
        return ev; /* SSE disabled */
    rd_kafka_conf_t *conf = phx_kafka_conf(brokers, &e);
    if (!conf) {
        snprintf(err, errlen, "%s", e.message);
        goto err;
    }
    /* A group id is required by the consumer API; assign() never joins the group. */
    if (rd_kafka_conf_set(conf, "group.id", "phx-ingress-sse", es, sizeof(es)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", es, sizeof(es)) ||
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "20", es, sizeof(es)) ||
        !(ev->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof(es)))) {
        snprintf(err, errlen, "events consumer: %s", es);
        rd_kafka_conf_destroy(conf);
        goto err;
    }
    rd_kafka_poll_set_consumer(ev->rk);
    if (phx_events_assign(ev, err, errlen) < 0)
        goto err;
    pthread_create(&ev->th, NULL, phx_events_run, ev);
    ev->running = 1;
    return ev;
err:
    phx_events_stop(ev);
    return NULL;
}

/* End every stream (before the daemon stops: suspended connections must be resumed). */
void phx_events_close_all(phx_events *ev)
{
    if (!ev)
        return;
    pthread_mutex_lock(&ev->mu);
    ev->max_streams = -1; /* no new streams */
    for (phx_stream *s = ev->streams; s; s = s->next)
        phx_stream_finish(s);
    pthread_mutex_unlock(&ev->mu);
}

void phx_events_stop(phx_events *ev)
{
    if (!ev)
        return;
    if (ev->running) {
        __atomic_store_n(&ev->stop, 1, __ATOMIC_RELEASE);
        pthread_join(ev->th, NULL);
    }
    if (ev->rk) {
        rd_kafka_consumer_close(ev->rk);
        rd_kafka_destroy(ev->rk);
    }
    pthread_mutex_destroy(&ev->mu);
    free(ev);
}

/* libmicrohttpd's content reader for one stream. */
static ssize_t phx_stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    phx_stream *s = cls;
    phx_events *ev = s->ev;
    ssize_t n = 0;
    pthread_mutex_lock(&ev->mu);
    if (s->off < s->len) {
        n = (ssize_t)(s->len - s->off < max ? s->len - s->off : max);
        memcpy(out, s->buf + s->off, (size_t)n);
        s->off += (size_t)n;
        if (s->off == s->len)
            s->off = s->len = 0;
    } else if (s->done) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        s->suspended = 1;
        MHD_suspend_connection(s->conn);
    }
    pthread_mutex_unlock(&ev->mu);
    return n;
}

static void phx_stream_free(void *cls)
{
    phx_stream *s = cls;
    phx_events *ev = s->ev;
    pthread_mutex_lock(&ev->mu);
    for (phx_stream **pp = &ev->streams; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    ev->nstreams--;
    pthread_mutex_unlock(&ev->mu);
    free(s->buf);
    free(s);
}

/* The job's view, if it is the caller's: 1, 0 not found (or another tenant's), -1 error. */
static int phx_events_view(const phx_ctx *c, json_t **view, phx_err *err)
{
    phx_redis *r = phx_ingress_redis_get(c->in, err);
    *view = r ? phx_jobstore_view(r, c->arg, err) : NULL;
    if (r)
        phx_ingress_redis_put(c->in, r);
    const char *tenant = json_string_value(json_object_get(*view, "tenant"));
    if (*view && tenant && strcmp(tenant, c->who->tenant) == 0)
        return 1;
    json_decref(*view);
    *view = NULL;
    return r && strcmp(err->code, "redis_unavailable") != 0 ? 0 : -1;
}

void phx_events_stream(const phx_ctx *c, phx_answer *a)
{
    phx_events *ev = c->in->events;
    phx_err err;
    phx_err_clear(&err);
    if (!phx_id_valid(c->arg)) {
        phx_problem(a, 404, "not_found", "No such job", NULL, NULL);
        return;
    }
    phx_stream *s = phx_xcalloc(1, sizeof(*s));
    s->ev = ev;
    s->conn = c->conn;
    snprintf(s->job, sizeof(s->job), "%s", c->arg);
    /* Watch first, then read the snapshot: an event in between is sent twice, never lost. */
    pthread_mutex_lock(&ev->mu);
    if (!ev->rk || ev->max_streams < 0 || ev->nstreams >= ev->max_streams) {
        pthread_mutex_unlock(&ev->mu);
        free(s);
        phx_unavailable(a, "no event stream available; poll GET /v1/jobs/{id}");
        return;
    }
    s->next = ev->streams;
    ev->streams = s;
    ev->nstreams++;
    pthread_mutex_unlock(&ev->mu);
    json_t *view;
    int rc = phx_events_view(c, &view, &err);
    if (rc <= 0) {
        phx_stream_free(s);
        if (rc == 0)
            phx_problem(a, 404, "not_found", "No such job", NULL, NULL);
        else
            phx_unavailable(a, err.message);
        return;
    }
    const char *state = json_string_value(json_object_get(view, "state"));
    int final = state && strcmp(state, "submitted") != 0 && strcmp(state, "running") != 0;
    char *data = json_dumps(view, JSON_COMPACT);
    size_t cap = strlen(data) + 64;
    char *frame = phx_xmalloc(cap);
    int n = snprintf(frame, cap, "event: snapshot\ndata: %s\n\n", data);
    pthread_mutex_lock(&ev->mu);
    phx_stream_unshift(s, frame, (size_t)n);
    if (final)
        s->done = 1;
    pthread_mutex_unlock(&ev->mu);
    free(frame);
    free(data);
    json_decref(view);
    a->status = 200;
    a->stream = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, phx_stream_read, s,
                                                  phx_stream_free);
    MHD_add_response_header(a->stream, "Content-Type", "text/event-stream");
    MHD_add_response_header(a->stream, "Cache-Control", "no-store");
    MHD_add_response_header(a->stream, "X-Accel-Buffering", "no");
}
