/* main.c -- phx-exec: the execution pool (exec.run: untrusted code in a sandbox).
 *
 * Wires the sandbox (built once: seccomp program, empty network namespace, cgroup parent) to
 * the pool loop; each consumer thread gets its own reusable cgroup slot. Before consuming
 * anything the process runs one trivial program through the full sandbox: a host without user
 * namespaces or seccomp fails at start with a clear message, instead of failing every job.
 *
 * Privileges: see docs/security.md ("Running phx-exec with least privilege"). In short: root
 * in the host user namespace, or the capabilities CAP_SYS_ADMIN (namespaces, mounts, setns),
 * CAP_SETUID/CAP_SETGID (writing the sandbox's id maps), CAP_SYS_CHROOT (pivot_root),
 * CAP_KILL (signalling the sandbox uid), CAP_CHOWN (the work dir) and write access to its
 * cgroup subtree. */
#include "config.h"
#include "exec.h"
#include "redis.h"
#include "jobstore.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct phx_exec_main_cfg {
    phx_common common;
    phx_exec_limits def, max;
    char *python, *sh, *ro_binds, *cgroup;
    long host_uid, host_gid, max_code_kb;
    phx_exec_cfg exec;
    phx_exec_sandbox sb;
} phx_exec_main_cfg;

#define CFG phx_exec_main_cfg
#define PHX_EXEC_LIMIT_OPT(NAME, FIELD, DEF, MAX, LO, HI, WHAT)                                    \
    {"PHX_EXEC_" NAME,                                                                             \
     PHX_OPT_INT,                                                                                  \
     DEF,                                                                                          \
     LO,                                                                                           \
     HI,                                                                                           \
     offsetof(CFG, def.FIELD),                                                                     \
     "exec.run default " WHAT " (a request's limits." #FIELD                                       \
     " when it sets none; capped by the maximum)."},                                               \
    {                                                                                              \
        "PHX_EXEC_MAX_" NAME, PHX_OPT_INT, MAX, LO, HI, offsetof(CFG, max.FIELD),                  \
            "exec.run cap on limits." #FIELD " (" WHAT "); larger requests are capped."            \
    }
static const phx_opt phx_exec_opts[] = {
    PHX_COMMON_OPTS(CFG),
    PHX_EXEC_LIMIT_OPT("WALL_MS", wall_ms, "10000", "60000", 10, 3600000,
                       "wall-clock deadline in ms; the whole run is killed after it"),
    PHX_EXEC_LIMIT_OPT("CPU_MS", cpu_ms, "10000", "60000", 10, 3600000,
                       "CPU time in ms of all the run's processes"),
    PHX_EXEC_LIMIT_OPT("MEMORY_MB", memory_mb, "256", "2048", 16, 65536,
                       "memory in MiB (cgroup; RLIMIT_AS without cgroups)"),
    PHX_EXEC_LIMIT_OPT("PIDS", pids, "64", "512", 4, 32768, "number of processes/threads"),
    PHX_EXEC_LIMIT_OPT("OUTPUT_KB", output_kb, "256", "4096", 1, 65536,
                       "KiB kept of stdout and of stderr each; beyond it: truncated"),
    PHX_EXEC_LIMIT_OPT("DISK_MB", disk_mb, "64", "1024", 1, 65536,
                       "MiB of the tmpfs holding /work and /tmp"),
    {"PHX_EXEC_PYTHON", PHX_OPT_STR, "/usr/bin/python3", 0, 0, offsetof(CFG, python),
     "Interpreter for lang \"python\" (must be under PHX_EXEC_RO_BINDS)."},
    {"PHX_EXEC_SH", PHX_OPT_STR, "/bin/sh", 0, 0, offsetof(CFG, sh),
     "Interpreter for lang \"sh\" (must be under PHX_EXEC_RO_BINDS)."},
    {"PHX_EXEC_RO_BINDS", PHX_OPT_STR, "/usr,/bin,/lib,/lib64,/sbin,/etc/ld.so.cache", 0, 0,
     offsetof(CFG, ro_binds),
     "Comma-separated host paths bound read-only (nosuid, nodev) into the sandbox; a path "
     "that is a symlink is recreated as that symlink. Nothing else of the host is visible."},
    {"PHX_EXEC_CGROUP", PHX_OPT_STR, "auto", 0, 0, offsetof(CFG, cgroup),
     "Cgroup limits: auto (v2 if its memory+pids controllers are delegated, else v1, else "
     "none with a warning), v2, v1 or off (rlimits only)."},
    {"PHX_EXEC_HOST_UID", PHX_OPT_INT, "99999", 1, 4294967294L, offsetof(CFG, host_uid),
     "Host uid the sandbox's uid 1000 maps to: one that owns no files and runs nothing else "
     "(never 0)."},
    {"PHX_EXEC_HOST_GID", PHX_OPT_INT, "99999", 1, 4294967294L, offsetof(CFG, host_gid),
     "Host gid the sandbox's gid 1000 maps to (never 0)."},
    {"PHX_EXEC_MAX_CODE_KB", PHX_OPT_INT, "1024", 1, 65536, offsetof(CFG, max_code_kb),
     "exec.run cap in KiB on stdin and on each file (code itself is at most 128 KiB)."},
};
#define PHX_EXEC_NOPTS (sizeof(phx_exec_opts) / sizeof(phx_exec_opts[0]))

