/* main.c -- phx-bench: drive a Phoenix stack with a fixed job mix and report what it cost.
 *
 * Lives in ops/ next to phx-devbroker and the stack script rather than under tests/: it is an
 * operator's tool that points at any stack (the local one by default, a staging cluster by
 * environment), not a test -- the test suite only runs a short smoke of it. See load.h for the
 * load and its two modes, probe.h for what is measured besides latency, and
 * docs/benchmarks.md for the figures `make bench` records with it.
 *
 * Exit codes: 0 every job answered correctly once; 1 some job was lost, failed, answered
 * wrongly or twice; 2 usage; 4 the stack could not be reached. */
#include "hist.h"
#include "load.h"
#include "msg.h"
#include "probe.h"
#include "redis.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct phx_bench_opts {
    phx_bench_cfg load;
    const char *json_path, *label, *redis_url, *var_dir;
    long warmup;
    char mix[128];
} phx_bench_opts;

static void phx_bench_usage(FILE *f)
{
    fprintf(f,
            "Usage: phx-bench [OPTION]...\n"
            "\n"
            "Publish jobs to phx.jobs (as `phx submit` does), read their replies, and report\n"
            "jobs/s, steps/s, end-to-end latency p50/p90/p99/p99.9 (log-bucketed histogram,\n"
            "1.6 %% resolution), CPU seconds per 1,000 jobs and peak RSS of each stack process,\n"
            "Redis commands and round trips per job and Kafka messages per job.\n"
            "\n"
            "Options:\n"
            "  --jobs N           jobs to run (default 2000)\n"
            "  --rate R           open loop: publish R jobs/s on a fixed schedule and measure\n"
            "                     latency from each job's intended send time (no coordinated\n"
            "                     omission). Without it: closed loop (maximum throughput).\n"
            "  --concurrency C    closed loop: jobs in flight (default 64)\n"
            "  --mix SPEC         job mix as KIND:WEIGHT,... with KIND chain (2 tool.calc steps),\n"
            "                     dag (5 tool.calc steps, fan-out/fan-in) or exec (exec.run of\n"
            "                     `exit 0`); default chain:1\n"
            "  --warmup N         run N jobs first, unmeasured (default 0)\n"
            "  --timeout S        wait S seconds for replies after the last send (default 30)\n"
            "  --reply-topic T    where replies arrive (default phx.replies)\n"
            "  --tenant T         tenant of the jobs (default default)\n"
            "  --label TEXT       name of this run in the report\n"
            "  --json FILE        also write the report as JSON to FILE\n"
            "  --progress         draw a progress bar on stderr (default: when it is a "
            "terminal)\n"
            "  --no-progress      never draw one\n"
            "  -h, --help         this text\n"
            "\n"
            "Environment:\n"
            "  PHX_KAFKA_BROKERS  the stack's Kafka; when unset, read from $PHX_VAR/stack.env\n"
            "  PHX_REDIS_URL      the stack's Redis (for INFO commandstats), same fallback\n"
            "  PHX_VAR            a stack directory of ops/dev/stack (default ./var): its\n"
            "                     run/NAME.pid and NAME.admin name the processes to measure\n"
            "\n"
            "Exit: 0 all jobs answered correctly once; 1 lost, failed, wrong or duplicate\n"
            "replies; 2 usage; 4 stack unreachable.\n");
}

/* VALUE of `export NAME=VALUE` in the stack's env file (malloc'd), or NULL. */
static char *phx_bench_stack_env(const char *var_dir, const char *name)
{
    char path[512], line[1024], *v = NULL;
    snprintf(path, sizeof(path), "%s/stack.env", var_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t nl = strlen(name);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "export ", 7) == 0 && strncmp(line + 7, name, nl) == 0 &&
            line[7 + nl] == '=') {
            free(v);
            v = strndup(line + 8 + nl, strcspn(line + 8 + nl, "\n"));
        }
    }
    fclose(f);
    return v;
}

/* A stack setting: from the environment when set and not empty, else from the stack's env file
 * (malloc'd, or NULL). */
static char *phx_bench_setting(const char *var_dir, const char *name)
{
    const char *v = getenv(name);
    return v && *v ? strdup(v) : phx_bench_stack_env(var_dir, name);
}

