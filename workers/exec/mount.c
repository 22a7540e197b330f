/* mount.c -- filesystem isolation: a fresh root with only what the interpreters need.
 *
 * Threat: reading host secrets (keys, /etc/shadow, the Redis AOF, other jobs' files),
 * writing to the host (interpreters, /proc/sys, /sys, cgroupfs, the Kafka/Redis unix sockets),
 * setuid binaries, device nodes (/dev/mem, /dev/kmsg). Defence: the child (in its own mount
 * namespace, every mount made private first so nothing propagates back to the host) builds a
 * new root on an empty tmpfs and pivot_root()s into it; the old root is detached, so no host
 * path remains reachable. The new root holds:
 *   /usr, /bin, /lib, ... (PHX_EXEC_RO_BINDS)  read-only, nosuid, nodev bind mounts; a host
 *                         path that is a symlink (merged-usr /bin -> usr/bin) is recreated as
 *                         the same symlink instead of being bound
 *   /work, /tmp           one size-capped tmpfs (limits.disk_mb), owned by the sandbox user,
 *                         nosuid, nodev; the two share the cap
 *   /dev                  null, zero, urandom (bind mounts of the host nodes) and fd symlinks
 *   /proc                 a new procfs of the run's pid namespace; /proc/sys and
 *                         /proc/sysrq-trigger are read-only binds over themselves
 *   /etc                  passwd, group, hostname, hosts, generated (no host /etc)
 * and nothing else: no /sys, no /run, no host /tmp or /var. Finally the root tmpfs itself is
 * made read-only. All of this is done while the child is still host root in a mount namespace
 * owned by the host user namespace, so the sandboxed program (in a user namespace created
 * afterwards) can never unmount, remount or mount anything here.
 *
 * Runs in the child: no allocation, paths built in stack buffers. */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The host directory the new root is mounted over (inside the child's own mount namespace,
 * so the host's /tmp is untouched). Any directory that exists on every host will do. */
#define PHX_EXEC_NEWROOT "/tmp"

int phx_exec_mount_parse(const char *list, phx_exec_bind *binds, int *nbinds, phx_err *err)
{
    *nbinds = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n > 0) {
            if (*nbinds == PHX_EXEC_MAX_BINDS || n >= sizeof(binds[0].path))
                return phx_err_set(err, "config", 0, "PHX_EXEC_RO_BINDS: too many or too long");
            phx_exec_bind *b = &binds[*nbinds];
            memset(b, 0, sizeof(*b));
            memcpy(b->path, p, n);
            struct stat st;
            if (b->path[0] != '/' || strstr(b->path, "..") || lstat(b->path, &st) < 0)
                return phx_err_set(err, "config", 0,
                                   "PHX_EXEC_RO_BINDS: %s is not an absolute existing path",
                                   b->path);
            if (S_ISLNK(st.st_mode)) {
                ssize_t t = readlink(b->path, b->target, sizeof(b->target) - 1);
                if (t <= 0)
                    return phx_err_set(err, "config", 0, "PHX_EXEC_RO_BINDS: readlink %s", b->path);
                b->target[t] = 0;
            }
            b->is_dir = S_ISDIR(st.st_mode);
            (*nbinds)++;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* mkdir -p of path's parent directories (and of path itself when dir). */
static int phx_exec_mkdirs(const char *path, int dir)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    if (dir && mkdir(buf, 0755) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int phx_exec_touch(const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0)
        return 0; /* never open an existing file (e.g. /proc/sysrq-trigger) for writing */
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int phx_exec_write(const char *path, const char *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            close(fd);
            errno = e;
            return -1;
        }
        off += (size_t)w;
    }
    return close(fd);
}

/* Bind src at dst (created as a file or directory), then remount it with flags (a bind
 * mount ignores flags on creation; only the remount applies them). */
static int phx_exec_bind_ro(const char *src, const char *dst, int is_dir, unsigned long flags)
{
    if (phx_exec_mkdirs(dst, is_dir) < 0 || (!is_dir && phx_exec_touch(dst) < 0))
        return -1;
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
        return -1;
    return mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, NULL);
}

