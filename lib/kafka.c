/* kafka.c -- librdkafka producer and consumer wrappers (see kafka.h).
 *
 * Delivery waiting: each phx_produce_batch call owns a small completion record on its stack;
 * every message carries a pointer to it as its opaque, and the delivery-report callback counts
 * down under the producer's mutex and wakes the record's owner. librdkafka guarantees exactly
 * one report per accepted message, bounded by message.timeout.ms, so the wait always ends.
 *
 * Who runs the callbacks: the waiters themselves. Reports are ops on the producer's main queue,
 * served by whoever calls rd_kafka_poll; a dedicated poll thread meant two wake-ups per report
 * (librdkafka's broker thread wakes the poll thread, the callback wakes the waiter), and on
 * this paravirtualised machine a wake-up is the dearest thing a hop does (perf: ~40 % of the
 * planner's CPU is the scheduler's switch path). So one waiting thread at a time is the
 * *leader*: it serves the queue (rd_kafka_poll with no timeout) and sleeps on a condition that
 * librdkafka's queue-event callback signals when an op lands on the empty queue -- one wake-up
 * per report, in the thread that wanted it. Other waiters are *followers*: they sleep on their
 * own record's condition until the leader's polling completes their batch, or until a leader
 * that is done hands them the role. The poll thread stays for what nobody waits for (log and
 * error callbacks while idle): every 100 ms it serves the queue when no waiter leads. */
#include "kafka.h"
#include "config.h"
#include "kafka_metrics.h"
#include "log.h"
#include "metrics.h"
#include "trace.h"
#include "util.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

typedef struct phx_kbatch phx_kbatch;

struct phx_producer {
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq; /* the queue rd_kafka_poll serves: delivery reports, logs */
    pthread_t poller;
    atomic_int stop;
    /* Delivery waiting (file comment). evmu guards gen, the leader's wake-up: librdkafka's
     * threads take it for every op that lands on the empty queue, so it is kept apart from mu
     * (which the reports' callbacks take) lest the two contend. */
    pthread_mutex_t evmu;
    pthread_cond_t event; /* gen moved */
    atomic_ulong gen;     /* ops that landed on the empty main queue, leading batches done */
    /* mu guards what follows and every batch's fields; taken before evmu, never after. */
    pthread_mutex_t mu;
    int leaders;           /* threads serving the main queue now (one, but for hand-over races) */
    phx_kbatch *followers; /* waiters sleeping on their own condition */
};

struct phx_consumer {
    rd_kafka_t *rk;
    /* One queue per consumer thread ("lane"); every assigned partition's fetch queue is
     * forwarded to exactly one lane, so a partition's messages are handled in order by one
     * thread while the process runs a single group member (one set of broker connections
     * and fetch loops instead of one per thread). */
    int nlanes;
    rd_kafka_queue_t **lanes;
    pthread_mutex_t mu; /* guards lane_of: written by the rebalance callback, read by pause */
    int *lane_of;       /* partition number -> lane, -1 when not assigned */
    int nlane_of;
    /* When (phx_mono_ms) the group coordinator refused a commit of ours because the group is
     * rebalancing or no longer counts us a member; 0 = not since the last assignment. */
    atomic_llong fenced_ms;
    atomic_int joined; /* an assignment came (phx_consumer_joined) */
};

/* How long lanes hold off after a refused commit when no assignment follows (a refusal the
 * group recovered from without a rebalance): a little more than the session timeout. */
#define PHX_CONSUMER_FENCE_MAX_MS 10000

/* A batch waiting for its delivery reports (fields under the producer's mu): pending counts the
 * reports still due (plus one held by the producing thread until every message is handed
 * over, so the count cannot reach zero early). The callback's last touch of the record is
 * under mu, and its owner returns only after seeing pending at zero under mu, so the record
 * can live on the owner's stack. */
struct phx_kbatch {
    phx_producer *p;
    int pending;
    int first_err; /* rd_kafka_resp_err_t; 0 = none yet */
    int leading;   /* its owner serves the main queue (waits on p->event) */
    int lead;      /* handed the leader's role by a leader that is done */
    pthread_cond_t cv;
    phx_kbatch *next; /* in p->followers */
};

/* PHX_KAFKA_CONF_security_protocol -> security.protocol: environment names cannot hold dots,
 * so an underscore stands for a dot and a double underscore for a literal underscore. */
static void phx_kafka_prop_name(const char *in, char *out, size_t outlen)
{
    size_t j = 0;
    for (size_t i = 0; in[i] && j + 1 < outlen; i++) {
        if (in[i] == '_' && in[i + 1] == '_') {
            out[j++] = '_';
            i++;
        } else if (in[i] == '_') {
            out[j++] = '.';
        } else {
            out[j++] = (char)tolower((unsigned char)in[i]);
        }
    }
    out[j] = '\0';
}

