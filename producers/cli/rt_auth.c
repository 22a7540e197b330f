/* rt_auth.c -- the auth suite of `phx redteam`: attacks on the ingress's gate.
 *
 * Without credentials it still tries what any outsider can: no or malformed Authorization,
 * forged API keys, unsigned (alg: none) and self-signed JWTs, kid tricks, algorithm
 * confusion. With PHX_REDTEAM_API_KEY (an admin key) it makes short-lived keys of its own to
 * replay a revoked key, an expired one, and to try scope escalation (a reader submitting, a
 * submitter running exec.run, a body naming another tenant); with PHX_REDTEAM_API_KEY_B (an
 * admin key of another tenant) it tries to read, cancel, stream and revoke across tenants.
 * The keys it makes are revoked before it returns. A 2xx to any attack is an escape; the
 * expected refusal is contained; anything else (429, 5xx, no answer) is undecided. */
#include "redteam.h"
#include "msg.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* base64url without padding, malloc'd. */
static char *rt_b64url(const void *data, size_t len)
{
    char *b = phx_base64_encode(data, len);
    for (char *p = b; *p; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
        else if (*p == '=')
            *p = 0;
    }
    return b;
}

/* header.payload.sig from JSON texts (sig: raw bytes, may be empty). */
static char *rt_jwt(const char *header, const char *payload, const char *sig, size_t siglen)
{
    char *h = rt_b64url(header, strlen(header)), *p = rt_b64url(payload, strlen(payload));
    char *s = rt_b64url(sig, siglen);
    size_t n = strlen(h) + strlen(p) + strlen(s) + 3;
    char *t = phx_xmalloc(n);
    snprintf(t, n, "%s.%s.%s", h, p, s);
    free(h), free(p), free(s);
    return t;
}

/* Expect one of the statuses in want (0-terminated); classify the answer. */
static void rt_expect(rt_suite *s, const char *name, long got, const long *want)
{
    for (const long *w = want; *w; w++)
        if (got == *w) {
            rt_case(s, name, RT_CONTAINED, "HTTP %ld", got);
            return;
        }
    if (got >= 200 && got < 300)
        rt_case(s, name, RT_ESCAPED, "HTTP %ld: the request was served", got);
    else
        rt_case(s, name, RT_ERROR, "HTTP %ld (expected %ld)", got, want[0]);
}

static long rt_with(const rt_ctx *c, const char *method, const char *path, const char *auth,
                    const char *body, char **answer)
{
    char h[4096] = "";
    if (auth)
        snprintf(h, sizeof(h), "Authorization: %s", auth);
    const char *hs[] = {h, "Content-Type: application/json", NULL};
    return rt_http(c, method, path, auth ? hs : hs + 1, body, body ? strlen(body) : 0, answer);
}

static long rt_bearer(const rt_ctx *c, const char *method, const char *path, const char *key,
                      const char *body, char **answer)
{
    char a[4096];
    snprintf(a, sizeof(a), "Bearer %s", key);
    return rt_with(c, method, path, a, body, answer);
}

/* Create a key with the admin key: its secret and id (malloc'd), or -1. */
static int rt_key_new(const rt_ctx *c, const char *admin, const char *roles, int expires_s,
                      char **key, char **id)
{
    char body[256], *ans = NULL;
    if (expires_s)
        snprintf(body, sizeof(body),
                 "{\"principal\": \"redteam-%s\", \"roles\": \"%s\", \"expires_in_s\": %d}", roles,
                 roles, expires_s);
    else
        snprintf(body, sizeof(body), "{\"principal\": \"redteam-%s\", \"roles\": \"%s\"}", roles,
                 roles);
    long st = rt_bearer(c, "POST", "/v1/admin/keys", admin, body, &ans);
    json_t *j = ans ? json_loads(ans, 0, NULL) : NULL;
    free(ans);
    const char *k = json_string_value(json_object_get(j, "key"));
    const char *i = json_string_value(json_object_get(j, "id"));
    int rc = st == 201 && k && i ? 0 : -1;
    *key = rc == 0 ? strdup(k) : NULL;
    *id = rc == 0 ? strdup(i) : NULL;
    json_decref(j);
    return rc;
}

static void rt_key_revoke(const rt_ctx *c, const char *admin, const char *id)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/admin/keys/%s", id);
    rt_bearer(c, "DELETE", path, admin, NULL, NULL);
}

