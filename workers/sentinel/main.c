/* main.c -- phx-sentinel: the blue team. Detects attacks and abuse in what the pipeline already
 * records and answers with reversible responses (lib/security.h).
 *
 * A process of its own rather than a mode of a pool: it consumes other topics (phx.events and
 * phx.results, in its own consumer group, so it sees everything without taking anything from
 * the planner), it runs no step kinds, and detection must keep running while a pool is down or
 * saturated. It is stateless like every pool: counts live in Redis, so any number of replicas
 * share the partitions and the audit stream's consumer group.
 *
 * Signals (detect.c) are counted per rule and subject in a sliding window (two fixed Redis
 * counters, the previous one weighted by how much of it still overlaps the window: one Lua
 * call per signal). The first crossing of a rule's threshold in a window is a detection:
 * metric, log line, audit entry (security.detection), then the rule's configured response
 * (throttle or suspend), applied once while active. A seccomp kill in exec.run quarantines
 * its job's outputs at once (PHX_SENTINEL_QUARANTINE_SECCOMP). Responses expire after
 * PHX_SENTINEL_RESPONSE_TTL_S (the tick releases them) or are released by an operator.
 *
 * Counting is at-least-once like every consumer here: a redelivered message counts twice,
 * which can only make a detection come slightly early. */
#include "config.h"
#include "jobstore.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "security.h"
#include "detect.h"
#include "util.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct phx_rule_cfg {
    long window_s, threshold;
    char *response;
} phx_rule_cfg;

typedef struct phx_sentinel_cfg {
    phx_common common;
    phx_rule_cfg rules[PHX_NRULES];
    long throttle_per_min, throttle_burst, response_ttl_s;
    int quarantine_seccomp;
    /* derived: per rule, 0 none, 1 throttle, 2 suspend */
    int resp[PHX_NRULES];
} phx_sentinel_cfg;

#define CFG phx_sentinel_cfg
#define PHX_RULE_OPTS(R, NAME, WIN, THR, RESP, WHAT)                                               \
    {"PHX_SENTINEL_" NAME "_WINDOW_S",                                                             \
     PHX_OPT_INT,                                                                                  \
     WIN,                                                                                          \
     1,                                                                                            \
     86400,                                                                                        \
     offsetof(CFG, rules[R].window_s),                                                             \
     WHAT ": sliding window, in seconds."},                                                        \
        {"PHX_SENTINEL_" NAME "_THRESHOLD",                                                        \
         PHX_OPT_INT,                                                                              \
         THR,                                                                                      \
         1,                                                                                        \
         100000000,                                                                                \
         offsetof(CFG, rules[R].threshold),                                                        \
         WHAT ": signals per subject within the window that make a detection."},                   \
    {                                                                                              \
        "PHX_SENTINEL_" NAME "_RESPONSE", PHX_OPT_STR, RESP, 0, 0,                                 \
            offsetof(CFG, rules[R].response),                                                      \
            WHAT ": what a detection does besides the metric and the audit entry: none, "          \
                 "throttle (lower the tenant's rate limit) or suspend."                            \
    }

static const phx_opt phx_sentinel_opts[] = {
    PHX_COMMON_OPTS(CFG),
    PHX_RULE_OPTS(PHX_RULE_BLOCKS, "BLOCKS", "60", "20", "throttle",
                  "blocks (safety verdicts block or redact, per tenant)"),
    PHX_RULE_OPTS(PHX_RULE_SANDBOX, "SANDBOX", "300", "5", "throttle",
                  "sandbox_kills (exec.run timed out, OOM-killed or killed by seccomp, per "
                  "tenant)"),
    PHX_RULE_OPTS(PHX_RULE_AUTH, "AUTH", "60", "20", "suspend",
                  "auth_failures (ingress 401 and missing-scope 403, per API key id, else "
                  "principal, else client address; suspend applies to keys and principals, an "
                  "address is only alerted on; throttle is not valid here)"),
    PHX_RULE_OPTS(PHX_RULE_TOOLS, "TOOLS", "60", "600", "none",
                  "tool_use (tool.* and exec.* steps dispatched, per tenant)"),
    {"PHX_SENTINEL_THROTTLE_PER_MIN", PHX_OPT_INT, "30", 1, 1000000,
     offsetof(CFG, throttle_per_min),
     "A throttle sets the tenant's sustained request rate to this many per minute "
     "(phx:rl:{T}:conf tenant_per_s)."},
    {"PHX_SENTINEL_THROTTLE_BURST", PHX_OPT_INT, "3", 1, 1000000, offsetof(CFG, throttle_burst),
     "A throttle sets the tenant's burst to this (tenant_burst)."},
    {"PHX_SENTINEL_RESPONSE_TTL_S", PHX_OPT_INT, "3600", 0, 31536000, offsetof(CFG, response_ttl_s),
     "Automatic responses are released after this long (0 = only by `phx security release`)."},
    {"PHX_SENTINEL_QUARANTINE_SECCOMP", PHX_OPT_BOOL, "true", 0, 0,
     offsetof(CFG, quarantine_seccomp),
     "Quarantine the outputs of a job whose exec.run step was killed by seccomp (an escape "
     "attempt): GET /v1/jobs/ID and replies sent afterwards show none."},
};

