/* store.c -- collections in Redis, the change log and catching up with it (see store.h). */
#include "store.h"
#include "annbuild.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* KEYS meta rec log seq ttl; ARGV gen hard_cap maxlen, then (id, record, expires_ms)... */
static const phx_script phx_kb_write_lua = {
    "kb_write",
    "if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then\n"
    "  return redis.error_reply('NOCOLL the collection was dropped or re-created')\n"
    "end\n"
    "local cap = tonumber(ARGV[2])\n"
    "if cap > 0 then\n"
    "  local new = 0\n"
    "  for i = 4, #ARGV, 3 do\n"
    "    if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then new = new + 1 end\n"
    "  end\n"
    "  local have = redis.call('HLEN', KEYS[2])\n"
    "  if have + new > cap then\n"
    "    return redis.error_reply('CAPACITY ' .. have .. ' records + ' .. new .. ' new > ' .. "
    "cap)\n"
    "  end\n"
    "end\n"
    "for i = 4, #ARGV, 3 do\n"
    "  local id = ARGV[i]\n"
    "  redis.call('HSET', KEYS[2], id, ARGV[i + 1])\n"
    "  if ARGV[i + 2] ~= '0' then redis.call('ZADD', KEYS[5], ARGV[i + 2], id)\n"
    "  else redis.call('ZREM', KEYS[5], id) end\n"
    "  local s = redis.call('INCR', KEYS[4])\n"
    "  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'seq', s, 'op', 'put', 'id', id)\n"
    "end\n"
    "return redis.call('HLEN', KEYS[2])\n",
};

/* The body shared by delete, expire and quarantine: remove id and log a del. */
#define PHX_KB_DEL_FN                                                                              \
    "local function del(id)\n"                                                                     \
    "  redis.call('HDEL', KEYS[1], id)\n"                                                          \
    "  redis.call('ZREM', KEYS[4], id)\n"                                                          \
    "  redis.call('HDEL', KEYS[5], id)\n"                                                          \
    "  redis.call('HDEL', KEYS[6], id)\n"                                                          \
    "  local s = redis.call('INCR', KEYS[3])\n"                                                    \
    "  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'seq', s, 'op', 'del', 'id', "     \
    "id)\n"                                                                                        \
    "end\n"

/* KEYS rec log seq ttl hits seen; ARGV maxlen, then (id, crc or "")... */
static const phx_script phx_kb_delete_lua = {
    "kb_delete",
    PHX_KB_DEL_FN "local n = 0\n"
                  "for i = 2, #ARGV, 2 do\n"
                  "  local v = redis.call('HGET', KEYS[1], ARGV[i])\n"
                  "  if v and (ARGV[i + 1] == '' or string.sub(v, 5, 8) == ARGV[i + 1]) then\n"
                  "    del(ARGV[i])\n"
                  "    n = n + 1\n"
                  "  end\n"
                  "end\n"
                  "return n\n",
};

/* KEYS rec log seq ttl hits seen; ARGV maxlen now limit */
static const phx_script phx_kb_expire_lua = {
    "kb_expire",
    PHX_KB_DEL_FN "local ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[2], 'LIMIT', 0, "
                  "ARGV[3])\n"
                  "for _, id in ipairs(ids) do del(id) end\n"
                  "return #ids\n",
};

/* KEYS rec log seq ttl hits seen quarantine; ARGV maxlen id bytes reason */
static const phx_script phx_kb_quarantine_lua = {
    "kb_quarantine",
    PHX_KB_DEL_FN "if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[3] then return 0 end\n"
                  "redis.call('HSET', KEYS[7], ARGV[2], ARGV[3])\n"
                  "redis.call('HSET', KEYS[7] .. ':why', ARGV[2], ARGV[4])\n"
                  "del(ARGV[2])\n"
                  "return 1\n",
};

/* KEYS rec hits seen; ARGV now, ids... */
static const phx_script phx_kb_touch_lua = {
    "kb_touch",
    "for i = 2, #ARGV do\n"
    "  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then\n"
    "    redis.call('HINCRBY', KEYS[2], ARGV[i], 1)\n"
    "    redis.call('HSET', KEYS[3], ARGV[i], ARGV[1])\n"
    "  end\n"
    "end\n"
    "return 0\n",
};

