/* ingress_int.h -- what the ingress's modules share (not a public interface).
 *
 * ingress.c owns the daemon, routing, authentication, rate limits and answers; jobs.c the
 * /v1/jobs handlers; keys.c the /v1/admin/keys handlers; events.c the Server-Sent Events
 * stream of phx.events. A handler gets the request context and fills an answer. */
#ifndef PHX_INGRESS_INT_H
#define PHX_INGRESS_INT_H

#include "apikey.h"
#include "ingress.h"
#include "jwt.h"
#include "metrics.h"
#include "ratelimit.h"
#include "trace.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>

typedef struct phx_events phx_events;
typedef struct phx_ops phx_ops;
typedef struct phx_commit phx_commit;

#define PHX_INGRESS_NROUTES 16 /* at least the routes of ingress.c */
#define PHX_INGRESS_NCODES  16 /* the status codes counted without a registry lookup */

struct phx_ingress {
    const phx_ingress_cfg *cfg;
    phx_producer *producer;
    const phx_schema_set *schemas;
    phx_jwt_verifier *jwt;  /* NULL when PHX_JWT_KEYS_FILE is empty */
    phx_events *events;     /* the phx.events tail behind SSE and the recent jobs */
    phx_ops *ops;           /* the ops API's caches and bounds */
    phx_apikey_cache *keys; /* API keys looked up recently (PHX_INGRESS_KEY_CACHE_MS) */
    phx_commit *commit;     /* the group commit of POST /v1/jobs (commit.c) */
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    phx_redis **idle; /* the pool: idle connections */
    int nidle, nmade, maxconn;
    /* guard.c: phx:sec:suspended as last loaded (field -> response id), under sec_mu. */
    pthread_mutex_t sec_mu;
    json_t *suspended;
    int64_t sec_loaded_ms;
    /* ingress.c: request counters by route and status, latency by route, once looked up. */
    _Atomic(phx_metric *) m_req[PHX_INGRESS_NROUTES][PHX_INGRESS_NCODES];
    _Atomic(phx_metric *) m_dur[PHX_INGRESS_NROUTES];
};

/* The authenticated caller. */
typedef struct phx_principal {
    char *tenant, *principal, *roles;
    unsigned scopes;
    char via[64]; /* "api_key:ID" or "jwt:KID": for logs, never the credential */
} phx_principal;

/* An answer being built. */
typedef struct phx_answer {
    int status;
    json_t *json; /* body */
    char *text;   /* or the body already serialised (malloc'd), sent as it is */
    const char *ctype;
    char location[300];
    int retry_after;
    int rl_set;
    long rl_limit, rl_remaining, rl_reset_s;
    int www_auth;
    struct MHD_Response *stream; /* set by a streaming handler instead of json */
} phx_answer;

/* Per-request state between libmicrohttpd's handler calls. A POST /v1/jobs waits for the group
 * commit (commit.c) with its connection suspended; what it needs then lives here. */
typedef struct phx_req {
    char *body;
    size_t len;
    int too_big, too_slow;
    int64_t t0;
    /* --- the group commit --- */
    int state;    /* PHX_REQ_* */
    phx_answer a; /* the answer so far (the final one once PHX_REQ_ANSWERED) */
    int audit;    /* a is a missing-scope 403 to record once the rate limit let it through */
    phx_principal who;
    json_t *job; /* the job to store and publish; NULL when a is decided but for the limit */
    char tp[56]; /* the request span's context, carried by the published job */
    phx_span sp; /* the request's span, ended when the answer is sent */
    struct MHD_Connection *conn;
    struct phx_req *next; /* the commit queue */
} phx_req;
enum { PHX_REQ_NEW = 0, PHX_REQ_QUEUED, PHX_REQ_ANSWERED };

typedef struct phx_ctx {
    phx_ingress *in;
    struct MHD_Connection *conn;
    const phx_req *rq;
    const phx_principal *who;
    const char *arg; /* the {id} segment of the route, when it has one */
} phx_ctx;

/* --- request parsing: pure functions of what libmicrohttpd parsed (method, URL, header and
 * query values, body), no socket, Redis or Kafka, so tests/fuzz/fuzz_http can call them. --- */

/* A route: method and path pattern ('*' stands for one path segment, passed as ctx.arg). fn
 * is NULL for POST /v1/jobs, which the group commit answers (commit.c). */
typedef struct phx_route {
    const char *method;
    const char *pattern;
    unsigned scope;
    void (*fn)(const phx_ctx *, phx_answer *);
} phx_route;
/* The route for method+url, with its '*' segment in arg; NULL, with *path_known set when only
 * the method is wrong (405, else 404). */
const phx_route *phx_route_find(const char *method, const char *url, char *arg, size_t arglen,
                                int *path_known);
/* The credential of an Authorization header value ("Bearer CRED", scheme case-insensitive, at
 * most 8192 bytes), or NULL when h is absent or not that. */
const char *phx_ingress_bearer(const char *h);
/* POST /v1/jobs's body (c->rq) and Idempotency-Key header value (idem, NULL when absent) made a
 * job.v1 for c->who, checked against the schema, the DAG rules and the caller's scopes: the
 * job, or NULL with a 400/403 filled in a. Needs only c->in->schemas, c->rq and c->who. */
