/* hist.h -- an HDR-style latency histogram for phx-bench: log-bucketed, fixed memory.
 *
 * Values (microseconds) below 128 have a bucket each; above, every power of two is split into
 * 64 equal sub-buckets, so any recorded value is reported within 1/64 (1.6 %) of itself, from
 * 1 us to 2^40 us (12 days) in 2,304 counters (18 KB). That is the HdrHistogram layout with 2
 * significant digits, small enough to keep one per job kind, and exact where it matters for a
 * tail: min, max and count are exact, percentiles report the highest value of their bucket
 * (never an optimistic lower bound). */
#ifndef PHX_BENCH_HIST_H
#define PHX_BENCH_HIST_H

#include <stdint.h>

#define PHX_HIST_LINEAR  128 /* values below this are exact */
#define PHX_HIST_SUB     64  /* sub-buckets per power of two above it */
#define PHX_HIST_MAX_MSB 40
#define PHX_HIST_BUCKETS (PHX_HIST_LINEAR + (PHX_HIST_MAX_MSB - 6) * PHX_HIST_SUB)

typedef struct phx_hist {
    uint64_t counts[PHX_HIST_BUCKETS];
    uint64_t n;
    int64_t min, max;
    double sum;
} phx_hist;

void phx_hist_init(phx_hist *h);
/* Record one value (negative values count as 0; values past the range as the range's top). */
void phx_hist_record(phx_hist *h, int64_t v);
/* Add every count of src into dst. */
void phx_hist_merge(phx_hist *dst, const phx_hist *src);
/* The value at percentile p (0..100]: the highest value of the bucket holding that rank, capped
 * at the exact max. 0 when empty. */
int64_t phx_hist_pct(const phx_hist *h, double p);
double phx_hist_mean(const phx_hist *h);

#endif