/* KEYS seq log: where the log stands now (for a rebuild to follow on from). */
static const phx_script phx_kb_mark_lua = {
    "kb_mark",
    "local s = redis.call('GET', KEYS[1]) or '0'\n"
    "local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)\n"
    "local id = '0-0'\n"
    "if last[1] then id = last[1][1] end\n"
    "return {s, id}\n",
};

/* KEYS meta log; ARGV gen last_id count. The log entries after last_id, or {0} when the
 * collection was dropped or re-created (its gen changed): checked in the same round trip. */
static const phx_script phx_kb_poll_lua = {
    "kb_poll",
    "if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then return {0} end\n"
    "return {1, redis.call('XREAD', 'COUNT', ARGV[3], 'STREAMS', KEYS[2], ARGV[2])}\n",
};

static phx_metric *phx_kb_corrupt_metric(void)
{
    return phx_counter("phx_kb_corrupt_records_total",
                       "Records that failed their check on load and were quarantined.", NULL);
}

static void phx_kb_coll_free(phx_kb_coll *c)
{
    phx_kb_index_free(&c->idx);
    pthread_mutex_destroy(&c->sync_mu);
    pthread_rwlock_destroy(&c->lock);
    free(c);
}

void phx_kb_app_free(phx_kb_app *app)
{
    for (int i = 0; i < app->ncolls; i++)
        phx_kb_coll_free(app->colls[i]);
    for (int i = 0; i < app->nretired; i++)
        phx_kb_coll_free(app->retired[i]);
    free(app->colls);
    free(app->retired);
    app->colls = app->retired = NULL;
    app->ncolls = app->capcolls = app->nretired = app->capretired = 0;
}

static long phx_kb_field_long(const redisReply *h, const char *name, long def)
{
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (strcmp(h->element[i]->str, name) == 0)
            return strtol(h->element[i + 1]->str, NULL, 10);
    return def;
}

static const char *phx_kb_field(const redisReply *h, const char *name)
{
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (strcmp(h->element[i]->str, name) == 0)
            return h->element[i + 1]->str;
    return NULL;
}

