/* test_config.c -- configuration loading: defaults, environment, file, and bad values that
 * must be refused naming the variable. Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/config.h"
#include "../../lib/util.h"

typedef struct tcfg {
    phx_common common;
    long n;
    int flag;
    char *name;
} tcfg;

static const phx_opt opts[] = {
    PHX_COMMON_OPTS(tcfg),
    {"PHX_T_N", PHX_OPT_INT, "5", 1, 10, offsetof(tcfg, n), "a number"},
    {"PHX_T_FLAG", PHX_OPT_BOOL, "false", 0, 0, offsetof(tcfg, flag), "a flag"},
    {"PHX_T_NAME", PHX_OPT_STR, NULL, 0, 0, offsetof(tcfg, name), "a required name"},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

/* env assignments ("K=V;K=V"), optional file text -> NULL (ok) or expected error substring */
static const struct {
    const char *name, *env, *file, *want;
} cases[] = {
    {"defaults", "PHX_T_NAME=x", NULL, NULL},
    {"required missing", "", NULL, "PHX_T_NAME is required"},
    {"int not a number", "PHX_T_NAME=x;PHX_T_N=abc", NULL, "PHX_T_N=abc"},
    {"int trailing junk", "PHX_T_NAME=x;PHX_T_N=5x", NULL, "not an integer"},
    {"int out of range", "PHX_T_NAME=x;PHX_T_N=11", NULL, "out of range [1, 10]"},
    {"bool bad", "PHX_T_NAME=x;PHX_T_FLAG=maybe", NULL, "PHX_T_FLAG=maybe"},
    {"concurrency zero", "PHX_T_NAME=x;PHX_CONCURRENCY=0", NULL, "PHX_CONCURRENCY=0"},
    {"file sets", "", "{\"PHX_T_NAME\":\"fromfile\",\"PHX_T_N\":7,\"PHX_T_FLAG\":true}", NULL},
    {"file unknown key", "PHX_T_NAME=x", "{\"PHX_T_NOPE\":1}", "unknown option PHX_T_NOPE"},
    {"file bad json", "PHX_T_NAME=x", "{nope", "PHX_CONFIG_FILE"},
    {"file not object", "PHX_T_NAME=x", "[1]", "must be a JSON object"},
    {"file bad type", "PHX_T_NAME=x", "{\"PHX_T_N\":[1]}", "must be a string, integer or boolean"},
    {"file value checked", "PHX_T_NAME=x", "{\"PHX_T_N\":99}", "out of range"},
};

static void clear_env(void)
{
    const char *names[] = {"PHX_T_N", "PHX_T_FLAG", "PHX_T_NAME", "PHX_CONCURRENCY",
                           "PHX_CONFIG_FILE"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        unsetenv(names[i]);
}

static void test_config_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        clear_env();
        char env[256];
        snprintf(env, sizeof(env), "%s", cases[i].env);
        for (char *kv = strtok(env, ";"); kv; kv = strtok(NULL, ";")) {
            char *eq = strchr(kv, '=');
            *eq = '\0';
            setenv(kv, eq + 1, 1);
        }
        char path[] = "/tmp/phx-test-config-XXXXXX";
        if (cases[i].file) {
            int fd = mkstemp(path);
            assert_true(fd >= 0);
            assert_int_equal(write(fd, cases[i].file, strlen(cases[i].file)),
                             (ssize_t)strlen(cases[i].file));
            close(fd);
            setenv("PHX_CONFIG_FILE", path, 1);
        }
        tcfg c = {0};
        char err[512] = "";
        int rc = phx_config_load(opts, NOPTS, &c, err, sizeof(err));
        if (cases[i].want == NULL && rc != 0)
            fail_msg("%s: unexpected error %s", cases[i].name, err);
        if (cases[i].want && (rc == 0 || !strstr(err, cases[i].want)))
            fail_msg("%s: want error '%s', got rc=%d '%s'", cases[i].name, cases[i].want, rc, err);
        if (strcmp(cases[i].name, "file sets") == 0) {
            assert_string_equal(c.name, "fromfile");
            assert_int_equal(c.n, 7);
            assert_int_equal(c.flag, 1);
        }
        if (strcmp(cases[i].name, "defaults") == 0) {
            assert_int_equal(c.n, 5);
            assert_int_equal(c.common.concurrency, 2);
            assert_string_equal(c.common.log_level, "info");
        }
        phx_config_free(opts, NOPTS, &c);
        if (cases[i].file)
            unlink(path);
    }
    clear_env();
}

static void test_config_env_beats_file(void **state)
{
    (void)state;
    clear_env();
    char path[] = "/tmp/phx-test-config-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "{\"PHX_T_NAME\":\"file\",\"PHX_T_N\":3}";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    setenv("PHX_CONFIG_FILE", path, 1);
    setenv("PHX_T_N", "9", 1);
    tcfg c = {0};
    char err[256];
    assert_int_equal(phx_config_load(opts, NOPTS, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 9);
    assert_string_equal(c.name, "file");
    phx_config_free(opts, NOPTS, &c);
    unlink(path);
    clear_env();
}

static void test_config_secret(void **state)
{
    (void)state;
    char path[] = "/tmp/phx-test-secret-XXXXXX";
    int fd = mkstemp(path);
    assert_int_equal(write(fd, "s3cret\n", 7), 7);
    close(fd);
    char err[256];
    char *s = phx_config_read_secret(path, err, sizeof(err));
    assert_string_equal(s, "s3cret");
    free(s);
    truncate(path, 0) == 0 ? (void)0 : fail();
    assert_null(phx_config_read_secret(path, err, sizeof(err)));
    assert_non_null(strstr(err, "empty"));
    unlink(path);
    assert_null(phx_config_read_secret(path, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot open"));
}

/* phx_parse_long: the one strict parser behind options, config values and CLI numbers. */
static void test_parse_long(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        long min, max;
        int ok;
        long want;
    } rows[] = {
        {"42", 0, 100, 1, 42},
        {"0", 0, 100, 1, 0},
        {"-5", -10, 10, 1, -5},
        {"100", 0, 100, 1, 100},
        {"101", 0, 100, 0, 0},
        {"-1", 0, 100, 0, 0},
        {"", 0, 100, 0, 0},
        {"10x", 0, 100, 0, 0},
        {"x10", 0, 100, 0, 0},
        {"1.5", 0, 100, 0, 0},
        {"99999999999999999999", 0, 100, 0, 0},
        {"0x10", 0, 100, 0, 0},
        {"7 ", 0, 100, 0, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        long v = -12345;
        int rc = phx_parse_long(rows[i].s, rows[i].min, rows[i].max, &v);
        if ((rc == 0) != rows[i].ok)
            fail_msg("'%s' in [%ld, %ld]: rc %d", rows[i].s, rows[i].min, rows[i].max, rc);
        assert_int_equal(v, rows[i].ok ? rows[i].want : -12345); /* untouched on error */
    }
    long v = 0;
    assert_int_equal(phx_parse_long(NULL, 0, 1, &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_cases),
        cmocka_unit_test(test_config_env_beats_file),
        cmocka_unit_test(test_config_secret),
        cmocka_unit_test(test_parse_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
