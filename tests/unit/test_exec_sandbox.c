/* test_exec_sandbox.c -- each isolation property of the exec sandbox, checked directly.
 *
 * These call phx_exec_run() in-process (no Kafka), so they run under ASan/UBSan with the
 * supervisor and the child's setup code instrumented. Each test runs a small program in the
 * sandbox and compares what it sees with what the host sees. Needs root (the sandbox needs
 * CAP_SYS_ADMIN and friends): skipped otherwise. The attack suite (tests/security) covers the
 * same properties through the real pipeline. */
#include "../../workers/exec/exec.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static phx_exec_cfg cfg = {
    .def = {10000, 10000, 256, 64, 64, 16},
    .max = {60000, 60000, 2048, 512, 4096, 1024},
    .python = "/usr/bin/python3",
    .sh = "/bin/sh",
    .ro_binds = "/usr,/bin,/lib,/lib64,/sbin,/etc/ld.so.cache",
    .cgroup_mode = "auto",
    .host_uid = 99999,
    .host_gid = 99999,
    .max_code_kb = 1024,
};
static phx_exec_sandbox sb;
static phx_exec_cg *cg;

/* Run sh (or python) code with optional limits JSON; returns the output object. */
static json_t *run(const char *lang, const char *code, const char *limits)
{
    json_t *in = json_pack("{s:s, s:s}", "lang", lang, "code", code);
    if (limits)
        json_object_set_new(in, "limits", json_loads(limits, 0, NULL));
    phx_err err;
    json_t *out = phx_exec_step(&sb, cg, in, NULL, NULL, &err);
    json_decref(in);
    if (!out)
        fail_msg("run failed: %s: %s", err.code, err.message);
    return out;
}

static const char *field(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static long ifield(json_t *o, const char *k)
{
    return (long)json_integer_value(json_object_get(o, k));
}

static void test_user_identity_and_caps(void **state)
{
    (void)state;
    json_t *o = run("sh",
                    "id -u; id -g; id -G; grep -E '^(Cap|NoNewPrivs|Seccomp:)' "
                    "/proc/self/status; cat /proc/self/uid_map /proc/self/gid_map",
                    NULL);
    const char *want = "1000\n1000\n1000\n"
                       "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\n"
                       "CapEff:\t0000000000000000\nCapBnd:\t0000000000000000\n"
                       "CapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n";
    if (strncmp(field(o, "stdout"), want, strlen(want)) != 0)
        fail_msg("got %s", field(o, "stdout"));
    /* exactly one id mapped, to the configured host id, inner root unmapped */
    assert_non_null(strstr(field(o, "stdout"), "1000      99999          1\n"));
    json_decref(o);
}

static void test_namespaces_all_new(void **state)
{
    (void)state;
    static const char *const ns[] = {"user", "pid", "mnt", "net", "ipc", "uts", "cgroup"};
    json_t *o = run("sh",
                    "for n in user pid mnt net ipc uts cgroup; do readlink /proc/self/ns/$n; "
                    "done",
                    NULL);
    const char *out = field(o, "stdout");
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        char path[64], host[64];
        snprintf(path, sizeof(path), "/proc/self/ns/%s", ns[i]);
        ssize_t n = readlink(path, host, sizeof(host) - 1);
        assert_true(n > 0);
        host[n] = 0;
        if (strstr(out, host))
            fail_msg("%s namespace is the host's (%s)", ns[i], host);
    }
    json_decref(o);
}

static void test_netns_reused_between_runs(void **state)
{
    (void)state;
    json_t *a = run("sh", "readlink /proc/self/ns/net /proc/self/ns/pid", NULL);
    json_t *b = run("sh", "readlink /proc/self/ns/net /proc/self/ns/pid", NULL);
    const char *sa = field(a, "stdout"), *sbo = field(b, "stdout");
    /* Same network namespace (entered with setns). Each run's pid namespace is new, but the
     * kernel recycles namespace inode numbers once the first run's is gone, so equal numbers
     * prove nothing either way: check only that it is never the host's (a new pid namespace
     * per run is test_pid_one_and_no_host_processes: pid 1 is the run's own init). */
    assert_memory_equal(sa, sbo, strchr(sa, '\n') - sa);
    char host[64];
    ssize_t n = readlink("/proc/self/ns/pid", host, sizeof(host) - 1);
    assert_true(n > 0);
    host[n] = 0;
    assert_null(strstr(sbo, host));
    json_decref(a);
    json_decref(b);
}

static void test_pid_one_and_no_host_processes(void **state)
{
    (void)state;
    json_t *o = run("sh", "echo $$; echo /proc/[0-9]*", NULL); /* builtins: no fork */
    assert_string_equal(field(o, "stdout"), "1\n/proc/1\n");
    json_decref(o);
}

static void test_filesystem_layout_and_readonly(void **state)
{
    (void)state;
    json_t *o = run("sh",
                    "ls / | tr '\\n' ' '; echo; touch /x 2>/dev/null || echo root-ro; "
                    "touch /usr/x 2>/dev/null || echo usr-ro; touch /work/x && echo work-rw; "
                    "touch /tmp/x && echo tmp-rw; ls /dev | tr '\\n' ' '; echo; "
                    "grep -E ' / | /usr | /work | /tmp ' /proc/self/mounts | cut -d' ' -f2,4",
                    NULL);
    const char *out = field(o, "stdout");
    if (strncmp(out,
                "bin dev etc lib lib64 proc sbin tmp usr work \nroot-ro\nusr-ro\nwork-rw\n"
                "tmp-rw\nfd null stderr stdin stdout urandom zero \n",
                84) != 0)
        fail_msg("got %s", out);
    assert_non_null(strstr(out, "/ ro,nosuid,nodev"));
    assert_non_null(strstr(out, "/usr ro,nosuid,nodev"));
    assert_non_null(strstr(out, "/work rw,nosuid,nodev"));
    json_decref(o);
}

