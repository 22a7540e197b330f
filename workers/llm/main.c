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
    phx_llm_provider_cfg prov;
    long default_max_tokens, max_messages, max_input_bytes;
    long local_embed_dim, max_texts;
    char *plan_kinds;
    long plan_max_steps;
} phx_llm_cfg;

#define CFG phx_llm_cfg
static const phx_opt phx_llm_opts[] = {
    PHX_COMMON_OPTS(CFG),
    PHX_LLM_PROVIDER_OPTS(CFG, prov),
    {"PHX_LLM_DEFAULT_MAX_TOKENS", PHX_OPT_INT, "1024", 1, 10000000,
     offsetof(CFG, default_max_tokens), "max_tokens of a chat that sets none (nor its persona)."},
    {"PHX_LLM_MAX_MESSAGES", PHX_OPT_INT, "512", 1, 100000, offsetof(CFG, max_messages),
     "Messages accepted in one llm.chat."},
    {"PHX_LLM_MAX_INPUT_BYTES", PHX_OPT_INT, "524288", 1, 67108864, offsetof(CFG, max_input_bytes),
     "Bytes of message content accepted in one llm.chat."},
    {"PHX_LLM_LOCAL_EMBED_DIM", PHX_OPT_INT, "384", 8, 8192, offsetof(CFG, local_embed_dim),
     "Dimension of the local lexical embedder's vectors."},
    {"PHX_LLM_MAX_TEXTS", PHX_OPT_INT, "256", 1, 100000, offsetof(CFG, max_texts),
     "Texts accepted in one llm.embed."},
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
    phx_llm_ctx_from_task(&phx_llm_cur, in->body);
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
    phx_llm_thread *t = phx_xcalloc(1, sizeof(*t));
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
    app.tenant_daily_tokens = cfg.prov.tenant_daily_tokens;
    app.embed_dim = cfg.local_embed_dim;
    app.max_texts = cfg.max_texts;
    app.plan_max_steps = cfg.plan_max_steps;
    app.plan_kinds = cfg.plan_kinds;
    app.common = &cfg.common;
    if (!(schemas = phx_schemas_load(cfg.common.schema_dir, &err)) ||
        phx_llm_chain_build(&app.chain, &cfg.prov, cfg.common.bulkhead_wait_ms, schemas, &err) <
            0 ||
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
