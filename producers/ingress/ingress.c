/* ingress.c -- HTTP API of phx-ingress (see ingress.h).
 *
 * libmicrohttpd calls the access handler several times per request: once with the headers,
 * once per body chunk, once more when the body is complete. The body is collected into a
 * per-request buffer that refuses to grow past max_body (413 without reading the rest).
 *
 * Redis connections come from a small pool, one per HTTP thread at most: hiredis contexts
 * are not thread-safe, and a connection per request would cost a TCP handshake each. */
#include "ingress.h"
#include "apikey.h"
#include "dag.h"
#include "jobstore.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "util.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct phx_ingress {
    const phx_ingress_cfg *cfg;
    phx_producer *producer;
    const phx_schema_set *schemas;
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    phx_redis **idle; /* the pool: idle connections */
    int nidle, nmade, maxconn;
};

/* Per-request state between handler calls. */
typedef struct phx_req {
    char *body;
    size_t len;
    int too_big;
    int64_t t0;
} phx_req;

/* An answer being built. */
typedef struct phx_answer {
    int status;
    json_t *json; /* body */
    const char *ctype;
    char location[300];
    int retry_after;
} phx_answer;

/* --- Redis pool ------------------------------------------------------------------------- */

static phx_redis *phx_ingress_redis_get(phx_ingress *in, phx_err *err)
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
        r = phx_redis_new(in->cfg->common.redis_url, getenv("PHX_REDIS_PASSWORD_FILE"),
                          (int)in->cfg->common.redis_timeout_ms, err);
        if (r)
            return r;
        pthread_mutex_lock(&in->mu);
        in->nmade--;
        pthread_cond_signal(&in->cv);
    }
    pthread_mutex_unlock(&in->mu);
    return r;
}

static void phx_ingress_redis_put(phx_ingress *in, phx_redis *r)
{
    pthread_mutex_lock(&in->mu);
    in->idle[in->nidle++] = r;
    pthread_cond_signal(&in->cv);
    pthread_mutex_unlock(&in->mu);
}

/* --- answers ---------------------------------------------------------------------------- */

/* RFC 7807 problem. errors (may be NULL) is consumed. */
static void phx_problem(phx_answer *a, int status, const char *code, const char *title,
                        const char *detail, json_t *errors)
{
    char type[160];
    snprintf(type, sizeof(type), "https://phoenix.dev/problems/%s", code);
    a->status = status;
    a->ctype = "application/problem+json";
    a->json = json_pack("{s:s, s:s, s:i, s:s}", "type", type, "title", title, "status", status,
                        "code", code);
    if (detail) {
        char *d = strdup(detail);
        phx_utf8_scrub(d);
        json_object_set_new(a->json, "detail", json_string(d));
        free(d);
    }
    if (errors)
        json_object_set_new(a->json, "errors", errors);
}

static void phx_ok(phx_answer *a, int status, json_t *body)
{
    a->status = status;
    a->ctype = "application/json";
    a->json = body;
}

/* --- auth ------------------------------------------------------------------------------- */

typedef struct phx_principal {
    char *tenant, *principal, *roles;
} phx_principal;

static void phx_principal_free(phx_principal *p)
{
    free(p->tenant);
    free(p->principal);
    free(p->roles);
}

/* 0 authenticated; -1 with the answer filled (401, or 503 when Redis is down). */
static int phx_ingress_auth(phx_ingress *in, struct MHD_Connection *conn, phx_principal *who,
                            phx_answer *a)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) {
        phx_problem(a, 401, "unauthorized", "Authentication required",
                    "send an API key as 'Authorization: Bearer KEY'", NULL);
        return -1;
    }
    phx_err err;
    phx_err_clear(&err);
    phx_redis *r = phx_ingress_redis_get(in, &err);
    if (!r) {
        phx_problem(a, 503, "unavailable", "Service unavailable", err.message, NULL);
        a->retry_after = 1;
        return -1;
    }
    phx_apikey key;
    int rc = phx_apikey_lookup(r, h + 7, phx_now_ms(), &key, &err);
    phx_ingress_redis_put(in, r);
    if (rc == 0) {
        who->tenant = key.tenant, who->principal = key.principal, who->roles = key.roles;
        return 0;
    }
    if (strcmp(err.code, "unauthorized") == 0) {
        phx_problem(a, 401, "unauthorized", "Invalid API key", "unknown or revoked API key", NULL);
    } else {
        phx_problem(a, 503, "unavailable", "Service unavailable", "key store unreachable", NULL);
        a->retry_after = 1;
    }
    return -1;
}