static int phx_bench_parse_mix(const char *spec, int *w)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", spec);
    memset(w, 0, sizeof(int) * PHX_BENCH_NKINDS);
    int total = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':'), *end;
        long weight = 1;
        if (colon) {
            *colon = '\0';
            weight = strtol(colon + 1, &end, 10);
            if (*end || weight < 0 || weight > 1000)
                return -1;
        }
        int k;
        for (k = 0; k < PHX_BENCH_NKINDS; k++)
            if (strcmp(tok, phx_bench_kind_names[k]) == 0)
                break;
        if (k == PHX_BENCH_NKINDS)
            return -1;
        w[k] = (int)weight;
        total += (int)weight;
    }
    return total > 0 ? 0 : -1;
}

static int phx_bench_num(const char *opt, const char *s, double lo, double hi, double *v)
{
    char *end;
    *v = strtod(s, &end);
    if (*end || *v < lo || *v > hi) {
        fprintf(stderr, "phx-bench: %s wants a number in [%g, %g], not '%s'\n", opt, lo, hi, s);
        return -1;
    }
    return 0;
}

static int phx_bench_args(int argc, char **argv, phx_bench_opts *o)
{
    static const struct option opts[] = {{"jobs", required_argument, NULL, 'n'},
                                         {"rate", required_argument, NULL, 'r'},
                                         {"concurrency", required_argument, NULL, 'c'},
                                         {"mix", required_argument, NULL, 'm'},
                                         {"warmup", required_argument, NULL, 'w'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"reply-topic", required_argument, NULL, 'R'},
                                         {"tenant", required_argument, NULL, 'T'},
                                         {"label", required_argument, NULL, 'l'},
                                         {"json", required_argument, NULL, 'j'},
                                         {"progress", no_argument, NULL, 'p'},
                                         {"no-progress", no_argument, NULL, 'P'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    phx_bench_cfg *l = &o->load;
    l->jobs = 2000, l->concurrency = 64, l->timeout_s = 30;
    l->reply_topic = PHX_TOPIC_REPLIES, l->tenant = "default";
    l->progress = isatty(STDERR_FILENO);
    snprintf(o->mix, sizeof(o->mix), "chain:1");
    int c;
    double v;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
        case 'w':
            if (phx_bench_num(c == 'n' ? "--jobs" : "--warmup", optarg, c == 'n', 1e8, &v) < 0)
                return -1;
            *(c == 'n' ? &l->jobs : &o->warmup) = (long)v;
            break;
        case 'r':
            if (phx_bench_num("--rate", optarg, 0.1, 1e6, &l->rate) < 0)
                return -1;
            break;
        case 'c':
            if (phx_bench_num("--concurrency", optarg, 1, 100000, &v) < 0)
                return -1;
            l->concurrency = (int)v;
            break;
        case 't':
            if (phx_bench_num("--timeout", optarg, 1, 86400, &v) < 0)
                return -1;
            l->timeout_s = (int)v;
            break;
        case 'm':
            if (phx_bench_parse_mix(optarg, l->weights) < 0) {
                fprintf(stderr,
                        "phx-bench: --mix wants KIND:WEIGHT,... with KIND chain, dag or "
                        "exec, not '%s'\n",
                        optarg);
                return -1;
            }
            snprintf(o->mix, sizeof(o->mix), "%s", optarg);
            break;
        case 'R':
            l->reply_topic = optarg;
            break;
        case 'T':
            l->tenant = optarg;
            break;
        case 'l':
            o->label = optarg;
            break;
        case 'j':
            o->json_path = optarg;
            break;
        case 'p':
        case 'P':
            l->progress = c == 'p';
            break;
        case 'h':
            phx_bench_usage(stdout);
            exit(0);
        default:
            phx_bench_usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "phx-bench: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!l->weights[0] && !l->weights[1] && !l->weights[2])
        phx_bench_parse_mix(o->mix, l->weights);
    return 0;
}

static json_t *phx_bench_lat(const phx_hist *h)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "p50", phx_hist_pct(h, 50) / 1e3, "p90",
                     phx_hist_pct(h, 90) / 1e3, "p99", phx_hist_pct(h, 99) / 1e3, "p99_9",
                     phx_hist_pct(h, 99.9) / 1e3, "max", h->n ? h->max / 1e3 : 0.0, "min",
                     h->n ? h->min / 1e3 : 0.0, "mean", phx_hist_mean(h) / 1e3);
}

