/* kbbackup.c -- `phx kb backup COLLECTION FILE` and `phx kb restore FILE`.
 *
 * File format, version 1 (integers little-endian):
 *
 *   "phx-kb-backup 1\n"
 *   one line of JSON: the collection's settings (collection, dim, metric, capacity, ttl_s,
 *     policy, created_ms, gen), "records" (how many follow) and "backed_up_ms"
 *   per record: u32 id length, id, u32 record length, the record exactly as Redis holds it
 *     (lib/kbrec.h, with its own CRC32C), u64 search hits, i64 last hit ms, then a u32 CRC32C
 *     of everything of this record before it
 *   "sha256 " + 64 hex digits + "\n": SHA-256 of every byte before "sha256 "
 *
 * A restore reads the whole file and verifies all of it -- version, settings, every frame's
 * CRC, every record's own check under its id and dimension, the count, the SHA-256, nothing
 * after it -- before it writes one key; a damaged file is refused whole. It refuses to
 * overwrite an existing collection (drop it first). Records are written first and the
 * collection's settings last, so replicas see the collection only once it is complete; it
 * keeps its creation id (gen), and every record goes through the change log like any write.
 * Backups are built and read in memory: a collection must fit in the CLI's memory (as it fits
 * in every kb replica's). */
#include "cli.h"
#include "kbrec.h"
#include "redis.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PHX_KB_BACKUP_MAGIC "phx-kb-backup 1\n"

/* KEYS rec ttl hits seen seq log; ARGV maxlen, then (id, record, expires, hits, seen)... */
static const phx_script phx_cli_kb_restore_lua = {
    "kb_restore",
    "for i = 2, #ARGV, 5 do\n"
    "  local id = ARGV[i]\n"
    "  redis.call('HSET', KEYS[1], id, ARGV[i + 1])\n"
    "  if ARGV[i + 2] ~= '0' then redis.call('ZADD', KEYS[2], ARGV[i + 2], id) end\n"
    "  if ARGV[i + 3] ~= '0' then redis.call('HSET', KEYS[3], id, ARGV[i + 3]) end\n"
    "  if ARGV[i + 4] ~= '0' then redis.call('HSET', KEYS[4], id, ARGV[i + 4]) end\n"
    "  local s = redis.call('INCR', KEYS[5])\n"
    "  redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[1], '*', 'seq', s, 'op', 'put', 'id', id)\n"
    "end\n"
    "return 0\n",
};

/* A growing byte buffer. */
typedef struct phx_buf {
    unsigned char *p;
    size_t n, cap;
} phx_buf;

