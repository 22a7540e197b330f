/* ingress.h -- phx-ingress: the HTTP front door (libmicrohttpd).
 *
 *   POST /v1/jobs        submit a job (Bearer API key; Idempotency-Key honoured)
 *   GET  /v1/jobs/{id}   the job's state, steps and outputs (same tenant only, else 404)
 *
 * A 202 means the job is both in Redis (state "submitted", so GET works at once) and on
 * phx.jobs with the brokers' acknowledgement (acks=all); anything short of that is an error
 * answer and nothing is left half-submitted. Errors are RFC 7807 application/problem+json. */
#ifndef PHX_INGRESS_H
#define PHX_INGRESS_H

#include "config.h"
#include "kafka.h"
#include "redis.h"
#include "schema.h"

#include <pthread.h>

typedef struct phx_ingress_cfg {
    phx_common common;
    char *listen;  /* HOST:PORT of the API */
    long max_body; /* bytes */
    long threads;  /* HTTP worker threads */
} phx_ingress_cfg;

typedef struct phx_ingress phx_ingress;

/* Start serving (threads inside libmicrohttpd). NULL with err. */
phx_ingress *phx_ingress_start(const phx_ingress_cfg *cfg, phx_producer *producer,
                               const phx_schema_set *schemas, char *err, size_t errlen);
int phx_ingress_port(const phx_ingress *in);
/* Readiness of the ingress's dependencies (for /readyz). */
int phx_ingress_ready(void *ingress, char *why, size_t whylen);
void phx_ingress_stop(phx_ingress *in);

#endif