/* Split PHX_KAFKA_CONF_<raw>[_FILE]: the librdkafka property into prop, and whether the value
 * is a file holding it (no librdkafka property ends in ".file", so the suffix is free). */
static int phx_kafka_env_prop(const char *name, char *prop, size_t proplen)
{
    char raw[256];
    snprintf(raw, sizeof(raw), "%s", name + 15);
    size_t n = strlen(raw);
    int is_file = n > 5 && strcmp(raw + n - 5, "_FILE") == 0;
    if (is_file)
        raw[n - 5] = '\0';
    phx_kafka_prop_name(raw, prop, proplen);
    return is_file;
}

/* Apply one PHX_KAFKA_CONF_* variable. A _FILE variable names a secret file (sasl.password,
 * ssl.key.password, ...), read like every other secret: sealed files opened, the value redacted
 * from logs from then on. */
static int phx_kafka_conf_apply(rd_kafka_conf_t *conf, const char *name, const char *value,
                                phx_err *err)
{
    char prop[256], errstr[512];
    int is_file = phx_kafka_env_prop(name, prop, sizeof(prop));
    char *secret = NULL;
    if (is_file && !(secret = phx_config_read_secret(value, errstr, sizeof(errstr))))
        return phx_err_set(err, "bad_config", 0, "%s: %s", name, errstr);
    rd_kafka_conf_res_t rc =
        rd_kafka_conf_set(conf, prop, secret ? secret : value, errstr, sizeof(errstr));
    if (secret) {
        memset(secret, 0, strlen(secret));
        free(secret);
    }
    if (rc != RD_KAFKA_CONF_OK)
        return phx_err_set(err, "bad_config", 0, "%s: %s", name, errstr);
    return 0;
}

int phx_kafka_conf_check(const char *name, const char *value, char *err, size_t errlen)
{
    char prop[256], errstr[512];
    int is_file = phx_kafka_env_prop(name, prop, sizeof(prop));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* A _FILE value is a path, not the property's value: only ask whether the property exists
     * (librdkafka answers UNKNOWN for a name it does not have, whatever the value). */
    rd_kafka_conf_res_t rc =
        rd_kafka_conf_set(conf, prop, is_file ? "x" : value, errstr, sizeof(errstr));
    rd_kafka_conf_destroy(conf);
    if (rc == RD_KAFKA_CONF_OK || (is_file && rc == RD_KAFKA_CONF_INVALID))
        return is_file;
    snprintf(err, errlen, "%s (librdkafka %s): %s", name, prop, errstr);
    return -1;
}

rd_kafka_conf_t *phx_kafka_conf(const char *brokers, phx_err *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        phx_err_set(err, "bad_config", 0, "kafka config: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* Our defaults first, so that PHX_KAFKA_CONF_* below can replace them. TCP_NODELAY on
     * every broker connection: librdkafka does its own batching (linger.ms, one request per
     * broker carrying every partition's messages), and with several requests in flight on one
     * connection (idempotence allows 5) Nagle would hold the next small request until the
     * broker's ACK of the previous one -- up to a delayed-ACK timeout (40 ms on Linux), the
     * tail latency the dev broker showed on its own side before it set TCP_NODELAY too. The
     * Java client sets TCP_NODELAY for the same reason. */
    rd_kafka_conf_set(conf, "socket.nagle.disable", "true", errstr, sizeof(errstr));
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "PHX_KAFKA_CONF_", 15) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char name[300];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - *e), *e);
        if (phx_kafka_conf_apply(conf, name, eq + 1, err) < 0) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

static void phx_kafka_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    phx_kbatch *b = m->_private;
    if (!b)
        return;
    phx_producer *p = b->p;
    pthread_mutex_lock(&p->mu);
    if (m->err && !b->first_err)
        b->first_err = (int)m->err;
    if (--b->pending == 0) {
        /* The owner sleeps on its own condition (a follower) or on the producer's (a leader
         * whose report another thread's poll served). Both signalled under mu: once it is
         * released the owner may return and the record is gone. */
        if (b->leading) {
            pthread_mutex_lock(&p->evmu);
            atomic_fetch_add(&p->gen, 1);
            pthread_mutex_unlock(&p->evmu);
            pthread_cond_broadcast(&p->event);
        } else
            pthread_cond_signal(&b->cv);
    }
    pthread_mutex_unlock(&p->mu);
}

/* librdkafka's queue-event callback: an op landed on the empty main queue. Runs in a librdkafka
 * thread, which must not call librdkafka back: it only wakes the leader. */
static void phx_producer_event_cb(rd_kafka_t *rk, void *opaque)
{
    (void)rk;
    phx_producer *p = opaque;
    pthread_mutex_lock(&p->evmu);
    atomic_fetch_add(&p->gen, 1);
    pthread_mutex_unlock(&p->evmu);
    pthread_cond_broadcast(&p->event);
}

