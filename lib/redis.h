/* redis.h -- the Redis client every Phoenix process uses (hiredis, blocking, one per thread).
 *
 * Why blocking: every Redis call sits on the critical path of one message, and each consumer
 * thread handles one message at a time; an event loop would add complexity without adding
 * throughput. Connections are per thread (hiredis contexts are not thread-safe).
 *
 * Failure model: an I/O error drops the connection; the next command reconnects with
 * exponential backoff and jitter, within PHX_REDIS_TIMEOUT_MS budget per command. Commands
 * may therefore be sent twice after a broken connection -- acceptable because every state
 * change Phoenix makes is a compare-then-write Lua script or an idempotent write. */
#ifndef PHX_REDIS_H
#define PHX_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "err.h"

typedef struct phx_redis phx_redis;

/* A Lua script sent by SHA (EVALSHA), loaded on NOSCRIPT. Scripts are constants: a client
 * hashes each once and keeps its SHA1 by the struct's and the source's address. */
typedef struct phx_script {
    const char *name;
    const char *src;
} phx_script;

/* Parse url and prepare a client; connects lazily. password_file may be NULL; it is read
 * again at every (re)connect, so a rotated password takes effect without a restart. */
phx_redis *phx_redis_new(const char *url, const char *password_file, int timeout_ms, phx_err *err);

/* Where the server is, beyond the URL (docs/redis.md). With sentinels
 * ("host:port,...") and master_name, the master is asked of the sentinels at every (re)connect
 * and checked with ROLE; a demoted server (READONLY, MASTERDOWN) or a lost connection makes the
 * client ask again; the URL then only gives credentials and db. wait_replicas > 0 ends every
 * round trip with WAIT for that many replica acknowledgements (fewer: the batch fails and is
 * sent again), so a failover cannot lose what a caller saw succeed. NULL or zeroed: one server
 * at the URL, exactly as before.
 *
 * With cluster_nodes, the client routes every command by its key's slot (lib/rslot.h) to the
 * primary that serves it: the slot map is read with CLUSTER SLOTS from any node, each primary
 * gets its own connection, MOVED updates the map (and has it read again), ASK sends the one
 * command to the importing node. A batch whose commands live on several nodes becomes one
 * round trip per run of consecutive commands on one node, in order; a script must only name
 * keys of one slot (every Phoenix script does: docs/architecture.md, "Slot audit").
 *
 * phx_redis_new reads the same settings from the environment (PHX_REDIS_SENTINELS,
 * PHX_REDIS_MASTER_NAME, PHX_REDIS_WAIT_REPLICAS, PHX_REDIS_CLUSTER_NODES). */
typedef struct phx_redis_topology {
    const char *sentinels;
    const char *master_name;
    long wait_replicas;
    const char *cluster_nodes; /* Redis Cluster seeds "host:port,..." (see below) */
} phx_redis_topology;
phx_redis *phx_redis_new_ex(const char *url, const char *password_file, int timeout_ms,
                            const phx_redis_topology *t, phx_err *err);
void phx_redis_free(phx_redis *r);
/* A client configured from a process's common options (PHX_REDIS_URL, PHX_REDIS_TIMEOUT_MS,
 * the topology above) and PHX_REDIS_PASSWORD_FILE: the one way long-running processes make their
 * clients. */
struct phx_common;
phx_redis *phx_redis_from_common(const struct phx_common *c, phx_err *err);

/* Run a command (printf-style, hiredis format). Returns the reply, or NULL with err filled:
 * code "redis_unavailable" (retryable) after failed reconnects, "redis_error" (not
 * retryable) for an error reply. The caller frees the reply with freeReplyObject. */
redisReply *phx_redis_cmd(phx_redis *r, phx_err *err, const char *fmt, ...);
redisReply *phx_redis_cmdv(phx_redis *r, phx_err *err, int argc, const char **argv,
                           const size_t *lens);
/* EVALSHA script with nkeys keys then args (argv holds keys then args). */
redisReply *phx_redis_eval(phx_redis *r, const phx_script *s, int nkeys, int argc,
                           const char **argv, const size_t *lens, phx_err *err);
/* One command of a pipeline: EVALSHA of script (argv: nkeys keys, then its arguments), or, when
 * script is NULL, the plain command argv. lens may be NULL (strlen of each). */
typedef struct phx_redis_call {
    const phx_script *script;
    int nkeys;
    int argc;
    const char **argv;
    const size_t *lens;
} phx_redis_call;

#define PHX_REDIS_PIPELINE_MAX 16

/* Send n (<= PHX_REDIS_PIPELINE_MAX) commands in one network round trip. Redis runs them in
 * order, but other clients' commands may run between them (this is not MULTI), so each must
 * be safe on its own: a compare-and-set script, an idempotent write, a read. At most one
 * script per pipeline: after a lost connection or an unknown script the
 * commands are sent again, which a second compare-and-set in the same batch could not
 * survive. 0 with rep[0..n-1] filled (the caller frees each), or -1 with err (an error reply
 * to any command fails the whole call, and no reply is returned). */
int phx_redis_pipeline(phx_redis *r, const phx_redis_call *calls, int n, redisReply **rep,
                       phx_err *err);

/* Send n independent commands (any number, several scripts allowed) in one network round trip:
 * the group commit of the ingress, where each command belongs to a different request. Unlike
 * phx_redis_pipeline no command may depend on another's effect, because after a lost
 * connection the whole batch is sent again and after NOSCRIPT only the commands that got it
 * are (each command must be safe to run twice, as a single command is). 0 with every reply in
 * rep[0..n-1] -- error replies included, each the caller's to judge and free -- or -1 with err
 * when Redis gave no answer (no reply is returned then). */
int phx_redis_batch(phx_redis *r, const phx_redis_call *calls, int n, redisReply **rep,
                    phx_err *err);

/* Guard this client's calls with breaker b (shared by the process's clients; may be NULL).
 * While it is open, commands fail at once with "redis_unavailable" instead of waiting for
 * connect timeouts. */
struct phx_breaker;
void phx_redis_set_breaker(phx_redis *r, struct phx_breaker *b);

/* Bound this client's calls with bulkhead b (shared by the process's clients; may be NULL):
 * while b's limit of calls is in flight, a command waits up to b's wait and then fails with
 * the retryable code "bulkhead_full" (see bulkhead.h for what callers do with it). */
struct phx_bulkhead;
void phx_redis_set_bulkhead(phx_redis *r, struct phx_bulkhead *b);
/* The bulkhead every client created from now on *in the calling thread* starts with. The
 * worker loop sets the process's Redis bulkhead in each of its threads before their
 * thread_init, so every pool's clients (made there or later, by any module) are bounded
 * together without each pool wiring it; clients made elsewhere (the admin thread's readiness
 * probe, CLI tools) are not. */
void phx_redis_thread_bulkhead(struct phx_bulkhead *b);

/* PING; 0 when reachable. */
int phx_redis_ping(phx_redis *r, char *why, size_t whylen);

#endif
