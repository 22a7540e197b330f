/* apikey.c -- API key storage and lifecycle in Redis (see apikey.h). */
#include "apikey.h"
#include "jobstore.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PHX_KEY_APIKEYS "phx:apikeys"

void phx_apikey_clear(phx_apikey *k)
{
    free(k->tenant);
    free(k->principal);
    free(k->roles);
    memset(k, 0, sizeof(*k));
}

int phx_apikey_generate(char out[PHX_APIKEY_LEN + 1])
{
    unsigned char raw[24];
    if (phx_random_bytes(raw, sizeof(raw)) < 0)
        return -1;
    /* The "phx_" prefix makes a leaked key recognisable to secret scanners and to redaction. */
    memcpy(out, "phx_", 4); // NOLINT(bugprone-not-null-terminated-result): snprintf below ends it
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 4 + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

static void phx_apikey_hash(const char *secret, char h[65])
{
    phx_sha256_hex(secret, strlen(secret), h);
}

void phx_apikey_id(const char *secret, char id[17])
{
    char h[65];
    phx_apikey_hash(secret, h);
    memcpy(id, h, 16);
    id[16] = '\0';
}

static void phx_apikey_rkey(char *buf, size_t n, const char *hash)
{
    snprintf(buf, n, "phx:apikey:%s", hash);
}

int phx_apikey_create(phx_redis *r, const char *secret, const char *tenant, const char *principal,
                      const char *roles, int64_t expires_ms, phx_err *err)
{
    char h[65], k[128], id[17], pk[400];
    phx_apikey_hash(secret, h);
    memcpy(id, h, 16);
    id[16] = '\0';
    phx_apikey_rkey(k, sizeof(k), h);
    redisReply *rep = phx_redis_cmd(
        r, err, "HSET %s id %s tenant %s principal %s roles %s created_ms %lld expires_ms %lld", k,
        id, tenant, principal, roles, (long long)phx_now_ms(), (long long)expires_ms);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    if (!(rep = phx_redis_cmd(r, err, "HSET %s %s %s", PHX_KEY_APIKEYS, id, h)))
        return -1;
    freeReplyObject(rep);
    phx_key_principal(pk, sizeof(pk), tenant, principal);
    if (!(rep = phx_redis_cmd(r, err, "HSET %s roles %s", pk, roles)))
        return -1;
    freeReplyObject(rep);
    return 0;
}

static char *phx_apikey_field(const redisReply *rep, size_t i)
{
    return phx_xstrdup(i < rep->elements && rep->element[i]->type == REDIS_REPLY_STRING
                           ? rep->element[i]->str
                           : "");
}

static int64_t phx_apikey_int(const redisReply *rep, size_t i)
{
    return i < rep->elements && rep->element[i]->type == REDIS_REPLY_STRING
               ? strtoll(rep->element[i]->str, NULL, 10)
               : 0;
}

/* Read the hash at Redis key k into out. 1 found, 0 absent, -1 error. */
static int phx_apikey_read(phx_redis *r, const char *k, phx_apikey *out, phx_err *err)
{
    redisReply *rep = phx_redis_cmd(
        r, err, "HMGET %s tenant principal roles created_ms expires_ms revoked_ms id", k);
    if (!rep)
        return -1;
    int found = rep->elements == 7 && rep->element[0]->type == REDIS_REPLY_STRING;
    if (found) {
        out->tenant = phx_apikey_field(rep, 0);
        out->principal = phx_apikey_field(rep, 1);
        out->roles = phx_apikey_field(rep, 2);
        out->created_ms = phx_apikey_int(rep, 3);
        out->expires_ms = phx_apikey_int(rep, 4);
        out->revoked_ms = phx_apikey_int(rep, 5);
        if (rep->element[6]->type == REDIS_REPLY_STRING)
            snprintf(out->id, sizeof(out->id), "%s", rep->element[6]->str);
    }
    freeReplyObject(rep);
    return found;
}

static const char *phx_apikey_state(const phx_apikey *k, int64_t now_ms)
{
    if (k->revoked_ms && k->revoked_ms <= now_ms)
        return "revoked";
    if (k->expires_ms && k->expires_ms <= now_ms)
        return "expired";
    return "active";
}

int phx_apikey_lookup(phx_redis *r, const char *secret, int64_t now_ms, phx_apikey *out,
                      phx_err *err)
{
    char h[65], k[128];
    memset(out, 0, sizeof(*out));
    phx_apikey_hash(secret, h);
    phx_apikey_rkey(k, sizeof(k), h);
    int rc = phx_apikey_read(r, k, out, err);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        phx_err_set(err, "unauthorized", 0, "unknown API key");
        return -1;
    }
    const char *st = phx_apikey_state(out, now_ms);
    if (strcmp(st, "active") != 0) {
        phx_err_set(err, "unauthorized", 0, "%s API key", st);
        phx_apikey_clear(out);
        return -1;
    }
    if (!out->id[0])
        memcpy(out->id, h, 16); /* a key stored before ids existed */
    return 0;
}

