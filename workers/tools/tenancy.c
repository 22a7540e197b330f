/* tenancy.c -- tenant allow-lists and usage accounting for phx-tools (see tenancy.h). */
#include "tenancy.h"
#include "log.h"
#include "usage.h"
#include "metrics.h"
#include "redis.h"
#include "util.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Which kinds a tenant's conf hash limits, as read at most once a second (see tenancy.h).
 * A handful of tenants is the common case; past PHX_TENANCY_CACHE the oldest entry goes. */
#define PHX_TENANCY_CACHE    64
#define PHX_TENANCY_CACHE_MS 1000
/* phx:usage:{T}:DAY is kept 35 days after its last count. */
#define PHX_TENANCY_USAGE_TTL   3024000
#define PHX_TENANCY_STR_(x)     #x
#define PHX_TENANCY_STR(x)      PHX_TENANCY_STR_(x)
#define PHX_TENANCY_USAGE_TTL_S PHX_TENANCY_STR(PHX_TENANCY_USAGE_TTL) /* for EXPIRE's argv */

typedef struct phx_tenancy_limits {
    char tenant[129]; /* job.v1 bounds tenant ids to 128 bytes */
    int64_t read_ms;  /* monotonic; 0 = empty slot */
    unsigned kinds;   /* bit i: the hash has kinds[i]:per_s or kinds[i]:burst */
} phx_tenancy_limits;

struct phx_tenancy {
    phx_redis *r;
    redisReply *hosts; /* the current call's allow-list (SMEMBERS), NULL outside a call */
    const phx_tool_rates *rates;
    phx_usage *usage; /* the process's counters, flushed by the tick; NULL = write per call */
    phx_tenancy_limits cache[PHX_TENANCY_CACHE];
};

int phx_tool_rates_parse(const char *spec, const char *const *kinds, int nkinds,
                         phx_tool_rates *out, phx_err *err)
{
    out->kinds = kinds;
    out->nkinds = nkinds;
    out->rate = phx_xcalloc((size_t)nkinds, sizeof(*out->rate));
    char *copy = phx_xstrdup(spec ? spec : ""), *save = NULL;
    for (char *e = strtok_r(copy, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
        while (*e == ' ')
            e++;
        char *eq = strchr(e, '='), *end = NULL;
        if (!eq) {
            phx_err_set(err, "invalid_config", 0, "'%s': expected KIND=PER_S[/BURST]", e);
            goto err;
        }
        *eq = '\0';
        int k = 0;
        while (k < nkinds && strcmp(kinds[k], e) != 0)
            k++;
        if (k == nkinds) {
            phx_err_set(err, "invalid_config", 0, "'%s' is not a tool kind of this pool", e);
            goto err;
        }
        double per_s = strtod(eq + 1, &end);
        if (end == eq + 1 || !(per_s > 0 && per_s <= 1e6) || (*end && *end != '/')) {
            phx_err_set(err, "invalid_config", 0, "%s: rate '%s' is not a number in (0, 1e6]", e,
                        eq + 1);
            goto err;
        }
        long burst = (long)per_s + (per_s > (double)(long)per_s);
        if (*end == '/') {
            char *bend = NULL;
            burst = strtol(end + 1, &bend, 10);
            if (bend == end + 1 || *bend || burst < 1 || burst > 1000000) {
                phx_err_set(err, "invalid_config", 0, "%s: burst '%s' is not in [1, 1e6]", e,
                            end + 1);
                goto err;
            }
        }
        out->rate[k] = (phx_rate){per_s, burst < 1 ? 1 : burst};
    }
    free(copy);
    return 0;
err:
    free(copy);
    phx_tool_rates_free(out);
    return -1;
}

void phx_tool_rates_free(phx_tool_rates *r)
{
    free(r->rate);
    r->rate = NULL;
}

phx_tenancy *phx_tenancy_new(const phx_common *c, const phx_tool_rates *rates, phx_usage *usage,
                             phx_err *err)
{
    phx_redis *r = phx_redis_from_common(c, err);
    if (!r)
        return NULL;
    phx_tenancy *t = phx_xcalloc(1, sizeof(*t));
    t->r = r;
    t->rates = rates;
    t->usage = usage;
    return t;
}

void phx_tenancy_free(phx_tenancy *t)
{
    if (!t)
        return;
    phx_redis_free(t->r);
    free(t);
}

/* --- rate limits ------------------------------------------------------------------------- */

static int phx_tenancy_kind_index(const phx_tenancy *t, const char *kind)
{
    for (int k = 0; t->rates && k < t->rates->nkinds; k++)
        if (strcmp(t->rates->kinds[k], kind) == 0)
            return k;
    return -1;
}

/* The kinds tenant's conf hash limits, from the cache or one HGETALL. -1 with err. */
static int phx_tenancy_limited_kinds(phx_tenancy *t, const char *tenant, unsigned *kinds,
                                     phx_err *err)
{
    int64_t now = phx_mono_ms();
    phx_tenancy_limits *slot = &t->cache[0];
    for (int i = 0; i < PHX_TENANCY_CACHE; i++) {
        phx_tenancy_limits *c = &t->cache[i];
        if (c->read_ms && strcmp(c->tenant, tenant) == 0) {
            if (now - c->read_ms < PHX_TENANCY_CACHE_MS) {
                *kinds = c->kinds;
                return 0;
            }
            slot = c;
            break;
        }
        if (c->read_ms < slot->read_ms)
            slot = c; /* empty or oldest */
    }
    char key[300];
    phx_ratelimit_key_conf(key, sizeof(key), tenant);
    redisReply *rep = phx_redis_cmd(t->r, err, "HGETALL %s", key);
    if (!rep)
        return -1;
    unsigned bits = 0;
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2) {
        const char *f = rep->element[i]->str, *colon = f ? strrchr(f, ':') : NULL;
        if (!colon || (strcmp(colon, ":per_s") != 0 && strcmp(colon, ":burst") != 0))
            continue;
        for (int k = 0; k < t->rates->nkinds && k < 32; k++)
            if (strlen(t->rates->kinds[k]) == (size_t)(colon - f) &&
                strncmp(f, t->rates->kinds[k], (size_t)(colon - f)) == 0)
                bits |= 1u << k;
    }
    freeReplyObject(rep);
    snprintf(slot->tenant, sizeof(slot->tenant), "%s", tenant);
    slot->read_ms = now;
    slot->kinds = bits;
    *kinds = bits;
    return 0;
}