static int phx_exec_mount_binds(const phx_exec_plan *p, const char **stage)
{
    char dst[PATH_MAX];
    for (int i = 0; i < p->sb->nbinds; i++) {
        const phx_exec_bind *b = &p->sb->binds[i];
        snprintf(dst, sizeof(dst), PHX_EXEC_NEWROOT "%s", b->path);
        *stage = b->path;
        if (b->target[0]) {
            if (phx_exec_mkdirs(dst, 0) < 0 || symlink(b->target, dst) < 0)
                return -1;
        } else if (phx_exec_bind_ro(b->path, dst, b->is_dir, MS_NOSUID | MS_NODEV) < 0) {
            return -1;
        }
    }
    return 0;
}

static int phx_exec_mount_dev(const char **stage)
{
    static const char *const nodes[] = {"null", "zero", "urandom"};
    /* What *stage names must outlive this function (the caller reports it after a failure),
     * so it points at these, never at a local buffer (found by cppcheck). */
    static const char *const stages[] = {"/dev/null", "/dev/zero", "/dev/urandom"};
    char src[64], dst[64];
    *stage = "/dev";
    if (mkdir(PHX_EXEC_NEWROOT "/dev", 0755) < 0)
        return -1;
    for (size_t i = 0; i < 3; i++) {
        snprintf(src, sizeof(src), "/dev/%s", nodes[i]);
        snprintf(dst, sizeof(dst), PHX_EXEC_NEWROOT "/dev/%s", nodes[i]);
        *stage = stages[i];
        /* A device node works only on a mount without nodev: these binds are the only ones. */
        if (phx_exec_touch(dst) < 0 || mount(src, dst, NULL, MS_BIND, NULL) < 0)
            return -1;
    }
    *stage = "/dev symlinks";
    if (symlink("/proc/self/fd", PHX_EXEC_NEWROOT "/dev/fd") < 0 ||
        symlink("/proc/self/fd/0", PHX_EXEC_NEWROOT "/dev/stdin") < 0 ||
        symlink("/proc/self/fd/1", PHX_EXEC_NEWROOT "/dev/stdout") < 0 ||
        symlink("/proc/self/fd/2", PHX_EXEC_NEWROOT "/dev/stderr") < 0)
        return -1;
    return 0;
}

