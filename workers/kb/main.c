/* main.c -- phx-kb: the knowledge base pool (kb.upsert, kb.search, kb.delete, kb.prune).
 *
 * Wires configuration and per-thread state (a Redis connection) to the pool loop, and adds a
 * tick that keeps every collection's in-memory copy current (so the first search after a
 * start or a quiet spell finds it warm) and runs the periodic pruner. */
#include "annbuild.h"
#include "config.h"
#include "log.h"
#include "msg.h"
#include "pool.h"
#include "prune.h"
#include "steps.h"
#include "store.h"
#include "util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct phx_kb_cfg {
    phx_common common;
    phx_llm_provider_cfg llm;
    char *embedder;
    long max_items, max_text, max_meta, max_k, log_maxlen, prune_interval_ms, sync_ms;
    long hnsw_min, hnsw_m, hnsw_efc, hnsw_ef, hnsw_rebuild_pct, hnsw_threads, int8_rerank;
} phx_kb_cfg;

#define CFG phx_kb_cfg
static const phx_opt phx_kb_opts[] = {
    PHX_COMMON_OPTS(CFG),
    {"PHX_KB_EMBEDDER", PHX_OPT_STR, "lexical", 0, 0, offsetof(CFG, embedder),
     "How texts stored or searched without a vector are embedded: lexical (the local "
     "feature-hashing embedder llm.embed uses without a provider, at the collection's "
     "dimension; lexical, not semantic), llm (the embedding providers of the LLM pool, "
     "configured by the same PHX_LLM_* variables, with the same retries, circuit breakers and "
     "token budgets; the collection's dimension must be the model's) or none (such items fail "
     "with no_embedder, not retryable)."},
    {"PHX_KB_MAX_ITEMS", PHX_OPT_INT, "256", 1, 100000, offsetof(CFG, max_items),
     "Items in one kb.upsert (and ids in one kb.delete)."},
    {"PHX_KB_MAX_TEXT", PHX_OPT_INT, "65536", 1, 16777216, offsetof(CFG, max_text),
     "Bytes of one item's text or of a search query."},
    {"PHX_KB_MAX_META", PHX_OPT_INT, "4096", 2, 1048576, offsetof(CFG, max_meta),
     "Bytes of one item's metadata as compact JSON."},
    {"PHX_KB_MAX_K", PHX_OPT_INT, "1000", 1, 100000, offsetof(CFG, max_k),
     "Largest k of a kb.search."},
    {"PHX_KB_LOG_MAXLEN", PHX_OPT_INT, "100000", 1000, 100000000, offsetof(CFG, log_maxlen),
     "Entries kept in each collection's change log (approximately); a replica further behind "
     "rebuilds from the records."},
    {"PHX_KB_PRUNE_INTERVAL_MS", PHX_OPT_INT, "60000", 100, 86400000,
     offsetof(CFG, prune_interval_ms),
     "Period of the pruner (TTL expiry, capacity): each collection is pruned once per period by "
     "one replica (a Redis lease)."},
    {"PHX_KB_HNSW_MIN", PHX_OPT_INT, "10000", 0, 1000000000, offsetof(CFG, hnsw_min),
     "Collections with at least this many items get an HNSW graph and search through it "
     "(approximate); smaller ones are scanned exactly. 0 = never build graphs."},
    {"PHX_KB_HNSW_M", PHX_OPT_INT, "16", 4, 128, offsetof(CFG, hnsw_m),
     "HNSW: neighbours per node per layer (twice as many on the bottom layer)."},
    {"PHX_KB_HNSW_EF_CONSTRUCTION", PHX_OPT_INT, "200", 8, 4096, offsetof(CFG, hnsw_efc),
     "HNSW: candidates considered when a node is inserted (build quality vs time)."},
    {"PHX_KB_HNSW_EF", PHX_OPT_INT, "64", 1, 10000, offsetof(CFG, hnsw_ef),
     "HNSW: default search beam (recall vs speed); a kb.search may set its own ef, or exact."},
    {"PHX_KB_HNSW_REBUILD_PCT", PHX_OPT_INT, "30", 1, 100, offsetof(CFG, hnsw_rebuild_pct),
     "HNSW: rebuild a collection's graph when this percentage of its nodes are deleted."},
    {"PHX_KB_HNSW_BUILD_THREADS", PHX_OPT_INT, "1", 1, 64, offsetof(CFG, hnsw_threads),
     "HNSW: threads that insert into a graph being built in the background (at start, past "
     "PHX_KB_HNSW_MIN, after many deletes), sharing the graph through per-node locks. More "
     "threads finish the build sooner when cores are idle (docs/benchmarks-kb.md) but take "
     "them from the consumer lanes while it runs (searches stay exact, and slower, until the "
     "graph is attached). Default 1: waiting threads spin on node locks, which may cost more "
     "CPU than it saves on a loaded machine (not yet measured on quiet cores)."},
    {"PHX_KB_EXACT_INT8", PHX_OPT_INT, "0", 0, 64, offsetof(CFG, int8_rerank),
     "Exact searches without a filter scan an int8 copy of the vectors (one scale per vector; "
     "dim + 8 more bytes per item) for the k * N best candidates and re-rank those in float32; "
     "N is this setting, 0 = off (scan the float32 vectors). About 3-4x faster scans; results "
     "equal float32's unless a true top-k item falls outside the candidates, so dense, "
     "clustered data needs a larger N (recall@10 against float32 on 384-dim clustered data: "
     "N=4 0.94 at 100k and 0.83 at 1M vectors, N=16 0.9996 and 0.986, N=64 0.9998 and 0.9995; "
     "docs/benchmarks-kb.md)."},
    {"PHX_KB_SYNC_MS", PHX_OPT_INT, "500", 10, 60000, offsetof(CFG, sync_ms),
     "Background catch-up period with the change logs (searches always catch up first)."},
    PHX_LLM_PROVIDER_OPTS(CFG, llm),
};

