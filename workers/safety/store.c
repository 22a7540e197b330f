/* store.c -- cached, hot-reloaded policies (see store.h).
 *
 * One mutex guards the cache; Redis calls happen outside it (they may block for the Redis
 * timeout) and their results are installed under it. Entries are never freed while a scan
 * holds a reference: the cache owns one reference, each lookup adds one. */
#include "store.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PHX_STORE_MAX 256 /* cached names; beyond it the oldest entry is dropped */

typedef struct phx_store_entry {
    char name[80];
    phx_safety_policy *pol; /* NULL = no such document (negative cache) */
    long long gen;          /* store generation it was loaded in */
} phx_store_entry;

struct phx_safety_store {
    pthread_mutex_t mu;
    const phx_schema *schema;
    long check_ms;
    int64_t last_check;
    long long seen_version; /* value of the version key last seen, -1 = none */
    long long gen;          /* bumped on every version change or invalidate */
    int force;
    phx_store_entry e[PHX_STORE_MAX];
    int n;
    phx_safety_policy *builtin;
};

phx_safety_store *phx_safety_store_new(const phx_schema *schema, long check_ms)
{
    phx_safety_store *s = calloc(1, sizeof(*s));
    phx_err err;
    if (!s || !(s->builtin = phx_safety_policy_new(NULL, NULL, &err))) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->schema = schema;
    s->check_ms = check_ms;
    s->seen_version = -1;
    s->force = 1;
    return s;
}

void phx_safety_store_free(phx_safety_store *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        phx_safety_policy_release(s->e[i].pol);
    phx_safety_policy_release(s->builtin);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void phx_safety_store_invalidate(phx_safety_store *s)
{
    __atomic_store_n(&s->force, 1, __ATOMIC_RELAXED);
}

/* Read the version key when due; bump the generation when it moved. */
static void phx_store_check(phx_safety_store *s, phx_redis *r)
{
    int64_t now = phx_mono_ms();
    int force = __atomic_exchange_n(&s->force, 0, __ATOMIC_RELAXED);
    pthread_mutex_lock(&s->mu);
    int due = force || now - s->last_check >= s->check_ms;
    if (due)
        s->last_check = now;
    pthread_mutex_unlock(&s->mu);
    if (!due)
        return;
    phx_err err;
    redisReply *rep = phx_redis_cmd(r, &err, "GET %s", PHX_SAFETY_POLICY_VERSION);
    if (!rep) {
        if (force)
            __atomic_store_n(&s->force, 1, __ATOMIC_RELAXED);
        return; /* keep what we have */
    }
    long long v = rep->type == REDIS_REPLY_STRING ? strtoll(rep->str, NULL, 10) : 0;
    freeReplyObject(rep);
    pthread_mutex_lock(&s->mu);
    if (force || v != s->seen_version) {
        s->seen_version = v;
        s->gen++;
        phx_log_info("safety policies: version %lld, reloading on demand", v);
    }
    pthread_mutex_unlock(&s->mu);
}

static phx_store_entry *phx_store_find(phx_safety_store *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->e[i].name, name) == 0)
            return &s->e[i];
    return NULL;
}

/* Look one name up: cached if current, else loaded. *found = 0 when there is no document.
 * Returns a new reference (or NULL when not found), or sets err on a Redis failure with
 * nothing cached. */
