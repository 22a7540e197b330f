/* net.c -- network isolation: one empty network namespace per phx-exec process.
 *
 * Threat: sandboxed code reaching the Kafka brokers, Redis, cloud metadata endpoints, the
 * internet or other host services. Defence: the program runs in a network namespace with
 * nothing but its own loopback interface, so there is no route anywhere and the host's
 * loopback services (Redis, Kafka) are a different interface in a different namespace.
 * Abstract unix sockets are scoped by network namespace too, so the host's (e.g.
 * @/tmp/.X11-unix, systemd's) are out of reach as well.
 *
 * Why one namespace per process rather than per run: creating a network namespace is the slow,
 * globally serialised part of namespace creation on Linux (it takes the net rtnl/pernet locks
 * and registers every per-net subsystem; teardown is deferred to a workqueue), costing
 * milliseconds and throttling every other namespace user on the host. Entering an existing
 * one with setns() is a reference-count change. The trade-off: concurrent runs of the same
 * process share one loopback, so one run could listen on a loopback port another run
 * connects to. Runs of one process are sequential per thread and mutually untrusted only
 * across jobs; the namespace is owned by the host user namespace, so sandboxed code cannot
 * add interfaces, routes or firewall rules to it (it has no capability there), and listening
 * sockets die with the run's pid namespace. Documented in docs/security.md. */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* Bring "lo" up in the current (thread's) network namespace: programs expect 127.0.0.1. */
static int phx_exec_net_lo_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    int rc = -1;
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        goto out;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        goto out;
    rc = 0;
out:
    close(s);
    return rc;
}

/* A network namespace belongs to a thread, not to the process, so this thread can create one,
 * keep a handle to it and return to the host namespace without disturbing the other threads
 * (which may already hold Kafka connections). */
int phx_exec_net_create(phx_err *err)
{
    int host = -1, fd = -1;
    if ((host = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) {
        phx_err_set(err, "sandbox_unavailable", 1, "open own netns: %s", strerror(errno));
        goto err;
    }
    if (unshare(CLONE_NEWNET) < 0) {
        phx_err_set(err, "sandbox_unavailable", 1,
                    "unshare(CLONE_NEWNET): %s (phx-exec needs CAP_SYS_ADMIN)", strerror(errno));
        goto err;
    }
    if (phx_exec_net_lo_up() < 0) {
        phx_err_set(err, "sandbox_unavailable", 1, "bring up lo: %s", strerror(errno));
        goto back;
    }
    if ((fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
        phx_err_set(err, "sandbox_unavailable", 1, "open new netns: %s", strerror(errno));
back:
    /* Failing to return would leave this thread cut off from the network: fatal either way,
     * but report it as such. */
    if (setns(host, CLONE_NEWNET) < 0) {
        phx_err_set(err, "sandbox_unavailable", 1, "return to host netns: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
err:
    if (host >= 0)
        close(host);
    return fd;
}

int phx_exec_net_enter(int netns_fd)
{
    return setns(netns_fd, CLONE_NEWNET);
}