static void phx_buf_put(phx_buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 4096;
        b->p = phx_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void phx_buf_u32(phx_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    phx_buf_put(b, x, 4);
}

static void phx_buf_u64(phx_buf *b, uint64_t v)
{
    phx_buf_u32(b, (uint32_t)v);
    phx_buf_u32(b, (uint32_t)(v >> 32));
}

static uint32_t phx_get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* "[#####     ] 50% what" on stderr when it is a terminal, at most every 1% step. */
static void phx_progress(const char *what, size_t done, size_t total, int *last)
{
    if (!isatty(2) || total == 0)
        return;
    int pct = (int)(done * 100 / total);
    if (pct == *last && done != total)
        return;
    *last = pct;
    char bar[31];
    for (int i = 0; i < 30; i++)
        bar[i] = i < pct * 30 / 100 ? '#' : ' ';
    bar[30] = '\0';
    fprintf(stderr, "\r[%s] %3d%% %s %zu/%zu", bar, pct, what, done, total);
    if (done == total)
        fputc('\n', stderr);
}

static long long phx_reply_ll(const redisReply *r)
{
    if (!r || r->type == REDIS_REPLY_NIL)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    return r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
}

int phx_cli_kb_backup(phx_redis *r, const char *name, const char *path, phx_err *err)
{
    char key[160], krec[160], khits[160], kseen[160];
    phx_kb_key(key, sizeof(key), name, "meta");
    phx_kb_key(krec, sizeof(krec), name, "rec");
    phx_kb_key(khits, sizeof(khits), name, "hits");
    phx_kb_key(kseen, sizeof(kseen), name, "seen");
    redisReply *h = phx_redis_cmd(r, err, "HGETALL %s", key);
    if (!h)
        return PHX_EXIT_INFRA;
    if (h->elements == 0) {
        freeReplyObject(h);
        fprintf(stderr, "phx kb backup: no collection %s\n", name);
        return PHX_EXIT_FAILED;
    }
    json_t *hdr = json_pack("{s:s}", "collection", name);
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const char *k = h->element[i]->str, *v = h->element[i + 1]->str;
        if (strcmp(k, "metric") == 0 || strcmp(k, "policy") == 0 || strcmp(k, "gen") == 0)
            json_object_set_new(hdr, k, json_string(v));
        else
            json_object_set_new(hdr, k, json_integer(strtoll(v, NULL, 10)));
    }
    freeReplyObject(h);
    /* One consistent snapshot: HGETALL of records and counters in a MULTI would block Redis
     * for a large collection, so records are scanned; a write during the backup may or may
     * not be in it (as with any online backup), but every record in it is whole and checked. */
    phx_buf body = {0};
    size_t count = 0;
    int last = -1, rc = PHX_EXIT_INFRA;
    long long total = 0;
    redisReply *len = phx_redis_cmd(r, err, "HLEN %s", krec);
    if (!len)
        goto out;
    total = len->integer;
    freeReplyObject(len);
    char cursor[32] = "0";
    do {
        redisReply *s = phx_redis_cmd(r, err, "HSCAN %s %s COUNT 500", krec, cursor);
        if (!s)
            goto out;
        snprintf(cursor, sizeof(cursor), "%s", s->element[0]->str);
        const redisReply *kv = s->element[1];
        for (size_t i = 0; i + 1 < kv->elements; i += 2) {
            const char *id = kv->element[i]->str;
            const redisReply *v = kv->element[i + 1];
            phx_kb_rec rec;
            char why[160];
            if (phx_kb_rec_decode(id, (const unsigned char *)v->str, v->len, &rec, why,
                                  sizeof(why)) < 0) {
                fprintf(stderr, "phx kb backup: record %s is corrupt (%s): left out\n", id, why);
                continue;
            }
            redisReply *hs = phx_redis_cmd(r, err, "HGET %s %s", khits, id);
            redisReply *sn = hs ? phx_redis_cmd(r, err, "HGET %s %s", kseen, id) : NULL;
            if (!sn) {
                if (hs)
                    freeReplyObject(hs);
                freeReplyObject(s);
                goto out;
            }
            size_t at = body.n;
            phx_buf_u32(&body, (uint32_t)strlen(id));
            phx_buf_put(&body, id, strlen(id));
            phx_buf_u32(&body, (uint32_t)v->len);
            phx_buf_put(&body, v->str, v->len);
            phx_buf_u64(&body, (uint64_t)phx_reply_ll(hs));
            phx_buf_u64(&body, (uint64_t)phx_reply_ll(sn));
            phx_buf_u32(&body, phx_crc32c(0, body.p + at, body.n - at));
            freeReplyObject(hs);
            freeReplyObject(sn);
            count++;
            phx_progress("records", count, (size_t)total > count ? (size_t)total : count, &last);
        }
        freeReplyObject(s);
    } while (strcmp(cursor, "0") != 0);
    json_object_set_new(hdr, "records", json_integer((json_int_t)count));
    json_object_set_new(hdr, "backed_up_ms", json_integer(phx_now_ms()));
    phx_buf file = {0};
    char *hj = json_dumps(hdr, JSON_COMPACT | JSON_SORT_KEYS);
    phx_buf_put(&file, PHX_KB_BACKUP_MAGIC, strlen(PHX_KB_BACKUP_MAGIC));
    phx_buf_put(&file, hj, strlen(hj));
    phx_buf_put(&file, "\n", 1);
    if (body.n)
        phx_buf_put(&file, body.p, body.n);
    free(hj);
    char sha[65], trailer[80];
    phx_sha256_hex(file.p, file.n, sha);
    snprintf(trailer, sizeof(trailer), "sha256 %s\n", sha);
    phx_buf_put(&file, trailer, strlen(trailer));
    /* Write beside the target and rename: a crash never leaves a half file under its name. */
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(file.p, 1, file.n, f) != file.n || fflush(f) != 0 || fsync(fileno(f)) != 0 ||
        fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "phx kb backup: cannot write %s: %m\n", path);
        if (f)
            unlink(tmp);
        rc = PHX_EXIT_FAILED;
    } else {
        printf("{\"collection\":\"%s\",\"records\":%zu,\"bytes\":%zu,\"sha256\":\"%s\"}\n", name,
               count, file.n, sha);
        rc = PHX_EXIT_OK;
    }
    free(file.p);