typedef struct phx_sentinel_thread {
    phx_sentinel_cfg *cfg;
    phx_redis *r;
    int group_ready;
    int64_t next_claim_ms, next_expire_ms;
    char consumer[96];
} phx_sentinel_thread;

static void *phx_sentinel_thread_init(phx_worker *w, phx_err *err)
{
    phx_sentinel_thread *t = calloc(1, sizeof(*t));
    if (!t) {
        phx_err_set(err, "internal", 0, "out of memory");
        return NULL;
    }
    t->cfg = phx_worker_app(w);
    if (!(t->r = phx_redis_from_common(&t->cfg->common, err))) {
        free(t);
        return NULL;
    }
    phx_redis_set_breaker(t->r, phx_worker_redis_breaker(w));
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    snprintf(t->consumer, sizeof(t->consumer), "%s-%d", host, (int)getpid());
    return t;
}

static void phx_sentinel_thread_free(void *tctx)
{
    phx_sentinel_thread *t = tctx;
    if (!t)
        return;
    phx_redis_free(t->r);
    free(t);
}

/* KEYS: this window's counter, the previous window's, the detection latch. ARGV: window (ms),
 * now (ms), threshold. The estimate weights the previous window by the share of it the sliding
 * window still covers. Returns {estimate, fired}: fired is 1 for the first crossing while the
 * latch (one window long) is unset. */
static const phx_script phx_sentinel_count = {
    "sentinel_count",
    "local w, now, thr = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local c = redis.call('INCR', KEYS[1])\n"
    "if c == 1 then redis.call('PEXPIRE', KEYS[1], 2 * w) end\n"
    "local p = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "local est = c + p * (1 - (now % w) / w)\n"
    "if est >= thr and redis.call('SET', KEYS[3], '1', 'NX', 'PX', w) then\n"
    "  return {math.floor(est), 1} end\n"
    "return {math.floor(est), 0}\n"};

static void phx_sentinel_count_response(const char *action, const char *outcome)
{
    char labels[128];
    snprintf(labels, sizeof(labels), "action=\"%s\",outcome=\"%s\"", action, outcome);
    phx_metric_add(phx_counter("phx_sentinel_responses_total",
                               "Responses the sentinel tried, by action and outcome (applied, "
                               "active = already in force, error).",
                               labels),
                   1);
}

static int phx_sentinel_respond(phx_sentinel_thread *t, phx_sec_action a, const char *subject,
                                const phx_signal *s, const char *reason, phx_err *err)
{
    phx_sec_req q = {
        .action = a,
        .subject = subject,
        .rule = phx_rule_name(s->rule),
        .reason = reason,
        .by = "phx-sentinel",
        .throttle_per_s = (double)t->cfg->throttle_per_min / 60.0,
        .throttle_burst = t->cfg->throttle_burst,
        .ttl_ms = t->cfg->response_ttl_s * 1000,
    };
    char id[32];
    int rc = phx_sec_apply(t->r, &q, phx_now_ms(), id, err);
    if (rc < 0) {
        phx_sentinel_count_response(phx_sec_action_name(a), "error");
        /* A job that is already gone or a subject no response can name is not worth a retry. */
        if (strcmp(err->code, "not_found") == 0 || strcmp(err->code, "invalid_input") == 0) {
            phx_log_warn("response %s %s: %s", phx_sec_action_name(a), subject, err->message);
            return 0;
        }
        return -1;
    }
    phx_sentinel_count_response(phx_sec_action_name(a), rc == 1 ? "applied" : "active");
    if (rc == 1)
        phx_log_warn("security response %s: %s %s (%s)", id, phx_sec_action_name(a), subject,
                     reason);
    return 0;
}

