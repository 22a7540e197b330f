/* exec.h -- phx-exec: run untrusted code (exec.run) in a namespace + seccomp sandbox.
 *
 * The files of this directory follow the threat model, one isolation concern each:
 *
 *   request.c     the step contract: input validation (bad input is never retried) and output
 *   user.c        identity: a new user namespace, an unprivileged uid/gid, no capabilities
 *   pid.c         processes: a new pid namespace whose init is the program; killing the run
 *                 kills the whole namespace
 *   mount.c       filesystem: a fresh tmpfs root, read-only binds, tmpfs work dir, own /proc
 *   net.c         network: one empty network namespace per process, entered per run
 *   seccomp.c     kernel attack surface: a syscall allow-list compiled once to BPF
 *   limits.c      resources: rlimits and cgroup (v2 or v1) memory/pids/cpu limits
 *   supervisor.c  one run: spawn, the setup handshake, I/O, deadline, and the result
 *
 * Sandbox setup order inside the child (see supervisor.c for why this order):
 *   new pid/mount/ipc/uts namespaces (clone) -> setns into the empty netns -> build and
 *   pivot_root into the new root (still real root in a namespace owned by the host, so the
 *   sandbox can never remount it) -> drop supplementary groups -> new cgroup namespace -> new
 *   user namespace (the supervisor writes its uid/gid maps) -> unprivileged uid/gid -> drop
 *   every capability -> rlimits -> write the job's files -> close fds, setsid, reset signals
 *   -> PR_SET_NO_NEW_PRIVS -> seccomp -> execve.
 *
 * Nothing in the child allocates memory: it is forked from a multi-threaded process (where
 * another thread may hold the allocator's lock), so everything it needs is prepared by the
 * parent in a phx_exec_plan before the clone. */
#ifndef PHX_EXEC_H
#define PHX_EXEC_H

#include <jansson.h>
#include <linux/filter.h>
#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/* The uid/gid the program has inside its user namespace. */
#define PHX_EXEC_INNER_ID 1000
#define PHX_EXEC_WORKDIR  "/work"
#define PHX_EXEC_HOSTNAME "phx-sandbox"

/* ---- limits (request.c, limits.c) -------------------------------------------------------- */

typedef struct phx_exec_limits {
    long wall_ms;   /* wall-clock deadline; the whole pid namespace is killed after it */
    long cpu_ms;    /* CPU time of all processes of the run */
    long memory_mb; /* cgroup memory limit (and the base of RLIMIT_AS) */
    long pids;      /* cgroup pids limit (and RLIMIT_NPROC) */
    long output_kb; /* per stream (stdout, stderr); beyond it the run is marked truncated */
    long disk_mb;   /* size of the tmpfs holding /work and /tmp (and RLIMIT_FSIZE) */
} phx_exec_limits;

/* ---- the request (request.c) ------------------------------------------------------------- */

enum phx_exec_lang { PHX_EXEC_LANG_PYTHON, PHX_EXEC_LANG_SH };

typedef struct phx_exec_file {
    const char *name; /* validated: [A-Za-z0-9_-][A-Za-z0-9._-]*, at most 255 bytes */
    const char *data; /* borrowed from the input JSON */
    size_t len;
} phx_exec_file;

#define PHX_EXEC_MAX_FILES 64

typedef struct phx_exec_req {
    enum phx_exec_lang lang;
    const char *code; /* borrowed from the input JSON */
    size_t code_len;
    const char *stdin_data;
    size_t stdin_len;
    phx_exec_file files[PHX_EXEC_MAX_FILES];
    int nfiles;
    phx_exec_limits lim;
    /* Asked about twice a second while the program runs (may be NULL): 1 ends the run at
     * once, as a kill of the whole namespace. The pool asks whether the job was cancelled. */
    int (*cancelled)(void *arg);
    void *cancel_arg;
} phx_exec_req;

typedef struct phx_exec_result {
    int exit_code; /* exit status, or 128 + signal when killed (shell convention) */
    int signo;     /* the signal that ended the program, 0 when it exited */
    int timed_out;
    int cancelled; /* killed because req->cancelled said so */
    int oom_killed;
    int truncated;
    long duration_ms, cpu_ms, max_rss_kb;
    char *out, *err; /* malloc'd, NUL-terminated */
    size_t out_len, err_len;
} phx_exec_result;

/* ---- configuration (main.c fills it from PHX_EXEC_* options) ----------------------------- */

typedef struct phx_exec_cfg {
    phx_exec_limits def; /* limits a request does not set */
    phx_exec_limits max; /* caps on what a request may ask for */
    const char *python;  /* interpreter paths, as seen inside the sandbox */
    const char *sh;
    const char *ro_binds;    /* comma-separated host paths bound read-only into the sandbox */
    const char *cgroup_mode; /* auto, v2, v1, off */
    long host_uid, host_gid; /* the host identity the sandbox uid/gid maps to */
    long max_code_kb;        /* code + stdin + files, each */
} phx_exec_cfg;

/* Validate an exec.run input into req (borrowing strings from input). 0, or -1 with
 * err = invalid_input, not retryable. */
int phx_exec_req_parse(const json_t *input, const phx_exec_cfg *cfg, phx_exec_req *req,
                       phx_err *err);
/* The step's output object (new reference). */
json_t *phx_exec_result_json(const phx_exec_result *res);
void phx_exec_result_free(phx_exec_result *res);

/* ---- mount.c ----------------------------------------------------------------------------- */

typedef struct phx_exec_bind {
    char path[256];   /* host path == path inside */
    char target[256]; /* when the host path is a symlink: its target, recreated inside */
    int is_dir;
} phx_exec_bind;

#define PHX_EXEC_MAX_BINDS 32

