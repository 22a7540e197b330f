/* redteam.c -- `phx redteam`: options, the shared plumbing of the suites (jobs through
 * phx.jobs/phx.replies, HTTP to the ingress, the canary listener) and the scorecard.
 *
 * It is a subcommand of phx rather than a binary of its own because it needs exactly what the
 * CLI already is: a Kafka producer and snapshot readers configured from PHX_KAFKA_*, plus
 * libcurl; and because operators already have phx wherever they run a deployment. */
#include "redteam.h"
#include "kafka.h"
#include "msg.h"
#include "util.h"

#include <curl/curl.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RT_EXIT_ESCAPED 1

static const char rt_usage[] =
    "usage: phx redteam [--suites LIST] [--quick] [--json] [--timeout S] [--verbose]\n"
    "  Attack a live deployment through its public interfaces and print a scorecard.\n"
    "  LIST: comma-separated of exec, safety, ssrf, auth, payload (default: all).\n"
    "  Exit: 0 all contained; 1 an escape or a detection rate under its minimum;\n"
    "  3 a case could not be decided (no answer, unexpected status); 4 Kafka unreachable.\n";

void rt_case(rt_suite *s, const char *name, enum rt_outcome o, const char *fmt, ...)
{
    static const char *const names[] = {"contained", "escaped", "error", "skipped"};
    char detail[512] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
    }
    phx_utf8_scrub(detail);
    if (o != RT_SKIPPED)
        s->tried++;
    switch (o) {
    case RT_CONTAINED:
        s->contained++;
        break;
    case RT_ESCAPED:
        s->escaped++;
        break;
    case RT_ERROR:
        s->errors++;
        break;
    case RT_SKIPPED:
        s->skipped++;
        break;
    }
    json_array_append_new(s->cases, json_pack("{s:s, s:s, s:s}", "name", name, "outcome", names[o],
                                              "detail", detail));
}

/* --- jobs through the pipeline ------------------------------------------------------------ */

json_t *rt_job1(const rt_ctx *c, const char *prefix, const char *kind, json_t *input,
                int timeout_ms)
{
    char gid[27], id[160];
    phx_id_new(gid);
    snprintf(id, sizeof(id), "rt-%s-%s", prefix, gid);
    return json_pack("{s:s, s:s, s:s, s:[{s:s, s:s, s:o, s:{s:i}, s:i}]}", "schema", "job.v1", "id",
                     id, "tenant", c->tenant, "steps", "id", "s", "kind", kind, "input", input,
                     "retry", "max_attempts", 1, "timeout_ms", timeout_ms);
}

json_t *rt_step_output(json_t *reply, const char **code)
{
    *code = NULL;
    if (!reply)
        return NULL;
    const char *status = json_string_value(json_object_get(reply, "status"));
    if (status && strcmp(status, "succeeded") == 0)
        return json_object_get(json_object_get(reply, "outputs"), "s");
    json_t *step = json_object_get(json_object_get(reply, "steps"), "s");
    json_t *err = json_object_get(step, "error");
    if (!err)
        err = json_object_get(reply, "error");
    *code = json_string_value(json_object_get(err, "code"));
    if (!*code)
        *code = status ? status : "no_status";
    return NULL;
}

json_t *rt_collect(rd_kafka_t *rk, const json_t *want, const char *field, int timeout_s)
{
    json_t *got = json_object();
    int64_t deadline = phx_mono_ms() + (int64_t)timeout_s * 1000;
    while (json_object_size(got) < json_object_size(want) && phx_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        json_t *v = m->err ? NULL : json_loadb(m->payload, m->len, 0, NULL);
        rd_kafka_message_destroy(m);
        const char *k = json_string_value(json_object_get(v, field));
        if (k && json_object_get(want, k) && !json_object_get(got, k))
            json_object_set(got, k, v);
        json_decref(v);
    }
    return got;
}

