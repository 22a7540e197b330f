/* usage.c -- usage counters summed in the process, flushed to Redis (see usage.h).
 *
 * The table is open addressing over (key, field) with a fixed size: a flush interval sees a
 * handful of tenants and kinds, and a fixed table keeps the worst case (a burst of distinct
 * tenants) bounded in memory -- past PHX_USAGE_FILL entries phx_usage_add says full and the
 * caller writes its count at once, so nothing is dropped and nothing grows. */
#include "usage.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHX_USAGE_SLOTS 512
#define PHX_USAGE_FILL  384 /* 3/4 of the slots: probes stay short */

typedef struct phx_usage_entry {
    char key[160];  /* phx:usage:{TENANT}:YYYYMMDD (a tenant id is at most 128 bytes) */
    char field[96]; /* KIND:calls, KIND:errors, KIND:limited, KIND:bytes */
    long long n;    /* 0 = empty slot */
} phx_usage_entry;

struct phx_usage {
    pthread_mutex_t mu;
    int used;
    phx_usage_entry slot[PHX_USAGE_SLOTS];
};

phx_usage *phx_usage_new(void)
{
    phx_usage *u = phx_xcalloc(1, sizeof(*u));
    pthread_mutex_init(&u->mu, NULL);
    return u;
}

void phx_usage_free(phx_usage *u)
{
    if (!u)
        return;
    if (u->used > 0)
        phx_log_error("tool usage: %d counters were never written to Redis", u->used);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

/* FNV-1a over key and field. */
static unsigned phx_usage_hash(const char *key, const char *field)
{
    static const unsigned char sep = 0xff; /* keeps ("ab","c") apart from ("a","bc") */
    uint32_t h = phx_fnv32(PHX_FNV32_BASIS, key, strlen(key));
    h = phx_fnv32(h, &sep, 1);
    return phx_fnv32(h, field, strlen(field));
}

/* Add under u->mu. */
static int phx_usage_add_locked(phx_usage *u, const char *key, const char *field, long long n)
{
    unsigned i = phx_usage_hash(key, field) % PHX_USAGE_SLOTS;
    for (int probes = 0; probes < PHX_USAGE_SLOTS; probes++, i = (i + 1) % PHX_USAGE_SLOTS) {
        phx_usage_entry *e = &u->slot[i];
        if (e->n == 0) {
            if (u->used >= PHX_USAGE_FILL)
                return -1;
            snprintf(e->key, sizeof(e->key), "%s", key);
            snprintf(e->field, sizeof(e->field), "%s", field);
            e->n = n;
            u->used++;
            return 0;
        }
        if (strcmp(e->key, key) == 0 && strcmp(e->field, field) == 0) {
            e->n += n;
            return 0;
        }
    }
    return -1;
}

int phx_usage_add(phx_usage *u, const char *key, const char *field, long long n)
{
    /* Names that would not fit a slot are written at once by the caller, never truncated. */
    if (n <= 0 || strlen(key) >= sizeof(u->slot[0].key) ||
        strlen(field) >= sizeof(u->slot[0].field))
        return n == 0 ? 0 : -1;
    pthread_mutex_lock(&u->mu);
    int rc = phx_usage_add_locked(u, key, field, n);
    pthread_mutex_unlock(&u->mu);
    return rc;
}

/* Take every count out of the table (the caller owns *out, *nout entries). */
static void phx_usage_take(phx_usage *u, phx_usage_entry **out, int *nout)
{
    *out = NULL;
    *nout = 0;
    pthread_mutex_lock(&u->mu);
    if (u->used > 0) {
        *out = phx_xcalloc((size_t)u->used, sizeof(**out));
        for (int i = 0; i < PHX_USAGE_SLOTS; i++)
            if (u->slot[i].n) {
                (*out)[(*nout)++] = u->slot[i];
                u->slot[i].n = 0;
            }
        u->used = 0;
    }
    pthread_mutex_unlock(&u->mu);
}

/* Sort by key, so each key's fields are adjacent and its EXPIRE follows them. */
static int phx_usage_cmp(const void *a, const void *b)
{
    return strcmp(((const phx_usage_entry *)a)->key, ((const phx_usage_entry *)b)->key);
}

/* Sum e[0..n-1] back into the table (a flush Redis did not take). Returns how many could not
 * be kept (the table filled meanwhile). */
static int phx_usage_putback(phx_usage *u, const phx_usage_entry *e, int n)
{
    int lost = 0;
    pthread_mutex_lock(&u->mu);
    for (int i = 0; i < n; i++)
        if (phx_usage_add_locked(u, e[i].key, e[i].field, e[i].n) < 0)
            lost++;
    pthread_mutex_unlock(&u->mu);
    return lost;
}

/* One pipeline: the HINCRBYs of e[from..to-1], and the EXPIRE of each key once its last field
 * is in. Commands per pipeline stay within PHX_REDIS_PIPELINE_MAX (the caller chose to). */
static int phx_usage_send(phx_redis *r, const phx_usage_entry *e, int from, int to, const char *ttl,
                          phx_err *err)
{
    phx_redis_call calls[PHX_REDIS_PIPELINE_MAX] = {{0}};
    const char *argv[PHX_REDIS_PIPELINE_MAX][4];
    char num[PHX_REDIS_PIPELINE_MAX][24];
    redisReply *rep[PHX_REDIS_PIPELINE_MAX];
    int n = 0;
    for (int i = from; i < to; i++) {
        snprintf(num[n], sizeof(num[n]), "%lld", e[i].n);
        argv[n][0] = "HINCRBY", argv[n][1] = e[i].key, argv[n][2] = e[i].field, argv[n][3] = num[n];
        calls[n] = (phx_redis_call){NULL, 0, 4, argv[n], NULL};
        n++;
        if (i + 1 == to || strcmp(e[i + 1].key, e[i].key) != 0) {
            argv[n][0] = "EXPIRE", argv[n][1] = e[i].key, argv[n][2] = ttl;
            calls[n] = (phx_redis_call){NULL, 0, 3, argv[n], NULL};
            n++;
        }
    }
    if (phx_redis_pipeline(r, calls, n, rep, err) < 0)
        return -1;
    for (int i = 0; i < n; i++)
        freeReplyObject(rep[i]);
    return 0;
}

int phx_usage_flush(phx_usage *u, phx_redis *r, long ttl_s, phx_err *err)
{
    phx_usage_entry *e;
    int n, rc = 0;
    phx_usage_take(u, &e, &n);
    if (n == 0)
        return 0;
    qsort(e, (size_t)n, sizeof(*e), phx_usage_cmp);
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%ld", ttl_s);
    /* Chunks of entries whose commands (one HINCRBY each, one EXPIRE per key ending in the
     * chunk, at worst one per entry) fit one pipeline. */
    const int per = PHX_REDIS_PIPELINE_MAX / 2;
    for (int from = 0; from < n; from += per) {
        int to = from + per < n ? from + per : n;
        if (phx_usage_send(r, e, from, to, ttl, err) == 0)
            continue;
        if (err->retryable) {
            /* Redis did not answer: keep this chunk and the rest for the next flush. */
            int lost = phx_usage_putback(u, e + from, n - from);
            if (lost)
                phx_log_error("tool usage: %d counters lost, the table filled while Redis was "
                              "unreachable",
                              lost);
        } else {
            /* An error reply: the other commands of the chunk ran; the refused one never will. */
            phx_log_error("tool usage: Redis refused a counter of %s: %s; its count is dropped",
                          e[from].key, err->message);
            phx_metric_add(phx_counter("phx_tool_usage_dropped_total",
                                       "Usage flushes Redis refused with an error reply (their "
                                       "refused counter is lost).",
                                       NULL),
                           1);
            continue;
        }
        rc = -1;
        break;
    }
    free(e);
    return rc;
}
