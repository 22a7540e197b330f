/* hist.c -- the log-bucketed latency histogram of phx-bench (see hist.h). */
#include "hist.h"

#include <string.h>

void phx_hist_init(phx_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = INT64_MAX;
}

static int phx_hist_index(int64_t v)
{
    if (v < PHX_HIST_LINEAR)
        return (int)v;
    int msb = 63 - __builtin_clzll((unsigned long long)v);
    if (msb >= PHX_HIST_MAX_MSB)
        return PHX_HIST_BUCKETS - 1;
    int shift = msb - 6; /* v >> shift is in [64, 127] */
    int sub = (int)(v >> shift) - PHX_HIST_SUB;
    return PHX_HIST_LINEAR + (msb - 7) * PHX_HIST_SUB + sub;
}

/* The highest value that lands in bucket i. */
static int64_t phx_hist_top(int i)
{
    if (i < PHX_HIST_LINEAR)
        return i;
    int k = i - PHX_HIST_LINEAR, msb = 7 + k / PHX_HIST_SUB, sub = PHX_HIST_SUB + k % PHX_HIST_SUB;
    int shift = msb - 6;
    return (((int64_t)sub + 1) << shift) - 1;
}

void phx_hist_record(phx_hist *h, int64_t v)
{
    if (v < 0)
        v = 0;
    h->counts[phx_hist_index(v)]++;
    h->n++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void phx_hist_merge(phx_hist *dst, const phx_hist *src)
{
    for (int i = 0; i < PHX_HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->n += src->n;
    dst->sum += src->sum;
    if (src->n && src->min < dst->min)
        dst->min = src->min;
    if (src->n && src->max > dst->max)
        dst->max = src->max;
}

int64_t phx_hist_pct(const phx_hist *h, double p)
{
    if (h->n == 0)
        return 0;
    /* The rank of the p-th percentile, 1-based, rounded up: p99 of 1000 values is the 990th. */
    uint64_t rank = (uint64_t)((p / 100.0) * (double)h->n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > h->n)
        rank = h->n;
    uint64_t seen = 0;
    for (int i = 0; i < PHX_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            int64_t top = phx_hist_top(i);
            return top > h->max ? h->max : top < h->min ? h->min : top;
        }
    }
    return h->max;
}

double phx_hist_mean(const phx_hist *h)
{
    return h->n ? h->sum / (double)h->n : 0;
}
