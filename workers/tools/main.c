/* main.c -- phx-tools: the tools pool (tool.calc, tool.http_fetch, tool.json_extract,
 * tool.webhook).
 *
 * Each tool is a pure step function in its own file; this file only wires them to the pool
 * loop and to their configuration. */
#include "bulkhead.h"
#include "calc.h"
#include "config.h"
#include "http_fetch.h"
#include "intel.h"
#include "log.h"
#include "json_extract.h"
#include "pool.h"
#include "tenancy.h"
#include "usage.h"
#include "webhook.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct phx_tools_cfg {
    phx_common common;
    long fetch_timeout_ms;
    long fetch_max_timeout_ms;
    long fetch_max_body;
    long fetch_max_redirects;
    char *fetch_allow_cidrs;
    char *webhook_secret_file;
    char *tool_rates;
    phx_tool_rates rates;
    char *intel_files;
    long intel_check_ms;
    long max_inflight;
    long usage_flush_ms;
    phx_usage *usage; /* the process's usage counts, flushed by the tick (NULL: per call) */
    phx_bulkhead fetch_bh, webhook_bh; /* per outbound tool: "tool:http_fetch", "tool:webhook" */
    phx_fetch_cfg fetch;
    phx_webhook_cfg webhook;
} phx_tools_cfg;

#define CFG phx_tools_cfg
static const phx_opt phx_tools_opts[] = {
    PHX_COMMON_OPTS(CFG),
    {"PHX_FETCH_TIMEOUT_MS", PHX_OPT_INT, "10000", 100, 600000, offsetof(CFG, fetch_timeout_ms),
     "tool.http_fetch: timeout of a request that sets no timeout_ms."},
    {"PHX_FETCH_MAX_TIMEOUT_MS", PHX_OPT_INT, "60000", 100, 600000,
     offsetof(CFG, fetch_max_timeout_ms), "tool.http_fetch: cap on a request's timeout_ms."},
    {"PHX_FETCH_MAX_BODY", PHX_OPT_INT, "1048576", 1, 67108864, offsetof(CFG, fetch_max_body),
     "tool.http_fetch: response body bytes kept; beyond it the output says truncated."},
    {"PHX_FETCH_MAX_REDIRECTS", PHX_OPT_INT, "5", 0, 20, offsetof(CFG, fetch_max_redirects),
     "tool.http_fetch: redirects followed (each hop is checked against the address rules)."},
    {"PHX_FETCH_ALLOW_CIDRS", PHX_OPT_STR, "", 0, 0, offsetof(CFG, fetch_allow_cidrs),
     "tool.http_fetch: comma-separated CIDRs allowed although private, loopback or "
     "link-local (refused by default to stop SSRF), e.g. 10.1.2.0/24."},
    PHX_INTEL_OPTS(CFG, intel_files, intel_check_ms,
                   "tool.http_fetch refuses a listed domain, address, URL or body hash "
                   "(intel_blocked)"),
    {"PHX_WEBHOOK_SECRET_FILE", PHX_OPT_STR, "", 0, 0, offsetof(CFG, webhook_secret_file),
     "tool.webhook: file holding the HMAC-SHA256 signing secret, read at every call (rotate "
     "by replacing the file); empty = tool.webhook fails with 'unavailable'."},
    {"PHX_TOOL_RATES", PHX_OPT_STR, "", 0, 0, offsetof(CFG, tool_rates),
     "Default rate limit per tenant and tool kind, shared by every replica: "
     "'KIND=PER_S[/BURST],...', e.g. 'tool.http_fetch=20/40,tool.webhook=5'; a tenant's "
     "KIND:per_s / KIND:burst fields in phx:rl:{TENANT}:conf replace it (per_s 0 = unlimited). "
     "A call over the limit fails retryable with code rate_limited and retry_after_ms."},
    {"PHX_TOOLS_MAX_INFLIGHT", PHX_OPT_INT, "16", 1, 4096, offsetof(CFG, max_inflight),
     "Bulkhead of each outbound tool (tool.http_fetch, tool.webhook): calls in flight at once "
     "in this process. A task finding it full waits in Kafka (partitions paused) until a call "
     "ends."},
    {"PHX_TOOLS_USAGE_FLUSH_MS", PHX_OPT_INT, "100", 0, 60000, offsetof(CFG, usage_flush_ms),
     "Usage accounting (phx:usage:{TENANT}:DAY): counts are summed in the process and written "
     "every this many ms in one round trip, so a call shows there within this time (a kill -9 "
     "loses at most this long's counts; SIGTERM writes them). 0 = one round trip per call, "
     "visible at once."},
};

