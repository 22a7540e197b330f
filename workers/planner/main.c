/* main.c -- phx-planner: configuration and start (the logic is in planner.c). */
#include "planner.h"

#include <stdio.h>
#include <stdlib.h>

#define CFG phx_planner_cfg
static const phx_opt phx_planner_opts[] = {
    PHX_COMMON_OPTS(CFG),
    {"PHX_JOB_DEADLINE_MS", PHX_OPT_INT, "300000", 100, 86400000, offsetof(CFG, job_deadline_ms),
     "Deadline of a job that sets no deadline_ms; when it passes the job fails."},
    {"PHX_STEP_TIMEOUT_MS", PHX_OPT_INT, "30000", 10, 3600000, offsetof(CFG, step_timeout_ms),
     "Timeout of a step attempt that sets no timeout_ms; a timed-out attempt is a retryable "
     "failure."},
    {"PHX_RETRY_MAX_ATTEMPTS", PHX_OPT_INT, "3", 1, 20, offsetof(CFG, retry_max_attempts),
     "Attempts of a step with no retry policy (retryable failures only)."},
    {"PHX_RETRY_BACKOFF_MS", PHX_OPT_INT, "200", 0, 600000, offsetof(CFG, retry_backoff_ms),
     "Base backoff of a step with no retry policy; doubled per attempt, +-25% jitter."},
    {"PHX_JOB_TTL_S", PHX_OPT_INT, "604800", 60, 31536000, offsetof(CFG, job_ttl_s),
     "How long a finished job stays readable in Redis (GET /v1/jobs/ID, phx status)."},
    {"PHX_SAFETY_GATES", PHX_OPT_BOOL, "true", 0, 0, offsetof(CFG, safety_gates),
     "Weave safety gates (safety.scan steps before exec.run, tool.http_fetch and llm steps, "
     "and on model output) into every job, as the tenant's safety policy `gates` says "
     "(docs/safety.md). false only for a deployment without a phx-safety pool: jobs with "
     "such steps would otherwise wait for gates nobody runs."},
};

int main(int argc, char **argv)
{
    phx_planner_cfg cfg = {0};
    size_t n = sizeof(phx_planner_opts) / sizeof(phx_planner_opts[0]);
    phx_config_start(argc, argv, "phx-planner",
                     "phx-planner: consumes phx.jobs and phx.results, runs each job's step DAG "
                     "(dispatch to phx.tasks.<pool>, retries, timeouts, deadlines) and writes "
                     "the reply to the job's reply_to (default phx.replies).",
                     phx_planner_opts, n, &cfg, &cfg.common);
    phx_worker_ops ops;
    phx_planner_ops(&ops, &cfg);
    int rc = phx_worker_main(&cfg.common, &ops);
    phx_config_free(phx_planner_opts, n, &cfg);
    return rc;
}
