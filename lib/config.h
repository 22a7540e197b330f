/* config.h -- process configuration from PHX_* environment variables and an optional JSON file.
 *
 * Each binary describes its options in a table (name, type, default, bounds, help). The same
 * table drives loading, validation and `--help`, so an option cannot exist without being
 * documented, and a bad value is caught at start (exit 2 naming the variable) rather than at
 * the first message that needs it. Precedence: environment > file (PHX_CONFIG_FILE) > default.
 * Secrets are never values here: options ending in _FILE name a file that is read on demand
 * (phx_config_read_secret) and never logged. */
#ifndef PHX_CONFIG_H
#define PHX_CONFIG_H

#include <stddef.h>
#include <stdio.h>

enum phx_opt_type {
    PHX_OPT_STR,  /* char *, malloc'd */
    PHX_OPT_INT,  /* long, within [min, max] */
    PHX_OPT_BOOL, /* int: 1/0 from true/false/1/0/yes/no/on/off */
};

typedef struct phx_opt {
    const char *name; /* full variable name, e.g. "PHX_REDIS_URL" */
    enum phx_opt_type type;
    const char *def; /* default as text; NULL = required (STR may be "" = empty allowed) */
    long min, max;   /* INT bounds */
    size_t offset;   /* offsetof(the config struct, field) */
    const char *help;
} phx_opt;

/* Options every long-running process shares; embed as `phx_common common;` first member. */
typedef struct phx_common {
    char *kafka_brokers;
    char *redis_url;
    char *admin_addr;
    char *log_level;
    char *schema_dir;
    long redis_timeout_ms;
    char *redis_sentinels;
    char *redis_master_name;
    long redis_wait_replicas;
    char *redis_cluster_nodes;
    long redis_max_inflight;
    long bulkhead_wait_ms;
    long concurrency;
    long shutdown_grace_ms;
    char *otlp_endpoint;
    long otlp_timeout_ms;
    long otlp_queue_spans;
    long ready_max_lag;
} phx_common;

#define PHX_COMMON_OPTS(type)                                                                      \
    {"PHX_KAFKA_BROKERS",                                                                          \
     PHX_OPT_STR,                                                                                  \
     "127.0.0.1:9092",                                                                             \
     0,                                                                                            \
     0,                                                                                            \
     offsetof(type, common.kafka_brokers),                                                         \
     "Kafka bootstrap servers (host:port,...). Any librdkafka property can be set with "           \
     "PHX_KAFKA_CONF_<property> (dots as underscores, e.g. PHX_KAFKA_CONF_security_protocol)."},   \
        {"PHX_REDIS_URL",                                                                          \
         PHX_OPT_STR,                                                                              \
         "redis://127.0.0.1:6379/0",                                                               \
         0,                                                                                        \
         0,                                                                                        \
         offsetof(type, common.redis_url),                                                         \
         "Redis URL: redis://[user:password@]host:port[/db] or unix:///path/to/sock. A password "  \
         "may instead come from PHX_REDIS_PASSWORD_FILE."},                                        \
        {"PHX_ADMIN_ADDR",                                                                         \
         PHX_OPT_STR,                                                                              \
         "127.0.0.1:0",                                                                            \
         0,                                                                                        \
         0,                                                                                        \
         offsetof(type, common.admin_addr),                                                        \
         "Admin HTTP listener (/healthz /readyz /metrics), HOST:PORT; port 0 picks a free one."},  \
        {"PHX_LOG_LEVEL",                                                                          \
         PHX_OPT_STR,                                                                              \
         "info",                                                                                   \
         0,                                                                                        \
         0,                                                                                        \
         offsetof(type, common.log_level),                                                         \
         "Minimum log level: debug, info, warn, error."},                                          \
        {"PHX_SCHEMA_DIR",                                                                         \
         PHX_OPT_STR,                                                                              \
         "",                                                                                       \
         0,                                                                                        \
         0,                                                                                        \
         offsetof(type, common.schema_dir),                                                        \
         "Directory of JSON Schemas overriding the ones built into the binary (empty = "           \
         "built-in)."},                                                                            \
        {"PHX_SHUTDOWN_GRACE_MS", PHX_OPT_INT, "30000", 100, 3600000,                              \
         offsetof(type, common.shutdown_grace_ms),                                                 \
         "After SIGTERM, how long in-flight messages may take to finish. Past it the process "     \
         "exits without committing them: they are handed back and redelivered."},                \
        {"PHX_OTLP_ENDPOINT", PHX_OPT_STR, "", 0, 0, offsetof(type, common.otlp_endpoint),         \
         "OTLP/HTTP JSON traces URL of a collector, e.g. http://127.0.0.1:4318/v1/traces; spans "  \
         "are batched and posted in the background (empty = spans only go to the log)."},         \
        {"PHX_OTLP_TIMEOUT_MS", PHX_OPT_INT, "2000", 10, 60000,                                    \
         offsetof(type, common.otlp_timeout_ms),                                                   \
         "Bound on one post to the trace collector; a slower post drops its batch (counted)."},    \
        {"PHX_OTLP_QUEUE_SPANS", PHX_OPT_INT, "4096", 16, 1000000,                                 \
         offsetof(type, common.otlp_queue_spans),                                                  \
         "Spans held for export while the collector is slow; beyond it new spans are dropped "     \
         "(phx_trace_spans_dropped_total) rather than slowing the work down."},                    \
        {"PHX_READY_MAX_LAG", PHX_OPT_INT, "10000", 0, 1000000000,                                 \
         offsetof(type, common.ready_max_lag),                                                     \
         "Pools and the planner answer /readyz 503 while their consumer lag (messages past what "  \
         "this process finished, summed over its partitions, from librdkafka statistics) is "      \
         "above this; 0 = never. Other processes ignore it."},                                     \
        {"PHX_REDIS_TIMEOUT_MS",                                                                   \
         PHX_OPT_INT,                                                                              \
         "2000",                                                                                   \
         10,                                                                                       \
         60000,                                                                                    \
         offsetof(type, common.redis_timeout_ms),                                                  \
         "Redis connect and command timeout."},                                                    \
        {"PHX_REDIS_SENTINELS", PHX_OPT_STR, "", 0, 0, offsetof(type, common.redis_sentinels),     \
         "Redis Sentinel addresses (host:port,...): the master named PHX_REDIS_MASTER_NAME is "    \
         "asked of them at every (re)connect and after a failover; PHX_REDIS_URL then gives only " \
         "credentials and db (empty = no Sentinel). See docs/redis.md."},                          \
        {"PHX_REDIS_MASTER_NAME", PHX_OPT_STR, "", 0, 0, offsetof(type, common.redis_master_name), \
         "The Sentinel master name (sentinel monitor NAME ...); required with "                    \
         "PHX_REDIS_SENTINELS."},                                                                  \
        {"PHX_REDIS_WAIT_REPLICAS", PHX_OPT_INT, "0", 0, 16,                                       \
         offsetof(type, common.redis_wait_replicas),                                               \
         "Replicas that must acknowledge every Redis round trip (WAIT, in the same round trip) "   \
         "before it counts as done; fewer and it is sent again. 0 = asynchronous replication: a "  \
         "Sentinel failover can lose many seconds of writes (docs/redis.md)."},                    \
        {"PHX_REDIS_CLUSTER_NODES", PHX_OPT_STR, "", 0, 0,                                         \
         offsetof(type, common.redis_cluster_nodes),                                               \
         "Redis Cluster seed nodes (host:port,...): commands are routed by key slot to the "       \
         "primary serving it (MOVED/ASK followed); PHX_REDIS_URL then gives only credentials "     \
         "(empty = not a cluster). See docs/redis.md."},                                           \
        {"PHX_REDIS_MAX_INFLIGHT", PHX_OPT_INT, "64", 1, 4096,                                     \
         offsetof(type, common.redis_max_inflight),                                                \
         "Worker processes: Redis calls in flight at once across the threads of the process "      \
         "(its Redis bulkhead). A message whose call finds it full waits in Kafka: partitions "    \
         "paused, retried once the bulkhead drained (phx_bulkhead_* metrics)."},                   \
        {"PHX_BULKHEAD_WAIT_MS", PHX_OPT_INT, "50", 0, 10000,                                      \
         offsetof(type, common.bulkhead_wait_ms),                                                  \
         "How long a call waits for a slot in a full bulkhead (Redis, LLM providers, outbound "    \
         "tools) before its message is handed back to Kafka (back-pressure)."},                    \
    {                                                                                              \
        "PHX_CONCURRENCY", PHX_OPT_INT, "2", 1, 256, offsetof(type, common.concurrency),           \
            "Consumer threads in this process (each handles one message at a time, so this is "    \
            "the bound on in-flight work)."                                                        \
    }

