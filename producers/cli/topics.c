/* topics.c -- `phx topics plan`: the kafka-topics.sh commands that create every Phoenix topic on
 * a production cluster, sized for a load.
 *
 * Phoenix never creates topics on a real cluster (a typo'd reply_to must not invent one), so an
 * operator creates them once. The topic list comes from phx_topics_all (lib/msg.c), the same
 * names the processes use. Sizing rules, printed with the commands so the output explains
 * itself:
 *   - A topic consumed by a Phoenix pool (phx.jobs, phx.results, phx.tasks.*) needs at least as
 *     many partitions as the pool has consumer threads at its peak: each process is one member
 *     of the group and spreads the partitions it is assigned over its PHX_CONCURRENCY threads,
 *     one partition to one thread, so replicas x PHX_CONCURRENCY threads need that many
 *     partitions to all have work. A thread handles one message at a time, ~50 messages/s at
 *     the ~20 ms a pipeline hop takes (docs/benchmarks.md). Partitions cannot be reduced later, and
 * adding some moves keys (a job's messages change partition mid-flight), so the plan rounds up to a
 * multiple of 12.
 *   - Topics read by clients or operators (replies, events, dead letters) are sized for broker
 *     throughput, not consumer parallelism.
 *   - Replication 3, min.insync.replicas 2: with acks=all (every Phoenix producer) a confirmed
 *     message is on two brokers, and one broker can be down without stopping writes.
 *   - Only phx.replies is compacted (compact,delete): its key is the job id and a job has one
 *     final reply, re-sent identically on redelivery, so compaction keeps exactly what clients
 *     need. Every other topic carries many distinct messages per job id (a job's tasks, results,
 *     events, dead letters) that compaction would silently drop. */
#include "cli.h"
#include "util.h"
#include "msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHX_PLAN_MSGS_PER_THREAD    50   /* messages/s one consumer thread handles (see above) */
#define PHX_PLAN_MSGS_PER_PARTITION 1000 /* for topics no pool consumes: broker throughput */
#define PHX_PLAN_DAY_MS             86400000L

typedef struct phx_plan {
    long jobs_per_s, steps_per_job, threads, rf, min_insync;
    const char *scale, *bootstrap, *command_config;
} phx_plan;

static const struct {
    const char *name;
    long jobs_per_s, threads;
} phx_plan_scales[] = {
    {"small", 50, 12},
    {"medium", 500, 36},
    {"large", 5000, 144},
};

static long phx_plan_roundup(long n, long m)
{
    return (n + m - 1) / m * m;
}

/* Partitions, retention and cleanup policy of one topic, with the reason in why. */
static void phx_plan_topic(const phx_plan *p, const char *t, long *parts, long *retention_ms,
                           const char **cleanup, char *why, size_t whylen)
{
    long steps = p->jobs_per_s * p->steps_per_job;
    long need;
    *cleanup = "delete";
    if (strcmp(t, PHX_TOPIC_JOBS) == 0) {
        need = p->jobs_per_s / PHX_PLAN_MSGS_PER_THREAD;
        *retention_ms = 7 * PHX_PLAN_DAY_MS;
        snprintf(why, whylen,
                 "planner input, %ld jobs/s; kept 7 days (a planner outage of days "
                 "loses nothing; matches PHX_JOB_TTL_S)",
                 p->jobs_per_s);
    } else if (strcmp(t, PHX_TOPIC_RESULTS) == 0) {
        need = steps / PHX_PLAN_MSGS_PER_THREAD;
        *retention_ms = 3 * PHX_PLAN_DAY_MS;
        snprintf(why, whylen,
                 "planner input, one result per step, %ld/s; kept 3 days (what "
                 "`phx trace` can show)",
                 steps);
    } else if (strncmp(t, PHX_TASK_TOPIC_PREFIX, strlen(PHX_TASK_TOPIC_PREFIX)) == 0) {
        need = steps / PHX_PLAN_MSGS_PER_THREAD;
        *retention_ms = PHX_PLAN_DAY_MS;
        snprintf(why, whylen,
                 "pool input, up to %ld steps/s if every step were this pool's; "
                 "kept 1 day (a task past its job's deadline is refused anyway)",
                 steps);
    } else {
        long rate = strcmp(t, PHX_TOPIC_EVENTS) == 0 ? steps * 2 : p->jobs_per_s;
        *parts = strcmp(t, PHX_TOPIC_DLQ) == 0
                     ? 6
                     : phx_plan_roundup(rate / PHX_PLAN_MSGS_PER_PARTITION + 1, 12);
        if (strcmp(t, PHX_TOPIC_REPLIES) == 0) {
            *retention_ms = PHX_PLAN_DAY_MS;
            *cleanup = "compact,delete";
            snprintf(why, whylen,
                     "default reply_to, one final reply per job id: compacted to "
                     "the latest per job, deleted after 1 day");
        } else if (strcmp(t, PHX_TOPIC_EVENTS) == 0) {
            *retention_ms = 3 * PHX_PLAN_DAY_MS;
            snprintf(why, whylen,
                     "lifecycle events for dashboards, SSE and `phx trace`, ~%ld/s; "
                     "kept 3 days",
                     rate);
        } else if (strcmp(t, PHX_TOPIC_DLQ) == 0) {
            *retention_ms = 30 * PHX_PLAN_DAY_MS;
            snprintf(why, whylen,
                     "dead letters wait for an operator (`phx dlq replay`): kept "
                     "30 days; never compacted (letters share job ids)");
        } else {
            *retention_ms = PHX_PLAN_DAY_MS;
            snprintf(why, whylen, "kept 1 day");
        }
        return;
    }
    if (need < p->threads)
        need = p->threads;
    *parts = phx_plan_roundup(need < 12 ? 12 : need, 12);
}