/* With mu held: when nobody leads and a follower waits, hand it the role. */
static void phx_producer_handover(phx_producer *p)
{
    if (p->leaders > 0 || !p->followers)
        return;
    phx_kbatch *f = p->followers;
    p->followers = f->next;
    f->next = NULL;
    f->lead = 1;
    pthread_cond_signal(&f->cv);
}

/* With mu held: drop b from the followers if it is still there. */
static void phx_producer_unfollow(phx_producer *p, phx_kbatch *b)
{
    for (phx_kbatch **q = &p->followers; *q; q = &(*q)->next)
        if (*q == b) {
            *q = b->next;
            b->next = NULL;
            return;
        }
}

/* Wait, mu held, until every report of b came, leading or following (file comment). */
static void phx_producer_wait(phx_producer *p, phx_kbatch *b)
{
    while (b->pending > 0) {
        if (p->leaders == 0 || b->lead) {
            b->lead = 0;
            b->leading = 1;
            p->leaders++;
            while (b->pending > 0) {
                /* Read before the poll: an op that lands after it moves gen. */
                unsigned long g = atomic_load(&p->gen);
                pthread_mutex_unlock(&p->mu);
                rd_kafka_poll(p->rk, 0);
                pthread_mutex_lock(&p->mu);
                if (b->pending == 0)
                    break;
                pthread_mutex_unlock(&p->mu);
                /* Bounded: a missed event costs at most this, never a hang. */
                struct timespec until = phx_deadline_ms(CLOCK_MONOTONIC, 100);
                pthread_mutex_lock(&p->evmu);
                while (atomic_load(&p->gen) == g &&
                       pthread_cond_timedwait(&p->event, &p->evmu, &until) == 0)
                    ;
                pthread_mutex_unlock(&p->evmu);
                pthread_mutex_lock(&p->mu);
            }
            b->leading = 0;
            p->leaders--;
            break;
        }
        b->next = p->followers;
        p->followers = b;
        pthread_cond_wait(&b->cv, &p->mu);
        phx_producer_unfollow(p, b);
    }
    /* A role handed to us after our reports came goes on to the next waiter; a leader that is
     * done hands it over too. */
    b->lead = 0;
    phx_producer_handover(p);
}

static void phx_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* PHX_KAFKA_CONF_* reaches producers and consumers alike; librdkafka warns about the
     * half that does not apply to each. That is expected, not worth an operator's time. */
    if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "will be ignored"))
        level = 7;
    phx_logj(level <= 3   ? PHX_LOG_ERROR
             : level <= 5 ? PHX_LOG_WARN
                          : PHX_LOG_DEBUG,
             NULL, NULL, "librdkafka %s: %s", fac, buf);
}

/* What nobody waits for (log and error callbacks while idle, reports of a waiter whose leader
 * hand-over raced): served every 100 ms when no waiter leads. */
static void *phx_producer_poll_main(void *arg)
{
    phx_producer *p = arg;
    phx_metric *queued = phx_gauge("phx_kafka_producer_queue_messages",
                                   "Messages (and requests) in the producer's queue, not yet "
                                   "confirmed by the brokers.",
                                   NULL);
    while (!atomic_load(&p->stop)) {
        pthread_mutex_lock(&p->mu);
        int lead = p->leaders == 0;
        if (lead)
            p->leaders++;
        pthread_mutex_unlock(&p->mu);
        if (lead) {
            rd_kafka_poll(p->rk, 0);
            pthread_mutex_lock(&p->mu);
            p->leaders--;
            phx_producer_handover(p);
            pthread_mutex_unlock(&p->mu);
        }
        phx_metric_set(queued, rd_kafka_outq_len(p->rk));
        phx_sleep_ms(100);
    }
    return NULL;
}