static void rt_auth_anonymous(const rt_ctx *c, rt_suite *s)
{
    static const long u401[] = {401, 0};
    const char *job = "{\"steps\": [{\"id\": \"a\", \"kind\": \"tool.calc\", "
                      "\"input\": {\"expr\": \"1+1\"}}]}";
    rt_expect(s, "no credentials", rt_with(c, "POST", "/v1/jobs", NULL, job, NULL), u401);
    rt_expect(s, "empty bearer", rt_with(c, "POST", "/v1/jobs", "Bearer ", job, NULL), u401);
    rt_expect(s, "basic auth", rt_with(c, "POST", "/v1/jobs", "Basic YWRtaW46YWRtaW4=", job, NULL),
              u401);
    unsigned char rnd[24];
    char forged[64] = "phx_";
    phx_random_bytes(rnd, sizeof(rnd));
    for (int i = 0; i < 24; i++)
        sprintf(forged + 4 + 2 * i, "%02x", rnd[i]);
    rt_expect(s, "forged api key", rt_bearer(c, "POST", "/v1/jobs", forged, job, NULL), u401);
    rt_expect(s, "forged api key on admin route",
              rt_bearer(c, "GET", "/v1/admin/keys", forged, NULL, NULL), u401);
    char upper[64];
    snprintf(upper, sizeof(upper), "PHX_%s", forged + 4);
    rt_expect(s, "api key prefix case", rt_bearer(c, "GET", "/v1/jobs", upper, NULL, NULL), u401);

    char claims[512];
    long long now = (long long)(phx_now_ms() / 1000);
    snprintf(claims, sizeof(claims),
             "{\"sub\": \"redteam\", \"tenant\": \"%s\", \"roles\": [\"admin\"], "
             "\"iat\": %lld, \"exp\": %lld}",
             c->tenant, now, now + 3600);
    static const struct {
        const char *name, *header;
        int sig; /* 0: empty signature, 1: 32 random bytes */
    } toks[] = {
        {"jwt alg none", "{\"alg\": \"none\", \"typ\": \"JWT\"}", 0},
        {"jwt alg None", "{\"alg\": \"None\", \"typ\": \"JWT\"}", 0},
        {"jwt alg NONE with signature", "{\"alg\": \"NONE\"}", 1},
        {"jwt hs256 forged signature", "{\"alg\": \"HS256\", \"typ\": \"JWT\"}", 1},
        {"jwt rs256 garbage signature", "{\"alg\": \"RS256\", \"typ\": \"JWT\"}", 1},
        {"jwt kid path traversal", "{\"alg\": \"HS256\", \"kid\": \"../../../../dev/null\"}", 1},
        {"jwt kid sql", "{\"alg\": \"HS256\", \"kid\": \"x' OR '1'='1\"}", 1},
        {"jwt embedded jwk", "{\"alg\": \"HS256\", \"jwk\": {\"kty\": \"oct\", \"k\": \"AAAA\"}}",
         1},
        {"jwt jku header", "{\"alg\": \"RS256\", \"jku\": \"http://127.0.0.1:1/jwks\"}", 1},
        {"jwt header not json", "not json", 1},
    };
    for (size_t i = 0; i < sizeof(toks) / sizeof(toks[0]); i++) {
        unsigned char sig[32];
        phx_random_bytes(sig, sizeof(sig));
        char *t = rt_jwt(toks[i].header, claims, (const char *)sig, toks[i].sig ? 32 : 0);
        rt_expect(s, toks[i].name, rt_bearer(c, "GET", "/v1/admin/keys", t, NULL, NULL), u401);
        free(t);
    }
    rt_expect(s, "jwt two parts",
              rt_bearer(c, "GET", "/v1/jobs", "eyJhbGciOiJub25lIn0.e30", NULL, NULL), u401);
    char *huge = phx_xmalloc(6000);
    memset(huge, 'A', 5999);
    huge[5999] = 0;
    memcpy(huge, "eyJ", 3);
    huge[100] = '.', huge[200] = '.';
    static const long u401_431[] = {401, 431, 0};
    rt_expect(s, "jwt oversized", rt_bearer(c, "GET", "/v1/jobs", huge, NULL, NULL), u401_431);
    free(huge);
}

