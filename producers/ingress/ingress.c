/* ingress.c -- HTTP API of phx-ingress: daemon, routing, authentication, RBAC scopes, rate
 * limits and answers (see ingress.h; the handlers are in jobs.c, keys.c and events.c).
 *
 * libmicrohttpd calls the access handler several times per request: once with the headers,
 * once per body chunk, once more when the body is complete. The body is collected into a
 * per-request buffer that refuses to grow past max_body (413 without keeping the rest), and
 * a body that takes longer than PHX_INGRESS_BODY_TIMEOUT_MS to arrive is answered 408.
 *
 * Every request goes through the same gate, in this order: route known (404/405), caller
 * authenticated (401), caller not suspended by a security response (403, guard.c), rate limits of
 * the caller's tenant and principal (429), the route's scope (403), then the handler.
 * Authentication before rate limiting means an anonymous flood costs one hash lookup per request
 * and cannot spend a tenant's allowance. POST /v1/jobs leaves the gate after the suspension
 * check: its rate limit and its answer come from the group commit (commit.c), with the
 * connection suspended meanwhile.
 *
 * Redis connections come from a small pool, one per HTTP thread at most: hiredis contexts
 * are not thread-safe, and a connection per request would cost a TCP handshake each. */
#include "apikey.h"
#include "ingress_int.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "ratelimit.h"
#include "rbac.h"
#include "trace.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* --- Redis pool ------------------------------------------------------------------------- */

phx_redis *phx_ingress_redis_get(phx_ingress *in, phx_err *err)
{
    pthread_mutex_lock(&in->mu);
    while (in->nidle == 0 && in->nmade >= in->maxconn)
        pthread_cond_wait(&in->cv, &in->mu);
    phx_redis *r = NULL;
    if (in->nidle > 0) {
        r = in->idle[--in->nidle];
    } else {
        in->nmade++;
        pthread_mutex_unlock(&in->mu);
        r = phx_redis_from_common(&in->cfg->common, err);
        if (r)
            return r;
        pthread_mutex_lock(&in->mu);
        in->nmade--;
        pthread_cond_signal(&in->cv);
    }
    pthread_mutex_unlock(&in->mu);
    return r;
}

void phx_ingress_redis_put(phx_ingress *in, phx_redis *r)
{
    pthread_mutex_lock(&in->mu);
    in->idle[in->nidle++] = r;
    pthread_cond_signal(&in->cv);
    pthread_mutex_unlock(&in->mu);
}

/* --- answers ---------------------------------------------------------------------------- */

void phx_problem(phx_answer *a, int status, const char *code, const char *title, const char *detail,
                 json_t *errors)
{
    char type[160];
    snprintf(type, sizeof(type), "https://phoenix.dev/problems/%s", code);
    json_decref(a->json);
    free(a->text);
    a->text = NULL;
    a->status = status;
    a->ctype = "application/problem+json";
    a->json = json_pack("{s:s, s:s, s:i, s:s}", "type", type, "title", title, "status", status,
                        "code", code);
    if (detail) {
        char *d = phx_xstrdup(detail);
        phx_utf8_scrub(d);
        json_object_set_new(a->json, "detail", json_string(d));
        free(d);
    }
    if (errors)
        json_object_set_new(a->json, "errors", errors);
}

void phx_ok(phx_answer *a, int status, json_t *body)
{
    json_decref(a->json);
    free(a->text);
    a->text = NULL;
    a->status = status;
    a->ctype = "application/json";
    a->json = body;
}

void phx_unavailable(phx_answer *a, const char *detail)
{
    phx_problem(a, 503, "unavailable", "Service unavailable", detail, NULL);
    a->retry_after = 1;
}

json_t *phx_body_object(const phx_ctx *c, phx_answer *a)
{
    json_error_t je;
    const phx_req *rq = c->rq;
    json_t *o = json_loadb(rq->body ? rq->body : "", rq->len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        char d[300];
        snprintf(d, sizeof(d), "invalid JSON at byte %d: %s", je.position, je.text);
        phx_problem(a, 400, "invalid_json", "Body is not valid JSON", d, NULL);
        return NULL;
    }
    if (!json_is_object(o)) {
        phx_problem(a, 400, "invalid_body", "Body must be a JSON object", NULL, NULL);
        json_decref(o);
        return NULL;
    }
    return o;
}

