/* supervisor.c -- one sandboxed run: spawn, setup handshake, I/O, deadline, result.
 *
 * The parent side (a worker thread) and the child side (the setup code between clone and
 * execve) talk over a SOCK_SEQPACKET socket pair:
 *
 *   parent                                   child (pid 1 of new pid/mnt/ipc/uts namespaces)
 *   clone ------------------------------->   setns(empty netns), hostname, build root, pivot
 *   move child into its cgroup, send 'C' ->  wait 'C'; setgroups(0); unshare(cgroup, user)
 *   wait 'U'                             <-- send 'U'
 *   write uid_map/gid_map, send 'G'      ->  wait 'G'; uid/gid 1000, drop caps, rlimits,
 *                                            write files, fds 0-2 only, setsid, signals,
 *                                            no_new_privs, seccomp, execve
 *   wait for EOF (exec closed the socket) <- or an error packet: "S stage: ERRNO" (sandbox
 *                                            failure: retryable) or "I ..." (the input's
 *                                            fault, e.g. files larger than the disk: not)
 *
 * Then the parent multiplexes stdout, stderr and the pidfd with poll(): output beyond the
 * cap marks the run truncated and closes that pipe (the program gets EPIPE/SIGPIPE instead of
 * being allowed to burn CPU printing into the void); at the wall deadline, or when the
 * cgroup says the run used more CPU than cpu_ms, SIGKILL goes to pid 1, which takes the
 * whole pid namespace with it.
 *
 * The supervisor reads results only from pipes, the pidfd, wait4() and cgroup files it
 * created: never a path inside the sandbox, so no symlink the program plants can redirect it.
 */
#include "exec.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The program's whole environment: nothing of the supervisor's (PHX_*, credentials) leaks. */
static char *const phx_exec_envp[] = {
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "HOME=" PHX_EXEC_WORKDIR, // NOLINT(bugprone-suspicious-missing-comma): one string on purpose
    "TMPDIR=/tmp",
    "USER=sandbox",
    "LANG=C.UTF-8",
    "PYTHONUNBUFFERED=1", /* output printed before a kill is not lost in a buffer */
    NULL,
};

#define PHX_EXEC_SETUP_TIMEOUT_MS 10000

/* ---- child ------------------------------------------------------------------------------- */

/* Report a setup failure to the parent without allocating: "K<stage>: <ERRNO>". */
static void phx_exec_child_fail(int fd, char kind, const char *stage, int e)
{
    char msg[256];
    size_t n = 0;
    msg[n++] = kind;
    for (const char *s = stage; *s && n < 200; s++)
        msg[n++] = *s;
    msg[n++] = ':';
    msg[n++] = ' ';
    const char *en = strerrorname_np(e);
    for (const char *s = en ? en : "unknown error"; *s && n < sizeof(msg); s++)
        msg[n++] = *s;
    ssize_t w = send(fd, msg, n, MSG_NOSIGNAL);
    (void)w;
}

static int phx_exec_sync(int fd, char want)
{
    char b;
    ssize_t n;
    do
        n = recv(fd, &b, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n != 1 || b != want) {
        errno = n == 0 ? EPIPE : n < 0 ? errno : EPROTO;
        return -1;
    }
    return 0;
}

