/* metrics.h -- the process's Prometheus metrics registry.
 *
 * Every Phoenix process exposes its counters, gauges and histograms on GET /metrics of its admin
 * listener (admin.h) in the Prometheus text exposition format 0.0.4. The registry is the one piece
 * of global mutable state Phoenix allows: metrics are cross-cutting, and threading a registry
 * handle through every module would cost more than it buys.
 *
 * Usage: look a series up once (phx_counter() and friends take a lock and search) and keep the
 * pointer; updating it afterwards is lock-free (atomics only), so it is cheap on the hot path.
 * Series are never freed: a pointer stays valid for the life of the process.
 *
 * Conventions, enforced at registration (a violation is a programming error and aborts, so it
 * shows in the first test run rather than as a `promtool check metrics` failure in production):
 *   - names are lowercase snake_case [a-z_][a-z0-9_]*, in base units (seconds, bytes);
 *   - counter names end in _total, other names do not;
 *   - histogram names do not end in _bucket, _count or _sum, and do not use the label "le";
 *   - help text is required;
 *   - names starting with "process_" and "phx_build_info" are reserved for
 *     phx_metrics_set_process().
 *
 * Labels: NULL or a label set in Prometheus syntax without braces, e.g.
 *   kind="tool.calc",status="ok"
 * Values may use the escapes \\ \" and \n. The set is canonicalised (sorted by label name,
 * re-escaped), so `b="2",a="1"` names the same series as `a="1",b="2"`. A malformed label set
 * aborts: when a value comes from data rather than from the source code, escape it with
 * phx_metrics_escape_label() first. Keep label values bounded (a status, a kind), never ids:
 * every distinct value is a series kept in memory forever. */
#ifndef PHX_METRICS_H
#define PHX_METRICS_H

#include <stddef.h>

typedef struct phx_metric phx_metric;

/* Get-or-create. Same name+labels returns the same object; reusing a name with another type
 * (or a histogram with other bounds) aborts. */
phx_metric *phx_counter(const char *name, const char *help, const char *labels);
phx_metric *phx_gauge(const char *name, const char *help, const char *labels);
/* bounds: strictly ascending finite upper bounds (the +Inf bucket is implicit); NULL selects the
 * default latency buckets in seconds, .001 .. 10. */
phx_metric *phx_histogram(const char *name, const char *help, const char *labels,
                          const double *bounds, int nbounds);

/* Counter (v >= 0; a negative or NaN increment is dropped, a counter never goes down) or gauge. */
void phx_metric_add(phx_metric *m, double v);
/* Gauge only. */
void phx_metric_set(phx_metric *m, double v);
/* Histogram only. */
void phx_metric_observe(phx_metric *m, double v);
/* Current value of a counter or gauge, or the observation count of a histogram (for tests and
 * for processes that report their own numbers). */
double phx_metric_value(const phx_metric *m);

/* Visit every series of the family name (in label order) with its canonical label set (e.g.
 * `outcome="ok",topic="phx.jobs"`, "" for none) and its value as phx_metric_value gives it. For a
 * process that reports a summary of its own metrics (the ops heartbeat) without keeping a second
 * set of counters. fn runs under the registry lock: it must not register metrics. */
typedef void (*phx_metrics_visit_fn)(void *arg, const char *labels, double value);
void phx_metrics_each(const char *name, phx_metrics_visit_fn fn, void *arg);
/* Everything registered, malloc'd, in the text exposition format 0.0.4: one HELP and TYPE per
 * family, families sorted by name, histograms as cumulative _bucket{le=...} (ending in +Inf),
 * _sum and _count. NULL only when out of memory. */
char *phx_metrics_render(void);

/* Name the process and turn on the process metrics computed at each render:
 * process_resident_memory_bytes, process_cpu_seconds_total, process_start_time_seconds,
 * process_open_fds, and phx_build_info{proc="..."} 1. Call once at start; a later call renames. */
void phx_metrics_set_process(const char *proc);

/* Escape a raw label value for use between the quotes of a label set (\ -> \\, " -> \",
 * newline -> \n; invalid UTF-8 -> '?'). Returns the length the escaped text needs (like
 * snprintf); out is always NUL-terminated when outlen > 0. */
size_t phx_metrics_escape_label(char *out, size_t outlen, const char *value);

/* A label value that comes from data (a tenant) with bounded cardinality: the first max
 * distinct values seen under set keep their name, every later one becomes "other". out gets the
 * value escaped for a label set (see phx_metrics_escape_label). */
void phx_metrics_bounded_value(const char *set, const char *value, int max, char *out,
                               size_t outlen);

#endif
