/* state.c -- Lua compare-and-set transitions of jobs and steps (see state.h and
 * lib/jobstore.h for the key layout). Scripts only touch the keys of one job, all hash-tagged
 * {ID}, so they run unchanged on Redis Cluster. */
#include "state.h"
#include "jobstore.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* KEYS: job, steps. ARGV: tenant, principal, reply_to, spec, now, deadline_at, trace,
 * autofinish, n, the n step ids, then the root steps to dispatch as attempt 1 in the same
 * step (phx_job_new.dispatch). Only a job created here dispatches: one that existed is left
 * to advance(), which finds its steps as they are. */
static const phx_script phx_create_script = {
    "job_create",
    "local st = redis.call('HGET', KEYS[1], 'state')\n"
    "if st and st ~= 'submitted' then return {0, st} end\n"
    "local created = redis.call('HGET', KEYS[1], 'created_ms') or ARGV[5]\n"
    "redis.call('HSET', KEYS[1], 'state', 'running', 'tenant', ARGV[1], 'principal', ARGV[2],\n"
    "  'reply_to', ARGV[3], 'spec', ARGV[4], 'created_ms', created, 'deadline_at', ARGV[6],\n"
    "  'trace', ARGV[7], 'reply_sent', '0', 'autofinish', ARGV[8])\n"
    "local n = tonumber(ARGV[9])\n"
    "for i = 10, 9 + n do\n"
    "  redis.call('HSET', KEYS[2], ARGV[i], 'pending', ARGV[i] .. ':attempt', '0')\n"
    "end\n"
    "for i = 10 + n, #ARGV do\n"
    "  redis.call('HSET', KEYS[2], ARGV[i], 'dispatched', ARGV[i] .. ':attempt', '1',\n"
    "    ARGV[i] .. ':t0', ARGV[5])\n"
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

/* KEYS: steps, job. The job must still be running: a cancel (or a deadline, or a gate's
 * block) that lands between advance() reading the job and this dispatch stops the task here,
 * in the same atomic step, instead of sending one more attempt of a finished job. Not
 * dispatched: 0 when the step is dispatched with the attempt we meant to send (another planner
 * sent it: its timer is the one we wrote too), -1 otherwise (nobody's attempt matches ours: the
 * timer written for it is an orphan the caller removes). */
static const phx_script phx_dispatch_script = {
    "step_dispatch",
    "local st = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local a = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. ':attempt') or '0')\n"
    "local mine = tonumber(ARGV[2]) + 1\n"
    "if redis.call('HGET', KEYS[2], 'state') ~= 'running' or\n"
    "   (st ~= 'pending' and st ~= 'retry_wait') or a ~= tonumber(ARGV[2]) then\n"
    "  if st == 'dispatched' and a == mine then return 0 end\n"
    "  return -1\n"
    "end\n"
    "a = a + 1\n"
    "redis.call('HSET', KEYS[1], ARGV[1], 'dispatched', ARGV[1] .. ':attempt', a)\n"
    "if not redis.call('HGET', KEYS[1], ARGV[1] .. ':t0') then\n"
    "  redis.call('HSET', KEYS[1], ARGV[1] .. ':t0', ARGV[3]) end\n"
    "return a\n"};

/* KEYS: steps, outputs, job. ARGV: step, attempt, output|'' , error|'', retryable,
 * max_attempts, now, then the steps to dispatch as attempt 1 if this success applies (the
 * caller found they need only this step, rendered their inputs and wrote their timers earlier
 * in the same pipeline): each one still pending at attempt 0 of a running job is dispatched
 * here, as step_dispatch would, and named in the reply after {1, 'succeeded', finished}.
 * A success that leaves every step of a job marked autofinish (no goal, no safety gate:
 * nothing for advance() to decide but "succeeded") running and succeeded also finishes the
 * job and takes its reply lease, as job_finish would (finished = 1): the finish costs no
 * round trip of its own. A step is a field F with an F:attempt field. */
static const phx_script phx_result_script = {
    "step_result",
    "local st = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local a = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. ':attempt') or '0')\n"
    "if st ~= 'dispatched' or a ~= tonumber(ARGV[2]) then return {0, st or ''} end\n"
    "if ARGV[4] == '' then\n"
    "  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])\n"
    "  redis.call('HSET', KEYS[1], ARGV[1], 'succeeded', ARGV[1] .. ':t1', ARGV[7])\n"
    "  redis.call('HDEL', KEYS[1], ARGV[1] .. ':err')\n"
    "  local res = {1, 'succeeded', 0}\n"
    "  local j = redis.call('HMGET', KEYS[3], 'state', 'autofinish')\n"
    "  if j[1] ~= 'running' then return res end\n"
    "  for i = 8, #ARGV do\n"
    "    local c = ARGV[i]\n"
    "    if redis.call('HGET', KEYS[1], c) == 'pending' and\n"
    "       tonumber(redis.call('HGET', KEYS[1], c .. ':attempt') or '0') == 0 then\n"
    "      redis.call('HSET', KEYS[1], c, 'dispatched', c .. ':attempt', '1', c .. ':t0', "
    "ARGV[7])\n"
    "      res[#res + 1] = c\n"
    "    end\n"
    "  end\n"
    "  if #res > 3 or j[2] ~= '1' then return res end\n"
    "  local h = redis.call('HGETALL', KEYS[1])\n"
    "  local f = {}\n"
    "  for i = 1, #h, 2 do f[h[i]] = h[i + 1] end\n"
    "  for k, v in pairs(f) do\n"
    "    if v ~= 'succeeded' and f[k .. ':attempt'] then return res end\n"
    "  end\n"
    "  redis.call('HSET', KEYS[3], 'state', 'succeeded', 'finished_ms', ARGV[7],\n"
    "    'reply_sent', 'p' .. ARGV[7])\n"
    "  res[3] = 1\n"
    "  return res\n"
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

/* The winner of the finish also takes the reply lease, in the same step: without it the
 * reply is marked owed ('0') while the winner's reply is still in flight, and any other actor
 * that advances the job meanwhile (a late result, a timeout of another attempt, a replica)
 * claims the "owed" reply and sends it a second time. */
static const phx_script phx_finish_script = {
    "job_finish", "if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end\n"
                  "redis.call('HSET', KEYS[1], 'state', ARGV[1], 'finished_ms', ARGV[3],\n"
                  "  'reply_sent', 'p' .. ARGV[3])\n"
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

static int phx_state_int(redisReply *rep)
{
    int v = phx_state_int_reply(rep);
    freeReplyObject(rep);
    return v;
}

int phx_state_int_reply(const redisReply *rep)
{
    return rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : 0;
}

/* Run a prepared transition on its own. */
static redisReply *phx_state_run(phx_redis *r, phx_state_call *c, phx_err *err)
{
    redisReply *rep =
        phx_redis_eval(r, c->call.script, c->call.nkeys, c->call.argc, c->call.argv, NULL, err);
    phx_state_call_free(c);
    return rep;
}

void phx_state_call_free(phx_state_call *c)
{
    if (c->call.argv != c->argv)
        free((void *)c->call.argv);
    c->call.argv = NULL;
}

static void phx_state_keys(phx_state_call *c, const char *id)
{
    memset(c, 0, sizeof(*c));
    phx_key_job(c->job, sizeof(c->job), id);
    phx_key_steps(c->steps, sizeof(c->steps), id);
    phx_key_out(c->out, sizeof(c->out), id);
}

void phx_state_job_create_call(phx_state_call *c, const phx_job_new *j)
{
    phx_state_keys(c, j->id);
    size_t nsteps = json_array_size(j->step_ids), nd = json_array_size(j->dispatch);
    int argc = 11 + (int)nsteps + (int)nd;
    const char **argv = phx_xcalloc((size_t)argc, sizeof(*argv));
    snprintf(c->now, sizeof(c->now), "%lld", (long long)j->now_ms);
    snprintf(c->m, sizeof(c->m), "%lld", (long long)j->deadline_at);
    snprintf(c->a, sizeof(c->a), "%zu", nsteps);
    argv[0] = c->job, argv[1] = c->steps;
    argv[2] = j->tenant, argv[3] = j->principal, argv[4] = j->reply_to, argv[5] = j->spec;
    argv[6] = c->now, argv[7] = c->m, argv[8] = j->trace, argv[9] = j->autofinish ? "1" : "0";
    argv[10] = c->a;
    for (size_t i = 0; i < nsteps; i++)
        argv[11 + i] = json_string_value(json_array_get(j->step_ids, i));
    for (size_t i = 0; i < nd; i++)
        argv[11 + nsteps + i] = json_string_value(json_array_get(j->dispatch, i));
    c->call = (phx_redis_call){&phx_create_script, 2, argc, argv, NULL};
}

int phx_state_job_create_reply(const redisReply *rep, char **state)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2)
        return -1;
    if (state)
        *state = phx_xstrdup(rep->element[1]->str);
    return (int)rep->element[0]->integer;
}

int phx_state_job_create(phx_redis *r, const phx_job_new *j, char **state, phx_err *err)
{
    phx_state_call c;
    phx_state_job_create_call(&c, j);
    redisReply *rep = phx_state_run(r, &c, err);
    if (!rep)
        return -1;
    int created = phx_state_job_create_reply(rep, state);
    freeReplyObject(rep);
    return created;
}

int phx_state_job_reject(phx_redis *r, const char *id, const char *tenant, const char *spec,
                         const char *error_json, int64_t now_ms, phx_err *err)
{
    phx_state_call c;
    phx_state_keys(&c, id);
    snprintf(c.now, sizeof(c.now), "%lld", (long long)now_ms);
    const char *argv[] = {c.job, tenant, spec, error_json, c.now, "604800"};
    redisReply *rep = phx_redis_eval(r, &phx_reject_script, 1, 6, argv, NULL, err);
    return rep ? phx_state_int(rep) : -1;
}

void phx_state_step_dispatch_call(phx_state_call *c, const char *job, const char *step,
                                  int expect_attempt, int64_t now_ms)
{
    phx_state_keys(c, job);
    snprintf(c->a, sizeof(c->a), "%d", expect_attempt);
    snprintf(c->now, sizeof(c->now), "%lld", (long long)now_ms);
    c->argv[0] = c->steps, c->argv[1] = c->job, c->argv[2] = step, c->argv[3] = c->a;
    c->argv[4] = c->now;
    c->call = (phx_redis_call){&phx_dispatch_script, 2, 5, c->argv, NULL};
}

void phx_state_step_result_call(phx_state_call *c, const char *job, const char *step, int attempt,
                                const char *output_json, const char *error_json, int retryable,
                                int max_attempts, int64_t now_ms, const json_t *dispatch)
{
    phx_state_keys(c, job);
    snprintf(c->a, sizeof(c->a), "%d", attempt);
    snprintf(c->m, sizeof(c->m), "%d", max_attempts);
    snprintf(c->now, sizeof(c->now), "%lld", (long long)now_ms);
    const char *argv[] = {c->steps,
                          c->out,
                          c->job,
                          step,
                          c->a,
                          output_json ? output_json : "",
                          error_json ? error_json : "",
                          retryable ? "1" : "0",
                          c->m,
                          c->now};
    size_t nd = json_array_size(dispatch);
    const char **av = c->argv;
    if (nd > 0)
        av = phx_xcalloc(10 + nd, sizeof(*av)); /* freed by phx_state_call_free */
    memcpy(av, argv, sizeof(argv));
    for (size_t i = 0; i < nd; i++)
        av[10 + i] = json_string_value(json_array_get(dispatch, i));
    c->call = (phx_redis_call){&phx_result_script, 3, 10 + (int)nd, av, NULL};
}

int phx_state_step_result_reply(const redisReply *rep, const char **new_state, int *finished)
{
    if (finished)
        *finished = rep->type == REDIS_REPLY_ARRAY && rep->elements >= 3 &&
                    rep->element[2]->type == REDIS_REPLY_INTEGER && rep->element[2]->integer == 1;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2)
        return -1;
    const char *ns = rep->element[1]->str;
    *new_state = strcmp(ns, "succeeded") == 0    ? "succeeded"
                 : strcmp(ns, "retry_wait") == 0 ? "retry_wait"
                 : strcmp(ns, "failed") == 0     ? "failed"
                                                 : "other";
    return (int)rep->element[0]->integer;
}