static json_t *phx_apikey_json(const phx_apikey *k, int64_t now_ms)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "id", k->id, "tenant", k->tenant,
                          "principal", k->principal, "roles", k->roles, "created_ms",
                          (json_int_t)k->created_ms, "state", phx_apikey_state(k, now_ms));
    if (k->expires_ms)
        json_object_set_new(o, "expires_ms", json_integer(k->expires_ms));
    if (k->revoked_ms)
        json_object_set_new(o, "revoked_ms", json_integer(k->revoked_ms));
    return o;
}

/* Resolve id to its Redis key and record, restricted to tenant when not NULL. */
static int phx_apikey_find(phx_redis *r, const char *id, const char *tenant, char *k, size_t klen,
                           phx_apikey *out, phx_err *err)
{
    memset(out, 0, sizeof(*out));
    redisReply *rep = phx_redis_cmd(r, err, "HGET %s %s", PHX_KEY_APIKEYS, id);
    if (!rep)
        return -1;
    int have = rep->type == REDIS_REPLY_STRING;
    if (have)
        phx_apikey_rkey(k, klen, rep->str);
    freeReplyObject(rep);
    if (!have)
        return 0;
    int rc = phx_apikey_read(r, k, out, err);
    if (rc > 0 && tenant && strcmp(out->tenant, tenant) != 0) {
        phx_apikey_clear(out); /* another tenant's key is not there, as far as we say */
        return 0;
    }
    if (rc > 0 && !out->id[0])
        snprintf(out->id, sizeof(out->id), "%s", id);
    return rc;
}

json_t *phx_apikey_list(phx_redis *r, const char *tenant, int64_t now_ms, phx_err *err)
{
    redisReply *rep = phx_redis_cmd(r, err, "HKEYS %s", PHX_KEY_APIKEYS);
    if (!rep)
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; i < rep->elements; i++) {
        char k[128];
        phx_apikey key;
        int rc = phx_apikey_find(r, rep->element[i]->str, tenant, k, sizeof(k), &key, err);
        if (rc < 0) {
            phx_apikey_clear(&key);
            json_decref(a);
            a = NULL;
            break;
        }
        if (rc > 0)
            json_array_append_new(a, phx_apikey_json(&key, now_ms));
        phx_apikey_clear(&key);
    }
    freeReplyObject(rep);
    return a;
}

int phx_apikey_revoke(phx_redis *r, const char *id, const char *tenant, int64_t now_ms,
                      phx_err *err)
{
    char k[128];
    phx_apikey key;
    int rc = phx_apikey_find(r, id, tenant, k, sizeof(k), &key, err);
    phx_apikey_clear(&key);
    if (rc <= 0)
        return rc;
    redisReply *rep = phx_redis_cmd(r, err, "HSET %s revoked_ms %lld", k, (long long)now_ms);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    return 1;
}

int phx_apikey_rotate(phx_redis *r, const char *id, const char *tenant, int64_t now_ms,
                      int64_t grace_ms, char new_secret[PHX_APIKEY_LEN + 1], phx_err *err)
{
    char k[128];
    phx_apikey key;
    int rc = phx_apikey_find(r, id, tenant, k, sizeof(k), &key, err);
    if (rc <= 0)
        goto out;
    if (strcmp(phx_apikey_state(&key, now_ms), "active") != 0) {
        rc = 0;
        goto out;
    }
    if (phx_apikey_generate(new_secret) < 0) {
        phx_err_set(err, "internal", 0, "no randomness available");
        rc = -1;
        goto out;
    }
    /* New key first: a crash in between leaves two working keys, never none. */
    rc = -1;
    if (phx_apikey_create(r, new_secret, key.tenant, key.principal, key.roles, key.expires_ms,
                          err) < 0)
        goto out;
    int64_t until = now_ms + grace_ms;
    if (key.expires_ms && key.expires_ms < until)
        until = key.expires_ms;
    redisReply *rep = phx_redis_cmd(r, err, "HSET %s expires_ms %lld", k, (long long)until);
    if (!rep)
        goto out;
    freeReplyObject(rep);
    rc = 1;
out:
    phx_apikey_clear(&key);
    return rc;
}

