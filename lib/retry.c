/* retry.c -- see retry.h. */
#include "retry.h"
#include "util.h"

int64_t phx_retry_delay(const phx_retry_policy *p, int attempt)
{
    if (attempt < 1)
        attempt = 1;
    int64_t d = p->base_ms;
    for (int i = 1; i < attempt && d < p->max_ms; i++)
        d *= 2;
    if (d > p->max_ms)
        d = p->max_ms;
    if (d <= 0 || p->jitter_pct <= 0)
        return d < 0 ? 0 : d;
    int64_t spread = d * p->jitter_pct / 100;
    return d - spread + (int64_t)(phx_rand_u64() % (uint64_t)(2 * spread + 1));
}

int phx_retry_should(const phx_retry_policy *p, const phx_err *err, int attempt)
{
    if (!err->retryable)
        return 0;
    return p->max_attempts == 0 || attempt < p->max_attempts;
}
