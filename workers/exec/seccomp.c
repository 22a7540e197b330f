/* seccomp.c -- kernel attack surface: a seccomp-bpf allow-list for sandboxed programs.
 *
 * Threat: the kernel itself. Namespaces hide resources, but every syscall the program can
 * make is kernel code an exploit can aim at, and several interfaces (keyrings, bpf,
 * perf_event_open, userfaultfd, io_uring, ptrace, module loading, new namespaces) have a long
 * history of privilege escalations or are simply not needed to run a script. Defence: an
 * allow-list. Anything not listed kills the whole process (SCMP_ACT_KILL_PROCESS): a program
 * that probes the kernel learns nothing and stops. A few calls answer an error instead, where
 * well-behaved programs and libraries expect one and recover:
 *   - clone3 -> ENOSYS: its flags live in memory, out of reach of a BPF filter, so it cannot be
 *     checked; glibc falls back to clone(2), whose flags are checked.
 *   - clone with any CLONE_NEW* flag -> EPERM (no new namespaces inside the sandbox).
 *   - ioctl TIOCSTI/TIOCLINUX -> EPERM (pushing input into a terminal); other ioctl requests
 *     outside a small terminal/fd list are killed like any unlisted call.
 *   - socket families other than unix/inet/inet6 -> EAFNOSUPPORT (no netlink, packet, vsock,
 *     alg, bluetooth sockets: large attack surface, and nothing a script needs).
 *
 * Architecture: the filter is written for x86_64. i386 entry points (int 0x80, another audit
 * arch) and x32 (the same arch token with bit 30 of the syscall number set) would otherwise
 * reach a differently numbered syscall table, so both are killed. libseccomp already kills a
 * foreign arch (SCMP_FLTATR_ACT_BADARCH); we also prepend our own three-instruction check for
 * both cases so the guarantee does not depend on the library version.
 *
 * The program is compiled once at start to BPF (seccomp_export_bpf) and installed in each
 * child with one prctl(): libseccomp allocates, which a child forked from a threaded process
 * must not do, and compiling per run would waste the time budget. */
#include "exec.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Allowed without conditions, grouped by why a script needs them. */
static const char *const phx_exec_allow[] = {
    /* process lifetime, as any dynamically linked program and its runtime use it */
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "brk",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "futex",
    "futex_waitv",
    "restart_syscall",
    "getpid",
    "getppid",
    "gettid",
    "getpgrp",
    "getpgid",
    "setpgid",
    "getsid",
    "setsid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "capget",
    "uname",
    "sysinfo",
    "getrusage",
    "times",
    "getcpu",
    "sched_yield",
    "sched_getaffinity",
    "sched_getparam",
    "sched_getscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "getpriority",
    "setpriority",
    "getrandom",
    "prlimit64",
    "getrlimit",
    "setrlimit",
    "membarrier",
    /* children and signals (kill reaches only the run's own pid namespace) */
    "fork",
    "vfork",
    "wait4",
    "waitid",
    "kill",
    "tkill",
    "tgkill",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "sigaltstack",
    "pause",
    "alarm",
    "getitimer",
    "setitimer",
    "timer_create",
    "timer_settime",
    "timer_gettime",
    "timer_getoverrun",
    "timer_delete",
    "pidfd_open",
    "pidfd_send_signal",
    /* memory (bounded by the cgroup and RLIMIT_AS) */
    "mmap",
    "munmap",
    "mprotect",
    "mremap",
    "madvise",
    "mincore",
    "msync",
    "mlock",
    "munlock",
    "mlock2",
    "memfd_create",
    /* time */
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "time",
    /* files: every path resolves inside the sandbox's own root */
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "open",
    "openat",
    "openat2",
    "creat",
    "close",
    "close_range",
    "lseek",
    "dup",
    "dup2",
    "dup3",
    "pipe",
    "pipe2",
    "fcntl",
    "flock",
    "fsync",
    "fdatasync",
    "sync_file_range",
    "ftruncate",
    "truncate",
    "fallocate",
    "fadvise64",
    "readahead",
    "sendfile",
    "splice",
    "tee",
    "copy_file_range",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "access",
    "faccessat",
    "faccessat2",
    "getdents",
    "getdents64",
    "getcwd",
    "chdir",
    "fchdir",
    "mkdir",
    "mkdirat",
    "rmdir",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "readlink",
    "readlinkat",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "umask",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    "mknod",
    "mknodat",
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    "inotify_rm_watch",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "get_mempolicy",
    "set_mempolicy",
    /* waiting on many fds */
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "eventfd",
    "eventfd2",
    "signalfd",
    "signalfd4",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
    /* sockets: only loopback exists in the run's network namespace */
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "shutdown",
    "getsockname",
    "getpeername",
    "setsockopt",
    "getsockopt",
    /* identity changes a program may attempt; without capabilities they can only keep or drop
     * what it has, and no_new_privs makes exec unable to add any */
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
};

/* ioctl requests allowed (terminal queries programs make on their std streams, fd flags). */
static const unsigned long phx_exec_ioctls[] = {
    TCGETS, TIOCGWINSZ, TIOCGPGRP, FIONREAD, FIONBIO, FIOCLEX, FIONCLEX, FIOASYNC,
};

/* prctl options allowed; others (PR_SET_MM, PR_SET_SECUREBITS...) need capabilities or are
 * not needed. */