/* --- authentication --------------------------------------------------------------------- */

static void phx_principal_free(phx_principal *p)
{
    free(p->tenant);
    free(p->principal);
    free(p->roles);
    memset(p, 0, sizeof(*p));
}

static void phx_unauthorized(phx_answer *a, const char *title, const char *detail)
{
    phx_problem(a, 401, "unauthorized", title, detail, NULL);
    a->www_auth = 1;
}

static int phx_auth_jwt(phx_ingress *in, const char *token, phx_principal *who, phx_answer *a)
{
    phx_jwt_claims cl;
    char why[160];
    if (!in->jwt) {
        phx_unauthorized(a, "Invalid credentials", "this deployment accepts no JWTs");
        return -1;
    }
    if (phx_jwt_verify(in->jwt, token, phx_now_ms() / 1000, &cl, why, sizeof(why)) < 0) {
        phx_unauthorized(a, "Invalid token", why);
        return -1;
    }
    who->tenant = cl.tenant, who->principal = cl.principal, who->roles = cl.roles;
    snprintf(who->via, sizeof(who->via), "jwt:%.50s", cl.kid);
    free(cl.kid);
    return 0;
}

static int phx_auth_apikey(phx_ingress *in, const char *secret, phx_principal *who, phx_answer *a)
{
    phx_err err;
    phx_err_clear(&err);
    phx_apikey key;
    phx_apikey_ticket t;
    int64_t now = phx_now_ms();
    if (phx_apikey_cache_get(in->keys, secret, now, phx_mono_ms(), &key, &t))
        goto found;
    phx_redis *r = phx_ingress_redis_get(in, &err);
    if (!r) {
        phx_unavailable(a, "key store unreachable");
        return -1;
    }
    int rc = phx_apikey_lookup(r, secret, now, &key, &err);
    phx_ingress_redis_put(in, r);
    if (rc == 0)
        phx_apikey_cache_put(in->keys, secret, &key, &t);
    if (rc < 0) {
        if (strcmp(err.code, "unauthorized") == 0)
            phx_unauthorized(a, "Invalid API key", err.message);
        else
            phx_unavailable(a, "key store unreachable");
        return -1;
    }
found:
    who->tenant = key.tenant, who->principal = key.principal, who->roles = key.roles;
    snprintf(who->via, sizeof(who->via), "api_key:%s", key.id);
    return 0;
}

const char *phx_ingress_bearer(const char *h)
{
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7] || strlen(h) > 8192)
        return NULL;
    return h + 7;
}