/* Set a property whose value is ours, not the operator's: environment passthrough wins. */
static int phx_kafka_default(rd_kafka_conf_t *conf, const char *prop, const char *val, phx_err *err)
{
    char cur[256];
    size_t sz = sizeof(cur);
    char envname[300], errstr[256];
    snprintf(envname, sizeof(envname), "PHX_KAFKA_CONF_");
    size_t j = strlen(envname);
    for (const char *s = prop; *s && j + 2 < sizeof(envname); s++)
        envname[j++] = *s == '.' ? '_' : *s;
    envname[j] = '\0';
    if (getenv(envname) && rd_kafka_conf_get(conf, prop, cur, &sz) == RD_KAFKA_CONF_OK)
        return 0;
    if (rd_kafka_conf_set(conf, prop, val, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        return phx_err_set(err, "bad_config", 0, "kafka %s: %s", prop, errstr);
    return 0;
}

phx_producer *phx_producer_new(const char *brokers, phx_err *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = phx_kafka_conf(brokers, err);
    if (!conf)
        return NULL;
    /* Idempotence implies acks=all and in-order, no-duplicate retries per partition. */
    if (rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "acks", "all", errstr, sizeof(errstr))) {
        phx_err_set(err, "bad_config", 0, "kafka producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* linger.ms=0: send at once. Every hop of a job waits for its produce to be confirmed
     * (the offset is stored only then), so linger is paid on every hop: 1 ms cost ~1.3 ms a
     * hop (librdkafka's broker thread wakes on a ms timer), ~8 ms of a 2-step chain's six
     * hops. Batching does not stop: while a request to a broker is in flight, what the other
     * threads produce meanwhile queues and leaves in the next request. Measured side by side
     * (docs/benchmarks.md, "Latency per hop"): throughput and CPU per job at 64 jobs in flight
     * no worse than with 1 ms, p50 and p99 at 120 jobs/s 20-25 % lower. (One job at a time
     * barely moves on the dev broker, whose fetch cycle sets the pace there; a real broker
     * answers a waiting fetch at once, so the ~1.3 ms a hop shows there.) A producer of many
     * small messages per partition would set it higher through PHX_KAFKA_CONF_linger_ms. */
    if (phx_kafka_default(conf, "linger.ms", "0", err) < 0 ||
        phx_kafka_default(conf, "message.timeout.ms", "30000", err) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, phx_kafka_dr_cb);
    rd_kafka_conf_set_log_cb(conf, phx_kafka_log_cb);
    phx_producer *p = phx_xcalloc(1, sizeof(*p));
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!p->rk) {
        phx_err_set(err, "bad_config", 0, "kafka producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->evmu, NULL);
    phx_cond_init_monotonic(&p->event);
    p->mainq = rd_kafka_queue_get_main(p->rk);
    rd_kafka_queue_cb_event_enable(p->mainq, phx_producer_event_cb, p);
    pthread_create(&p->poller, NULL, phx_producer_poll_main, p);
    return p;
}

rd_kafka_t *phx_producer_handle(phx_producer *p)
{
    return p->rk;
}

int phx_producer_queue_len(phx_producer *p)
{
    return rd_kafka_outq_len(p->rk);
}

static int phx_kafka_err_retryable(rd_kafka_resp_err_t e)
{
    return !(e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
             e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
             e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
             e == RD_KAFKA_RESP_ERR__INVALID_ARG || e == RD_KAFKA_RESP_ERR__FATAL);
}

/* A produce's span and metrics: latency to the last delivery report, failures by whether they
 * are retryable. */
static int phx_produce_observe(phx_span *sp, int64_t t0_ms, rd_kafka_resp_err_t e, int retryable)
{
    phx_metric_observe(phx_histogram("phx_kafka_produce_duration_seconds",
                                     "Kafka produce latency: a batch until every delivery report.",
                                     NULL, NULL, 0),
                       (double)(phx_mono_ms() - t0_ms) / 1000.0);
    if (e) {
        phx_metric_add(phx_counter("phx_kafka_produce_errors_total",
                                   "Kafka produce batches that failed, by retryability.",
                                   retryable ? "retryable=\"true\"" : "retryable=\"false\""),
                       1);
        phx_span_fail(sp, "%s", rd_kafka_err2str(e));
    }
    phx_span_end(sp);
    return e ? -1 : 0;
}

int phx_produce_batch(phx_producer *p, const phx_kmsg *msgs, int n, phx_err *err)
{
    phx_span sp;
    sp.active = 0;
    int64_t t0 = phx_mono_ms();
    if (n > 0 && phx_span_call(&sp, "kafka produce", PHX_SPAN_PRODUCER)) {
        snprintf(sp.name, sizeof(sp.name), "kafka produce %s%s", msgs[0].topic,
                 n > 1 ? " (+more)" : "");
        phx_span_set(&sp, "messaging.system", "kafka");
        phx_span_set(&sp, "messaging.batch.message_count", "%d", n);
    }
    phx_kbatch b = {.p = p, .pending = n + 1}; /* +1: ours until every message is handed over */
    pthread_cond_init(&b.cv, NULL);
    rd_kafka_resp_err_t enq_err = 0;

    for (int i = 0; i < n; i++) {
        const phx_kmsg *m = &msgs[i];
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(m->nhdrs);
        for (int h = 0; h < m->nhdrs; h++)
            rd_kafka_header_add(hdrs, m->hdrs[h].name, -1, m->hdrs[h].value, -1);
        rd_kafka_resp_err_t e;
        /* A full local queue is back-pressure, not failure: wait for it to drain. */
        for (;;) {
            e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(m->topic),
                                  RD_KAFKA_V_KEY(m->key, m->key ? strlen(m->key) : 0),
                                  RD_KAFKA_V_VALUE((void *)m->value, m->len),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(&b), RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            rd_kafka_poll(p->rk, 50);
        }
        if (e) {
            rd_kafka_headers_destroy(hdrs); /* not handed over on failure */
            enq_err = e;
            pthread_mutex_lock(&p->mu);
            b.pending -= n - i; /* this one and the rest will have no report */
            pthread_mutex_unlock(&p->mu);
            break;
        }
    }
    pthread_mutex_lock(&p->mu);
    b.pending--; /* ours */
    phx_producer_wait(p, &b);
    int first_err = b.first_err;
    pthread_mutex_unlock(&p->mu);
    pthread_cond_destroy(&b.cv);

    rd_kafka_resp_err_t e = enq_err ? enq_err : (rd_kafka_resp_err_t)first_err;
    if (e)
        phx_err_set(err,
                    e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? "kafka_too_large" : "kafka_produce",
                    phx_kafka_err_retryable(e), "kafka produce: %s", rd_kafka_err2str(e));
    return phx_produce_observe(&sp, t0, e, e ? phx_kafka_err_retryable(e) : 1);
}

void phx_producer_free(phx_producer *p, int timeout_ms)
{
    if (!p)
        return;
    atomic_store(&p->stop, 1);
    pthread_join(p->poller, NULL);
    rd_kafka_queue_cb_event_enable(p->mainq, NULL, NULL);
    rd_kafka_queue_destroy(p->mainq);
    if (rd_kafka_flush(p->rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        phx_log_warn("kafka producer: %d messages not delivered at close",
                     rd_kafka_outq_len(p->rk));
    rd_kafka_destroy(p->rk);
    pthread_cond_destroy(&p->event);
    pthread_mutex_destroy(&p->evmu);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static void phx_consumer_free(phx_consumer *c);

/* Spread the assigned partitions over the lanes: the distinct partition numbers, sorted, go to
 * lanes in turn. A partition number names the same slice of keys in every topic (the same
 * partitioner and partition count), so one job's messages on phx.jobs and phx.results meet in
 * one lane and never race each other in two threads. */
static void phx_consumer_map_lanes(phx_consumer *c, const rd_kafka_topic_partition_list_t *parts)
{
    int maxp = -1;
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].partition > maxp)
            maxp = parts->elems[i].partition;
    pthread_mutex_lock(&c->mu);
    if (maxp + 1 > c->nlane_of) {
        c->lane_of = phx_xrealloc(c->lane_of, (size_t)(maxp + 1) * sizeof(*c->lane_of));
        c->nlane_of = maxp + 1;
    }
    for (int p = 0; p < c->nlane_of; p++)
        c->lane_of[p] = -1;
    for (int i = 0; i < parts->cnt; i++)
        c->lane_of[parts->elems[i].partition] = 0; /* assigned; numbered below */
    for (int p = 0, k = 0; p < c->nlane_of; p++)
        if (c->lane_of[p] == 0)
            c->lane_of[p] = k++ % c->nlanes;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(c->rk, tp->topic, tp->partition);
        if (!pq) {
            phx_log_error("kafka: no queue for %s[%d]", tp->topic, tp->partition);
            continue;
        }
        rd_kafka_queue_forward(pq, c->lanes[c->lane_of[tp->partition]]);
        rd_kafka_queue_destroy(pq); /* the forward stays; this only drops our handle */
    }
    pthread_mutex_unlock(&c->mu);
}

/* "topic[0,3,6] other[1]" for a rebalance log line: which partitions a member holds is what an
 * operator (and `ops/dev/stack assignment`) reads to see a group's assignment, since the
 * group coordinator's view is not exposed by every broker (the dev broker has no admin API
 * for it). Truncated with "..." beyond buf. */
static void phx_consumer_parts_str(const rd_kafka_topic_partition_list_t *parts, char *buf,
                                   size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < parts->cnt && n < cap; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int same = i > 0 && strcmp(parts->elems[i - 1].topic, tp->topic) == 0;
        int last = i + 1 == parts->cnt || strcmp(parts->elems[i + 1].topic, tp->topic) != 0;
        int w =
            snprintf(buf + n, cap - n, "%s%s%s%d%s", same ? "" : (i ? " " : ""),
                     same ? "" : tp->topic, same ? "," : "[", (int)tp->partition, last ? "]" : "");
        n += w > 0 ? (size_t)w : 0;
    }
    if (n >= cap && cap > 4)
        memcpy(buf + cap - 4, "...", 4);
}

/* Rebalance: lanes first (before any fetch starts), and commit what we stored before giving
 * partitions away, so the next owner does not redo finished work (it would be harmless, but
 * it is waste). A lane may still be handling a message of a revoked partition: its offset
 * store then fails and the new owner handles the message again -- at-least-once, as between
 * two processes. */
static void phx_consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                                      rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    phx_consumer *c = opaque;
    char list[1024];
    phx_consumer_parts_str(parts, list, sizeof(list));
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        phx_log_info("kafka: assigned %d partitions: %s", parts->cnt, list);
        atomic_store(&c->fenced_ms, 0);
        atomic_store(&c->joined, 1);
        phx_consumer_map_lanes(c, parts);
        rd_kafka_assign(rk, parts);
        /* A pause outlives an assignment in librdkafka: a partition a stalled lane paused
         * may now belong to a lane that will never resume it. Start unpaused; a lane still
         * stalled pauses its own again on its next retry. */
        rd_kafka_resume_partitions(rk, parts);
    } else {
        phx_log_info("kafka: revoked %d partitions: %s", parts->cnt, list);
        phx_kafka_lag_forget(parts);
        rd_kafka_commit(rk, NULL, 0);
        rd_kafka_assign(rk, NULL);
    }
}

static int phx_kafka_err_fenced(rd_kafka_resp_err_t e)
{
    return e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
           e == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION || e == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
           e == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
}

/* A commit refused because the group is rebalancing, or because it no longer counts this
 * member, means that every message handled from now until our next assignment is handled
 * again by whoever gets its partition: its offset cannot be committed. So the lanes stop
 * taking messages until then (phx_consumer_poll) rather than do work that will be redone.
 * A Kafka broker accepts commits while it waits for members to rejoin, so there this happens
 * to a member that was fenced (its session expired during a stall); librdkafka's mock
 * cluster refuses them for the whole join phase (about the session timeout), which made
 * survivors of a killed replica redo the backlog they had just worked off. */
static void phx_consumer_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                                   rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    phx_consumer *c = opaque;
    (void)rk;
    for (int i = 0; !phx_kafka_err_fenced(e) && offsets && i < offsets->cnt; i++)
        e = offsets->elems[i].err;
    if (!phx_kafka_err_fenced(e))
        return;
    if (atomic_exchange(&c->fenced_ms, (long long)phx_mono_ms()) == 0)
        phx_log_info("kafka: commit refused (%s): taking no new messages until the group "
                     "assigns partitions again",
                     rd_kafka_err2str(e));
}

/* Whether the lanes hold off (see phx_consumer_commit_cb). */
static int phx_consumer_fenced(phx_consumer *c)
{
    long long since = atomic_load(&c->fenced_ms);
    if (since == 0)
        return 0;
    if (phx_mono_ms() - since < PHX_CONSUMER_FENCE_MAX_MS)
        return 1;
    if (atomic_compare_exchange_strong(&c->fenced_ms, &since, 0))
        phx_log_warn("kafka: no assignment %d s after a refused commit; taking messages again",
                     PHX_CONSUMER_FENCE_MAX_MS / 1000);
    return 0;
}

phx_consumer *phx_consumer_new(const char *brokers, const char *group, const char *const *topics,
                               int ntopics, int nlanes, phx_err *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = phx_kafka_conf(brokers, err);
    if (!conf)
        return NULL;
    if (rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr, sizeof(errstr))) {
        phx_err_set(err, "bad_config", 0, "kafka consumer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* earliest: a job published before its pool first joined the group is still done. */
    if (phx_kafka_default(conf, "auto.offset.reset", "earliest", err) < 0 ||
        /* 6 s, the least a Kafka broker accepts by default (group.min.session.timeout.ms):
         * a replica killed -9 holds its partitions until its session expires, so this is how
         * long its work waits. librdkafka heartbeats from its own thread, so a busy worker
         * does not miss its session; max.poll.interval.ms still catches a stuck loop. */
        phx_kafka_default(conf, "session.timeout.ms", "6000", err) < 0 ||
        phx_kafka_default(conf, "heartbeat.interval.ms", "1000", err) < 0 ||
        /* Low latency per hop: a real broker answers a fetch as soon as data arrives, so this
         * only bounds idle polling (and librdkafka's mock cluster does not long-poll at all:
         * with the 500 ms default every hop there would wait up to half a second). */
        phx_kafka_default(conf, "fetch.wait.max.ms", "20", err) < 0 ||
        /* Prefetch bound: a lane stalled on a failed dependency keeps what was fetched for
         * it (its partitions are paused, see phx_consumer_pause_lane); 1000 messages or 8 MiB
         * per partition queue keep that well inside the pool's memory budget. */
        phx_kafka_default(conf, "queued.min.messages", "1000", err) < 0 ||
        phx_kafka_default(conf, "queued.max.messages.kbytes", "8192", err) < 0 ||
        /* Consumer lag per partition comes from these reports (kafka_metrics.h). */
        phx_kafka_default(conf, "statistics.interval.ms", "5000", err) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    phx_consumer *c = phx_xcalloc(1, sizeof(*c));
    c->nlanes = nlanes > 0 ? nlanes : 1;
    pthread_mutex_init(&c->mu, NULL);
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, phx_consumer_rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, phx_consumer_commit_cb);
    rd_kafka_conf_set_stats_cb(conf, phx_kafka_stats_cb);
    rd_kafka_conf_set_log_cb(conf, phx_kafka_log_cb);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!c->rk) {
        phx_err_set(err, "bad_config", 0, "kafka consumer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        goto err;
    }
    rd_kafka_poll_set_consumer(c->rk);
    c->lanes = phx_xcalloc((size_t)c->nlanes, sizeof(*c->lanes));
    for (int i = 0; i < c->nlanes; i++)
        c->lanes[i] = rd_kafka_queue_new(c->rk);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(ntopics);
    for (int i = 0; i < ntopics; i++)
        rd_kafka_topic_partition_list_add(tl, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, tl);
    rd_kafka_topic_partition_list_destroy(tl);
    if (e) {
        phx_err_set(err, "kafka_subscribe", 1, "kafka subscribe: %s", rd_kafka_err2str(e));
        goto err;
    }
    return c;
err:
    phx_consumer_free(c);
    return NULL;
}

/* A consumer error or partition EOF is not a message: log what needs logging, free, NULL. */
static rd_kafka_message_t *phx_consumer_message(rd_kafka_message_t *m)
{
    if (!m || !m->err)
        return m;
    /* Partition EOF and transient broker errors are informational: librdkafka recovers by
     * itself. Only a fatal error would need more, and the process exits then. */
    if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        phx_log_warn("kafka consumer: %s", rd_kafka_message_errstr(m));
    rd_kafka_message_destroy(m);
    return NULL;
}

rd_kafka_message_t *phx_consumer_poll(phx_consumer *c, int lane, int timeout_ms)
{
    if (phx_consumer_fenced(c)) {
        phx_sleep_ms(timeout_ms < 50 ? timeout_ms : 50);
        return NULL;
    }
    return phx_consumer_message(rd_kafka_consume_queue(c->lanes[lane], timeout_ms));
}

int phx_consumer_joined(phx_consumer *c)
{
    return atomic_load(&c->joined);
}

/* Rewind m's partition to m, so the message is fetched again (into its lane). */
static void phx_consumer_rewind(phx_consumer *c, const rd_kafka_message_t *m)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)->offset =
        m->offset;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, l, 5000);
    if (e) {
        phx_log_warn("kafka: rewinding %s[%d] to %lld: %s", rd_kafka_topic_name(m->rkt),
                     m->partition, (long long)m->offset, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

void phx_consumer_serve(phx_consumer *c, int timeout_ms)
{
    rd_kafka_message_t *m = phx_consumer_message(rd_kafka_consumer_poll(c->rk, timeout_ms));
    if (!m)
        return;
    /* Every partition is forwarded to a lane before it is assigned, so no message should
     * arrive here; should one, it is not dropped but fetched again. */
    phx_log_warn("kafka: %s[%d]@%lld arrived outside its lane; rewinding",
                 rd_kafka_topic_name(m->rkt), m->partition, (long long)m->offset);
    phx_consumer_rewind(c, m);
    rd_kafka_message_destroy(m);
}

void phx_consumer_store(phx_consumer *c, const rd_kafka_message_t *msg)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(msg->rkt), msg->partition)->offset =
        msg->offset + 1;
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(c->rk, l);
    if (e)
        phx_log_warn("kafka: storing offset %s[%d]@%lld: %s", rd_kafka_topic_name(msg->rkt),
                     msg->partition, (long long)msg->offset, rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
}

void phx_consumer_pause_lane(phx_consumer *c, int lane, int pause)
{
    rd_kafka_topic_partition_list_t *parts = NULL, *mine = NULL;
    if (rd_kafka_assignment(c->rk, &parts) || !parts)
        return;
    mine = rd_kafka_topic_partition_list_new(parts->cnt > 0 ? parts->cnt : 1);
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        if (p >= 0 && p < c->nlane_of && c->lane_of[p] == lane)
            rd_kafka_topic_partition_list_add(mine, parts->elems[i].topic, p);
    }
    pthread_mutex_unlock(&c->mu);
    if (mine->cnt > 0)
        (pause ? rd_kafka_pause_partitions : rd_kafka_resume_partitions)(c->rk, mine);
    rd_kafka_topic_partition_list_destroy(mine);
    rd_kafka_topic_partition_list_destroy(parts);
}