/* --- POST /v1/jobs ---------------------------------------------------------------------- */

/* Bring the submitted body to a job.v1 the planner will accept, or fill a 400/403. */
static json_t *phx_ingress_job(phx_ingress *in, struct MHD_Connection *conn, const phx_req *rq,
                               const phx_principal *who, phx_answer *a)
{
    json_error_t je;
    json_t *job = json_loadb(rq->body ? rq->body : "", rq->len, JSON_REJECT_DUPLICATES, &je);
    if (!job) {
        char d[300];
        snprintf(d, sizeof(d), "invalid JSON at byte %d: %s", je.position, je.text);
        phx_problem(a, 400, "invalid_json", "Body is not valid JSON", d, NULL);
        return NULL;
    }
    if (!json_is_object(job)) {
        phx_problem(a, 400, "invalid_job", "Body must be a JSON object", NULL, NULL);
        goto err;
    }
    const char *tenant = json_string_value(json_object_get(job, "tenant"));
    if (tenant && strcmp(tenant, who->tenant) != 0) {
        phx_problem(a, 403, "forbidden", "Tenant mismatch",
                    "the job names a tenant other than the API key's", NULL);
        goto err;
    }
    json_object_del(job, "submitted_ms"); /* the ingress's clock, not the client's */
    phx_job_defaults(job);
    json_object_set_new(job, "tenant", json_string(who->tenant));
    json_object_set_new(job, "principal", json_string(who->principal));
    const char *idem = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
    if (idem) {
        if (!*idem || strlen(idem) > 256) {
            phx_problem(a, 400, "invalid_header", "Bad Idempotency-Key",
                        "Idempotency-Key must be 1 to 256 characters", NULL);
            goto err;
        }
        json_object_set_new(job, "idempotency_key", json_string(idem));
    }
    json_t *errors = NULL;
    if (phx_schema_validate(phx_schema_set_get(in->schemas, "job.v1"), job, &errors) != 0) {
        phx_problem(a, 400, "invalid_job", "The job does not match schema job.v1", NULL, errors);
        goto err;
    }
    json_t *steps = json_object_get(job, "steps");
    if (!steps) {
        phx_problem(a, 400, "planning_unavailable", "Goal-only jobs cannot be planned",
                    "this deployment runs no LLM planner (phx-llm); submit explicit steps", NULL);
        goto err;
    }
    if (phx_dag_check(steps, &errors) < 0) {
        phx_problem(a, 400, "invalid_job", "The job's steps are not a valid DAG", NULL, errors);
        goto err;
    }
    return job;
err:
    json_decref(job);
    return NULL;
}