/* 0 authenticated (who filled); -1 with the answer filled (401, or 503 when Redis is down). */
static int phx_auth(phx_ingress *in, struct MHD_Connection *conn, phx_principal *who, phx_answer *a)
{
    const char *cred =
        phx_ingress_bearer(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"));
    if (!cred) {
        phx_unauthorized(a, "Authentication required",
                         "send 'Authorization: Bearer KEY' (an API key or a JWT)");
        return -1;
    }
    int rc = phx_jwt_looks_like(cred) ? phx_auth_jwt(in, cred, who, a)
                                      : phx_auth_apikey(in, cred, who, a);
    if (rc == 0)
        who->scopes = phx_rbac_scopes(who->roles);
    return rc;
}

/* --- rate limits ------------------------------------------------------------------------ */

static int phx_ratelimit(phx_ingress *in, const phx_principal *who, phx_answer *a)
{
    const phx_ingress_cfg *cfg = in->cfg;
    phx_rate tr = {(double)cfg->rate_tenant, cfg->burst_tenant};
    phx_rate pr = {(double)cfg->rate_principal, cfg->burst_principal};
    phx_err err;
    phx_err_clear(&err);
    phx_rate_verdict v;
    phx_redis *r = phx_ingress_redis_get(in, &err);
    if (!r) {
        phx_unavailable(a, "rate limiter unreachable");
        return -1;
    }
    int rc = phx_ratelimit_take(r, who->tenant, who->principal, &tr, &pr, phx_now_ms(), &v, &err);
    phx_ingress_redis_put(in, r);
    if (rc < 0) {
        /* Fail closed: an unmetered gateway is how one tenant takes everyone down. */
        phx_unavailable(a, "rate limiter unreachable");
        return -1;
    }
    return phx_ratelimit_answer(a, &v);
}

int phx_ratelimit_answer(phx_answer *a, const phx_rate_verdict *v)
{
    if (v->limit >= 0) {
        a->rl_set = 1;
        a->rl_limit = v->limit, a->rl_remaining = v->remaining;
        a->rl_reset_s = (long)((v->reset_ms + 999) / 1000);
    }
    if (v->allowed)
        return 0;
    phx_problem(a, 429, "rate_limited", "Too many requests",
                "the rate limit of your tenant or principal is exhausted; retry after the "
                "number of seconds in Retry-After",
                NULL);
    a->retry_after = (int)((v->retry_after_ms + 999) / 1000);
    if (a->retry_after < 1)
        a->retry_after = 1;
    return -1;
}

/* --- routing ---------------------------------------------------------------------------- */

static const phx_route phx_routes[] = {
    {"POST", "/v1/jobs", PHX_SCOPE_JOBS_SUBMIT, NULL}, /* the group commit (commit.c) */
    {"GET", "/v1/jobs", PHX_SCOPE_JOBS_READ, phx_jobs_list},
    {"GET", "/v1/jobs/*", PHX_SCOPE_JOBS_READ, phx_jobs_get},
    {"DELETE", "/v1/jobs/*", PHX_SCOPE_JOBS_CANCEL, phx_jobs_cancel},
    {"GET", "/v1/jobs/*/events", PHX_SCOPE_JOBS_READ, phx_events_stream},
    {"GET", "/v1/admin/keys", PHX_SCOPE_ADMIN, phx_keys_list},
    {"POST", "/v1/admin/keys", PHX_SCOPE_ADMIN, phx_keys_create},
    {"DELETE", "/v1/admin/keys/*", PHX_SCOPE_ADMIN, phx_keys_revoke},
    {"POST", "/v1/admin/keys/*/rotate", PHX_SCOPE_ADMIN, phx_keys_rotate},
    {"GET", "/v1/ops/overview", PHX_SCOPE_OPS_READ, phx_ops_overview},
    {"GET", "/v1/ops/jobs/*/trace", PHX_SCOPE_OPS_READ, phx_ops_trace},
};
#define PHX_NROUTES (sizeof(phx_routes) / sizeof(phx_routes[0]))
_Static_assert(PHX_NROUTES <= PHX_INGRESS_NROUTES, "PHX_INGRESS_NROUTES is too small");

/* Does url match pattern? On a match the '*' segment is copied to arg. */
static int phx_route_match(const char *pattern, const char *url, char *arg, size_t arglen)
{
    const char *p = pattern, *u = url;
    while (*p && *u) {
        if (*p == '*') {
            size_t n = strcspn(u, "/");
            if (n == 0 || n >= arglen)
                return 0;
            memcpy(arg, u, n);
            arg[n] = '\0';
            p++, u += n;
        } else if (*p++ != *u++) {
            return 0;
        }
    }
    return !*p && !*u;
}

const phx_route *phx_route_find(const char *method, const char *url, char *arg, size_t arglen,
                                int *path_known)
{
    *path_known = 0;
    for (size_t i = 0; i < PHX_NROUTES; i++) {
        if (!phx_route_match(phx_routes[i].pattern, url, arg, arglen))
            continue;
        *path_known = 1;
        if (strcmp(method, phx_routes[i].method) == 0)
            return &phx_routes[i];
    }
    return NULL;
}

static const char *phx_ingress_route_label(const char *method, const char *url)
{
    char arg[256];
    int known;
    const phx_route *r = phx_route_find(method, url, arg, sizeof(arg), &known);
    return r ? r->pattern : "other";
}

/* The gate after the rate limit: the route's scope (1: a 403 to record in the audit stream),
 * then the body's size and pace (2: 413/408); 0 when the handler may run. */
static int phx_ingress_precheck(phx_ingress *in, const phx_route *rt, const phx_req *rq,
                                const phx_principal *who, phx_answer *a)
{
    if (!(who->scopes & (rt->scope | PHX_SCOPE_ADMIN))) {
        char d[160];
        snprintf(d, sizeof(d), "this request needs scope %s", phx_rbac_scope_name(rt->scope));
        phx_problem(a, 403, "insufficient_scope", "Forbidden", d, NULL);
        return 1;
    }
    if (rq->too_slow) {
        phx_problem(a, 408, "request_timeout", "Request body too slow",
                    "the body did not arrive within PHX_INGRESS_BODY_TIMEOUT_MS", NULL);
        return 2;
    }
    if (rq->too_big) {
        char d[128];
        snprintf(d, sizeof(d), "the body exceeds %ld bytes", in->cfg->max_body);
        phx_problem(a, 413, "payload_too_large", "Payload too large", d, NULL);
        return 2;
    }
    return 0;
}

/* POST /v1/jobs after authentication: the gate's remaining checks and the job's, all local,
 * then the group commit, which takes the rate limit first (so a limited caller still gets 429
 * whatever its body) and answers; rq takes over who. 0 when the commit ran at once in this
 * thread (rq->a is the answer); 1 when the connection waits suspended for the committers. */
static int phx_ingress_submit(phx_ingress *in, struct MHD_Connection *conn, const phx_route *rt,
                              phx_req *rq, phx_principal *who)
{
    phx_answer *a = &rq->a;
    int rc = phx_ingress_precheck(in, rt, rq, who, a);
    if (rc == 1) {
        rq->audit = 1;
    } else if (rc == 0) {
        phx_ctx c = {.in = in, .conn = conn, .rq = rq, .who = who, .arg = NULL};
        rq->job = phx_jobs_prepare(
            &c, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key"), a);
    }
    if (phx_trace_current(rq->tp) < 0) /* the request's span (a child of the caller's context) */
        phx_traceparent_new(rq->tp);
    rq->who = *who;
    memset(who, 0, sizeof(*who));
    rq->conn = conn;
    if (phx_commit_try_inline(in->commit, rq))
        return 0;
    rq->state = PHX_REQ_QUEUED;
    MHD_suspend_connection(conn);
    phx_commit_queue(in->commit, rq);
    return 1;
}

/* Route and answer into a; 1 when the request went to the group commit instead (rq->a is
 * answered later, see phx_ingress_handle). */
static int phx_ingress_route(phx_ingress *in, struct MHD_Connection *conn, const char *method,
                             const char *url, phx_req *rq, phx_answer *a)
{
    char arg[256];
    int known, queued = 0;
    /* The ops page's static files need no credentials (they hold no data; its API does). */
    if (phx_ops_static(method, url, a))
        return 0;
    const phx_route *rt = phx_route_find(method, url, arg, sizeof(arg), &known);
    if (!rt) {
        if (known)
            phx_problem(a, 405, "method_not_allowed", "Method not allowed", NULL, NULL);
        else
            phx_problem(a, 404, "not_found", "Not found", "no such endpoint", NULL);
        return 0;
    }
    phx_principal who = {0};
    if (phx_auth(in, conn, &who, a) < 0) {
        if (a->status == 401)
            phx_guard_audit_auth(in, conn, NULL, a, rt->pattern);
        goto out;
    }
    if (phx_guard_check(in, &who, a) < 0)
        goto out;
    if (!rt->fn) {
        queued = phx_ingress_submit(in, conn, rt, rq, &who);
        if (!queued) {
            /* Committed inline: the answer is rq's, and sent now like any other. */
            *a = rq->a;
            memset(&rq->a, 0, sizeof(rq->a));
            if (rq->audit)
                phx_guard_audit_auth(in, conn, &rq->who, a, "/v1/jobs");
        }
        goto out;
    }
    if (phx_ratelimit(in, &who, a) < 0)
        goto out;
    int rc = phx_ingress_precheck(in, rt, rq, &who, a);
    if (rc == 1)
        phx_guard_audit_auth(in, conn, &who, a, rt->pattern);
    if (rc == 0) {
        phx_ctx c = {.in = in, .conn = conn, .rq = rq, .who = &who, .arg = arg};
        rt->fn(&c, a);
    }
out:
    phx_principal_free(&who);
    return queued;
}

static void phx_ingress_headers(struct MHD_Response *resp, const phx_answer *a)
{
    char v[32];
    if (a->location[0])
        MHD_add_response_header(resp, "Location", a->location);
    if (a->retry_after) {
        snprintf(v, sizeof(v), "%d", a->retry_after);
        MHD_add_response_header(resp, "Retry-After", v);
    }
    if (a->rl_set) {
        /* draft-ietf-httpapi-ratelimit-headers: the tighter of the two buckets. */
        snprintf(v, sizeof(v), "%ld", a->rl_limit);
        MHD_add_response_header(resp, "RateLimit-Limit", v);
        snprintf(v, sizeof(v), "%ld", a->rl_remaining);
        MHD_add_response_header(resp, "RateLimit-Remaining", v);
        snprintf(v, sizeof(v), "%ld", a->rl_reset_s);
        MHD_add_response_header(resp, "RateLimit-Reset", v);
    }
    if (a->www_auth)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"phoenix\"");
}

static enum MHD_Result phx_ingress_send(struct MHD_Connection *conn, phx_answer *a)
{
    struct MHD_Response *resp = a->stream;
    if (!resp) {
        char *body = a->text ? a->text : json_dumps(a->json, JSON_COMPACT);
        size_t len = strlen(body);
        a->text = NULL;
        body = phx_xrealloc(body, len + 2);
        body[len++] = '\n';
        resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "Content-Type", a->ctype);
    }
    phx_ingress_headers(resp, a);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)a->status, resp);
    MHD_destroy_response(resp);
    json_decref(a->json);
    a->json = NULL;
    return rc;
}