json_t *phx_jobs_prepare(const phx_ctx *c, const char *idem, phx_answer *a);
/* GET /v1/jobs's query: state, limit (1..100, default 20), cursor ("MS:ID"). */
typedef struct phx_jobs_query {
    const char *state; /* NULL: every state */
    long limit;
    long long cursor_ms; /* -1: no cursor */
    const char *cursor_id;
} phx_jobs_query;
/* Parse the query parameters' values (each NULL when absent): 0, or -1 with a 400 filled. */
int phx_jobs_query_parse(const char *state, const char *limit, const char *cursor,
                         phx_jobs_query *q, phx_answer *a);

phx_redis *phx_ingress_redis_get(phx_ingress *in, phx_err *err);
void phx_ingress_redis_put(phx_ingress *in, phx_redis *r);

/* RFC 7807 problem. errors (may be NULL) is consumed. */
void phx_problem(phx_answer *a, int status, const char *code, const char *title, const char *detail,
                 json_t *errors);
void phx_ok(phx_answer *a, int status, json_t *body);
void phx_unavailable(phx_answer *a, const char *detail);
/* The RateLimit-* headers of verdict v on a; 0 allowed, or -1 with a 429 filled. */
int phx_ratelimit_answer(phx_answer *a, const phx_rate_verdict *v);
/* The body as a JSON object, or a 400 filled. */
json_t *phx_body_object(const phx_ctx *c, phx_answer *a);

/* commit.c: POST /v1/jobs's group commit. The request threads check and prepare a submission
 * (phx_jobs_prepare), suspend the connection and queue it; committer threads take whatever is
 * queued as one batch: the rate limits of all of them in one Redis round trip, the
 * idempotency keys in one, the jobs and their listings in one, then one Kafka produce of all
 * the messages, whose delivery reports they wait for; then every request in the batch is
 * answered and its connection resumed. */
phx_commit *phx_commit_start(phx_ingress *in, int nthreads, char *err, size_t errlen);
/* When the ingress is idle (nothing queued, no batch in flight), commit rq at once in the
 * calling thread: 1 with rq->a the answer (state PHX_REQ_ANSWERED; the connection is not
 * suspended). 0 when busy: the caller suspends the connection and queues rq. */
int phx_commit_try_inline(phx_commit *cm, phx_req *rq);
/* Queue rq (state PHX_REQ_QUEUED; its connection suspended by the caller). */
void phx_commit_queue(phx_commit *cm, phx_req *rq);
/* Answer what is queued, then stop the threads (before the HTTP daemon stops: it cannot stop
 * with suspended connections); what is queued later is answered 503 at once. */
void phx_commit_stop(phx_commit *cm);
/* Stop (if not yet) and free, after the HTTP daemon stopped. */
void phx_commit_free(phx_commit *cm);
void phx_jobs_get(const phx_ctx *c, phx_answer *a);
void phx_jobs_list(const phx_ctx *c, phx_answer *a);
void phx_jobs_cancel(const phx_ctx *c, phx_answer *a);

void phx_keys_list(const phx_ctx *c, phx_answer *a);
void phx_keys_create(const phx_ctx *c, phx_answer *a);
void phx_keys_revoke(const phx_ctx *c, phx_answer *a);
void phx_keys_rotate(const phx_ctx *c, phx_answer *a);

/* guard.c: security responses at the door (phx_ingress_guard_refresh in ingress.h).
 * Is the caller suspended (its tenant, API key or principal)? 0 no; -1 with a 403 filled. */
int phx_guard_check(phx_ingress *in, const phx_principal *who, phx_answer *a);
/* Record a refused request (401, or 403 for a missing scope) in phx:audit:auth for
 * phx-sentinel: status, problem code, credential kind and key id, tenant/principal when
 * known, client address, route. Never the credential. */
void phx_guard_audit_auth(phx_ingress *in, struct MHD_Connection *conn, const phx_principal *who,
                          const phx_answer *a, const char *route);

phx_events *phx_events_start(const char *brokers, long max_streams, char *err, size_t errlen);
void phx_events_close_all(phx_events *ev);
void phx_events_stop(phx_events *ev);
void phx_events_stream(const phx_ctx *c, phx_answer *a);
/* The latest `limit` jobs seen on phx.events by this ingress, newest first: [{job_id, tenant,
 * state, last_event, first_ms, last_ms, events}]. */
json_t *phx_events_recent(phx_events *ev, int limit);

/* The ops page and its API (ops.c). */
phx_ops *phx_ops_new(void);
void phx_ops_free(phx_ops *ops);
/* GET /ops, /ops/FILE: the page's static files (no credentials needed: they hold no data). 1
 * when url is one of them (a filled), 0 otherwise. */
int phx_ops_static(const char *method, const char *url, phx_answer *a);
void phx_ops_overview(const phx_ctx *c, phx_answer *a);
void phx_ops_trace(const phx_ctx *c, phx_answer *a);

#endif
