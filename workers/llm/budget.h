/* budget.h -- token budgets in Redis: per tenant per UTC day, and per job.
 *
 * A call first *reserves* an upper bound of the tokens it may use (estimated prompt tokens +
 * max_tokens) and is refused with the non-retryable error budget_exceeded when that would go
 * over a limit; once the answer is in, the reservation is *settled* to the provider's actual
 * usage (or released when the call failed). Each check-and-add is one Lua script, so any
 * number of concurrent steps on any number of replicas can never reserve past a limit together.
 *
 * Keys (the hash tags keep each script's keys in one Redis Cluster slot; the tenant and the
 * job live in different slots, so they are two scripts: job first, then tenant, and a refused
 * tenant reservation gives the job's back):
 *   phx:llm:budget:{TENANT}:YYYYMMDD  string  tokens reserved+used that UTC day (TTL 2 days)
 *   phx:llm:budget:{TENANT}:limit     string  the tenant's daily limit, overriding
 *                                             PHX_LLM_TENANT_DAILY_TOKENS (0 = unlimited)
 *   phx:job:{ID}:llm                  hash    limit (from the job's budget.max_tokens, read once
 *                                             from phx:job:{ID} spec; -1 = none), used
 *
 * What "no overspend" means precisely: the sum of reservations never exceeds a limit. Actual
 * usage can only exceed its reservation if the provider counts more prompt tokens than the
 * estimate (bytes / 3 + 8 per message, conservative for BPE tokenizers on real text). */
#ifndef PHX_LLM_BUDGET_H
#define PHX_LLM_BUDGET_H

#include "err.h"
#include "llm.h"
#include "redis.h"

typedef struct phx_llm_budget {
    char tenant_used[200], tenant_limit[200];
    char job_spec[200], job_llm[200];
    long reserved;
    int tenant, job; /* which reservations are held */
} phx_llm_budget;

/* Reserve tokens for ctx's tenant (default_limit when the tenant has no override) and job.
 * 0 with b filled; -1 with err: budget_exceeded (not retryable, message says which limit and
 * how much is left) or a Redis error (retryable). */
int phx_llm_budget_reserve(phx_redis *r, const phx_llm_ctx *ctx, long default_limit, long tokens,
                           phx_llm_budget *b, phx_err *err);
/* Replace the reservation by the actual use (0 releases it all). Best effort: a failure is
 * logged and leaves the reservation counted (the safe direction). */
void phx_llm_budget_settle(phx_redis *r, phx_llm_budget *b, long actual);

/* Tokens a chat request may use at most: an estimate of its prompt plus max_tokens. */
long phx_llm_budget_estimate(const json_t *messages, long max_tokens);

#endif
