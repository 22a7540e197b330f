/* pool.h -- a worker pool's side of a step: task in, result out.
 *
 * A pool is a table of step kinds and the functions that run them. This module turns that
 * table into worker-loop callbacks: it checks the task's deadline, finds the kind, runs it
 * and reports a result.v1 to phx.results. A step that fails is a *result* (with an error
 * code and whether retrying may help), never a lost message: the planner decides what
 * happens next. A task whose attempt the planner has already timed out (dispatched_ms +
 * timeout_ms past, 1 s allowed for clock skew) is not run and answers nothing: the planner
 * ignores that attempt's result and has sent, or will send, the next one
 * (phx_tasks_expired_total counts them). */
#ifndef PHX_POOL_H
#define PHX_POOL_H

#include <jansson.h>

#include "err.h"
#include "worker.h"

/* Run one step. Returns the output (new reference) or NULL with err filled. thread_state is
 * the value made by the pool's thread_init (may be NULL). */
typedef json_t *(*phx_step_fn)(void *app, void *thread_state, const json_t *input, phx_err *err);

typedef struct phx_step_kind {
    const char *kind; /* e.g. "tool.calc" */
    phx_step_fn run;
} phx_step_kind;

typedef struct phx_pool_def {
    const char *proc; /* "phx-tools" */
    const char *pool; /* "tools": consumes phx.tasks.tools, group phx-tools */
    const phx_step_kind *kinds;
    int nkinds;
    void *app;
    /* Optional per-thread state for the step functions (e.g. a curl handle). */
    void *(*thread_init)(void *app, phx_err *err);
    void (*thread_free)(void *thread_state);
    /* Filled by phx_pool_ops: the topic and group names the loop uses. */
    char topic[64], group[64];
    const char *topics[1];
} phx_pool_def;

/* Fill ops for def (which must outlive the loop). */
void phx_pool_ops(phx_worker_ops *ops, phx_pool_def *def);

/* The pool's per-thread state (what def->thread_init made) from the loop's thread context, for
 * a pool that adds its own tick to the ops phx_pool_ops filled. */
void *phx_pool_thread_state(void *tctx);

/* The task.v1 whose step the calling thread is running, for step functions that need more
 * than the input (the tenant, for allow-lists and usage accounting); NULL outside a step. */
const json_t *phx_pool_current_task(void);

/* Build a result.v1 (exposed for tests and tools): output is consumed when not NULL. */
json_t *phx_pool_result(const json_t *task, json_t *output, const phx_err *err, const char *worker,
                        long duration_ms);

#endif
