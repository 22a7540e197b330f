/* main.c -- phx-llm: the LLM pool (llm.chat, llm.embed, llm.plan).
 *
 * Wires configuration, the provider chain and per-thread state (a Redis connection for budgets
 * and personas, a reusable libcurl handle) to the pool loop. The pool API hands step functions
 * only the task's input; budgets need the tenant and job and calls need the step's deadline, so
 * the pool's handler is wrapped to record the task for the running thread (phx_llm_cur). */
#include "chat.h"
#include "config.h"
#include "embed.h"
#include "llm.h"
#include "log.h"
#include "msg.h"
#include "plan.h"
#include "pool.h"
#include "schemas_embedded.h"
#include "util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct phx_llm_cfg {
    phx_common common;
    char *base_url, *model, *key_file, *embed_model, *providers;
    long embed_dim_check;
    long timeout_ms, max_concurrency, max_retries, backoff_ms, backoff_max_ms, retry_after_max_ms;
    long max_tokens, default_max_tokens, max_messages, max_input_bytes, tenant_daily_tokens;
    long local_embed_dim, max_texts;
    long br_window_ms, br_min_requests, br_failure_pct, br_open_ms, br_probes;
    char *plan_kinds;
    long plan_max_steps;
} phx_llm_cfg;

#define CFG phx_llm_cfg
static const phx_opt phx_llm_opts[] = {
    PHX_COMMON_OPTS(CFG),
    {"PHX_LLM_BASE_URL", PHX_OPT_STR, "", 0, 0, offsetof(CFG, base_url),
     "OpenAI-compatible API base URL of the one provider of the simple configuration, e.g. "
     "https://api.openai.com/v1, http://host:8000/v1 (vLLM), http://host:8080/v1 (llama.cpp), "
     "http://host:11434/v1 (Ollama). Empty = no provider: llm.chat and llm.plan fail with "
     "no_provider, llm.embed uses the local lexical embedder."},
    {"PHX_LLM_MODEL", PHX_OPT_STR, "", 0, 0, offsetof(CFG, model),
     "Chat model of the simple configuration (required with PHX_LLM_BASE_URL unless "
     "PHX_LLM_EMBED_MODEL is set)."},
    {"PHX_LLM_API_KEY_FILE", PHX_OPT_STR, "", 0, 0, offsetof(CFG, key_file),
     "File holding the API key of the simple configuration (re-read on SIGHUP). Empty = no "
     "Authorization header (local servers)."},
    {"PHX_LLM_EMBED_MODEL", PHX_OPT_STR, "", 0, 0, offsetof(CFG, embed_model),
     "Embedding model of the simple configuration; empty = llm.embed uses the local lexical "
     "embedder."},
    {"PHX_LLM_EMBED_DIM", PHX_OPT_INT, "0", 0, 65536, offsetof(CFG, embed_dim_check),
     "Expected dimension of the provider's embeddings (0 = any; answers of another "
     "dimension are treated as a provider failure)."},
    {"PHX_LLM_PROVIDERS", PHX_OPT_STR, "", 0, 0, offsetof(CFG, providers),
     "Path of a JSON file with the provider chain (schema llm-providers.v1: name, base_url, "
     "model, embed_model, models map, api_key_file, timeout_ms, max_concurrency, max_retries, "
     "max_tokens, embed_dim, cost_per_1k_*). Replaces PHX_LLM_BASE_URL/MODEL/API_KEY_FILE."},
    {"PHX_LLM_TIMEOUT_MS", PHX_OPT_INT, "60000", 100, 600000, offsetof(CFG, timeout_ms),
     "Default timeout of one request to a provider (also bounded by the step's deadline)."},
    {"PHX_LLM_MAX_CONCURRENCY", PHX_OPT_INT, "16", 1, 10000, offsetof(CFG, max_concurrency),
     "Default bulkhead: requests in flight to one provider from this process; beyond it the "
     "next provider is used."},
    {"PHX_LLM_MAX_RETRIES", PHX_OPT_INT, "2", 0, 10, offsetof(CFG, max_retries),
     "Default retries on one provider after a 429, 5xx, timeout or malformed answer."},
    {"PHX_LLM_BACKOFF_MS", PHX_OPT_INT, "250", 1, 60000, offsetof(CFG, backoff_ms),
     "Base of the exponential backoff between retries (full jitter)."},
    {"PHX_LLM_BACKOFF_MAX_MS", PHX_OPT_INT, "8000", 1, 600000, offsetof(CFG, backoff_max_ms),
     "Cap of one backoff wait."},
    {"PHX_LLM_RETRY_AFTER_MAX_MS", PHX_OPT_INT, "30000", 0, 600000,
     offsetof(CFG, retry_after_max_ms),
     "A Retry-After longer than this moves on to the next provider instead of waiting."},
    {"PHX_LLM_MAX_TOKENS", PHX_OPT_INT, "8192", 1, 10000000, offsetof(CFG, max_tokens),
     "Default per-model limit on max_tokens (a request above it is invalid_input)."},
    {"PHX_LLM_DEFAULT_MAX_TOKENS", PHX_OPT_INT, "1024", 1, 10000000,
     offsetof(CFG, default_max_tokens), "max_tokens of a chat that sets none (nor its persona)."},
    {"PHX_LLM_MAX_MESSAGES", PHX_OPT_INT, "512", 1, 100000, offsetof(CFG, max_messages),
     "Messages accepted in one llm.chat."},
    {"PHX_LLM_MAX_INPUT_BYTES", PHX_OPT_INT, "524288", 1, 67108864, offsetof(CFG, max_input_bytes),
     "Bytes of message content accepted in one llm.chat."},
    {"PHX_LLM_TENANT_DAILY_TOKENS", PHX_OPT_INT, "0", 0, 4000000000000L,
     offsetof(CFG, tenant_daily_tokens),
     "Default token budget per tenant per UTC day (0 = unlimited); a tenant's own limit in "
     "Redis key phx:llm:budget:{TENANT}:limit overrides it."},
    {"PHX_LLM_LOCAL_EMBED_DIM", PHX_OPT_INT, "384", 8, 8192, offsetof(CFG, local_embed_dim),
     "Dimension of the local lexical embedder's vectors."},
    {"PHX_LLM_MAX_TEXTS", PHX_OPT_INT, "256", 1, 100000, offsetof(CFG, max_texts),
     "Texts accepted in one llm.embed."},
    {"PHX_LLM_BREAKER_WINDOW_MS", PHX_OPT_INT, "30000", 100, 3600000, offsetof(CFG, br_window_ms),
     "Circuit breaker: sliding window over which a provider's failure rate is measured."},
    {"PHX_LLM_BREAKER_MIN_REQUESTS", PHX_OPT_INT, "10", 1, 100000, offsetof(CFG, br_min_requests),
     "Circuit breaker: outcomes in the window before it may open."},
    {"PHX_LLM_BREAKER_FAILURE_PCT", PHX_OPT_INT, "50", 1, 100, offsetof(CFG, br_failure_pct),
     "Circuit breaker: failure percentage in the window that opens it."},
    {"PHX_LLM_BREAKER_OPEN_MS", PHX_OPT_INT, "10000", 10, 3600000, offsetof(CFG, br_open_ms),
     "Circuit breaker: how long it stays open (jittered +-20%) before half-open probes."},
    {"PHX_LLM_BREAKER_PROBES", PHX_OPT_INT, "2", 1, 100, offsetof(CFG, br_probes),
     "Circuit breaker: concurrent half-open probes, and successes needed to close."},
    {"PHX_LLM_PLAN_KINDS", PHX_OPT_STR, "tool.calc,tool.http_fetch,llm.chat,llm.embed", 0, 0,
     offsetof(CFG, plan_kinds),
     "Step kinds an llm.plan may use when its input names no allowed_kinds (comma-separated)."},
    {"PHX_LLM_PLAN_MAX_STEPS", PHX_OPT_INT, "16", 1, 256, offsetof(CFG, plan_max_steps),
     "Most steps a plan may have."},
};

