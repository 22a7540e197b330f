/* planner.h -- phx-planner: turns jobs into dispatched steps and results into replies.
 *
 * Consumes phx.jobs and phx.results; produces tasks to phx.tasks.<pool>, replies to the job's
 * reply_to (default phx.replies) and lifecycle events to phx.events. All job state lives in
 * Redis (lib/jobstore.h), so any planner replica can handle any message and a restart loses
 * nothing. A tick thread drives the three timers: retry delays, step timeouts and job
 * deadlines. */
#ifndef PHX_PLANNER_H
#define PHX_PLANNER_H

#include "config.h"
#include "worker.h"

typedef struct phx_planner_cfg {
    phx_common common;
    long job_deadline_ms;    /* default when a job gives none */
    long step_timeout_ms;    /* default when a step gives none */
    long retry_max_attempts; /* default when a step gives no retry policy */
    long retry_backoff_ms;
    long job_ttl_s; /* how long finished jobs stay readable in Redis */
    int safety_gates; /* weave safety gates into jobs (gates.h) */
} phx_planner_cfg;

/* The worker-loop callbacks; ops.app must point at the phx_planner_cfg. */
void phx_planner_ops(phx_worker_ops *ops, phx_planner_cfg *cfg);

#endif
