/* probe.c -- `phx probe`: synthetic monitoring. Submits a canary job on an interval, waits for
 * its reply, and exports the outcomes and the end-to-end latency as Prometheus metrics on its
 * own admin port (lib/admin.c: /metrics, /healthz, /readyz), until SIGTERM.
 *
 * Why a canary beside the per-process metrics: every process can look healthy while the
 * pipeline as a whole does not answer (a topic nobody consumes, a wrong reply_to, a planner
 * that dispatches into the void). The canary walks the same path a client's job does --
 * phx.jobs, the planner, a pool, phx.results, the reply topic -- so its failure is the
 * user-visible symptom, and its latency the user-visible latency.
 *
 * The job is published exactly as `phx submit` publishes one (same envelope, same checks), and
 * the reply is read the same race-free way: a reader at the end of the reply topic taken before
 * the first canary goes out. The default canary is one tool.calc step computing 6*7, and its
 * output must be 42: a pipeline that answers wrongly fails the probe too. A canary of one's
 * own (--job FILE) passes when its reply says succeeded. With --count N it stops after N
 * canaries and exits 1 unless every one passed (a one-shot check for scripts). Each canary gets a
 * fresh id and a deadline equal to the probe's timeout, so a stuck one is failed by the planner,
 * not kept.
 *
 * Canaries run one after another (a slow reply delays the next one rather than piling up
 * load on a pipeline that is already in trouble). The reader sees every reply on the topic:
 * on a busy deployment give the probe a reply topic of its own (--reply-topic). */
#include "admin.h"
#include "cli.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "util.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char phx_probe_default_job[] =
    "{\"steps\": [{\"id\": \"canary\", \"kind\": \"tool.calc\", \"input\": {\"expr\": \"6*7\"}}]}";

/* End-to-end latency buckets (seconds): a healthy local stack answers in tens of ms; the
 * upper buckets tell a slow pipeline from a stuck one. */
static const double phx_probe_buckets[] = {.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60};

typedef struct phx_probe_cfg {
    int interval_s, timeout_s, count;
    const char *admin, *job_file, *tenant, *reply_topic;
} phx_probe_cfg;

static void phx_probe_usage(FILE *f)
{
    fprintf(f, "usage: phx probe [--interval S] [--timeout S] [--admin HOST:PORT] [--job FILE]\n"
               "                 [--tenant T] [--reply-topic T] [--count N]\n");
}

