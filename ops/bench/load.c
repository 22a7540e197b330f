/* load.c -- the sender and reply reader of phx-bench (see load.h).
 *
 * Three threads: the sender publishes jobs (in batches of whatever is due, so one confirmed
 * produce per batch keeps up with any rate the stack can take), the reader consumes the reply
 * topic and records each job's latency, and the caller's thread draws progress and decides
 * when the run is over. They share one mutex-guarded record of per-job send times. */
#include "load.h"
#include "msg.h"
#include "util.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *const phx_bench_kind_names[PHX_BENCH_NKINDS] = {"chain", "dag", "exec"};
const int phx_bench_kind_steps[PHX_BENCH_NKINDS] = {2, 5, 1};

#define PHX_BENCH_BATCH 500 /* jobs per confirmed produce at most */

typedef struct phx_bench_run_st {
    const phx_bench_cfg *cfg;
    phx_bench_result *res;
    char prefix[40]; /* job ids are PREFIX<index>: one run's replies are told from others' */
    size_t prefixlen;
    int64_t t0_us;
    int64_t *due_us; /* intended send time of each job (open loop) or actual (closed) */
    unsigned char *done;
    rd_kafka_t *reader;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t last_reply_us, last_send_us;
    int sender_done, stop;
    phx_err send_err;
} phx_bench_run_st;

static int64_t phx_bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static phx_bench_kind phx_bench_kind_of(const phx_bench_cfg *cfg, long i)
{
    int total = 0;
    for (int k = 0; k < PHX_BENCH_NKINDS; k++)
        total += cfg->weights[k];
    int pos = (int)(i % total);
    for (int k = 0; k < PHX_BENCH_NKINDS; k++) {
        if (pos < cfg->weights[k])
            return (phx_bench_kind)k;
        pos -= cfg->weights[k];
    }
    return PHX_BENCH_CHAIN;
}

/* The body of job i (malloc'd). Inputs depend on i so that each reply can be checked. */
static char *phx_bench_body(const phx_bench_run_st *st, phx_bench_kind kind, long i)
{
    char *s = NULL;
    long long now = (long long)phx_now_ms();
    const char *head = "{\"schema\":\"job.v1\",\"id\":\"%s%ld\",\"tenant\":\"%s\","
                       "\"submitted_ms\":%lld,\"steps\":[";
    char h[256];
    snprintf(h, sizeof(h), head, st->prefix, i, st->cfg->tenant, now);
    int rc = -1;
    switch (kind) {
    case PHX_BENCH_CHAIN:
        rc = asprintf(&s,
                      "%s{\"id\":\"a\",\"kind\":\"tool.calc\",\"input\":{\"expr\":\"%ld*(3+4)\"}},"
                      "{\"id\":\"b\",\"kind\":\"tool.calc\",\"input\":{\"expr\":"
                      "\"{{steps.a.output.value}} + 1\"},\"needs\":[\"a\"]}]}",
                      h, i);
        break;
    case PHX_BENCH_DAG:
        rc = asprintf(&s,
                      "%s{\"id\":\"base\",\"kind\":\"tool.calc\",\"input\":{\"expr\":\"%ld + 6\"}},"
                      "{\"id\":\"sq\",\"kind\":\"tool.calc\",\"input\":{\"expr\":"
                      "\"{{steps.base.output.value}} ^ 2\"},\"needs\":[\"base\"]},"
                      "{\"id\":\"half\",\"kind\":\"tool.calc\",\"input\":{\"expr\":"
                      "\"{{steps.base.output.value}} / 2\"},\"needs\":[\"base\"]},"
                      "{\"id\":\"mod\",\"kind\":\"tool.calc\",\"input\":{\"expr\":"
                      "\"{{steps.base.output.value}} %% 5\"},\"needs\":[\"base\"]},"
                      "{\"id\":\"sum\",\"kind\":\"tool.calc\",\"input\":{\"expr\":"
                      "\"{{steps.sq.output.value}} + {{steps.half.output.value}} + "
                      "{{steps.mod.output.value}}\"},\"needs\":[\"sq\",\"half\",\"mod\"]}]}",
                      h, i % 1000);
        break;
    default:
        rc = asprintf(&s,
                      "%s{\"id\":\"x\",\"kind\":\"exec.run\",\"input\":{\"lang\":\"sh\","
                      "\"code\":\"exit 0\"}}]}",
                      h);
        break;
    }
    return rc < 0 ? NULL : s;
}

/* Does the reply of job i carry the value its inputs imply? */
static int phx_bench_correct(phx_bench_kind kind, long i, const json_t *outputs)
{
    switch (kind) {
    case PHX_BENCH_CHAIN: {
        json_t *v = json_object_get(json_object_get(outputs, "b"), "value");
        return json_is_number(v) && fabs(json_number_value(v) - (double)(7 * i + 1)) < 1e-6;
    }
    case PHX_BENCH_DAG: {
        double b = (double)(i % 1000) + 6;
        double want = b * b + b / 2 + fmod(b, 5);
        json_t *v = json_object_get(json_object_get(outputs, "sum"), "value");
        return json_is_number(v) && fabs(json_number_value(v) - want) < 1e-6;
    }
    default: {
        json_t *v = json_object_get(json_object_get(outputs, "x"), "exit_code");
        return json_is_integer(v) && json_integer_value(v) == 0;
    }
    }
}

