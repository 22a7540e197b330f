/* msg.h -- the message envelope: topics, headers, schemas, dead letters, outboxes.
 *
 * Every Phoenix message is a JSON object whose "schema" field names its JSON Schema
 * (job.v1, task.v1, ...), keyed by job id so one job's messages stay ordered within a topic,
 * and carrying the headers traceparent (W3C), phx-schema, phx-tenant and phx-attempt. Kafka
 * headers duplicate a few body fields on purpose: brokers, kcat and dashboards can route and
 * filter on them without parsing JSON. The body stays the source of truth. */
#ifndef PHX_MSG_H
#define PHX_MSG_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "err.h"
#include "kafka.h"
#include "schema.h"

#define PHX_TOPIC_JOBS        "phx.jobs"
#define PHX_TOPIC_RESULTS     "phx.results"
#define PHX_TOPIC_REPLIES     "phx.replies"
#define PHX_TOPIC_EVENTS      "phx.events"
#define PHX_TOPIC_DLQ         "phx.dlq"
#define PHX_TASK_TOPIC_PREFIX "phx.tasks."

/* Largest message body Phoenix accepts from Kafka (bigger ones go to the DLQ). */
#define PHX_MSG_MAX_BYTES (1024 * 1024)

/* The pool that runs a step kind ("tool.calc" -> "tools"), or NULL for an unknown kind. */
const char *phx_kind_pool(const char *kind);

/* Every topic Phoenix uses by default, as a cluster must provide them: phx.jobs, phx.results,
 * phx.replies, phx.events, phx.dlq, then phx.tasks.<pool> for each pool of the kind table.
 * Writes up to max names into out; returns how many there are. (`phx topics plan` prints
 * them; a job's own reply_to topic is the client's to create.) */
#define PHX_TOPIC_NAME_MAX 64
int phx_topics_all(char out[][PHX_TOPIC_NAME_MAX], int max);

/* W3C trace context. out must hold 56 bytes ("00-<32 hex>-<16 hex>-01"). */
void phx_traceparent_new(char out[56]);
int phx_traceparent_valid(const char *tp);
/* Same trace, new span: the context a hop passes on. An invalid parent starts a new trace. */
void phx_traceparent_child(const char *parent, char out[56]);

/* The message schemas: built-in, or from dir when dir is non-empty. */
phx_schema_set *phx_schemas_load(const char *dir, phx_err *err);

/* Parse a consumed payload as one JSON object (duplicate keys and oversize refused). NULL
 * with reason on failure. */
json_t *phx_msg_parse(const void *payload, size_t len, char *reason, size_t reasonlen);

/* Work to do only once the outbox's messages are confirmed (e.g. mark a reply as sent). */
typedef void (*phx_after_fn)(void *tctx, const char *arg);

/* Messages a handler wants produced; the worker loop sends them as one confirmed batch, then
 * runs the after hooks in order. */
typedef struct phx_outbox {
    phx_kmsg *msgs;
    char **owned; /* strings to free with the outbox */
    int n, cap, nowned, capowned;
    struct {
        phx_after_fn fn;
        const char *arg;
    } * after;
    int nafter, capafter;
} phx_outbox;

void phx_outbox_after(phx_outbox *ob, phx_after_fn fn, const char *arg);
/* Run the after hooks (the worker loop calls this once the batch is confirmed). */
void phx_outbox_run_after(phx_outbox *ob, void *tctx);

/* Add a JSON message (value is consumed: its reference is stolen). Headers: phx-schema from
 * value's "schema", phx-tenant when given, phx-attempt when > 0, and traceparent: the given
 * one (the sender's span; an invalid one starts a new trace), else the thread's current span
 * (trace.h), else none. */
void phx_outbox_add(phx_outbox *ob, const char *topic, const char *key, json_t *value,
                    const char *tenant, const char *traceparent, int attempt);
void phx_outbox_reset(phx_outbox *ob);
void phx_outbox_free(phx_outbox *ob);

/* A dead letter for message m: original bytes (base64, and as text when UTF-8 and at most
 * PHX_DLQ_TEXT_BYTES), where it came from, why it was refused. errors may be NULL (it is not
 * consumed; at most PHX_DLQ_MAX_ERRORS are kept). Bytes over PHX_DLQ_KEEP_BYTES are not kept
 * whole -- the letter must stay under the broker's message size -- only their first
 * PHX_DLQ_TEXT_BYTES, with payload_truncated, payload_bytes and payload_sha256. */
#define PHX_DLQ_KEEP_BYTES (512 * 1024)
#define PHX_DLQ_TEXT_BYTES (64 * 1024)
#define PHX_DLQ_MAX_ERRORS 50
json_t *phx_dlq_new(const rd_kafka_message_t *m, const char *consumer, const char *reason,
                    const json_t *errors);

/* Base64 helpers (standard alphabet, padded). Results are malloc'd. */
char *phx_base64_encode(const void *data, size_t len);
/* Decode standard base64 (padding optional); NULL on invalid input. *len gets the size. */
unsigned char *phx_base64_decode(const char *s, size_t *len);

/* Fill what a hand-written job may leave out: schema "job.v1", a new id, submitted_ms (now).
 * Shared by every producer of jobs (ingress, CLI) so they cannot drift apart. */
void phx_job_defaults(json_t *job);

/* The phx.jobs message for job id (body: its JSON text), with the headers the planner and
 * dashboards read (phx-schema, phx-tenant, traceparent). Every producer of jobs (ingress, CLI,
 * phx-bench) builds it here so the envelope cannot drift; m borrows every string. */
void phx_job_kmsg(phx_kmsg *m, const char *id, const char *tenant, const char *body,
                  const char *traceparent);

/* An event.v1 for job_id; detail may be NULL (it is consumed when given). */
json_t *phx_event_new(const char *job_id, const char *tenant, const char *type, const char *step_id,
                      int attempt, json_t *detail);

#endif