static int phx_probe_int(const char *arg, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (*end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int phx_probe_args(int argc, char **argv, phx_probe_cfg *cfg)
{
    static const struct option opts[] = {{"interval", required_argument, NULL, 'i'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"admin", required_argument, NULL, 'a'},
                                         {"job", required_argument, NULL, 'j'},
                                         {"tenant", required_argument, NULL, 'T'},
                                         {"reply-topic", required_argument, NULL, 'r'},
                                         {"count", required_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    *cfg = (phx_probe_cfg){.interval_s = 15,
                           .timeout_s = 30,
                           .admin = "127.0.0.1:0",
                           .tenant = "probe",
                           .reply_topic = PHX_TOPIC_REPLIES};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'i':
            bad = phx_probe_int(optarg, 1, 86400, &cfg->interval_s);
            break;
        case 't':
            bad = phx_probe_int(optarg, 1, 3600, &cfg->timeout_s);
            break;
        case 'n':
            bad = phx_probe_int(optarg, 1, 1000000, &cfg->count);
            break;
        case 'a':
            cfg->admin = optarg;
            break;
        case 'j':
            cfg->job_file = optarg;
            break;
        case 'T':
            cfg->tenant = optarg;
            break;
        case 'r':
            cfg->reply_topic = optarg;
            break;
        case 'h':
            phx_probe_usage(stdout);
            return 1;
        default:
            bad = 1;
        }
        if (bad) {
            fprintf(stderr, "phx probe: bad option or value%s%s\n", optarg ? ": " : "",
                    optarg ? optarg : "");
            phx_probe_usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        phx_probe_usage(stderr);
        return -1;
    }
    return 0;
}

static void phx_probe_count(const char *outcome)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "outcome=\"%s\"", outcome);
    phx_metric_add(phx_counter("phx_probe_runs_total",
                               "Canary jobs by outcome: succeeded, failed (the reply was not a "
                               "success, or a wrong answer), timeout (no reply in time), error "
                               "(could not be published).",
                               labels),
                   1);
}

/* The canary template: --job FILE, or the built-in tool.calc job. NULL after printing why. */
static json_t *phx_probe_template(const phx_probe_cfg *cfg)
{
    size_t len = sizeof(phx_probe_default_job) - 1;
    char *buf = cfg->job_file ? phx_cli_read(cfg->job_file, &len) : strdup(phx_probe_default_job);
    if (!buf)
        return NULL;
    json_t *job = phx_cli_job(buf, len, cfg->job_file ? cfg->job_file : "the built-in canary");
    free(buf);
    if (!job)
        return NULL;
    json_object_set_new(job, "tenant", json_string(cfg->tenant));
    json_object_set_new(job, "reply_to", json_string(cfg->reply_topic));
    json_object_set_new(job, "deadline_ms", json_integer((json_int_t)cfg->timeout_s * 1000));
    return job;
}

/* Did the reply pass? The built-in canary must also have computed 42. */
static int phx_probe_judge(const phx_probe_cfg *cfg, json_t *reply, char *why, size_t whylen)
{
    const char *status = json_string_value(json_object_get(reply, "status"));
    if (!status || strcmp(status, "succeeded") != 0) {
        json_t *e = json_object_get(reply, "error");
        snprintf(why, whylen, "job %s: %s", status ? status : "?",
                 json_string_value(json_object_get(e, "code")) ?: "no error code");
        return 0;
    }
    if (!cfg->job_file) {
        json_t *v =
            json_object_get(json_object_get(json_object_get(reply, "outputs"), "canary"), "value");
        if (json_number_value(v) != 42) {
            snprintf(why, whylen, "the canary computed a wrong answer (6*7 != 42)");
            return 0;
        }
    }
    return 1;
}

/* One canary: publish, wait, count. 1 when it succeeded. */
static int phx_probe_once(const phx_probe_cfg *cfg, json_t *tmpl, phx_producer *p, rd_kafka_t *rk,
                          phx_metric *latency, phx_metric *last_ok)
{
    char gid[27], id[64], tp[56], why[256];
    phx_id_new(gid);
    snprintf(id, sizeof(id), "probe-%s", gid);
    json_t *job = json_deep_copy(tmpl);
    json_object_set_new(job, "id", json_string(id));
    json_object_set_new(job, "submitted_ms", json_integer((json_int_t)phx_now_ms()));
    char *body = json_dumps(job, JSON_COMPACT);
    json_decref(job);
    phx_traceparent_new(tp);
    phx_kmsg m;
    phx_job_kmsg(&m, id, cfg->tenant, body, tp);
    phx_err err;
    phx_err_clear(&err);
    int64_t t0 = phx_mono_ms();
    int rc = phx_produce_batch(p, &m, 1, &err);
    free(body);
    if (rc < 0) {
        phx_probe_count("error");
        phx_logj(PHX_LOG_WARN, id, NULL, "probe: could not publish the canary: %s", err.message);
        return 0;
    }
    json_t *reply = phx_cli_await_reply(rk, id, t0 + (int64_t)cfg->timeout_s * 1000);
    double secs = (double)(phx_mono_ms() - t0) / 1000.0;
    if (!reply) {
        phx_probe_count("timeout");
        phx_logj(PHX_LOG_WARN, id, NULL, "probe: no reply within %d s", cfg->timeout_s);
        return 0;
    }
    int ok = phx_probe_judge(cfg, reply, why, sizeof(why));
    if (ok) {
        phx_probe_count("succeeded");
        phx_metric_observe(latency, secs);
        phx_metric_set(last_ok, (double)phx_now_ms() / 1000.0);
        phx_logj(PHX_LOG_DEBUG, id, NULL, "probe: ok in %.3f s", secs);
    } else {
        phx_probe_count("failed");
        phx_logj(PHX_LOG_WARN, id, NULL, "probe: failed after %.3f s: %s", secs, why);
    }
    json_decref(reply);
    return ok;
}

int phx_cli_probe(const phx_cli_env *env, int argc, char **argv)
{
    phx_probe_cfg cfg;
    int a = phx_probe_args(argc, argv, &cfg);
    if (a != 0)
        return a > 0 ? PHX_EXIT_OK : PHX_EXIT_USAGE;
    json_t *tmpl = phx_probe_template(&cfg);
    if (!tmpl)
        return PHX_EXIT_USAGE;
    phx_log_init("phx-probe", PHX_LOG_INFO);
    phx_metrics_set_process("phx-probe");
    sigset_t sigs;
    phx_signals_block(&sigs);
    int rc = PHX_EXIT_INFRA;
    char e[256];
    phx_err err;
    phx_err_clear(&err);
    phx_admin *admin = NULL;
    phx_producer *p = NULL;
    rd_kafka_t *rk = phx_cli_reply_consumer(env->brokers, cfg.reply_topic);
    if (!rk)
        goto out;
    if (!(p = phx_producer_new(env->brokers, &err))) {
        phx_log_error("probe: %s", err.message);
        goto out;
    }
    if (!(admin = phx_admin_start(cfg.admin, NULL, NULL, e, sizeof(e)))) {
        phx_log_error("probe: admin listener on %s: %s", cfg.admin, e);
        rc = PHX_EXIT_USAGE;
        goto out;
    }
    /* Registered up front so every series exists (at 0) from the first scrape: an alert on
     * increase() needs the series to exist before the first failure. */
    const char *outcomes[] = {"succeeded", "failed", "timeout", "error"};
    for (int i = 0; i < 4; i++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "outcome=\"%s\"", outcomes[i]);
        phx_metric_add(phx_counter("phx_probe_runs_total",
                                   "Canary jobs by outcome: succeeded, failed (the reply was not "
                                   "a success, or a wrong answer), timeout (no reply in time), "
                                   "error (could not be published).",
                                   labels),
                       0);
    }
    phx_metric *latency = phx_histogram(
        "phx_probe_latency_seconds",
        "End-to-end latency of successful canary jobs: published to phx.jobs until the reply.",
        NULL, phx_probe_buckets, (int)(sizeof(phx_probe_buckets) / sizeof(phx_probe_buckets[0])));
    phx_metric *last_ok = phx_gauge("phx_probe_last_success_timestamp_seconds",
                                    "When a canary last succeeded (Unix time; 0 = never).", NULL);
    phx_metric_set(phx_gauge("phx_probe_interval_seconds", "Seconds between canaries.", NULL),
                   cfg.interval_s);
    phx_log_info("probe: a canary every %d s (timeout %d s, tenant %s, replies on %s); admin "
                 "port %d",
                 cfg.interval_s, cfg.timeout_s, cfg.tenant, cfg.reply_topic, phx_admin_port(admin));
    rc = PHX_EXIT_OK;
    for (int n = 0; !cfg.count || n < cfg.count; n++) {
        int64_t next = phx_mono_ms() + (int64_t)cfg.interval_s * 1000;
        phx_admin_heartbeat(admin);
        if (!phx_probe_once(&cfg, tmpl, p, rk, latency, last_ok) && cfg.count)
            rc = PHX_EXIT_FAILED; /* --count: the exit code says whether every canary passed */
        phx_admin_heartbeat(admin);
        if (cfg.count && n + 1 == cfg.count)
            break;
        int sig = 0;
        while (!sig && phx_mono_ms() < next) {
            int64_t left = next - phx_mono_ms();
            struct timespec ts = {0, (left < 200 ? left : 200) * 1000000};
            sig = sigtimedwait(&sigs, NULL, &ts);
            phx_admin_heartbeat(admin);
            if (sig < 0 || sig == SIGHUP) /* -1: the wait timed out */
                sig = 0;
        }
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    phx_log_info("probe: stopping");
out:
    phx_admin_stop(admin);
    phx_producer_free(p, 5000);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    json_decref(tmpl);
    return rc;
}
