/* security.h -- security responses (throttle, suspend, quarantine) and the security audit trail.
 *
 * The blue team (phx-sentinel) and operators (`phx security ...`) act on a deployment through
 * the same few Redis records, so an automatic response and a manual one look and undo alike:
 *
 *   phx:sec:responses  hash  ID -> the response as JSON {id, action, subject, rule, reason, by,
 *                            created_ms, expires_ms, prev}; present while it is active
 *   phx:sec:active     hash  "ACTION SUBJECT" -> ID (one active response per action and subject)
 *   phx:sec:suspended  hash  "tenant:T" | "key:ID" | "principal:T/P" -> ID; the ingress reloads it
 *                            twice a second and refuses those callers (403 "suspended")
 *   phx:rl:{T}:conf    hash  a throttle writes tenant_per_s/tenant_burst here (ratelimit.h);
 *                            the values it replaced are kept in the response's `prev`
 *   phx:job:{ID}       hash  a quarantine writes `quarantine` = ID; the job view (jobstore.c)
 *                            then shows no outputs, so neither GET /v1/jobs/ID nor a reply sent
 *                            afterwards carries them (they stay in phx:job:{ID}:out for review)
 *   phx:audit          stream  one entry per response and release (type security.response |
 *                            security.release | security.detection), XADD MAXLEN ~
 *   phx:audit:auth     stream  the ingress's authentication and authorisation failures (401 and
 *                            403), read by phx-sentinel's consumer group
 *
 * Applying is a short sequence rather than one Lua script because its keys live in different
 * cluster slots (a tenant's limits, a job, the global records). The claim in phx:sec:active
 * comes first, so two sentinels (or a sentinel and an operator) never apply the same response
 * twice; a crash after the claim leaves a response that `phx security release` still undoes. */
#ifndef PHX_SECURITY_H
#define PHX_SECURITY_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "redis.h"

#define PHX_SEC_RESPONSES     "phx:sec:responses"
#define PHX_SEC_ACTIVE        "phx:sec:active"
#define PHX_SEC_SUSPENDED     "phx:sec:suspended"
#define PHX_AUDIT_STREAM      "phx:audit"
#define PHX_AUDIT_AUTH_STREAM "phx:audit:auth"
#define PHX_AUDIT_MAXLEN      100000

typedef enum {
    PHX_SEC_THROTTLE = 0,      /* subject: tenant */
    PHX_SEC_SUSPEND_TENANT,    /* subject: tenant */
    PHX_SEC_SUSPEND_KEY,       /* subject: API key id (16 hex) */
    PHX_SEC_SUSPEND_PRINCIPAL, /* subject: TENANT/PRINCIPAL */
    PHX_SEC_QUARANTINE,        /* subject: job id */
    PHX_SEC_NACTIONS
} phx_sec_action;

const char *phx_sec_action_name(phx_sec_action a);
/* The action named s; -1 when unknown. */
int phx_sec_action_parse(const char *s);

typedef struct phx_sec_req {
    phx_sec_action action;
    const char *subject;
    const char *rule;   /* what triggered it: a sentinel rule, or "manual" */
    const char *reason; /* human text */
    const char *by;     /* "phx-sentinel@host" or "operator" */
    double throttle_per_s;
    long throttle_burst;
    int64_t ttl_ms; /* 0 = until released */
} phx_sec_req;

/* Apply q. 1 applied (id gets its id), 0 already active (id gets the active one's), -1 with err
 * (invalid_input for a bad subject, not_found for a quarantine of an unknown job, Redis). */
int phx_sec_apply(phx_redis *r, const phx_sec_req *q, int64_t now_ms, char id[32], phx_err *err);
/* Undo response id. 1 released, 0 no such active response, -1 with err. */
int phx_sec_release(phx_redis *r, const char *id, const char *by, int64_t now_ms, phx_err *err);
/* The active responses, oldest first, as a JSON array; NULL with err. */
json_t *phx_sec_list(phx_redis *r, phx_err *err);
/* Release every response whose expires_ms has passed. The number released, or -1 with err. */
int phx_sec_expire(phx_redis *r, const char *by, int64_t now_ms, phx_err *err);

/* The hash field of phx:sec:suspended that refuses a caller: "tenant:T", "key:ID",
 * "principal:T/P". */
void phx_sec_suspended_field(char *buf, size_t n, phx_sec_action a, const char *subject);

/* XADD stream MAXLEN ~ maxlen * ts_ms NOW kv[0] kv[1] ... (nkv strings, pairs; NULL -> "").
 * 0, or -1 with err. */
int phx_audit_add(phx_redis *r, const char *stream, long maxlen, int nkv, const char *const *kv,
                  phx_err *err);

#endif
