/* task.c -- the task a step of the LLM provider chain runs for (see llm.h).
 *
 * Budgets are charged to the task's tenant and job, and every provider call must end before
 * the step's deadline. Both phx-llm and phx-kb (which embeds texts through the same providers)
 * read them from the task.v1 message here, so the two agree on what a deadline means. */
#include "llm.h"
#include "util.h"

void phx_llm_ctx_from_task(phx_llm_ctx *ctx, const json_t *task)
{
    int64_t now = phx_now_ms(), end = 0;
    json_t *dl = json_object_get(task, "deadline_at_ms");
    json_t *disp = json_object_get(task, "dispatched_ms"),
           *to = json_object_get(task, "timeout_ms");
    if (json_is_integer(dl) && json_integer_value(dl) > 0)
        end = json_integer_value(dl);
    if (json_is_integer(disp) && json_is_integer(to)) {
        int64_t step_end = json_integer_value(disp) + json_integer_value(to);
        if (!end || step_end < end)
            end = step_end;
    }
    *ctx = (phx_llm_ctx){
        .job_id = json_string_value(json_object_get(task, "job_id")),
        .tenant = json_string_value(json_object_get(task, "tenant")),
        .principal = json_string_value(json_object_get(task, "principal")),
        .step_id = json_string_value(json_object_get(task, "step_id")),
        /* Finish a little early so the result reaches the planner before its timer fires. */
        .deadline_mono_ms = end ? phx_mono_ms() + (end - now) - 100 : 0,
    };
    if (end && ctx->deadline_mono_ms <= phx_mono_ms())
        ctx->deadline_mono_ms = phx_mono_ms() + 1;
}