static json_t *phx_kb_run_upsert(void *app, void *ts, const json_t *in, phx_err *err)
{
    (void)app;
    return phx_kb_upsert_step(ts, in, err);
}

static json_t *phx_kb_run_search(void *app, void *ts, const json_t *in, phx_err *err)
{
    (void)app;
    return phx_kb_search_step(ts, in, err);
}

static json_t *phx_kb_run_delete(void *app, void *ts, const json_t *in, phx_err *err)
{
    (void)app;
    return phx_kb_delete_step(ts, in, err);
}

static json_t *phx_kb_run_prune(void *app, void *ts, const json_t *in, phx_err *err)
{
    (void)app;
    return phx_kb_prune_step(ts, in, err);
}

static const phx_step_kind phx_kb_kinds[] = {
    {"kb.upsert", phx_kb_run_upsert},
    {"kb.search", phx_kb_run_search},
    {"kb.delete", phx_kb_run_delete},
    {"kb.prune", phx_kb_run_prune},
};

static void *phx_kb_thread_init(void *appv, phx_err *err)
{
    phx_kb_app *app = appv;
    phx_redis *r = phx_redis_from_common(app->common, err);
    if (!r)
        return NULL;
    phx_kb_thread *t = phx_xcalloc(1, sizeof(*t));
    t->app = app;
    t->r = r;
    if (app->embedder == PHX_KB_EMBED_LLM && !(t->curl = curl_easy_init())) {
        phx_err_set(err, "internal", 0, "curl_easy_init failed");
        phx_redis_free(r);
        free(t);
        return NULL;
    }
    return t;
}

static void phx_kb_thread_free(void *ts)
{
    phx_kb_thread *t = ts;
    if (!t)
        return;
    phx_redis_free(t->r);
    if (t->curl)
        curl_easy_cleanup(t->curl);
    free(t);
}

static phx_handle_rc (*phx_kb_pool_handle)(void *, const phx_inmsg *, phx_outbox *, phx_err *);

/* Record the task (tenant, job, deadline) for the step functions, then run the pool's own
 * handler: embedding through the LLM providers charges the task's budgets and must end before
 * its deadline. */
static phx_handle_rc phx_kb_handle(void *tctx, const phx_inmsg *in, phx_outbox *out, phx_err *err)
{
    phx_kb_thread *t = phx_pool_thread_state(tctx);
    if (t)
        phx_llm_ctx_from_task(&t->task, in->body);
    phx_handle_rc rc = phx_kb_pool_handle(tctx, in, out, err);
    if (t)
        memset(&t->task, 0, sizeof(t->task));
    return rc;
}

/* SIGHUP: re-read the providers' API key files, as phx-llm does. */
static void phx_kb_reload(void *defv)
{
    phx_pool_def *def = defv;
    phx_kb_app *app = def->app;
    phx_llm_chain_reload_keys(&app->llm);
}

/* PHX_KB_EMBEDDER=llm: the chain from PHX_LLM_*, which must be able to embed. */
static int phx_kb_llm_setup(phx_kb_cfg *cfg, phx_kb_app *app, phx_err *err)
{
    phx_schema_set *set = phx_schemas_load(cfg->common.schema_dir, err);
    if (!set)
        return -1;
    int rc = phx_llm_chain_build(&app->llm, &cfg->llm, cfg->common.bulkhead_wait_ms, set, err);
    phx_schema_set_free(set);
    if (rc < 0)
        return -1;
    if (!phx_llm_chain_serves(&app->llm, PHX_LLM_CAP_EMBED))
        return phx_err_set(err, "bad_config", 0,
                           "PHX_KB_EMBEDDER=llm needs an embedding provider: PHX_LLM_BASE_URL "
                           "with PHX_LLM_EMBED_MODEL, or embed_model in PHX_LLM_PROVIDERS");
    app->llm_daily_tokens = cfg->llm.tenant_daily_tokens;
    for (int i = 0; i < app->llm.n; i++)
        if (app->llm.p[i].embed_model[0])
            phx_log_info("embedding provider %s at %s, model %s", app->llm.p[i].name,
                         app->llm.p[i].base_url, app->llm.p[i].embed_model);
    return 0;
}