static __thread phx_llm_ctx phx_llm_cur;
static phx_handle_rc (*phx_llm_pool_handle)(void *, const phx_inmsg *, phx_outbox *, phx_err *);

/* Record the task for this thread, then run the pool's own handler. */
static phx_handle_rc phx_llm_handle(void *tctx, const phx_inmsg *in, phx_outbox *out, phx_err *err)
{
    const json_t *task = in->body;
    int64_t now = phx_now_ms(), end = 0;
    json_t *dl = json_object_get(task, "deadline_at_ms");
    json_t *disp = json_object_get(task, "dispatched_ms"),
           *to = json_object_get(task, "timeout_ms");
    if (json_is_integer(dl) && json_integer_value(dl) > 0)
        end = json_integer_value(dl);
    if (json_is_integer(disp) && json_is_integer(to)) {
        int64_t step_end = json_integer_value(disp) + json_integer_value(to);
        if (!end || step_end < end)
            end = step_end;
    }
    phx_llm_cur = (phx_llm_ctx){
        .job_id = json_string_value(json_object_get(task, "job_id")),
        .tenant = json_string_value(json_object_get(task, "tenant")),
        .principal = json_string_value(json_object_get(task, "principal")),
        .step_id = json_string_value(json_object_get(task, "step_id")),
        /* Finish a little early so the result reaches the planner before its timer fires. */
        .deadline_mono_ms = end ? phx_mono_ms() + (end - now) - 100 : 0,
    };
    if (end && phx_llm_cur.deadline_mono_ms <= phx_mono_ms())
        phx_llm_cur.deadline_mono_ms = phx_mono_ms() + 1;
    phx_handle_rc rc = phx_llm_pool_handle(tctx, in, out, err);
    memset(&phx_llm_cur, 0, sizeof(phx_llm_cur));
    return rc;
}

