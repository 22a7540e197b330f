/* guard.c -- security responses at the ingress's door (lib/security.h).
 *
 * Suspensions must be effective within a second on every replica without costing a Redis
 * round trip per request: the main loop reloads the whole (small) hash phx:sec:suspended every
 * PHX_INGRESS_GUARD_REFRESH_MS, and each request checks its tenant, API key id and principal
 * against the in-memory copy. When Redis cannot be read the last copy stays (requests would
 * then fail the rate limiter's fail-closed check anyway).
 *
 * Refused requests (401, 403 for a missing scope) are recorded in phx:audit:auth for
 * phx-sentinel, which counts failures per key id, principal and client address. The record
 * is one XADD with an approximate MAXLEN, so a flood of bad credentials costs Redis one
 * bounded append per request next to the key lookup it costs already. */
#include "apikey.h"
#include "ingress_int.h"
#include "jobstore.h"
#include "log.h"
#include "metrics.h"
#include "security.h"
#include "util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

int phx_ingress_guard_refresh(phx_ingress *in, int64_t now_ms)
{
    if (now_ms - in->sec_loaded_ms < in->cfg->guard_refresh_ms)
        return 0;
    in->sec_loaded_ms = now_ms;
    phx_err err;
    phx_err_clear(&err);
    phx_redis *r = phx_ingress_redis_get(in, &err);
    redisReply *rep = r ? phx_redis_cmd(r, &err, "HGETALL %s", PHX_SEC_SUSPENDED) : NULL;
    if (r)
        phx_ingress_redis_put(in, r);
    if (!rep) {
        phx_metric_add(phx_counter("phx_ingress_guard_refresh_errors_total",
                                   "Failed reloads of the suspended callers (phx:sec:suspended); "
                                   "the previous set stays in force.",
                                   NULL),
                       1);
        return -1;
    }
    json_t *set = phx_jobstore_hash_from(rep);
    freeReplyObject(rep);
    pthread_mutex_lock(&in->sec_mu);
    json_t *old = in->suspended;
    in->suspended = set;
    pthread_mutex_unlock(&in->sec_mu);
    json_decref(old);
    phx_metric_set(phx_gauge("phx_ingress_suspended_callers",
                             "Tenants, API keys and principals currently suspended.", NULL),
                   (double)json_object_size(set));
    return 0;
}

/* The response id suspending field, copied into id; 0 when none. */
static int phx_guard_lookup(phx_ingress *in, const char *field, char *id, size_t idlen)
{
    int hit = 0;
    pthread_mutex_lock(&in->sec_mu);
    const char *v = json_string_value(json_object_get(in->suspended, field));
    if (v) {
        snprintf(id, idlen, "%s", v);
        hit = 1;
    }
    pthread_mutex_unlock(&in->sec_mu);
    return hit;
}

int phx_guard_check(phx_ingress *in, const phx_principal *who, phx_answer *a)
{
    char field[400], id[64];
    const char *what = NULL;
    phx_sec_suspended_field(field, sizeof(field), PHX_SEC_SUSPEND_TENANT, who->tenant);
    if (phx_guard_lookup(in, field, id, sizeof(id)))
        what = "tenant";
    if (!what && strncmp(who->via, "api_key:", 8) == 0) {
        phx_sec_suspended_field(field, sizeof(field), PHX_SEC_SUSPEND_KEY, who->via + 8);
        if (phx_guard_lookup(in, field, id, sizeof(id)))
            what = "API key";
    }
    if (!what) {
        char tp[300];
        snprintf(tp, sizeof(tp), "%s/%s", who->tenant, who->principal);
        phx_sec_suspended_field(field, sizeof(field), PHX_SEC_SUSPEND_PRINCIPAL, tp);
        if (phx_guard_lookup(in, field, id, sizeof(id)))
            what = "principal";
    }
    if (!what)
        return 0;
    char d[300];
    snprintf(d, sizeof(d),
             "this %s is suspended by security response %s; an operator lifts it with "
             "`phx security release %s`",
             what, id, id);
    phx_problem(a, 403, "suspended", "Suspended", d, NULL);
    json_object_set_new(a->json, "response", json_string(id));
    char labels[64];
    snprintf(labels, sizeof(labels), "what=\"%s\"", what[0] == 'A' ? "key" : what);
    phx_metric_add(phx_counter("phx_ingress_suspended_total",
                               "Requests refused because the caller is suspended.", labels),
                   1);
    return -1;
}

void phx_guard_audit_auth(phx_ingress *in, struct MHD_Connection *conn, const phx_principal *who,
                          const phx_answer *a, const char *route)
{
    if (!in->cfg->audit_auth)
        return;
    char ip[INET6_ADDRSTRLEN] = "", key_id[17] = "", status[8], tp[300] = "";
    const char *cred = "none";
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
    }
    const char *bearer =
        phx_ingress_bearer(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"));
    if (who && who->tenant) {
        cred = strncmp(who->via, "api_key:", 8) == 0 ? "api_key" : "jwt";
        if (strncmp(who->via, "api_key:", 8) == 0)
            snprintf(key_id, sizeof(key_id), "%s", who->via + 8);
        snprintf(tp, sizeof(tp), "%s/%s", who->tenant, who->principal ? who->principal : "");
    } else if (bearer) {
        /* The id of an unknown, revoked or expired key: derived from its hash, useless for
         * authenticating, and what a repeated guesser or a leaked old key is tracked by. */
        cred = phx_jwt_looks_like(bearer) ? "jwt" : "api_key";
        if (!phx_jwt_looks_like(bearer))
            phx_apikey_id(bearer, key_id);
    }
    snprintf(status, sizeof(status), "%d", a->status);
    const char *code = json_string_value(json_object_get(a->json, "code"));
    const char *kv[] = {
        "status",    status,
        "code",      code ? code : "",
        "cred",      cred,
        "key_id",    key_id,
        "tenant",    who && who->tenant ? who->tenant : "",
        "principal", tp,
        "ip",        ip,
        "route",     route,
    };
    phx_err err;
    phx_err_clear(&err);
    phx_redis *r = phx_ingress_redis_get(in, &err);
    int rc = r ? phx_audit_add(r, PHX_AUDIT_AUTH_STREAM, in->cfg->audit_maxlen,
                               (int)(sizeof(kv) / sizeof(kv[0])), kv, &err)
               : -1;
    if (r)
        phx_ingress_redis_put(in, r);
    /* The refusal itself stands either way; a lost record is counted, not fatal. */
    phx_metric_add(phx_counter("phx_ingress_auth_audit_total",
                               "Refused requests recorded in phx:audit:auth, by outcome.",
                               rc == 0 ? "outcome=\"recorded\"" : "outcome=\"error\""),
                   1);
}
