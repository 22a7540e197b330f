/* trace.h -- spans: one per hop and per outward call, logged and exported as OTLP/HTTP JSON.
 *
 * A span is a timed piece of work in one W3C trace (the trace id comes from the traceparent
 * header the ingress or CLI created and every hop forwards). Two kinds of spans exist:
 *   - hop spans (the worker loop's handling of one message, the ingress's handling of one
 *     request) start from a remote traceparent and become the thread's current span;
 *   - call spans (a Redis command, a Kafka produce, an HTTP request, a sandbox run) are
 *     children of the thread's current span and are only recorded inside one: a Redis PING
 *     from /readyz belongs to no job and would only be noise.
 * Messages a hop produces carry the hop span's context, so the next hop's span is its child
 * and one job's spans form a single tree across processes.
 *
 * Every finished span is written to the JSON log (msg "span NAME", with trace_id, span_id,
 * parent_id, duration_ms) whether or not a collector is configured. With PHX_OTLP_ENDPOINT
 * set, spans are also queued (bounded, PHX_OTLP_QUEUE_SPANS) and a background thread posts
 * them in batches to the collector with libcurl. The hot path only copies the span into the
 * queue under a mutex: a full queue drops the span and counts it
 * (phx_trace_spans_dropped_total{reason="queue_full"}), a failed or slow post drops its batch
 * (reason="export_failed"); nothing ever waits for the collector.
 *
 * The current span is thread-local and the export queue is process-wide: like the metrics
 * registry, tracing is cross-cutting, and passing a tracer through every Redis and Kafka call
 * would change every signature in the code base for no gain. */
#ifndef PHX_TRACE_H
#define PHX_TRACE_H

#include <stddef.h>
#include <stdint.h>

/* The OTLP SpanKind values. */
enum phx_span_kind {
    PHX_SPAN_INTERNAL = 1,
    PHX_SPAN_SERVER = 2,
    PHX_SPAN_CLIENT = 3,
    PHX_SPAN_PRODUCER = 4,
    PHX_SPAN_CONSUMER = 5,
};

#define PHX_SPAN_MAX_ATTRS 8

/* Lives on the caller's stack between start and end; no allocation. */
typedef struct phx_span {
    int active; /* started and not yet ended */
    int kind;
    char trace_id[33], span_id[17], parent_id[17]; /* parent_id "" for a root */
    char name[80];
    char job_id[129];
    int64_t start_ns, end_ns; /* wall clock, ns since the epoch */
    int64_t mono_ns;          /* monotonic start, for the duration */
    int error;
    char status_msg[192];
    int nattrs;
    struct {
        char key[32];
        char val[128];
    } attrs[PHX_SPAN_MAX_ATTRS];
    struct phx_span *outer; /* the thread's current span before this one */
} phx_span;

/* Configure tracing for the process (called by phx_common_apply). endpoint: the collector's
 * OTLP/HTTP traces URL (e.g. http://127.0.0.1:4318/v1/traces), or "" for log-only. queue_max:
 * spans held while the collector is slow; timeout_ms bounds each post. A call while the
 * exporter runs is ignored (phx_trace_shutdown first). 0, or -1 when the exporter thread cannot
 * start (err filled). */
int phx_trace_init(const char *service, const char *endpoint, long timeout_ms, long queue_max,
                   char *err, size_t errlen);
/* Post what is queued (waiting at most wait_ms), then stop the exporter. Safe without init. */
void phx_trace_shutdown(long wait_ms);

/* Start a hop span. parent: a remote traceparent (from a header); when NULL or invalid the
 * span is the child of the thread's current span, or the root of a new trace. The span
 * becomes the thread's current span until phx_span_end. */
void phx_span_start(phx_span *s, const char *name, enum phx_span_kind kind, const char *parent);
/* Start a call span as a child of the thread's current span; when there is none the span
 * stays inactive and every other phx_span_* call on it is a no-op. Returns s->active. */
int phx_span_call(phx_span *s, const char *name, enum phx_span_kind kind);
/* An attribute (printf-style value; redacted; at most PHX_SPAN_MAX_ATTRS, later ones ignored). */
void phx_span_set(phx_span *s, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void phx_span_job(phx_span *s, const char *job_id);
/* Mark the span failed with a reason (redacted). */
void phx_span_fail(phx_span *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* End: log it, queue it for export, restore the thread's previous current span. */
void phx_span_end(phx_span *s);

/* The span leaves the thread without ending: the thread's current span is the one before it
 * again. For a request answered later (a suspended HTTP connection): its span is ended by
 * phx_span_end when the answer goes out, and no other span starts under it meanwhile. */
void phx_span_detach(phx_span *s);

/* The context to pass on ("00-TRACE-SPAN-01"); out must hold 56 bytes. */
void phx_span_traceparent(const phx_span *s, char out[56]);
/* The thread's current span context into out (56 bytes): 0, or -1 when there is none. */
int phx_trace_current(char out[56]);
/* The job id of the thread's current span, or NULL. */
const char *phx_trace_current_job(void);

#endif
