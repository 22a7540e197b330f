/* llm.h -- what the phx-llm step functions share: the process state (configuration and the
 * provider chain), the per-thread state, and the context of the task being run.
 *
 * The step functions get the task's input only (pool.h), but budgets need the tenant and job
 * and calls need the step's deadline; main.c wraps the pool's handler to record the task in
 * a phx_llm_ctx for the thread running it and hands that to the steps explicitly. */
#ifndef PHX_LLM_H
#define PHX_LLM_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdint.h>

#include "provider.h"
#include "redis.h"
#include "schema.h"

typedef struct phx_llm_app {
    phx_llm_chain chain;
    long max_tokens_default; /* a chat without max_tokens (and no persona default) gets this */
    long max_messages, max_input_bytes;
    long tenant_daily_tokens; /* 0 = unlimited */
    long embed_dim, max_texts;
    long plan_max_steps;
    const char *plan_kinds;        /* comma-separated step kinds a plan may use by default */
    const phx_schema_set *schemas; /* the message schemas (llm-persona.v1, ...) */
    json_t *plan_schema_json;      /* {"steps": [job.v1 step...]}: sent as response_format */
    phx_schema *plan_schema;       /* the same, compiled */

    /* Redis URL, timeout and topology of each thread's client (phx_redis_from_common). */
    const struct phx_common *common;
} phx_llm_app;

typedef struct phx_llm_thread {
    phx_redis *r;
    CURL *curl;
} phx_llm_thread;

/* The task a step belongs to. Any field may be NULL/0 (e.g. in unit tests). */
typedef struct phx_llm_ctx {
    const char *job_id, *tenant, *principal, *step_id;
    int64_t deadline_mono_ms; /* 0 = none */
} phx_llm_ctx;

/* Fill ctx from a task.v1 message (its strings stay owned by task): the tenant, job, principal
 * and step, and the deadline -- the earlier of the job's and the step's timeout, 100 ms early
 * so the result reaches the planner before its timer fires. */
void phx_llm_ctx_from_task(phx_llm_ctx *ctx, const json_t *task);

#endif
