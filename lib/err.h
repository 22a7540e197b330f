/* err.h -- typed errors carried from a failing call up to a step result or an HTTP answer.
 *
 * Every fallible Phoenix call that can fail for more than one reason fills a phx_err rather
 * than returning a bare -1: the planner needs to know whether a failure is retryable, and the
 * reply needs a stable machine-readable code next to the human message. */
#ifndef PHX_ERR_H
#define PHX_ERR_H

#include <stdarg.h>

typedef struct phx_err {
    char code[48];            /* stable identifier, e.g. "invalid_input", "timeout" */
    char message[512];        /* human-readable, safe to show to the job's owner */
    int retryable;            /* 1 when trying the same thing again may succeed */
    char cause[256];          /* what lay beneath, e.g. "curl: Connection refused" (may be empty) */
    long long retry_after_ms; /* retryable only: not worth trying again sooner (0 = no hint) */
} phx_err;

/* Fill err (if not NULL) and return -1, so callers can write `return phx_err_set(...)`. */
int phx_err_set(phx_err *err, const char *code, int retryable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void phx_err_clear(phx_err *err);
/* Record the underlying cause of err (kept with the error into the step result and reply). */
void phx_err_cause(phx_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
