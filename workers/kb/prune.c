/* prune.c -- TTL expiry, capacity enforcement, leases (see prune.h). */
#include "prune.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHX_KB_LOCK_MS 60000
#define PHX_KB_DAY_MS  86400000.0

static const phx_script phx_kb_unlock_lua = {
    "kb_unlock",
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n",
};

typedef struct phx_kb_cand {
    char *id;
    uint32_t crc;
    double rank;
    int64_t last;
} phx_kb_cand;

static int phx_kb_cand_cmp(const void *a, const void *b)
{
    const phx_kb_cand *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    if (x->last != y->last)
        return x->last < y->last ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* Rank every live record and delete the lowest down to the capacity. */
static long phx_kb_evict(phx_kb_app *app, phx_kb_coll *c, phx_redis *r, phx_err *err)
{
    char khits[160], kseen[160];
    phx_kb_key(khits, sizeof(khits), c->name, "hits");
    phx_kb_key(kseen, sizeof(kseen), c->name, "seen");
    redisReply *hits = phx_redis_cmd(r, err, "HGETALL %s", khits);
    redisReply *seen = hits ? phx_redis_cmd(r, err, "HGETALL %s", kseen) : NULL;
    if (!seen) {
        if (hits)
            freeReplyObject(hits);
        return -1;
    }
    long evicted = 0;
    int64_t now = phx_now_ms();
    pthread_rwlock_rdlock(&c->lock);
    size_t n = c->idx.n;
    if ((long)n <= c->capacity) {
        pthread_rwlock_unlock(&c->lock);
        goto out;
    }
    /* Counters by slot: the index maps ids to slots, so one pass over each reply suffices. */
    long *h = phx_xcalloc(n, sizeof(*h));
    int64_t *s = phx_xcalloc(n, sizeof(*s));
    long maxh = 0;
    for (size_t i = 0; i + 1 < hits->elements; i += 2) {
        long slot = phx_kb_index_find(&c->idx, hits->element[i]->str);
        if (slot >= 0) {
            h[slot] = strtol(hits->element[i + 1]->str, NULL, 10);
            if (h[slot] > maxh)
                maxh = h[slot];
        }
    }
    for (size_t i = 0; i + 1 < seen->elements; i += 2) {
        long slot = phx_kb_index_find(&c->idx, seen->element[i]->str);
        if (slot >= 0)
            s[slot] = strtoll(seen->element[i + 1]->str, NULL, 10);
    }
    phx_kb_cand *cand = phx_xcalloc(n, sizeof(*cand));
    for (size_t i = 0; i < n; i++) {
        const phx_kb_item *it = &c->idx.items[i];
        int64_t last = it->updated_ms > s[i] ? it->updated_ms : s[i];
        double rec = pow(0.5, (double)(now > last ? now - last : 0) / PHX_KB_DAY_MS);
        double freq = maxh > 0 ? log1p((double)h[i]) / log1p((double)maxh) : 0;
        cand[i].id = phx_xstrdup(it->id);
        cand[i].crc = it->crc;
        cand[i].last = last;
        if (c->policy == PHX_KB_LRU)
            cand[i].rank = (double)last;
        else if (c->policy == PHX_KB_LFU)
            cand[i].rank = (double)h[i];
        else
            cand[i].rank = 0.4 * it->importance + 0.3 * rec + 0.3 * freq;
    }
    pthread_rwlock_unlock(&c->lock);
    qsort(cand, n, sizeof(*cand), phx_kb_cand_cmp);
    size_t nv = n - (size_t)c->capacity;
    const char **ids = phx_xcalloc(nv, sizeof(*ids));
    uint32_t *crcs = phx_xcalloc(nv, sizeof(*crcs));
    for (size_t i = 0; i < nv; i++) {
        ids[i] = cand[i].id;
        crcs[i] = cand[i].crc;
    }
    evicted = phx_kb_delete(app, c, r, ids, crcs, (int)nv, err);
    for (size_t i = 0; i < n; i++)
        free(cand[i].id);
    free(cand);
    free(ids);
    free(crcs);
    free(h);
    free(s);
out:
    freeReplyObject(hits);
    freeReplyObject(seen);
    return evicted;
}

int phx_kb_prune(phx_kb_app *app, phx_kb_coll *c, phx_redis *r, long wait_ms,
                 phx_kb_prune_stats *st, phx_err *err)
{
    char klock[160];
    phx_kb_key(klock, sizeof(klock), c->name, "prune_lock");
    memset(st, 0, sizeof(*st));
    int64_t until = phx_mono_ms() + wait_ms;
    for (;;) {
        redisReply *rep =
            phx_redis_cmd(r, err, "SET %s %s NX PX %d", klock, app->worker, PHX_KB_LOCK_MS);
        if (!rep)
            return -1;
        int got = rep->type == REDIS_REPLY_STATUS;
        freeReplyObject(rep);
        if (got)
            break;
        if (phx_mono_ms() >= until)
            return 1;
        phx_sleep_ms(50);
    }
    int rc = -1;
    if ((st->expired = phx_kb_expire(app, c, r, phx_now_ms(), err)) < 0)
        goto unlock;
    /* Rank on an index that includes every acknowledged write and none of the expired. */
    if (phx_kb_sync(app, c, r, err) < 0)
        goto unlock;
    if (c->capacity > 0 && c->policy != PHX_KB_NONE &&
        (st->evicted = phx_kb_evict(app, c, r, err)) < 0)
        goto unlock;
    if (phx_kb_sync(app, c, r, err) < 0)
        goto unlock;
    rc = 0;
    if (st->expired || st->evicted) {
        phx_log_info("kb %s: pruned %ld expired and %ld over capacity (%s policy)", c->name,
                     st->expired, st->evicted, phx_kb_policy_name(c->policy));
        char labels[120];
        snprintf(labels, sizeof(labels), "collection=\"%s\",reason=\"ttl\"", c->name);
        phx_metric_add(phx_counter("phx_kb_pruned_total", "Records deleted by pruning.", labels),
                       (double)st->expired);
        snprintf(labels, sizeof(labels), "collection=\"%s\",reason=\"capacity\"", c->name);
        phx_metric_add(phx_counter("phx_kb_pruned_total", "Records deleted by pruning.", labels),
                       (double)st->evicted);
    }
unlock:;
    phx_err e2;
    const char *argv[2] = {klock, app->worker};
    redisReply *rep = phx_redis_eval(r, &phx_kb_unlock_lua, 1, 2, argv, NULL, &e2);
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int phx_kb_prune_due(phx_kb_app *app, phx_redis *r, phx_err *err)
{
    pthread_mutex_lock(&app->mu);
    int n = app->ncolls;
    phx_kb_coll **cs = phx_xcalloc((size_t)n + 1, sizeof(*cs));
    if (n > 0)
        memcpy(cs, app->colls, (size_t)n * sizeof(*cs));
    pthread_mutex_unlock(&app->mu);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        /* Catching up first also notices a dropped collection (and retires it): no lease is
         * taken in the name of a collection that is gone. */
        phx_err e;
        phx_err_clear(&e);
        if (phx_kb_sync(app, cs[i], r, &e) < 0) {
            if (e.retryable) {
                *err = e;
                rc = -1;
            }
            continue;
        }
        char kdue[160];
        phx_kb_key(kdue, sizeof(kdue), cs[i]->name, "prune_due");
        redisReply *rep =
            phx_redis_cmd(r, err, "SET %s %s NX PX %ld", kdue, app->worker, app->prune_interval_ms);
        if (!rep) {
            rc = -1;
            break;
        }
        int won = rep->type == REDIS_REPLY_STATUS;
        freeReplyObject(rep);
        phx_kb_prune_stats st;
        if (won && phx_kb_prune(app, cs[i], r, 0, &st, err) < 0)
            rc = -1;
    }
    free(cs);
    return rc;
}
