/* log.c -- JSON-lines logger (see log.h).
 *
 * The line is built in one buffer and written with a single write(2) so lines from several
 * threads never interleave. Strings are escaped here (phx_logf_string, as jansson's
 * JSON_ENSURE_ASCII would): log text often carries user-controlled bytes (job ids, error
 * messages) that must not break the JSON framing.
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

#include <math.h>
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

/* --- the line builder ------------------------------------------------------------------ */

void phx_logf_init(phx_logf *f)
{
    f->p = f->inl;
    f->len = 0;
    f->cap = sizeof(f->inl);
}

void phx_logf_free(phx_logf *f)
{
    if (f->p != f->inl)
        free(f->p);
    phx_logf_init(f);
}

static void phx_logf_put(phx_logf *f, const char *s, size_t n)
{
    if (f->len + n + 1 > f->cap) {
        size_t cap = (f->len + n + 1) * 2;
        if (f->p == f->inl) {
            char *p = phx_xmalloc(cap);
            memcpy(p, f->inl, f->len);
            f->p = p;
        } else {
            f->p = phx_xrealloc(f->p, cap);
        }
        f->cap = cap;
    }
    memcpy(f->p + f->len, s, n);
    f->len += n;
}

static void phx_logf_putc(phx_logf *f, char c)
{
    phx_logf_put(f, &c, 1);
}

/* s as a JSON string, escaped as jansson's JSON_ENSURE_ASCII does (control characters and
 * everything past U+007F as \uXXXX, surrogate pairs beyond the BMP), so a log line is ASCII
 * whatever bytes a job id or an error carried. Text that is not valid UTF-8 is written as
 * "(invalid utf-8)", as the jansson-built lines did: ids come from messages not validated yet,
 * and a bad byte must not lose the line. */
static void phx_logf_string(phx_logf *f, const char *s)
{
    size_t start = f->len;
    const unsigned char *p = (const unsigned char *)s;
    phx_logf_putc(f, '"');
    while (*p) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p > run)
            phx_logf_put(f, (const char *)run, (size_t)(p - run));
        if (!*p)
            break;
        unsigned cp;
        int n = phx_utf8_decode(p, &cp);
        if (n == 0) {
            f->len = start;
            phx_logf_put(f, "\"(invalid utf-8)\"", 17);
            return;
        }
        p += n;
        /* JSON's two-character escapes; the rest as \uXXXX (cp < 0x80: strchr takes a char) */
        static const char shortc[] = "\"\\\b\f\n\r\t", shortn[] = "\"\\bfnrt";
        const char *sc = cp < 0x80 ? strchr(shortc, (int)cp) : NULL;
        if (sc) {
            char two[2] = {'\\', shortn[sc - shortc]};
            phx_logf_put(f, two, 2);
            continue;
        }
        char esc[16];
        if (cp < 0x10000) {
            snprintf(esc, sizeof(esc), "\\u%04X", cp);
            phx_logf_put(f, esc, 6);
        } else {
            cp -= 0x10000;
            snprintf(esc, sizeof(esc), "\\u%04X\\u%04X", 0xd800 | (cp >> 10),
                     0xdc00 | (cp & 0x3ff));
            phx_logf_put(f, esc, 12);
        }
    }
    phx_logf_putc(f, '"');
}

/* "key": -- with the comma a member after another one needs. */
static void phx_logf_key(phx_logf *f, const char *key)
{
    if (f->len > 0 && f->p[f->len - 1] != '{')
        phx_logf_putc(f, ',');
    phx_logf_string(f, key);
    phx_logf_putc(f, ':');
}

void phx_logf_str(phx_logf *f, const char *key, const char *val)
{
    phx_logf_key(f, key);
    phx_logf_string(f, val);
}

void phx_logf_num(phx_logf *f, const char *key, double v)
{
    char t[40];
    /* JSON has no NaN or infinity: such a value is written as null, not as a broken line */
    int n = isfinite(v) ? snprintf(t, sizeof(t), "%.6f", v) : snprintf(t, sizeof(t), "null");
    phx_logf_key(f, key);
    phx_logf_put(f, t, (size_t)n);
}

void phx_logf_begin(phx_logf *f, const char *key)
{
    phx_logf_key(f, key);
    phx_logf_putc(f, '{');
}

void phx_logf_end(phx_logf *f)
{
    phx_logf_putc(f, '}');
}

/* trace_id, or the thread's current span when NULL: a traceparent becomes trace_id + span_id. */
static void phx_log_trace(phx_logf *o, const char *trace_id)
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
        phx_logf_str(o, "trace_id", t);
        phx_logf_str(o, "span_id", s);
    } else {
        phx_logf_str(o, "trace_id", trace_id);
    }
}

/* One line: the fixed fields, then the caller's (extra: serialised members, or NULL). Built by
 * hand rather than as a json_t and json_dumps: a span line (most of a busy worker's lines) cost
 * ~5 % of the planner's CPU that way, in allocations and jansson's hashing of every key. */
static void phx_log_emit(enum phx_log_level lvl, const char *job_id, const char *trace_id,
                         const phx_logf *extra, const char *fmt, va_list ap)
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

    phx_logf o;
    phx_logf_init(&o);
    phx_logf_putc(&o, '{');
    phx_logf_str(&o, "ts", ts);
    phx_logf_str(&o, "level", phx_log_names[lvl]);
    phx_logf_str(&o, "proc", phx_log_cfg.proc);
    phx_utf8_scrub(msg);
    phx_logf_str(&o, "msg", msg);
    if (!job_id && !trace_id)
        job_id = phx_trace_current_job();
    if (job_id)
        phx_logf_str(&o, "job_id", job_id);
    phx_log_trace(&o, trace_id);
    if (extra && extra->len) {
        phx_logf_putc(&o, ',');
        phx_logf_put(&o, extra->p, extra->len);
    }
    phx_logf_put(&o, "}\n", 2);
    const char *line = o.p;
    size_t len = o.len;
    if (phx_log_tl.held && lvl <= PHX_LOG_INFO && len <= sizeof(phx_log_tl.buf)) {
        if (phx_log_tl.len + len > sizeof(phx_log_tl.buf))
            phx_log_flush();
        memcpy(phx_log_tl.buf + phx_log_tl.len, line, len);
        phx_log_tl.len += len;
    } else {
        phx_log_flush(); /* what is held came first */
        phx_log_write(line, len);
    }
    phx_logf_free(&o);
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

void phx_log_fields(enum phx_log_level lvl, const char *job_id, const char *trace_id,
                    phx_logf *extra, const char *fmt, ...)
{
    if (lvl >= phx_log_cfg.min) {
        va_list ap;
        va_start(ap, fmt);
        phx_log_emit(lvl, job_id, trace_id, extra, fmt, ap);
        va_end(ap);
    }
    phx_logf_free(extra);
}
