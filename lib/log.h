/* log.h -- JSON-lines logging to stderr.
 *
 * One JSON object per line so log shippers need no parsing rules: ts (RFC 3339, ms), level,
 * proc, msg, and job_id / trace_id / span_id when the caller has them. A trace_id argument may
 * be a whole W3C traceparent: it is logged as trace_id and span_id. Without one, a line logged
 * inside a span (trace.h) carries that span's ids, so every line of a hop can be joined to its
 * trace. Secrets must never be passed in;
 * as a second line of defence every message is redacted (redact.h): configured secret values,
 * API keys, JWTs and Bearer credentials become "[REDACTED]". */
#ifndef PHX_LOG_H
#define PHX_LOG_H

#include <stddef.h>

enum phx_log_level { PHX_LOG_DEBUG, PHX_LOG_INFO, PHX_LOG_WARN, PHX_LOG_ERROR };

/* Set once at start (process config); proc names the process in every line. */
void phx_log_init(const char *proc, enum phx_log_level min_level);
int phx_log_level_parse(const char *s, enum phx_log_level *out);
/* Would a line at lvl be written? Lets a caller skip building fields nobody will read. */
int phx_log_enabled(enum phx_log_level lvl);

void phx_logj(enum phx_log_level lvl, const char *job_id, const char *trace_id, const char *fmt,
              ...) __attribute__((format(printf, 4, 5)));

/* Extra fields serialised as they are added, for lines written on every message (the span
 * records, trace.c): cheaper than building a json_t to dump it. Strings are escaped to ASCII
 * JSON; text that is not valid UTF-8 is written as "(invalid utf-8)". Up to sizeof(inl) bytes
 * live on the caller's stack. */
typedef struct phx_logf {
    char *p;
    size_t len, cap;
    char inl[768];
} phx_logf;
void phx_logf_init(phx_logf *f);
void phx_logf_str(phx_logf *f, const char *key, const char *val);
void phx_logf_num(phx_logf *f, const char *key, double v); /* 6 decimals */
void phx_logf_begin(phx_logf *f, const char *key);         /* "key":{ ... */
void phx_logf_end(phx_logf *f);                            /* ... } */
void phx_logf_free(phx_logf *f);
/* phx_logj with extra top-level fields (extra is freed here; may be NULL): the span records. */
void phx_log_fields(enum phx_log_level lvl, const char *job_id, const char *trace_id,
                    phx_logf *extra, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Hold this thread's debug and info lines in a buffer until phx_log_release (or until a warn
 * or error line, which writes what is held and then itself at once): one write(2) per handled
 * message instead of one per span. Lines stay whole and in order; the buffer is flushed in
 * chunks of at most PIPE_BUF bytes, so a flush is one atomic write even into a pipe. */
void phx_log_hold(void);
void phx_log_release(void);

#define phx_log_debug(...) phx_logj(PHX_LOG_DEBUG, NULL, NULL, __VA_ARGS__)
#define phx_log_info(...)  phx_logj(PHX_LOG_INFO, NULL, NULL, __VA_ARGS__)
#define phx_log_warn(...)  phx_logj(PHX_LOG_WARN, NULL, NULL, __VA_ARGS__)
#define phx_log_error(...) phx_logj(PHX_LOG_ERROR, NULL, NULL, __VA_ARGS__)

#endif