json_t *rt_run_jobs(const rt_ctx *c, json_t *jobs, int timeout_s)
{
    json_t *replies = NULL;
    phx_err err;
    phx_err_clear(&err);
    phx_producer *p = NULL;
    char group[64], gid[27];
    phx_id_new(gid);
    snprintf(group, sizeof(group), "phx-redteam-%s", gid);
    /* The reader is placed at the end before anything is published, so no reply is missed. */
    rd_kafka_t *rk = phx_kafka_reader(c->env->brokers, PHX_TOPIC_REPLIES, group, PHX_READ_FROM_END,
                                      NULL, NULL, &err);
    if (!rk || !(p = phx_producer_new(c->env->brokers, &err)))
        goto err;
    size_t n = json_array_size(jobs), i;
    phx_kmsg *msgs = phx_xcalloc(n ? n : 1, sizeof(*msgs));
    char **bodies = phx_xcalloc(n ? n : 1, sizeof(*bodies));
    char(*tps)[56] = phx_xcalloc(n ? n : 1, sizeof(*tps));
    for (i = 0; i < n; i++) {
        json_t *j = json_array_get(jobs, i);
        bodies[i] = json_dumps(j, JSON_COMPACT);
        phx_traceparent_new(tps[i]);
        phx_job_kmsg(&msgs[i], json_string_value(json_object_get(j, "id")), c->tenant, bodies[i],
                     tps[i]);
    }
    int rc = n ? phx_produce_batch(p, msgs, (int)n, &err) : 0;
    for (i = 0; i < n; i++)
        free(bodies[i]);
    free(bodies);
    free(tps);
    free(msgs);
    if (rc < 0)
        goto err;
    json_t *want = json_object();
    for (i = 0; i < n; i++)
        json_object_set_new(want, json_string_value(json_object_get(json_array_get(jobs, i), "id")),
                            json_true());
    replies = rt_collect(rk, want, "job_id", timeout_s);
    json_decref(want);
    goto out;
err:
    fprintf(stderr, "phx redteam: kafka: %s\n", err.message);
out:
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    phx_producer_free(p, 5000);
    return replies;
}

/* --- HTTP ---------------------------------------------------------------------------------- */

long rt_http(const rt_ctx *c, const char *method, const char *path, const char *const *headers,
             const void *body, size_t len, char **answer)
{
    long status = 0;
    phx_capbuf b = {NULL, 0, 4u << 20}; /* an answer that big is itself worth noticing: stop */
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", c->ingress, path);
    CURL *h = curl_easy_init();
    struct curl_slist *hl = NULL;
    if (!h)
        goto out;
    for (; headers && *headers; headers++)
        hl = curl_slist_append(hl, *headers);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, phx_capbuf_curl_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
out:
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    if (answer)
        *answer = b.p;
    else
        free(b.p);
    return status;
}

/* --- the canary ---------------------------------------------------------------------------- */

struct rt_canary {
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    json_t *hits;     /* path -> count */
    char target[256]; /* when set: answer every request with a redirect to target + path */
};

static enum MHD_Result rt_canary_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                        const char *method, const char *version, const char *upload,
                                        size_t *upload_len, void **ctx)
{
    (void)method, (void)version, (void)upload, (void)upload_len, (void)ctx;
    rt_canary *k = cls;
    pthread_mutex_lock(&k->mu);
    json_int_t n = json_integer_value(json_object_get(k->hits, url));
    json_object_set_new(k->hits, url, json_integer(n + 1));
    pthread_mutex_unlock(&k->mu);
    static const char body[] = "phx-redteam canary\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    unsigned code = 200;
    if (k->target[0]) {
        char loc[512];
        snprintf(loc, sizeof(loc), "%s%s", k->target, url);
        MHD_add_response_header(r, "Location", loc);
        code = 302;
    }
    enum MHD_Result rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rc;
}