/* Read collection name's settings from its meta hash into a new phx_kb_coll. */
static phx_kb_coll *phx_kb_coll_load(phx_kb_app *app, phx_redis *r, const char *name, phx_err *err)
{
    char key[160];
    phx_kb_key(key, sizeof(key), name, "meta");
    redisReply *h = phx_redis_cmd(r, err, "HGETALL %s", key);
    if (!h)
        return NULL;
    phx_kb_coll *c = NULL;
    const char *gen = phx_kb_field(h, "gen");
    int metric = phx_kb_metric_parse(phx_kb_field(h, "metric"));
    int policy = phx_kb_policy_parse(phx_kb_field(h, "policy"));
    long dim = phx_kb_field_long(h, "dim", 0);
    if (h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
        phx_err_set(err, "no_collection", 0,
                    "no collection %s (create it with: phx kb create %s --dim N)", name, name);
        goto out;
    }
    if (!gen || metric < 0 || policy < 0 || dim < 1 || dim > PHX_KB_MAX_DIM) {
        phx_err_set(err, "bad_collection", 0, "collection %s has damaged settings in %s", name,
                    key);
        goto out;
    }
    c = phx_xcalloc(1, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", name);
    snprintf(c->gen, sizeof(c->gen), "%s", gen);
    c->dim = (int)dim;
    c->metric = metric;
    c->policy = policy;
    c->capacity = phx_kb_field_long(h, "capacity", 0);
    c->ttl_s = phx_kb_field_long(h, "ttl_s", 0);
    pthread_mutex_init(&c->sync_mu, NULL);
    pthread_rwlock_init(&c->lock, NULL);
    phx_kb_index_init(&c->idx, c->dim);
    c->ann = app->ann;
    c->ann.metric = metric;
    phx_kb_index_set_ann(&c->idx, &c->ann);
    phx_kb_index_set_int8(&c->idx, (int)app->int8_rerank);
out:
    freeReplyObject(h);
    return c;
}

phx_kb_coll *phx_kb_coll_get(phx_kb_app *app, phx_redis *r, const char *name, phx_err *err)
{
    if (!phx_kb_name_valid(name)) {
        phx_err_set(err, "invalid_input", 0, "collection must match [A-Za-z0-9._-]{1,64}");
        return NULL;
    }
    pthread_mutex_lock(&app->mu);
    for (int i = 0; i < app->ncolls; i++)
        if (strcmp(app->colls[i]->name, name) == 0) {
            phx_kb_coll *c = app->colls[i];
            pthread_mutex_unlock(&app->mu);
            return c;
        }
    pthread_mutex_unlock(&app->mu);
    /* Load outside the table lock (a Redis round trip); a racing loader may win, then its
     * copy is kept and ours dropped. */
    phx_kb_coll *c = phx_kb_coll_load(app, r, name, err);
    if (!c)
        return NULL;
    pthread_mutex_lock(&app->mu);
    for (int i = 0; i < app->ncolls; i++)
        if (strcmp(app->colls[i]->name, name) == 0) {
            phx_kb_coll *won = app->colls[i];
            pthread_mutex_unlock(&app->mu);
            phx_kb_coll_free(c);
            return won;
        }
    if (app->ncolls == app->capcolls) {
        app->capcolls = app->capcolls ? app->capcolls * 2 : 8;
        app->colls = phx_xrealloc(app->colls, (size_t)app->capcolls * sizeof(*app->colls));
    }
    app->colls[app->ncolls++] = c;
    pthread_mutex_unlock(&app->mu);
    return c;
}

/* Keys of the delete-shaped scripts, in their KEYS order. */
typedef struct phx_kb_keys {
    char k[7][160];
    const char *p[7];
} phx_kb_keys;

static void phx_kb_del_keys(phx_kb_keys *k, const char *coll)
{
    static const char *const parts[] = {"rec", "log", "seq", "ttl", "hits", "seen", "quarantine"};
    for (int i = 0; i < 7; i++) {
        /* k->k[i] is phx_kb_key's output buffer: written, not read (cppcheck assumes a read). */
        // cppcheck-suppress uninitvar
        phx_kb_key(k->k[i], sizeof(k->k[i]), coll, parts[i]);
        k->p[i] = k->k[i];
    }
}

/* Move a record that failed its check out of service (reported, counted, logged as a del). */
static void phx_kb_quarantine(phx_kb_app *app, phx_kb_coll *c, phx_redis *r, const char *id,
                              const char *bytes, size_t len, const char *why)
{
    phx_kb_keys k;
    phx_kb_del_keys(&k, c->name);
    char maxlen[24];
    snprintf(maxlen, sizeof(maxlen), "%ld", app->log_maxlen);
    const char *argv[11] = {k.p[0], k.p[1], k.p[2], k.p[3], k.p[4], k.p[5],
                            k.p[6], maxlen, id,     bytes,  why};
    size_t lens[11];
    for (int i = 0; i < 11; i++)
        lens[i] = strlen(argv[i]);
    lens[9] = len;
    phx_err err;
    phx_err_clear(&err);
    redisReply *rep = phx_redis_eval(r, &phx_kb_quarantine_lua, 7, 11, argv, lens, &err);
    phx_log_error("kb %s: record %s is corrupt (%s): %s", c->name, id, why,
                  rep ? "quarantined in phx:kb:{kb:C}:quarantine"
                      : "could not be quarantined now; it is not served");
    phx_metric_add(phx_kb_corrupt_metric(), 1);
    if (rep)
        freeReplyObject(rep);
}

/* Monotonic nanoseconds: the rebuild's breakdown adds up per-record times far below 1 ms. */
static int64_t phx_kb_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Where a rebuild's time goes (logged): Redis round trips, decoding with the CRC check, and
 * inserting into the index (the exact array, and the HNSW graph once the collection is big
 * enough for one -- by far the largest part when there is a graph). */
typedef struct phx_kb_load_times {
    int64_t redis_ns, verify_ns, index_ns;
} phx_kb_load_times;

/* Decode and verify one stored record into idx; a bad one goes to quarantine. */
static void phx_kb_load_one(phx_kb_app *app, phx_kb_coll *c, phx_redis *r, phx_kb_index *idx,
                            const char *id, const redisReply *v, phx_kb_load_times *lt)
{
    phx_kb_rec rec;
    char why[160];
    if (v->type != REDIS_REPLY_STRING)
        return; /* gone since it was logged: a del follows */
    int64_t t0 = phx_kb_ns();
    int bad = phx_kb_rec_decode(id, (const unsigned char *)v->str, v->len, &rec, why, sizeof(why));
    int64_t t1 = phx_kb_ns();
    lt->verify_ns += t1 - t0;
    if (bad < 0) {
        phx_kb_quarantine(app, c, r, id, v->str, v->len, why);
        return;
    }
    if ((int)rec.dim != c->dim) {
        snprintf(why, sizeof(why), "dimension %u in a collection of %d", rec.dim, c->dim);
        phx_kb_quarantine(app, c, r, id, v->str, v->len, why);
        return;
    }
    phx_kb_index_put(idx, id, &rec);
    lt->index_ns += phx_kb_ns() - t1;
}

/* Load every record into a fresh index, then swap it in; the log is followed from the mark
 * taken before the scan, so changes made during the scan are applied again (harmlessly). */
static int phx_kb_rebuild(phx_kb_app *app, phx_kb_coll *c, phx_redis *r, phx_err *err)
{
    int64_t t0 = phx_mono_ms();
    char kseq[160], klog[160], krec[160];
    phx_kb_key(kseq, sizeof(kseq), c->name, "seq");
    phx_kb_key(klog, sizeof(klog), c->name, "log");
    phx_kb_key(krec, sizeof(krec), c->name, "rec");
    const char *mk[2] = {kseq, klog};
    redisReply *m = phx_redis_eval(r, &phx_kb_mark_lua, 2, 2, mk, NULL, err);
    if (!m)
        return -1;
    if (m->type != REDIS_REPLY_ARRAY || m->elements != 2) {
        freeReplyObject(m);
        return phx_err_set(err, "redis_error", 1, "kb_mark: unexpected reply");
    }
    long long seq = strtoll(m->element[0]->str, NULL, 10);
    char last[48];
    snprintf(last, sizeof(last), "%s", m->element[1]->str);
    freeReplyObject(m);

    phx_kb_index idx;
    phx_kb_index_init(&idx, c->dim);
    phx_kb_index_set_ann(&idx, &c->ann);
    phx_kb_index_set_int8(&idx, (int)app->int8_rerank);
    char cursor[32] = "0";
    phx_kb_load_times lt = {0};
    do {
        int64_t t1 = phx_kb_ns();
        redisReply *s = phx_redis_cmd(r, err, "HSCAN %s %s COUNT 1000", krec, cursor);
        lt.redis_ns += phx_kb_ns() - t1;
        if (!s) {
            phx_kb_index_free(&idx);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", s->element[0]->str);
        const redisReply *kv = s->element[1];
        for (size_t i = 0; i + 1 < kv->elements; i += 2)
            phx_kb_load_one(app, c, r, &idx, kv->element[i]->str, kv->element[i + 1], &lt);
        freeReplyObject(s);
    } while (strcmp(cursor, "0") != 0);

    pthread_rwlock_wrlock(&c->lock);
    phx_kb_index old = c->idx;
    c->idx = idx;
    c->epoch++;
    pthread_rwlock_unlock(&c->lock);
    phx_kb_index_free(&old);
    snprintf(c->last_id, sizeof(c->last_id), "%s", last);
    c->last_seq = seq;
    c->loaded = 1;
    phx_log_info("kb %s: loaded %zu records from Redis in %lld ms (redis %lld ms, decode and CRC "
                 "%lld ms, index%s %lld ms; log at seq %lld)",
                 c->name, c->idx.n, (long long)(phx_mono_ms() - t0),
                 (long long)(lt.redis_ns / 1000000), (long long)(lt.verify_ns / 1000000),
                 c->idx.ann ? " and HNSW graph" : "", (long long)(lt.index_ns / 1000000), seq);
    return 0;
}

/* Apply one batch of log entries; 1 when more may follow, 0 when caught up, -1 on error,
 * 2 when a gap was found (the caller rebuilds), 3 when the collection is gone. */
static int phx_kb_follow(phx_kb_app *app, phx_kb_coll *c, phx_redis *r, phx_err *err)
{
    char klog[160], krec[160], kmeta[160], count[16];
    phx_kb_key(klog, sizeof(klog), c->name, "log");
    phx_kb_key(krec, sizeof(krec), c->name, "rec");
    phx_kb_key(kmeta, sizeof(kmeta), c->name, "meta");
    enum { BATCH = 512 };
    snprintf(count, sizeof(count), "%d", BATCH);
    const char *pa[5] = {kmeta, klog, c->gen, c->last_id, count};
    redisReply *x = phx_redis_eval(r, &phx_kb_poll_lua, 2, 5, pa, NULL, err);
    if (!x)
        return -1;
    if (x->type != REDIS_REPLY_ARRAY || x->elements == 0 || x->element[0]->integer == 0) {
        freeReplyObject(x);
        return 3;
    }
    if (x->elements < 2 || x->element[1]->type != REDIS_REPLY_ARRAY ||
        x->element[1]->elements == 0) {
        freeReplyObject(x);
        return 0;
    }
    const redisReply *ents = x->element[1]->element[0]->element[1];
    size_t n = ents->elements;
    /* Entries: [id, [seq, S, op, put|del, id, ID]]. Fetch the puts' records in one HMGET. */
    const char **argv = phx_xcalloc(n + 2, sizeof(*argv));
    int nput = 0, rc = n == BATCH;
    argv[0] = "HMGET";
    argv[1] = krec;
    long long expect = c->last_seq + 1;
    for (size_t i = 0; i < n; i++) {
        const redisReply *f = ents->element[i]->element[1];
        if (f->elements != 6) {
            rc = 2;
            goto out;
        }
        long long seq = strtoll(f->element[1]->str, NULL, 10);
        if (seq != expect) {
            phx_log_warn("kb %s: log gap (seq %lld, expected %lld): rebuilding", c->name, seq,
                         expect);
            rc = 2;
            goto out;
        }
        expect++;
        if (strcmp(f->element[3]->str, "put") == 0)
            argv[2 + nput++] = f->element[5]->str;
    }
    redisReply *recs = NULL;
    if (nput > 0 && !(recs = phx_redis_cmdv(r, err, nput + 2, argv, NULL))) {
        rc = -1;
        goto out;
    }
    /* Decode outside the lock is not possible for the index itself, but loads may quarantine
     * (a Redis call): apply puts into the live index entry by entry under the write lock. */
    int p = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *f = ents->element[i]->element[1];
        const char *id = f->element[5]->str;
        if (strcmp(f->element[3]->str, "put") == 0) {
            /* HMGET answers one element per field asked; a reply that does not (not an
             * array, too short) leaves this copy unsure of its state: rebuild it */
            if (!recs || recs->type != REDIS_REPLY_ARRAY || (size_t)p >= recs->elements) {
                phx_log_warn("kb %s: unexpected record reply: rebuilding", c->name);
                rc = 2;
                break;
            }
            const redisReply *v = recs->element[p++];
            phx_kb_rec rec;
            char why[160];
            /* rec is only read once it decoded: a record that did not is judged by its
             * decoder's reason, not by a dimension it never had. */
            int bad = v->type == REDIS_REPLY_STRING &&
                      phx_kb_rec_decode(id, (const unsigned char *)v->str, v->len, &rec, why,
                                        sizeof(why)) < 0;
            if (v->type == REDIS_REPLY_STRING && (bad || (int)rec.dim != c->dim)) {
                phx_kb_quarantine(app, c, r, id, v->str, v->len, bad ? why : "wrong dimension");
                continue;
            }
            pthread_rwlock_wrlock(&c->lock);
            if (v->type == REDIS_REPLY_STRING)
                phx_kb_index_put(&c->idx, id, &rec);
            pthread_rwlock_unlock(&c->lock);
        } else {
            pthread_rwlock_wrlock(&c->lock);
            phx_kb_index_del(&c->idx, id);
            pthread_rwlock_unlock(&c->lock);
        }
    }
    if (recs)
        freeReplyObject(recs);
    if (rc == 2)
        goto out;
    snprintf(c->last_id, sizeof(c->last_id), "%s", ents->element[n - 1]->element[0]->str);
    c->last_seq = expect - 1;
out:
    free(argv);
    freeReplyObject(x);
    return rc;
}

/* The collection was dropped or re-created: serve nothing from this copy and take it out of
 * the table, so the next use loads the collection afresh. The struct itself is kept (other
 * threads may hold it) on the retired list until exit. */
static void phx_kb_retire(phx_kb_app *app, phx_kb_coll *c)
{
    pthread_rwlock_wrlock(&c->lock);
    phx_kb_index_free(&c->idx);
    phx_kb_index_init(&c->idx, c->dim);
    c->epoch++;
    c->gone = 1;
    pthread_rwlock_unlock(&c->lock);
    pthread_mutex_lock(&app->mu);
    for (int i = 0; i < app->ncolls; i++)
        if (app->colls[i] == c) {
            app->colls[i] = app->colls[--app->ncolls];
            if (app->nretired == app->capretired) {
                app->capretired = app->capretired ? app->capretired * 2 : 4;
                app->retired =
                    realloc(app->retired, (size_t)app->capretired * sizeof(*app->retired));
            }
            app->retired[app->nretired++] = c;
            break;
        }
    pthread_mutex_unlock(&app->mu);
    phx_log_info("kb %s: dropped or re-created in Redis; this copy is discarded", c->name);
}

/* Records this replica serves for c (0 once it is gone): every change to a copy goes through
 * phx_kb_sync, so setting it there keeps it current. One series per collection: collections
 * are created by operators (phx kb create), not by jobs, so the label stays bounded. */
static void phx_kb_size_metric(const phx_kb_coll *c, size_t n)
{
    char labels[200];
    snprintf(labels, sizeof(labels), "collection=\"%s\"", c->name);
    phx_metric_set(
        phx_gauge("phx_kb_records", "Records held in this replica's copy of a collection.", labels),
        (double)n);
}

int phx_kb_sync(phx_kb_app *app, phx_kb_coll *c, phx_redis *r, phx_err *err)
{
    int rc = 0;
    pthread_mutex_lock(&c->sync_mu);
    for (int rounds = 0;; rounds++) {
        if (c->gone) {
            rc = 3;
            break;
        }
        if (!c->loaded || rc == 2) {
            if (phx_kb_rebuild(app, c, r, err) < 0) {
                rc = -1;
                break;
            }
        }
        rc = phx_kb_follow(app, c, r, err);
        if (rc == 3)
            phx_kb_retire(app, c);
        if (rc <= 0 || rc == 3 || rounds > 10000)
            break;
    }
    /* the copy's writers all hold sync_mu, so n is stable here */
    if (rc == 0 || rc == 3)
        phx_kb_size_metric(c, rc == 3 ? 0 : c->idx.n);
    /* A graph is never built here (it would hold sync_mu for as long as the build takes):
     * the background builder is told, and searches stay exact until it attaches one. */
    int due = rc == 0 && phx_kb_index_graph_due(&c->idx);
    pthread_mutex_unlock(&c->sync_mu);
    if (due)
        phx_kb_annbuild_kick(app);
    if (rc == 3)
        return phx_err_set(err, "no_collection", 0,
                           "collection %s was dropped or re-created while in use", c->name);
    return rc < 0 ? -1 : 0;
}

/* Start-up progress: the collection about to load (name) and how many are done of total;
 * a no-op once booted. */
static void phx_kb_boot_progress(phx_kb_app *app, const char *name, size_t done, size_t total)
{
    pthread_mutex_lock(&app->boot_mu);
    if (!app->booted) {
        snprintf(app->boot_coll, sizeof(app->boot_coll), "%s", name ? name : "");
        app->boot_done = (int)done;
        app->boot_total = (int)total;
    }
    pthread_mutex_unlock(&app->boot_mu);
}

int phx_kb_ready(phx_kb_app *app, char *why, size_t whylen)
{
    pthread_mutex_lock(&app->boot_mu);
    int rc = app->booted ? 0 : -1;
    if (rc < 0 && app->boot_total == 0)
        snprintf(why, whylen, "loading collections from Redis: listing them");
    else if (rc < 0)
        snprintf(why, whylen, "loading collections from Redis: %d of %d loaded, now %s",
                 app->boot_done, app->boot_total, app->boot_coll);
    pthread_mutex_unlock(&app->boot_mu);
    return rc;
}

int phx_kb_sync_all(phx_kb_app *app, phx_redis *r, phx_err *err)
{
    redisReply *m = phx_redis_cmd(r, err, "SMEMBERS %s", PHX_KB_COLLECTIONS);
    if (!m)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < m->elements && rc == 0; i++) {
        phx_err e;
        phx_err_clear(&e);
        phx_kb_boot_progress(app, m->element[i]->str, i, m->elements);
        phx_kb_coll *c = phx_kb_coll_get(app, r, m->element[i]->str, &e);
        if (!c) {
            if (e.retryable) {
                *err = e;
                rc = -1;
            }
            continue;
        }
        /* A collection dropped meanwhile is not a failure of the tick. */
        if (phx_kb_sync(app, c, r, &e) < 0 && e.retryable) {
            *err = e;
            rc = -1;
        }
    }
    size_t total = m->elements;
    freeReplyObject(m);
    /* Ready once one pass loaded everything listed when it began (a collection it could not
     * load for good -- dropped meanwhile, bad metadata -- counts as done: waiting would not
     * change it). A pass that failed is retried by the next tick, still not ready. */
    if (rc == 0) {
        pthread_mutex_lock(&app->boot_mu);
        if (!app->booted)
            phx_log_info("kb: the %zu collection(s) listed at start are loaded: ready", total);
        app->booted = 1;
        pthread_mutex_unlock(&app->boot_mu);
    }
    return rc;
}

