/* ingress.h -- phx-ingress: the HTTP front door (libmicrohttpd).
 *
 *   POST   /v1/jobs                       submit a job (Idempotency-Key honoured)
 *   GET    /v1/jobs?state=&limit=&cursor= the caller's tenant's jobs, newest first
 *   GET    /v1/jobs/{id}                  the job's state, steps and outputs
 *   DELETE /v1/jobs/{id}                  cancel: nothing further is dispatched
 *   GET    /v1/jobs/{id}/events           Server-Sent Events from phx.events
 *   GET|POST /v1/admin/keys, DELETE /v1/admin/keys/{id}, POST /v1/admin/keys/{id}/rotate
 *   GET    /v1/ops/overview, /v1/ops/jobs/{id}/trace   the ops page's data (ops:read)
 *   GET    /ops                           the ops page itself (static, no credentials)
 *
 * Callers authenticate with an API key or a JWT (Bearer); each route needs a scope; each
 * tenant and principal has a rate limit; another tenant's job answers 404. A 202 on submit
 * means the job is both in Redis (state "submitted", so GET works at once) and on phx.jobs
 * with the brokers' acknowledgement (acks=all). Errors are RFC 7807 application/problem+json.
 * docs/api.md and docs/openapi.yaml describe the API for clients. */
#ifndef PHX_INGRESS_H
#define PHX_INGRESS_H

#include "config.h"
#include "kafka.h"
#include "redis.h"
#include "schema.h"

#include <pthread.h>
#include <stdint.h>

typedef struct phx_ingress_cfg {
    phx_common common;
    char *listen;    /* HOST:PORT of the API */
    long max_body;   /* bytes */
    long threads;    /* HTTP worker threads */
    long committers; /* group commit threads for POST /v1/jobs */
    long max_connections, max_conn_per_ip, conn_timeout_s, body_timeout_ms, max_header_bytes;
    long rate_tenant, burst_tenant, rate_principal, burst_principal; /* requests/s; 0 = off */
    char *jwt_keys_file, *jwt_issuer, *jwt_audience;
    long jwt_leeway_s;
    long max_streams;      /* concurrent SSE streams */
    long guard_refresh_ms; /* reload of phx:sec:suspended */
    long key_cache_ms;     /* how long a looked-up API key is trusted (<= 1000) */
    int audit_auth;        /* record 401/403 in phx:audit:auth */
    long audit_maxlen;
} phx_ingress_cfg;

typedef struct phx_ingress phx_ingress;

/* Start serving (threads inside libmicrohttpd). NULL with err. */
phx_ingress *phx_ingress_start(const phx_ingress_cfg *cfg, phx_producer *producer,
                               const phx_schema_set *schemas, char *err, size_t errlen);
int phx_ingress_port(const phx_ingress *in);
/* Readiness of the ingress's dependencies (for /readyz). */
int phx_ingress_ready(void *ingress, char *why, size_t whylen);
/* SIGHUP: re-read the JWT keys. On failure the old keys stay and err says why. */
int phx_ingress_reload(phx_ingress *in, char *err, size_t errlen);
void phx_ingress_stop(phx_ingress *in);
/* Reload the suspended callers (phx:sec:suspended) when PHX_INGRESS_GUARD_REFRESH_MS passed
 * since the last load; the main loop calls it on every wake-up (guard.c). 0, or -1 when Redis
 * could not be read (the previous set stays in force). */
int phx_ingress_guard_refresh(phx_ingress *in, int64_t now_ms);

#endif
