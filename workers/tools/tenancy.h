/* tenancy.h -- per-tenant rules and accounting around the tools of phx-tools.
 *
 * Every tool call is wrapped: before it runs, a tool that reaches the network
 * (tool.http_fetch, tool.webhook) must name a host on the tenant's allow-list when the tenant
 * has one; after it ran, the call is counted per tenant and kind in Redis and in metrics:
 *
 *   phx:tenant:TENANT:allow_hosts   set   host names ("api.example.com") or domain suffixes
 *                                          (".example.com"); absent or empty = any host
 *   phx:usage:{TENANT}:YYYYMMDD     hash  KIND:calls, KIND:errors, KIND:bytes (kept 35 days)
 *   phx_tool_calls_total{kind,tenant,outcome}, phx_tool_bytes_total{kind,tenant}  (metrics)
 *
 * The allow-list applies to the URL the job names and, for tool.http_fetch, to every redirect
 * (phx_tenancy_host_allowed as the fetch's host rule); the address rules of tool.http_fetch
 * (no private addresses) apply on top. */
#ifndef PHX_TOOLS_TENANCY_H
#define PHX_TOOLS_TENANCY_H

#include "config.h"
#include "pool.h"

typedef struct phx_tenancy phx_tenancy;

/* Per-thread state (a Redis connection). NULL with err. */
phx_tenancy *phx_tenancy_new(const phx_common *common, phx_err *err);
void phx_tenancy_free(phx_tenancy *t);

/* Run fn(app, input) as tool kind for the current task's tenant, with the allow-list check
 * (when host_checked) and the accounting. */
json_t *phx_tenancy_run(phx_tenancy *t, const char *kind, int host_checked,
                        json_t *(*fn)(void *app, phx_tenancy *t, const json_t *input, phx_err *err),
                        void *app, const json_t *input, phx_err *err);

/* During a host-checked phx_tenancy_run call: 1 if host is on the tenant's allow-list (or
 * the tenant has none). t is a phx_tenancy * (void * to serve as a phx_fetch_hosts rule). */
int phx_tenancy_host_allowed(void *t, const char *host);

/* Does host match the allow-list entries (exact, or a ".suffix" entry)? Exposed for tests. */
int phx_tenancy_host_match(const char *host, const char *const *entries, size_t n);

#endif