out:
    free(body.p);
    json_decref(hdr);
    return rc;
}

/* The smallest record frame: id length, a 1-byte id, record length, an empty record, hits,
 * last hit, CRC. Bounds the record count a file of a given size can announce. */
#define PHX_KB_FRAME_MIN (4 + 1 + 4 + 16 + 4)

int phx_cli_kb_verify(const unsigned char *p, size_t n, json_t **hdr, phx_kb_frame **frames,
                      size_t *nframes, char *why, size_t whylen)
{
    size_t ml = strlen(PHX_KB_BACKUP_MAGIC);
    if (n < ml || memcmp(p, PHX_KB_BACKUP_MAGIC, ml) != 0) {
        snprintf(why, whylen, "not a phx kb backup of version 1 (bad first line)");
        return -1;
    }
    /* Trailer first: nothing else is trusted until the whole-file digest matches. */
    if (n < ml + 72 || memcmp(p + n - 72, "sha256 ", 7) != 0 || p[n - 1] != '\n') {
        snprintf(why, whylen, "no sha256 trailer (file truncated?)");
        return -1;
    }
    char sha[65], want[65];
    phx_sha256_hex(p, n - 72, sha);
    memcpy(want, p + n - 65, 64);
    want[64] = '\0';
    if (strcmp(sha, want) != 0) {
        snprintf(why, whylen, "SHA-256 mismatch (file says %.16s..., content is %.16s...)", want,
                 sha);
        return -1;
    }
    const unsigned char *at = p + ml, *end = p + n - 72;
    const unsigned char *nl = memchr(at, '\n', (size_t)(end - at));
    json_error_t je;
    if (!nl || !(*hdr = json_loadb((const char *)at, (size_t)(nl - at), 0, &je))) {
        snprintf(why, whylen, "bad settings line");
        return -1;
    }
    const char *coll = json_string_value(json_object_get(*hdr, "collection"));
    json_int_t dim = json_integer_value(json_object_get(*hdr, "dim"));
    json_int_t cnt = json_integer_value(json_object_get(*hdr, "records"));
    if (!phx_kb_name_valid(coll) || dim < 1 || dim > PHX_KB_MAX_DIM || cnt < 0 ||
        !json_is_string(json_object_get(*hdr, "gen")) ||
        phx_kb_metric_parse(json_string_value(json_object_get(*hdr, "metric"))) < 0 ||
        phx_kb_policy_parse(json_string_value(json_object_get(*hdr, "policy"))) < 0) {
        snprintf(why, whylen, "settings line lacks a valid collection, dim, metric, policy or gen");
        return -1;
    }
    at = nl + 1;
    /* The count sizes an allocation before any frame is read, and the SHA-256 proves nothing
     * against a crafted file (anyone can recompute it): a count the rest of the file cannot
     * hold is refused before it is trusted (fuzz_kb_backup found calloc(2^63) here). */
    if ((size_t)cnt > (size_t)(end - at) / PHX_KB_FRAME_MIN) {
        snprintf(why, whylen, "settings announce %lld records, more than the file can hold",
                 (long long)cnt);
        return -1;
    }
    if (!(*frames = calloc((size_t)cnt + 1, sizeof(**frames)))) {
        snprintf(why, whylen, "out of memory for %lld records", (long long)cnt);
        return -1;
    }
    size_t k = 0;
    while (at < end) {
        const unsigned char *f0 = at;
        phx_kb_frame *fr = &(*frames)[k];
        if (k >= (size_t)cnt || end - at < 4) {
            snprintf(why, whylen, "more data than the %lld records announced", (long long)cnt);
            return -1;
        }
        fr->idlen = phx_get_u32(at);
        at += 4;
        if (fr->idlen == 0 || fr->idlen > 128 || (size_t)(end - at) < fr->idlen + 4) {
            snprintf(why, whylen, "record %zu: bad id length", k);
            return -1;
        }
        fr->id = (const char *)at;
        at += fr->idlen;
        fr->reclen = phx_get_u32(at);
        at += 4;
        if ((size_t)(end - at) < (size_t)fr->reclen + 20) {
            snprintf(why, whylen, "record %zu: truncated", k);
            return -1;
        }
        fr->rec = at;
        at += fr->reclen;
        fr->hits = phx_get_u32(at) | (uint64_t)phx_get_u32(at + 4) << 32;
        fr->seen = phx_get_u32(at + 8) | (uint64_t)phx_get_u32(at + 12) << 32;
        at += 16;
        if (phx_crc32c(0, f0, (size_t)(at - f0)) != phx_get_u32(at)) {
            snprintf(why, whylen, "record %zu: frame CRC mismatch", k);
            return -1;
        }
        at += 4;
        char id[129], rwhy[160];
        memcpy(id, fr->id, fr->idlen);
        id[fr->idlen] = '\0';
        phx_kb_rec rec;
        /* One reason per failure: a record that does not decode has no dimension to compare
         * (clang-tidy found the old combined test reading it uninitialised). */
        const char *bad = NULL;
        if (!phx_id_valid(id))
            bad = "bad id";
        else if (phx_kb_rec_decode(id, fr->rec, fr->reclen, &rec, rwhy, sizeof(rwhy)) < 0)
            bad = rwhy;
        else if ((json_int_t)rec.dim != dim)
            bad = "wrong dimension";
        if (bad) {
            snprintf(why, whylen, "record %zu (%s): %s", k, id, bad);
            return -1;
        }
        fr->expires_ms = rec.expires_ms;
        k++;
    }
    if (k != (size_t)cnt) {
        snprintf(why, whylen, "%zu records, but the settings announce %lld", k, (long long)cnt);
        return -1;
    }
    *nframes = k;
    return 0;
}

