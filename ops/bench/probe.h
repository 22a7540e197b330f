/* probe.h -- what phx-bench measures about a stack besides latency: per-process CPU and RSS
 * (/proc), Redis commands (INFO commandstats) and client round trips (each process's
 * phx_redis_commands_total on /metrics), and Kafka messages (the sum of every partition's high
 * watermark). A snapshot is taken before and after a run; the report is the difference.
 *
 * The processes are the ones a stack directory ($PHX_VAR/run/NAME.pid, NAME.admin) names, so
 * they are known only for a stack started by ops/dev/stack; against another stack the
 * per-process figures are left out and say so, the Redis and Kafka ones still work. */
#ifndef PHX_BENCH_PROBE_H
#define PHX_BENCH_PROBE_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "redis.h"

#define PHX_PROBE_MAX_PROCS 16

typedef struct phx_proc_snap {
    char name[32];
    int pid;
    int admin_port;  /* 0 when the process has no admin listener on record */
    double cpu_s;    /* utime + stime */
    long hwm_kb;     /* VmHWM: peak RSS (reset at the start of a run where the kernel allows) */
    long rss_kb;     /* VmRSS now */
    double redis_rt; /* phx_redis_commands_total, -1 when not exported */
} phx_proc_snap;

typedef struct phx_probe_snap {
    phx_proc_snap procs[PHX_PROBE_MAX_PROCS];
    int nprocs;
    json_t *redis_cmds; /* {"hset": calls, ...} without INFO itself; NULL when unreachable */
    json_t *kafka_msgs; /* {"topic": messages, ...}; NULL when metadata failed */
} phx_probe_snap;

/* Snapshot everything. var_dir may be NULL (no per-process figures); r and rk may be NULL. */
void phx_probe_take(phx_probe_snap *s, const char *var_dir, phx_redis *r, rd_kafka_t *rk);
/* Reset each process's peak RSS (echo 5 > /proc/PID/clear_refs) so the peak is this run's. */
void phx_probe_reset_peaks(const phx_probe_snap *s);
void phx_probe_free(phx_probe_snap *s);

/* The difference after - before as JSON: per-process cpu_s, cpu_s_per_1k_jobs, peak_rss_kb,
 * rss_kb, redis_round_trips; redis commands (total and by command); kafka messages (total and
 * by topic). jobs and steps scale the per-job and per-step figures. */
json_t *phx_probe_diff(const phx_probe_snap *before, const phx_probe_snap *after, long jobs,
                       long steps);

#endif