static int phx_exec_mount_proc(const char **stage)
{
    *stage = "/proc";
    if (mkdir(PHX_EXEC_NEWROOT "/proc", 0555) < 0 ||
        mount("proc", PHX_EXEC_NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return -1;
    *stage = "/proc/sys read-only";
    if (phx_exec_bind_ro(PHX_EXEC_NEWROOT "/proc/sys", PHX_EXEC_NEWROOT "/proc/sys", 1,
                         MS_NOSUID | MS_NODEV | MS_NOEXEC) < 0)
        return -1;
    /* Absent on kernels without CONFIG_MAGIC_SYSRQ. */
    struct stat st;
    if (lstat(PHX_EXEC_NEWROOT "/proc/sysrq-trigger", &st) == 0 &&
        phx_exec_bind_ro(PHX_EXEC_NEWROOT "/proc/sysrq-trigger",
                         PHX_EXEC_NEWROOT "/proc/sysrq-trigger", 0,
                         MS_NOSUID | MS_NODEV | MS_NOEXEC) < 0)
        return -1;
    return 0;
}

/* /work and /tmp: one tmpfs of disk_mb, mounted aside, its two directories bound into place,
 * then the aside mount detached so its root is unreachable. */
static int phx_exec_mount_disk(const phx_exec_plan *p, const char **stage)
{
    char opts[128];
    const char *disk = PHX_EXEC_NEWROOT "/.disk";
    snprintf(opts, sizeof(opts), "size=%ldm,nr_inodes=%ld,mode=0755", p->req->lim.disk_mb,
             p->req->lim.disk_mb * 64 + 1024);
    *stage = "disk tmpfs";
    if (mkdir(disk, 0700) < 0 || mount("tmpfs", disk, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0 ||
        mkdir(PHX_EXEC_NEWROOT "/.disk/work", 0755) < 0 ||
        mkdir(PHX_EXEC_NEWROOT "/.disk/tmp", 01777) < 0 ||
        chmod(PHX_EXEC_NEWROOT "/.disk/tmp", 01777) < 0 ||
        chown(PHX_EXEC_NEWROOT "/.disk/work", (uid_t)p->sb->cfg->host_uid,
              (gid_t)p->sb->cfg->host_gid) < 0 ||
        chown(PHX_EXEC_NEWROOT "/.disk/tmp", (uid_t)p->sb->cfg->host_uid,
              (gid_t)p->sb->cfg->host_gid) < 0)
        return -1;
    *stage = "/work and /tmp";
    if (mkdir(PHX_EXEC_NEWROOT PHX_EXEC_WORKDIR, 0755) < 0 ||
        mkdir(PHX_EXEC_NEWROOT "/tmp", 0755) < 0 ||
        mount(PHX_EXEC_NEWROOT "/.disk/work", PHX_EXEC_NEWROOT PHX_EXEC_WORKDIR, NULL, MS_BIND,
              NULL) < 0 ||
        mount(PHX_EXEC_NEWROOT "/.disk/tmp", PHX_EXEC_NEWROOT "/tmp", NULL, MS_BIND, NULL) < 0 ||
        umount2(disk, MNT_DETACH) < 0 || rmdir(disk) < 0)
        return -1;
    return 0;
}

static int phx_exec_mount_etc(const char **stage)
{
    static const char passwd[] = "root:x:0:0:root:/:/usr/sbin/nologin\n"
                                 "sandbox:x:1000:1000:sandbox:/work:/bin/sh\n"
                                 "nobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n";
    static const char group[] = "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n";
    static const char hosts[] = "127.0.0.1 localhost " PHX_EXEC_HOSTNAME "\n::1 localhost\n";
    *stage = "/etc";
    if (phx_exec_mkdirs(PHX_EXEC_NEWROOT "/etc", 1) < 0 ||
        phx_exec_write(PHX_EXEC_NEWROOT "/etc/passwd", passwd, sizeof(passwd) - 1, 0644) < 0 ||
        phx_exec_write(PHX_EXEC_NEWROOT "/etc/group", group, sizeof(group) - 1, 0644) < 0 ||
        phx_exec_write(PHX_EXEC_NEWROOT "/etc/hosts", hosts, sizeof(hosts) - 1, 0644) < 0 ||
        phx_exec_write(PHX_EXEC_NEWROOT "/etc/hostname", PHX_EXEC_HOSTNAME "\n",
                       sizeof(PHX_EXEC_HOSTNAME), 0644) < 0)
        return -1;
    return 0;
}

int phx_exec_mount_setup(const phx_exec_plan *p, const char **stage)
{
    *stage = "make mounts private";
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return -1;
    *stage = "root tmpfs";
    if (mount("tmpfs", PHX_EXEC_NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV,
              "size=1m,nr_inodes=256,mode=0755") < 0)
        return -1;
    /* /etc first: a bind list entry under /etc (ld.so.cache) then lands in our directory. */
    if (phx_exec_mount_etc(stage) < 0 || phx_exec_mount_binds(p, stage) < 0 ||
        phx_exec_mount_dev(stage) < 0 || phx_exec_mount_disk(p, stage) < 0 ||
        phx_exec_mount_proc(stage) < 0)
        return -1;
    /* pivot_root(".", "."): the old root ends up stacked under the new one at "/", and
     * detaching it leaves no path to any host file. */
    *stage = "pivot_root";
    if (chdir(PHX_EXEC_NEWROOT) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
        umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
        return -1;
    *stage = "root read-only";
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        return -1;
    return 0;
}

int phx_exec_mount_write_files(const phx_exec_plan *p, const char **stage)
{
    char path[PATH_MAX];
    *stage = "write files";
    if (chdir(PHX_EXEC_WORKDIR) < 0)
        return -1;
    for (int i = 0; i < p->req->nfiles; i++) {
        const phx_exec_file *f = &p->req->files[i];
        snprintf(path, sizeof(path), "%s", f->name);
        if (phx_exec_write(path, f->data, f->len, 0644) < 0)
            return -1;
    }
    return 0;
}