static json_t *phx_bench_report_json(const phx_bench_opts *o, const phx_bench_result *res,
                                     json_t *probe)
{
    const phx_bench_cfg *l = &o->load;
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:o}", "label",
        o->label ? o->label : "", "mode", l->rate > 0 ? "open" : "closed", "mix", o->mix, "jobs",
        (json_int_t)l->jobs, "sent", (json_int_t)res->sent, "replied", (json_int_t)res->replied,
        "succeeded", (json_int_t)res->succeeded, "failed", (json_int_t)res->failed, "wrong",
        (json_int_t)res->wrong, "duplicates", (json_int_t)res->duplicates, "lost",
        (json_int_t)res->lost, "elapsed_s", res->elapsed_s, "jobs_per_s",
        res->elapsed_s > 0 ? (double)res->replied / res->elapsed_s : 0.0, "steps_per_s",
        res->elapsed_s > 0 ? (double)res->steps / res->elapsed_s : 0.0, "max_send_lag_ms",
        res->max_send_lag_ms, "latency_ms", phx_bench_lat(&res->all));
    if (l->rate > 0)
        json_object_set_new(j, "rate", json_real(l->rate));
    else
        json_object_set_new(j, "concurrency", json_integer(l->concurrency));
    json_t *kinds = json_object();
    for (int k = 0; k < PHX_BENCH_NKINDS; k++) {
        if (!res->jobs_by_kind[k])
            continue;
        json_t *lat = phx_bench_lat(&res->by_kind[k]);
        json_object_set_new(lat, "jobs", json_integer(res->jobs_by_kind[k]));
        json_object_set_new(kinds, phx_bench_kind_names[k], lat);
    }
    json_object_set_new(j, "by_kind", kinds);
    json_object_update(j, probe);
    return j;
}

static void phx_bench_print_by(const char *what, const json_t *by)
{
    const char *k;
    json_t *v;
    printf("  %s:", what);
    json_object_foreach((json_t *)by, k, v) printf(" %s %.2f", k, json_real_value(v));
    printf("\n");
}

static void phx_bench_report_text(const json_t *j)
{
    const json_t *lat = json_object_get(j, "latency_ms");
    printf("phx-bench %s: %s loop, mix %s, %lld jobs\n",
           json_string_value(json_object_get(j, "label")),
           json_string_value(json_object_get(j, "mode")),
           json_string_value(json_object_get(j, "mix")),
           (long long)json_integer_value(json_object_get(j, "jobs")));
    printf("jobs        %lld sent, %lld replied, %lld succeeded, %lld failed, %lld wrong, %lld "
           "duplicate, %lld lost\n",
           json_integer_value(json_object_get(j, "sent")),
           json_integer_value(json_object_get(j, "replied")),
           json_integer_value(json_object_get(j, "succeeded")),
           json_integer_value(json_object_get(j, "failed")),
           json_integer_value(json_object_get(j, "wrong")),
           json_integer_value(json_object_get(j, "duplicates")),
           json_integer_value(json_object_get(j, "lost")));
    printf("throughput  %.1f jobs/s, %.1f steps/s over %.2f s\n",
           json_real_value(json_object_get(j, "jobs_per_s")),
           json_real_value(json_object_get(j, "steps_per_s")),
           json_real_value(json_object_get(j, "elapsed_s")));
    const char *k;
    json_t *v;
    printf("latency ms  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f\n",
           json_real_value(json_object_get(lat, "p50")),
           json_real_value(json_object_get(lat, "p90")),
           json_real_value(json_object_get(lat, "p99")),
           json_real_value(json_object_get(lat, "p99_9")),
           json_real_value(json_object_get(lat, "max")),
           json_real_value(json_object_get(lat, "mean")));
    json_object_foreach(json_object_get(j, "by_kind"), k, v)
    {
        printf("  %-9s %lld jobs: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f\n", k,
               json_integer_value(json_object_get(v, "jobs")),
               json_real_value(json_object_get(v, "p50")),
               json_real_value(json_object_get(v, "p90")),
               json_real_value(json_object_get(v, "p99")),
               json_real_value(json_object_get(v, "p99_9")));
    }
    if (json_object_get(j, "redis_cmds_per_job")) {
        printf("redis       %.2f commands/job (INFO commandstats, script-internal calls "
               "included)\n",
               json_real_value(json_object_get(j, "redis_cmds_per_job")));
        phx_bench_print_by("per job", json_object_get(j, "redis_cmds_per_job_by_cmd"));
    }
    if (json_object_get(j, "redis_round_trips_per_job"))
        printf("            %.2f round trips/job, %.2f per step (clients' "
               "phx_redis_commands_total)\n",
               json_real_value(json_object_get(j, "redis_round_trips_per_job")),
               json_real_value(json_object_get(j, "redis_round_trips_per_step")));
    if (json_object_get(j, "kafka_msgs_per_job")) {
        printf("kafka       %.2f messages/job\n",
               json_real_value(json_object_get(j, "kafka_msgs_per_job")));
        phx_bench_print_by("per job", json_object_get(j, "kafka_msgs_per_job_by_topic"));
    }
    json_t *procs = json_object_get(j, "procs");
    if (json_object_size(procs) == 0) {
        printf("processes   not measured (no stack directory with pid files; set PHX_VAR)\n");
        return;
    }
    printf("%-11s %12s %12s %10s %14s\n", "process", "cpu s/1k job", "peak RSS MB", "RSS MB",
           "redis RT/job");
    json_object_foreach(procs, k, v)
    {
        json_t *rt = json_object_get(v, "redis_round_trips");
        long long jobs = json_integer_value(json_object_get(j, "replied"));
        printf("%-11s %12.3f %12.1f %10.1f", k,
               json_real_value(json_object_get(v, "cpu_s_per_1k_jobs")),
               json_integer_value(json_object_get(v, "peak_rss_kb")) / 1024.0,
               json_integer_value(json_object_get(v, "rss_kb")) / 1024.0);
        if (rt && jobs)
            printf(" %14.2f\n", json_real_value(rt) / (double)jobs);
        else
            printf(" %14s\n", "-");
    }
}