/* Charge one call of kind to tenant's limit. 0 allowed (or no limit); -1 with err:
 * rate_limited (retryable, with retry_after_ms) or Redis unavailable. */
static int phx_tenancy_check_rate(phx_tenancy *t, const char *tenant, const char *kind,
                                  phx_err *err)
{
    int k = phx_tenancy_kind_index(t, kind);
    if (k < 0)
        return 0; /* not a kind of this table */
    /* A tenant id too long for the cache (the schema allows none) is asked about every time:
     * the script reads its overrides, so nothing is skipped, only not cached. */
    unsigned kinds = ~0u;
    int no_default = t->rates->rate[k].per_s <= 0;
    if (no_default && strlen(tenant) < sizeof(t->cache[0].tenant) &&
        phx_tenancy_limited_kinds(t, tenant, &kinds, err) < 0)
        return -1;
    /* kinds has a bit for each of the first 32 kinds; a later one is always asked about. */
    if (no_default && k < 32 && !(kinds & (1u << k)))
        return 0;
    char key[400], fp[160], fb[160];
    snprintf(key, sizeof(key), "phx:rl:{%s}:tool:%s", tenant, kind);
    snprintf(fp, sizeof(fp), "%s:per_s", kind);
    snprintf(fb, sizeof(fb), "%s:burst", kind);
    phx_rate_bucket b = {key, fp, fb, t->rates->rate[k]};
    phx_rate_verdict v;
    if (phx_ratelimit_take_buckets(t->r, tenant, &b, 1, phx_now_ms(), &v, err) < 0)
        return -1;
    if (v.allowed)
        return 0;
    phx_err_set(err, "rate_limited", 1,
                "%s: tenant %s is over its rate limit for this tool (burst %ld); room again in "
                "%lld ms",
                kind, tenant, v.limit, (long long)v.retry_after_ms);
    err->retry_after_ms = v.retry_after_ms > 0 ? v.retry_after_ms : 1;
    return -1;
}

int phx_tenancy_host_match(const char *host, const char *const *entries, size_t n)
{
    size_t hl = strlen(host);
    for (size_t i = 0; i < n; i++) {
        const char *e = entries[i];
        size_t el = strlen(e);
        if (strcasecmp(host, e) == 0)
            return 1;
        /* ".example.com" covers example.com and every name under it */
        if (e[0] == '.' &&
            ((hl >= el && strcasecmp(host + hl - el, e) == 0) || strcasecmp(host, e + 1) == 0))
            return 1;
    }
    return 0;
}

/* The URL's host (malloc'd), or NULL when the URL does not parse (the tool reports that). */
static char *phx_tenancy_host(const json_t *input)
{
    const char *url = json_string_value(json_object_get(input, "url"));
    if (!url)
        return NULL;
    CURLU *u = curl_url();
    char *host = NULL, *out = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        out = phx_xstrdup(host);
    curl_free(host);
    curl_url_cleanup(u);
    return out;
}

int phx_tenancy_host_allowed(void *tv, const char *host)
{
    phx_tenancy *t = tv;
    if (!t || !t->hosts || t->hosts->elements == 0)
        return 1; /* no list: any host (the address rules still apply) */
    const char **e = phx_xcalloc(t->hosts->elements, sizeof(*e));
    for (size_t i = 0; i < t->hosts->elements; i++)
        e[i] = t->hosts->element[i]->str;
    int ok = phx_tenancy_host_match(host, e, t->hosts->elements);
    free(e);
    return ok;
}

/* Load the tenant's allow-list into t for this call and check the URL's host. 0 allowed; -1
 * with err (forbidden_host, or Redis unavailable -- retryable). */
