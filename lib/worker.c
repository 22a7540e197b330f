/* worker.c -- the pool loop (see worker.h for the guarantees).
 *
 * Threads: main (signals, via sigtimedwait; admin heartbeat), N consumer threads, the group
 * thread (serves the consumer group protocol and commits stored offsets), an optional tick
 * thread, the producer's idle poller (delivery reports are served by the producing threads
 * themselves, kafka.c), and the admin HTTP thread. All of them share
 * one idempotent producer and one consumer (a single group member: one set of fetch loops
 * and broker connections whatever PHX_CONCURRENCY is); each consumer thread owns a lane of
 * that consumer (its partitions, in order) and its handler state, so the hot path takes no
 * locks of ours. */
#include "worker.h"
#include "admin.h"
#include "breaker.h"
#include "bulkhead.h"
#include "log.h"
#include "metrics.h"
#include "opsbeat.h"
#include "redis.h"
#include "retry.h"
#include "trace.h"
#include "util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct phx_worker {
    const phx_common *common;
    const phx_worker_ops *ops;
    phx_producer *producer;
    phx_consumer *consumer;
    phx_schema_set *schemas;
    phx_admin *admin;
    atomic_int stop;
    atomic_int stalled; /* threads currently backing off on a failed dependency */
    atomic_int busy;    /* threads handling a message (the bulkhead's use) */
    atomic_int held;    /* threads holding a message back because a bulkhead is full */
    phx_metric *m_busy, *m_stalled, *m_held;
    atomic_int failed; /* a thread could not start: exit 1 */
    pthread_mutex_t ready_mu;
    phx_redis *ready_redis; /* the admin thread's own connection, for /readyz */
    phx_breaker redis_breaker;
    phx_bulkhead redis_bulkhead; /* every Redis client made in the loop's threads */
};

/* Redis: open at 50% failures over 10 s (at least 10 calls) or 80% calls slower than 1 s;
 * stay open 2 s (+-20%); close after 3 good probes. */
static const phx_breaker_cfg phx_worker_redis_breaker_cfg = {10000, 10, 50, 2000, 3, 1000, 80};

/* A consumer stalled on a failed dependency retries the same message: 100 ms, 200 ms, ...
 * up to 6.4 s, +-50%. Never gives up: dropping the message is not an option. */
static const phx_retry_policy phx_worker_stall = {0, 100, 6400, 50};

/* A message refused by a full bulkhead is retried sooner: the dependency is busy, not broken,
 * and a slot frees within a call's time. 10 ms, 20 ms, ... up to 500 ms, +-50%. */
static const phx_retry_policy phx_worker_full = {0, 10, 500, 50};

phx_breaker *phx_worker_redis_breaker(phx_worker *w)
{
    return &w->redis_breaker;
}

typedef struct phx_wthread {
    phx_worker *w;
    pthread_t tid;
    int idx;
} phx_wthread;

void *phx_worker_app(phx_worker *w)
{
    return w->ops->app;
}

const phx_common *phx_worker_common(phx_worker *w)
{
    return w->common;
}

const phx_schema_set *phx_worker_schemas(phx_worker *w)
{
    return w->schemas;
}

int phx_worker_produce(phx_worker *w, phx_outbox *out, phx_err *err)
{
    if (out->n == 0)
        return 0;
    return phx_produce_batch(w->producer, out->msgs, out->n, err);
}

/* Sleep up to ms, waking early on shutdown. */
static void phx_worker_nap(phx_worker *w, int64_t ms)
{
    int64_t end = phx_mono_ms() + ms;
    while (!atomic_load(&w->stop) && phx_mono_ms() < end)
        phx_sleep_ms(end - phx_mono_ms() < 50 ? end - phx_mono_ms() : 50);
}

static void phx_worker_count(const char *topic, const char *outcome)
{
    char labels[256];
    snprintf(labels, sizeof(labels), "topic=\"%s\",outcome=\"%s\"", topic, outcome);
    phx_metric_add(phx_counter("phx_messages_total",
                               "Messages consumed, by topic and outcome (ok, poison, retried).",
                               labels),
                   1);
}