/* A Lua error reply of ours ("NOCOLL ...", "CAPACITY ...") into a typed error. */
static void phx_kb_script_err(phx_kb_coll *c, phx_err *err)
{
    if (strstr(err->message, "NOCOLL"))
        phx_err_set(err, "no_collection", 0, "collection %s was dropped or re-created", c->name);
    else if (strstr(err->message, "CAPACITY")) {
        const char *m = strstr(err->message, "CAPACITY") + 9;
        char msg[200];
        snprintf(msg, sizeof(msg), "%s", m);
        phx_err_set(err, "capacity_exceeded", 0,
                    "collection %s is full (%s) and its pruning policy is none: delete records "
                    "or re-create it with a pruning policy",
                    c->name, msg);
    }
}

long phx_kb_write(phx_kb_app *app, phx_kb_coll *c, phx_redis *r, const phx_kb_put *items, int n,
                  int hard_cap, phx_err *err)
{
    static const char *const parts[] = {"meta", "rec", "log", "seq", "ttl"};
    char keys[5][160], cap[24], maxlen[24];
    int argc = 5 + 3 + 3 * n;
    const char **argv = phx_xcalloc((size_t)argc, sizeof(*argv));
    size_t *lens = phx_xcalloc((size_t)argc, sizeof(*lens));
    char(*exp)[24] = phx_xcalloc((size_t)n, sizeof(*exp));
    for (int i = 0; i < 5; i++) {
        phx_kb_key(keys[i], sizeof(keys[i]), c->name, parts[i]);
        argv[i] = keys[i];
    }
    snprintf(cap, sizeof(cap), "%ld", hard_cap ? c->capacity : 0);
    snprintf(maxlen, sizeof(maxlen), "%ld", app->log_maxlen);
    argv[5] = c->gen;
    argv[6] = cap;
    argv[7] = maxlen;
    for (int i = 0; i < n; i++) {
        snprintf(exp[i], sizeof(exp[i]), "%lld", (long long)items[i].expires_ms);
        argv[8 + 3 * i] = items[i].id;
        argv[9 + 3 * i] = (const char *)items[i].rec;
        argv[10 + 3 * i] = exp[i];
    }
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    for (int i = 0; i < n; i++)
        lens[9 + 3 * i] = items[i].len;
    long count = -1;
    redisReply *rep = phx_redis_eval(r, &phx_kb_write_lua, 5, argc, argv, lens, err);
    if (!rep)
        phx_kb_script_err(c, err);
    else
        count = (long)rep->integer;
    if (rep)
        freeReplyObject(rep);
    free(argv);
    free(lens);
    free(exp);
    return count;
}