/* Parse the comma-separated list of read-only binds (absolute host paths that exist). */
int phx_exec_mount_parse(const char *list, phx_exec_bind *binds, int *nbinds, phx_err *err);

typedef struct phx_exec_plan phx_exec_plan;
/* In the child: make every mount private, build the root in a tmpfs, pivot_root into it. */
int phx_exec_mount_setup(const phx_exec_plan *p, const char **stage);
/* In the child, as the sandbox user: write the job's files into /work. */
int phx_exec_mount_write_files(const phx_exec_plan *p, const char **stage);

/* ---- net.c ------------------------------------------------------------------------------- */

/* Create the process's empty network namespace (loopback up); returns an fd to it, or -1. */
int phx_exec_net_create(phx_err *err);
/* In the child: enter it. */
int phx_exec_net_enter(int netns_fd);

/* ---- seccomp.c --------------------------------------------------------------------------- */

/* Compile the allow-list to BPF once; the child installs it with one prctl. */
int phx_exec_seccomp_build(struct sock_fprog *prog, phx_err *err);
void phx_exec_seccomp_free(struct sock_fprog *prog);
int phx_exec_seccomp_install(const struct sock_fprog *prog);

/* ---- user.c ------------------------------------------------------------------------------ */

/* Child, still host root: drop supplementary groups, then unshare the cgroup and user
 * namespaces (the cgroup one first, so it is owned by the host and not by the sandbox). */
int phx_exec_user_unshare(const char **stage);
/* Parent: write the child's uid/gid maps (inner PHX_EXEC_INNER_ID -> host uid/gid). */
int phx_exec_user_map(pid_t pid, long host_uid, long host_gid, phx_err *err);
/* Child, after the maps: become the sandbox uid/gid and drop every capability. */
int phx_exec_user_drop(const char **stage);

/* ---- limits.c ---------------------------------------------------------------------------- */

/* Per-worker-thread cgroup (created once, reused by every run of the thread). */
typedef struct phx_exec_cg phx_exec_cg;

/* Detect the cgroup setup ("auto", "v2", "v1", "off"); 0 or -1 when the mode asked for is not
 * available. Process-wide; call once at start. */
int phx_exec_cg_init(const char *mode, phx_err *err);
/* Which mode is in use: "v2", "v1" or "off". */
const char *phx_exec_cg_mode(void);
phx_exec_cg *phx_exec_cg_new(phx_err *err); /* NULL + err on failure; never NULL when off */
void phx_exec_cg_free(phx_exec_cg *cg);
/* Before a run: set the limits, take counters' baselines. */
int phx_exec_cg_prepare(phx_exec_cg *cg, const phx_exec_limits *lim, phx_err *err);
/* Parent, right after the clone: move the child into the cgroup. */
int phx_exec_cg_attach(phx_exec_cg *cg, pid_t pid, phx_err *err);
/* CPU used since prepare, in ms; -1 when unknown. */
long phx_exec_cg_cpu_ms(phx_exec_cg *cg);
/* 1 when the OOM killer acted in the cgroup since prepare. */
int phx_exec_cg_oom(phx_exec_cg *cg);
/* Clean up the process-wide parent cgroup (at exit). */
void phx_exec_cg_shutdown(void);

/* Child: set the rlimits of the run. */
int phx_exec_rlimits(const phx_exec_limits *lim, int have_cgroup, const char **stage);

/* ---- pid.c ------------------------------------------------------------------------------- */

/* Parent: clone a child in new pid, mount, ipc and uts namespaces; it runs fn(arg) as pid 1
 * of its namespace. Returns the pid (host view) and a pidfd, or -1. */
pid_t phx_exec_pid_spawn(int (*fn)(void *), void *arg, int *pidfd, phx_err *err);
/* Kill the run: SIGKILL to the namespace's init takes every process of the namespace. */
void phx_exec_pid_kill(int pidfd);

/* ---- supervisor.c ------------------------------------------------------------------------ */

/* The process-wide sandbox: built once at start, shared read-only by the worker threads. */
typedef struct phx_exec_sandbox {
    const phx_exec_cfg *cfg;
    int netns_fd;
    struct sock_fprog seccomp;
    phx_exec_bind binds[PHX_EXEC_MAX_BINDS];
    int nbinds;
} phx_exec_sandbox;

/* What the child needs, prepared by the parent (no allocation after the clone). */
struct phx_exec_plan {
    const phx_exec_sandbox *sb;
    const phx_exec_req *req;
    int have_cgroup;
    int sync_fd;         /* the child's end of the setup socket */
    int parent_fd;       /* the parent's end: the child closes its copy (see phx_exec_child) */
    int stdin_fd;        /* sealed memfd holding the request's stdin */
    int out_fd, err_fd;  /* write ends of the output pipes */
    const char *argv[4]; /* interpreter, "-c", code, NULL */
};

int phx_exec_sandbox_init(phx_exec_sandbox *sb, const phx_exec_cfg *cfg, phx_err *err);
void phx_exec_sandbox_free(phx_exec_sandbox *sb);
/* Run one request. 0 with res filled (a program that fails is still a 0), or -1 with err:
 * retryable when the sandbox could not run it. cg may be a per-thread cgroup (or NULL). */
int phx_exec_run(const phx_exec_sandbox *sb, phx_exec_cg *cg, const phx_exec_req *req,
                 phx_exec_result *res, phx_err *err);

/* The whole step: parse, run, output. cancelled/cancel_arg: see phx_exec_req (may be NULL). */
json_t *phx_exec_step(const phx_exec_sandbox *sb, phx_exec_cg *cg, const json_t *input,
                      int (*cancelled)(void *arg), void *cancel_arg, phx_err *err);

#endif
