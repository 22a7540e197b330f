/* ratelimit.c -- GCRA over Redis (see ratelimit.h). */
#include "ratelimit.h"

#include <stdio.h>
#include <string.h>

/* KEYS: the buckets (1 or 2), then the tenant's overrides (hash). ARGV: now (ms), then per
 * bucket its override fields (per_s, burst) and its configured per_s and burst; a field present
 * in the overrides hash replaces the configured value. per_s <= 0 switches a limit off. Then,
 * optionally, a count of requests (1 when absent). Returns, per request, {allowed,
 * retry_after_ms, limit, remaining, reset_ms} of the tightest bucket (limit -1 when no limit
 * applies), one after the other in one flat array.
 *
 * A count of n is exactly n calls of one request each at the same now, in a row: each request
 * is checked against the TATs the allowed ones before it left (rounded as the stored value
 * would be), so the verdicts, the headers and the TATs stored at the end are the same. Why:
 * the ingress's group commit has many requests of one principal in a batch, and one script call
 * for all of them costs Redis one call, two reads and two writes instead of that many per
 * request (docs/benchmarks-ingress.md). */
static const phx_script phx_gcra_script = {
    "ratelimit_gcra", "local now = tonumber(ARGV[1])\n"
                      "local nb = #KEYS - 1\n"
                      "local n = tonumber(ARGV[4 * nb + 2] or '1')\n"
                      "local per, burst, tat, last = {}, {}, {}, {}\n"
                      "for i = 1, nb do\n"
                      "  local a = 4 * i - 2\n"
                      "  local o = redis.call('HMGET', KEYS[nb + 1], ARGV[a], ARGV[a + 1])\n"
                      "  per[i] = tonumber(o[1] or ARGV[a + 2]) or 0\n"
                      "  burst[i] = tonumber(o[2] or ARGV[a + 3]) or 1\n"
                      "  if burst[i] < 1 then burst[i] = 1 end\n"
                      "  if per[i] > 0 then\n"
                      "    tat[i] = tonumber(redis.call('GET', KEYS[i]) or now)\n"
                      "  end\n"
                      "end\n"
                      "local out = {}\n"
                      "for j = 1, n do\n"
                      "  local ok, retry, limit, remaining, reset = 1, 0, -1, -1, 0\n"
                      "  local newtat = {}\n"
                      "  for i = 1, nb do\n"
                      "    if per[i] > 0 then\n"
                      "      local t = 1000 / per[i]\n"
                      "      local cur = tat[i]\n"
                      "      if cur < now then cur = now end\n"
                      "      local nt = cur + t\n"
                      "      local allow_at = nt - burst[i] * t\n"
                      "      local rem = 0\n"
                      "      if allow_at > now then\n"
                      "        ok = 0\n"
                      "        if allow_at - now > retry then retry = allow_at - now end\n"
                      "      else rem = math.floor((now - allow_at) / t) end\n"
                      "      if remaining < 0 or rem < remaining then\n"
                      "        remaining = rem; limit = burst[i]; reset = nt - now end\n"
                      "      newtat[i] = nt\n"
                      "    end\n"
                      "  end\n"
                      "  if ok == 1 then\n"
                      "    for i = 1, nb do\n"
                      "      if newtat[i] then\n"
                      "        last[i] = newtat[i]\n"
                      "        tat[i] = tonumber(string.format('%.3f', newtat[i]))\n"
                      "      end\n"
                      "    end\n"
                      "  end\n"
                      "  local k = 5 * (j - 1)\n"
                      "  out[k + 1], out[k + 2], out[k + 3] = ok, math.ceil(retry), limit\n"
                      "  out[k + 4], out[k + 5] = remaining, math.ceil(reset)\n"
                      "end\n"
                      "for i = 1, nb do\n"
                      "  if last[i] then\n"
                      "    redis.call('SET', KEYS[i], string.format('%.3f', last[i]), 'PX',\n"
                      "               math.ceil(last[i] - now) + 1000)\n"
                      "  end\n"
                      "end\n"
                      "return out\n"};

/* The script's keys and arguments for n buckets of tenant, pointing into c's buffers. */
static void phx_ratelimit_argv(phx_rate_call *c, const char *tenant, const phx_rate_bucket *b,
                               int n, int64_t now_ms, int count)
{
    phx_ratelimit_key_conf(c->conf, sizeof(c->conf), tenant);
    snprintf(c->now, sizeof(c->now), "%lld", (long long)now_ms);
    int argc = 0;
    for (int i = 0; i < n; i++)
        c->argv[argc++] = b[i].key;
    c->argv[argc++] = c->conf;
    c->argv[argc++] = c->now;
    for (int i = 0; i < n; i++) {
        snprintf(c->args[i][0], sizeof(c->args[i][0]), "%.6f", b[i].dflt.per_s);
        snprintf(c->args[i][1], sizeof(c->args[i][1]), "%ld", b[i].dflt.burst);
        c->argv[argc++] = b[i].per_s_field;
        c->argv[argc++] = b[i].burst_field;
        c->argv[argc++] = c->args[i][0];
        c->argv[argc++] = c->args[i][1];
    }
    if (count > 1) {
        snprintf(c->count, sizeof(c->count), "%d", count);
        c->argv[argc++] = c->count;
    }
    c->call = (phx_redis_call){&phx_gcra_script, n + 1, argc, c->argv, NULL};
}