static int phx_tenancy_check_host(phx_tenancy *t, const char *tenant, const json_t *input,
                                  phx_err *err)
{
    char key[300];
    snprintf(key, sizeof(key), "phx:tenant:%s:allow_hosts", tenant);
    if (!(t->hosts = phx_redis_cmd(t->r, err, "SMEMBERS %s", key)))
        return -1;
    char *host = phx_tenancy_host(input);
    if (!host)
        return 0; /* the tool reports the bad URL */
    int ok = phx_tenancy_host_allowed(t, host);
    if (!ok)
        phx_err_set(err, "forbidden_host", 0, "host %s is not on tenant %s's allow-list", host,
                    tenant);
    free(host);
    return ok ? 0 : -1;
}

/* Bytes a tool moved, for the accounting: the response body it returned. */
static long long phx_tenancy_bytes(const json_t *out)
{
    const char *b = json_string_value(json_object_get(out, "body"));
    return b ? (long long)strlen(b) : 0;
}

/* outcome: "ok", "error" or "rate_limited"; its usage field: calls, errors or limited. */
static void phx_tenancy_account(phx_tenancy *t, const char *tenant, const char *kind,
                                const char *outcome, long long bytes)
{
    char labels[300], key[300], day[16];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(day, sizeof(day), "%Y%m%d", &tm);
    int ok = strcmp(outcome, "ok") == 0;
    snprintf(labels, sizeof(labels), "kind=\"%s\",tenant=\"%s\",outcome=\"%s\"", kind, tenant,
             outcome);
    phx_metric_add(
        phx_counter("phx_tool_calls_total", "Tool calls by kind, tenant and outcome.", labels), 1);
    snprintf(labels, sizeof(labels), "kind=\"%s\",tenant=\"%s\"", kind, tenant);
    phx_metric_add(phx_counter("phx_tool_bytes_total",
                               "Response bytes tools returned, by kind and tenant.", labels),
                   (double)bytes);
    char f[160], fb[160];
    snprintf(key, sizeof(key), "phx:usage:{%s}:%s", tenant, day);
    snprintf(f, sizeof(f), "%s:%s", kind,
             ok                                     ? "calls"
             : strcmp(outcome, "rate_limited") == 0 ? "limited"
                                                    : "errors");
    snprintf(fb, sizeof(fb), "%s:bytes", kind);
    long long b = ok && bytes > 0 ? bytes : 0;
    /* Summed in the process and written by the tick (usage.h: the bound). A count the table
     * has no room for is written now, in one round trip, as every count was before. */
    int call_now = 1;
    if (t->usage) {
        call_now = phx_usage_add(t->usage, key, f, 1) < 0;
        if (phx_usage_add(t->usage, key, fb, b) == 0)
            b = 0;
        if (!call_now && b == 0)
            return;
    }
    /* Best effort: a lost increment must not fail the step it counts. One round trip. */
    phx_err err;
    char nb[32];
    snprintf(nb, sizeof(nb), "%lld", b);
    const char *calls_inc[] = {"HINCRBY", key, f, "1"}, *bytes_inc[] = {"HINCRBY", key, fb, nb},
               *expire[] = {"EXPIRE", key, PHX_TENANCY_USAGE_TTL_S};
    phx_redis_call calls[3];
    int n = 0;
    if (call_now)
        calls[n++] = (phx_redis_call){NULL, 0, 4, calls_inc, NULL};
    if (b > 0)
        calls[n++] = (phx_redis_call){NULL, 0, 4, bytes_inc, NULL};
    calls[n++] = (phx_redis_call){NULL, 0, 3, expire, NULL}; /* after: the key exists */
    redisReply *rep[3];
    if (phx_redis_pipeline(t->r, calls, n, rep, &err) == 0)
        for (int i = 0; i < n; i++)
            freeReplyObject(rep[i]);
}

int phx_tenancy_flush_usage(phx_tenancy *t, phx_err *err)
{
    return t->usage ? phx_usage_flush(t->usage, t->r, PHX_TENANCY_USAGE_TTL, err) : 0;
}

json_t *phx_tenancy_run(phx_tenancy *t, const char *kind, int host_checked,
                        json_t *(*fn)(void *app, phx_tenancy *t, const json_t *input, phx_err *err),
                        void *app, const json_t *input, phx_err *err)
{
    const json_t *task = phx_pool_current_task();
    const char *tenant = json_string_value(json_object_get(task, "tenant"));
    if (!t || !tenant)
        return fn(app, NULL, input, err); /* outside the pool loop (tests): no tenant */
    json_t *out = NULL;
    if ((!host_checked || phx_tenancy_check_host(t, tenant, input, err) == 0) &&
        phx_tenancy_check_rate(t, tenant, kind, err) == 0)
        out = fn(app, t, input, err);
    if (t->hosts)
        freeReplyObject(t->hosts);
    t->hosts = NULL;
    if (strcmp(err->code, "redis_unavailable") != 0)
        phx_tenancy_account(t, tenant, kind,
                            out                                      ? "ok"
                            : strcmp(err->code, "rate_limited") == 0 ? "rate_limited"
                                                                     : "error",
                            out ? phx_tenancy_bytes(out) : 0);
    return out;
}
