/* keys.c -- /v1/admin/keys: API key lifecycle over HTTP for principals with the admin scope.
 *
 * An admin manages the keys of its own tenant only; another tenant's key id answers 404 like
 * an unknown one. Operators with Redis access use `phx keys` for every tenant. The secret of
 * a new key appears in exactly one answer and is never logged. */
#include "apikey.h"
#include "ingress_int.h"
#include "log.h"
#include "rbac.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void phx_keys_list(const phx_ctx *c, phx_answer *a)
{
    phx_err err;
    phx_err_clear(&err);
    phx_redis *r = phx_ingress_redis_get(c->in, &err);
    json_t *keys = r ? phx_apikey_list(r, c->who->tenant, phx_now_ms(), &err) : NULL;
    if (r)
        phx_ingress_redis_put(c->in, r);
    if (!keys)
        phx_unavailable(a, err.message);
    else
        phx_ok(a, 200, json_pack("{s:o}", "keys", keys));
}

/* The new key's answer: the secret once, and the id to manage it by. */
static json_t *phx_keys_created(const char *secret, const char *tenant, const char *principal,
                                const char *roles, int64_t expires_ms)
{
    char id[17];
    phx_apikey_id(secret, id);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id, "key", secret, "tenant", tenant,
                          "principal", principal, "roles", roles);
    if (expires_ms)
        json_object_set_new(o, "expires_ms", json_integer(expires_ms));
    return o;
}

void phx_keys_create(const phx_ctx *c, phx_answer *a)
{
    json_t *b = phx_body_object(c, a), *errors = json_array();
    if (!b) {
        json_decref(errors);
        return;
    }
    const char *principal = json_string_value(json_object_get(b, "principal"));
    const char *roles = json_string_value(json_object_get(b, "roles"));
    const char *tenant = json_string_value(json_object_get(b, "tenant"));
    json_t *exp = json_object_get(b, "expires_in_s");
    char bad[64];
    if (!principal || !phx_id_valid(principal))
        json_array_append_new(errors, json_string("principal: required, [A-Za-z0-9._:-]{1,128}"));
    if (!roles || !*roles || phx_rbac_roles_valid(roles, bad, sizeof(bad)) < 0)
        json_array_append_new(errors, json_string("roles: required; admin, submitter, developer, "
                                                  "reader or scopes, comma-separated"));
    if (exp && (!json_is_integer(exp) || json_integer_value(exp) < 1))
        json_array_append_new(errors, json_string("expires_in_s: a positive integer"));
    if (json_array_size(errors)) {
        phx_problem(a, 400, "invalid_body", "Bad key request", NULL, errors);
        json_decref(b);
        return;
    }
    json_decref(errors);
    if (tenant && strcmp(tenant, c->who->tenant) != 0) {
        phx_problem(a, 403, "forbidden", "Tenant mismatch",
                    "an admin creates keys for its own tenant only", NULL);
        json_decref(b);
        return;
    }
    char secret[PHX_APIKEY_LEN + 1];
    int64_t expires_ms = exp ? phx_now_ms() + json_integer_value(exp) * 1000 : 0;
    phx_err err;
    phx_err_clear(&err);
    phx_redis *r = NULL;
    if (phx_apikey_generate(secret) < 0 || !(r = phx_ingress_redis_get(c->in, &err)) ||
        phx_apikey_create(r, secret, c->who->tenant, principal, roles, expires_ms, &err) < 0) {
        phx_unavailable(a, "the key could not be stored");
    } else {
        phx_ok(a, 201, phx_keys_created(secret, c->who->tenant, principal, roles, expires_ms));
        phx_log_info("API key %s created for %s/%s by %s",
                     json_string_value(json_object_get(a->json, "id")), c->who->tenant, principal,
                     c->who->via);
    }
    if (r)
        phx_ingress_redis_put(c->in, r);
    memset(secret, 0, sizeof(secret));
    json_decref(b);
}

void phx_keys_revoke(const phx_ctx *c, phx_answer *a)
{
    phx_err err;
    phx_err_clear(&err);
    phx_redis *r = phx_ingress_redis_get(c->in, &err);
    int rc = r ? phx_apikey_revoke(r, c->arg, c->who->tenant, phx_now_ms(), &err) : -1;
    if (r)
        phx_ingress_redis_put(c->in, r);
    if (rc > 0)
        phx_apikey_cache_forget(c->in->keys, c->arg); /* here at once; elsewhere within 1 s */
    if (rc < 0) {
        phx_unavailable(a, err.message);
    } else if (rc == 0) {
        phx_problem(a, 404, "not_found", "No such key", NULL, NULL);
    } else {
        phx_log_info("API key %s revoked by %s", c->arg, c->who->via);
        phx_ok(a, 200, json_pack("{s:s, s:s}", "id", c->arg, "state", "revoked"));
    }
}

void phx_keys_rotate(const phx_ctx *c, phx_answer *a)
{
    long grace_s = 0;
    if (c->rq->len) {
        json_t *b = phx_body_object(c, a);
        if (!b)
            return;
        json_t *g = json_object_get(b, "grace_s");
        if (g && (!json_is_integer(g) || json_integer_value(g) < 0 ||
                  json_integer_value(g) > 30 * 86400)) {
            phx_problem(a, 400, "invalid_body", "Bad rotate request",
                        "grace_s: an integer from 0 to 2592000", NULL);
            json_decref(b);
            return;
        }
        grace_s = g ? (long)json_integer_value(g) : 0;
        json_decref(b);
    }
    phx_err err;
    phx_err_clear(&err);
    char secret[PHX_APIKEY_LEN + 1];
    int64_t now = phx_now_ms();
    phx_redis *r = phx_ingress_redis_get(c->in, &err);
    int rc =
        r ? phx_apikey_rotate(r, c->arg, c->who->tenant, now, grace_s * 1000, secret, &err) : -1;
    if (r)
        phx_ingress_redis_put(c->in, r);
    if (rc > 0)
        phx_apikey_cache_forget(c->in->keys, c->arg); /* its expiry changed */
    if (rc < 0) {
        phx_unavailable(a, err.message);
    } else if (rc == 0) {
        phx_problem(a, 404, "not_found", "No such active key", NULL, NULL);
    } else {
        char id[17];
        phx_apikey_id(secret, id);
        phx_ok(a, 201,
               json_pack("{s:s, s:s, s:s, s:I}", "id", id, "key", secret, "replaces", c->arg,
                         "replaced_expires_ms", (json_int_t)now + (json_int_t)grace_s * 1000));
        phx_log_info("API key %s rotated to %s by %s", c->arg, id, c->who->via);
    }
    memset(secret, 0, sizeof(secret));
}