/* The status codes whose request counters are kept at hand (phx_ingress_observe). */
static const int phx_ingress_codes[PHX_INGRESS_NCODES] = {200, 201, 202, 204, 400, 401, 403, 404,
                                                          405, 408, 409, 413, 422, 429, 500, 503};

/* Count the request and its latency. The series of a known route and status are looked up in
 * the registry once and then kept in in->m_req and in->m_dur: the registry's lookup parses the
 * labels and walks its lists under one process-wide mutex, which every HTTP and committer
 * thread took twice per request. A racing first lookup stores the same pointer twice. */
static void phx_ingress_observe(phx_ingress *in, const char *method, const char *url,
                                const phx_req *rq, int code)
{
    char arg[256];
    int known, c = -1;
    const phx_route *rt = phx_route_find(method, url, arg, sizeof(arg), &known);
    int ri = rt ? (int)(rt - phx_routes) : -1;
    for (int i = 0; ri >= 0 && i < PHX_INGRESS_NCODES && c < 0; i++)
        if (phx_ingress_codes[i] == code)
            c = i;
    phx_metric *req = c >= 0 ? atomic_load(&in->m_req[ri][c]) : NULL;
    phx_metric *dur = ri >= 0 ? atomic_load(&in->m_dur[ri]) : NULL;
    char labels[160];
    const char *route = rt ? rt->pattern : "other";
    if (!req) {
        snprintf(labels, sizeof(labels), "route=\"%s %s\",code=\"%d\"", method, route, code);
        req = phx_counter("phx_http_requests_total", "API requests by route and status.", labels);
        if (c >= 0)
            atomic_store(&in->m_req[ri][c], req);
    }
    if (!dur) {
        snprintf(labels, sizeof(labels), "route=\"%s %s\"", method, route);
        dur = phx_histogram("phx_http_request_duration_seconds",
                            "API request latency, first byte to answer queued.", labels, NULL, 0);
        if (ri >= 0)
            atomic_store(&in->m_dur[ri], dur);
    }
    phx_metric_add(req, 1);
    phx_metric_observe(dur, (double)(phx_mono_ms() - rq->t0) / 1000.0);
}