static const int phx_exec_prctls[] = {
    PR_SET_NAME,     PR_GET_NAME,     PR_SET_PDEATHSIG,    PR_GET_PDEATHSIG,
    PR_GET_DUMPABLE, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS,
    PR_CAPBSET_READ, PR_GET_SECCOMP,  PR_SET_VMA,          PR_GET_TIMERSLACK,
};

#define PHX_EXEC_CLONE_NS                                                                          \
    (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |     \
     CLONE_NEWCGROUP | 0x00000080 /* CLONE_NEWTIME */)

static int phx_exec_seccomp_rules(scmp_filter_ctx ctx, const char **what)
{
    int rc;
    for (size_t i = 0; i < sizeof(phx_exec_allow) / sizeof(phx_exec_allow[0]); i++) {
        int nr = seccomp_syscall_resolve_name(phx_exec_allow[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not on this architecture (e.g. a legacy call): nothing to allow */
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) < 0) {
            *what = phx_exec_allow[i];
            return rc;
        }
    }
    *what = "clone";
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                               SCMP_A0(SCMP_CMP_MASKED_EQ, PHX_EXEC_CLONE_NS, 0))) < 0)
        return rc;
    for (int bit = 0; bit < 64; bit++) {
        unsigned long f = 1UL << bit;
        if ((PHX_EXEC_CLONE_NS & f) &&
            (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                   SCMP_A0(SCMP_CMP_MASKED_EQ, f, f))) < 0)
            return rc;
    }
    *what = "clone3";
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) < 0)
        return rc;
    /* ioctl: the request is an unsigned int in the kernel; compare the low 32 bits only, and
     * require the high ones to be 0 (libseccomp checks both halves), so TIOCSTI | 1 << 32
     * matches no allow rule and is killed. */
    *what = "ioctl";
    for (size_t i = 0; i < sizeof(phx_exec_ioctls) / sizeof(phx_exec_ioctls[0]); i++)
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                                   SCMP_A1(SCMP_CMP_EQ, phx_exec_ioctls[i]))) < 0)
            return rc;
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                               SCMP_A1(SCMP_CMP_EQ, TIOCSTI))) < 0 ||
        (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                               SCMP_A1(SCMP_CMP_EQ, TIOCLINUX))) < 0)
        return rc;
    *what = "prctl";
    for (size_t i = 0; i < sizeof(phx_exec_prctls) / sizeof(phx_exec_prctls[0]); i++)
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                                   SCMP_A0(SCMP_CMP_EQ, (unsigned long)phx_exec_prctls[i]))) < 0)
            return rc;
    *what = "socket";
    static const int fams[] = {AF_UNIX, AF_INET, AF_INET6};
    for (size_t i = 0; i < 3; i++)
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                                   SCMP_A0(SCMP_CMP_EQ, (unsigned long)fams[i]))) < 0)
            return rc;
    for (int fam = 0; fam < 64; fam++)
        if (fam != AF_UNIX && fam != AF_INET && fam != AF_INET6 &&
            (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                                   SCMP_A0(SCMP_CMP_EQ, (unsigned long)fam))) < 0)
            return rc;
    return 0;
}

/* Our own header: foreign arch or x32 syscall number -> kill. */
static const struct sock_filter phx_exec_arch_check[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000 /* __X32_SYSCALL_BIT */, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
};
#define PHX_EXEC_NHDR (sizeof(phx_exec_arch_check) / sizeof(phx_exec_arch_check[0]))

int phx_exec_seccomp_build(struct sock_fprog *prog, phx_err *err)
{
    memset(prog, 0, sizeof(*prog));
    int fd = -1, rc;
    const char *what = "init";
    struct stat st;
    struct sock_filter *f = NULL;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx)
        goto err;
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0 ||
        (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0) /* we set it ourselves */
        goto err;
    if ((rc = phx_exec_seccomp_rules(ctx, &what)) < 0)
        goto err;
    what = "export";
    if ((fd = memfd_create("phx-seccomp", MFD_CLOEXEC)) < 0 || seccomp_export_bpf(ctx, fd) < 0 ||
        fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size % sizeof(struct sock_filter))
        goto err;
    size_t n = (size_t)st.st_size / sizeof(struct sock_filter);
    if (n + PHX_EXEC_NHDR > BPF_MAXINSNS || !(f = calloc(n + PHX_EXEC_NHDR, sizeof(*f))))
        goto err;
    memcpy(f, phx_exec_arch_check, sizeof(phx_exec_arch_check));
    if (pread(fd, f + PHX_EXEC_NHDR, (size_t)st.st_size, 0) != st.st_size)
        goto err;
    close(fd);
    seccomp_release(ctx);
    prog->len = (unsigned short)(n + PHX_EXEC_NHDR);
    prog->filter = f;
    return 0;
err:
    free(f);
    if (fd >= 0)
        close(fd);
    if (ctx)
        seccomp_release(ctx);
    return phx_err_set(err, "sandbox_unavailable", 1, "seccomp filter (%s) could not be built",
                       what);
}

void phx_exec_seccomp_free(struct sock_fprog *prog)
{
    free(prog->filter);
    prog->filter = NULL;
    prog->len = 0;
}

/* Child: requires PR_SET_NO_NEW_PRIVS (set just before) since it has no CAP_SYS_ADMIN. */
int phx_exec_seccomp_install(const struct sock_fprog *prog)
{
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0);
}