/* Everything the child does between clone and execve. Returns only on failure. */
static int phx_exec_child(void *arg)
{
    const phx_exec_plan *p = arg;
    const char *stage = "pdeathsig";
    char kind = 'S';
    /* A worker killed -9 mid-setup must not leave this child behind: it would wait for the
     * next sync byte forever, holding copies of every fd of the worker (its admin listener
     * among them, so a restarted worker could not bind its port). PDEATHSIG kills it with
     * the supervising thread; closing our copy of the parent's end makes a parent that died
     * before the prctl read as EOF (getppid() cannot tell: it is 0 in a new pid namespace). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        goto fail;
    close(p->parent_fd);
    stage = "setns(net)";
    if (phx_exec_net_enter(p->sb->netns_fd) < 0)
        goto fail;
    stage = "sethostname";
    if (sethostname(PHX_EXEC_HOSTNAME, sizeof(PHX_EXEC_HOSTNAME) - 1) < 0)
        goto fail;
    if (phx_exec_mount_setup(p, &stage) < 0)
        goto fail;
    stage = "sync C";
    if (phx_exec_sync(p->sync_fd, 'C') < 0)
        goto fail;
    if (phx_exec_user_unshare(&stage) < 0)
        goto fail;
    stage = "sync U";
    if (send(p->sync_fd, "U", 1, MSG_NOSIGNAL) != 1)
        goto fail;
    stage = "sync G";
    if (phx_exec_sync(p->sync_fd, 'G') < 0)
        goto fail;
    if (phx_exec_user_drop(&stage) < 0)
        goto fail;
    if (phx_exec_rlimits(&p->req->lim, p->have_cgroup, &stage) < 0)
        goto fail;
    /* As the sandbox user, under RLIMIT_FSIZE, into the size-capped tmpfs: a job whose files
     * do not fit fails here, and that is the input's fault. */
    if (phx_exec_mount_write_files(p, &stage) < 0) {
        kind = (errno == ENOSPC || errno == EFBIG || errno == EDQUOT) ? 'I' : 'S';
        goto fail;
    }
    stage = "stdio";
    if (dup2(p->stdin_fd, 0) < 0 || dup2(p->out_fd, 1) < 0 || dup2(p->err_fd, 2) < 0)
        goto fail;
    /* Every other fd is closed at execve (the sync socket must stay open until then: its
     * close-on-exec is how the parent learns the exec succeeded). */
    stage = "close_range";
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        goto fail;
    stage = "setsid";
    if (setsid() < 0)
        goto fail;
    /* Signal state is inherited: the worker blocks signals, and ignored ones stay ignored
     * across execve (SIGPIPE would then never stop an output flood). */
    stage = "signals";
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &sa, NULL); /* fails harmlessly for SIGKILL, SIGSTOP and reserved ones */
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        goto fail;
    /* Again after the uid change (a credential change clears it): the run dies with the thread
     * that supervises it. */
    stage = "pdeathsig";
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        goto fail;
    stage = "no_new_privs";
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        goto fail;
    stage = "seccomp";
    if (phx_exec_seccomp_install(&p->sb->seccomp) < 0)
        goto fail;
    stage = "execve";
    execve(p->argv[0], (char *const *)p->argv, phx_exec_envp);
fail:
    phx_exec_child_fail(p->sync_fd, kind, stage, errno);
    return 127;
}

/* ---- parent ------------------------------------------------------------------------------ */

typedef struct phx_exec_run_fds {
    int sync[2];
    int out[2], err[2];
    int stdin_fd;
    int pidfd;
} phx_exec_run_fds;

static void phx_exec_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Fds 0-2 of the supervisor are taken (stdio); keep ours above them so the child's dup2 onto
 * 0/1/2 can never clobber one it still needs. */
static int phx_exec_high(int *fd)
{
    if (*fd >= 3)
        return 0;
    int n = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    close(*fd);
    *fd = n;
    return n < 0 ? -1 : 0;
}

static int phx_exec_stdin_memfd(const phx_exec_req *req)
{
    /* A sealed memfd rather than a pipe: any size, no writer thread, and the program can read
     * it but never change it. */
    int fd = memfd_create("phx-stdin", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < req->stdin_len) {
        ssize_t w = write(fd, req->stdin_data + off, req->stdin_len - off);
        if (w <= 0)
            goto err;
        off += (size_t)w;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0 ||
        lseek(fd, 0, SEEK_SET) < 0)
        goto err;
    return fd;
err:
    close(fd);
    return -1;
}

static int phx_exec_fds_open(phx_exec_run_fds *f, const phx_exec_req *req, phx_err *err)
{
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f->sync) < 0 ||
        pipe2(f->out, O_CLOEXEC) < 0 || pipe2(f->err, O_CLOEXEC) < 0 ||
        (f->stdin_fd = phx_exec_stdin_memfd(req)) < 0)
        return phx_err_set(err, "sandbox_unavailable", 1, "fds: %s", strerror(errno));
    int *all[] = {&f->sync[0], &f->sync[1], &f->out[0],  &f->out[1],
                  &f->err[0],  &f->err[1],  &f->stdin_fd};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (phx_exec_high(all[i]) < 0)
            return phx_err_set(err, "sandbox_unavailable", 1, "fds: %s", strerror(errno));
    return 0;
}