/* A worker thread's own: its cgroup, and a Redis connection to notice a cancelled job. */
typedef struct phx_exec_thread {
    phx_exec_cg *cg;
    phx_redis *r;
} phx_exec_thread;

static void phx_exec_thread_free(void *ts)
{
    phx_exec_thread *t = ts;
    phx_exec_cg_free(t->cg);
    phx_redis_free(t->r);
    free(t);
}

static void *phx_exec_thread_init(void *app, phx_err *err)
{
    phx_exec_main_cfg *cfg = app;
    phx_exec_thread *t = calloc(1, sizeof(*t));
    if (!t || !(t->cg = phx_exec_cg_new(err)) ||
        !(t->r = phx_redis_from_common(&cfg->common, err))) {
        if (t)
            phx_exec_thread_free(t);
        return NULL;
    }
    return t;
}

/* Was the running step's job cancelled (DELETE /v1/jobs/ID)? Then the run is killed rather
 * than left to burn its wall time for nobody. A Redis error is a "no": the step's own limits
 * still end it. */
static int phx_exec_job_cancelled(void *arg)
{
    phx_exec_thread *t = arg;
    const char *job = json_string_value(json_object_get(phx_pool_current_task(), "job_id"));
    if (!job)
        return 0;
    char key[192];
    phx_key_job(key, sizeof(key), job);
    phx_err err;
    redisReply *rep = phx_redis_cmd(t->r, &err, "HGET %s state", key);
    int c = rep && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "cancelled") == 0;
    if (rep)
        freeReplyObject(rep);
    return c;
}

static json_t *phx_exec_run_step(void *app, void *ts, const json_t *input, phx_err *err)
{
    phx_exec_main_cfg *cfg = app;
    phx_span sp;
    phx_span_call(&sp, "sandbox run", PHX_SPAN_INTERNAL);
    phx_exec_thread *t = ts;
    json_t *out = phx_exec_step(&cfg->sb, t->cg, input, phx_exec_job_cancelled, t, err);
    /* Outcomes, not exit codes, as the label: a bounded set an alert can name. */
    const char *outcome = !out                                               ? "error"
                          : json_is_true(json_object_get(out, "cancelled"))  ? "cancelled"
                          : json_is_true(json_object_get(out, "timed_out"))  ? "timeout"
                          : json_is_true(json_object_get(out, "oom_killed")) ? "oom_killed"
                          : json_integer_value(json_object_get(out, "exit_code")) == 0
                              ? "ok"
                              : "nonzero_exit";
    char labels[64];
    snprintf(labels, sizeof(labels), "outcome=\"%s\"", outcome);
    phx_metric_add(phx_counter("phx_exec_sandbox_runs_total",
                               "Sandbox runs by outcome: ok, nonzero_exit, timeout, oom_killed, "
                               "cancelled, error (the sandbox could not run the code).",
                               labels),
                   1);
    phx_span_set(&sp, "phx.exec.outcome", "%s", outcome);
    if (out)
        phx_span_set(&sp, "phx.exec.exit_code", "%lld",
                     (long long)json_integer_value(json_object_get(out, "exit_code")));
    else
        phx_span_fail(&sp, "%s", err->message);
    phx_span_end(&sp);
    return out;
}

static const phx_step_kind phx_exec_kinds[] = {
    {"exec.run", phx_exec_run_step},
};