/* Load opts into cfg (zeroed by the caller). 0 on success; -1 with err naming the variable. */
int phx_config_load(const phx_opt *opts, size_t nopts, void *cfg, char *err, size_t errlen);
void phx_config_free(const phx_opt *opts, size_t nopts, void *cfg);
void phx_config_usage(FILE *out, const char *prog, const char *summary, const phx_opt *opts,
                      size_t nopts);
/* Validate the common options (log level, ...) and apply the log settings. */
int phx_common_apply(const char *proc, const phx_common *c, char *err, size_t errlen);

/* Check val as a value of o (type, range, and the shared options' own rules) without
 * applying it; src names where it came from in the message. 0, or -1 with err. */
int phx_config_check_value(const phx_opt *o, const char *val, const char *src, char *err,
                           size_t errlen);
/* A config file value as the text an environment variable would hold: a string, an integer
 * (written into buf) or a boolean ("true"/"false"); NULL for any other JSON type. */
struct json_t;
const char *phx_config_json_text(const struct json_t *v, char buf[64]);
/* The table as tab-separated lines: NAME, str|int|bool, MIN, MAX, default|required, DEFAULT.
 * Every binary prints it for `--options`; `phx config check` reads it, so the one table in
 * each binary stays the only description of its settings. */
void phx_config_options(FILE *out, const phx_opt *opts, size_t nopts);

/* Read a secret file (trailing newline stripped). malloc'd string or NULL with err. */
char *phx_config_read_secret(const char *path, char *err, size_t errlen);

/* Standard start for a binary: handle --help/-h (print usage, exit 0), --options (the table,
 * exit 0) and unknown arguments (exit 2), load config (exit 2 with the message on failure). */
void phx_config_main(int argc, char **argv, const char *summary, const phx_opt *opts, size_t nopts,
                     void *cfg);

/* phx_config_main, then phx_common_apply on common (the process's shared options): the whole
 * start of a long-running binary. Exits 2 with a message on any bad value. */
void phx_config_start(int argc, char **argv, const char *proc, const char *summary,
                      const phx_opt *opts, size_t nopts, void *cfg, phx_common *common);

#endif
