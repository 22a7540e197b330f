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

void phx_key_principal(char *buf, size_t n, const char *tenant, const char *principal)
{
    snprintf(buf, n, "phx:principal:%s:%s", tenant, principal);
}

void phx_key_idem(char *buf, size_t n, const char *tenant, const char *key)
{
    /* The client's key is hashed: it may be long or contain any byte. */
    char h[65];
    phx_sha256_hex(key, strlen(key), h);
    snprintf(buf, n, "phx:idem:%s:%s", tenant, h);
}

/* Only create: never overwrite a job someone else stored or the planner already runs. The
 * principal's roles are kept with the job: the planner checks the job's step kinds against
 * them (the ingress verified the identity; the planner cannot see the credential).
 *
 * An existing job with the same tenant and fingerprint is the same submission seen again: the
 * client resent it after losing our answer, or the Redis client resent this very script after
 * the connection dropped on its reply. Answering "taken" then would strand the job stored but
 * never published, so the script says whether it still waits for its Kafka publish (2) or the
 * planner has taken it up (3). A job that came straight from the topic has no fingerprint and
 * is never matched. */
static const phx_script phx_submit_script = {
    "job_submit",
    "local cur = redis.call('HMGET', KEYS[1], 'state', 'tenant', 'fingerprint')\n"
    "if cur[1] then\n"
    "  if cur[2] ~= ARGV[1] or cur[3] ~= ARGV[6] then return 0 end\n"
    "  if cur[1] == 'submitted' then return 2 end\n"
    "  return 3\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'state', 'submitted', 'tenant', ARGV[1], 'spec', ARGV[2],\n"
    "           'created_ms', ARGV[3], 'principal', ARGV[4], 'roles', ARGV[5],\n"
    "           'fingerprint', ARGV[6])\n"
    "return 1\n"};

void phx_key_tenant_jobs(char *buf, size_t n, const char *tenant)
{
    snprintf(buf, n, "phx:jobs:%s", tenant);
}

void phx_jobstore_submit_call(const phx_job_submit *s, phx_job_submit_call *c)
{
    phx_key_job(c->key, sizeof(c->key), s->id);
    phx_key_tenant_jobs(c->list, sizeof(c->list), s->tenant);
    snprintf(c->now, sizeof(c->now), "%lld", (long long)s->now_ms);
    /* One round trip for the job and its listing entry (they live in different slots, so not
     * one script). The ZADD is NX: it never touches an entry that exists, and its reply says
     * whether it added one, which makes the rare follow-ups below exact. */
    const char *argv[] = {
        c->key, s->tenant, s->spec, c->now, s->principal, s->roles ? s->roles : "", s->fingerprint};
    const char *zadd[] = {"ZADD", c->list, "NX", c->now, s->id};
    memcpy(c->argv, argv, sizeof(argv));
    memcpy(c->zadd, zadd, sizeof(zadd));
    c->calls[0] = (phx_redis_call){&phx_submit_script, 1, 7, c->argv, NULL};
    c->calls[1] = (phx_redis_call){NULL, 0, 5, c->zadd, NULL};
}

int phx_jobstore_submit_finish(phx_redis *r, const phx_job_submit *s, phx_job_submit_call *c,
                               redisReply **rep, phx_err *err)
{
    if (rep[0]->type == REDIS_REPLY_ERROR || rep[1]->type == REDIS_REPLY_ERROR)
        return phx_err_set(err, "redis_error", 0, "redis: %s",
                           rep[0]->type == REDIS_REPLY_ERROR ? rep[0]->str : rep[1]->str);
    int rc = rep[0]->type == REDIS_REPLY_INTEGER ? (int)rep[0]->integer : -1;
    int added = rep[1]->type == REDIS_REPLY_INTEGER && rep[1]->integer == 1;
    if (rc < PHX_SUBMIT_TAKEN || rc > PHX_SUBMIT_TAKEN_UP)
        return phx_err_set(err, "redis_error", 0, "job_submit: unexpected reply");
    const char *fix[5];
    int nfix = 0;
    if (rc == PHX_SUBMIT_TAKEN && added) {
        /* The id is taken (maybe by another tenant's job): take back the entry we just added,
         * so the listing never names a job that is not ours (the listing also checks each
         * job's tenant, for the moment in between). */
        fix[0] = "ZREM", fix[1] = c->list, fix[2] = s->id, nfix = 3;
    } else if (rc == PHX_SUBMIT_STORED && !added) {
        /* Stored, but the listing already named this id: an expired earlier job of ours with
         * the same id. Date the entry from this job, as the listing's order expects. */
        fix[0] = "ZADD", fix[1] = c->list, fix[2] = "XX", fix[3] = c->now, fix[4] = s->id;
        nfix = 5;
    }
    if (nfix) {
        redisReply *f = phx_redis_cmdv(r, err, nfix, fix, NULL);
        if (!f)
            return -1;
        freeReplyObject(f);
    }
    return rc;
}

int phx_jobstore_submit(phx_redis *r, const phx_job_submit *s, phx_err *err)
{
    phx_job_submit_call c;
    phx_jobstore_submit_call(s, &c);
    redisReply *rep[2] = {0};
    if (phx_redis_pipeline(r, c.calls, 2, rep, err) < 0)
        return -1;
    int rc = phx_jobstore_submit_finish(r, s, &c, rep, err);
    freeReplyObject(rep[0]);
    freeReplyObject(rep[1]);
    return rc;
}

/* Roles the planner must check a job against. A job stored by the ingress carries the roles
 * of the principal the ingress authenticated (in any state); a job that came straight to the topic
 * naming a principal gets that principal's registered roles; an unknown principal gets none. */