/* End the request's span, count it and send a. */
static enum MHD_Result phx_ingress_answer(phx_ingress *in, struct MHD_Connection *conn,
                                          const char *method, const char *url, const phx_req *rq,
                                          phx_span *sp, phx_answer *a)
{
    phx_span_set(sp, "http.response.status_code", "%d", a->status);
    if (a->status >= 500)
        phx_span_fail(sp, "HTTP %d", a->status);
    phx_span_end(sp);
    phx_ingress_observe(in, method, url, rq, a->status);
    return phx_ingress_send(conn, a);
}

static enum MHD_Result phx_ingress_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                          const char *method, const char *version,
                                          const char *upload, size_t *upload_size, void **ctx)
{
    (void)version;
    phx_ingress *in = cls;
    phx_req *rq = *ctx;
    if (!rq) {
        rq = phx_xcalloc(1, sizeof(*rq));
        rq->t0 = phx_mono_ms();
        *ctx = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        if (phx_mono_ms() - rq->t0 > in->cfg->body_timeout_ms)
            rq->too_slow = 1;
        if (!rq->too_big && !rq->too_slow && rq->len + *upload_size <= (size_t)in->cfg->max_body) {
            rq->body = phx_xrealloc(rq->body, rq->len + *upload_size + 1);
            memcpy(rq->body + rq->len, upload, *upload_size);
            rq->len += *upload_size;
        } else if (!rq->too_slow) {
            rq->too_big = 1; /* keep draining, answer 413 at the end */
        }
        *upload_size = 0;
        /* A slow body holds a connection: stop reading it rather than wait for the end. */
        return rq->too_slow ? MHD_NO : MHD_YES;
    }
    if (rq->state == PHX_REQ_ANSWERED) {
        /* Resumed by the group commit: rq->a is the answer. */
        if (rq->audit)
            phx_guard_audit_auth(in, conn, &rq->who, &rq->a, "/v1/jobs");
        return phx_ingress_answer(in, conn, method, url, rq, &rq->sp, &rq->a);
    }
    if (rq->state == PHX_REQ_QUEUED)
        return MHD_YES; /* not expected: MHD calls again only after the resume */
    /* The request's span (a child of the caller's traceparent, if any): what the job
     * published here carries on, so the whole pipeline hangs under it. It lives in rq, as a
     * submit's ends only when the group commit has answered. */
    char name[96];
    snprintf(name, sizeof(name), "%s %s", method, phx_ingress_route_label(method, url));
    phx_span_start(&rq->sp, name, PHX_SPAN_SERVER,
                   MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "traceparent"));
    phx_answer a = {0};
    if (phx_ingress_route(in, conn, method, url, rq, &a)) {
        phx_span_detach(&rq->sp); /* this thread serves other connections meanwhile */
        return MHD_YES;
    }
    return phx_ingress_answer(in, conn, method, url, rq, &rq->sp, &a);
}