/* The tools themselves, as (app, input) functions for phx_tenancy_run. */
static json_t *phx_tools_calc_fn(void *app, phx_tenancy *t, const json_t *input, phx_err *err)
{
    (void)app, (void)t;
    return phx_calc_step(input, err);
}

/* The tenant's allow-list also judges every redirect of the fetch. */
static json_t *phx_tools_fetch_fn(void *app, phx_tenancy *t, const json_t *input, phx_err *err)
{
    phx_fetch_hosts hosts = {phx_tenancy_host_allowed, t};
    return phx_http_fetch_hosts(input, &((phx_tools_cfg *)app)->fetch, t ? &hosts : NULL, err);
}

static json_t *phx_tools_json_extract_fn(void *app, phx_tenancy *t, const json_t *input,
                                         phx_err *err)
{
    (void)app, (void)t;
    return phx_json_extract_step(input, err);
}

/* No redirects are followed by a webhook (webhook.c), so the first host is the only one. */
static json_t *phx_tools_webhook_fn(void *app, phx_tenancy *t, const json_t *input, phx_err *err)
{
    (void)t;
    return phx_webhook_step(input, &((phx_tools_cfg *)app)->webhook, err);
}

/* Pool step functions: each call goes through the tenant's allow-list and accounting. */
static json_t *phx_tools_calc(void *app, void *ts, const json_t *input, phx_err *err)
{
    return phx_tenancy_run(ts, "tool.calc", 0, phx_tools_calc_fn, app, input, err);
}

/* An outbound tool call inside its bulkhead. A refusal is not a tool call (nothing is
 * accounted): the pool holds the task back (see pool.c). */
static json_t *phx_tools_outbound(phx_bulkhead *bh, void *app, void *ts, const char *kind,
                                  json_t *(*fn)(void *, phx_tenancy *, const json_t *, phx_err *),
                                  const json_t *input, phx_err *err)
{
    if (phx_bulkhead_enter(bh, err) < 0)
        return NULL;
    json_t *out = phx_tenancy_run(ts, kind, 1, fn, app, input, err);
    phx_bulkhead_leave(bh);
    return out;
}

static json_t *phx_tools_fetch(void *app, void *ts, const json_t *input, phx_err *err)
{
    return phx_tools_outbound(&((phx_tools_cfg *)app)->fetch_bh, app, ts, "tool.http_fetch",
                              phx_tools_fetch_fn, input, err);
}

static json_t *phx_tools_json_extract(void *app, void *ts, const json_t *input, phx_err *err)
{
    return phx_tenancy_run(ts, "tool.json_extract", 0, phx_tools_json_extract_fn, app, input, err);
}

static json_t *phx_tools_webhook(void *app, void *ts, const json_t *input, phx_err *err)
{
    return phx_tools_outbound(&((phx_tools_cfg *)app)->webhook_bh, app, ts, "tool.webhook",
                              phx_tools_webhook_fn, input, err);
}

static void *phx_tools_thread_init(void *app, phx_err *err)
{
    phx_tools_cfg *cfg = app;
    return phx_tenancy_new(&cfg->common, &cfg->rates, cfg->usage, err);
}

/* The tick: write the usage counts summed since the last one (usage.h). */
static int phx_tools_tick(void *tctx, phx_outbox *out, phx_err *err)
{
    (void)out;
    return phx_tenancy_flush_usage(phx_pool_thread_state(tctx), err);
}

/* After the loop stopped (every thread joined): the counts of the last interval. A failure
 * here is logged; the counts are lost only if Redis stays down for the whole timeout. */
static void phx_tools_last_flush(phx_tools_cfg *cfg)
{
    phx_err e;
    phx_tenancy *t = phx_tenancy_new(&cfg->common, &cfg->rates, cfg->usage, &e);
    if (!t || phx_tenancy_flush_usage(t, &e) < 0)
        phx_log_error("tool usage: last flush failed: %s", e.message);
    phx_tenancy_free(t);
}

static void phx_tools_thread_free(void *ts)
{
    phx_tenancy_free(ts);
}

static const phx_step_kind phx_tools_kinds[] = {
    {"tool.calc", phx_tools_calc},
    {"tool.http_fetch", phx_tools_fetch},
    {"tool.json_extract", phx_tools_json_extract},
    {"tool.webhook", phx_tools_webhook},
};
#define PHX_TOOLS_NKINDS ((int)(sizeof(phx_tools_kinds) / sizeof(phx_tools_kinds[0])))