static void phx_exec_fds_close(phx_exec_run_fds *f)
{
    int *all[] = {&f->sync[0], &f->sync[1], &f->out[0],   &f->out[1],
                  &f->err[0],  &f->err[1],  &f->stdin_fd, &f->pidfd};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        phx_exec_close(all[i]);
}

/* Wait (bounded) for the next setup message. Returns its length, 0 at EOF, -1 on timeout. */
static ssize_t phx_exec_setup_recv(int fd, char *buf, size_t len, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - phx_mono_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r <= 0)
            continue;
        ssize_t n = recv(fd, buf, len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n >= 0)
            buf[n] = 0;
        return n;
    }
}

/* A setup message that is not the expected one: the child's failure report. */
static int phx_exec_setup_failed(const char *msg, ssize_t n, phx_err *err)
{
    if (n < 0)
        return phx_err_set(err, "sandbox_unavailable", 1, "sandbox setup timed out");
    if (n == 0)
        return phx_err_set(err, "sandbox_unavailable", 1, "sandbox setup: child died");
    if (msg[0] == 'I')
        return phx_err_set(err, "invalid_input", 0, "%s (files larger than limits.disk_mb?)",
                           msg + 1);
    return phx_err_set(err, "sandbox_unavailable", 1, "sandbox setup failed at %s", msg + 1);
}

typedef struct phx_exec_stream {
    int *fd;
    char *buf;
    size_t len, cap;
} phx_exec_stream;

/* Read what is available; 1 when the stream is finished (EOF or capped). */
static int phx_exec_stream_read(phx_exec_stream *s, int *truncated)
{
    char scratch[16384];
    for (;;) {
        size_t room = s->cap - s->len;
        /* scratch is only ever written (read(2) fills it, the bytes are dropped). */
        // cppcheck-suppress legacyUninitvar
        char *dst = room ? s->buf + s->len : scratch;
        ssize_t n = read(*s->fd, dst, room ? room : sizeof(scratch));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0) {
            phx_exec_close(s->fd);
            return 1;
        }
        if (!room) {
            /* Over the cap: stop reading, the program gets EPIPE on its next write. */
            *truncated = 1;
            phx_exec_close(s->fd);
            return 1;
        }
        s->len += (size_t)n;
    }
}

/* The I/O loop: until the program is gone and both pipes are closed. */
#define PHX_EXEC_CANCEL_CHECK_MS 500

/* Is it time to ask whether the run is cancelled, and is it? (At most twice a second: the
 * question costs the pool a Redis round trip.) */
static int phx_exec_cancel_due(const phx_exec_req *req, int64_t now, int64_t *next)
{
    if (!req->cancelled || now < *next)
        return 0;
    *next = now + PHX_EXEC_CANCEL_CHECK_MS;
    return req->cancelled(req->cancel_arg);
}