/* The response a detection of s calls for, or -1 for none. */
static int phx_sentinel_action_for(const phx_sentinel_cfg *c, const phx_signal *s)
{
    int resp = c->resp[s->rule];
    if (resp == 1 && s->kind == PHX_SUBJ_TENANT)
        return PHX_SEC_THROTTLE;
    if (resp == 2) {
        switch (s->kind) {
        case PHX_SUBJ_TENANT:
            return PHX_SEC_SUSPEND_TENANT;
        case PHX_SUBJ_KEY:
            return PHX_SEC_SUSPEND_KEY;
        case PHX_SUBJ_PRINCIPAL:
            return PHX_SEC_SUSPEND_PRINCIPAL;
        default:
            return -1;
        }
    }
    return -1;
}

/* Count one signal; detect and respond. 0, or -1 with err (Redis: the message is retried). */
static int phx_sentinel_signal(phx_sentinel_thread *t, const phx_signal *s, phx_err *err)
{
    const phx_rule_cfg *rc = &t->cfg->rules[s->rule];
    const char *rule = phx_rule_name(s->rule);
    char labels[160], tlabel[128];
    snprintf(labels, sizeof(labels), "rule=\"%s\"", rule);
    phx_metric_add(phx_counter("phx_sentinel_signals_total",
                               "Security signals seen (before thresholds), by rule.", labels),
                   1);
    if (s->seccomp && t->cfg->quarantine_seccomp && s->job_id[0] &&
        phx_sentinel_respond(t, PHX_SEC_QUARANTINE, s->job_id, s, s->detail, err) < 0)
        return -1;

    /* Keys of one rule and subject share a hash tag (cluster-legal script); braces in a
     * subject could break the tag, so they are replaced. */
    char subj[264], k[3][400], args[3][32];
    snprintf(subj, sizeof(subj), "%s", s->subject);
    for (char *p = subj; *p; p++)
        if (*p == '{' || *p == '}')
            *p = '_';
    int64_t now = phx_now_ms(), w = rc->window_s * 1000;
    long long idx = (long long)(now / w);
    snprintf(k[0], sizeof(k[0]), "phx:sentinel:{%s:%s}:w:%lld", rule, subj, idx);
    snprintf(k[1], sizeof(k[1]), "phx:sentinel:{%s:%s}:w:%lld", rule, subj, idx - 1);
    snprintf(k[2], sizeof(k[2]), "phx:sentinel:{%s:%s}:fired", rule, subj);
    snprintf(args[0], sizeof(args[0]), "%lld", (long long)w);
    snprintf(args[1], sizeof(args[1]), "%lld", (long long)now);
    snprintf(args[2], sizeof(args[2]), "%ld", rc->threshold);
    const char *argv[] = {k[0], k[1], k[2], args[0], args[1], args[2]};
    redisReply *rep = phx_redis_eval(t->r, &phx_sentinel_count, 3, 6, argv, NULL, err);
    if (!rep)
        return -1;
    long long est = 0, fired = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
        est = rep->element[0]->integer;
        fired = rep->element[1]->integer;
    }
    freeReplyObject(rep);
    if (!fired)
        return 0;

    phx_metrics_bounded_value("sentinel_tenant", s->tenant[0] ? s->tenant : "none", 50, tlabel,
                              sizeof(tlabel));
    snprintf(labels, sizeof(labels), "rule=\"%s\",tenant=\"%s\"", rule, tlabel);
    phx_metric_add(phx_counter("phx_sentinel_detections_total",
                               "Detections: a subject crossed a rule's threshold within its "
                               "window (counted once per window), by rule and tenant.",
                               labels),
                   1);
    char reason[300], count[32], thr[32], win[32];
    snprintf(reason, sizeof(reason), "%s: %lld signals in %lds (threshold %ld); last: %s", rule,
             est, rc->window_s, rc->threshold, s->detail);
    phx_log_warn("detection %s subject=%s tenant=%s: %s", rule, s->subject, s->tenant, reason);
    snprintf(count, sizeof(count), "%lld", est);
    snprintf(thr, sizeof(thr), "%ld", rc->threshold);
    snprintf(win, sizeof(win), "%ld", rc->window_s);
    const char *kv[] = {"type",      "security.detection",
                        "rule",      rule,
                        "subject",   s->subject,
                        "tenant",    s->tenant,
                        "count",     count,
                        "threshold", thr,
                        "window_s",  win,
                        "detail",    s->detail};
    if (phx_audit_add(t->r, PHX_AUDIT_STREAM, PHX_AUDIT_MAXLEN, (int)(sizeof(kv) / sizeof(kv[0])),
                      kv, err) < 0)
        return -1;
    int a = phx_sentinel_action_for(t->cfg, s);
    return a < 0 ? 0 : phx_sentinel_respond(t, (phx_sec_action)a, s->subject, s, reason, err);
}

