/* gates.h -- safety gates: the safety steps the planner weaves into a job's DAG.
 *
 * A job never reaches a sandbox, an outbound fetch, a model or its caller with text nobody
 * screened: before it is stored, the planner rewrites the job's steps so that every risky
 * input passes through a `safety.scan` step first (docs/safety.md "Gates in the pipeline"):
 *
 *   gate        guards                                   scans (role)
 *   input       llm.plan's goal; llm.chat literal text   user_prompt
 *   code        exec.run input.code                      code
 *   urls        tool.http_fetch input.url                url
 *   retrieved   llm.chat text built from other steps     retrieved_document (kb.*),
 *               ({{steps...}} templates)                 tool_output, model_output (llm.*)
 *   output      the text of every final llm.chat step    model_output
 *   plan        a goal job's plan, before any of it runs safety.review_plan
 *
 * A gate is an ordinary step (id `safety:<guarded step>`, `safety:input`, `safety:reply`,
 * `safety:plan`; a second gate on the same step gets `.2`, ...) with the same needs as the step
 * it guards -- so its templates render to exactly the text that step will see -- plus a
 * `gate` object the planner reads: {"step": guarded id, "path": [...], "on": "input" |
 * "output" | "plan"}. User step ids cannot contain ':' and user steps cannot carry `gate`
 * (schemas/job.v1.json), so a job cannot forge or pre-empt a gate.
 *
 * Verdicts: block fails the job as `rejected` with the gate's findings; redact puts the gate's
 * redacted_text in place of the text (in the guarded step's input at dispatch, or in the
 * guarded step's stored output for `output` gates); warn and allow pass the text unchanged.
 * A gate that fails (the safety pool down past the step's retries) fails the job: closed. */
#ifndef PHX_PLANNER_GATES_H
#define PHX_PLANNER_GATES_H

#include <jansson.h>

#include "err.h"
#include "redis.h"

typedef struct phx_gates {
    int input, code, urls, retrieved, output, plan;
} phx_gates;

/* 1 if any step of steps is of a kind some gate guards (so the policy is worth reading). */
int phx_gates_wanted(const json_t *steps);

/* The gates for tenant's jobs: all off when enabled is 0; else the `gates` object of the
 * tenant's safety policy (phx:safety:policy:<tenant>, then phx:safety:policy:default), every
 * gate on when absent or unreadable as JSON (a broken policy must not open the gates). */
int phx_gates_load(phx_redis *r, const char *tenant, int enabled, phx_gates *g, phx_err *err);

/* A new array: steps with their gates woven in. all: every step of the job once these are
 * added (steps included; used to find which steps feed which), NULL when steps are the whole
 * job. plan_review: the plan gate's step list (a goal job's plan) or NULL. */
json_t *phx_gates_weave(const json_t *steps, const json_t *all, const phx_gates *g,
                        int plan_review);

/* A new copy of steps as the client wrote them: no gate steps, no gate ids in needs. */
json_t *phx_gates_strip(const json_t *steps);

/* The step's gate object, or NULL when it is a user step. */
const json_t *phx_gates_of(const json_t *step);

/* The verdict recorded by gate step gid in outputs ({id: output}), or NULL. */
const char *phx_gates_verdict(const json_t *outputs, const char *gid);

/* Put the redacted text of every `input` gate of step sid that said redact into input. */
void phx_gates_redact_input(const json_t *steps, const char *sid, json_t *input,
                            const json_t *outputs);

/* For an `output` gate that said redact: a new copy of the guarded step's output with the
 * redacted text in place; NULL when there is nothing to change (already redacted, or not a
 * redaction). */
json_t *phx_gates_redact_output(const json_t *gate_step, const json_t *outputs);

#endif