static void phx_exec_wait(phx_exec_run_fds *f, phx_exec_cg *cg, const phx_exec_req *req,
                          phx_exec_stream *st, phx_exec_result *res, int64_t t0)
{
    const phx_exec_limits *lim = &req->lim;
    int64_t deadline = t0 + lim->wall_ms, cancel_check = t0 + PHX_EXEC_CANCEL_CHECK_MS;
    int exited = 0, killed = 0;
    int64_t exited_at = 0;
    fcntl(f->out[0], F_SETFL, O_NONBLOCK);
    fcntl(f->err[0], F_SETFL, O_NONBLOCK);
    while (!exited || f->out[0] >= 0 || f->err[0] >= 0) {
        struct pollfd pfd[3];
        int n = 0, idx[3];
        for (int i = 0; i < 2; i++)
            if (*st[i].fd >= 0) {
                pfd[n] = (struct pollfd){*st[i].fd, POLLIN, 0};
                idx[n++] = i;
            }
        if (!exited) {
            pfd[n] = (struct pollfd){f->pidfd, POLLIN, 0};
            idx[n++] = 2;
        }
        int64_t now = phx_mono_ms();
        int64_t wait = killed ? 1000 : deadline - now;
        if (wait > 100)
            wait = 100; /* wake up to check the CPU budget */
        if (wait < 0)
            wait = 0;
        int r = poll(pfd, (nfds_t)n, (int)wait);
        if (r < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n && r > 0; i++) {
            if (!pfd[i].revents)
                continue;
            if (idx[i] == 2) {
                exited = 1;
                exited_at = phx_mono_ms();
            } else {
                phx_exec_stream_read(&st[idx[i]], &res->truncated);
            }
        }
        /* Once pid 1 is gone every writer in the namespace is too; a write end can outlive it
         * only briefly (inherited by a sibling thread's child before its exec). */
        if (exited && phx_mono_ms() - exited_at > 2000)
            break;
        if (killed)
            continue;
        now = phx_mono_ms();
        if (!exited && now >= deadline) {
            res->timed_out = 1;
        } else if (!exited && phx_exec_cancel_due(req, now, &cancel_check)) {
            res->cancelled = 1;
        } else if (!exited) {
            long cpu = phx_exec_cg_cpu_ms(cg);
            if (cpu < 0 || cpu <= lim->cpu_ms)
                continue;
        } else {
            continue;
        }
        phx_exec_pid_kill(f->pidfd);
        killed = 1;
    }
}

static void phx_exec_plan_init(phx_exec_plan *p, const phx_exec_sandbox *sb,
                               const phx_exec_req *req, phx_exec_cg *cg, phx_exec_run_fds *f)
{
    memset(p, 0, sizeof(*p));
    p->sb = sb;
    p->req = req;
    p->have_cgroup = cg && strcmp(phx_exec_cg_mode(), "off") != 0;
    p->sync_fd = f->sync[1];
    p->parent_fd = f->sync[0];
    p->stdin_fd = f->stdin_fd;
    p->out_fd = f->out[1];
    p->err_fd = f->err[1];
    p->argv[0] = req->lang == PHX_EXEC_LANG_PYTHON ? sb->cfg->python : sb->cfg->sh;
    p->argv[1] = "-c";
    p->argv[2] = req->code;
    p->argv[3] = NULL;
}

