/* ratelimit.h -- rate limits shared by every replica (GCRA in one Redis call): requests per
 * tenant and per principal at the ingress, calls per tenant and tool kind in phx-tools.
 *
 * The generic cell rate algorithm keeps one number per limited party: the theoretical arrival
 * time (TAT) of the next request. A request is allowed when TAT - burst*interval <= now, and
 * then moves TAT on by one interval. Both limits (tenant and principal) are checked and
 * charged in one Lua script, all or nothing, so a request refused by one limit does not
 * consume the other's allowance, and every ingress replica shares the same counters. The keys
 * share the hash tag {TENANT}, which keeps the script legal on Redis Cluster.
 *
 * Per-tenant overrides live in the hash phx:rl:{TENANT}:conf (fields tenant_per_s,
 * tenant_burst, principal_per_s, principal_burst; KIND:per_s and KIND:burst for a tool kind)
 * and are read by the same script, so a change applies to the next request on every
 * replica. */
#ifndef PHX_RATELIMIT_H
#define PHX_RATELIMIT_H

#include <stdint.h>

#include "err.h"
#include "redis.h"

typedef struct phx_rate {
    double per_s; /* sustained requests per second; <= 0 = unlimited */
    long burst;   /* requests allowed at once */
} phx_rate;

typedef struct phx_rate_verdict {
    int allowed;
    int64_t retry_after_ms; /* when refused: how long until one request fits */
    long limit;             /* the tighter limit's burst */
    long remaining;         /* requests left in the tighter bucket */
    int64_t reset_ms;       /* until that bucket is full again */
} phx_rate_verdict;

/* One bucket to check and charge: its key, the override fields of the tenant's conf hash
 * that replace dflt when present, and the configured default. */
typedef struct phx_rate_bucket {
    const char *key;
    const char *per_s_field;
    const char *burst_field;
    phx_rate dflt;
} phx_rate_bucket;

/* Check n (1 or 2) buckets of tenant and charge all of them only if every one allows the
 * request. 0 with *v (the tightest bucket); -1 with err (Redis). */
int phx_ratelimit_take_buckets(phx_redis *r, const char *tenant, const phx_rate_bucket *b, int n,
                               int64_t now_ms, phx_rate_verdict *v, phx_err *err);

/* Check and charge one request of tenant/principal. 0 with *v; -1 with err (Redis). */
int phx_ratelimit_take(phx_redis *r, const char *tenant, const char *principal,
                       const phx_rate *tenant_rate, const phx_rate *principal_rate, int64_t now_ms,
                       phx_rate_verdict *v, phx_err *err);

/* phx_ratelimit_take as one command of a batch (phx_redis_batch; the ingress's group commit):
 * call.argv points into the struct's own buffers, so it must stay put until the batch is sent. */
#define PHX_RL_MAX_BUCKETS 2
typedef struct phx_rate_call {
    char kt[400], kp[400], conf[400], now[32], args[PHX_RL_MAX_BUCKETS][2][32], count[16];
    const char *argv[PHX_RL_MAX_BUCKETS + 1 + 1 + 4 * PHX_RL_MAX_BUCKETS + 1];
    phx_redis_call call;
} phx_rate_call;
void phx_ratelimit_take_call(phx_rate_call *c, const char *tenant, const char *principal,
                             const phx_rate *tenant_rate, const phx_rate *principal_rate,
                             int64_t now_ms);
/* count requests of tenant/principal at once: exactly count calls of phx_ratelimit_take_call
 * in a row at the same now_ms (each checked against what the allowed ones before it charged),
 * in one script call; the reply holds their verdicts in order (phx_ratelimit_verdict_at). For
 * a batch with many requests of one principal (the ingress's group commit). */
void phx_ratelimit_take_n_call(phx_rate_call *c, const char *tenant, const char *principal,
                               const phx_rate *tenant_rate, const phx_rate *principal_rate,
                               int64_t now_ms, int count);
/* The verdict in the script's reply: 0 with *v, or -1 with err for an error reply. */
int phx_ratelimit_verdict(const redisReply *rep, phx_rate_verdict *v, phx_err *err);
/* The verdict of the j-th request (from 0) of a phx_ratelimit_take_n_call's reply. */
int phx_ratelimit_verdict_at(const redisReply *rep, int j, phx_rate_verdict *v, phx_err *err);

/* The Redis key of tenant's overrides. */
void phx_ratelimit_key_conf(char *buf, size_t n, const char *tenant);
/* The Redis key of tenant's bucket (its GCRA theoretical arrival time). */
void phx_ratelimit_key_tenant(char *buf, size_t n, const char *tenant);

#endif