int phx_cli_kb_restore(phx_redis *r, const char *path, phx_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "phx kb restore: cannot open %s: %m\n", path);
        return PHX_EXIT_USAGE;
    }
    phx_buf file = {0};
    unsigned char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        phx_buf_put(&file, chunk, got);
    fclose(f);
    json_t *hdr = NULL;
    phx_kb_frame *frames = NULL;
    size_t n = 0;
    char why[300];
    int rc = PHX_EXIT_FAILED;
    if (phx_cli_kb_verify(file.p, file.n, &hdr, &frames, &n, why, sizeof(why)) < 0) {
        fprintf(stderr, "phx kb restore: %s is damaged, nothing restored: %s\n", path, why);
        goto out;
    }
    const char *name = json_string_value(json_object_get(hdr, "collection"));
    char keys[7][160];
    static const char *const parts[] = {"rec", "ttl", "hits", "seen", "seq", "log", "meta"};
    for (int i = 0; i < 7; i++)
        phx_kb_key(keys[i], sizeof(keys[i]), name, parts[i]);
    redisReply *ex = phx_redis_cmd(r, err, "EXISTS %s %s", keys[6], keys[0]);
    if (!ex) {
        rc = PHX_EXIT_INFRA;
        goto out;
    }
    long long exists = ex->integer;
    freeReplyObject(ex);
    if (exists) {
        fprintf(stderr, "phx kb restore: collection %s exists; drop it first (phx kb drop %s)\n",
                name, name);
        goto out;
    }
    int last = -1;
    for (size_t at = 0; at < n; at += 200) {
        size_t m = n - at < 200 ? n - at : 200;
        int argc = 7 + 5 * (int)m;
        const char **argv = phx_xcalloc((size_t)argc, sizeof(*argv));
        size_t *lens = phx_xcalloc((size_t)argc, sizeof(*lens));
        char(*nums)[3][24] = phx_xcalloc(m, sizeof(*nums));
        for (int i = 0; i < 6; i++)
            argv[i] = keys[i];
        argv[6] = "100000";
        for (int i = 0; i < 7; i++)
            lens[i] = strlen(argv[i]);
        for (size_t i = 0; i < m; i++) {
            const phx_kb_frame *fr = &frames[at + i];
            snprintf(nums[i][0], 24, "%lld", (long long)fr->expires_ms);
            snprintf(nums[i][1], 24, "%llu", (unsigned long long)fr->hits);
            snprintf(nums[i][2], 24, "%llu", (unsigned long long)fr->seen);
            int b = 7 + 5 * (int)i;
            argv[b] = fr->id, lens[b] = fr->idlen;
            argv[b + 1] = (const char *)fr->rec, lens[b + 1] = fr->reclen;
            for (int j = 0; j < 3; j++)
                argv[b + 2 + j] = nums[i][j], lens[b + 2 + j] = strlen(nums[i][j]);
        }
        redisReply *rep = phx_redis_eval(r, &phx_cli_kb_restore_lua, 6, argc, argv, lens, err);
        free(argv);
        free(lens);
        free(nums);
        if (!rep) {
            fprintf(stderr,
                    "phx kb restore: stopped after %zu of %zu records; drop %s and "
                    "restore again\n",
                    at, n, name);
            rc = PHX_EXIT_INFRA;
            goto out;
        }
        freeReplyObject(rep);
        phx_progress("records", at + m, n, &last);
    }
    /* The settings last: replicas see the collection once it is whole. */
    const char *mk[] = {"dim", "capacity", "ttl_s", "created_ms"};
    char vals[4][24];
    for (int i = 0; i < 4; i++)
        snprintf(vals[i], sizeof(vals[i]), "%lld",
                 (long long)json_integer_value(json_object_get(hdr, mk[i])));
    redisReply *rep = phx_redis_cmd(
        r, err, "HSET %s dim %s metric %s capacity %s ttl_s %s policy %s created_ms %s gen %s",
        keys[6], vals[0], json_string_value(json_object_get(hdr, "metric")), vals[1], vals[2],
        json_string_value(json_object_get(hdr, "policy")), vals[3],
        json_string_value(json_object_get(hdr, "gen")));
    redisReply *add = rep ? phx_redis_cmd(r, err, "SADD %s %s", PHX_KB_COLLECTIONS, name) : NULL;
    if (rep)
        freeReplyObject(rep);
    if (!add) {
        rc = PHX_EXIT_INFRA;
        goto out;
    }
    freeReplyObject(add);
    printf("{\"collection\":\"%s\",\"records\":%zu}\n", name, n);
    rc = PHX_EXIT_OK;
out:
    json_decref(hdr);
    free(frames);
    free(file.p);
    return rc;
}
