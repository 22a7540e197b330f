/* ratelimit.c -- GCRA over Redis (see ratelimit.h). */
#include "ratelimit.h"

#include <stdio.h>
#include <string.h>

/* KEYS: tenant bucket, principal bucket, the tenant's overrides (hash). ARGV: now (ms), then
 * the configured per_s and burst of the tenant and of the principal; a field of the overrides
 * hash (tenant_per_s, tenant_burst, principal_per_s, principal_burst) replaces its default.
 * per_s <= 0 switches a limit off. Returns {allowed, retry_after_ms, limit, remaining,
 * reset_ms} of the tightest bucket (limit -1 when no limit applies). */
static const phx_script phx_gcra_script = {
    "ratelimit_gcra",
    "local now = tonumber(ARGV[1])\n"
    "local o = redis.call('HMGET', KEYS[3], 'tenant_per_s', 'tenant_burst', 'principal_per_s',\n"
    "                     'principal_burst')\n"
    "local ok, retry, limit, remaining, reset = 1, 0, -1, -1, 0\n"
    "local newtat = {}\n"
    "for i = 1, 2 do\n"
    "  local per_s = tonumber(o[2 * i - 1] or ARGV[2 * i]) or 0\n"
    "  local burst = tonumber(o[2 * i] or ARGV[2 * i + 1]) or 1\n"
    "  if burst < 1 then burst = 1 end\n"
    "  if per_s > 0 then\n"
    "    local t = 1000 / per_s\n"
    "    local tat = tonumber(redis.call('GET', KEYS[i]) or now)\n"
    "    if tat < now then tat = now end\n"
    "    local nt = tat + t\n"
    "    local allow_at = nt - burst * t\n"
    "    local rem = 0\n"
    "    if allow_at > now then\n"
    "      ok = 0\n"
    "      if allow_at - now > retry then retry = allow_at - now end\n"
    "    else rem = math.floor((now - allow_at) / t) end\n"
    "    if remaining < 0 or rem < remaining then\n"
    "      remaining = rem; limit = burst; reset = nt - now end\n"
    "    newtat[i] = nt\n"
    "  end\n"
    "end\n"
    "if ok == 1 then\n"
    "  for i = 1, 2 do\n"
    "    if newtat[i] then\n"
    "      redis.call('SET', KEYS[i], string.format('%.3f', newtat[i]), 'PX',\n"
    "                 math.ceil(newtat[i] - now) + 1000)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {ok, math.ceil(retry), limit, remaining, math.ceil(reset)}\n"};

int phx_ratelimit_take(phx_redis *r, const char *tenant, const char *principal,
                       const phx_rate *tenant_rate, const phx_rate *principal_rate, int64_t now_ms,
                       phx_rate_verdict *v, phx_err *err)
{
    char keys[3][400], args[5][32];
    const phx_rate *rates[2] = {tenant_rate, principal_rate};
    memset(v, 0, sizeof(*v));
    v->allowed = 1;
    v->limit = v->remaining = -1;
    snprintf(keys[0], sizeof(keys[0]), "phx:rl:{%s}:tenant", tenant);
    snprintf(keys[1], sizeof(keys[1]), "phx:rl:{%s}:p:%s", tenant, principal);
    phx_ratelimit_key_conf(keys[2], sizeof(keys[2]), tenant);
    snprintf(args[0], sizeof(args[0]), "%lld", (long long)now_ms);
    for (int i = 0; i < 2; i++) {
        snprintf(args[1 + 2 * i], sizeof(args[0]), "%.6f", rates[i] ? rates[i]->per_s : 0.0);
        snprintf(args[2 + 2 * i], sizeof(args[0]), "%ld", rates[i] ? rates[i]->burst : 1);
    }
    const char *argv[] = {keys[0], keys[1], keys[2], args[0], args[1], args[2], args[3], args[4]};
    redisReply *rep = phx_redis_eval(r, &phx_gcra_script, 3, 8, argv, NULL, err);
    if (!rep)
        return -1;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 5) {
        v->allowed = rep->element[0]->integer == 1;
        v->retry_after_ms = rep->element[1]->integer;
        v->limit = (long)rep->element[2]->integer;
        v->remaining = (long)rep->element[3]->integer;
        v->reset_ms = rep->element[4]->integer;
    }
    freeReplyObject(rep);
    return 0;
}

void phx_ratelimit_key_conf(char *buf, size_t n, const char *tenant)
{
    snprintf(buf, n, "phx:rl:{%s}:conf", tenant);
}
