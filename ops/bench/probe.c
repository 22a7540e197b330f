/* probe.c -- stack snapshots for phx-bench (see probe.h). */
#include "probe.h"
#include "util.h"

#include <curl/curl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* utime + stime of pid in seconds, or -1. Fields 14 and 15 of /proc/PID/stat, counted after
 * the command name, which may itself hold spaces and parentheses: parse from its last ')'. */
static double phx_probe_cpu(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long ut = 0, st = 0;
    /* After ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime(14) stime(15). */
    // NOLINTNEXTLINE(cert-err34-c): kernel-formatted digits; the count check catches a bad line
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void phx_probe_mem(int pid, long *hwm, long *rss)
{
    char path[64], line[256];
    *hwm = *rss = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmRSS:", 6) == 0)
            *rss = strtol(line + 6, NULL, 10);
    }
    fclose(f);
}

static int phx_probe_read_int(const char *dir, const char *name, const char *ext)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/run/%s.%s", dir, name, ext);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int v = 0;
    if (fscanf(f, "%d", &v) != 1) // NOLINT(cert-err34-c): a pid/port file the stack wrote
        v = 0;
    fclose(f);
    return v;
}

/* phx_redis_commands_total from the process's /metrics, or -1 (no listener, no series). */
static double phx_probe_round_trips(int port)
{
    if (port <= 0)
        return -1;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    phx_capbuf b = {NULL, 0, 4 * 1024 * 1024}; /* a /metrics page larger than this is not ours */
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, phx_capbuf_curl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    double v = -1;
    if (curl_easy_perform(c) == CURLE_OK && b.p) {
        static const char name[] = "\nphx_redis_commands_total ";
        char *l = strstr(b.p, name);
        if (l)
            v = strtod(l + sizeof(name) - 1, NULL);
    }
    curl_easy_cleanup(c);
    free(b.p);
    return v;
}

static void phx_probe_procs(phx_probe_snap *s, const char *var_dir)
{
    char run[512];
    snprintf(run, sizeof(run), "%s/run", var_dir);
    DIR *d = opendir(run);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && s->nprocs < PHX_PROBE_MAX_PROCS) {
        size_t len = strlen(e->d_name);
        if (len < 5 || len - 4 >= sizeof(s->procs[0].name) ||
            strcmp(e->d_name + len - 4, ".pid") != 0)
            continue;
        phx_proc_snap *p = &s->procs[s->nprocs];
        memset(p, 0, sizeof(*p));
        memcpy(p->name, e->d_name, len - 4);
        p->pid = phx_probe_read_int(var_dir, p->name, "pid");
        if (p->pid <= 0 || (p->cpu_s = phx_probe_cpu(p->pid)) < 0)
            continue; /* stale pid file: the process is gone */
        phx_probe_mem(p->pid, &p->hwm_kb, &p->rss_kb);
        p->admin_port = phx_probe_read_int(var_dir, p->name, "admin");
        p->redis_rt = phx_probe_round_trips(p->admin_port);
        s->nprocs++;
    }
    closedir(d);
}

static json_t *phx_probe_redis(phx_redis *r)
{
    phx_err err;
    redisReply *rep = phx_redis_cmd(r, &err, "INFO commandstats");
    if (!rep)
        return NULL;
    json_t *o = json_object();
    /* Lines: cmdstat_hset:calls=12,usec=... ; subcommands read cmdstat_config|get. */
    for (char *l = rep->str; l && *l;) {
        char *nl = strchr(l, '\n');
        if (strncmp(l, "cmdstat_", 8) == 0) {
            char *colon = strchr(l, ':');
            if (colon && (!nl || colon < nl) && strncmp(colon + 1, "calls=", 6) == 0) {
                char name[64];
                snprintf(name, sizeof(name), "%.*s", (int)(colon - l - 8), l + 8);
                if (strcmp(name, "info") != 0)
                    json_object_set_new(o, name, json_integer(strtoll(colon + 7, NULL, 10)));
            }
        }
        l = nl ? nl + 1 : NULL;
    }
    freeReplyObject(rep);
    return o;
}