/* Validate m and run the handler, filling out. Returns what to do with the offset. */
static phx_handle_rc phx_worker_process(phx_worker *w, void *tctx, const rd_kafka_message_t *m,
                                        phx_outbox *out, phx_err *err)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    char reason[512], tp[56];
    char *key = m->key ? strndup(m->key, m->key_len) : NULL;
    phx_handle_rc rc = PHX_POISON;

    json_t *body = phx_msg_parse(m->payload, m->len, reason, sizeof(reason));
    if (!body) {
        phx_err_set(err, "invalid_message", 0, "%s", reason);
        goto out;
    }
    /* The hop span phx_worker_one started (from the header, or a new trace): what this
     * message's outputs carry on. */
    if (phx_trace_current(tp) < 0)
        phx_traceparent_new(tp);
    phx_inmsg in = {.raw = m, .topic = topic, .key = key, .body = body, .traceparent = tp};

    const char *sname = w->ops->schema_for ? w->ops->schema_for(topic) : NULL;
    const phx_schema *schema = sname ? phx_schema_set_get(w->schemas, sname) : NULL;
    json_t *errors = NULL;
    if (schema && phx_schema_validate(schema, body, &errors) != 0) {
        phx_err_set(err, "schema_violation", 0, "message fails %s", sname);
        if (w->ops->on_invalid)
            w->ops->on_invalid(tctx, &in, errors, out);
        /* Keep the validator's detail with the dead letter. */
        json_t *dlq = phx_dlq_new(m, w->ops->group, err->message, errors);
        phx_outbox_add(out, PHX_TOPIC_DLQ, key, dlq, NULL, tp, 0);
        json_decref(errors);
        json_decref(body);
        free(key);
        return PHX_HANDLED; /* the DLQ message is already in the outbox */
    }
    rc = w->ops->handle(tctx, &in, out, err);
    json_decref(body);
out:
    if (rc == PHX_POISON) {
        phx_outbox_reset(out); /* nothing half-done leaves with a dead letter */
        json_t *dlq = phx_dlq_new(m, w->ops->group, err->message, NULL);
        phx_outbox_add(out, PHX_TOPIC_DLQ, key, dlq, NULL, NULL, 0);
        phx_logj(PHX_LOG_WARN, key, NULL, "dead-lettered %s[%d]@%lld: %s", topic, m->partition,
                 (long long)m->offset, err->message);
    }
    free(key);
    return rc;
}

