/* main.c -- phx-safety: the safety pool (safety.scan, safety.review_plan).
 *
 * Wires the pure scanners (scan.c, review.c) to the pool loop: per-thread Redis connection,
 * policy lookup with hot reload (store.c; SIGHUP forces a reload), audit of every non-allow
 * verdict to a Redis stream and phx.events (audit.c), metrics. The step functions need the
 * task's job id, tenant and principal, which the pool's step signature does not carry; a thin
 * wrapper around the pool's message handler keeps the task (and the outbox, so the audit event
 * leaves in the same confirmed batch as the result) in thread-local storage for them. */
#include "audit.h"
#include "config.h"
#include "feedback.h"
#include "../llm/llm.h"
#include "guard.h"
#include "inject.h"
#include "intel.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "review.h"
#include "scan.h"
#include "store.h"
#include "util.h"

#include <curl/curl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct phx_safety_cfg {
    phx_common common;
    long policy_check_ms;
    char *audit_stream;
    long audit_maxlen;
    long max_text;
    int resolve;
    int audit_allow;
    char *intel_files;
    long intel_check_ms;
    phx_llm_provider_cfg llm; /* the guard model's providers (policy "guard") */
} phx_safety_cfg;

typedef struct phx_safety_app {
    phx_safety_cfg cfg;
    phx_schema_set *schemas;
    phx_safety_store *store;
    phx_intel *intel;  /* threat feeds, NULL when PHX_INTEL_FILES is empty */
    phx_llm_chain llm; /* providers for a policy's guard model (may be empty) */
} phx_safety_app;

#define CFG phx_safety_cfg
static const phx_opt phx_safety_opts[] = {
    PHX_COMMON_OPTS(CFG),
    {"PHX_SAFETY_POLICY_CHECK_MS", PHX_OPT_INT, "1000", 0, 3600000, offsetof(CFG, policy_check_ms),
     "How often (at most) a scan reads phx:safety:policy:version to pick up changed policies; "
     "0 = on every scan. SIGHUP reloads at once."},
    {"PHX_SAFETY_AUDIT_STREAM", PHX_OPT_STR, "phx:safety:audit", 0, 0, offsetof(CFG, audit_stream),
     "Redis stream receiving one entry per non-allow verdict."},
    {"PHX_SAFETY_AUDIT_MAXLEN", PHX_OPT_INT, "1000000", 1000, 1000000000,
     offsetof(CFG, audit_maxlen), "Approximate cap on the audit stream's length (XADD MAXLEN ~)."},
    {"PHX_SAFETY_AUDIT_ALLOW", PHX_OPT_BOOL, "false", 0, 0, offsetof(CFG, audit_allow),
     "Also audit allow verdicts (volume: one entry per scan)."},
    {"PHX_SAFETY_MAX_TEXT", PHX_OPT_INT, "1048576", 1024, 16777216, offsetof(CFG, max_text),
     "Largest text safety.scan accepts, in bytes; larger input fails the step (invalid_input)."},
    {"PHX_SAFETY_RESOLVE", PHX_OPT_BOOL, "true", 0, 0, offsetof(CFG, resolve),
     "Allow DNS resolution of URL hosts (role url) when the policy asks for it; false turns "
     "it off whatever the policy says (e.g. no DNS in the pool's network)."},
    PHX_INTEL_OPTS(CFG, intel_files, intel_check_ms,
                   "safety.scan reports a listed domain, address, URL, text hash or prompt "
                   "signature as a finding of detector intel (verdict: the role's intel action), "
                   "and safety.review_plan a tool.http_fetch step to a listed host"),
    PHX_LLM_PROVIDER_OPTS(CFG, llm),
};

/* The task being handled by this thread, and its outbox. */
static __thread const phx_inmsg *phx_safety_cur_in;
static __thread phx_outbox *phx_safety_cur_out;
static phx_handle_rc (*phx_safety_pool_handle)(void *, const phx_inmsg *, phx_outbox *, phx_err *);

static phx_handle_rc phx_safety_handle(void *tctx, const phx_inmsg *in, phx_outbox *out,
                                       phx_err *err)
{
    phx_safety_cur_in = in;
    phx_safety_cur_out = out;
    phx_handle_rc rc = phx_safety_pool_handle(tctx, in, out, err);
    phx_safety_cur_in = NULL;
    phx_safety_cur_out = NULL;
    return rc;
}