int phx_jobstore_roles(phx_redis *r, const char *id, const char *tenant, const char *principal,
                       char **roles, phx_err *err)
{
    char key[384];
    *roles = NULL;
    phx_key_job(key, sizeof(key), id);
    redisReply *rep = phx_redis_cmd(r, err, "HMGET %s tenant principal roles", key);
    if (!rep)
        return -1;
    /* Only the ingress writes a roles field, and a stored spec is never replaced by a later
     * message, so a redelivered job is judged exactly as its first delivery was. */
    if (rep->elements == 3 && rep->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(rep->element[0]->str, tenant) == 0 && rep->element[1]->type == REDIS_REPLY_STRING &&
        strcmp(rep->element[1]->str, principal ? principal : "") == 0 &&
        rep->element[2]->type == REDIS_REPLY_STRING) {
        *roles = phx_xstrdup(rep->element[2]->str);
        freeReplyObject(rep);
        return 1;
    }
    freeReplyObject(rep);
    if (!principal || !*principal)
        return 0;
    phx_key_principal(key, sizeof(key), tenant, principal);
    if (!(rep = phx_redis_cmd(r, err, "HGET %s roles", key)))
        return -1;
    *roles = phx_xstrdup(rep->type == REDIS_REPLY_STRING ? rep->str : "");
    freeReplyObject(rep);
    return 1;
}

/* Cancel: only a job still in flight, only for its own tenant. reply_sent=0 makes the
 * planner send the "cancelled" reply whoever sees the job next. */
static const phx_script phx_cancel_script = {
    "job_cancel",
    "local st = redis.call('HGET', KEYS[1], 'state')\n"
    "if not st or redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then return {0, ''} end\n"
    "if st ~= 'submitted' and st ~= 'running' then return {2, st} end\n"
    "redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_ms', ARGV[2], 'reply_sent', '0',\n"
    "  'error', ARGV[3])\n"
    "return {1, 'cancelled'}\n"};

int phx_jobstore_cancel(phx_redis *r, const char *id, const char *tenant, const char *by,
                        int64_t now_ms, char **state, phx_err *err)
{
    char key[256], now[32], msg[300];
    phx_key_job(key, sizeof(key), id);
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    snprintf(msg, sizeof(msg), "cancelled by %s", by);
    phx_utf8_scrub(msg);
    json_t *ej = json_pack("{s:s, s:s}", "code", "cancelled", "message", msg);
    char *e = json_dumps(ej, JSON_COMPACT);
    json_decref(ej);
    const char *argv[] = {key, tenant, now, e};
    redisReply *rep = phx_redis_eval(r, &phx_cancel_script, 1, 4, argv, NULL, err);
    free(e);
    if (!rep)
        return -1;
    int rc = (int)rep->element[0]->integer;
    if (state)
        *state = phx_xstrdup(rep->element[1]->str);
    freeReplyObject(rep);
    if (rc != 1)
        return rc;
    /* Wake the planner now (its deadline timer), rather than at the job's real deadline. */
    if (!(rep = phx_redis_cmd(r, err, "ZADD %s %s %s", PHX_KEY_DEADLINES, now, id)))
        return -1;
    freeReplyObject(rep);
    return 1;
}

char *phx_jobstore_idem_claim(phx_redis *r, const char *tenant, const char *key, const char *job_id,
                              phx_err *err)
{
    char k[256];
    phx_key_idem(k, sizeof(k), tenant, key);
    redisReply *rep = phx_redis_cmd(r, err, "SET %s %s NX EX %d GET", k, job_id, PHX_IDEM_TTL_S);
    if (!rep)
        return NULL;
    /* SET ... NX GET returns the old value when the key existed, nil when we set it. The
     * ingress's claims carry the body's fingerprint after the id ("ID FINGERPRINT"). */
    const char *old = rep->type == REDIS_REPLY_STRING ? rep->str : job_id;
    char *owner = phx_xstrndup(old, strcspn(old, " "));
    freeReplyObject(rep);
    return owner;
}

/* Parse a JSON field value stored as text; on bad text keep it as a string. */
static json_t *phx_jobstore_json(const char *s)
{
    json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(s);
}

json_t *phx_jobstore_hash_from(const redisReply *rep)
{
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < rep->elements; i += 2)
        json_object_set_new(o, rep->element[i]->str,
                            json_stringn(rep->element[i + 1]->str, rep->element[i + 1]->len));
    return o;
}

static json_t *phx_jobstore_hash(phx_redis *r, const char *key, phx_err *err)
{
    redisReply *rep = phx_redis_cmd(r, err, "HGETALL %s", key);
    if (!rep)
        return NULL;
    json_t *o = phx_jobstore_hash_from(rep);
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
    view = phx_jobstore_view_build(id, job, steps, out);
done:
    json_decref(job);
    json_decref(steps);
    json_decref(out);
    return view;
}

json_t *phx_jobstore_view_build(const char *id, json_t *job, json_t *steps, json_t *out)
{
    json_t *view = json_object();
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
    /* A quarantined job (security.h) shows no outputs: they stay in Redis for review, and
     * `phx security release` brings them back. */
    const char *q = json_string_value(json_object_get(job, "quarantine"));
    if (q && *q)
        json_object_set_new(view, "quarantined", json_pack("{s:s}", "response", q));
    else
        json_object_foreach(out, name, v)
            json_object_set_new(ov, name, phx_jobstore_json(json_string_value(v)));
    json_object_set_new(view, "outputs", ov);
    return view;
}
