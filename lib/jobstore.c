/* jobstore.c -- job keys, submission, status view and API keys in Redis (see jobstore.h). */
#include "jobstore.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void phx_key_job(char *buf, size_t n, const char *id)
{
    snprintf(buf, n, "phx:job:{%s}", id);
}

void phx_key_steps(char *buf, size_t n, const char *id)
{
    snprintf(buf, n, "phx:job:{%s}:steps", id);
}

void phx_key_out(char *buf, size_t n, const char *id)
{
    snprintf(buf, n, "phx:job:{%s}:out", id);
}

void phx_key_idem(char *buf, size_t n, const char *tenant, const char *key)
{
    /* The client's key is hashed: it may be long or contain any byte. */
    char h[65];
    phx_sha256_hex(key, strlen(key), h);
    snprintf(buf, n, "phx:idem:%s:%s", tenant, h);
}

/* Only create: never overwrite a job someone else stored or the planner already runs. */
static const phx_script phx_submit_script = {
    "job_submit",
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'state', 'submitted', 'tenant', ARGV[1], 'spec', ARGV[2],\n"
    "           'created_ms', ARGV[3])\n"
    "return 1\n"};

int phx_jobstore_submit(phx_redis *r, const char *id, const char *tenant, const char *spec,
                        int64_t now_ms, phx_err *err)
{
    char key[256], now[32];
    phx_key_job(key, sizeof(key), id);
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    const char *argv[] = {key, tenant, spec, now};
    redisReply *rep = phx_redis_eval(r, &phx_submit_script, 1, 4, argv, NULL, err);
    if (!rep)
        return -1;
    int rc = (int)rep->integer;
    freeReplyObject(rep);
    return rc;
}

char *phx_jobstore_idem_claim(phx_redis *r, const char *tenant, const char *key, const char *job_id,
                              phx_err *err)
{
    char k[256];
    phx_key_idem(k, sizeof(k), tenant, key);
    redisReply *rep = phx_redis_cmd(r, err, "SET %s %s NX EX %d GET", k, job_id, PHX_IDEM_TTL_S);
    if (!rep)
        return NULL;
    /* SET ... NX GET returns the old value when the key existed, nil when we set it. */
    char *owner = strdup(rep->type == REDIS_REPLY_STRING ? rep->str : job_id);
    freeReplyObject(rep);
    return owner;
}

/* Parse a JSON field value stored as text; on bad text keep it as a string. */
static json_t *phx_jobstore_json(const char *s)
{
    json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(s);
}

static json_t *phx_jobstore_hash(phx_redis *r, const char *key, phx_err *err)
{
    redisReply *rep = phx_redis_cmd(r, err, "HGETALL %s", key);
    if (!rep)
        return NULL;
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < rep->elements; i += 2)
        json_object_set_new(o, rep->element[i]->str,
                            json_stringn(rep->element[i + 1]->str, rep->element[i + 1]->len));
    freeReplyObject(rep);
    return o;
}

static void phx_jobstore_copy_int(json_t *dst, const char *name, json_t *src)
{
    const char *s = json_string_value(json_object_get(src, name));
    if (s && *s)
        json_object_set_new(dst, name, json_integer(strtoll(s, NULL, 10)));
}

json_t *phx_jobstore_view(phx_redis *r, const char *id, phx_err *err)
{
    char k[256];
    json_t *job = NULL, *steps = NULL, *out = NULL, *view = NULL;
    phx_key_job(k, sizeof(k), id);
    if (!(job = phx_jobstore_hash(r, k, err)))
        goto done;
    if (json_object_size(job) == 0) {
        phx_err_set(err, "not_found", 0, "job %s not found", id);
        goto done;
    }
    phx_key_steps(k, sizeof(k), id);
    if (!(steps = phx_jobstore_hash(r, k, err)))
        goto done;
    phx_key_out(k, sizeof(k), id);
    if (!(out = phx_jobstore_hash(r, k, err)))
        goto done;

    view = json_object();
    json_object_set_new(view, "job_id", json_string(id));
    json_object_set(view, "tenant", json_object_get(job, "tenant"));
    json_object_set(view, "state", json_object_get(job, "state"));
    phx_jobstore_copy_int(view, "created_ms", job);
    phx_jobstore_copy_int(view, "finished_ms", job);
    const char *e = json_string_value(json_object_get(job, "error"));
    if (e && *e)
        json_object_set_new(view, "error", phx_jobstore_json(e));

    json_t *sv = json_object();
    const char *name;
    json_t *v;
    json_object_foreach(steps, name, v)
    {
        if (strchr(name, ':'))
            continue; /* STEP:attempt, STEP:err, ... are read below */
        json_t *s = json_object();
        json_object_set(s, "state", v);
        char f[160];
        snprintf(f, sizeof(f), "%s:attempt", name);
        const char *a = json_string_value(json_object_get(steps, f));
        json_object_set_new(s, "attempts", json_integer(a ? strtoll(a, NULL, 10) : 0));
        snprintf(f, sizeof(f), "%s:err", name);
        const char *se = json_string_value(json_object_get(steps, f));
        if (se && *se)
            json_object_set_new(s, "error", phx_jobstore_json(se));
        json_object_set_new(sv, name, s);
    }
    json_object_set_new(view, "steps", sv);
    json_t *ov = json_object();
    json_object_foreach(out, name, v)
        json_object_set_new(ov, name, phx_jobstore_json(json_string_value(v)));
    json_object_set_new(view, "outputs", ov);
done:
    json_decref(job);
    json_decref(steps);
    json_decref(out);
    return view;
}

int phx_apikey_lookup(phx_redis *r, const char *secret, char **tenant, char **principal,
                      char **roles, phx_err *err)
{
    char h[65], k[128];
    phx_sha256_hex(secret, strlen(secret), h);
    snprintf(k, sizeof(k), "phx:apikey:%s", h);
    redisReply *rep = phx_redis_cmd(r, err, "HMGET %s tenant principal roles revoked", k);
    if (!rep)
        return -1;
    int rc = -1;
    if (rep->elements != 4 || rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[3]->type == REDIS_REPLY_STRING) {
        phx_err_set(err, "unauthorized", 0, "unknown or revoked API key");
        goto out;
    }
    *tenant = strdup(rep->element[0]->str);
    *principal = strdup(rep->element[1]->type == REDIS_REPLY_STRING ? rep->element[1]->str : "");
    *roles = strdup(rep->element[2]->type == REDIS_REPLY_STRING ? rep->element[2]->str : "");
    rc = 0;
out:
    freeReplyObject(rep);
    return rc;
}

int phx_apikey_store(phx_redis *r, const char *secret, const char *tenant, const char *principal,
                     const char *roles, phx_err *err)
{
    char h[65], k[128];
    phx_sha256_hex(secret, strlen(secret), h);
    snprintf(k, sizeof(k), "phx:apikey:%s", h);
    redisReply *rep =
        phx_redis_cmd(r, err, "HSET %s tenant %s principal %s roles %s created_ms %lld", k, tenant,
                      principal, roles, (long long)phx_now_ms());
    if (!rep)
        return -1;
    freeReplyObject(rep);
    return 0;
}