static void phx_sentinel_observed(const char *source)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "source=\"%s\"", source);
    phx_metric_add(phx_counter("phx_sentinel_observed_total",
                               "Records the sentinel examined, by source (events, results, "
                               "auth).",
                               labels),
                   1);
}

static phx_handle_rc phx_sentinel_handle(void *tctx, const phx_inmsg *in, phx_outbox *out,
                                         phx_err *err)
{
    (void)out;
    phx_sentinel_thread *t = tctx;
    phx_signal s;
    int is_ev = strcmp(in->topic, PHX_TOPIC_EVENTS) == 0, n;
    if (is_ev) {
        n = phx_signal_from_event(in->body, &s);
    } else {
        char tenant[160];
        n = phx_signal_from_result(
            in->body, phx_kafka_header(in->raw, "phx-tenant", tenant, sizeof(tenant)), &s);
    }
    phx_sentinel_observed(is_ev ? "events" : "results");
    if (n && phx_sentinel_signal(t, &s, err) < 0)
        return PHX_RETRY_LATER;
    return PHX_HANDLED;
}

/* --- the ingress's audit stream (phx:audit:auth), read by the tick thread ---------------- */

#define PHX_SENTINEL_GROUP "phx-sentinel"

static int phx_sentinel_group(phx_sentinel_thread *t, phx_err *err)
{
    if (t->group_ready)
        return 0;
    /* From "$": failures recorded before the first sentinel ever started are history. */
    redisReply *rep = phx_redis_cmd(t->r, err, "XGROUP CREATE %s %s $ MKSTREAM",
                                    PHX_AUDIT_AUTH_STREAM, PHX_SENTINEL_GROUP);
    if (!rep && !strstr(err->message, "BUSYGROUP"))
        return -1;
    if (rep)
        freeReplyObject(rep);
    phx_err_clear(err);
    t->group_ready = 1;
    return 0;
}

/* Handle the entries of an XREADGROUP reply and acknowledge them. The number handled, or -1
 * (unacknowledged entries are read again from the pending list). */
static int phx_sentinel_entries(phx_sentinel_thread *t, const redisReply *rep, phx_err *err)
{
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1)
        return 0;
    const redisReply *st = rep->element[0];
    if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
        st->element[1]->type != REDIS_REPLY_ARRAY)
        return 0;
    const redisReply *ents = st->element[1];
    int n = 0;
    for (size_t i = 0; i < ents->elements; i++) {
        const redisReply *e = ents->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const char *id = e->element[0]->str;
        const redisReply *f = e->element[1];
        if (f->type == REDIS_REPLY_ARRAY) { /* nil when the entry was trimmed meanwhile */
            json_t *rec = phx_jobstore_hash_from(f);
            phx_signal s;
            int sig = phx_signal_from_auth(rec, &s);
            json_decref(rec);
            phx_sentinel_observed("auth");
            if (sig && phx_sentinel_signal(t, &s, err) < 0)
                return -1;
        }
        redisReply *ack = phx_redis_cmd(t->r, err, "XACK %s %s %s", PHX_AUDIT_AUTH_STREAM,
                                        PHX_SENTINEL_GROUP, id);
        if (!ack)
            return -1;
        freeReplyObject(ack);
        n++;
    }
    return n;
}