int phx_exec_run(const phx_exec_sandbox *sb, phx_exec_cg *cg, const phx_exec_req *req,
                 phx_exec_result *res, phx_err *err)
{
    memset(res, 0, sizeof(*res));
    phx_exec_run_fds f = {{-1, -1}, {-1, -1}, {-1, -1}, -1, -1};
    phx_exec_plan plan;
    pid_t pid = -1;
    char msg[256];
    ssize_t n;
    phx_exec_stream st[2] = {{&f.out[0], NULL, 0, 0}, {&f.err[0], NULL, 0, 0}};
    size_t cap = (size_t)req->lim.output_kb * 1024;
    if (!(res->out = malloc(cap + 1)) || !(res->err = malloc(cap + 1))) {
        phx_err_set(err, "sandbox_unavailable", 1, "out of memory");
        goto err;
    }
    st[0] = (phx_exec_stream){&f.out[0], res->out, 0, cap};
    st[1] = (phx_exec_stream){&f.err[0], res->err, 0, cap};
    if (phx_exec_fds_open(&f, req, err) < 0 || phx_exec_cg_prepare(cg, &req->lim, err) < 0)
        goto err;
    phx_exec_plan_init(&plan, sb, req, cg, &f);

    int64_t setup_deadline = phx_mono_ms() + PHX_EXEC_SETUP_TIMEOUT_MS;
    if ((pid = phx_exec_pid_spawn(phx_exec_child, &plan, &f.pidfd, err)) < 0)
        goto err;
    phx_exec_close(&f.sync[1]);
    phx_exec_close(&f.out[1]);
    phx_exec_close(&f.err[1]);
    phx_exec_close(&f.stdin_fd);
    if (phx_exec_cg_attach(cg, pid, err) < 0)
        goto kill;
    if (send(f.sync[0], "C", 1, MSG_NOSIGNAL) != 1)
        goto setup_failed;
    n = phx_exec_setup_recv(f.sync[0], msg, sizeof(msg), setup_deadline);
    if (n != 1 || msg[0] != 'U') {
        phx_exec_setup_failed(msg, n, err);
        goto kill;
    }
    if (phx_exec_user_map(pid, sb->cfg->host_uid, sb->cfg->host_gid, err) < 0)
        goto kill;
    if (send(f.sync[0], "G", 1, MSG_NOSIGNAL) != 1)
        goto setup_failed;
    /* EOF: the exec closed the child's end (close-on-exec); anything else is a report. */
    n = phx_exec_setup_recv(f.sync[0], msg, sizeof(msg), setup_deadline);
    int64_t t0 = phx_mono_ms();
    if (n != 0) {
        phx_exec_setup_failed(msg, n, err);
        goto kill;
    }

    phx_exec_wait(&f, cg, req, st, res, t0);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
        ;
    pid = -1;
    res->duration_ms = (long)(phx_mono_ms() - t0);
    res->out_len = st[0].len;
    res->err_len = st[1].len;
    res->out[res->out_len] = 0;
    res->err[res->err_len] = 0;
    if (WIFEXITED(status)) {
        res->exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        res->signo = WTERMSIG(status);
        res->exit_code = 128 + res->signo;
    }
    res->oom_killed = phx_exec_cg_oom(cg);
    long cg_cpu = phx_exec_cg_cpu_ms(cg);
    res->cpu_ms = cg_cpu >= 0 ? cg_cpu
                              : (long)(ru.ru_utime.tv_sec * 1000 + ru.ru_utime.tv_usec / 1000 +
                                       ru.ru_stime.tv_sec * 1000 + ru.ru_stime.tv_usec / 1000);
    res->max_rss_kb = ru.ru_maxrss;
    phx_exec_fds_close(&f);
    return 0;

setup_failed:
    phx_err_set(err, "sandbox_unavailable", 1, "sandbox setup: %s", strerror(errno));
kill:
    phx_exec_pid_kill(f.pidfd);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
err:
    phx_exec_fds_close(&f);
    phx_exec_result_free(res);
    return -1;
}

/* ---- the process-wide sandbox ------------------------------------------------------------ */

int phx_exec_sandbox_init(phx_exec_sandbox *sb, const phx_exec_cfg *cfg, phx_err *err)
{
    memset(sb, 0, sizeof(*sb));
    sb->cfg = cfg;
    sb->netns_fd = -1;
    if (phx_exec_mount_parse(cfg->ro_binds, sb->binds, &sb->nbinds, err) < 0)
        return -1;
    const char *interp[] = {cfg->python, cfg->sh};
    for (int i = 0; i < 2; i++)
        if (access(interp[i], X_OK) < 0)
            return phx_err_set(err, "config", 0, "interpreter %s: %s", interp[i], strerror(errno));
    if (phx_exec_seccomp_build(&sb->seccomp, err) < 0)
        return -1;
    if ((sb->netns_fd = phx_exec_net_create(err)) < 0)
        goto err;
    if (phx_exec_cg_init(cfg->cgroup_mode, err) < 0)
        goto err;
    return 0;
err:
    phx_exec_sandbox_free(sb);
    return -1;
}

void phx_exec_sandbox_free(phx_exec_sandbox *sb)
{
    phx_exec_seccomp_free(&sb->seccomp);
    if (sb->netns_fd >= 0)
        close(sb->netns_fd);
    sb->netns_fd = -1;
    phx_exec_cg_shutdown();
}

json_t *phx_exec_step(const phx_exec_sandbox *sb, phx_exec_cg *cg, const json_t *input,
                      int (*cancelled)(void *arg), void *cancel_arg, phx_err *err)
{
    phx_exec_req req;
    phx_exec_result res;
    if (phx_exec_req_parse(input, sb->cfg, &req, err) < 0)
        return NULL;
    req.cancelled = cancelled;
    req.cancel_arg = cancel_arg;
    if (phx_exec_run(sb, cg, &req, &res, err) < 0)
        return NULL;
    json_t *out = phx_exec_result_json(&res);
    phx_exec_result_free(&res);
    return out;
}
