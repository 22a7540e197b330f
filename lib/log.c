/* log.c -- JSON-lines logger (see log.h).
 *
 * The line is built in one buffer and written with a single write(2) so lines from several
 * threads never interleave. jansson does the string escaping: log text often carries
 * user-controlled bytes (job ids, error messages) that must not break the JSON framing.
 * Every message passes through the redaction layer (redact.h) first.
 *
 * While a thread holds its lines (phx_log_hold, around one message in the pool loop), info and
 * debug lines collect in a thread-local buffer of PIPE_BUF bytes and leave in one write: the
 * planner logged ~8 span lines per message, and their write(2) calls were ~7 % of its CPU.
 * Holding costs nothing in durability that matters: the lines are the message's spans, which
 * are only complete when the message is. */
#include "log.h"
#include "redact.h"
#include "trace.h"
#include "util.h"

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
    char proc[64];
    enum phx_log_level min;
} phx_log_cfg = {"phx", PHX_LOG_INFO};

static const char *phx_log_names[] = {"debug", "info", "warn", "error"};

/* The thread's held lines (phx_log_hold). */
static __thread struct {
    int held;
    size_t len;
    char buf[PIPE_BUF];
} phx_log_tl;

static void phx_log_write(const char *p, size_t n)
{
    ssize_t w = write(STDERR_FILENO, p, n);
    (void)w;
}

static void phx_log_flush(void)
{
    if (phx_log_tl.len)
        phx_log_write(phx_log_tl.buf, phx_log_tl.len);
    phx_log_tl.len = 0;
}

void phx_log_hold(void)
{
    phx_log_tl.held = 1;
}

void phx_log_release(void)
{
    phx_log_flush();
    phx_log_tl.held = 0;
}

void phx_log_init(const char *proc, enum phx_log_level min_level)
{
    snprintf(phx_log_cfg.proc, sizeof(phx_log_cfg.proc), "%s", proc);
    phx_log_cfg.min = min_level;
}

int phx_log_enabled(enum phx_log_level lvl)
{
    return lvl >= phx_log_cfg.min;
}

int phx_log_level_parse(const char *s, enum phx_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, phx_log_names[i]) == 0) {
            *out = (enum phx_log_level)i;
            return 0;
        }
    }
    return -1;
}

/* Ids come from messages we have not validated yet; a bad byte must not lose the line. */
static void phx_log_set_str(json_t *o, const char *key, const char *val)
{
    json_t *s = json_string(val);
    json_object_set_new(o, key, s ? s : json_string("(invalid utf-8)"));
}

/* trace_id, or the thread's current span when NULL: a traceparent becomes trace_id + span_id. */
static void phx_log_trace(json_t *o, const char *trace_id)
{
    char cur[56];
    if (!trace_id && phx_trace_current(cur) == 0)
        trace_id = cur;
    if (!trace_id)
        return;
    if (strlen(trace_id) == 55 && trace_id[2] == '-' && trace_id[35] == '-' &&
        trace_id[52] == '-') {
        char t[33], s[17];
        snprintf(t, sizeof(t), "%.32s", trace_id + 3);
        snprintf(s, sizeof(s), "%.16s", trace_id + 36);
        phx_log_set_str(o, "trace_id", t);
        phx_log_set_str(o, "span_id", s);
    } else {
        phx_log_set_str(o, "trace_id", trace_id);
    }
}

static void phx_log_emit(enum phx_log_level lvl, const char *job_id, const char *trace_id,
                         json_t *extra, const char *fmt, va_list ap)
{
    char msg[2048], ts[40];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    phx_redact_buf(msg, sizeof(msg)); /* callers cannot always know what text carries */

    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);

    json_t *o = json_object();
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(phx_log_names[lvl]));
    json_object_set_new(o, "proc", json_string(phx_log_cfg.proc));
    phx_utf8_scrub(msg);
    json_object_set_new(o, "msg", json_string(msg));
    if (!job_id && !trace_id)
        job_id = phx_trace_current_job();
    if (job_id)
        phx_log_set_str(o, "job_id", job_id);
    phx_log_trace(o, trace_id);
    if (extra)
        json_object_update(o, extra);
    char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!line)
        return;
    size_t len = strlen(line);
    line[len++] = '\n'; /* the terminating NUL is no longer needed: write len bytes */
    if (phx_log_tl.held && lvl <= PHX_LOG_INFO && len <= sizeof(phx_log_tl.buf)) {
        if (phx_log_tl.len + len > sizeof(phx_log_tl.buf))
            phx_log_flush();
        memcpy(phx_log_tl.buf + phx_log_tl.len, line, len);
        phx_log_tl.len += len;
    } else {
        phx_log_flush(); /* what is held came first */
        phx_log_write(line, len);
    }
    free(line);
}

void phx_logj(enum phx_log_level lvl, const char *job_id, const char *trace_id, const char *fmt,
              ...)
{
    if (lvl < phx_log_cfg.min)
        return;
    va_list ap;
    va_start(ap, fmt);
    phx_log_emit(lvl, job_id, trace_id, NULL, fmt, ap);
    va_end(ap);
}

void phx_log_fields(enum phx_log_level lvl, const char *job_id, const char *trace_id, json_t *extra,
                    const char *fmt, ...)
{
    if (lvl >= phx_log_cfg.min) {
        va_list ap;
        va_start(ap, fmt);
        phx_log_emit(lvl, job_id, trace_id, extra, fmt, ap);
        va_end(ap);
    }
    json_decref(extra);
}
