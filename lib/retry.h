/* retry.h -- the one retry policy type every Phoenix component uses.
 *
 * Backoff is exponential with jitter so that many clients failing together (a Redis restart
 * seen by every worker thread at once) do not come back in lock-step and knock the dependency
 * over again. One implementation, so the step retries of the planner, the reconnects of the
 * Redis client and the stalls of the worker loop all behave -- and are documented -- alike. */
#ifndef PHX_RETRY_H
#define PHX_RETRY_H

#include <stdint.h>

#include "err.h"

typedef struct phx_retry_policy {
    int max_attempts; /* total attempts including the first; 0 = unbounded */
    int64_t base_ms;  /* delay before the second attempt */
    int64_t max_ms;   /* cap on any one delay */
    int jitter_pct;   /* each delay is drawn from [d * (1 - j/100), d * (1 + j/100)] */
} phx_retry_policy;

/* Delay before attempt `attempt + 1`, given that `attempt` (>= 1) attempts failed:
 * base * 2^(attempt-1), capped, jittered. */
int64_t phx_retry_delay(const phx_retry_policy *p, int attempt);

/* Should a failure with err, after `attempt` attempts, be tried again under p? */
int phx_retry_should(const phx_retry_policy *p, const phx_err *err, int attempt);

#endif
