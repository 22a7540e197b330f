/* bench_exec.c -- per-run cost of the phx-exec sandbox, side by side with bubblewrap.
 *
 * For each program (/bin/true, python3 -c pass) it times, interleaved round-robin so drift in
 * the machine's load hits every variant alike:
 *   bare     fork + execve + waitpid, no isolation (the baseline)
 *   phx      phx_exec_run(): every namespace, pivot_root, seccomp, cgroup, rlimits, output
 *            pipes, the full setup handshake -- exactly what an exec.run step pays
 *   bwrap    bwrap --unshare-all --die-with-parent with equivalent read-only binds, run as a
 *            child like bare
 * and prints median and p99 of each and the overhead (variant median - bare median). Then the
 * throughput of the sandbox with one thread per core running a trivial program.
 *
 * /bin/true runs through the sandbox by configuring it as the "sh" interpreter (it ignores
 * the "-c CODE" arguments): the same code path as any exec.run, without a shell's startup.
 *
 * Usage: bench_exec RUNS THROUGHPUT_SECONDS (needs root, like phx-exec). */
#include "../../../workers/exec/exec.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

/* fork + execve + wait, stdout/stderr to /dev/null like a discarded capture. */
static double run_child(char *const argv[])
{
    double t0 = now_us();
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s failed (status %d)\n", argv[0], st);
        exit(1);
    }
    return now_us() - t0;
}

static phx_exec_cfg cfg_true, cfg_py;
static phx_exec_sandbox sb_true, sb_py;

static double run_phx(phx_exec_sandbox *sb, phx_exec_cg *cg, enum phx_exec_lang lang)
{
    phx_exec_req req;
    memset(&req, 0, sizeof(req));
    req.lang = lang;
    req.code = "pass";
    req.code_len = 4;
    req.lim = sb->cfg->def;
    phx_exec_result res;
    phx_err err;
    double t0 = now_us();
    if (phx_exec_run(sb, cg, &req, &res, &err) < 0) {
        fprintf(stderr, "phx run failed: %s\n", err.message);
        exit(1);
    }
    double dt = now_us() - t0;
    if (res.exit_code != 0) {
        fprintf(stderr, "phx run exit %d: %s\n", res.exit_code, res.err);
        exit(1);
    }
    phx_exec_result_free(&res);
    return dt;
}

#define BWRAP                                                                                      \
    "/usr/bin/bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--clearenv",         \
        "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib",       \
        "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin", "--ro-bind", \
        "/etc/ld.so.cache", "/etc/ld.so.cache", "--proc", "/proc", "--dev", "/dev", "--tmpfs",     \
        "/tmp", "--tmpfs", "/work", "--chdir", "/work"

static atomic_long tp_runs;
static atomic_int tp_stop;

static void *tp_thread(void *arg)
{
    (void)arg;
    phx_err err;
    phx_exec_cg *cg = phx_exec_cg_new(&err);
    while (!atomic_load(&tp_stop)) {
        run_phx(&sb_true, cg, PHX_EXEC_LANG_SH);
        atomic_fetch_add(&tp_runs, 1);
    }
    phx_exec_cg_free(cg);
    return NULL;
}

static void init_sb(phx_exec_cfg *cfg, phx_exec_sandbox *sb, const char *sh)
{
    *cfg = (phx_exec_cfg){
        .def = {10000, 10000, 256, 64, 256, 64},
        .max = {10000, 10000, 256, 64, 256, 64},
        .python = "/usr/bin/python3",
        .sh = sh,
        .ro_binds = "/usr,/bin,/lib,/lib64,/sbin,/etc/ld.so.cache",
        .cgroup_mode = "auto",
        .host_uid = 99999,
        .host_gid = 99999,
        .max_code_kb = 64,
    };
    phx_err err;
    if (phx_exec_sandbox_init(sb, cfg, &err) < 0) {
        fprintf(stderr, "sandbox: %s\n", err.message);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 300;
    int tp_secs = argc > 2 ? atoi(argv[2]) : 10;
    init_sb(&cfg_true, &sb_true, "/bin/true");
    init_sb(&cfg_py, &sb_py, "/bin/sh");
    phx_err err;
    phx_exec_cg *cg = phx_exec_cg_new(&err);
    char *bare_true[] = {"/bin/true", NULL};
    char *bare_py[] = {"/usr/bin/python3", "-c", "pass", NULL};
    char *bw_true[] = {BWRAP, "/bin/true", NULL};
    char *bw_py[] = {BWRAP, "/usr/bin/python3", "-c", "pass", NULL};
    enum { BT, PT, WT, BP, PP, WP, NV };
    static const char *const names[NV] = {"bare", "phx", "bwrap", "bare", "phx", "bwrap"};
    double *t[NV];
    for (int v = 0; v < NV; v++)
        t[v] = calloc((size_t)n, sizeof(double));
    for (int w = 0; w < 10; w++) /* warm caches */
        run_phx(&sb_py, cg, PHX_EXEC_LANG_PYTHON), run_child(bw_py), run_child(bare_py);
    for (int i = 0; i < n; i++) {
        t[BT][i] = run_child(bare_true);
        t[PT][i] = run_phx(&sb_true, cg, PHX_EXEC_LANG_SH);
        t[WT][i] = run_child(bw_true);
        t[BP][i] = run_child(bare_py);
        t[PP][i] = run_phx(&sb_py, cg, PHX_EXEC_LANG_PYTHON);
        t[WP][i] = run_child(bw_py);
    }
    printf("runs per variant: %d (interleaved); cgroup: %s\n\n", n, phx_exec_cg_mode());
    printf("| program | variant | median ms | p99 ms | overhead vs bare (median) ms |\n");
    printf("|---|---|---:|---:|---:|\n");
    for (int v = 0; v < NV; v++) {
        int base = v < 3 ? BT : BP;
        double med = pct(t[v], n, 0.5), p99 = pct(t[v], n, 0.99);
        double bmed = pct(t[base], n, 0.5);
        printf("| %s | %s | %.2f | %.2f | %s%.2f |\n", v < 3 ? "/bin/true" : "python3 -c pass",
               names[v], med / 1000, p99 / 1000, v == base ? "" : "+",
               v == base ? 0.0 : (med - bmed) / 1000);
    }
    /* Throughput: one thread per core, each with its own cgroup slot, like the pool. */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    pthread_t th[64];
    double t0 = now_us();
    for (long i = 0; i < ncpu && i < 64; i++)
        pthread_create(&th[i], NULL, tp_thread, NULL);
    sleep((unsigned)tp_secs);
    atomic_store(&tp_stop, 1);
    for (long i = 0; i < ncpu && i < 64; i++)
        pthread_join(th[i], NULL);
    double secs = (now_us() - t0) / 1e6;
    printf("\nthroughput: %.0f sandboxed runs/s of /bin/true with %ld threads on %ld cores "
           "(%ld runs in %.1f s)\n",
           (double)atomic_load(&tp_runs) / secs, ncpu, ncpu, atomic_load(&tp_runs), secs);
    for (int v = 0; v < NV; v++)
        free(t[v]);
    phx_exec_cg_free(cg);
    phx_exec_sandbox_free(&sb_py);
    phx_exec_sandbox_free(&sb_true);
    return 0;
}