int phx_state_step_result(phx_redis *r, const char *job, const char *step, int attempt,
                          const char *output_json, const char *error_json, int retryable,
                          int max_attempts, int64_t now_ms, const char **new_state, phx_err *err)
{
    phx_state_call c;
    phx_state_step_result_call(&c, job, step, attempt, output_json, error_json, retryable,
                               max_attempts, now_ms, NULL);
    redisReply *rep = phx_state_run(r, &c, err);
    if (!rep)
        return -1;
    int applied = phx_state_step_result_reply(rep, new_state, NULL);
    freeReplyObject(rep);
    return applied;
}

int phx_state_step_cas(phx_redis *r, const char *job, const char *step, const char *from,
                       const char *to, int expect_attempt, const char *error_json, int64_t now_ms,
                       phx_err *err)
{
    phx_state_call c;
    phx_state_keys(&c, job);
    snprintf(c.a, sizeof(c.a), "%d", expect_attempt);
    snprintf(c.now, sizeof(c.now), "%lld", (long long)now_ms);
    const char *argv[] = {c.steps, step, from, to, c.a, error_json ? error_json : "", c.now};
    redisReply *rep = phx_redis_eval(r, &phx_cas_script, 1, 7, argv, NULL, err);
    return rep ? phx_state_int(rep) : -1;
}