static json_t *phx_llm_run_chat(void *app, void *ts, const json_t *input, phx_err *err)
{
    return phx_llm_chat_step(app, ts, &phx_llm_cur, input, err);
}

static json_t *phx_llm_run_embed(void *app, void *ts, const json_t *input, phx_err *err)
{
    return phx_llm_embed_step(app, ts, &phx_llm_cur, input, err);
}

static json_t *phx_llm_run_plan(void *app, void *ts, const json_t *input, phx_err *err)
{
    return phx_llm_plan_step(app, ts, &phx_llm_cur, input, err);
}

static const phx_step_kind phx_llm_kinds[] = {
    {"llm.chat", phx_llm_run_chat},
    {"llm.embed", phx_llm_run_embed},
    {"llm.plan", phx_llm_run_plan},
};

static void *phx_llm_thread_init(void *appv, phx_err *err)
{
    phx_llm_app *app = appv;
    phx_llm_thread *t = calloc(1, sizeof(*t));
    t->r = phx_redis_from_common(app->common, err);
    t->curl = curl_easy_init();
    if (!t->r || !t->curl) {
        if (t->r && !t->curl)
            phx_err_set(err, "internal", 0, "curl_easy_init failed");
        phx_redis_free(t->r);
        if (t->curl)
            curl_easy_cleanup(t->curl);
        free(t);
        return NULL;
    }
    return t;
}

static void phx_llm_thread_free(void *ts)
{
    phx_llm_thread *t = ts;
    if (!t)
        return;
    phx_redis_free(t->r);
    curl_easy_cleanup(t->curl);
    free(t);
}

