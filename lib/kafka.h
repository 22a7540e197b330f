/* kafka.h -- the producer and consumer every Phoenix process uses (librdkafka).
 *
 * Producer: idempotent, acks=all, and a *synchronous* batch API: a caller hands over the
 * messages a unit of work produces and gets control back only when the broker confirmed every
 * one (or one failed for good). That is what lets the worker loop store a consumed offset only
 * after its outputs are durable -- the whole delivery guarantee rests on it.
 *
 * Consumer: a consumer-group member with automatic offset *storing* off; the loop stores an
 * offset only after the outputs of that message were confirmed, and commits stored offsets
 * (periodically, on partition revocation and on close).
 *
 * Every librdkafka property can be set from the environment as PHX_KAFKA_CONF_<property> with
 * dots written as underscores (PHX_KAFKA_CONF_security_protocol=SASL_SSL); this is how TLS and
 * SASL reach a real cluster without Phoenix knowing about them. */
#ifndef PHX_KAFKA_H
#define PHX_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "err.h"

typedef struct phx_hdr {
    const char *name;
    const char *value;
} phx_hdr;

#define PHX_MSG_MAX_HDRS 6

/* One message to produce. value is copied by librdkafka. */
typedef struct phx_kmsg {
    const char *topic;
    const char *key;
    const void *value;
    size_t len;
    phx_hdr hdrs[PHX_MSG_MAX_HDRS];
    int nhdrs;
} phx_kmsg;

typedef struct phx_producer phx_producer;

phx_producer *phx_producer_new(const char *brokers, phx_err *err);
/* Produce n messages and wait for every delivery report. 0 when all were confirmed; -1 with
 * err (retryable unless the error is permanent): code "kafka_too_large" when a message is
 * larger than the producer or the brokers take (message.max.bytes), "kafka_produce" else. */
int phx_produce_batch(phx_producer *p, const phx_kmsg *msgs, int n, phx_err *err);
int phx_producer_queue_len(phx_producer *p);
/* Flush outstanding messages (up to timeout_ms) and free. */
void phx_producer_free(phx_producer *p, int timeout_ms);
rd_kafka_t *phx_producer_handle(phx_producer *p);

typedef struct phx_consumer phx_consumer;

/* One group member for the whole process, with nlanes queues ("lanes") for its consumer
 * threads: each assigned partition is forwarded to one lane (partition numbers spread over the
 * lanes in turn), so per-partition order holds and each lane's thread owns its partitions. One
 * member instead of one per thread: a single set of broker connections and fetch loops. */
phx_consumer *phx_consumer_new(const char *brokers, const char *group, const char *const *topics,
                               int ntopics, int nlanes, phx_err *err);
/* Next message of a lane or NULL on timeout. Consumer errors (not messages) are logged and
 * NULL is returned; the caller frees a message with rd_kafka_message_destroy. After the group
 * refused a commit (rebalancing, or this member fenced) it returns NULL until the next
 * assignment: work done then could not be committed and would be done twice. */
rd_kafka_message_t *phx_consumer_poll(phx_consumer *c, int lane, int timeout_ms);
/* Serve the group protocol (rebalances, errors, max.poll.interval): one thread calls this in
 * a loop while the lanes are polled elsewhere. */
void phx_consumer_serve(phx_consumer *c, int timeout_ms);
/* 1 once the group has given this member an assignment (possibly empty: a member beyond the
 * partition count is a standby), 0 before: a process that has not joined its group yet
 * consumes nothing, which /readyz says. */
int phx_consumer_joined(phx_consumer *c);
/* Mark msg as processed: its offset+1 becomes committable. Any thread. */
void phx_consumer_store(phx_consumer *c, const rd_kafka_message_t *msg);
/* Back-pressure while a lane's message in hand cannot be finished (a dependency is down): stop
 * (pause) or restart fetching the lane's partitions. What was already fetched stays queued in
 * the lane, in order; the group membership is kept by phx_consumer_serve meanwhile. */
void phx_consumer_pause_lane(phx_consumer *c, int lane, int pause);
/* Commit stored offsets: async unless sync is set. */
void phx_consumer_commit(phx_consumer *c, int sync);
/* Commit synchronously, leave the group, free. */
void phx_consumer_close(phx_consumer *c);

/* Build a librdkafka config from brokers + PHX_KAFKA_CONF_* (shared by the CLI and tools). */
rd_kafka_conf_t *phx_kafka_conf(const char *brokers, phx_err *err);
/* Judge one PHX_KAFKA_CONF_* setting as phx_kafka_conf would apply it, on a scratch
 * configuration: 0 when librdkafka accepts the value, 1 when the name ends in _FILE and the
 * property exists (the value is then a path for the caller to check), -1 with err otherwise. */
int phx_kafka_conf_check(const char *name, const char *value, char *err, size_t errlen);
/* Is the cluster reachable (metadata within timeout)? 0 yes. */
int phx_kafka_ping(rd_kafka_t *rk, int timeout_ms, char *why, size_t whylen);

/* Where a reader starts in each partition: the end (only what arrives from now on), the start,
 * or the committed offsets of its group (a mark; the start where there is none). */
enum phx_read_from { PHX_READ_FROM_END, PHX_READ_FROM_START, PHX_READ_FROM_MARK };

/* A consumer assigned (not subscribed: it joins no group) to every partition of topic at
 * `from`, for tools that read a topic as a snapshot. group names the mark for
 * PHX_READ_FROM_MARK (and is required by assign() anyway). When hi is not NULL it gets a
 * malloc'd array, indexed by partition, of the high watermarks seen at open, and *nparts its
 * length: reading up to them makes a consistent snapshot that always ends. */
rd_kafka_t *phx_kafka_reader(const char *brokers, const char *topic, const char *group,
                             enum phx_read_from from, int64_t **hi, int *nparts, phx_err *err);
/* The configuration phx_kafka_reader starts from: phx_kafka_conf plus group, no auto commit,
 * quiet logs, and fetch.wait.max.ms 20 unless PHX_KAFKA_CONF_fetch_wait_max_ms says otherwise. */
rd_kafka_conf_t *phx_kafka_reader_conf(const char *brokers, const char *group, phx_err *err);

/* Visit every message of a snapshot reader (phx_kafka_reader with hi) below its high
 * watermarks. fn returns 0 to go on, 1 to stop, -1 on error. 0, or -1 on error or when
 * timeout_ms passed first (what was visited by then stays visited). Progress is tracked by
 * offsets, not by "end of partition" events: a partition that starts at its end is done before
 * any message arrives, and a compacted or deleted range simply moves the next offset past it. */
typedef int (*phx_kafka_visit_fn)(void *arg, const rd_kafka_message_t *m);
int phx_kafka_snapshot_scan(rd_kafka_t *rk, const int64_t *hi, int nparts, int timeout_ms,
                            phx_kafka_visit_fn fn, void *arg);

/* Header lookup on a consumed message; NULL when absent. Copies into buf. */
const char *phx_kafka_header(const rd_kafka_message_t *m, const char *name, char *buf,
                             size_t buflen);

#endif