void phx_state_job_finish_call(phx_state_call *c, const char *job, const char *status,
                               const char *error_json, int64_t now_ms)
{
    phx_state_keys(c, job);
    snprintf(c->now, sizeof(c->now), "%lld", (long long)now_ms);
    c->argv[0] = c->job, c->argv[1] = status, c->argv[2] = error_json ? error_json : "";
    c->argv[3] = c->now;
    c->call = (phx_redis_call){&phx_finish_script, 1, 4, c->argv, NULL};
}

int phx_state_job_finish(phx_redis *r, const char *job, const char *status, const char *error_json,
                         int64_t now_ms, phx_err *err)
{
    phx_state_call c;
    phx_state_job_finish_call(&c, job, status, error_json, now_ms);
    redisReply *rep = phx_state_run(r, &c, err);
    return rep ? phx_state_int(rep) : -1;
}

int phx_state_reply_claim(phx_redis *r, const char *job, int64_t now_ms, int64_t lease_ms,
                          phx_err *err)
{
    phx_state_call c;
    phx_state_keys(&c, job);
    snprintf(c.now, sizeof(c.now), "%lld", (long long)now_ms);
    snprintf(c.m, sizeof(c.m), "%lld", (long long)lease_ms);
    const char *argv[] = {c.job, c.now, c.m};
    redisReply *rep = phx_redis_eval(r, &phx_reply_claim_script, 1, 3, argv, NULL, err);
    return rep ? phx_state_int(rep) : -1;
}