/* Handle one message until it is done or we are stopping. 1 if its offset may be stored. */
static int phx_worker_one(phx_worker *w, int lane, void *tctx, const rd_kafka_message_t *m,
                          phx_outbox *out)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    int stalled = 0, held = 0, done = 0, retries = 0, full = 0;
    char *force_poison = NULL, tpbuf[128], name[160];
    /* One span per message: the hop. Redis, Kafka and outward calls inside are its children.
     * Their log lines leave together when the message is done (phx_log_hold). */
    phx_log_hold();
    phx_span sp;
    snprintf(name, sizeof(name), "%s process %s", w->ops->proc, topic);
    phx_span_start(&sp, name, PHX_SPAN_CONSUMER,
                   phx_kafka_header(m, "traceparent", tpbuf, sizeof(tpbuf)));
    if (m->key && m->key_len < sizeof(sp.job_id)) {
        char job[sizeof(sp.job_id)];
        snprintf(job, sizeof(job), "%.*s", (int)m->key_len, (const char *)m->key);
        phx_span_job(&sp, job);
    }
    phx_span_set(&sp, "messaging.destination.name", "%s", topic);
    phx_span_set(&sp, "messaging.kafka.partition", "%d", (int)m->partition);
    phx_span_set(&sp, "messaging.kafka.offset", "%lld", (long long)m->offset);
    while (!done) {
        phx_err err;
        phx_err_clear(&err);
        phx_outbox_reset(out);
        int64_t t0 = phx_mono_ms();
        phx_handle_rc rc;
        if (force_poison) {
            rc = PHX_POISON;
            json_t *dlq = phx_dlq_new(m, w->ops->group, force_poison, NULL);
            phx_outbox_add(out, PHX_TOPIC_DLQ, NULL, dlq, NULL, NULL, 0);
        } else {
            rc = phx_worker_process(w, tctx, m, out, &err);
        }
        if (rc != PHX_RETRY_LATER && phx_worker_produce(w, out, &err) == 0) {
            phx_outbox_run_after(out, tctx);
            char labels[160];
            snprintf(labels, sizeof(labels), "topic=\"%s\"", topic);
            phx_metric_observe(phx_histogram("phx_message_duration_seconds",
                                             "Time to handle a message and confirm its outputs.",
                                             labels, NULL, 0),
                               (double)(phx_mono_ms() - t0) / 1000.0);
            phx_worker_count(topic, rc == PHX_POISON ? "poison" : "ok");
            for (int i = 0; i < out->n; i++)
                if (strcmp(out->msgs[i].topic, PHX_TOPIC_DLQ) == 0)
                    phx_metric_add(phx_counter("phx_dlq_messages_total",
                                               "Messages dead-lettered to phx.dlq, by the topic "
                                               "they were consumed from.",
                                               labels),
                                   1);
            phx_span_set(&sp, "phx.outcome", "%s", rc == PHX_POISON ? "poison" : "ok");
            if (rc == PHX_POISON)
                phx_span_fail(&sp, "dead-lettered: %s", err.message);
            done = 1;
            break;
        }
        if (rc != PHX_RETRY_LATER && !err.retryable && out->n > 0 &&
            strcmp(out->msgs[0].topic, PHX_TOPIC_DLQ) != 0) {
            /* The outputs can never be produced (e.g. reply_to names a topic that does not
             * exist): the input is poison after all. Dead-letter it on the next pass. */
            phx_worker_count(topic, "unproducible");
            phx_log_warn("%s[%d]@%lld: outputs refused for good: %s; dead-lettering", topic,
                         m->partition, (long long)m->offset, err.message);
            free(force_poison);
            force_poison = phx_xstrdup(err.message);
            continue;
        }
        int64_t delay;
        if (rc == PHX_RETRY_LATER && phx_bulkhead_refused(&err)) {
            /* A bulkhead is full: the dependency is busy, not failing. Hold the message (and
             * the lane's partitions) until a slot frees; the process stays ready, lag grows. */
            phx_worker_count(topic, "backpressure");
            if (!held) {
                held = 1;
                phx_metric_set(w->m_held, atomic_fetch_add(&w->held, 1) + 1);
            }
            phx_log_debug("%s[%d]@%lld: %s; holding it", topic, m->partition, (long long)m->offset,
                          err.message);
            delay = phx_retry_delay(&phx_worker_full, ++full);
        } else {
            /* A dependency failed: the message stays ours, we retry it after a pause. */
            phx_worker_count(topic, "retried");
            retries++;
            if (!stalled) {
                stalled = 1;
                phx_metric_set(w->m_stalled, atomic_fetch_add(&w->stalled, 1) + 1);
            }
            phx_log_warn("%s[%d]@%lld: %s (%s); retrying", topic, m->partition,
                         (long long)m->offset, err.message, err.code);
            delay = phx_retry_delay(&phx_worker_stall, retries);
        }
        /* Back-pressure: stop fetching this lane's partitions while we wait (the group
         * thread keeps the membership). Again each round: a rebalance meanwhile may have
         * given the lane partitions that are not paused. */
        phx_consumer_pause_lane(w->consumer, lane, 1);
        phx_worker_nap(w, delay);
        if (atomic_load(&w->stop))
            break;
    }
    if (stalled)
        phx_metric_set(w->m_stalled, atomic_fetch_sub(&w->stalled, 1) - 1);
    if (held)
        phx_metric_set(w->m_held, atomic_fetch_sub(&w->held, 1) - 1);
    if (stalled || held)
        phx_consumer_pause_lane(w->consumer, lane, 0);
    free(force_poison);
    if (retries)
        phx_span_set(&sp, "phx.retries", "%d", retries);
    if (!done)
        phx_span_fail(&sp, "stopped before the message was done; it will be redelivered");
    phx_span_end(&sp);
    phx_log_release();
    return done;
}