static json_t *phx_probe_kafka(rd_kafka_t *rk)
{
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 1, NULL, &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    json_t *o = json_object();
    for (int t = 0; t < md->topic_cnt; t++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[t];
        if (mt->topic[0] == '_')
            continue; /* __consumer_offsets and friends: bookkeeping, not messages */
        int64_t total = 0;
        for (int p = 0; p < mt->partition_cnt; p++) {
            int64_t lo = 0, hi = 0;
            if (rd_kafka_query_watermark_offsets(rk, mt->topic, mt->partitions[p].id, &lo, &hi,
                                                 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
                total += hi;
        }
        json_object_set_new(o, mt->topic, json_integer(total));
    }
    rd_kafka_metadata_destroy(md);
    return o;
}

void phx_probe_take(phx_probe_snap *s, const char *var_dir, phx_redis *r, rd_kafka_t *rk)
{
    memset(s, 0, sizeof(*s));
    if (var_dir)
        phx_probe_procs(s, var_dir);
    if (r)
        s->redis_cmds = phx_probe_redis(r);
    if (rk)
        s->kafka_msgs = phx_probe_kafka(rk);
}

void phx_probe_reset_peaks(const phx_probe_snap *s)
{
    for (int i = 0; i < s->nprocs; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/clear_refs", s->procs[i].pid);
        FILE *f = fopen(path, "w");
        if (!f)
            continue; /* not ours to reset: the peak then covers the process's whole life */
        fputs("5", f);
        fclose(f);
    }
}

void phx_probe_free(phx_probe_snap *s)
{
    json_decref(s->redis_cmds);
    json_decref(s->kafka_msgs);
    memset(s, 0, sizeof(*s));
}

/* after - before for every key of after, and the total. */
static json_t *phx_probe_delta(const json_t *before, const json_t *after, long per, long *total)
{
    json_t *by = json_object();
    const char *k;
    json_t *v;
    *total = 0;
    json_object_foreach((json_t *)after, k, v)
    {
        long d = (long)(json_integer_value(v) - json_integer_value(json_object_get(before, k)));
        if (d <= 0)
            continue;
        *total += d;
        json_object_set_new(by, k, json_real(per ? (double)d / (double)per : 0));
    }
    return by;
}

json_t *phx_probe_diff(const phx_probe_snap *before, const phx_probe_snap *after, long jobs,
                       long steps)
{
    json_t *out = json_object(), *procs = json_object();
    double rt_total = 0;
    int rt_seen = 0;
    for (int i = 0; i < after->nprocs; i++) {
        const phx_proc_snap *a = &after->procs[i], *b = NULL;
        for (int j = 0; j < before->nprocs; j++)
            if (before->procs[j].pid == a->pid)
                b = &before->procs[j];
        if (!b)
            continue; /* started during the run: no baseline */
        json_t *p = json_object();
        double cpu = a->cpu_s - b->cpu_s;
        json_object_set_new(p, "pid", json_integer(a->pid));
        json_object_set_new(p, "cpu_s", json_real(cpu));
        json_object_set_new(p, "cpu_s_per_1k_jobs",
                            json_real(jobs ? cpu * 1000.0 / (double)jobs : 0));
        json_object_set_new(p, "peak_rss_kb", json_integer(a->hwm_kb));
        json_object_set_new(p, "rss_kb", json_integer(a->rss_kb));
        if (a->redis_rt >= 0 && b->redis_rt >= 0) {
            double rt = a->redis_rt - b->redis_rt;
            json_object_set_new(p, "redis_round_trips", json_real(rt));
            rt_total += rt;
            rt_seen = 1;
        }
        json_object_set_new(procs, a->name, p);
    }
    json_object_set_new(out, "procs", procs);
    if (rt_seen) {
        json_object_set_new(out, "redis_round_trips_per_job",
                            json_real(jobs ? rt_total / (double)jobs : 0));
        json_object_set_new(out, "redis_round_trips_per_step",
                            json_real(steps ? rt_total / (double)steps : 0));
    }
    long total;
    if (before->redis_cmds && after->redis_cmds) {
        json_t *by = phx_probe_delta(before->redis_cmds, after->redis_cmds, jobs, &total);
        json_object_set_new(out, "redis_cmds_per_job_by_cmd", by);
        json_object_set_new(out, "redis_cmds_per_job",
                            json_real(jobs ? (double)total / (double)jobs : 0));
    }
    if (before->kafka_msgs && after->kafka_msgs) {
        json_t *by = phx_probe_delta(before->kafka_msgs, after->kafka_msgs, jobs, &total);
        json_object_set_new(out, "kafka_msgs_per_job_by_topic", by);
        json_object_set_new(out, "kafka_msgs_per_job",
                            json_real(jobs ? (double)total / (double)jobs : 0));
    }
    return out;
}