static void phx_plan_print(const phx_plan *p)
{
    char topics[32][PHX_TOPIC_NAME_MAX];
    int n = phx_topics_all(topics, 32);
    printf("# Phoenix topics (%s): %ld jobs/s, %ld steps per job, up to %ld consumer threads "
           "(replicas x PHX_CONCURRENCY) in the largest pool.\n",
           p->scale, p->jobs_per_s, p->steps_per_job, p->threads);
    printf("# Topics consumed by a pool get at least that many partitions and one per %d "
           "messages/s (one thread handles one message at a time); partitions can only grow, and "
           "growing moves job ids to other partitions, so size for the peak. Replication %ld, "
           "min.insync.replicas %ld: with acks=all a confirmed message is on %ld brokers.\n",
           PHX_PLAN_MSGS_PER_THREAD, p->rf, p->min_insync, p->min_insync);
    for (int i = 0; i < n && i < 32; i++) {
        long parts = 12, retention = PHX_PLAN_DAY_MS;
        const char *cleanup;
        char why[256];
        phx_plan_topic(p, topics[i], &parts, &retention, &cleanup, why, sizeof(why));
        printf("\n# %s: %s\n", topics[i], why);
        printf("kafka-topics.sh --bootstrap-server %s", p->bootstrap);
        if (p->command_config)
            printf(" --command-config %s", p->command_config);
        printf(" --create --if-not-exists --topic %s --partitions %ld --replication-factor %ld "
               "--config min.insync.replicas=%ld --config retention.ms=%ld --config "
               "cleanup.policy=%s",
               topics[i], parts, p->rf, p->min_insync, retention, cleanup);
        if (strcmp(cleanup, "delete") != 0)
            printf(" --config min.compaction.lag.ms=3600000");
        printf("\n");
    }
}

static int phx_plan_num(const char *flag, const char *v, long min, long max, long *out)
{
    if (phx_parse_long(v, min, max, out) < 0) {
        fprintf(stderr, "phx topics plan: %s wants an integer in %ld..%ld\n", flag, min, max);
        return -1;
    }
    return 0;
}

int phx_cli_topics(const phx_cli_env *env, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "plan") != 0) {
        fprintf(stderr, "usage: phx topics plan [--scale small|medium|large] [--jobs-per-s N] "
                        "[--steps-per-job N] [--threads N] [--replication-factor N] "
                        "[--min-insync N] [--bootstrap HOST:PORT] [--command-config FILE]\n");
        return PHX_EXIT_USAGE;
    }
    phx_plan p = {
        .scale = "medium", .steps_per_job = 3, .rf = 3, .min_insync = 2, .bootstrap = env->brokers};
    long jobs = -1, threads = -1;
    /* Every option takes a value: they come in pairs. */
    for (int i = 2; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(a, "--scale") == 0 && v) {
            p.scale = v;
        } else if (strcmp(a, "--jobs-per-s") == 0) {
            rc = phx_plan_num(a, v, 1, 10000000, &jobs);
        } else if (strcmp(a, "--steps-per-job") == 0) {
            rc = phx_plan_num(a, v, 1, 1000, &p.steps_per_job);
        } else if (strcmp(a, "--threads") == 0) {
            rc = phx_plan_num(a, v, 1, 100000, &threads);
        } else if (strcmp(a, "--replication-factor") == 0) {
            rc = phx_plan_num(a, v, 1, 16, &p.rf);
        } else if (strcmp(a, "--min-insync") == 0) {
            rc = phx_plan_num(a, v, 1, 16, &p.min_insync);
        } else if (strcmp(a, "--bootstrap") == 0 && v) {
            p.bootstrap = v;
        } else if (strcmp(a, "--command-config") == 0 && v) {
            p.command_config = v;
        } else {
            fprintf(stderr, "phx topics plan: unknown or incomplete option '%s'\n", a);
            return PHX_EXIT_USAGE;
        }
        if (rc < 0)
            return PHX_EXIT_USAGE;
    }
    size_t k, nscales = sizeof(phx_plan_scales) / sizeof(phx_plan_scales[0]);
    for (k = 0; k < nscales && strcmp(phx_plan_scales[k].name, p.scale) != 0; k++)
        ;
    if (k == nscales) {
        fprintf(stderr, "phx topics plan: --scale is small, medium or large, not '%s'\n", p.scale);
        return PHX_EXIT_USAGE;
    }
    p.jobs_per_s = jobs > 0 ? jobs : phx_plan_scales[k].jobs_per_s;
    p.threads = threads > 0 ? threads : phx_plan_scales[k].threads;
    if (jobs > 0 || threads > 0)
        p.scale = "explicit figures";
    if (p.min_insync > p.rf) {
        fprintf(stderr,
                "phx topics plan: --min-insync %ld > --replication-factor %ld: acks=all "
                "could never succeed\n",
                p.min_insync, p.rf);
        return PHX_EXIT_USAGE;
    }
    if (p.min_insync == p.rf)
        fprintf(stderr, "phx topics plan: warning: min.insync.replicas = replication factor: one "
                        "broker down stops every write\n");
    phx_plan_print(&p);
    return PHX_EXIT_OK;
}
