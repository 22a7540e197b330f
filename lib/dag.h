/* dag.h -- checking a job's step graph and resolving step templates.
 *
 * Pure functions on JSON, no I/O: the planner calls them, the ingress calls the same check
 * so a bad DAG is refused at the door (400) and again by the planner for jobs that arrive
 * straight on the topic. Keeping one implementation means the two can never disagree.
 *
 * Templates: a string in a step's input may contain {{steps.ID.output.PATH}}, where PATH is a
 * dot-separated list of object keys or array indexes. A string that is exactly one template
 * takes the referenced JSON value with its type (number stays number); a template inside
 * other text is replaced by the value's text (strings raw, other values as compact JSON). A
 * step may only reference steps it (transitively) needs, so the value is always there when
 * the step is dispatched.
 *
 * One exception: the `steps` array of a safety.review_plan step is a plan under review, whose
 * templates name that plan's own steps: it is data, neither checked against the job's graph
 * nor rendered. */
#ifndef PHX_DAG_H
#define PHX_DAG_H

#include <jansson.h>

#include "err.h"

/* Check steps: unique ids, known `needs`, no cycle, a known pool for every kind, templates
 * that reference only transitive needs. 0 if fine; else -1 and *reasons gets a new array of
 * human-readable strings (every problem found, not just the first). */
int phx_dag_check(const json_t *steps, json_t **reasons);

/* Copy of input with every template resolved against outputs ({step id: output}). NULL with
 * err (code "template_unresolved", not retryable) when a referenced value is missing, or
 * ("input_too_large", not retryable) when the substituted values add up to more than
 * PHX_MSG_MAX_BYTES, which no task message could carry. */
json_t *phx_dag_render(const json_t *input, const json_t *outputs, phx_err *err);

/* The step's input ready to dispatch: phx_dag_render of it, except for data that is not
 * this job's templates (above), copied as it is. An absent input renders as {}. */
json_t *phx_dag_render_step(const json_t *step, const json_t *outputs, phx_err *err);

/* Call fn(step_id, arg) for every well-formed {{steps.ID.output...}} reference in strings under
 * v (once per occurrence; malformed templates are skipped: phx_dag_check reports them). */
void phx_dag_ref_steps(const json_t *v, void (*fn)(const char *step_id, void *arg), void *arg);

#endif
