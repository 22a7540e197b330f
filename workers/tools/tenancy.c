/* tenancy.c -- tenant allow-lists and usage accounting for phx-tools (see tenancy.h). */
#include "tenancy.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "util.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct phx_tenancy {
    phx_redis *r;
    redisReply *hosts; /* the current call's allow-list (SMEMBERS), NULL outside a call */
};

phx_tenancy *phx_tenancy_new(const phx_common *c, phx_err *err)
{
    phx_redis *r = phx_redis_from_common(c, err);
    if (!r)
        return NULL;
    phx_tenancy *t = calloc(1, sizeof(*t));
    t->r = r;
    return t;
}

void phx_tenancy_free(phx_tenancy *t)
{
    if (!t)
        return;
    phx_redis_free(t->r);
    free(t);
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
        out = strdup(host);
    curl_free(host);
    curl_url_cleanup(u);
    return out;
}

int phx_tenancy_host_allowed(void *tv, const char *host)
{
    phx_tenancy *t = tv;
    if (!t || !t->hosts || t->hosts->elements == 0)
        return 1; /* no list: any host (the address rules still apply) */
    const char **e = calloc(t->hosts->elements, sizeof(*e));
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

static void phx_tenancy_account(phx_tenancy *t, const char *tenant, const char *kind, int ok,
                                long long bytes)
{
    char labels[300], key[300], day[16], f[160];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(day, sizeof(day), "%Y%m%d", &tm);
    snprintf(labels, sizeof(labels), "kind=\"%s\",tenant=\"%s\",outcome=\"%s\"", kind, tenant,
             ok ? "ok" : "error");
    phx_metric_add(
        phx_counter("phx_tool_calls_total", "Tool calls by kind, tenant and outcome.", labels), 1);
    snprintf(labels, sizeof(labels), "kind=\"%s\",tenant=\"%s\"", kind, tenant);
    phx_metric_add(phx_counter("phx_tool_bytes_total",
                               "Response bytes tools returned, by kind and tenant.", labels),
                   (double)bytes);
    /* Best effort: a lost increment must not fail the step it counts. One round trip. */
    phx_err err;
    char fb[160], nb[32];
    snprintf(key, sizeof(key), "phx:usage:{%s}:%s", tenant, day);
    snprintf(f, sizeof(f), "%s:%s", kind, ok ? "calls" : "errors");
    snprintf(fb, sizeof(fb), "%s:bytes", kind);
    snprintf(nb, sizeof(nb), "%lld", bytes);
    const char *calls_inc[] = {"HINCRBY", key, f, "1"}, *bytes_inc[] = {"HINCRBY", key, fb, nb},
               *expire[] = {"EXPIRE", key, "3024000"}; /* 35 days */
    phx_redis_call calls[3] = {{NULL, 0, 4, calls_inc, NULL}, {NULL, 0, 3, expire, NULL}};
    int n = 2;
    if (ok && bytes > 0)
        calls[n++] = (phx_redis_call){NULL, 0, 4, bytes_inc, NULL};
    redisReply *rep[3];
    if (phx_redis_pipeline(t->r, calls, n, rep, &err) == 0)
        for (int i = 0; i < n; i++)
            freeReplyObject(rep[i]);
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
    if (!host_checked || phx_tenancy_check_host(t, tenant, input, err) == 0)
        out = fn(app, t, input, err);
    if (t->hosts)
        freeReplyObject(t->hosts);
    t->hosts = NULL;
    if (strcmp(err->code, "redis_unavailable") != 0)
        phx_tenancy_account(t, tenant, kind, out != NULL, out ? phx_tenancy_bytes(out) : 0);
    return out;
}