static phx_safety_policy *phx_store_lookup(phx_safety_store *s, phx_redis *r, const char *name,
                                           int *found, phx_err *err)
{
    *found = 0;
    pthread_mutex_lock(&s->mu);
    phx_store_entry *e = phx_store_find(s, name);
    if (e && e->gen == s->gen) {
        *found = e->pol != NULL;
        phx_safety_policy *p = phx_safety_policy_ref(e->pol);
        pthread_mutex_unlock(&s->mu);
        return p;
    }
    long long gen = s->gen;
    pthread_mutex_unlock(&s->mu);

    phx_safety_policy *p = NULL;
    int exists = 0, keep_old = 0;
    redisReply *rep = phx_redis_cmd(r, err, "GET %s%s", PHX_SAFETY_POLICY_KEY, name);
    if (!rep) {
        keep_old = 1; /* Redis down: the cached entry, stale or not, stays in force */
    } else {
        if (rep->type == REDIS_REPLY_STRING) {
            exists = 1;
            json_error_t je;
            json_t *doc = json_loadb(rep->str, rep->len, 0, &je);
            phx_err perr;
            if (!doc)
                phx_err_set(&perr, "invalid_policy", 0, "not JSON: %s", je.text);
            else
                p = phx_safety_policy_new(doc, s->schema, &perr);
            json_decref(doc);
            if (!p) {
                keep_old = 1;
                phx_log_error("safety policy %s refused, keeping the previous one: %s", name,
                              perr.message);
                phx_metric_add(phx_counter("phx_safety_policy_errors_total",
                                           "Policy documents refused (invalid JSON or schema).",
                                           NULL),
                               1);
            }
        }
        freeReplyObject(rep);
    }
    pthread_mutex_lock(&s->mu);
    e = phx_store_find(s, name);
    if (keep_old) {
        if (e) {
            *found = e->pol != NULL;
            phx_safety_policy *old = phx_safety_policy_ref(e->pol);
            if (rep || !e->pol)
                e->gen = gen; /* invalid document: do not retry on every scan */
            pthread_mutex_unlock(&s->mu);
            return old;
        }
        pthread_mutex_unlock(&s->mu);
        if (!rep)
            return NULL; /* err already says redis_unavailable */
        /* invalid document and nothing older: fail closed with the built-in default */
        *found = exists;
        return phx_safety_policy_ref(s->builtin);
    }
    if (!e) {
        if (s->n == PHX_STORE_MAX) {
            phx_safety_policy_release(s->e[0].pol);
            memmove(&s->e[0], &s->e[1], (size_t)(s->n - 1) * sizeof(s->e[0]));
            s->n--;
        }
        e = &s->e[s->n++];
        memset(e, 0, sizeof(*e));
        snprintf(e->name, sizeof(e->name), "%s", name);
    }
    phx_safety_policy_release(e->pol);
    e->pol = p; /* the cache's reference */
    e->gen = gen;
    *found = exists;
    phx_safety_policy *ret = phx_safety_policy_ref(p);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

phx_safety_policy *phx_safety_store_get(phx_safety_store *s, phx_redis *r, const char *name,
                                        const char *tenant, phx_err *err)
{
    phx_store_check(s, r);
    int found;
    phx_err lerr;
    phx_err_clear(&lerr);
    if (name && *name) {
        phx_safety_policy *p = phx_store_lookup(s, r, name, &found, &lerr);
        if (!found) {
            phx_safety_policy_release(p);
            if (lerr.code[0]) {
                *err = lerr;
                return NULL;
            }
            phx_err_set(err, "not_found", 0, "no safety policy named %s", name);
            return NULL;
        }
        if (!phx_safety_policy_tenant_ok(p, tenant)) {
            phx_safety_policy_release(p);
            phx_err_set(err, "forbidden", 0, "safety policy %s is not available to tenant %s", name,
                        tenant ? tenant : "(none)");
            return NULL;
        }
        return p;
    }
    const char *chain[2] = {tenant, "default"};
    for (int i = 0; i < 2; i++) {
        if (!chain[i] || !*chain[i])
            continue;
        phx_safety_policy *p = phx_store_lookup(s, r, chain[i], &found, &lerr);
        if (found && p)
            return p;
        phx_safety_policy_release(p);
    }
    if (lerr.code[0] && lerr.retryable) {
        /* Redis down and nothing cached: the built-in default is safer than failing open,
         * and better than stalling every scan. */
        phx_log_warn("safety policies: %s; using the built-in default", lerr.message);
    }
    return phx_safety_policy_ref(s->builtin);
}
