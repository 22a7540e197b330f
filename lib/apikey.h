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
 * useless for authenticating. A lookup may be cached for at most a second (phx_apikey_cache
 * below), so a revocation takes effect within that long on every ingress replica. Creating a
 * key also records its roles as the
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

/* A process's cache of successful lookups: a busy ingress asks Redis about the same few keys
 * thousands of times a second, and that round trip was a quarter of a request's cost.
 *
 * An entry is trusted for ttl_ms after it was read from Redis, so a revocation or rotation
 * made anywhere (another replica, the CLI) takes effect on every replica within ttl_ms; the
 * option that sets it is capped at 1000 (the rule "revocation effective across all replicas
 * within one second"). A key's own expiry is checked against the cached expires_ms at every
 * use, so an expiring key stops at its exact time as before. Only keys that authenticated are
 * cached: an unknown, revoked or expired key is asked about every time (as before), and a flood
 * of made-up keys cannot evict the real ones. Entries are keyed by the secret's SHA-256 (the
 * secret itself is never kept) over a fixed, direct-mapped table: bounded memory, and two keys
 * that share a slot simply take turns. Thread-safe (one mutex, held for a few copies). */
typedef struct phx_apikey_cache phx_apikey_cache;

/* slots: table size (rounded up to a power of two). ttl_ms 0 = a cache that never hits. */
phx_apikey_cache *phx_apikey_cache_new(int64_t ttl_ms, size_t slots);
void phx_apikey_cache_free(phx_apikey_cache *c);
/* What a miss hands to the put that follows it: when the question to Redis was asked (an
 * entry's age counts from then), and the cache's generation then (a forget in between means
 * the answer may predate a revocation, so it is not kept). */
typedef struct phx_apikey_ticket {
    int64_t mono_ms;
    unsigned long gen;
} phx_apikey_ticket;

/* 1 with *out filled (a copy; phx_apikey_clear it) when secret was read within ttl_ms
 * (mono_ms: monotonic clock) and is still active at now_ms (wall clock); 0 otherwise, with t
 * filled: ask Redis with phx_apikey_lookup, then hand an active key to phx_apikey_cache_put. */
int phx_apikey_cache_get(phx_apikey_cache *c, const char *secret, int64_t now_ms, int64_t mono_ms,
                         phx_apikey *out, phx_apikey_ticket *t);
/* Remember k, the active key of secret, as Redis answered after the miss that gave t. */
void phx_apikey_cache_put(phx_apikey_cache *c, const char *secret, const phx_apikey *k,
                          const phx_apikey_ticket *t);
/* Forget key id at once (this replica revoked or rotated it), including an answer about it
 * still on its way from Redis. */
void phx_apikey_cache_forget(phx_apikey_cache *c, const char *id);

#endif