/* Publish jobs [from, to) as one confirmed batch. */
static int phx_bench_publish(phx_bench_run_st *st, long from, long to, phx_err *err)
{
    phx_kmsg msgs[PHX_BENCH_BATCH];
    char *bodies[PHX_BENCH_BATCH], ids[PHX_BENCH_BATCH][64], tp[PHX_BENCH_BATCH][56];
    int n = 0, rc = 0;
    for (long i = from; i < to; i++, n++) {
        snprintf(ids[n], sizeof(ids[n]), "%s%ld", st->prefix, i);
        bodies[n] = phx_bench_body(st, phx_bench_kind_of(st->cfg, i), i);
        if (!bodies[n]) {
            rc = phx_err_set(err, "oom", 0, "out of memory");
            break;
        }
        phx_traceparent_new(tp[n]);
        phx_job_kmsg(&msgs[n], ids[n], st->cfg->tenant, bodies[n], tp[n]);
    }
    if (rc == 0)
        rc = phx_produce_batch(st->cfg->producer, msgs, n, err);
    for (int k = 0; k < n; k++)
        free(bodies[k]);
    return rc;
}

static void *phx_bench_sender(void *arg)
{
    phx_bench_run_st *st = arg;
    const phx_bench_cfg *cfg = st->cfg;
    long sent = 0;
    phx_err err;
    phx_err_clear(&err);
    while (sent < cfg->jobs) {
        long to;
        int64_t now = phx_bench_now_us();
        pthread_mutex_lock(&st->mu);
        if (st->stop) {
            pthread_mutex_unlock(&st->mu);
            break;
        }
        if (cfg->rate > 0) {
            /* Open loop: everything due by now, stamped with when it was due. */
            to = (long)((double)(now - st->t0_us) * cfg->rate / 1e6) + 1;
            if (to > cfg->jobs)
                to = cfg->jobs;
            if (to <= sent) {
                pthread_mutex_unlock(&st->mu);
                int64_t next = st->t0_us + (int64_t)((double)sent * 1e6 / cfg->rate);
                if (next > now)
                    usleep((useconds_t)(next - now));
                continue;
            }
            for (long i = sent; i < to; i++)
                st->due_us[i] = st->t0_us + (int64_t)((double)i * 1e6 / cfg->rate);
            double lag = (double)(now - st->due_us[sent]) / 1000.0;
            if (lag > st->res->max_send_lag_ms)
                st->res->max_send_lag_ms = lag;
        } else {
            /* Closed loop: top the jobs in flight up to the concurrency. */
            while (sent - st->res->replied >= cfg->concurrency && !st->stop)
                pthread_cond_wait(&st->cv, &st->mu);
            to = st->res->replied + cfg->concurrency;
            if (to > cfg->jobs)
                to = cfg->jobs;
            now = phx_bench_now_us();
            for (long i = sent; i < to; i++)
                st->due_us[i] = now;
        }
        pthread_mutex_unlock(&st->mu);
        if (to - sent > PHX_BENCH_BATCH)
            to = sent + PHX_BENCH_BATCH;
        if (to > sent && phx_bench_publish(st, sent, to, &err) < 0)
            break;
        sent = to;
        pthread_mutex_lock(&st->mu);
        st->res->sent = sent;
        st->last_send_us = phx_bench_now_us();
        pthread_mutex_unlock(&st->mu);
    }
    pthread_mutex_lock(&st->mu);
    st->sender_done = 1;
    st->send_err = err;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* One reply message: which job, and how it went. */
static void phx_bench_on_reply(phx_bench_run_st *st, const rd_kafka_message_t *m)
{
    int64_t now = phx_bench_now_us();
    if (m->err || m->key_len <= st->prefixlen || m->key_len > 60 ||
        memcmp(m->key, st->prefix, st->prefixlen) != 0)
        return; /* someone else's job */
    char num[64];
    memcpy(num, (const char *)m->key + st->prefixlen, m->key_len - st->prefixlen);
    num[m->key_len - st->prefixlen] = '\0';
    char *end;
    long i = strtol(num, &end, 10);
    if (*end || i < 0 || i >= st->cfg->jobs)
        return;
    char reason[128];
    json_t *r = phx_msg_parse(m->payload, m->len, reason, sizeof(reason));
    const char *status = json_string_value(json_object_get(r, "status"));
    phx_bench_kind kind = phx_bench_kind_of(st->cfg, i);
    int ok = status && strcmp(status, "succeeded") == 0;
    int right = ok && phx_bench_correct(kind, i, json_object_get(r, "outputs"));
    json_decref(r);

    pthread_mutex_lock(&st->mu);
    phx_bench_result *res = st->res;
    if (st->done[i]) {
        res->duplicates++;
    } else if (st->due_us[i] != 0) {
        st->done[i] = 1;
        res->replied++;
        res->jobs_by_kind[kind]++;
        if (ok) {
            res->succeeded++;
            res->steps += phx_bench_kind_steps[kind];
        } else {
            res->failed++;
        }
        if (ok && !right)
            res->wrong++;
        int64_t lat = now - st->due_us[i];
        phx_hist_record(&res->all, lat);
        phx_hist_record(&res->by_kind[kind], lat);
        st->last_reply_us = now;
        pthread_cond_broadcast(&st->cv);
    }
    pthread_mutex_unlock(&st->mu);
}

static void *phx_bench_reader(void *arg)
{
    phx_bench_run_st *st = arg;
    for (;;) {
        pthread_mutex_lock(&st->mu);
        int stop = st->stop;
        pthread_mutex_unlock(&st->mu);
        if (stop)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(st->reader, 100);
        if (!m)
            continue;
        phx_bench_on_reply(st, m);
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static void phx_bench_progress(const phx_bench_run_st *st, int final)
{
    const phx_bench_result *res = st->res;
    long total = st->cfg->jobs;
    int width = 30, filled = total ? (int)((double)res->replied * width / (double)total) : 0;
    double secs = (double)(phx_bench_now_us() - st->t0_us) / 1e6;
    char bar[64];
    for (int k = 0; k < width; k++)
        bar[k] = k < filled ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %ld/%ld replied, %ld sent, %.0f jobs/s, %.1fs %s", bar, res->replied,
            total, res->sent, secs > 0 ? (double)res->replied / secs : 0, secs, final ? "\n" : "");
    fflush(stderr);
}

int phx_bench_run(const phx_bench_cfg *cfg, phx_bench_result *res, phx_err *err)
{
    phx_bench_run_st st = {.cfg = cfg, .res = res};
    memset(res, 0, sizeof(*res));
    phx_hist_init(&res->all);
    for (int k = 0; k < PHX_BENCH_NKINDS; k++)
        phx_hist_init(&res->by_kind[k]);
    char rid[27], group[64];
    phx_id_new(rid);
    snprintf(st.prefix, sizeof(st.prefix), "bench-%s-", rid);
    st.prefixlen = strlen(st.prefix);
    snprintf(group, sizeof(group), "phx-bench-%s", rid);
    /* The reader is at the end of the reply topic before the first job leaves: no reply can
     * slip past it (the same reasoning as `phx submit --wait`). */
    st.reader =
        phx_kafka_reader(cfg->brokers, cfg->reply_topic, group, PHX_READ_FROM_END, NULL, NULL, err);
    if (!st.reader)
        return -1;
    st.due_us = calloc((size_t)cfg->jobs, sizeof(*st.due_us));
    st.done = calloc((size_t)cfg->jobs, 1);
    pthread_mutex_init(&st.mu, NULL);
    phx_cond_init_monotonic(&st.cv);
    phx_err_clear(&st.send_err);
    st.t0_us = phx_bench_now_us();
    pthread_t ts, tr;
    pthread_create(&tr, NULL, phx_bench_reader, &st);
    pthread_create(&ts, NULL, phx_bench_sender, &st);

    int64_t last_draw = 0;
    for (;;) {
        pthread_mutex_lock(&st.mu);
        struct timespec until = phx_deadline_ms(CLOCK_MONOTONIC, 100);
        pthread_cond_timedwait(&st.cv, &st.mu, &until);
        int64_t now = phx_bench_now_us();
        int over = res->replied >= cfg->jobs ||
                   (st.sender_done && (st.send_err.message[0] ||
                                       now - st.last_send_us > (int64_t)cfg->timeout_s * 1000000));
        if (over)
            st.stop = 1;
        pthread_cond_broadcast(&st.cv);
        pthread_mutex_unlock(&st.mu);
        if (cfg->progress && (over || now - last_draw > 200000)) {
            phx_bench_progress(&st, over);
            last_draw = now;
        }
        if (over)
            break;
    }
    pthread_join(ts, NULL);
    pthread_join(tr, NULL);
    res->lost = res->sent - res->replied;
    res->elapsed_s =
        (double)((st.last_reply_us ? st.last_reply_us : phx_bench_now_us()) - st.t0_us) / 1e6;
    int rc = 0;
    if (st.send_err.message[0]) {
        *err = st.send_err;
        rc = -1;
    }
    rd_kafka_consumer_close(st.reader);
    rd_kafka_destroy(st.reader);
    pthread_mutex_destroy(&st.mu);
    pthread_cond_destroy(&st.cv);
    free(st.due_us);
    free(st.done);
    return rc;
}