static void test_network_loopback_only(void **state)
{
    (void)state;
    json_t *o = run("sh", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '", NULL);
    assert_string_equal(field(o, "stdout"), "lo\n");
    json_decref(o);
}

static void test_seccomp_kills(void **state)
{
    (void)state;
    json_t *o = run("python", "import ctypes; ctypes.CDLL(None).syscall(101, 16, 1, 0, 0)", NULL);
    assert_string_equal(field(o, "signal"), "SIGSYS");
    json_decref(o);
}

static void test_rlimits_env_fds(void **state)
{
    (void)state;
    json_t *o = run("sh",
                    "grep -E '^Max (core|open|processes|file size)' /proc/self/limits | tr -s ' '; "
                    "env | sort | tr '\\n' ' '; echo; ls /proc/self/fd | tr '\\n' ' '",
                    "{\"pids\": 20, \"disk_mb\": 3}");
    assert_string_equal(field(o, "stdout"),
                        "Max file size 3145728 3145728 bytes \nMax core file size 0 0 bytes \n"
                        "Max processes 20 20 processes \nMax open files 256 256 files \n"
                        "HOME=/work LANG=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin "
                        "PWD=/work PYTHONUNBUFFERED=1 TMPDIR=/tmp USER=sandbox \n0 1 2 3 ");
    json_decref(o); /* fd 3: ls's own directory handle */
}

static void test_wall_deadline_kills_namespace(void **state)
{
    (void)state;
    json_t *o = run("sh", "(sleep 30 &); echo started; sleep 30", "{\"wall_ms\": 300}");
    assert_true(json_is_true(json_object_get(o, "timed_out")));
    assert_string_equal(field(o, "signal"), "SIGKILL");
    assert_string_equal(field(o, "stdout"), "started\n");
    assert_true(ifield(o, "duration_ms") < 2000);
    json_decref(o);
}

static void test_output_truncated(void **state)
{
    (void)state;
    json_t *o = run("sh", "yes", "{\"output_kb\": 4}");
    assert_true(json_is_true(json_object_get(o, "truncated")));
    assert_int_equal(strlen(field(o, "stdout")), 4096);
    json_decref(o);
}

static void test_memory_limit(void **state)
{
    (void)state;
    if (strcmp(phx_exec_cg_mode(), "off") == 0)
        skip();
    json_t *o =
        run("python", "a = []\nwhile True: a.append(bytearray(4 << 20))", "{\"memory_mb\": 48}");
    assert_true(json_is_true(json_object_get(o, "oom_killed")));
    assert_string_equal(field(o, "signal"), "SIGKILL");
    json_decref(o);
}

static void test_cpu_limit(void **state)
{
    (void)state;
    json_t *o = run("sh", "while :; do :; done", "{\"cpu_ms\": 300, \"wall_ms\": 10000}");
    assert_string_equal(field(o, "signal"), "SIGKILL");
    assert_false(json_is_true(json_object_get(o, "timed_out")));
    assert_true(ifield(o, "cpu_ms") >= 300);
    json_decref(o);
}

static void test_files_and_disk_limit(void **state)
{
    (void)state;
    json_t *in = json_pack("{s:s, s:s, s:{s:s}}", "lang", "sh", "code",
                           "cat in.txt; dd if=/dev/zero of=big bs=1M count=8 2>/dev/null; "
                           "echo rc=$?",
                           "files", "in.txt", "hello\n");
    json_object_set_new(in, "limits", json_pack("{s:i}", "disk_mb", 2));
    phx_err err;
    json_t *o = phx_exec_step(&sb, cg, in, NULL, NULL, &err);
    assert_non_null(o);
    assert_string_not_equal(field(o, "stdout"), "hello\nrc=0\n");
    assert_non_null(strstr(field(o, "stdout"), "hello\n"));
    json_decref(o);
    json_decref(in);
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0)
        return 0;
    phx_err err;
    if (phx_exec_sandbox_init(&sb, &cfg, &err) < 0) {
        fprintf(stderr, "sandbox init: %s\n", err.message);
        return -1;
    }
    if (!(cg = phx_exec_cg_new(&err)))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (geteuid() != 0)
        return 0;
    phx_exec_cg_free(cg);
    phx_exec_sandbox_free(&sb);
    return 0;
}

int main(void)
{
    if (geteuid() != 0) {
        printf("SKIPPED: test_exec_sandbox needs root (see docs/security.md)\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_identity_and_caps),
        cmocka_unit_test(test_namespaces_all_new),
        cmocka_unit_test(test_netns_reused_between_runs),
        cmocka_unit_test(test_pid_one_and_no_host_processes),
        cmocka_unit_test(test_filesystem_layout_and_readonly),
        cmocka_unit_test(test_network_loopback_only),
        cmocka_unit_test(test_seccomp_kills),
        cmocka_unit_test(test_rlimits_env_fds),
        cmocka_unit_test(test_wall_deadline_kills_namespace),
        cmocka_unit_test(test_output_truncated),
        cmocka_unit_test(test_memory_limit),
        cmocka_unit_test(test_cpu_limit),
        cmocka_unit_test(test_files_and_disk_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
