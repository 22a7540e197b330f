/* load.h -- the load phx-bench puts on a stack: jobs published to phx.jobs exactly as
 * `phx submit` publishes them (lib/msg phx_job_kmsg), replies read from the reply topic.
 *
 * Two modes. Open loop: job i is due at t0 + i/rate whatever happened before, and its latency
 * runs from that intended time, so a stalled stack (or a stalled sender) shows up as latency
 * instead of silently lowering the offered load (no coordinated omission). Closed loop: a fixed
 * number of jobs in flight, a new one sent as soon as a reply comes back: the maximum
 * throughput, with latency measured from the actual send.
 *
 * Every reply is checked: the job must have succeeded with the value its inputs imply (a
 * chain of job i ends in 7i+1), each job id may answer once, and jobs without a reply by the
 * end are counted as lost. */
#ifndef PHX_BENCH_LOAD_H
#define PHX_BENCH_LOAD_H

#include "err.h"
#include "hist.h"
#include "kafka.h"

typedef enum {
    PHX_BENCH_CHAIN, /* 2 tool.calc steps, b needs a */
    PHX_BENCH_DAG,   /* 5 tool.calc steps: one, three fanned out from it, one joining them */
    PHX_BENCH_EXEC,  /* 1 exec.run step of a trivial shell program */
    PHX_BENCH_NKINDS
} phx_bench_kind;

extern const char *const phx_bench_kind_names[PHX_BENCH_NKINDS];
extern const int phx_bench_kind_steps[PHX_BENCH_NKINDS];

typedef struct phx_bench_cfg {
    const char *brokers;
    const char *reply_topic;
    const char *tenant;
    phx_producer *producer;
    long jobs;
    double rate;     /* open loop: jobs per second; 0 = closed loop */
    int concurrency; /* closed loop: jobs in flight */
    int weights[PHX_BENCH_NKINDS];
    int timeout_s; /* how long to wait for replies after the last send */
    int progress;  /* draw a progress bar on stderr */
} phx_bench_cfg;

typedef struct phx_bench_result {
    long sent, replied, succeeded, failed, wrong, duplicates, lost, steps;
    long jobs_by_kind[PHX_BENCH_NKINDS];
    double elapsed_s;       /* first intended send to last reply */
    double max_send_lag_ms; /* open loop: how far behind schedule the sender itself fell */
    phx_hist all;
    phx_hist by_kind[PHX_BENCH_NKINDS];
} phx_bench_result;

/* Run the load. 0 when it ran (lost or failed jobs are results, not errors); -1 with err when
 * it could not start or a publish failed for good. */
int phx_bench_run(const phx_bench_cfg *cfg, phx_bench_result *res, phx_err *err);

#endif