int phx_ratelimit_verdict_at(const redisReply *rep, int j, phx_rate_verdict *v, phx_err *err)
{
    memset(v, 0, sizeof(*v));
    v->allowed = 1;
    v->limit = v->remaining = -1;
    if (rep->type == REDIS_REPLY_ERROR)
        return phx_err_set(err, "redis_error", 0, "redis: %s in script %s", rep->str,
                           phx_gcra_script.name);
    if (rep->type != REDIS_REPLY_ARRAY || j < 0 || rep->elements < 5 * ((size_t)j + 1)) {
        /* Not the script's answer (or not this many of them): refuse rather than let the
         * request through unmetered. */
        v->allowed = 0;
        return phx_err_set(err, "redis_error", 0, "redis: script %s gave no verdict %d",
                           phx_gcra_script.name, j + 1);
    }
    redisReply **e = rep->element + 5 * j;
    for (int i = 0; i < 5; i++)
        if (e[i]->type != REDIS_REPLY_INTEGER) {
            v->allowed = 0;
            return phx_err_set(err, "redis_error", 0, "redis: script %s: a verdict not a number",
                               phx_gcra_script.name);
        }
    v->allowed = e[0]->integer == 1;
    v->retry_after_ms = e[1]->integer;
    v->limit = (long)e[2]->integer;
    v->remaining = (long)e[3]->integer;
    v->reset_ms = e[4]->integer;
    return 0;
}

int phx_ratelimit_verdict(const redisReply *rep, phx_rate_verdict *v, phx_err *err)
{
    return phx_ratelimit_verdict_at(rep, 0, v, err);
}

int phx_ratelimit_take_buckets(phx_redis *r, const char *tenant, const phx_rate_bucket *b, int n,
                               int64_t now_ms, phx_rate_verdict *v, phx_err *err)
{
    phx_rate_call c;
    memset(v, 0, sizeof(*v));
    v->allowed = 1;
    v->limit = v->remaining = -1;
    if (n < 1 || n > PHX_RL_MAX_BUCKETS)
        return phx_err_set(err, "invalid_argument", 0, "ratelimit: %d buckets", n);
    phx_ratelimit_argv(&c, tenant, b, n, now_ms, 1);
    redisReply *rep =
        phx_redis_eval(r, c.call.script, c.call.nkeys, c.call.argc, c.argv, NULL, err);
    if (!rep)
        return -1;
    int rc = phx_ratelimit_verdict(rep, v, err);
    freeReplyObject(rep);
    return rc;
}

void phx_ratelimit_take_call(phx_rate_call *c, const char *tenant, const char *principal,
                             const phx_rate *tenant_rate, const phx_rate *principal_rate,
                             int64_t now_ms)
{
    phx_ratelimit_take_n_call(c, tenant, principal, tenant_rate, principal_rate, now_ms, 1);
}

void phx_ratelimit_take_n_call(phx_rate_call *c, const char *tenant, const char *principal,
                               const phx_rate *tenant_rate, const phx_rate *principal_rate,
                               int64_t now_ms, int count)
{
    static const phx_rate off = {0, 1};
    phx_ratelimit_key_tenant(c->kt, sizeof(c->kt), tenant);
    snprintf(c->kp, sizeof(c->kp), "phx:rl:{%s}:p:%s", tenant, principal);
    phx_rate_bucket b[2] = {
        {c->kt, "tenant_per_s", "tenant_burst", tenant_rate ? *tenant_rate : off},
        {c->kp, "principal_per_s", "principal_burst", principal_rate ? *principal_rate : off}};
    phx_ratelimit_argv(c, tenant, b, 2, now_ms, count);
}

int phx_ratelimit_take(phx_redis *r, const char *tenant, const char *principal,
                       const phx_rate *tenant_rate, const phx_rate *principal_rate, int64_t now_ms,
                       phx_rate_verdict *v, phx_err *err)
{
    phx_rate_call c;
    phx_ratelimit_take_call(&c, tenant, principal, tenant_rate, principal_rate, now_ms);
    redisReply *rep =
        phx_redis_eval(r, c.call.script, c.call.nkeys, c.call.argc, c.argv, NULL, err);
    if (!rep) {
        memset(v, 0, sizeof(*v));
        return -1;
    }
    int rc = phx_ratelimit_verdict(rep, v, err);
    freeReplyObject(rep);
    return rc;
}

void phx_ratelimit_key_conf(char *buf, size_t n, const char *tenant)
{
    snprintf(buf, n, "phx:rl:{%s}:conf", tenant);
}

void phx_ratelimit_key_tenant(char *buf, size_t n, const char *tenant)
{
    snprintf(buf, n, "phx:rl:{%s}:tenant", tenant);
}