/* SIGHUP: reload the feeds now (ops.app is the pool definition). */
static void phx_tools_reload(void *app)
{
    phx_tools_cfg *cfg = ((phx_pool_def *)app)->app;
    phx_err e;
    if (cfg->fetch.intel && phx_intel_refresh(cfg->fetch.intel, 1, &e) < 0)
        phx_log_error("intel feeds: %s (keeping the previous ones)", e.message);
}

int main(int argc, char **argv)
{
    phx_tools_cfg cfg = {0};
    size_t n = sizeof(phx_tools_opts) / sizeof(phx_tools_opts[0]);
    phx_config_start(argc, argv, "phx-tools",
                     "phx-tools: the tools pool. Consumes phx.tasks.tools and runs tool.calc "
                     "(safe arithmetic), tool.http_fetch (HTTP GET/POST with SSRF guards), "
                     "tool.json_extract (JSON Pointer) and tool.webhook (HMAC-signed POST), "
                     "reporting to phx.results.",
                     phx_tools_opts, n, &cfg, &cfg.common);
    phx_err e;
    cfg.fetch.timeout_ms = cfg.fetch_timeout_ms;
    cfg.fetch.max_timeout_ms = cfg.fetch_max_timeout_ms;
    cfg.fetch.max_body_bytes = (size_t)cfg.fetch_max_body;
    cfg.fetch.max_redirects = (int)cfg.fetch_max_redirects;
    cfg.fetch.allow_cidrs = cfg.fetch_allow_cidrs;
    cfg.webhook.secret_file = cfg.webhook_secret_file;
    cfg.webhook.fetch = &cfg.fetch;
    int rc = 2;
    const char *names[PHX_TOOLS_NKINDS];
    for (int i = 0; i < PHX_TOOLS_NKINDS; i++)
        names[i] = phx_tools_kinds[i].kind;
    if (phx_tool_rates_parse(cfg.tool_rates, names, PHX_TOOLS_NKINDS, &cfg.rates, &e) < 0) {
        fprintf(stderr, "phx-tools: configuration error in PHX_TOOL_RATES: %s\n", e.message);
        goto out;
    }
    if (phx_fetch_cfg_check(&cfg.fetch, &e) < 0) {
        fprintf(stderr,
                "phx-tools: configuration error in PHX_FETCH_* (PHX_FETCH_ALLOW_CIDRS=%s): %s\n",
                cfg.fetch_allow_cidrs, e.message);
        goto out;
    }
    if (cfg.intel_files[0] &&
        !(cfg.fetch.intel = phx_intel_open(cfg.intel_files, cfg.intel_check_ms, &e))) {
        fprintf(stderr, "phx-tools: configuration error in PHX_INTEL_FILES: %s\n", e.message);
        goto out;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    phx_bulkhead_init(&cfg.fetch_bh, "tool:http_fetch", cfg.max_inflight,
                      cfg.common.bulkhead_wait_ms);
    phx_bulkhead_init(&cfg.webhook_bh, "tool:webhook", cfg.max_inflight,
                      cfg.common.bulkhead_wait_ms);
    phx_pool_def def = {.proc = "phx-tools",
                        .pool = "tools",
                        .kinds = phx_tools_kinds,
                        .nkinds = PHX_TOOLS_NKINDS,
                        .app = &cfg,
                        .thread_init = phx_tools_thread_init,
                        .thread_free = phx_tools_thread_free};
    phx_worker_ops ops;
    if (cfg.usage_flush_ms > 0)
        cfg.usage = phx_usage_new();
    phx_pool_ops(&ops, &def);
    ops.reload = phx_tools_reload;
    if (cfg.usage) {
        ops.tick = phx_tools_tick;
        ops.tick_ms = (int)cfg.usage_flush_ms;
    }
    rc = phx_worker_main(&cfg.common, &ops);
    if (cfg.usage)
        phx_tools_last_flush(&cfg);
    phx_bulkhead_destroy(&cfg.fetch_bh);
    phx_bulkhead_destroy(&cfg.webhook_bh);
    curl_global_cleanup();
out:
    phx_usage_free(cfg.usage);
    phx_intel_close(cfg.fetch.intel);
    phx_tool_rates_free(&cfg.rates);
    phx_config_free(phx_tools_opts, n, &cfg);
    return rc;
}