void phx_consumer_commit(phx_consumer *c, int sync)
{
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, NULL, !sync);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        phx_log_warn("kafka: commit: %s", rd_kafka_err2str(e));
}

static void phx_consumer_free(phx_consumer *c)
{
    if (!c)
        return;
    for (int i = 0; c->lanes && i < c->nlanes; i++)
        if (c->lanes[i])
            rd_kafka_queue_destroy(c->lanes[i]);
    free(c->lanes);
    if (c->rk)
        rd_kafka_destroy(c->rk);
    pthread_mutex_destroy(&c->mu);
    free(c->lane_of);
    free(c);
}

void phx_consumer_close(phx_consumer *c)
{
    if (!c)
        return;
    phx_consumer_commit(c, 1);
    rd_kafka_consumer_close(c->rk);
    phx_consumer_free(c);
}

int phx_kafka_ping(rd_kafka_t *rk, int timeout_ms, char *why, size_t whylen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
    if (e) {
        snprintf(why, whylen, "kafka: %s", rd_kafka_err2str(e));
        return -1;
    }
    int nb = md->broker_cnt;
    rd_kafka_metadata_destroy(md);
    if (nb == 0) {
        snprintf(why, whylen, "kafka: no brokers in metadata");
        return -1;
    }
    return 0;
}

