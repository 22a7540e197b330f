/* kb.c -- `phx kb create|list|stats`: knowledge base collections (see lib/kbrec.h for the keys).
 *
 * A collection's settings are fixed when it is created (its dimension above all: every stored
 * vector has it); phx-kb replicas read them on first use. Creation is one Lua script on the
 * collection's own meta hash, so two racing creates cannot both win; the name then goes into
 * the phx:kb:collections set that `list` and the pools' warm-up read. */
#include "cli.h"
#include "kbrec.h"
#include "redis.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const phx_script phx_cli_kb_create_lua = {
    "kb_create",
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'dim', ARGV[1], 'metric', ARGV[2], 'capacity', ARGV[3],\n"
    "           'ttl_s', ARGV[4], 'policy', ARGV[5], 'created_ms', ARGV[6], 'gen', ARGV[7])\n"
    "return 1\n",
};

static int phx_cli_kb_usage(void)
{
    fprintf(stderr, "usage: phx kb create NAME --dim N [--metric cosine|dot|l2] [--capacity N]\n"
                    "                     [--ttl SECONDS] [--policy score|lru|lfu|none]\n"
                    "       phx kb list\n"
                    "       phx kb stats NAME\n"
                    "       phx kb drop NAME\n"
                    "       phx kb backup NAME FILE\n"
                    "       phx kb restore FILE\n");
    return PHX_EXIT_USAGE;
}

/* A whole-string non-negative integer within [min, max]; -1 otherwise. */
static long phx_cli_kb_num(const char *s, long min, long max)
{
    long v;
    return phx_parse_long(s, min, max, &v) == 0 ? v : -1;
}

static int phx_cli_kb_create(phx_redis *r, int argc, char **argv, phx_err *err)
{
    const char *name = argv[0];
    long dim = 0, capacity = 0, ttl = 0;
    int metric = PHX_KB_COSINE, policy = PHX_KB_SCORE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return phx_cli_kb_usage();
        if (strcmp(a, "--dim") == 0)
            dim = phx_cli_kb_num(v, 1, PHX_KB_MAX_DIM);
        else if (strcmp(a, "--capacity") == 0)
            capacity = phx_cli_kb_num(v, 0, 1000000000L);
        else if (strcmp(a, "--ttl") == 0)
            ttl = phx_cli_kb_num(v, 0, 10L * 365 * 86400);
        else if (strcmp(a, "--metric") == 0)
            metric = phx_kb_metric_parse(v);
        else if (strcmp(a, "--policy") == 0)
            policy = phx_kb_policy_parse(v);
        else
            return phx_cli_kb_usage();
        i++;
        if (dim < 0 || capacity < 0 || ttl < 0 || metric < 0 || policy < 0) {
            fprintf(stderr,
                    "phx kb create: bad value for %s: %s (dim 1..%d, metric cosine|dot|l2, "
                    "policy score|lru|lfu|none, capacity and ttl >= 0)\n",
                    a, v, PHX_KB_MAX_DIM);
            return PHX_EXIT_USAGE;
        }
    }
    if (dim == 0) {
        fprintf(stderr, "phx kb create: --dim is required\n");
        return PHX_EXIT_USAGE;
    }
    char key[160], d[24], c[24], t[24], now[24], gen[27];
    phx_kb_key(key, sizeof(key), name, "meta");
    snprintf(d, sizeof(d), "%ld", dim);
    snprintf(c, sizeof(c), "%ld", capacity);
    snprintf(t, sizeof(t), "%ld", ttl);
    snprintf(now, sizeof(now), "%lld", (long long)phx_now_ms());
    phx_id_new(gen);
    const char *av[8] = {key, d,  phx_kb_metric_name(metric), c, t, phx_kb_policy_name(policy),
                         now, gen};
    redisReply *rep = phx_redis_eval(r, &phx_cli_kb_create_lua, 1, 8, av, NULL, err);
    if (!rep)
        return PHX_EXIT_INFRA;
    int created = rep->integer == 1;
    freeReplyObject(rep);
    if (!created) {
        fprintf(stderr, "phx kb create: collection %s already exists\n", name);
        return PHX_EXIT_FAILED;
    }
    if (!(rep = phx_redis_cmd(r, err, "SADD %s %s", PHX_KB_COLLECTIONS, name)))
        return PHX_EXIT_INFRA;
    freeReplyObject(rep);
    printf("{\"collection\":\"%s\",\"dim\":%ld,\"metric\":\"%s\",\"capacity\":%ld,\"ttl_s\":%ld,"
           "\"policy\":\"%s\"}\n",
           name, dim, phx_kb_metric_name(metric), capacity, ttl, phx_kb_policy_name(policy));
    return PHX_EXIT_OK;
}

/* Delete every key of the collection, settings first (replicas stop serving it at their next
 * catch-up), then leave the collection set. */
static int phx_cli_kb_drop(phx_redis *r, const char *name, phx_err *err)
{
    static const char *const parts[] = {
        "meta", "rec",        "hits",           "seen",       "ttl",      "log",
        "seq",  "quarantine", "quarantine:why", "prune_lock", "prune_due"};
    long long gone = 0;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        char key[160];
        phx_kb_key(key, sizeof(key), name, parts[i]);
        redisReply *rep = phx_redis_cmd(r, err, "DEL %s", key);
        if (!rep)
            return PHX_EXIT_INFRA;
        if (i == 0)
            gone = rep->integer;
        freeReplyObject(rep);
    }
    redisReply *rep = phx_redis_cmd(r, err, "SREM %s %s", PHX_KB_COLLECTIONS, name);
    if (!rep)
        return PHX_EXIT_INFRA;
    freeReplyObject(rep);
    if (!gone) {
        fprintf(stderr, "phx kb drop: no collection %s\n", name);
        return PHX_EXIT_FAILED;
    }
    return PHX_EXIT_OK;
}

