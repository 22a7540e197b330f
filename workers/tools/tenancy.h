/* tenancy.h -- per-tenant rules and accounting around the tools of phx-tools.
 *
 * Every tool call is wrapped: before it runs, a tool that reaches the network
 * (tool.http_fetch, tool.webhook) must name a host on the tenant's allow-list when the tenant
 * has one, and the call must fit the tenant's rate limit for that tool kind; after it ran,
 * the call is counted per tenant and kind in Redis and in metrics:
 *
 *   phx:tenant:TENANT:allow_hosts   set   host names ("api.example.com") or domain suffixes
 *                                          (".example.com"); absent or empty = any host
 *   phx:rl:{TENANT}:conf            hash  KIND:per_s, KIND:burst: the tenant's limit for a
 *                                          kind, replacing the pool's PHX_TOOL_RATES one
 *   phx:rl:{TENANT}:tool:KIND       str   the limit's GCRA state (lib/ratelimit)
 *   phx:usage:{TENANT}:YYYYMMDD     hash  KIND:calls, KIND:errors, KIND:limited, KIND:bytes
 *                                          (kept 35 days; summed in the process and written
 *                                          every PHX_TOOLS_USAGE_FLUSH_MS, see usage.h)
 *   phx_tool_calls_total{kind,tenant,outcome}, phx_tool_bytes_total{kind,tenant}  (metrics)
 *
 * A call over the limit does not run: it fails retryable ("rate_limited") with the time
 * until the bucket has room as retry_after_ms, which the planner honours for the next
 * attempt (so it counts as an attempt: give rate-limited steps a retry policy). Checking a
 * limit costs one Redis round trip, so it is only made when a limit can apply: the pool has
 * a default for the kind, or the tenant's conf hash names the kind -- which each thread reads
 * at most once per second per tenant. A limit set for a kind the pool does not limit thus
 * applies within a second; changing an existing limit applies to the next call.
 *
 * The allow-list applies to the URL the job names and, for tool.http_fetch, to every redirect
 * (phx_tenancy_host_allowed as the fetch's host rule); the address rules of tool.http_fetch
 * (no private addresses) apply on top. */
#ifndef PHX_TOOLS_TENANCY_H
#define PHX_TOOLS_TENANCY_H

#include "config.h"
#include "pool.h"
#include "ratelimit.h"

typedef struct phx_tenancy phx_tenancy;

/* The pool's default limit per tool kind (PHX_TOOL_RATES), indexed like the kinds array
 * given to phx_tool_rates_parse; per_s <= 0 = no default limit. */
typedef struct phx_tool_rates {
    const char *const *kinds;
    int nkinds;
    phx_rate *rate;
} phx_tool_rates;

/* Parse "KIND=PER_S[/BURST],..." (burst defaults to PER_S rounded up, at least 1) for the
 * given kinds into out (out->rate malloc'd: phx_tool_rates_free). 0, or -1 with err naming
 * the bad entry (unknown kind, bad number). */
int phx_tool_rates_parse(const char *spec, const char *const *kinds, int nkinds,
                         phx_tool_rates *out, phx_err *err);
void phx_tool_rates_free(phx_tool_rates *r);

/* Per-thread state (a Redis connection, the tenants' limits cache). rates and usage are kept,
 * not copied; usage (shared by the process's threads) sums the usage counts for
 * phx_tenancy_flush_usage, NULL writes them at every call. NULL with err. */
struct phx_usage;
phx_tenancy *phx_tenancy_new(const phx_common *common, const phx_tool_rates *rates,
                             struct phx_usage *usage, phx_err *err);
void phx_tenancy_free(phx_tenancy *t);

/* Run fn(app, input) as tool kind for the current task's tenant, with the allow-list check
 * (when host_checked) and the accounting. */
json_t *phx_tenancy_run(phx_tenancy *t, const char *kind, int host_checked,
                        json_t *(*fn)(void *app, phx_tenancy *t, const json_t *input, phx_err *err),
                        void *app, const json_t *input, phx_err *err);

/* Write the usage counts summed since the last flush through this thread's connection (the
 * pool's tick; usage.h has the bound). 0, or -1 with err (the counts are kept). */
int phx_tenancy_flush_usage(phx_tenancy *t, phx_err *err);

/* During a host-checked phx_tenancy_run call: 1 if host is on the tenant's allow-list (or
 * the tenant has none). t is a phx_tenancy * (void * to serve as a phx_fetch_hosts rule). */
int phx_tenancy_host_allowed(void *t, const char *host);

/* Does host match the allow-list entries (exact, or a ".suffix" entry)? Exposed for tests. */
int phx_tenancy_host_match(const char *host, const char *const *entries, size_t n);

#endif