static const char *phx_safety_task_str(const char *k)
{
    return phx_safety_cur_in ? json_string_value(json_object_get(phx_safety_cur_in->body, k))
                             : NULL;
}

typedef struct phx_safety_thread {
    phx_redis *r;
    CURL *curl; /* the guard model's calls */
} phx_safety_thread;

static void *phx_safety_thread_init(void *app, phx_err *err)
{
    phx_safety_app *a = app;
    phx_safety_thread *t = calloc(1, sizeof(*t));
    if (!t) {
        phx_err_set(err, "internal", 1, "out of memory");
        return NULL;
    }
    t->r = phx_redis_from_common(&a->cfg.common, err);
    if (!t->r) {
        free(t);
        return NULL;
    }
    if (!(t->curl = curl_easy_init())) {
        phx_err_set(err, "internal", 0, "curl_easy_init failed");
        phx_redis_free(t->r);
        free(t);
        return NULL;
    }
    return t;
}

static void phx_safety_thread_free(void *ts)
{
    phx_safety_thread *t = ts;
    if (!t)
        return;
    phx_redis_free(t->r);
    curl_easy_cleanup(t->curl);
    free(t);
}

/* Audit a verdict: stream entry (must succeed, or the step is retried) and event. */
static int phx_safety_record(phx_safety_app *a, phx_safety_thread *t, phx_safety_audit *au,
                             phx_err *err)
{
    char labels[128];
    snprintf(labels, sizeof(labels), "kind=\"%s\",role=\"%s\",verdict=\"%s\"", au->kind, au->role,
             phx_safety_verdict_name((phx_safety_verdict)au->verdict));
    phx_metric_add(phx_counter("phx_safety_verdicts_total",
                               "Safety verdicts, by step kind, role and verdict.", labels),
                   1);
    if (au->verdict == PHX_VERDICT_ALLOW && !a->cfg.audit_allow)
        return 0;
    if (phx_safety_audit_write(t->r, a->cfg.audit_stream, a->cfg.audit_maxlen, au, err) < 0)
        return -1;
    if (phx_safety_cur_out && au->job_id)
        phx_outbox_add(phx_safety_cur_out, PHX_TOPIC_EVENTS, au->job_id, phx_safety_audit_event(au),
                       au->tenant, phx_safety_cur_in ? phx_safety_cur_in->traceparent : NULL,
                       au->attempt);
    return 0;
}

static void phx_safety_audit_ctx(phx_safety_audit *au, const char *kind, const char *role)
{
    memset(au, 0, sizeof(*au));
    au->job_id = phx_safety_task_str("job_id");
    au->step_id = phx_safety_task_str("step_id");
    au->tenant = phx_safety_task_str("tenant");
    au->principal = phx_safety_task_str("principal");
    au->attempt = phx_safety_cur_in
                      ? (int)json_integer_value(json_object_get(phx_safety_cur_in->body, "attempt"))
                      : 0;
    au->kind = kind;
    au->role = role;
}

