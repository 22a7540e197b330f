/* state.c -- Lua compare-and-set transitions of jobs and steps (see state.h and
 * lib/jobstore.h for the key layout). Scripts only touch the keys of one job, all hash-tagged
 * {ID}, so they run unchanged on Redis Cluster. */
#include "state.h"
#include "jobstore.h"

#include <stdlib.h>
#include <string.h>

static const phx_script phx_create_script = {
    "job_create",
    "local st = redis.call('HGET', KEYS[1], 'state')\n"
    "if st and st ~= 'submitted' then return {0, st} end\n"
    "local created = redis.call('HGET', KEYS[1], 'created_ms') or ARGV[5]\n"
    "redis.call('HSET', KEYS[1], 'state', 'running', 'tenant', ARGV[1], 'principal', ARGV[2],\n"
    "  'reply_to', ARGV[3], 'spec', ARGV[4], 'created_ms', created, 'deadline_at', ARGV[6],\n"
    "  'trace', ARGV[7], 'reply_sent', '0')\n"
    "for i = 8, #ARGV do\n"
    "  redis.call('HSET', KEYS[2], ARGV[i], 'pending', ARGV[i] .. ':attempt', '0')\n"
    "end\n"
    "return {1, 'running'}\n"};

static const phx_script phx_reject_script = {
    "job_reject",
    "local st = redis.call('HGET', KEYS[1], 'state')\n"
    "if st and st ~= 'submitted' then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'state', 'rejected', 'tenant', ARGV[1], 'spec', ARGV[2],\n"
    "  'error', ARGV[3], 'finished_ms', ARGV[4], 'reply_sent', '1')\n"
    "if not redis.call('HGET', KEYS[1], 'created_ms') then\n"
    "  redis.call('HSET', KEYS[1], 'created_ms', ARGV[4]) end\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[5])\n"
    "return 1\n"};

static const phx_script phx_dispatch_script = {
    "step_dispatch",
    "local st = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local a = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. ':attempt') or '0')\n"
    "if (st ~= 'pending' and st ~= 'retry_wait') or a ~= tonumber(ARGV[2]) then return 0 end\n"
    "a = a + 1\n"
    "redis.call('HSET', KEYS[1], ARGV[1], 'dispatched', ARGV[1] .. ':attempt', a)\n"
    "if not redis.call('HGET', KEYS[1], ARGV[1] .. ':t0') then\n"
    "  redis.call('HSET', KEYS[1], ARGV[1] .. ':t0', ARGV[3]) end\n"
    "return a\n"};

/* ARGV: step, attempt, output|'' , error|'', retryable, max_attempts, now */
static const phx_script phx_result_script = {
    "step_result",
    "local st = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local a = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. ':attempt') or '0')\n"
    "if st ~= 'dispatched' or a ~= tonumber(ARGV[2]) then return {0, st or ''} end\n"
    "if ARGV[4] == '' then\n"
    "  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])\n"
    "  redis.call('HSET', KEYS[1], ARGV[1], 'succeeded', ARGV[1] .. ':t1', ARGV[7])\n"
    "  redis.call('HDEL', KEYS[1], ARGV[1] .. ':err')\n"
    "  return {1, 'succeeded'}\n"
    "end\n"
    "local ns = 'failed'\n"
    "if ARGV[5] == '1' and a < tonumber(ARGV[6]) then ns = 'retry_wait' end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ns, ARGV[1] .. ':err', ARGV[4])\n"
    "if ns == 'failed' then redis.call('HSET', KEYS[1], ARGV[1] .. ':t1', ARGV[7]) end\n"
    "return {1, ns}\n"};

/* ARGV: step, from, to, expect_attempt (-1 = any), error|'', now */
static const phx_script phx_cas_script = {
    "step_cas",
    "local st = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local a = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. ':attempt') or '0')\n"
    "if st ~= ARGV[2] then return 0 end\n"
    "if tonumber(ARGV[4]) >= 0 and a ~= tonumber(ARGV[4]) then return 0 end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])\n"
    "if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], ARGV[1] .. ':err', ARGV[5]) end\n"
    "if ARGV[3] == 'failed' or ARGV[3] == 'skipped' then\n"
    "  redis.call('HSET', KEYS[1], ARGV[1] .. ':t1', ARGV[6]) end\n"
    "return 1\n"};

static const phx_script phx_finish_script = {
    "job_finish", "if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end\n"
                  "redis.call('HSET', KEYS[1], 'state', ARGV[1], 'finished_ms', ARGV[3])\n"
                  "if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[2]) end\n"
                  "return 1\n"};

/* reply_sent: '0' owed, 'p<ms>' being sent since ms (a lease), '1' confirmed. A lease older
 * than ARGV[2] ms means its holder died before confirming: the reply is owed again. */
static const phx_script phx_reply_claim_script = {
    "reply_claim", "local rs = redis.call('HGET', KEYS[1], 'reply_sent')\n"
                   "if not rs or rs == '1' then return 0 end\n"
                   "if rs ~= '0' then\n"
                   "  local t = tonumber(string.sub(rs, 2)) or 0\n"
                   "  if tonumber(ARGV[1]) - t < tonumber(ARGV[2]) then return 0 end\n"
                   "end\n"
                   "redis.call('HSET', KEYS[1], 'reply_sent', 'p' .. ARGV[1])\n"
                   "return 1\n"};

/* Keys of one job, built once per call. */
typedef struct phx_jkeys {
    char job[192], steps[200], out[200];
} phx_jkeys;

