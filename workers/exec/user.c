/* user.c -- identity: a new user namespace, an unprivileged uid/gid, no capabilities.
 *
 * Threat: the program acting with the supervisor's identity (root in CI), keeping a
 * capability, or regaining privileges through a setuid binary or file capabilities.
 * Defence, in order:
 *   1. setgroups(0) while still host root: supplementary groups are not changed by entering
 *      a user namespace, so root's group 0 would otherwise follow the program.
 *   2. unshare(CLONE_NEWCGROUP) then unshare(CLONE_NEWUSER). The user namespace is created
 *      *after* the mount, pid, ipc, uts, net and cgroup namespaces, so all of those stay owned
 *      by the host's user namespace: whatever the program does inside its own user namespace,
 *      it holds no capability over its mounts, its network or its cgroup (it cannot remount /
 *      read-write, or add a network interface, even with a kernel bug that returned it all
 *      capabilities of its user namespace).
 *   3. The supervisor (host side) maps exactly one id: PHX_EXEC_INNER_ID inside -> the
 *      configured host uid/gid (by default one that owns no files). Inner root is unmapped,
 *      setgroups is denied in the namespace.
 *   4. setresgid/setresuid to the inner id; drop the bounding set (needs CAP_SETPCAP, which
 *      the process has in its new namespace until the uid change), clear ambient, then clear
 *      effective/permitted/inheritable with capset. no_new_privs (set later, just before
 *      seccomp) keeps execve from adding anything back.
 * Everything here runs in the child, which must not allocate (see exec.h). */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int phx_exec_user_unshare(const char **stage)
{
    *stage = "setgroups";
    if (setgroups(0, NULL) < 0)
        return -1;
    *stage = "unshare(CLONE_NEWCGROUP)";
    if (unshare(CLONE_NEWCGROUP) < 0)
        return -1;
    *stage = "unshare(CLONE_NEWUSER)";
    return unshare(CLONE_NEWUSER);
}

static int phx_exec_user_write(pid_t pid, const char *file, const char *text, phx_err *err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        goto err;
    ssize_t n = write(fd, text, strlen(text));
    int saved = errno;
    close(fd);
    errno = saved;
    if (n == (ssize_t)strlen(text))
        return 0;
err:
    return phx_err_set(err, "sandbox_unavailable", 1, "write %s: %s", path, strerror(errno));
}

/* The child is our own code blocked on the setup socket while this runs, and it has not been
 * reaped, so /proc/PID is the child (a pid cannot be recycled before the wait). */
int phx_exec_user_map(pid_t pid, long host_uid, long host_gid, phx_err *err)
{
    char map[64];
    if (phx_exec_user_write(pid, "setgroups", "deny", err) < 0)
        return -1;
    snprintf(map, sizeof(map), "%d %ld 1\n", PHX_EXEC_INNER_ID, host_gid);
    if (phx_exec_user_write(pid, "gid_map", map, err) < 0)
        return -1;
    snprintf(map, sizeof(map), "%d %ld 1\n", PHX_EXEC_INNER_ID, host_uid);
    return phx_exec_user_write(pid, "uid_map", map, err);
}

int phx_exec_user_drop(const char **stage)
{
    *stage = "setresgid";
    if (setresgid(PHX_EXEC_INNER_ID, PHX_EXEC_INNER_ID, PHX_EXEC_INNER_ID) < 0)
        return -1;
    *stage = "capbset_drop";
    for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            return -1;
    *stage = "cap_ambient_clear";
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        return -1;
    *stage = "setresuid";
    if (setresuid(PHX_EXEC_INNER_ID, PHX_EXEC_INNER_ID, PHX_EXEC_INNER_ID) < 0)
        return -1;
    /* A uid change from 0 clears effective and permitted (no SECBIT_KEEP_CAPS); our uid inside
     * was never 0, so clear all three sets explicitly. */
    *stage = "capset";
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    return (int)syscall(SYS_capset, &hdr, data);
}