/* /readyz: not ready until the collections that existed at start are loaded (store.h). */
static int phx_kb_ready_hook(void *defv, char *why, size_t whylen)
{
    phx_pool_def *def = defv;
    return phx_kb_ready(def->app, why, whylen);
}

/* Catch up with every collection; every so often, prune what this replica's lease wins. */
static int phx_kb_tick(void *tctx, phx_outbox *out, phx_err *err)
{
    (void)out;
    phx_kb_thread *t = phx_pool_thread_state(tctx);
    if (phx_kb_sync_all(t->app, t->r, err) < 0)
        return -1;
    int64_t now = phx_mono_ms();
    if (now >= t->next_prune_ms) {
        long every = t->app->prune_interval_ms / 4;
        t->next_prune_ms = now + (every < 100 ? 100 : every);
        if (phx_kb_prune_due(t->app, t->r, err) < 0)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    phx_kb_cfg cfg = {0};
    phx_kb_app app = {0};
    size_t n = sizeof(phx_kb_opts) / sizeof(phx_kb_opts[0]);
    phx_config_start(argc, argv, "phx-kb",
                     "phx-kb: the knowledge base pool. Consumes phx.tasks.kb and runs kb.upsert, "
                     "kb.search, kb.delete and kb.prune on vector collections kept in Redis "
                     "(created with phx kb create), searching an in-memory copy that follows "
                     "each collection's change log; reports to phx.results.",
                     phx_kb_opts, n, &cfg, &cfg.common);
    int rc = 2;
    phx_err err;
    phx_err_clear(&err);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (strcmp(cfg.embedder, "lexical") == 0) {
        app.embedder = PHX_KB_EMBED_LEXICAL;
    } else if (strcmp(cfg.embedder, "none") == 0) {
        app.embedder = PHX_KB_EMBED_NONE;
    } else if (strcmp(cfg.embedder, "llm") == 0) {
        app.embedder = PHX_KB_EMBED_LLM;
        if (phx_kb_llm_setup(&cfg, &app, &err) < 0) {
            fprintf(stderr, "phx-kb: configuration error: %s\n", err.message);
            goto out;
        }
    } else {
        fprintf(stderr,
                "phx-kb: configuration error: PHX_KB_EMBEDDER=%s: use lexical, llm or none\n",
                cfg.embedder);
        goto out;
    }
    app.common = &cfg.common;
    app.max_items = cfg.max_items;
    app.max_text = cfg.max_text;
    app.max_meta = cfg.max_meta;
    app.max_k = cfg.max_k;
    app.log_maxlen = cfg.log_maxlen;
    app.prune_interval_ms = cfg.prune_interval_ms;
    app.ann = (phx_kb_ann_cfg){.min = (size_t)cfg.hnsw_min,
                               .M = (int)cfg.hnsw_m,
                               .efc = (int)cfg.hnsw_efc,
                               .rebuild_pct = (int)cfg.hnsw_rebuild_pct,
                               .threads = (int)cfg.hnsw_threads,
                               .background = 1};
    app.hnsw_ef = cfg.hnsw_ef;
    app.int8_rerank = cfg.int8_rerank;
    char host[64] = "";
    gethostname(host, sizeof(host) - 1);
    snprintf(app.worker, sizeof(app.worker), "%s:%d", host, (int)getpid());
    pthread_mutex_init(&app.mu, NULL);
    pthread_mutex_init(&app.boot_mu, NULL);
    phx_pool_def def = {.proc = "phx-kb",
                        .pool = "kb",
                        .kinds = phx_kb_kinds,
                        .nkinds = (int)(sizeof(phx_kb_kinds) / sizeof(phx_kb_kinds[0])),
                        .app = &app,
                        .thread_init = phx_kb_thread_init,
                        .thread_free = phx_kb_thread_free};
    phx_worker_ops ops;
    phx_pool_ops(&ops, &def);
    ops.tick = phx_kb_tick;
    ops.tick_ms = (int)cfg.sync_ms;
    phx_kb_pool_handle = ops.handle;
    ops.handle = phx_kb_handle;
    ops.reload = phx_kb_reload;
    ops.ready = phx_kb_ready_hook;
    /* Graphs are built beside the loop (annbuild.h), so a start-up load is ready as soon as
     * the vectors are in memory. */
    if (phx_kb_annbuild_start(&app) < 0) {
        fprintf(stderr, "phx-kb: cannot start the graph builder thread\n");
        rc = 1;
    } else {
        rc = phx_worker_main(&cfg.common, &ops);
        phx_kb_annbuild_stop(&app);
    }
    phx_kb_app_free(&app);
    pthread_mutex_destroy(&app.mu);
    pthread_mutex_destroy(&app.boot_mu);
out:
    phx_llm_chain_free(&app.llm);
    curl_global_cleanup();
    phx_config_free(phx_kb_opts, n, &cfg);
    return rc;
}