/* One trivial run through every layer of the sandbox. */
static int phx_exec_selftest(phx_exec_main_cfg *cfg, phx_err *err)
{
    phx_exec_cg *cg = phx_exec_cg_new(err);
    if (!cg)
        return -1;
    json_t *in = json_pack("{s:s, s:s}", "lang", "sh", "code", "echo ok");
    json_t *out = phx_exec_step(&cfg->sb, cg, in, NULL, NULL, err);
    int rc = -1;
    if (out && json_integer_value(json_object_get(out, "exit_code")) == 0 &&
        strcmp(json_string_value(json_object_get(out, "stdout")), "ok\n") == 0)
        rc = 0;
    else if (out)
        phx_err_set(err, "sandbox_unavailable", 1, "self-test: unexpected output %s",
                    json_string_value(json_object_get(out, "stderr")));
    json_decref(out);
    json_decref(in);
    phx_exec_cg_free(cg);
    return rc;
}

/* One limit by name, not the struct walked as an array of longs (undefined behaviour, and a
 * field of another type added later would be silently mangled). */
static void phx_exec_cap(long *def, long max)
{
    if (*def > max)
        *def = max;
}

static int phx_exec_check(phx_exec_main_cfg *cfg, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    /* A default above its maximum is capped like a request's limit would be: lowering only
     * PHX_EXEC_MAX_* (the common case: a stricter pool) must not need the default too. */
    phx_exec_cap(&cfg->def.wall_ms, cfg->max.wall_ms);
    phx_exec_cap(&cfg->def.cpu_ms, cfg->max.cpu_ms);
    phx_exec_cap(&cfg->def.memory_mb, cfg->max.memory_mb);
    phx_exec_cap(&cfg->def.pids, cfg->max.pids);
    phx_exec_cap(&cfg->def.output_kb, cfg->max.output_kb);
    phx_exec_cap(&cfg->def.disk_mb, cfg->max.disk_mb);
    cfg->exec = (phx_exec_cfg){
        .def = cfg->def,
        .max = cfg->max,
        .python = cfg->python,
        .sh = cfg->sh,
        .ro_binds = cfg->ro_binds,
        .cgroup_mode = cfg->cgroup,
        .host_uid = cfg->host_uid,
        .host_gid = cfg->host_gid,
        .max_code_kb = cfg->max_code_kb,
    };
    return 0;
}

int main(int argc, char **argv)
{
    phx_exec_main_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    phx_config_main(argc, argv,
                    "phx-exec: the execution pool. Consumes phx.tasks.exec and runs exec.run "
                    "(python or sh code from untrusted sources) in a sandbox of user, pid, "
                    "mount, network, ipc, uts and cgroup namespaces, a seccomp allow-list and "
                    "cgroup/rlimit limits, reporting to phx.results.",
                    phx_exec_opts, PHX_EXEC_NOPTS, &cfg);
    char err[512];
    phx_err e;
    int rc = 2;
    int sandbox = 0;
    if (phx_common_apply("phx-exec", &cfg.common, err, sizeof(err)) < 0 ||
        phx_exec_check(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "phx-exec: configuration error: %s\n", err);
        goto out;
    }
    if (phx_exec_sandbox_init(&cfg.sb, &cfg.exec, &e) < 0) {
        fprintf(stderr, "phx-exec: cannot set up the sandbox: %s\n", e.message);
        rc = e.retryable ? 1 : 2;
        goto out;
    }
    sandbox = 1;
    if (phx_exec_selftest(&cfg, &e) < 0) {
        fprintf(stderr, "phx-exec: sandbox self-test failed: %s\n", e.message);
        rc = 1;
        goto out;
    }
    phx_log_info("sandbox ready (cgroup %s, uid 1000 -> host %ld)", phx_exec_cg_mode(),
                 cfg.host_uid);
    phx_pool_def def = {.proc = "phx-exec",
                        .pool = "exec",
                        .kinds = phx_exec_kinds,
                        .nkinds = 1,
                        .app = &cfg,
                        .thread_init = phx_exec_thread_init,
                        .thread_free = phx_exec_thread_free};
    phx_worker_ops ops;
    phx_pool_ops(&ops, &def);
    rc = phx_worker_main(&cfg.common, &ops);
out:
    if (sandbox)
        phx_exec_sandbox_free(&cfg.sb);
    phx_config_free(phx_exec_opts, PHX_EXEC_NOPTS, &cfg);
    return rc;
}
