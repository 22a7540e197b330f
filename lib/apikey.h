/* apikey.h -- API keys: create, look up, list, revoke, rotate (Redis, keys stored hashed).
 *
 * A key is "phx_" + 48 hex digits (192 random bits), shown once at creation. Redis keeps only
 * its SHA-256, so a copy of the database cannot be used to authenticate:
 *
 *   phx:apikey:SHA256   hash  id, tenant, principal, roles, created_ms, expires_ms (0 = never),
 *                             revoked_ms (present once revoked)
 *   phx:apikeys         hash  ID -> SHA256 (the index behind list, revoke and rotate)
 *
 * ID is the first 16 hex digits of the hash: enough to name a key in a listing or a log line,
 * useless for authenticating. Nothing caches a lookup, so a revocation takes effect at the
 * next request on every ingress replica. Creating a key also records its roles as the
 * principal's (phx:principal:TENANT:PRINCIPAL), which the planner uses for jobs that arrive
 * straight on phx.jobs naming that principal. */
#ifndef PHX_APIKEY_H
#define PHX_APIKEY_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "redis.h"

#define PHX_APIKEY_LEN 52 /* "phx_" + 48 hex */

typedef struct phx_apikey {
    char id[17];
    char *tenant, *principal, *roles;
    int64_t created_ms, expires_ms, revoked_ms;
} phx_apikey;

void phx_apikey_clear(phx_apikey *k);
/* A new random secret. 0, or -1 when no randomness is available. */
int phx_apikey_generate(char out[PHX_APIKEY_LEN + 1]);
/* The public id of a secret. */
void phx_apikey_id(const char *secret, char id[17]);

/* Store a key (and register the principal's roles). expires_ms: absolute, 0 = never. */
int phx_apikey_create(phx_redis *r, const char *secret, const char *tenant, const char *principal,
                      const char *roles, int64_t expires_ms, phx_err *err);
/* Authenticate: 0 with *out filled; -1 with err code "unauthorized" (message says unknown,
 * revoked or expired) or a Redis error. */
int phx_apikey_lookup(phx_redis *r, const char *secret, int64_t now_ms, phx_apikey *out,
                      phx_err *err);
/* The keys of tenant (NULL = all) as a JSON array of {id, tenant, principal, roles,
 * created_ms, expires_ms, revoked_ms, state}; NULL with err. */
json_t *phx_apikey_list(phx_redis *r, const char *tenant, int64_t now_ms, phx_err *err);
/* Revoke key id (restricted to tenant unless NULL). 1 revoked, 0 no such key, -1 error. */
int phx_apikey_revoke(phx_redis *r, const char *id, const char *tenant, int64_t now_ms,
                      phx_err *err);
/* Rotate key id: a new secret with the same tenant, principal, roles and expiry goes to
 * new_secret; the old one stops working grace_ms from now (0 = at once). 1, 0 no such key
 * (or revoked), -1 error. */
int phx_apikey_rotate(phx_redis *r, const char *id, const char *tenant, int64_t now_ms,
                      int64_t grace_ms, char new_secret[PHX_APIKEY_LEN + 1], phx_err *err);

#endif