rt_canary *rt_canary_start_redirect(const char *addr, const char *target, char *url, size_t urlen)
{
    struct sockaddr_storage ss;
    char why[200];
    if (phx_addr_parse("canary", addr, &ss, why, sizeof(why)) < 0) {
        fprintf(stderr, "phx redteam: %s\n", why);
        return NULL;
    }
    rt_canary *k = phx_xcalloc(1, sizeof(*k));
    pthread_mutex_init(&k->mu, NULL);
    k->hits = json_object();
    if (target)
        snprintf(k->target, sizeof(k->target), "%s", target);
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    k->d = MHD_start_daemon(flags, 0, NULL, NULL, rt_canary_handle, k, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&ss, MHD_OPTION_END);
    if (!k->d) {
        fprintf(stderr, "phx redteam: cannot listen on %s\n", addr);
        rt_canary_stop(k);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(k->d, MHD_DAEMON_INFO_BIND_PORT);
    char host[128];
    snprintf(host, sizeof(host), "%s", addr);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = 0;
    snprintf(url, urlen, "http://%s:%u", *host ? host : "127.0.0.1", di ? di->port : 0);
    return k;
}

rt_canary *rt_canary_start(const char *addr, char *url, size_t urlen)
{
    return rt_canary_start_redirect(addr, NULL, url, urlen);
}

int rt_canary_hits(rt_canary *k, const char *path)
{
    int n = 0;
    pthread_mutex_lock(&k->mu);
    if (path) {
        n = (int)json_integer_value(json_object_get(k->hits, path));
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(k->hits, key, v) n += (int)json_integer_value(v);
    }
    pthread_mutex_unlock(&k->mu);
    return n;
}

void rt_canary_stop(rt_canary *k)
{
    if (!k)
        return;
    if (k->d)
        MHD_stop_daemon(k->d);
    json_decref(k->hits);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

/* --- the scorecard ------------------------------------------------------------------------- */

static json_t *rt_suite_json(const rt_suite *s)
{
    json_t *o =
        json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:I, s:O}", "suite", s->name, "tried", s->tried,
                  "contained", s->contained, "escaped", s->escaped, "errors", s->errors, "skipped",
                  s->skipped, "duration_ms", (json_int_t)s->ms, "cases", s->cases);
    if (s->rates) {
        json_object_set(o, "rates", s->rates);
        json_object_set_new(o, "rates_below_min", json_integer(s->below));
    }
    return o;
}

static void rt_print(const rt_suite *s, int verbose)
{
    printf("%-8s tried %4d  contained %4d  escaped %3d  errors %3d  skipped %3d  %5.1f s\n",
           s->name, s->tried, s->contained, s->escaped, s->errors, s->skipped, s->ms / 1000.0);
    size_t i;
    json_t *cs;
    json_array_foreach(s->cases, i, cs)
    {
        const char *o = json_string_value(json_object_get(cs, "outcome"));
        if (!verbose && (strcmp(o, "contained") == 0 || strcmp(o, "skipped") == 0))
            continue;
        printf("  %-9s %s: %s\n", o, json_string_value(json_object_get(cs, "name")),
               json_string_value(json_object_get(cs, "detail")));
    }
    const char *g;
    json_t *r;
    json_object_foreach(s->rates, g, r)
    {
        printf("  rate     %-36s %4d/%-4d = %5.1f%% (%s %.1f%%)%s\n", g,
               (int)json_integer_value(json_object_get(r, "flagged")),
               (int)json_integer_value(json_object_get(r, "tried")),
               100 * json_real_value(json_object_get(r, "rate")),
               json_is_true(json_object_get(r, "benign")) ? "max" : "min",
               100 * json_real_value(json_object_get(r, "limit")),
               !json_is_true(json_object_get(r, "judged")) ? "  (too few to judge)"
               : json_is_true(json_object_get(r, "ok"))    ? ""
                                                           : "  BELOW TARGET");
    }
}

static double rt_env_double(const char *name, double def)
{
    const char *v = getenv(name);
    char *end;
    double d = v && *v ? strtod(v, &end) : def;
    return v && *v && (*end || d < 0 || d > 1) ? -1 : d;
}

static const char *rt_env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

