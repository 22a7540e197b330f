/* plan.h -- llm.plan: turn a goal into a plan (a list of job.v1 steps) the planner can run.
 *
 * input  {"goal": str (required, <= 64 KiB),
 *         "allowed_kinds": [str] (step kinds the job's principal may use; default
 *                                 PHX_LLM_PLAN_KINDS; llm.plan itself is never allowed),
 *         "max_steps": int (<= PHX_LLM_PLAN_MAX_STEPS), "context": str (extra facts for the
 *         model), "reserved_ids": [step ids the plan must not use; default ["plan"], the id
 *         the planner gives this step, since the plan's steps join the same job],
 *         "model", "persona", "max_tokens", "temperature"}
 * output {"plan": {"steps": [...]}, "attempts": 1|2, "rejected": [reasons of a first plan that
 *         failed validation] (only when there was one), "model", "provider",
 *         "usage": {"prompt_tokens", "completion_tokens"}}
 *
 * The model is asked for {"steps": [...]} with the job.v1 step schema as a json_schema
 * response_format. The answer must parse, satisfy that schema, use only allowed kinds, stay
 * within max_steps, use no reserved id and pass phx_dag_check (unique ids, known needs, no cycle,
 * templates only from needed steps). A plan that fails is sent back once with every reason found; a
 * second failure is the non-retryable error invalid_plan, its message listing the reasons. */
#ifndef PHX_LLM_PLAN_H
#define PHX_LLM_PLAN_H

#include <jansson.h>

#include "err.h"
#include "llm.h"
#include "schema.h"

/* {"type":"object","required":["steps"],...,"$defs": job.v1's $defs}: a self-contained schema
 * (no $ref outside itself, so providers can use it as response_format). New reference. */
json_t *phx_llm_plan_schema(const json_t *job_schema, long max_steps);

/* Validate a parsed plan. 0 if it may run; else -1 and *reasons (new array of strings). */
int phx_llm_plan_check(const phx_schema *plan_schema, const json_t *plan,
                       const json_t *allowed_kinds, const json_t *reserved_ids, long max_steps,
                       json_t **reasons);

json_t *phx_llm_plan_step(phx_llm_app *app, phx_llm_thread *t, const phx_llm_ctx *ctx,
                          const json_t *input, phx_err *err);

#endif
