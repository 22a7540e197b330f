/* pid.c -- process isolation: a new pid namespace per run, whose init is the program.
 *
 * Threat: the program seeing or signalling host processes (kill(-1), ptrace, /proc/PID of the
 * supervisor or of Redis), or leaving processes behind (a double-forked daemon, a fork bomb)
 * that outlive the run. Defence: the child is cloned into new pid, mount, ipc and uts
 * namespaces at once and becomes pid 1 of its pid namespace; after execve the program is that
 * pid 1. It sees only its own descendants, kill(-1) reaches only them, and when pid 1 dies
 * the kernel kills every other process of the namespace before the supervisor's wait
 * returns, so "kill pid 1" is "kill the run", daemons included.
 *
 * Why no init of our own between the supervisor and the program: one fork fewer per run
 * (this is the hot path), and nothing the program could attack. The cost: the program has
 * init semantics (signals it does not handle are ignored when sent from inside the
 * namespace; orphans are reparented to it and become zombies until the run ends), which does
 * not weaken anything: the supervisor's SIGKILL always works.
 *
 * The network and user namespaces are entered later by the child itself (net.c, user.c),
 * and the cgroup namespace once the supervisor has moved it into its cgroup. */
#include "exec.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

pid_t phx_exec_pid_spawn(int (*fn)(void *), void *arg, int *pidfd, phx_err *err)
{
    /* A fork-like raw clone (no new stack; the child runs on a copy of ours) so the child can
     * simply return into fn. CLONE_PIDFD gives a pidfd race-free: signals through it can
     * never hit a recycled pid. */
    int fd = -1;
    long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD | SIGCHLD;
    long pid = syscall(SYS_clone, flags, NULL, &fd, NULL, NULL);
    if (pid < 0) {
        int e = errno;
        /* EAGAIN/ENOMEM/ENOSPC (pid or namespace limits): the host is busy, try later. */
        phx_err_set(err, "sandbox_unavailable", 1, "clone: %s", strerror(e));
        return -1;
    }
    if (pid == 0)
        _exit(fn(arg));
    *pidfd = fd;
    return (pid_t)pid;
}

void phx_exec_pid_kill(int pidfd)
{
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
}