static void phx_ingress_done(void *cls, struct MHD_Connection *conn, void **ctx,
                             enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    phx_req *rq = *ctx;
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
        phx_metric_add(phx_counter("phx_http_timeouts_total",
                                   "Connections closed for idling past PHX_INGRESS_CONN_TIMEOUT_S.",
                                   NULL),
                       1);
    if (rq) {
        free(rq->body);
        json_decref(rq->job);
        json_decref(rq->a.json); /* answered, but the connection closed before it was sent */
        free(rq->a.text);
        phx_principal_free(&rq->who);
        free(rq);
        *ctx = NULL;
    }
}

static int phx_ingress_jwt_init(phx_ingress *in, char *err, size_t errlen)
{
    const phx_ingress_cfg *cfg = in->cfg;
    if (!*cfg->jwt_keys_file)
        return 0;
    in->jwt = phx_jwt_verifier_new(cfg->jwt_keys_file, cfg->jwt_issuer, cfg->jwt_audience,
                                   cfg->jwt_leeway_s, err, errlen);
    return in->jwt ? 0 : -1;
}

phx_ingress *phx_ingress_start(const phx_ingress_cfg *cfg, phx_producer *producer,
                               const phx_schema_set *schemas, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    if (phx_addr_parse("PHX_INGRESS_ADDR", cfg->listen, &ss, err, errlen) < 0)
        return NULL;
    phx_ingress *in = phx_xcalloc(1, sizeof(*in));
    in->cfg = cfg;
    in->producer = producer;
    in->schemas = schemas;
    in->maxconn = (int)cfg->threads;
    in->idle = phx_xcalloc((size_t)in->maxconn, sizeof(*in->idle));
    pthread_mutex_init(&in->mu, NULL);
    pthread_mutex_init(&in->sec_mu, NULL);
    pthread_cond_init(&in->cv, NULL);
    in->ops = phx_ops_new();
    in->keys = phx_apikey_cache_new(cfg->key_cache_ms, 4096);
    in->sec_loaded_ms = INT64_MIN / 2;
    phx_ingress_guard_refresh(in, phx_now_ms()); /* suspensions hold from the first request */
    if (phx_ingress_jwt_init(in, err, errlen) < 0 ||
        !(in->commit = phx_commit_start(in, (int)cfg->committers, err, errlen)) ||
        !(in->events = phx_events_start(cfg->common.kafka_brokers, cfg->max_streams, err, errlen)))
        goto err;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    in->d = MHD_start_daemon(
        flags, 0, NULL, NULL, phx_ingress_handle, in, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads, MHD_OPTION_NOTIFY_COMPLETED,
        phx_ingress_done, in, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->conn_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_conn_per_ip,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->max_header_bytes, MHD_OPTION_END);
    if (!in->d) {
        snprintf(err, errlen, "PHX_INGRESS_ADDR=%s: cannot listen", cfg->listen);
        goto err;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(in->d, MHD_DAEMON_INFO_BIND_PORT);
    in->port = di ? di->port : 0;
    return in;
err:
    phx_ingress_stop(in);
    return NULL;
}

int phx_ingress_port(const phx_ingress *in)
{
    return in->port;
}

int phx_ingress_reload(phx_ingress *in, char *err, size_t errlen)
{
    if (!in->jwt)
        return 0;
    if (phx_jwt_verifier_reload(in->jwt, err, errlen) < 0)
        return -1;
    phx_log_info("reloaded %d JWT keys from %s", phx_jwt_verifier_nkeys(in->jwt),
                 in->cfg->jwt_keys_file);
    return 0;
}

int phx_ingress_ready(void *ctx, char *why, size_t whylen)
{
    phx_ingress *in = ctx;
    phx_err err;
    phx_redis *r = phx_ingress_redis_get(in, &err);
    if (!r) {
        snprintf(why, whylen, "%s", err.message);
        return -1;
    }
    int rc = phx_redis_ping(r, why, whylen);
    phx_ingress_redis_put(in, r);
    if (rc < 0)
        return -1;
    return phx_kafka_ping(phx_producer_handle(in->producer), 1000, why, whylen);
}

void phx_ingress_stop(phx_ingress *in)
{
    if (!in)
        return;
    /* Suspended stream connections must be resumed before the daemon may stop. */
    phx_events_close_all(in->events);
    phx_commit_stop(in->commit); /* so are the submits waiting for the group commit */
    if (in->d)
        MHD_stop_daemon(in->d);
    phx_commit_free(in->commit);
    phx_events_stop(in->events);
    phx_ops_free(in->ops);
    phx_apikey_cache_free(in->keys);
    phx_jwt_verifier_free(in->jwt);
    for (int i = 0; i < in->nidle; i++)
        phx_redis_free(in->idle[i]);
    free(in->idle);
    pthread_mutex_destroy(&in->mu);
    pthread_mutex_destroy(&in->sec_mu);
    pthread_cond_destroy(&in->cv);
    json_decref(in->suspended);
    free(in);
}