static void phx_jkeys_init(phx_jkeys *k, const char *id)
{
    phx_key_job(k->job, sizeof(k->job), id);
    phx_key_steps(k->steps, sizeof(k->steps), id);
    phx_key_out(k->out, sizeof(k->out), id);
}

static int phx_state_int(redisReply *rep)
{
    int v = rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : 0;
    freeReplyObject(rep);
    return v;
}

int phx_state_job_create(phx_redis *r, const phx_job_new *j, char **state, phx_err *err)
{
    phx_jkeys k;
    phx_jkeys_init(&k, j->id);
    size_t nsteps = json_array_size(j->step_ids);
    int argc = 9 + (int)nsteps;
    const char **argv = calloc((size_t)argc, sizeof(*argv));
    char now[32], dl[32];
    snprintf(now, sizeof(now), "%lld", (long long)j->now_ms);
    snprintf(dl, sizeof(dl), "%lld", (long long)j->deadline_at);
    argv[0] = k.job, argv[1] = k.steps;
    argv[2] = j->tenant, argv[3] = j->principal, argv[4] = j->reply_to, argv[5] = j->spec;
    argv[6] = now, argv[7] = dl, argv[8] = j->trace;
    for (size_t i = 0; i < nsteps; i++)
        argv[9 + i] = json_string_value(json_array_get(j->step_ids, i));
    redisReply *rep = phx_redis_eval(r, &phx_create_script, 2, argc, argv, NULL, err);
    free(argv);
    if (!rep)
        return -1;
    int created = (int)rep->element[0]->integer;
    if (state)
        *state = strdup(rep->element[1]->str);
    freeReplyObject(rep);
    return created;
}

int phx_state_job_reject(phx_redis *r, const char *id, const char *tenant, const char *spec,
                         const char *error_json, int64_t now_ms, phx_err *err)
{
    phx_jkeys k;
    phx_jkeys_init(&k, id);
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    const char *argv[] = {k.job, tenant, spec, error_json, now, "604800"};
    redisReply *rep = phx_redis_eval(r, &phx_reject_script, 1, 6, argv, NULL, err);
    return rep ? phx_state_int(rep) : -1;
}

int phx_state_step_dispatch(phx_redis *r, const char *job, const char *step, int expect_attempt,
                            int64_t now_ms, phx_err *err)
{
    phx_jkeys k;
    phx_jkeys_init(&k, job);
    char a[16], now[32];
    snprintf(a, sizeof(a), "%d", expect_attempt);
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    const char *argv[] = {k.steps, step, a, now};
    redisReply *rep = phx_redis_eval(r, &phx_dispatch_script, 1, 4, argv, NULL, err);
    return rep ? phx_state_int(rep) : -1;
}

int phx_state_step_result(phx_redis *r, const char *job, const char *step, int attempt,
                          const char *output_json, const char *error_json, int retryable,
                          int max_attempts, int64_t now_ms, const char **new_state, phx_err *err)
{
    phx_jkeys k;
    phx_jkeys_init(&k, job);
    char a[16], m[16], now[32];
    snprintf(a, sizeof(a), "%d", attempt);
    snprintf(m, sizeof(m), "%d", max_attempts);
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    const char *argv[] = {k.steps,
                          k.out,
                          step,
                          a,
                          output_json ? output_json : "",
                          error_json ? error_json : "",
                          retryable ? "1" : "0",
                          m,
                          now};
    redisReply *rep = phx_redis_eval(r, &phx_result_script, 2, 9, argv, NULL, err);
    if (!rep)
        return -1;
    int applied = (int)rep->element[0]->integer;
    const char *ns = rep->element[1]->str;
    *new_state = strcmp(ns, "succeeded") == 0    ? "succeeded"
                 : strcmp(ns, "retry_wait") == 0 ? "retry_wait"
                 : strcmp(ns, "failed") == 0     ? "failed"
                                                 : "other";
    freeReplyObject(rep);
    return applied;
}

int phx_state_step_cas(phx_redis *r, const char *job, const char *step, const char *from,
                       const char *to, int expect_attempt, const char *error_json, int64_t now_ms,
                       phx_err *err)
{
    phx_jkeys k;
    phx_jkeys_init(&k, job);
    char a[16], now[32];
    snprintf(a, sizeof(a), "%d", expect_attempt);
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    const char *argv[] = {k.steps, step, from, to, a, error_json ? error_json : "", now};
    redisReply *rep = phx_redis_eval(r, &phx_cas_script, 1, 7, argv, NULL, err);
    return rep ? phx_state_int(rep) : -1;
}

int phx_state_job_finish(phx_redis *r, const char *job, const char *status, const char *error_json,
                         int64_t now_ms, phx_err *err)
{
    phx_jkeys k;
    phx_jkeys_init(&k, job);
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    const char *argv[] = {k.job, status, error_json ? error_json : "", now};
    redisReply *rep = phx_redis_eval(r, &phx_finish_script, 1, 4, argv, NULL, err);
    return rep ? phx_state_int(rep) : -1;
}

int phx_state_reply_claim(phx_redis *r, const char *job, int64_t now_ms, int64_t lease_ms,
                          phx_err *err)
{
    phx_jkeys k;
    phx_jkeys_init(&k, job);
    char now[32], lease[32];
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
    const char *argv[] = {k.job, now, lease};
    redisReply *rep = phx_redis_eval(r, &phx_reply_claim_script, 1, 3, argv, NULL, err);
    return rep ? phx_state_int(rep) : -1;
}