static json_t *phx_safety_scan_step(void *app, void *ts, const json_t *input, phx_err *err)
{
    phx_safety_app *a = app;
    phx_safety_thread *t = ts;
    const json_t *jt = json_object_get(input, "text");
    const char *role_s = json_string_value(json_object_get(input, "role"));
    const json_t *jp = json_object_get(input, "policy");
    int role = phx_safety_role_parse(role_s);
    if (!json_is_string(jt) || role < 0 || (jp && !json_is_string(jp))) {
        phx_err_set(err, "invalid_input", 0,
                    "safety.scan needs {\"text\": string, \"role\": user_prompt|"
                    "retrieved_document|tool_output|model_output|code|url, \"policy\"?: string}");
        return NULL;
    }
    size_t len = json_string_length(jt);
    if ((long)len > a->cfg.max_text) {
        phx_err_set(err, "invalid_input", 0,
                    "text is %zu bytes, more than PHX_SAFETY_MAX_TEXT "
                    "(%ld)",
                    len, a->cfg.max_text);
        return NULL;
    }
    phx_safety_audit au;
    phx_safety_audit_ctx(&au, "safety.scan", phx_safety_role_name((phx_safety_role)role));
    phx_safety_policy *pol =
        phx_safety_store_get(a->store, t->r, json_string_value(jp), au.tenant, err);
    if (!pol)
        return NULL;
    phx_safety_policy local = *pol;
    if (!a->cfg.resolve)
        local.resolve_urls = 0;
    phx_safety_result res;
    json_t *out = NULL;
    phx_sha256_hex(json_string_value(jt), len, au.sha256);
    /* The tenant's feedback adjustments (lib/feedback.h): one HMGET per scan, so an operator's
     * feedback or rollback counts from the next scan on, on every replica. */
    phx_fb_adj adj;
    if (phx_fb_adj_get(t->r, au.tenant, au.sha256, &adj, err) < 0)
        goto done;
    for (int r = 0; r < PHX_ROLE_COUNT; r++) {
        phx_fb_shift(&local.roles[r].warn, &local.roles[r].block, adj.off_inject);
        phx_fb_shift(&local.roles[r].code_warn, &local.roles[r].code_block, adj.off_code);
        phx_fb_shift(&local.roles[r].url_warn, &local.roles[r].url_block, adj.off_url);
    }
    phx_intel_refresh(a->intel, 0, NULL); /* reload changed feeds, at most every check_ms */
    phx_safety_scan_ctx sc = {a->intel, adj.allow};
    if (phx_safety_scan_with(&local, &sc, (phx_safety_role)role, json_string_value(jt), len, &res,
                             err) < 0)
        goto done;
    phx_llm_ctx task = {0};
    if (phx_safety_cur_in)
        phx_llm_ctx_from_task(&task, phx_safety_cur_in->body);
    json_t *guard = phx_safety_guard_judge(&a->llm, t->curl, &local, (phx_safety_role)role,
                                           json_string_value(jt), len, task.deadline_mono_ms, &res);
    au.policy = pol->name;
    au.verdict = res.verdict;
    au.score = res.score;
    phx_safety_audit_detectors(&au, &res.f);
    if (phx_safety_record(a, t, &au, err) == 0 &&
        (out = phx_safety_result_json(&res, pol, (phx_safety_role)role))) {
        json_object_set_new(out, "text_sha256", json_string(au.sha256));
        if (adj.allow[0] || adj.off_inject != 0 || adj.off_code != 0 || adj.off_url != 0)
            json_object_set_new(out, "tenant_adjustments",
                                json_pack("{s:f, s:f, s:f, s:s, s:s}", "inject", adj.off_inject,
                                          "code", adj.off_code, "url", adj.off_url, "allowed",
                                          adj.allow, "allowed_by", adj.allow_id));
        if (guard)
            json_object_set_new(out, "guard", json_incref(guard));
    }
    json_decref(guard);
    phx_safety_result_free(&res);
done:
    phx_safety_policy_release(pol);
    return out;
}

static json_t *phx_safety_review_step(void *app, void *ts, const json_t *input, phx_err *err)
{
    phx_safety_app *a = app;
    phx_safety_thread *t = ts;
    const json_t *jp = json_object_get(input, "policy");
    if (jp && !json_is_string(jp)) {
        phx_err_set(err, "invalid_input", 0, "policy must be a string");
        return NULL;
    }
    phx_safety_audit au;
    phx_safety_audit_ctx(&au, "safety.review_plan", "plan");
    phx_safety_policy *pol =
        phx_safety_store_get(a->store, t->r, json_string_value(jp), au.tenant, err);
    if (!pol)
        return NULL;
    phx_safety_policy local = *pol;
    if (!a->cfg.resolve)
        local.resolve_urls = 0;
    phx_safety_findings f = {0};
    int verdict = 0;
    phx_intel_refresh(a->intel, 0, NULL);
    json_t *out = phx_safety_review(&local, a->intel, input, au.principal, &verdict, &f, err);
    if (out) {
        au.policy = pol->name;
        au.verdict = verdict;
        au.score = json_real_value(json_object_get(out, "score"));
        phx_safety_audit_detectors(&au, &f);
        char *dump = json_dumps(json_object_get(input, "steps"), JSON_COMPACT | JSON_SORT_KEYS);
        phx_sha256_hex(dump ? dump : "", dump ? strlen(dump) : 0, au.sha256);
        free(dump);
        if (phx_safety_record(a, t, &au, err) < 0) {
            json_decref(out);
            out = NULL;
        }
    }
    phx_safety_findings_free(&f);
    phx_safety_policy_release(pol);
    return out;
}

static const phx_step_kind phx_safety_kinds[] = {
    {"safety.scan", phx_safety_scan_step},
    {"safety.review_plan", phx_safety_review_step},
};