const char *phx_kafka_header(const rd_kafka_message_t *m, const char *name, char *buf,
                             size_t buflen)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t sz;
    if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, &sz))
        return NULL;
    if (!v || sz >= buflen)
        return NULL;
    memcpy(buf, v, sz);
    buf[sz] = '\0';
    return buf;
}

rd_kafka_conf_t *phx_kafka_reader_conf(const char *brokers, const char *group, phx_err *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = phx_kafka_conf(brokers, err);
    if (!conf)
        return NULL;
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    /* A default, like the pools' consumers have, not an override: a reader waiting for a reply
     * (`phx submit --wait`, phx-bench) is the job's last hop, and against the dev broker, which
     * holds an empty fetch for all of fetch.wait.max.ms, the 20 ms this used to force put 0-20
     * ms on every reply phx-bench measured while the stack's own consumers ran at the 2 ms the
     * environment asked for (docs/benchmarks.md, "The benchmark's reply reader"). */
    if (phx_kafka_default(conf, "fetch.wait.max.ms", "20", err) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

rd_kafka_t *phx_kafka_reader(const char *brokers, const char *topic, const char *group,
                             enum phx_read_from from, int64_t **hi, int *nparts, phx_err *err)
{
    char errstr[512];
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    int64_t *marks = NULL;
    rd_kafka_conf_t *conf = phx_kafka_reader_conf(brokers, group, err);
    if (!conf)
        return NULL;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        phx_err_set(err, "bad_config", 0, "kafka consumer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (!e && (md->topic_cnt != 1 || md->topics[0].err))
        e = md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (e) {
        phx_err_set(err, "kafka_unavailable", 1, "topic %s: %s", topic, rd_kafka_err2str(e));
        goto err;
    }
    int n = md->topics[0].partition_cnt;
    marks = phx_xcalloc((size_t)n, sizeof(*marks));
    parts = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id);
    if (from == PHX_READ_FROM_MARK && (e = rd_kafka_committed(rk, parts, 10000)))
        phx_log_warn("kafka: mark of %s unreadable (%s); reading from the start", group,
                     rd_kafka_err2str(e));
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t lo, h;
        if ((e = rd_kafka_query_watermark_offsets(rk, topic, p->partition, &lo, &h, 10000))) {
            phx_err_set(err, "kafka_unavailable", 1, "offsets of %s[%d]: %s", topic, p->partition,
                        rd_kafka_err2str(e));
            goto err;
        }
        if (p->partition >= 0 && p->partition < n)
            marks[p->partition] = h;
        if (from == PHX_READ_FROM_END)
            p->offset = h;
        else if (from == PHX_READ_FROM_START || p->offset < lo)
            p->offset = lo; /* also: no mark committed yet (a negative logical offset) */
    }
    if ((e = rd_kafka_assign(rk, parts))) {
        phx_err_set(err, "kafka_unavailable", 1, "assign %s: %s", topic, rd_kafka_err2str(e));
        goto err;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_metadata_destroy(md);
    if (hi) {
        *hi = marks;
        *nparts = n;
    } else {
        free(marks);
    }
    return rk;
err:
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    if (md)
        rd_kafka_metadata_destroy(md);
    free(marks);
    rd_kafka_destroy(rk);
    return NULL;
}

int phx_kafka_snapshot_scan(rd_kafka_t *rk, const int64_t *hi, int nparts, int timeout_ms,
                            phx_kafka_visit_fn fn, void *arg)
{
    int rc = 0;
    int64_t deadline = phx_mono_ms() + timeout_ms;
    int64_t *next = phx_xcalloc((size_t)nparts, sizeof(*next));
    rd_kafka_topic_partition_list_t *pos = NULL;
    rd_kafka_assignment(rk, &pos);
    for (int i = 0; pos && i < pos->cnt; i++)
        if (pos->elems[i].partition < nparts)
            next[pos->elems[i].partition] = pos->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(pos);
    for (;;) {
        int pending = 0;
        for (int i = 0; i < nparts; i++)
            pending += next[i] < hi[i];
        if (!pending)
            break;
        if (phx_mono_ms() > deadline) {
            rc = -1;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m)
            continue;
        if (m->err || m->partition >= nparts) {
            rd_kafka_message_destroy(m);
            continue;
        }
        next[m->partition] = m->offset + 1;
        int v = m->offset < hi[m->partition] ? fn(arg, m) : 0;
        rd_kafka_message_destroy(m);
        if (v != 0) {
            rc = v < 0 ? -1 : 0;
            break;
        }
    }
    free(next);
    return rc;
}