static void phx_llm_reload(void *defv)
{
    phx_pool_def *def = defv;
    phx_llm_app *app = def->app;
    phx_llm_chain_reload_keys(&app->chain);
}

/* The provider chain from PHX_LLM_PROVIDERS or the simple PHX_LLM_* variables. */
static int phx_llm_build_chain(phx_llm_cfg *cfg, phx_llm_app *app, const phx_schema_set *set,
                               phx_err *err)
{
    phx_llm_defaults d = {
        .timeout_ms = cfg->timeout_ms,
        .max_concurrency = cfg->max_concurrency,
        .max_retries = cfg->max_retries,
        .max_tokens = cfg->max_tokens,
        .bulkhead_wait_ms = cfg->common.bulkhead_wait_ms,
        .breaker = {cfg->br_window_ms, cfg->br_min_requests, cfg->br_failure_pct, cfg->br_open_ms,
                    cfg->br_probes},
    };
    app->chain.backoff_ms = cfg->backoff_ms;
    app->chain.backoff_max_ms = cfg->backoff_max_ms;
    app->chain.retry_after_max_ms = cfg->retry_after_max_ms;
    if (cfg->providers[0]) {
        if (cfg->base_url[0])
            return phx_err_set(err, "bad_config", 0,
                               "set PHX_LLM_PROVIDERS or PHX_LLM_BASE_URL, not both");
        json_error_t je;
        json_t *doc = json_load_file(cfg->providers, JSON_REJECT_DUPLICATES, &je), *errors = NULL;
        if (!doc)
            return phx_err_set(err, "bad_config", 0, "PHX_LLM_PROVIDERS %s: %s (line %d)",
                               cfg->providers, je.text, je.line);
        const phx_schema *s = phx_schema_set_get(set, "llm-providers.v1");
        if (s && phx_schema_validate(s, doc, &errors) != 0) {
            char *e = json_dumps(errors, JSON_COMPACT);
            phx_err_set(err, "bad_config", 0, "PHX_LLM_PROVIDERS %s fails llm-providers.v1: %.400s",
                        cfg->providers, e ? e : "");
            free(e);
            json_decref(errors);
            json_decref(doc);
            return -1;
        }
        size_t i;
        json_t *p;
        int rc = 0;
        json_array_foreach(json_object_get(doc, "providers"), i, p) if (rc == 0) rc =
            phx_llm_chain_add(&app->chain, p, &d, err);
        json_decref(doc);
        return rc;
    }
    if (!cfg->base_url[0]) {
        if (cfg->model[0] || cfg->key_file[0] || cfg->embed_model[0])
            return phx_err_set(err, "bad_config", 0,
                               "PHX_LLM_MODEL/API_KEY_FILE/EMBED_MODEL need PHX_LLM_BASE_URL");
        return 0;
    }
    if (!cfg->model[0] && !cfg->embed_model[0])
        return phx_err_set(err, "bad_config", 0,
                           "PHX_LLM_BASE_URL needs PHX_LLM_MODEL (and/or PHX_LLM_EMBED_MODEL)");
    json_t *spec = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "default", "base_url",
                             cfg->base_url, "model", cfg->model, "embed_model", cfg->embed_model,
                             "api_key_file", cfg->key_file);
    if (cfg->embed_dim_check > 0)
        json_object_set_new(spec, "embed_dim", json_integer(cfg->embed_dim_check));
    int rc = phx_llm_chain_add(&app->chain, spec, &d, err);
    json_decref(spec);
    return rc;
}

/* The plan schema, built from the job.v1 this binary carries. */
static int phx_llm_build_plan_schema(phx_llm_app *app, phx_err *err)
{
    json_t *job = NULL;
    for (int i = 0; i < phx_embedded_schemas_count; i++)
        if (strcmp(phx_embedded_schemas[i].name, "job.v1") == 0)
            job = json_loads(phx_embedded_schemas[i].text, 0, NULL);
    app->plan_schema_json = job ? phx_llm_plan_schema(job, app->plan_max_steps) : NULL;
    json_decref(job);
    char e[300];
    if (!app->plan_schema_json ||
        !(app->plan_schema = phx_schema_new(app->plan_schema_json, e, sizeof(e))))
        return phx_err_set(err, "bad_config", 0, "cannot build the plan schema from job.v1");
    return 0;
}