static int phx_sentinel_tick(void *tctx, phx_outbox *out, phx_err *err)
{
    (void)out;
    phx_sentinel_thread *t = tctx;
    int64_t now = phx_now_ms();
    if (phx_sentinel_group(t, err) < 0)
        return -1;
    /* Entries of consumers that died holding them come to this one after a minute. */
    if (now >= t->next_claim_ms) {
        t->next_claim_ms = now + 10000;
        redisReply *rep = phx_redis_cmd(t->r, err, "XAUTOCLAIM %s %s %s 60000 0-0 COUNT 200",
                                        PHX_AUDIT_AUTH_STREAM, PHX_SENTINEL_GROUP, t->consumer);
        if (!rep)
            return -1;
        freeReplyObject(rep);
    }
    /* Own pending entries first (a previous tick failed half-way, or claimed ones), then new. */
    for (int round = 0; round < 2; round++) {
        redisReply *rep = phx_redis_cmd(t->r, err, "XREADGROUP GROUP %s %s COUNT 200 STREAMS %s %s",
                                        PHX_SENTINEL_GROUP, t->consumer, PHX_AUDIT_AUTH_STREAM,
                                        round == 0 ? "0" : ">");
        if (!rep)
            return -1;
        int n = phx_sentinel_entries(t, rep, err);
        freeReplyObject(rep);
        if (n < 0)
            return -1;
        if (round == 0 && n > 0)
            break; /* more pending may follow: take them next tick before new ones */
    }
    if (now >= t->next_expire_ms) {
        t->next_expire_ms = now + 5000;
        int n = phx_sec_expire(t->r, "phx-sentinel (expired)", now, err);
        if (n < 0)
            return -1;
        redisReply *rep = phx_redis_cmd(t->r, err, "HLEN %s", PHX_SEC_RESPONSES);
        if (!rep)
            return -1;
        if (rep->type == REDIS_REPLY_INTEGER)
            phx_metric_set(phx_gauge("phx_sentinel_active_responses",
                                     "Security responses in force (throttles, suspensions, "
                                     "quarantines), automatic or manual.",
                                     NULL),
                           (double)rep->integer);
        freeReplyObject(rep);
    }
    return 0;
}

int main(int argc, char **argv)
{
    phx_sentinel_cfg cfg = {0};
    size_t n = sizeof(phx_sentinel_opts) / sizeof(phx_sentinel_opts[0]);
    phx_config_start(
        argc, argv, "phx-sentinel",
        "phx-sentinel: the blue team. Follows phx.events, phx.results (consumer group "
        "phx-sentinel) and the ingress's audit stream phx:audit:auth; counts security signals "
        "per rule and subject in sliding windows (blocks, sandbox_kills, auth_failures, "
        "tool_use); a crossing is a detection (phx_sentinel_detections_total, an audit entry in "
        "phx:audit) and applies the rule's response: throttle a tenant, suspend a tenant, API "
        "key or principal, quarantine a job's outputs. `phx security list|release` shows and "
        "undoes responses (docs/security.md, Blue team).",
        phx_sentinel_opts, n, &cfg, &cfg.common);
    for (int r = 0; r < PHX_NRULES; r++) {
        const char *v = cfg.rules[r].response;
        cfg.resp[r] = strcmp(v, "none") == 0       ? 0
                      : strcmp(v, "throttle") == 0 ? 1
                      : strcmp(v, "suspend") == 0  ? 2
                                                   : -1;
        if (cfg.resp[r] < 0 || (r == PHX_RULE_AUTH && cfg.resp[r] == 1)) {
            fprintf(stderr, "phx-sentinel: response '%s' of rule %s: use none, %ssuspend\n", v,
                    phx_rule_name((phx_rule)r), r == PHX_RULE_AUTH ? "" : "throttle or ");
            phx_config_free(phx_sentinel_opts, n, &cfg);
            return 2;
        }
    }
    static const char *const topics[] = {PHX_TOPIC_EVENTS, PHX_TOPIC_RESULTS};
    phx_worker_ops ops = {
        .proc = "phx-sentinel",
        .group = "phx-sentinel",
        .topics = topics,
        .ntopics = 2,
        /* No schema check: the planner already dead-letters invalid results, and a second
         * letter per bad message from an observer would only be noise. detect.c reads every
         * field defensively. */
        .schema_for = NULL,
        .thread_init = phx_sentinel_thread_init,
        .thread_free = phx_sentinel_thread_free,
        .handle = phx_sentinel_handle,
        .tick = phx_sentinel_tick,
        .tick_ms = 200,
        .app = &cfg,
    };
    int rc = phx_worker_main(&cfg.common, &ops);
    phx_config_free(phx_sentinel_opts, n, &cfg);
    return rc;
}
