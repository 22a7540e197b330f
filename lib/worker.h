/* worker.h -- the consume -> validate -> handle -> produce -> commit loop of every pool.
 *
 * The loop is the delivery guarantee: a message's offset is stored only after everything its
 * handler asked to produce was confirmed by the brokers (acks=all), so a crash anywhere means
 * redelivery, never loss; handlers make redelivery harmless (Lua compare-and-set in Redis).
 *
 * Concurrency is PHX_CONCURRENCY consumer threads sharing one consumer (one group member per
 * process); each thread owns a lane of partitions (kafka.h), handling one message at a time:
 * in-flight work is bounded by construction, per-partition order is kept, and no cross-thread
 * offset bookkeeping is needed.
 *
 * Bad input never stops the loop: unparsable or schema-invalid messages, and messages the
 * handler declares poison, go to phx.dlq with the original bytes and the reason, and their
 * offset is stored. When a dependency is down (handler says RETRY_LATER, or produce fails),
 * the same message is retried with backoff and the process reports not-ready meanwhile. When
 * a bulkhead is full (the handler's err is bulkhead_full, see bulkhead.h), the message is held
 * the same way with short retries, but the process stays ready: the dependency is busy, not
 * down. Every Redis client made in the loop's threads shares the process's Redis bulkhead
 * (PHX_REDIS_MAX_INFLIGHT).
 *
 * Signals: SIGTERM/SIGINT stop fetching, finish the message in hand, commit and exit 0;
 * SIGHUP calls the reload hook. */
#ifndef PHX_WORKER_H
#define PHX_WORKER_H

#include <jansson.h>

#include "config.h"
#include "kafka.h"
#include "msg.h"

typedef enum {
    PHX_HANDLED = 0,     /* done (outputs in the outbox); store the offset */
    PHX_POISON = 1,      /* this message can never succeed: DLQ it with err, store the offset */
    PHX_RETRY_LATER = 2, /* a dependency failed: keep the message, back off, try again */
} phx_handle_rc;

typedef struct phx_inmsg {
    const rd_kafka_message_t *raw;
    const char *topic;
    const char *key;         /* NUL-terminated copy of the key, or NULL */
    json_t *body;            /* parsed and schema-valid */
    const char *traceparent; /* valid W3C traceparent: from the header, or a new trace */
} phx_inmsg;

typedef struct phx_worker phx_worker;

typedef struct phx_worker_ops {
    const char *proc;  /* process name, for logs and metrics */
    const char *group; /* consumer group */
    const char *const *topics;
    int ntopics;
    /* Schema name a topic's messages must satisfy ("job.v1"), or NULL for none. */
    const char *(*schema_for)(const char *topic);
    /* Per-thread state (a Redis connection, buffers). Called in each consumer thread and the
     * tick thread. NULL + err on failure (the process exits 1). */
    void *(*thread_init)(phx_worker *w, phx_err *err);
    void (*thread_free)(void *tctx);
    phx_handle_rc (*handle)(void *tctx, const phx_inmsg *in, phx_outbox *out, phx_err *err);
    /* Optional: a message failed its schema; add messages (e.g. a rejected reply) before it
     * goes to the DLQ. */
    void (*on_invalid)(void *tctx, const phx_inmsg *in, const json_t *errors, phx_outbox *out);
    /* Optional periodic work in its own thread every tick_ms (timers, delay queues). Return
     * 0, or -1 when a dependency failed (the tick backs off). */
    int (*tick)(void *tctx, phx_outbox *out, phx_err *err);
    int tick_ms;
    void (*reload)(void *app); /* optional, on SIGHUP */
    /* Optional: readiness of the process's own state (e.g. data still loading into memory),
     * asked by /readyz and the ops heartbeat once the loop's own checks (lag, dependencies)
     * pass. phx_ready_fn's contract: 0 = ready, else a reason in why; runs on the admin and
     * main threads, so it must be thread-safe and quick. */
    int (*ready)(void *app, char *why, size_t whylen);
    void *app; /* the process's own state, given back by phx_worker_app */
} phx_worker_ops;

/* Run until SIGTERM/SIGINT; returns the process exit code. */
int phx_worker_main(const phx_common *common, const phx_worker_ops *ops);

void *phx_worker_app(phx_worker *w);
const phx_common *phx_worker_common(phx_worker *w);
const phx_schema_set *phx_worker_schemas(phx_worker *w);
/* The process's Redis circuit breaker: attach it to every Redis client the handlers create
 * (phx_redis_set_breaker), so a Redis outage fails fast in every thread at once. */
struct phx_breaker;
struct phx_breaker *phx_worker_redis_breaker(phx_worker *w);
/* Produce a batch outside the loop (e.g. from a tick); 0 when confirmed. */
int phx_worker_produce(phx_worker *w, phx_outbox *out, phx_err *err);

#endif