long phx_kb_delete(phx_kb_app *app, phx_kb_coll *c, phx_redis *r, const char *const *ids,
                   const uint32_t *crcs, int n, phx_err *err)
{
    phx_kb_keys k;
    phx_kb_del_keys(&k, c->name);
    char maxlen[24];
    snprintf(maxlen, sizeof(maxlen), "%ld", app->log_maxlen);
    long total = 0;
    /* Batches keep one script (which blocks Redis while it runs) short. */
    for (int at = 0; at < n; at += 256) {
        int m = n - at < 256 ? n - at : 256, argc = 7 + 2 * m;
        const char **argv = phx_xcalloc((size_t)argc, sizeof(*argv));
        size_t *lens = phx_xcalloc((size_t)argc, sizeof(*lens));
        unsigned char(*crc)[4] = phx_xcalloc((size_t)m, 4);
        for (int i = 0; i < 6; i++)
            argv[i] = k.p[i];
        argv[6] = maxlen;
        for (int i = 0; i < argc; i++)
            lens[i] = i < 7 ? strlen(argv[i]) : 0;
        for (int i = 0; i < m; i++) {
            argv[7 + 2 * i] = ids[at + i];
            lens[7 + 2 * i] = strlen(ids[at + i]);
            argv[8 + 2 * i] = (const char *)crc[i];
            if (crcs) {
                for (int b = 0; b < 4; b++)
                    crc[i][b] = (unsigned char)(crcs[at + i] >> (8 * b));
                lens[8 + 2 * i] = 4;
            }
        }
        redisReply *rep = phx_redis_eval(r, &phx_kb_delete_lua, 6, argc, argv, lens, err);
        free(argv);
        free(lens);
        free(crc);
        if (!rep)
            return -1;
        total += (long)rep->integer;
        freeReplyObject(rep);
    }
    return total;
}