/* Cases that need credentials of our own. */
static void rt_auth_keys(const rt_ctx *c, rt_suite *s)
{
    static const long u401[] = {401, 0}, f403[] = {403, 0}, n404[] = {404, 0};
    const char *calc = "{\"steps\": [{\"id\": \"a\", \"kind\": \"tool.calc\", "
                       "\"input\": {\"expr\": \"1+1\"}}]}";
    char *key = NULL, *id = NULL;
    /* A revoked key replayed. */
    if (rt_key_new(c, c->api_key, "submitter", 0, &key, &id) < 0) {
        rt_case(s, "create test keys", RT_ERROR,
                "POST /v1/admin/keys with PHX_REDTEAM_API_KEY failed");
        return;
    }
    long before = rt_bearer(c, "GET", "/v1/jobs", key, NULL, NULL);
    rt_key_revoke(c, c->api_key, id);
    /* The promise is "within one second on every replica" (each caches a lookup that long at
     * most); behind a load balancer the replay may reach a replica that did not revoke. */
    phx_sleep_ms(1100);
    if (before != 200)
        rt_case(s, "replay revoked key", RT_ERROR, "the fresh key got HTTP %ld", before);
    else
        rt_expect(s, "replay revoked key", rt_bearer(c, "GET", "/v1/jobs", key, NULL, NULL), u401);
    free(key), free(id);
    /* An expired key replayed. */
    if (rt_key_new(c, c->api_key, "reader", 1, &key, &id) == 0) {
        phx_sleep_ms(2100);
        rt_expect(s, "replay expired key", rt_bearer(c, "GET", "/v1/jobs", key, NULL, NULL), u401);
        rt_key_revoke(c, c->api_key, id);
        free(key), free(id);
    }
    /* Scope escalation. */
    if (rt_key_new(c, c->api_key, "reader", 0, &key, &id) == 0) {
        rt_expect(s, "reader submits a job", rt_bearer(c, "POST", "/v1/jobs", key, calc, NULL),
                  f403);
        rt_expect(s, "reader lists keys", rt_bearer(c, "GET", "/v1/admin/keys", key, NULL, NULL),
                  f403);
        rt_expect(s, "reader creates a key",
                  rt_bearer(c, "POST", "/v1/admin/keys", key,
                            "{\"principal\": \"x\", \"roles\": \"admin\"}", NULL),
                  f403);
        rt_key_revoke(c, c->api_key, id);
        free(key), free(id);
    }
    if (rt_key_new(c, c->api_key, "submitter", 0, &key, &id) == 0) {
        rt_expect(s, "submitter runs exec.run",
                  rt_bearer(c, "POST", "/v1/jobs", key,
                            "{\"steps\": [{\"id\": \"a\", \"kind\": \"exec.run\", "
                            "\"input\": {\"lang\": \"sh\", \"code\": \"id\"}}]}",
                            NULL),
                  f403);
        rt_expect(s, "body names another tenant",
                  rt_bearer(c, "POST", "/v1/jobs", key,
                            "{\"tenant\": \"someone-else\", \"steps\": [{\"id\": \"a\", "
                            "\"kind\": \"tool.calc\", \"input\": {\"expr\": \"1+1\"}}]}",
                            NULL),
                  f403);
        rt_key_revoke(c, c->api_key, id);
        free(key), free(id);
    }
    if (!c->api_key_b) {
        rt_case(s, "cross-tenant", RT_SKIPPED,
                "set PHX_REDTEAM_API_KEY_B (admin of another tenant)");
        return;
    }
    /* Tenant A's job and key, attacked with tenant B's admin key. */
    char *ans = NULL, path[256];
    long st = rt_bearer(c, "POST", "/v1/jobs", c->api_key, calc, &ans);
    json_t *j = ans ? json_loads(ans, 0, NULL) : NULL;
    free(ans);
    const char *jid = json_string_value(json_object_get(j, "job_id"));
    if (st != 202 || !jid) {
        rt_case(s, "cross-tenant job", RT_ERROR, "tenant A could not submit (HTTP %ld)", st);
    } else {
        snprintf(path, sizeof(path), "/v1/jobs/%s", jid);
        rt_expect(s, "cross-tenant read", rt_bearer(c, "GET", path, c->api_key_b, NULL, NULL),
                  n404);
        rt_expect(s, "cross-tenant cancel", rt_bearer(c, "DELETE", path, c->api_key_b, NULL, NULL),
                  n404);
        snprintf(path, sizeof(path), "/v1/jobs/%s/events", jid);
        rt_expect(s, "cross-tenant events", rt_bearer(c, "GET", path, c->api_key_b, NULL, NULL),
                  n404);
        /* The listing of B must not show A's job. */
        char *list = NULL;
        st = rt_bearer(c, "GET", "/v1/jobs?limit=100", c->api_key_b, NULL, &list);
        if (st == 200 && list && !strstr(list, jid))
            rt_case(s, "cross-tenant listing", RT_CONTAINED, "A's job not listed for B");
        else if (st == 200)
            rt_case(s, "cross-tenant listing", RT_ESCAPED, "A's job %s listed for tenant B", jid);
        else
            rt_case(s, "cross-tenant listing", RT_ERROR, "HTTP %ld", st);
        free(list);
    }
    json_decref(j);
    if (rt_key_new(c, c->api_key, "reader", 0, &key, &id) == 0) {
        snprintf(path, sizeof(path), "/v1/admin/keys/%s", id);
        rt_expect(s, "cross-tenant key revoke",
                  rt_bearer(c, "DELETE", path, c->api_key_b, NULL, NULL), n404);
        snprintf(path, sizeof(path), "/v1/admin/keys/%s/rotate", id);
        rt_expect(s, "cross-tenant key rotate",
                  rt_bearer(c, "POST", path, c->api_key_b, "{}", NULL), n404);
        long still = rt_bearer(c, "GET", "/v1/jobs", key, NULL, NULL);
        rt_case(s, "key survives cross-tenant revoke", still == 200 ? RT_CONTAINED : RT_ESCAPED,
                "HTTP %ld", still);
        rt_key_revoke(c, c->api_key, id);
        free(key), free(id);
    }
}

int rt_suite_auth(const rt_ctx *c, rt_suite *s)
{
    if (rt_http(c, "GET", "/v1/jobs", NULL, NULL, 0, NULL) == 0) {
        rt_case(s, "ingress", RT_ERROR, "%s does not answer (set PHX_INGRESS_URL)", c->ingress);
        return 0;
    }
    rt_auth_anonymous(c, s);
    if (c->api_key)
        rt_auth_keys(c, s);
    else
        rt_case(s, "key replay, scopes, cross-tenant", RT_SKIPPED,
                "set PHX_REDTEAM_API_KEY (admin)");
    return 0;
}