static void *phx_worker_consume_main(void *arg)
{
    phx_wthread *t = arg;
    phx_worker *w = t->w;
    phx_err err;
    phx_err_clear(&err);
    phx_outbox out = {0};
    phx_redis_thread_bulkhead(&w->redis_bulkhead);
    void *tctx = w->ops->thread_init(w, &err);
    if (!tctx) {
        phx_log_error("consumer thread %d: %s", t->idx, err.message);
        atomic_store(&w->failed, 1);
        atomic_store(&w->stop, 1);
        goto out;
    }
    while (!atomic_load(&w->stop)) {
        phx_admin_heartbeat(w->admin);
        rd_kafka_message_t *m = phx_consumer_poll(w->consumer, t->idx, 200);
        if (m) {
            phx_metric_set(w->m_busy, atomic_fetch_add(&w->busy, 1) + 1);
            if (phx_worker_one(w, t->idx, tctx, m, &out))
                phx_consumer_store(w->consumer, m);
            rd_kafka_message_destroy(m);
            phx_metric_set(w->m_busy, atomic_fetch_sub(&w->busy, 1) - 1);
        }
    }
out:
    if (tctx)
        w->ops->thread_free(tctx);
    phx_outbox_free(&out);
    return NULL;
}

/* The consumer group's own thread: rebalances happen here (the lanes are remapped before
 * fetching starts), and stored offsets are committed every 200 ms. */
static void *phx_worker_group_main(void *arg)
{
    phx_worker *w = arg;
    int64_t last_commit = phx_mono_ms();
    while (!atomic_load(&w->stop)) {
        phx_consumer_serve(w->consumer, 100);
        if (phx_mono_ms() - last_commit >= 200) {
            phx_consumer_commit(w->consumer, 0);
            last_commit = phx_mono_ms();
        }
    }
    return NULL;
}

static void *phx_worker_tick_main(void *arg)
{
    phx_wthread *t = arg;
    phx_worker *w = t->w;
    phx_err err;
    phx_err_clear(&err);
    phx_outbox out = {0};
    phx_redis_thread_bulkhead(&w->redis_bulkhead);
    void *tctx = w->ops->thread_init(w, &err);
    if (!tctx) {
        phx_log_error("tick thread: %s", err.message);
        atomic_store(&w->failed, 1);
        atomic_store(&w->stop, 1);
        return NULL;
    }
    int failures = 0;
    while (!atomic_load(&w->stop)) {
        phx_outbox_reset(&out);
        int rc = w->ops->tick(tctx, &out, &err);
        if (rc == 0 && (rc = phx_worker_produce(w, &out, &err)) == 0)
            phx_outbox_run_after(&out, tctx);
        if (rc < 0) {
            phx_log_warn("tick: %s (%s)", err.message, err.code);
            phx_worker_nap(w, phx_retry_delay(&phx_worker_stall, ++failures));
            continue;
        }
        failures = 0;
        phx_worker_nap(w, w->ops->tick_ms);
    }
    w->ops->thread_free(tctx);
    phx_outbox_free(&out);
    return NULL;
}