int main(int argc, char **argv)
{
    phx_llm_cfg cfg = {0};
    phx_llm_app app = {0};
    phx_schema_set *schemas = NULL;
    size_t n = sizeof(phx_llm_opts) / sizeof(phx_llm_opts[0]);
    phx_config_main(argc, argv,
                    "phx-llm: the LLM pool. Consumes phx.tasks.llm and runs llm.chat, llm.embed "
                    "and llm.plan against a chain of OpenAI-compatible providers (OpenAI, vLLM, "
                    "llama.cpp, Ollama), with retries, circuit breakers, bulkheads and token "
                    "budgets, reporting to phx.results. SIGHUP re-reads API key files.",
                    phx_llm_opts, n, &cfg);
    char e[512];
    phx_err err;
    phx_err_clear(&err);
    int rc = 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (phx_common_apply("phx-llm", &cfg.common, e, sizeof(e)) < 0) {
        fprintf(stderr, "phx-llm: configuration error: %s\n", e);
        goto out;
    }
    app.max_tokens_default = cfg.default_max_tokens;
    app.max_messages = cfg.max_messages;
    app.max_input_bytes = cfg.max_input_bytes;
    app.tenant_daily_tokens = cfg.tenant_daily_tokens;
    app.embed_dim = cfg.local_embed_dim;
    app.max_texts = cfg.max_texts;
    app.plan_max_steps = cfg.plan_max_steps;
    app.plan_kinds = cfg.plan_kinds;
    app.common = &cfg.common;
    if (!(schemas = phx_schemas_load(cfg.common.schema_dir, &err)) ||
        phx_llm_build_chain(&cfg, &app, schemas, &err) < 0 ||
        phx_llm_build_plan_schema(&app, &err) < 0) {
        fprintf(stderr, "phx-llm: configuration error: %s\n", err.message);
        goto out;
    }
    app.schemas = schemas;
    for (int i = 0; i < app.chain.n; i++)
        phx_log_info("provider %d: %s at %s (chat model %s, embeddings %s, key %s)", i + 1,
                     app.chain.p[i].name, app.chain.p[i].base_url,
                     app.chain.p[i].model[0] ? app.chain.p[i].model : "-",
                     app.chain.p[i].embed_model[0] ? app.chain.p[i].embed_model : "-",
                     app.chain.p[i].key_file[0] ? "from file" : "none");
    if (!phx_llm_chain_serves(&app.chain, PHX_LLM_CAP_CHAT))
        phx_log_warn("no chat provider configured (PHX_LLM_BASE_URL + PHX_LLM_MODEL): llm.chat "
                     "and llm.plan will fail with no_provider");
    phx_pool_def def = {.proc = "phx-llm",
                        .pool = "llm",
                        .kinds = phx_llm_kinds,
                        .nkinds = 3,
                        .app = &app,
                        .thread_init = phx_llm_thread_init,
                        .thread_free = phx_llm_thread_free};
    phx_worker_ops ops;
    phx_pool_ops(&ops, &def);
    phx_llm_pool_handle = ops.handle;
    ops.handle = phx_llm_handle;
    ops.reload = phx_llm_reload;
    rc = phx_worker_main(&cfg.common, &ops);
out:
    phx_llm_chain_free(&app.chain);
    phx_schema_free(app.plan_schema);
    json_decref(app.plan_schema_json);
    phx_schema_set_free(schemas);
    curl_global_cleanup();
    phx_config_free(phx_llm_opts, n, &cfg);
    return rc;
}
