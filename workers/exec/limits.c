/* limits.c -- resource isolation: rlimits and cgroup limits.
 *
 * Threat: denial of service against the host and the other runs: fork bombs, memory bombs,
 * CPU spinning, filling the disk, huge files, fd exhaustion, core dumps. Defences:
 *   - cgroup (v2 preferred, v1 accepted): memory limit (the OOM killer acts inside the run's
 *     cgroup only, and the supervisor reports oom_killed from the cgroup's oom_kill counter),
 *     pids limit (fork bombs stop at it), CPU bandwidth capped to one core, CPU usage of all
 *     the run's processes read for cpu_ms enforcement and reporting;
 *   - rlimits in the child, a second line that also works without cgroups: CPU (seconds,
 *     per process), AS, NPROC, FSIZE (the disk limit), NOFILE, CORE=0;
 *   - disk: the tmpfs holding /work and /tmp is size-capped (mount.c).
 *
 * Cgroup layout. At start the process makes one parent cgroup, phx-exec-PID, under its own
 * cgroup in each hierarchy it uses; each worker thread makes one child, slotN, once, and
 * reuses it for all its runs (creating and removing a memory cgroup per run is slow, and
 * removal is asynchronous in the kernel). A slot is empty between runs: the run's pid
 * namespace is gone when its init has been reaped. The supervisor needs write access to its
 * own cgroup subtree (root, or a delegated subtree: systemd Delegate=yes).
 *
 * cgroup v2 has a "no internal processes" rule: controllers can be enabled for children only
 * in a cgroup without processes, so in v2 the supervisor first moves itself into
 * phx-exec-PID/supervisor. */
#include "exec.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

enum { PHX_CG_OFF, PHX_CG_V1, PHX_CG_V2 };
/* v1 hierarchies used, in this order; in v2 one directory holds them all. */
static const char *const phx_cg_v1_ctrls[] = {"memory", "pids", "cpu", "cpuacct"};
#define PHX_CG_NV1 4

static struct {
    int mode;
    char base[PHX_CG_NV1][PATH_MAX]; /* the process's parent cgroup(s) */
    int nbase;
    atomic_int next_slot;
} phx_cg;

struct phx_exec_cg {
    char dir[PHX_CG_NV1][PATH_MAX];
    int n;
    long long cpu_base_us;
    long long oom_base;
};

static int phx_cg_write(const char *dir, const char *file, const char *text)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* The number after "key " in a flat-keyed cgroup file, or the file's first number when key is
 * NULL; -1 when absent. */
static long long phx_cg_read(const char *dir, const char *file, const char *key)
{
    char path[PATH_MAX + 64], buf[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    if (!key)
        return strtoll(buf, NULL, 10);
    size_t klen = strlen(key);
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : 0)
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
            return strtoll(line + klen + 1, NULL, 10);
    return -1;
}

/* Mount point of the v1 hierarchy holding ctrl (or of cgroup2 when ctrl is NULL). */
static int phx_cg_mountpoint(const char *ctrl, char *out, size_t outlen)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -1;
    char line[1024];
    int found = -1;
    while (found < 0 && fgets(line, sizeof(line), f)) {
        char *sep = strstr(line, " - ");
        if (!sep)
            continue;
        char mnt[512], fstype[64], src[256], opts[512];
        if (sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1 ||
            sscanf(sep + 3, "%63s %255s %511s", fstype, src, opts) != 3)
            continue;
        if (!ctrl) {
            if (strcmp(fstype, "cgroup2") == 0)
                found = 0;
        } else if (strcmp(fstype, "cgroup") == 0) {
            for (char *tok = strtok(opts, ","); tok; tok = strtok(NULL, ","))
                if (strcmp(tok, ctrl) == 0)
                    found = 0;
        }
        if (found == 0)
            snprintf(out, outlen, "%s", mnt);
    }
    fclose(f);
    return found;
}