long phx_kb_expire(phx_kb_app *app, phx_kb_coll *c, phx_redis *r, int64_t now_ms, phx_err *err)
{
    phx_kb_keys k;
    phx_kb_del_keys(&k, c->name);
    char maxlen[24], now[24];
    snprintf(maxlen, sizeof(maxlen), "%ld", app->log_maxlen);
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    const char *argv[9] = {k.p[0], k.p[1], k.p[2], k.p[3], k.p[4], k.p[5], maxlen, now, "500"};
    long total = 0;
    for (;;) {
        redisReply *rep = phx_redis_eval(r, &phx_kb_expire_lua, 6, 9, argv, NULL, err);
        if (!rep)
            return -1;
        long got = (long)rep->integer;
        freeReplyObject(rep);
        total += got;
        if (got < 500)
            return total;
    }
}

int phx_kb_touch(phx_kb_coll *c, phx_redis *r, const char *const *ids, int n, phx_err *err)
{
    if (n == 0)
        return 0;
    char keys[3][160], now[24];
    phx_kb_key(keys[0], sizeof(keys[0]), c->name, "rec");
    phx_kb_key(keys[1], sizeof(keys[1]), c->name, "hits");
    phx_kb_key(keys[2], sizeof(keys[2]), c->name, "seen");
    snprintf(now, sizeof(now), "%lld", (long long)phx_now_ms());
    const char **argv = phx_xcalloc((size_t)n + 4, sizeof(*argv));
    argv[0] = keys[0];
    argv[1] = keys[1];
    argv[2] = keys[2];
    argv[3] = now;
    for (int i = 0; i < n; i++)
        argv[4 + i] = ids[i];
    redisReply *rep = phx_redis_eval(r, &phx_kb_touch_lua, 3, n + 4, argv, NULL, err);
    free(argv);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    return 0;
}