/* An integer reply of cmd on collection name's key part, or -1. */
static long long phx_cli_kb_count(phx_redis *r, const char *cmd, const char *name, const char *part,
                                  phx_err *err)
{
    char key[160];
    phx_kb_key(key, sizeof(key), name, part);
    redisReply *rep = phx_redis_cmd(r, err, "%s %s", cmd, key);
    long long v = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    if (rep)
        freeReplyObject(rep);
    return v;
}

/* One collection as JSON: its settings and counts. NULL when it does not exist. */
static json_t *phx_cli_kb_describe(phx_redis *r, const char *name, int full, phx_err *err)
{
    char key[160];
    phx_kb_key(key, sizeof(key), name, "meta");
    redisReply *h = phx_redis_cmd(r, err, "HGETALL %s", key);
    if (!h || h->elements == 0) {
        if (h)
            freeReplyObject(h);
        return NULL;
    }
    json_t *o = json_pack("{s:s}", "collection", name);
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const char *k = h->element[i]->str, *v = h->element[i + 1]->str;
        if (strcmp(k, "metric") == 0 || strcmp(k, "policy") == 0 || strcmp(k, "gen") == 0)
            json_object_set_new(o, k, json_string(v));
        else
            json_object_set_new(o, k, json_integer(strtoll(v, NULL, 10)));
    }
    freeReplyObject(h);
    json_object_set_new(o, "records", json_integer(phx_cli_kb_count(r, "HLEN", name, "rec", err)));
    if (full) {
        json_object_set_new(o, "quarantined",
                            json_integer(phx_cli_kb_count(r, "HLEN", name, "quarantine", err)));
        json_object_set_new(o, "with_ttl",
                            json_integer(phx_cli_kb_count(r, "ZCARD", name, "ttl", err)));
        json_object_set_new(o, "log_entries",
                            json_integer(phx_cli_kb_count(r, "XLEN", name, "log", err)));
        phx_kb_key(key, sizeof(key), name, "seq");
        redisReply *s = phx_redis_cmd(r, err, "GET %s", key);
        json_object_set_new(
            o, "log_seq",
            json_integer(s && s->type == REDIS_REPLY_STRING ? strtoll(s->str, NULL, 10) : 0));
        if (s)
            freeReplyObject(s);
        phx_kb_key(key, sizeof(key), name, "rec");
        redisReply *m = phx_redis_cmd(r, err, "MEMORY USAGE %s SAMPLES 0", key);
        json_object_set_new(o, "redis_bytes",
                            json_integer(m && m->type == REDIS_REPLY_INTEGER ? m->integer : 0));
        if (m)
            freeReplyObject(m);
    }
    return o;
}

int phx_cli_kb(const phx_cli_env *env, int argc, char **argv)
{
    if (argc < 2)
        return phx_cli_kb_usage();
    const char *cmd = argv[1];
    int create = strcmp(cmd, "create") == 0 && argc >= 3,
        list = strcmp(cmd, "list") == 0 && argc == 2;
    int stats = strcmp(cmd, "stats") == 0 && argc == 3;
    int drop = strcmp(cmd, "drop") == 0 && argc == 3;
    int backup = strcmp(cmd, "backup") == 0 && argc == 4;
    int restore = strcmp(cmd, "restore") == 0 && argc == 3;
    if (!(create || list || stats || drop || backup || restore))
        return phx_cli_kb_usage();
    if ((create || stats || drop || backup) && !phx_kb_name_valid(argv[2])) {
        fprintf(stderr, "phx kb: collection name must match [A-Za-z0-9._-]{1,64}\n");
        return PHX_EXIT_USAGE;
    }
    phx_err err;
    phx_err_clear(&err);
    phx_redis *r = phx_redis_new(env->redis_url, getenv("PHX_REDIS_PASSWORD_FILE"), 5000, &err);
    int rc = PHX_EXIT_INFRA;
    if (!r)
        goto out;
    if (create) {
        rc = phx_cli_kb_create(r, argc - 2, argv + 2, &err);
    } else if (drop) {
        rc = phx_cli_kb_drop(r, argv[2], &err);
    } else if (backup) {
        rc = phx_cli_kb_backup(r, argv[2], argv[3], &err);
    } else if (restore) {
        rc = phx_cli_kb_restore(r, argv[2], &err);
    } else if (stats) {
        json_t *o = phx_cli_kb_describe(r, argv[2], 1, &err);
        if (!o && err.code[0])
            goto out;
        if (!o) {
            fprintf(stderr, "phx kb stats: no collection %s\n", argv[2]);
            rc = PHX_EXIT_FAILED;
            goto out;
        }
        char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        printf("%s\n", s);
        free(s);
        json_decref(o);
        rc = PHX_EXIT_OK;
    } else {
        redisReply *m = phx_redis_cmd(r, &err, "SMEMBERS %s", PHX_KB_COLLECTIONS);
        if (!m)
            goto out;
        rc = PHX_EXIT_OK;
        for (size_t i = 0; i < m->elements; i++) {
            json_t *o = phx_cli_kb_describe(r, m->element[i]->str, 0, &err);
            if (!o)
                continue;
            char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
            printf("%s\n", s);
            free(s);
            json_decref(o);
        }
        freeReplyObject(m);
    }
out:
    if (rc == PHX_EXIT_INFRA)
        fprintf(stderr, "phx kb: %s\n", err.message);
    phx_redis_free(r);
    return rc;
}
