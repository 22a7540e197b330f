/* fuzz_http.c -- libFuzzer target: what phx-ingress does with a hostile request once
 * libmicrohttpd has parsed it -- routing and the {id} segment, the ops page's static files,
 * the Authorization header (Bearer, JWT or API key shape, the key id derived from it), the
 * traceparent header, GET /v1/jobs's state/limit/cursor, and POST /v1/jobs's body with its
 * Idempotency-Key: JSON, defaults, tenant, schema job.v1, DAG and scope checks -- and the
 * answer built from all that. These are the pure functions of ingress_int.h; nothing here
 * needs a socket, Redis or Kafka (the handlers' storage side is what the gateway tests run).
 *
 * Input, an HTTP/1.1 request as text:
 *   METHOD SP URL [SP VERSION] LF
 *   (NAME ":" VALUE LF)*      headers; "X-Fuzz-Roles" sets the caller's roles
 *   LF
 *   BODY
 * URL's query (after '?') is split on '&' and '=' as libmicrohttpd does, without
 * percent-decoding (decoded values are just other bytes, which the fuzzer produces anyway).
 * libmicrohttpd hands the ingress NUL-terminated strings, so a NUL in the head ends it. */
#include "../../producers/ingress/ingress_int.h"
#include "dag.h"
#include "msg.h"
#include "rbac.h"
#include "trace.h"
#include "util.h"
#include "fuzz_schemas.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FZ_MAX_HDRS 32
#define FZ_MAX_ARGS 16

typedef struct fz_kv {
    const char *k, *v;
} fz_kv;

/* The last value of name among n pairs (case-insensitive names, as headers are), or NULL. */
static const char *fz_get(const fz_kv *kv, int n, const char *name, int nocase)
{
    const char *v = NULL;
    for (int i = 0; i < n; i++)
        if ((nocase ? strcasecmp(kv[i].k, name) : strcmp(kv[i].k, name)) == 0)
            v = kv[i].v;
    return v;
}

/* Serialise and drop an answer, as phx_ingress_send would hand it to libmicrohttpd. */
static void fz_answer_done(phx_answer *a)
{
    if (a->json) {
        char *s = json_dumps(a->json, JSON_COMPACT);
        if (!s)
            __builtin_trap(); /* every answer body must serialise */
        free(s);
    }
    if (a->stream)
        MHD_destroy_response(a->stream);
    json_decref(a->json);
    memset(a, 0, sizeof(*a));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *end = memchr(data, '\n', size), *body;
    char *head = NULL;
    /* The head ends at the first empty line; what follows is the body. */
    const char *sep = NULL;
    for (const char *q = (const char *)data; q + 1 < (const char *)data + size; q++)
        if (q[0] == '\n' && q[1] == '\n') {
            sep = q;
            break;
        }
    if (!end)
        return 0;
    size_t hlen = sep ? (size_t)(sep - (const char *)data) : size;
    body = sep ? sep + 2 : (const char *)data + size;
    size_t blen = (size_t)((const char *)data + size - body);
    head = strndup((const char *)data, hlen); /* stops at a NUL, as libmicrohttpd's strings */
    if (!head)
        return 0;

    /* Request line. */
    char *save = NULL, *line = strtok_r(head, "\n", &save);
    char *method = line, *url = line ? strchr(line, ' ') : NULL;
    if (!url)
        goto out;
    *url++ = '\0';
    char *ver = strchr(url, ' ');
    if (ver)
        *ver = '\0';
    fz_kv hdr[FZ_MAX_HDRS], arg[FZ_MAX_ARGS];
    int nh = 0, na = 0;
    for (char *l; nh < FZ_MAX_HDRS && (l = strtok_r(NULL, "\n", &save));) {
        char *colon = strchr(l, ':');
        if (!colon)
            continue;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        hdr[nh++] = (fz_kv){l, v};
    }
    char *query = strchr(url, '?');
    if (query) {
        *query++ = '\0';
        char *qs = NULL;
        for (char *p = strtok_r(query, "&", &qs); p && na < FZ_MAX_ARGS;
             p = strtok_r(NULL, "&", &qs)) {
            char *eq = strchr(p, '=');
            if (eq)
                *eq++ = '\0';
            arg[na++] = (fz_kv){p, eq ? eq : ""};
        }
    }

    /* phx_ingress_handle: the request's span, parented on the caller's traceparent. */
    phx_span sp;
    phx_span_start(&sp, "fuzz", PHX_SPAN_SERVER, fz_get(hdr, nh, "traceparent", 1));

    phx_answer a = {0};
    if (phx_ops_static(method, url, &a)) {
        fz_answer_done(&a);
        goto span;
    }
    char seg[256] = "";
    int known = 0;
    const phx_route *rt = phx_route_find(method, url, seg, sizeof(seg), &known);
    if (rt && strlen(seg) >= sizeof(seg))
        __builtin_trap();

    /* Authentication's parsing: the credential, its kind, the key id logged for it. */
    const char *cred = phx_ingress_bearer(fz_get(hdr, nh, "Authorization", 1));
    if (cred) {
        char key_id[17];
        if (!phx_jwt_looks_like(cred))
            phx_apikey_id(cred, key_id);
    }

    /* The caller: roles as an API key record or a JWT claim would carry them. */
    const char *roles = fz_get(hdr, nh, "X-Fuzz-Roles", 1);
    phx_principal who = {.tenant = "t1", .principal = "p1", .roles = (char *)"submitter"};
    if (roles)
        who.roles = (char *)roles;
    who.scopes = phx_rbac_scopes(who.roles);
    phx_ingress in = {.schemas = fz_schemas};
    phx_req rq = {.body = (char *)body, .len = blen};
    phx_ctx c = {.in = &in, .rq = &rq, .who = &who, .arg = rt ? seg : NULL};

    if (rt && strcmp(rt->pattern, "/v1/jobs") == 0 && strcmp(rt->method, "POST") == 0) {
        json_t *job = phx_jobs_prepare(&c, fz_get(hdr, nh, "Idempotency-Key", 1), &a);
        if (job) {
            /* What was accepted is what the planner will check again. */
            json_t *errors = NULL;
            if (phx_schema_validate(phx_schema_set_get(fz_schemas, "job.v1"), job, &errors) != 0)
                __builtin_trap();
            char *spec = json_dumps(job, JSON_COMPACT);
            free(spec);
            json_decref(job);
        }
    } else if (rt && strcmp(rt->pattern, "/v1/jobs") == 0) {
        phx_jobs_query q;
        if (phx_jobs_query_parse(fz_get(arg, na, "state", 0), fz_get(arg, na, "limit", 0),
                                 fz_get(arg, na, "cursor", 0), &q, &a) == 0 &&
            (q.limit < 1 || q.limit > 100 || (q.cursor_id && !phx_id_valid(q.cursor_id))))
            __builtin_trap();
    } else if (rt && strchr(rt->pattern, '*')) {
        (void)phx_id_valid(seg); /* what every {id} handler checks first */
    } else {
        /* Any other body is still read as the admin handlers read theirs. */
        json_decref(phx_body_object(&c, &a));
    }
    fz_answer_done(&a);
span:
    phx_span_end(&sp);
out:
    free(head);
    return 0;
}