static int phx_worker_ready(void *ctx, char *why, size_t whylen)
{
    phx_worker *w = ctx;
    /* Lag first: it needs no round trip, and a process that cannot keep up should say so
     * even while its dependencies answer. The figure is as old as the last statistics report
     * (statistics.interval.ms, 5 s by default). */
    double lag, lag_max;
    phx_opsbeat_lag(&lag, &lag_max);
    if (w->common->ready_max_lag > 0 && lag > (double)w->common->ready_max_lag) {
        snprintf(why, whylen,
                 "consumer lag %.0f messages (largest partition %.0f) is above "
                 "PHX_READY_MAX_LAG=%ld",
                 lag, lag_max, w->common->ready_max_lag);
        return -1;
    }
    if (atomic_load(&w->stalled) > 0) {
        snprintf(why, whylen, "%d consumer(s) backing off on a failed dependency",
                 atomic_load(&w->stalled));
        return -1;
    }
    if (phx_breaker_state(&w->redis_breaker, phx_mono_ms()) == PHX_BREAKER_OPEN) {
        snprintf(why, whylen, "redis circuit breaker open");
        return -1;
    }
    pthread_mutex_lock(&w->ready_mu);
    int rc = phx_redis_ping(w->ready_redis, why, whylen);
    pthread_mutex_unlock(&w->ready_mu);
    if (rc < 0)
        return -1;
    if (phx_kafka_ping(phx_producer_handle(w->producer), 1000, why, whylen) != 0)
        return -1;
    /* The process's own state next: a dependency that is down is the better reason, since
     * the state cannot finish loading without it. */
    if (w->ops->ready && w->ops->ready(w->ops->app, why, whylen) != 0)
        return -1;
    /* Last, the group: joining takes a few seconds after start (longer while a killed member's
     * session runs out), and a process that has not joined consumes nothing. A rollout that
     * waits for readiness then waits for the new replica to take its share. */
    if (!phx_consumer_joined(w->consumer)) {
        snprintf(why, whylen, "not yet a member of consumer group %s (no assignment yet)",
                 w->ops->group);
        return -1;
    }
    return 0;
}

/* The ops heartbeat (opsbeat.h), from the main thread: readiness as /readyz would answer it,
 * then the status, on the admin thread's connection (ready_mu: hiredis is not thread-safe).
 * A Redis failure only costs this beat; the page shows the process as gone if it persists. */
static void phx_worker_beat(phx_worker *w, phx_opsbeat *beat)
{
    if (!phx_opsbeat_due(beat))
        return;
    char why[256] = "";
    int ready = phx_worker_ready(w, why, sizeof(why)) == 0;
    phx_err err;
    phx_err_clear(&err);
    pthread_mutex_lock(&w->ready_mu);
    phx_opsbeat_tick(beat, w->ready_redis, ready, why, &err);
    pthread_mutex_unlock(&w->ready_mu);
}

/* Join n threads within grace_ms in total. 0, or -1 when some thread is still running. */
static int phx_worker_join_all(phx_wthread *threads, int n, long grace_ms)
{
    struct timespec until = phx_deadline_ms(CLOCK_REALTIME, grace_ms);
    for (int i = 0; i < n; i++)
        if (pthread_timedjoin_np(threads[i].tid, NULL, &until) != 0)
            return -1;
    return 0;
}

