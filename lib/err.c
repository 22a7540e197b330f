/* err.c -- see err.h. */
#include "err.h"

#include <stdio.h>
#include <string.h>

int phx_err_set(phx_err *err, const char *code, int retryable, const char *fmt, ...)
{
    if (!err)
        return -1;
    snprintf(err->code, sizeof(err->code), "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    err->retryable = retryable;
    err->retry_after_ms = 0;
    return -1;
}

void phx_err_clear(phx_err *err)
{
    if (err)
        memset(err, 0, sizeof(*err));
}

void phx_err_cause(phx_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->cause, sizeof(err->cause), fmt, ap);
    va_end(ap);
}