/* --- the lookup cache (see apikey.h) ----------------------------------------------------- */

typedef struct phx_apikey_slot {
    char hash[65]; /* "" when empty */
    phx_apikey key;
    int64_t loaded_mono_ms;
} phx_apikey_slot;

struct phx_apikey_cache {
    pthread_mutex_t mu;
    int64_t ttl_ms;
    unsigned long gen; /* bumped by every forget */
    size_t mask;
    phx_apikey_slot *slots;
};

phx_apikey_cache *phx_apikey_cache_new(int64_t ttl_ms, size_t slots)
{
    size_t n = 1;
    while (n < slots)
        n <<= 1;
    phx_apikey_cache *c = phx_xcalloc(1, sizeof(*c));
    c->slots = phx_xcalloc(n, sizeof(*c->slots));
    c->mask = n - 1;
    c->ttl_ms = ttl_ms;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void phx_apikey_cache_free(phx_apikey_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i <= c->mask; i++)
        phx_apikey_clear(&c->slots[i].key);
    free(c->slots);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* The slot of a hash: its first 8 hex digits are as uniform as any other bits of SHA-256. */
static phx_apikey_slot *phx_apikey_cache_slot(phx_apikey_cache *c, const char h[65])
{
    char head[9];
    memcpy(head, h, 8);
    head[8] = '\0';
    return &c->slots[strtoul(head, NULL, 16) & c->mask];
}

static void phx_apikey_copy(phx_apikey *dst, const phx_apikey *src)
{
    *dst = *src;
    dst->tenant = phx_xstrdup(src->tenant ? src->tenant : "");
    dst->principal = phx_xstrdup(src->principal ? src->principal : "");
    dst->roles = phx_xstrdup(src->roles ? src->roles : "");
}

int phx_apikey_cache_get(phx_apikey_cache *c, const char *secret, int64_t now_ms, int64_t mono_ms,
                         phx_apikey *out, phx_apikey_ticket *t)
{
    memset(out, 0, sizeof(*out));
    t->mono_ms = mono_ms;
    t->gen = 0;
    if (!c || c->ttl_ms <= 0)
        return 0;
    char h[65];
    phx_apikey_hash(secret, h);
    int hit = 0;
    pthread_mutex_lock(&c->mu);
    t->gen = c->gen;
    phx_apikey_slot *s = phx_apikey_cache_slot(c, h);
    /* A plain comparison is fine: both sides are SHA-256 digests, and how many leading digits
     * of a digest match a cached one says nothing about any secret. */
    if (s->hash[0] && strcmp(s->hash, h) == 0) {
        if (mono_ms - s->loaded_mono_ms < c->ttl_ms &&
            strcmp(phx_apikey_state(&s->key, now_ms), "active") == 0) {
            phx_apikey_copy(out, &s->key);
            hit = 1;
        } else {
            /* Stale or expired: Redis has the final word (and its message). */
            phx_apikey_clear(&s->key);
            s->hash[0] = '\0';
        }
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void phx_apikey_cache_put(phx_apikey_cache *c, const char *secret, const phx_apikey *k,
                          const phx_apikey_ticket *t)
{
    if (!c || c->ttl_ms <= 0)
        return;
    char h[65];
    phx_apikey_hash(secret, h);
    pthread_mutex_lock(&c->mu);
    if (t->gen == c->gen) {
        phx_apikey_slot *s = phx_apikey_cache_slot(c, h);
        phx_apikey_clear(&s->key);
        phx_apikey_copy(&s->key, k);
        memcpy(s->hash, h, sizeof(s->hash));
        s->loaded_mono_ms = t->mono_ms;
    }
    pthread_mutex_unlock(&c->mu);
}

void phx_apikey_cache_forget(phx_apikey_cache *c, const char *id)
{
    if (!c)
        return;
    /* By id, not by secret (the revoking admin does not hold it): a scan of the table, which
     * only an admin's revoke or rotate pays for. */
    pthread_mutex_lock(&c->mu);
    c->gen++;
    for (size_t i = 0; i <= c->mask; i++) {
        phx_apikey_slot *s = &c->slots[i];
        if (s->hash[0] && strcmp(s->key.id, id) == 0) {
            phx_apikey_clear(&s->key);
            s->hash[0] = '\0';
        }
    }
    pthread_mutex_unlock(&c->mu);
}