int phx_worker_main(const phx_common *common, const phx_worker_ops *ops)
{
    phx_worker w = {.common = common, .ops = ops};
    phx_err err;
    phx_err_clear(&err);
    char e[512];
    int rc = 1, nthreads = (int)common->concurrency, nrun = 0;
    /* The consumer threads, the tick thread and the group thread. */
    phx_wthread *threads = phx_xcalloc((size_t)nthreads + 2, sizeof(*threads));
    phx_opsbeat *beat = NULL;
    pthread_mutex_init(&w.ready_mu, NULL);
    phx_metrics_set_process(ops->proc);
    /* Saturation of the pool's bulkhead: busy / threads (PHX_CONCURRENCY). */
    phx_metric_set(phx_gauge("phx_worker_threads",
                             "Consumer threads (PHX_CONCURRENCY): the bound on in-flight messages.",
                             NULL),
                   (double)nthreads);
    w.m_busy =
        phx_gauge("phx_worker_busy_threads", "Consumer threads handling a message now.", NULL);
    w.m_stalled =
        phx_gauge("phx_worker_stalled_threads",
                  "Consumer threads backing off on a failed dependency (Redis, Kafka).", NULL);
    w.m_held = phx_gauge("phx_worker_held_threads",
                         "Consumer threads holding their message back (partitions paused) because "
                         "a bulkhead is full.",
                         NULL);
    phx_bulkhead_init(&w.redis_bulkhead, "redis", common->redis_max_inflight,
                      common->bulkhead_wait_ms);
    phx_breaker_init(&w.redis_breaker, &phx_worker_redis_breaker_cfg);
    phx_breaker_name(&w.redis_breaker, "redis");

    sigset_t sigs;
    phx_signals_block(&sigs);

    if (!(w.schemas = phx_schemas_load(common->schema_dir, &err)) ||
        !(w.producer = phx_producer_new(common->kafka_brokers, &err)) ||
        !(w.consumer = phx_consumer_new(common->kafka_brokers, ops->group, ops->topics,
                                        ops->ntopics, nthreads, &err)) ||
        !(w.ready_redis = phx_redis_from_common(common, &err))) {
        phx_log_error("start: %s", err.message);
        rc = 2;
        goto out;
    }
    if (!(w.admin = phx_admin_start(common->admin_addr, phx_worker_ready, &w, e, sizeof(e)))) {
        phx_log_error("admin listener on %s: %s", common->admin_addr, e);
        goto out;
    }
    phx_log_info("started: group %s, %d consumer threads, admin port %d", ops->group, nthreads,
                 phx_admin_port(w.admin));

    for (int i = 0; i < nthreads; i++) {
        threads[i] = (phx_wthread){.w = &w, .idx = i};
        pthread_create(&threads[i].tid, NULL, phx_worker_consume_main, &threads[i]);
    }
    nrun = nthreads;
    if (ops->tick) {
        threads[nrun] = (phx_wthread){.w = &w, .idx = nrun};
        pthread_create(&threads[nrun].tid, NULL, phx_worker_tick_main, &threads[nrun]);
        nrun++;
    }
    threads[nrun] = (phx_wthread){.w = &w, .idx = nrun};
    pthread_create(&threads[nrun].tid, NULL, phx_worker_group_main, &w);
    nrun++;

    beat = phx_opsbeat_new(ops->proc, phx_admin_port(w.admin));
    while (!atomic_load(&w.stop)) {
        struct timespec ts = {0, 200 * 1000000};
        int sig = sigtimedwait(&sigs, NULL, &ts);
        phx_admin_heartbeat(w.admin);
        phx_worker_beat(&w, beat);
        if (sig == SIGHUP) {
            if (ops->reload) {
                phx_log_info("SIGHUP: reloading");
                ops->reload(ops->app);
            } else {
                phx_log_info("SIGHUP: nothing to reload in %s (secret files are re-read at "
                             "every reconnect)",
                             ops->proc);
            }
        } else if (sig == SIGTERM || sig == SIGINT) {
            phx_log_info("signal %d: draining", sig);
            atomic_store(&w.stop, 1);
        }
    }
    if (phx_worker_join_all(threads, nrun, common->shutdown_grace_ms) < 0) {
        /* Past the grace period: hand the in-flight messages back. Their offsets were never
         * stored, so the group redelivers them; exiting now is safe, waiting is not. */
        phx_log_error("shutdown grace period (%ld ms) exceeded: exiting with in-flight work "
                      "uncommitted; it will be redelivered",
                      common->shutdown_grace_ms);
        _exit(0);
    }
    rc = atomic_load(&w.failed) ? 1 : 0;
    phx_log_info("stopped (exit %d)", rc);
    pthread_mutex_lock(&w.ready_mu);
    phx_opsbeat_gone(beat, w.ready_redis);
    pthread_mutex_unlock(&w.ready_mu);
out:
    phx_consumer_close(w.consumer); /* commits synchronously, leaves the group */
    phx_opsbeat_free(beat);
    phx_trace_shutdown(2000);
    phx_admin_stop(w.admin);
    phx_producer_free(w.producer, 10000);
    phx_redis_free(w.ready_redis);
    phx_schema_set_free(w.schemas);
    phx_breaker_destroy(&w.redis_breaker);
    phx_bulkhead_destroy(&w.redis_bulkhead);
    pthread_mutex_destroy(&w.ready_mu);
    free(threads);
    return rc;
}