/* The process's own cgroup path in the hierarchy holding ctrl ("" = cgroup2). */
static int phx_cg_own_path(const char *ctrl, char *out, size_t outlen)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return -1;
    char line[1024];
    int found = -1;
    while (found < 0 && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = 0;
        char *ctrls = c1 + 1;
        if (!*ctrl) {
            if (!*ctrls && strcmp(line, "0") == 0)
                found = 0;
        } else {
            for (char *tok = strtok(ctrls, ","); tok; tok = strtok(NULL, ","))
                if (strcmp(tok, ctrl) == 0)
                    found = 0;
        }
        if (found == 0)
            snprintf(out, outlen, "%s", strcmp(c2 + 1, "/") == 0 ? "" : c2 + 1);
    }
    fclose(f);
    return found;
}

static int phx_cg_try_v2(void)
{
    char mnt[256], own[512], dir[PATH_MAX], ctrls[512];
    if (phx_cg_mountpoint(NULL, mnt, sizeof(mnt)) < 0 || phx_cg_own_path("", own, sizeof(own)) < 0)
        return -1;
    snprintf(dir, sizeof(dir), "%s%s", mnt, own);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    int ok = fgets(ctrls, sizeof(ctrls), f) && strstr(ctrls, "memory") && strstr(ctrls, "pids");
    fclose(f);
    if (!ok)
        return -1;
    /* No internal processes: move ourselves to a leaf, then delegate the controllers. */
    char base[PATH_MAX], sup[PATH_MAX + 16], pid[32];
    snprintf(base, sizeof(base), "%s/phx-exec-%d", dir, (int)getpid());
    snprintf(sup, sizeof(sup), "%s/supervisor", base);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    if ((mkdir(base, 0755) < 0 && errno != EEXIST) || (mkdir(sup, 0755) < 0 && errno != EEXIST) ||
        phx_cg_write(sup, "cgroup.procs", pid) < 0 ||
        phx_cg_write(dir, "cgroup.subtree_control",
                     strstr(ctrls, "cpu ") || strstr(ctrls, "cpu\n") ? "+memory +pids +cpu"
                                                                     : "+memory +pids") < 0 ||
        phx_cg_write(base, "cgroup.subtree_control",
                     strstr(ctrls, "cpu ") || strstr(ctrls, "cpu\n") ? "+memory +pids +cpu"
                                                                     : "+memory +pids") < 0) {
        phx_log_warn("cgroup v2 at %s not usable: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(phx_cg.base[0], sizeof(phx_cg.base[0]), "%s", base);
    phx_cg.nbase = 1;
    phx_cg.mode = PHX_CG_V2;
    return 0;
}

static int phx_cg_try_v1(void)
{
    for (int i = 0; i < PHX_CG_NV1; i++) {
        char mnt[256], own[512];
        if (phx_cg_mountpoint(phx_cg_v1_ctrls[i], mnt, sizeof(mnt)) < 0 ||
            phx_cg_own_path(phx_cg_v1_ctrls[i], own, sizeof(own)) < 0) {
            /* memory and pids are required; cpu/cpuacct are nice to have */
            if (i < 2)
                return -1;
            phx_cg.base[i][0] = 0;
            continue;
        }
        snprintf(phx_cg.base[i], sizeof(phx_cg.base[i]), "%s%s/phx-exec-%d", mnt, own,
                 (int)getpid());
        if (mkdir(phx_cg.base[i], 0755) < 0 && errno != EEXIST) {
            phx_log_warn("cgroup v1 %s: mkdir %s: %s", phx_cg_v1_ctrls[i], phx_cg.base[i],
                         strerror(errno));
            for (int j = 0; j < i; j++)
                if (phx_cg.base[j][0])
                    rmdir(phx_cg.base[j]);
            return -1;
        }
    }
    phx_cg.nbase = PHX_CG_NV1;
    phx_cg.mode = PHX_CG_V1;
    return 0;
}

int phx_exec_cg_init(const char *mode, phx_err *err)
{
    phx_cg.mode = PHX_CG_OFF;
    if (strcmp(mode, "off") == 0)
        return 0;
    int want_v2 = strcmp(mode, "v2") == 0, want_v1 = strcmp(mode, "v1") == 0;
    if (!want_v2 && !want_v1 && strcmp(mode, "auto") != 0)
        return phx_err_set(err, "config", 0, "PHX_EXEC_CGROUP must be auto, v2, v1 or off");
    if (!want_v1 && phx_cg_try_v2() == 0)
        return 0;
    if (!want_v2 && phx_cg_try_v1() == 0)
        return 0;
    if (want_v1 || want_v2)
        return phx_err_set(err, "config", 0, "PHX_EXEC_CGROUP=%s: not available here", mode);
    phx_log_warn("no usable cgroup (v2 with memory+pids, or v1 memory+pids): runs are limited "
                 "by rlimits only");
    return 0;
}

const char *phx_exec_cg_mode(void)
{
    return phx_cg.mode == PHX_CG_V2 ? "v2" : phx_cg.mode == PHX_CG_V1 ? "v1" : "off";
}

void phx_exec_cg_shutdown(void)
{
    for (int i = 0; i < phx_cg.nbase; i++) {
        if (!phx_cg.base[i][0])
            continue;
        if (phx_cg.mode == PHX_CG_V2) {
            /* move back to the original cgroup so ours can be removed */
            char sup[PATH_MAX + 16], parent[PATH_MAX], pid[32];
            snprintf(sup, sizeof(sup), "%s/supervisor", phx_cg.base[i]);
            snprintf(parent, sizeof(parent), "%s", phx_cg.base[i]);
            *strrchr(parent, '/') = 0;
            snprintf(pid, sizeof(pid), "%d", (int)getpid());
            phx_cg_write(parent, "cgroup.procs", pid);
            rmdir(sup);
        }
        rmdir(phx_cg.base[i]);
    }
    phx_cg.mode = PHX_CG_OFF;
    phx_cg.nbase = 0;
}

phx_exec_cg *phx_exec_cg_new(phx_err *err)
{
    phx_exec_cg *cg = calloc(1, sizeof(*cg));
    if (!cg) {
        phx_err_set(err, "sandbox_unavailable", 1, "out of memory");
        return NULL;
    }
    if (phx_cg.mode == PHX_CG_OFF)
        return cg;
    int slot = atomic_fetch_add(&phx_cg.next_slot, 1);
    for (int i = 0; i < phx_cg.nbase; i++) {
        if (!phx_cg.base[i][0])
            continue;
        snprintf(cg->dir[i], sizeof(cg->dir[i]), "%s/slot%d", phx_cg.base[i], slot);
        if (mkdir(cg->dir[i], 0755) < 0 && errno != EEXIST) {
            phx_err_set(err, "sandbox_unavailable", 1, "mkdir %s: %s", cg->dir[i], strerror(errno));
            goto err;
        }
        cg->n = i + 1;
    }
    /* One core at most per run, so one run cannot starve the other worker threads. */
    if (phx_cg.mode == PHX_CG_V2) {
        phx_cg_write(cg->dir[0], "cpu.max", "100000 100000");
        phx_cg_write(cg->dir[0], "memory.swap.max", "0");
    } else if (cg->dir[2][0]) {
        phx_cg_write(cg->dir[2], "cpu.cfs_period_us", "100000");
        phx_cg_write(cg->dir[2], "cpu.cfs_quota_us", "100000");
    }
    return cg;
err:
    phx_exec_cg_free(cg);
    return NULL;
}

void phx_exec_cg_free(phx_exec_cg *cg)
{
    if (!cg)
        return;
    for (int i = 0; i < cg->n; i++)
        if (cg->dir[i][0])
            rmdir(cg->dir[i]);
    free(cg);
}

static long long phx_cg_cpu_us(phx_exec_cg *cg)
{
    if (phx_cg.mode == PHX_CG_V2)
        return phx_cg_read(cg->dir[0], "cpu.stat", "usage_usec");
    if (cg->dir[3][0]) {
        long long ns = phx_cg_read(cg->dir[3], "cpuacct.usage", NULL);
        return ns < 0 ? -1 : ns / 1000;
    }
    return -1;
}

static long long phx_cg_oom_count(phx_exec_cg *cg)
{
    if (phx_cg.mode == PHX_CG_V2)
        return phx_cg_read(cg->dir[0], "memory.events", "oom_kill");
    return phx_cg_read(cg->dir[0], "memory.oom_control", "oom_kill");
}

int phx_exec_cg_prepare(phx_exec_cg *cg, const phx_exec_limits *lim, phx_err *err)
{
    if (!cg || phx_cg.mode == PHX_CG_OFF)
        return 0;
    char mem[32], pids[32];
    snprintf(mem, sizeof(mem), "%lld", (long long)lim->memory_mb * 1024 * 1024);
    snprintf(pids, sizeof(pids), "%ld", lim->pids);
    int rc;
    if (phx_cg.mode == PHX_CG_V2)
        rc = phx_cg_write(cg->dir[0], "memory.max", mem) < 0 ||
             phx_cg_write(cg->dir[0], "pids.max", pids) < 0;
    else
        rc = phx_cg_write(cg->dir[0], "memory.limit_in_bytes", mem) < 0 ||
             phx_cg_write(cg->dir[1], "pids.max", pids) < 0;
    if (rc)
        return phx_err_set(err, "sandbox_unavailable", 1, "cgroup limits: %s", strerror(errno));
    cg->cpu_base_us = phx_cg_cpu_us(cg);
    cg->oom_base = phx_cg_oom_count(cg);
    return 0;
}

int phx_exec_cg_attach(phx_exec_cg *cg, pid_t pid, phx_err *err)
{
    if (!cg || phx_cg.mode == PHX_CG_OFF)
        return 0;
    char p[32];
    snprintf(p, sizeof(p), "%d", (int)pid);
    for (int i = 0; i < cg->n; i++)
        if (cg->dir[i][0] && phx_cg_write(cg->dir[i], "cgroup.procs", p) < 0)
            return phx_err_set(err, "sandbox_unavailable", 1, "attach to %s: %s", cg->dir[i],
                               strerror(errno));
    return 0;
}

long phx_exec_cg_cpu_ms(phx_exec_cg *cg)
{
    if (!cg || phx_cg.mode == PHX_CG_OFF || cg->cpu_base_us < 0)
        return -1;
    long long now = phx_cg_cpu_us(cg);
    return now < 0 ? -1 : (long)((now - cg->cpu_base_us) / 1000);
}

int phx_exec_cg_oom(phx_exec_cg *cg)
{
    if (!cg || phx_cg.mode == PHX_CG_OFF || cg->oom_base < 0)
        return 0;
    return phx_cg_oom_count(cg) > cg->oom_base;
}

/* ---- rlimits (in the child: no allocation) ----------------------------------------------- */

static int phx_exec_rlim(int res, rlim_t v)
{
    struct rlimit rl = {v, v};
    return setrlimit(res, &rl);
}

int phx_exec_rlimits(const phx_exec_limits *lim, int have_cgroup, const char **stage)
{
    /* RLIMIT_CPU counts whole seconds per process: a backstop for cpu_ms, which the
     * supervisor enforces across all processes from the cgroup's usage. */
    rlim_t cpu_s = (rlim_t)(lim->cpu_ms + 999) / 1000 + 1;
    /* With a cgroup the memory limit is the cgroup's (and the OOM kill is reported); address
     * space is only a backstop, generous because interpreters reserve far more than they use.
     * Without one, RLIMIT_AS is the only limit. */
    rlim_t mem = (rlim_t)lim->memory_mb * 1024 * 1024;
    rlim_t as = have_cgroup ? mem * 4 + ((rlim_t)256 << 20) : mem;
    *stage = "setrlimit";
    if (phx_exec_rlim(RLIMIT_CPU, cpu_s) < 0 || phx_exec_rlim(RLIMIT_AS, as) < 0 ||
        phx_exec_rlim(RLIMIT_NPROC, (rlim_t)lim->pids) < 0 ||
        phx_exec_rlim(RLIMIT_FSIZE, (rlim_t)lim->disk_mb * 1024 * 1024) < 0 ||
        phx_exec_rlim(RLIMIT_NOFILE, 256) < 0 || phx_exec_rlim(RLIMIT_CORE, 0) < 0 ||
        phx_exec_rlim(RLIMIT_MEMLOCK, 64 * 1024) < 0 || phx_exec_rlim(RLIMIT_MSGQUEUE, 0) < 0)
        return -1;
    return 0;
}