static void phx_safety_reload(void *defp)
{
    phx_pool_def *def = defp;
    phx_safety_app *a = def->app;
    phx_safety_store_invalidate(a->store);
    phx_llm_chain_reload_keys(&a->llm);
    phx_err e;
    if (a->intel && phx_intel_refresh(a->intel, 1, &e) < 0)
        phx_log_error("intel feeds: %s (keeping the previous ones)", e.message);
}

int main(int argc, char **argv)
{
    phx_safety_app app;
    memset(&app, 0, sizeof(app));
    size_t n = sizeof(phx_safety_opts) / sizeof(phx_safety_opts[0]);
    phx_config_main(argc, argv,
                    "phx-safety: the safety pool. Consumes phx.tasks.safety and runs "
                    "safety.scan (injection, jailbreak, secrets, PII, URL and code checks on "
                    "normalised and decoded text, judged by role and policy) and "
                    "safety.review_plan (forbidden kinds, unscanned untrusted->exec/fetch "
                    "chains, private URLs). Policies: Redis phx:safety:policy:NAME, reloaded "
                    "when phx:safety:policy:version changes or on SIGHUP; non-allow verdicts are "
                    "audited to PHX_SAFETY_AUDIT_STREAM and phx.events.",
                    phx_safety_opts, n, &app.cfg);
    char err[512];
    phx_err e;
    int rc = 2;
    /* A scan allocates a few buffers proportional to the text (folded text and its offset
     * map). With glibc's defaults, buffers over 128 KiB are mmap'd and unmapped on every scan,
     * and the page faults cost more than the scanning; keep them on the heap instead. */
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    if (phx_common_apply("phx-safety", &app.cfg.common, err, sizeof(err)) < 0) {
        fprintf(stderr, "phx-safety: configuration error: %s\n", err);
        goto out;
    }
    if (phx_safety_inject_init(err, sizeof(err)) < 0) {
        fprintf(stderr, "phx-safety: %s\n", err);
        goto out;
    }
    if (!(app.schemas = phx_schemas_load(app.cfg.common.schema_dir, &e))) {
        fprintf(stderr, "phx-safety: %s\n", e.message);
        goto out;
    }
    const phx_schema *ps = phx_schema_set_get(app.schemas, "policy.v1");
    if (!ps) {
        fprintf(stderr, "phx-safety: schema policy.v1 missing\n");
        goto out;
    }
    if (app.cfg.intel_files[0] &&
        !(app.intel = phx_intel_open(app.cfg.intel_files, app.cfg.intel_check_ms, &e))) {
        fprintf(stderr, "phx-safety: configuration error in PHX_INTEL_FILES: %s\n", e.message);
        goto out;
    }
    if (!(app.store = phx_safety_store_new(ps, app.cfg.policy_check_ms))) {
        fprintf(stderr, "phx-safety: out of memory\n");
        goto out;
    }
    /* Providers for policies that name a guard model. None configured is fine: such a policy
     * then meets a guard that cannot answer, and its on_error decides. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (phx_llm_chain_build(&app.llm, &app.cfg.llm, app.cfg.common.bulkhead_wait_ms, app.schemas,
                            &e) < 0) {
        fprintf(stderr, "phx-safety: configuration error: %s\n", e.message);
        goto out;
    }
    for (int i = 0; i < app.llm.n; i++)
        phx_log_info("guard provider %d: %s at %s (default model %s)", i + 1, app.llm.p[i].name,
                     app.llm.p[i].base_url, app.llm.p[i].model[0] ? app.llm.p[i].model : "-");
    phx_pool_def def = {.proc = "phx-safety",
                        .pool = "safety",
                        .kinds = phx_safety_kinds,
                        .nkinds = 2,
                        .app = &app,
                        .thread_init = phx_safety_thread_init,
                        .thread_free = phx_safety_thread_free};
    phx_worker_ops ops;
    phx_pool_ops(&ops, &def);
    phx_safety_pool_handle = ops.handle;
    ops.handle = phx_safety_handle;
    ops.reload = phx_safety_reload;
    rc = phx_worker_main(&app.cfg.common, &ops);
out:
    phx_llm_chain_free(&app.llm);
    curl_global_cleanup();
    phx_intel_close(app.intel);
    phx_safety_store_free(app.store);
    phx_schema_set_free(app.schemas);
    phx_config_free(phx_safety_opts, n, &app.cfg);
    return rc;
}