static void phx_ingress_submit(phx_ingress *in, struct MHD_Connection *conn, const phx_req *rq,
                               const phx_principal *who, phx_answer *a)
{
    phx_err err;
    phx_err_clear(&err);
    char *owner = NULL, *spec = NULL;
    phx_redis *r = NULL;
    json_t *job = phx_ingress_job(in, conn, rq, who, a);
    if (!job)
        return;
    const char *id = json_string_value(json_object_get(job, "id"));
    const char *idem = json_string_value(json_object_get(job, "idempotency_key"));
    if (!(r = phx_ingress_redis_get(in, &err)))
        goto unavailable;
    if (idem) {
        if (!(owner = phx_jobstore_idem_claim(r, who->tenant, idem, id, &err)))
            goto unavailable;
        if (strcmp(owner, id) != 0) {
            /* Same key again: the first submission's answer, without a second job. */
            phx_ok(a, 200, json_pack("{s:s, s:b}", "job_id", owner, "duplicate", 1));
            snprintf(a->location, sizeof(a->location), "/v1/jobs/%s", owner);
            goto out;
        }
    }
    spec = json_dumps(job, JSON_COMPACT);
    phx_job_submit js = {.id = id,
                         .tenant = who->tenant,
                         .principal = who->principal,
                         .roles = who->roles,
                         .spec = spec,
                         .now_ms = phx_now_ms()};
    int rc = phx_jobstore_submit(r, &js, &err);
    if (rc < 0)
        goto unavailable;
    if (rc == 0) {
        phx_problem(a, 409, "conflict", "Job id already exists",
                    "a job with this id was submitted before; GET it, or submit with a new id",
                    NULL);
        goto out;
    }
    char tp[56];
    const char *in_tp = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "traceparent");
    if (phx_traceparent_valid(in_tp))
        phx_traceparent_child(in_tp, tp);
    else
        phx_traceparent_new(tp);
    phx_kmsg m = {.topic = PHX_TOPIC_JOBS, .key = id, .value = spec, .len = strlen(spec)};
    m.hdrs[m.nhdrs++] = (phx_hdr){"phx-schema", "job.v1"};
    m.hdrs[m.nhdrs++] = (phx_hdr){"phx-tenant", who->tenant};
    m.hdrs[m.nhdrs++] = (phx_hdr){"traceparent", tp};
    if (phx_produce_batch(in->producer, &m, 1, &err) < 0) {
        /* Not on Kafka: take the Redis record back so a retry with the same id works. */
        char key[192];
        phx_err e2;
        phx_key_job(key, sizeof(key), id);
        redisReply *rep = phx_redis_cmd(r, &e2, "DEL %s", key);
        if (rep)
            freeReplyObject(rep);
        if (idem) {
            phx_key_idem(key, sizeof(key), who->tenant, idem);
            if ((rep = phx_redis_cmd(r, &e2, "DEL %s", key)))
                freeReplyObject(rep);
        }
        goto unavailable;
    }
    phx_logj(PHX_LOG_INFO, id, tp, "job submitted by %s/%s", who->tenant, who->principal);
    phx_ok(a, 202,
           json_pack("{s:s, s:s, s:s}", "job_id", id, "state", "submitted", "status_url", ""));
    snprintf(a->location, sizeof(a->location), "/v1/jobs/%s", id);
    json_object_set_new(a->json, "status_url", json_string(a->location));
    goto out;
unavailable:
    phx_logj(PHX_LOG_WARN, id, NULL, "submit failed: %s", err.message);
    phx_problem(a, 503, "unavailable", "Service unavailable",
                "the job could not be stored durably; retry", NULL);
    a->retry_after = 1;
out:
    if (r)
        phx_ingress_redis_put(in, r);
    free(owner);
    free(spec);
    json_decref(job);
}

/* --- GET /v1/jobs/{id} ------------------------------------------------------------------ */

static void phx_ingress_get(phx_ingress *in, const char *id, const phx_principal *who,
                            phx_answer *a)
{
    if (!phx_id_valid(id)) {
        phx_problem(a, 404, "not_found", "No such job", NULL, NULL);
        return;
    }
    phx_err err;
    phx_err_clear(&err);
    phx_redis *r = phx_ingress_redis_get(in, &err);
    json_t *view = r ? phx_jobstore_view(r, id, &err) : NULL;
    if (r)
        phx_ingress_redis_put(in, r);
    const char *tenant = json_string_value(json_object_get(view, "tenant"));
    if (view && tenant && strcmp(tenant, who->tenant) == 0) {
        phx_ok(a, 200, view);
        return;
    }
    json_decref(view);
    /* Another tenant's job answers exactly like a missing one: ids are not an oracle. */
    if (view || strcmp(err.code, "not_found") == 0) {
        phx_problem(a, 404, "not_found", "No such job", NULL, NULL);
    } else {
        phx_problem(a, 503, "unavailable", "Service unavailable", err.message, NULL);
        a->retry_after = 1;
    }
}

/* --- routing ---------------------------------------------------------------------------- */

static const char *phx_ingress_route_label(const char *url)
{
    if (strcmp(url, "/v1/jobs") == 0)
        return "/v1/jobs";
    if (strncmp(url, "/v1/jobs/", 9) == 0)
        return "/v1/jobs/{id}";
    return "other";
}

static void phx_ingress_route(phx_ingress *in, struct MHD_Connection *conn, const char *method,
                              const char *url, const phx_req *rq, phx_answer *a)
{
    int jobs = strcmp(url, "/v1/jobs") == 0, job = strncmp(url, "/v1/jobs/", 9) == 0;
    if (!jobs && !job) {
        phx_problem(a, 404, "not_found", "Not found", "no such endpoint", NULL);
        return;
    }
    if ((jobs && strcmp(method, "POST") != 0) || (job && strcmp(method, "GET") != 0)) {
        phx_problem(a, 405, "method_not_allowed", "Method not allowed", NULL, NULL);
        return;
    }
    phx_principal who = {0};
    if (phx_ingress_auth(in, conn, &who, a) < 0)
        return;
    if (jobs && rq->too_big) {
        char d[128];
        snprintf(d, sizeof(d), "the body exceeds %ld bytes", in->cfg->max_body);
        phx_problem(a, 413, "payload_too_large", "Payload too large", d, NULL);
    } else if (jobs) {
        phx_ingress_submit(in, conn, rq, &who, a);
    } else {
        phx_ingress_get(in, url + 9, &who, a);
    }
    phx_principal_free(&who);
}

