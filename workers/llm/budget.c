/* budget.c -- token budget reservations in Redis (see budget.h). */
#include "budget.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define PHX_BUDGET_DAY_TTL_S "172800"
#define PHX_BUDGET_JOB_TTL_S "604800"

/* KEYS: used, limit-override. ARGV: tokens, default limit, ttl.
 * -> {1 granted | 0 refused, used after, limit} */
static const phx_script phx_budget_tenant_script = {
    "llm_budget_tenant", "local lim = tonumber(redis.call('GET', KEYS[2]) or ARGV[2]) or 0\n"
                         "local used = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
                         "local n = tonumber(ARGV[1])\n"
                         "if lim > 0 and used + n > lim then return {0, used, lim} end\n"
                         "used = redis.call('INCRBY', KEYS[1], n)\n"
                         "redis.call('EXPIRE', KEYS[1], ARGV[3])\n"
                         "return {1, used, lim}\n"};

/* KEYS: phx:job:{ID} (spec), phx:job:{ID}:llm. ARGV: tokens, ttl. The job's limit is read from
 * its spec once and cached in the llm hash, so a large spec is not decoded on every call. */
static const phx_script phx_budget_job_script = {
    "llm_budget_job", "local lim = redis.call('HGET', KEYS[2], 'limit')\n"
                      "if not lim then\n"
                      "  lim = -1\n"
                      "  local spec = redis.call('HGET', KEYS[1], 'spec')\n"
                      "  if spec then\n"
                      "    local ok, j = pcall(cjson.decode, spec)\n"
                      "    if ok and type(j) == 'table' and type(j.budget) == 'table' and\n"
                      "       tonumber(j.budget.max_tokens) then lim = "
                      "math.floor(tonumber(j.budget.max_tokens)) end\n"
                      "  end\n"
                      "  redis.call('HSET', KEYS[2], 'limit', lim)\n"
                      "  redis.call('EXPIRE', KEYS[2], ARGV[2])\n"
                      "end\n"
                      "lim = tonumber(lim)\n"
                      "local used = tonumber(redis.call('HGET', KEYS[2], 'used') or '0')\n"
                      "local n = tonumber(ARGV[1])\n"
                      "if lim >= 0 and used + n > lim then return {0, used, lim} end\n"
                      "used = redis.call('HINCRBY', KEYS[2], 'used', n)\n"
                      "return {1, used, lim}\n"};

long phx_llm_budget_estimate(const json_t *messages, long max_tokens)
{
    size_t i, bytes = 0;
    json_t *m;
    long per_msg = 0;
    json_array_foreach(messages, i, m)
    {
        bytes += json_string_length(json_object_get(m, "content"));
        per_msg += 8;
    }
    return (long)(bytes / 3) + per_msg + max_tokens;
}

/* Run a reservation script; 1 granted, 0 refused (used/limit filled), -1 Redis error. */
static int phx_budget_run(phx_redis *r, const phx_script *s, const char **argv, int argc,
                          long *used, long *limit, phx_err *err)
{
    redisReply *rep = phx_redis_eval(r, s, 2, argc, argv, NULL, err);
    if (!rep)
        return -1;
    int rc = -1;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3) {
        rc = (int)rep->element[0]->integer;
        *used = (long)rep->element[1]->integer;
        *limit = (long)rep->element[2]->integer;
    } else {
        phx_err_set(err, "redis_error", 1, "budget script %s: unexpected reply", s->name);
    }
    freeReplyObject(rep);
    return rc;
}

static void phx_budget_reject_metric(const char *scope)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "scope=\"%s\"", scope);
    phx_metric_add(phx_counter("phx_llm_budget_rejections_total",
                               "LLM calls refused because a token budget would be exceeded.",
                               labels),
                   1);
}

int phx_llm_budget_reserve(phx_redis *r, const phx_llm_ctx *ctx, long default_limit, long tokens,
                           phx_llm_budget *b, phx_err *err)
{
    memset(b, 0, sizeof(*b));
    b->reserved = tokens;
    char n[32], lim[32];
    long used = 0, limit = 0;
    snprintf(n, sizeof(n), "%ld", tokens);
    snprintf(lim, sizeof(lim), "%ld", default_limit);
    if (ctx->job_id && ctx->job_id[0]) {
        snprintf(b->job_spec, sizeof(b->job_spec), "phx:job:{%s}", ctx->job_id);
        snprintf(b->job_llm, sizeof(b->job_llm), "phx:job:{%s}:llm", ctx->job_id);
        const char *argv[] = {b->job_spec, b->job_llm, n, PHX_BUDGET_JOB_TTL_S};
        int rc = phx_budget_run(r, &phx_budget_job_script, argv, 4, &used, &limit, err);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            phx_budget_reject_metric("job");
            return phx_err_set(err, "budget_exceeded", 0,
                               "the job's token budget (budget.max_tokens %ld) is exhausted: "
                               "%ld used or reserved, this call needs up to %ld",
                               limit, used, tokens);
        }
        b->job = 1;
    }
    if (ctx->tenant && ctx->tenant[0]) {
        char day[16];
        time_t t = (time_t)(phx_now_ms() / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(day, sizeof(day), "%Y%m%d", &tm);
        snprintf(b->tenant_used, sizeof(b->tenant_used), "phx:llm:budget:{%s}:%s", ctx->tenant,
                 day);
        snprintf(b->tenant_limit, sizeof(b->tenant_limit), "phx:llm:budget:{%s}:limit",
                 ctx->tenant);
        const char *argv[] = {b->tenant_used, b->tenant_limit, n, lim, PHX_BUDGET_DAY_TTL_S};
        int rc = phx_budget_run(r, &phx_budget_tenant_script, argv, 5, &used, &limit, err);
        if (rc <= 0) {
            phx_err keep = *err;
            phx_llm_budget_settle(r, b, 0); /* give the job's reservation back */
            *err = keep;
            if (rc < 0)
                return -1;
            phx_budget_reject_metric("tenant");
            return phx_err_set(err, "budget_exceeded", 0,
                               "tenant %s's daily token budget (%ld) is exhausted: %ld used or "
                               "reserved today (UTC), this call needs up to %ld",
                               ctx->tenant, limit, used, tokens);
        }
        b->tenant = 1;
        if (limit > 0) {
            char t[160], labels[200];
            phx_metrics_bounded_value("tenant", ctx->tenant, 50, t, sizeof(t));
            snprintf(labels, sizeof(labels), "tenant=\"%s\"", t);
            phx_metric_set(phx_gauge("phx_llm_tenant_budget_used_ratio",
                                     "Share of the tenant's daily token budget used or reserved "
                                     "(as of its last LLM call; 1 = exhausted).",
                                     labels),
                           (double)used / (double)limit);
        }
    }
    return 0;
}

void phx_llm_budget_settle(phx_redis *r, phx_llm_budget *b, long actual)
{
    long delta = actual - b->reserved;
    phx_err e;
    if (delta != 0 && b->job) {
        redisReply *rep = phx_redis_cmd(r, &e, "HINCRBY %s used %ld", b->job_llm, delta);
        if (rep)
            freeReplyObject(rep);
        else
            phx_log_warn("budget settle for %s: %s", b->job_llm, e.message);
    }
    if (delta != 0 && b->tenant) {
        redisReply *rep = phx_redis_cmd(r, &e, "INCRBY %s %ld", b->tenant_used, delta);
        if (rep)
            freeReplyObject(rep);
        else
            phx_log_warn("budget settle for %s: %s", b->tenant_used, e.message);
    }
    b->job = b->tenant = 0;
}