int main(int argc, char **argv)
{
    phx_bench_opts o = {0};
    if (phx_bench_args(argc, argv, &o) < 0)
        return 2;
    const char *var = getenv("PHX_VAR");
    o.var_dir = var && *var ? var : "var";
    char *brokers = phx_bench_setting(o.var_dir, "PHX_KAFKA_BROKERS");
    char *rurl = phx_bench_setting(o.var_dir, "PHX_REDIS_URL");
    int rc = 4;
    phx_err err;
    phx_err_clear(&err);
    phx_redis *r = NULL;
    phx_probe_snap before = {0}, after = {0};
    if (!brokers) {
        fprintf(stderr,
                "phx-bench: no PHX_KAFKA_BROKERS and no %s/stack.env (run make up, or "
                "set PHX_VAR)\n",
                o.var_dir);
        goto out;
    }
    o.load.brokers = brokers;
    if (!(o.load.producer = phx_producer_new(brokers, &err)))
        goto fail;
    char why[256];
    if (phx_kafka_ping(phx_producer_handle(o.load.producer), 5000, why, sizeof(why)) != 0) {
        phx_err_set(&err, "kafka_unavailable", 1, "kafka %s: %s", brokers, why);
        goto fail;
    }
    if (rurl && !(r = phx_redis_new(rurl, getenv("PHX_REDIS_PASSWORD_FILE"), 5000, &err)))
        goto fail;
    phx_bench_result res;
    if (o.warmup > 0) {
        phx_bench_cfg w = o.load;
        w.jobs = o.warmup;
        if (phx_bench_run(&w, &res, &err) < 0)
            goto fail;
    }
    phx_probe_take(&before, o.var_dir, r, phx_producer_handle(o.load.producer));
    phx_probe_reset_peaks(&before);
    if (phx_bench_run(&o.load, &res, &err) < 0)
        goto fail;
    /* Replies are sent before the planner's last bookkeeping (reply mark, key expiry): let
     * it land so the per-job counts are whole. */
    phx_sleep_ms(300);
    phx_probe_take(&after, o.var_dir, r, phx_producer_handle(o.load.producer));
    json_t *probe = phx_probe_diff(&before, &after, res.replied, res.steps);
    json_t *report = phx_bench_report_json(&o, &res, probe);
    json_decref(probe);
    phx_bench_report_text(report);
    if (o.json_path && json_dump_file(report, o.json_path, JSON_INDENT(2)) != 0)
        fprintf(stderr, "phx-bench: cannot write %s\n", o.json_path);
    json_decref(report);
    rc = res.lost || res.failed || res.wrong || res.duplicates ? 1 : 0;
    goto out;
fail:
    fprintf(stderr, "phx-bench: %s\n", err.message);
out:
    phx_probe_free(&before);
    phx_probe_free(&after);
    phx_redis_free(r);
    if (o.load.producer)
        phx_producer_free(o.load.producer, 5000);
    free(brokers);
    free(rurl);
    return rc;
}