static enum MHD_Result phx_ingress_send(struct MHD_Connection *conn, phx_answer *a)
{
    char *body = json_dumps(a->json, JSON_COMPACT);
    size_t len = strlen(body);
    body = realloc(body, len + 2);
    body[len++] = '\n';
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", a->ctype);
    if (a->location[0])
        MHD_add_response_header(resp, "Location", a->location);
    if (a->retry_after) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", a->retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)a->status, resp);
    MHD_destroy_response(resp);
    json_decref(a->json);
    return rc;
}

static enum MHD_Result phx_ingress_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                          const char *method, const char *version,
                                          const char *upload, size_t *upload_size, void **ctx)
{
    (void)version;
    phx_ingress *in = cls;
    phx_req *rq = *ctx;
    if (!rq) {
        rq = calloc(1, sizeof(*rq));
        rq->t0 = phx_mono_ms();
        *ctx = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!rq->too_big && rq->len + *upload_size <= (size_t)in->cfg->max_body) {
            rq->body = realloc(rq->body, rq->len + *upload_size + 1);
            memcpy(rq->body + rq->len, upload, *upload_size);
            rq->len += *upload_size;
        } else {
            rq->too_big = 1; /* keep draining, answer 413 at the end */
        }
        *upload_size = 0;
        return MHD_YES;
    }
    phx_answer a = {0};
    phx_ingress_route(in, conn, method, url, rq, &a);
    char labels[128];
    snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%d\"", phx_ingress_route_label(url),
             a.status);
    phx_metric_add(
        phx_counter("phx_http_requests_total", "API requests by route and status.", labels), 1);
    snprintf(labels, sizeof(labels), "route=\"%s\"", phx_ingress_route_label(url));
    phx_metric_observe(phx_histogram("phx_http_request_duration_seconds",
                                     "API request latency, body received to answer queued.", labels,
                                     NULL, 0),
                       (double)(phx_mono_ms() - rq->t0) / 1000.0);
    return phx_ingress_send(conn, &a);
}

static void phx_ingress_done(void *cls, struct MHD_Connection *conn, void **ctx,
                             enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    phx_req *rq = *ctx;
    if (rq) {
        free(rq->body);
        free(rq);
        *ctx = NULL;
    }
}

phx_ingress *phx_ingress_start(const phx_ingress_cfg *cfg, phx_producer *producer,
                               const phx_schema_set *schemas, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    if (phx_addr_parse("PHX_INGRESS_ADDR", cfg->listen, &ss, err, errlen) < 0)
        return NULL;
    phx_ingress *in = calloc(1, sizeof(*in));
    in->cfg = cfg;
    in->producer = producer;
    in->schemas = schemas;
    in->maxconn = (int)cfg->threads;
    in->idle = calloc((size_t)in->maxconn, sizeof(*in->idle));
    pthread_mutex_init(&in->mu, NULL);
    pthread_cond_init(&in->cv, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    in->d = MHD_start_daemon(flags, 0, NULL, NULL, phx_ingress_handle, in, MHD_OPTION_SOCK_ADDR,
                             (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
                             (unsigned)cfg->threads, MHD_OPTION_NOTIFY_COMPLETED, phx_ingress_done,
                             in, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536, MHD_OPTION_END);
    if (!in->d) {
        snprintf(err, errlen, "PHX_INGRESS_ADDR=%s: cannot listen", cfg->listen);
        phx_ingress_stop(in);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(in->d, MHD_DAEMON_INFO_BIND_PORT);
    in->port = di ? di->port : 0;
    return in;
}

int phx_ingress_port(const phx_ingress *in)
{
    return in->port;
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
    if (in->d)
        MHD_stop_daemon(in->d);
    for (int i = 0; i < in->nidle; i++)
        phx_redis_free(in->idle[i]);
    free(in->idle);
    pthread_mutex_destroy(&in->mu);
    pthread_cond_destroy(&in->cv);
    free(in);
}