int phx_cli_redteam(const phx_cli_env *env, int argc, char **argv)
{
    static const struct option opts[] = {{"suites", required_argument, NULL, 's'},
                                         {"quick", no_argument, NULL, 'q'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *suites = "exec,safety,ssrf,auth,payload";
    int json_out = 0, c;
    rt_ctx ctx = {.env = env, .timeout_s = 120};
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:qjt:vh", opts, NULL)) != -1) {
        long t;
        switch (c) {
        case 's':
            suites = optarg;
            break;
        case 'q':
            ctx.quick = 1;
            break;
        case 'j':
            json_out = 1;
            break;
        case 't':
            if (phx_parse_long(optarg, 1, 3600, &t) < 0) {
                fprintf(stderr, "phx redteam: --timeout wants seconds (1..3600)\n");
                return PHX_EXIT_USAGE;
            }
            ctx.timeout_s = (int)t;
            break;
        case 'v':
            ctx.verbose = 1;
            break;
        default:
            fputs(rt_usage, c == 'h' ? stdout : stderr);
            return c == 'h' ? PHX_EXIT_OK : PHX_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fputs(rt_usage, stderr);
        return PHX_EXIT_USAGE;
    }
    ctx.ingress = rt_env("PHX_INGRESS_URL", "http://127.0.0.1:8080");
    ctx.api_key = rt_env("PHX_REDTEAM_API_KEY", NULL);
    ctx.api_key_b = rt_env("PHX_REDTEAM_API_KEY_B", NULL);
    ctx.tenant = rt_env("PHX_REDTEAM_TENANT", "redteam");
    ctx.corpus_dir = rt_env("PHX_REDTEAM_DIR", "ops/redteam");
    ctx.eval_dir = rt_env("PHX_EVAL_DIR", "../shared/eval");
    ctx.topics = rt_env("PHX_REDTEAM_TOPICS", "phx.jobs,phx.results,phx.tasks.tools,phx.tasks.exec,"
                                              "phx.tasks.llm,phx.tasks.safety,phx.tasks.kb");
    ctx.bait_addr = rt_env("PHX_REDTEAM_BAIT_ADDR", NULL);
    ctx.safety_per_file = (int)strtol(rt_env("PHX_REDTEAM_SAFETY_PER_FILE", "40"), NULL, 10);
    ctx.safety_min_rate = rt_env_double("PHX_REDTEAM_SAFETY_MIN_RATE", 0.40);
    ctx.safety_max_fpr = rt_env_double("PHX_REDTEAM_SAFETY_MAX_FPR", 0.05);
    if (ctx.safety_per_file <= 0 || ctx.safety_min_rate < 0 || ctx.safety_max_fpr < 0 ||
        !phx_id_valid(ctx.tenant)) {
        fprintf(stderr, "phx redteam: PHX_REDTEAM_SAFETY_PER_FILE must be > 0, "
                        "PHX_REDTEAM_SAFETY_MIN_RATE/MAX_FPR in 0..1, PHX_REDTEAM_TENANT an id\n");
        return PHX_EXIT_USAGE;
    }

    static const struct {
        const char *name;
        int (*run)(const rt_ctx *, rt_suite *);
    } all[] = {{"exec", rt_suite_exec},
               {"safety", rt_suite_safety},
               {"ssrf", rt_suite_ssrf},
               {"auth", rt_suite_auth},
               {"payload", rt_suite_payload}};
    enum { NSUITES = sizeof(all) / sizeof(all[0]) };
    rt_suite res[NSUITES];
    int chosen[NSUITES] = {0};
    char *list = phx_xstrdup(suites), *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int i = 0; i < NSUITES; i++)
            if (strcmp(t, all[i].name) == 0)
                chosen[i] = found = 1;
        if (!found) {
            fprintf(stderr, "phx redteam: unknown suite '%s'\n%s", t, rt_usage);
            free(list);
            return PHX_EXIT_USAGE;
        }
    }
    free(list);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = PHX_EXIT_OK, infra = 0, escaped = 0, errors = 0, below = 0;
    json_t *out = json_array();
    for (int i = 0; i < NSUITES; i++) {
        if (!chosen[i])
            continue;
        res[i] = (rt_suite){.name = all[i].name, .cases = json_array()};
        int64_t t0 = phx_mono_ms();
        if (all[i].run(&ctx, &res[i]) < 0)
            infra = 1;
        res[i].ms = phx_mono_ms() - t0;
        escaped += res[i].escaped;
        errors += res[i].errors;
        below += res[i].below;
        if (json_out)
            json_array_append_new(out, rt_suite_json(&res[i]));
        else
            rt_print(&res[i], ctx.verbose);
        json_decref(res[i].cases);
        json_decref(res[i].rates);
        fflush(stdout);
    }
    if (escaped || below)
        rc = RT_EXIT_ESCAPED;
    else if (infra)
        rc = PHX_EXIT_INFRA;
    else if (errors)
        rc = PHX_EXIT_TIMEOUT;
    if (json_out) {
        json_t *doc = json_pack("{s:o, s:i, s:i, s:i, s:b}", "suites", out, "escaped", escaped,
                                "errors", errors, "rates_below_min", below, "ok", rc == 0);
        char *s = json_dumps(doc, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(doc);
    } else {
        json_decref(out);
        printf("redteam: %d escaped, %d rates below target, %d undecided -> %s\n", escaped, below,
               errors, rc == 0 ? "all contained" : "FAIL");
    }
    curl_global_cleanup();
    return rc;
}
