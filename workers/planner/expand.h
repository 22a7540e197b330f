/* expand.h -- jobs with a goal instead of steps: plan them with llm.plan, then run the plan.
 *
 * A goal-only job starts with one synthetic step, "plan" (kind llm.plan), whose input is the
 * goal and the step kinds the job's principal may use. When that step succeeds, its output's
 * plan.steps are checked again here -- the job step schema, the DAG rules, the principal's
 * scopes -- because the planner trusts no pool's output more than a client's input. A plan
 * that passes is appended to the job (spec and step states, in one Lua script) and runs
 * exactly like an explicit DAG; one that fails fails the job with every reason. The reply
 * records the plan as the output of step "plan". */
#ifndef PHX_PLANNER_EXPAND_H
#define PHX_PLANNER_EXPAND_H

#include <jansson.h>

#include "err.h"
#include "redis.h"
#include "schema.h"

#define PHX_PLAN_STEP_ID "plan"

/* The steps array a goal-only job starts with. scopes: the principal's (see lib/rbac.h), or
 * ~0u for a job without a principal (an operator's). New reference. */
json_t *phx_plan_initial_steps(const json_t *job, unsigned scopes);

/* Check a plan (the llm.plan output) for job `job` (its spec). 0 fine; -1 with *reasons (a
 * new array of strings). */
int phx_plan_check(const phx_schema *job_schema, const json_t *job, const json_t *output,
                   unsigned scopes, json_t **reasons);

/* Append steps (the checked plan, with its safety gates woven in: gates.h) to job id (spec and
 * steps hash) unless done before. 1 appended, 0 already expanded or no longer running, -1
 * error. */
int phx_plan_expand(phx_redis *r, const char *id, const json_t *job, const json_t *steps,
                    phx_err *err);

#endif
