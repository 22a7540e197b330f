/* test_redact.c -- the redaction layer: registered secrets and secret shapes, in text, in log
 * lines and in JSON results. Table rows: input, expected output, after registering the two
 * secrets below. */
#include "../../lib/log.h"
#include "../../lib/pool.h"
#include "../../lib/redact.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define KEY "phx_0123456789abcdef0123456789abcdef0123456789abcdef"
#define JWT "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.abcdefghijklmnopqrstuvwxyz0123456789ABCDEF_-"

static const struct {
    const char *in, *out;
} redact_cases[] = {
    {"nothing secret here", "nothing secret here"},
    {"password is hunter2-hunter2!", "password is [REDACTED]!"},
    {"hunter2-hunter2hunter2-hunter2", "[REDACTED][REDACTED]"},
    {"long s3cr3t-value-that-contains hunter2-hunter2!", "long [REDACTED]!"}, /* whole */
    {"key " KEY " leaked", "key [REDACTED] leaked"},
    {"x" KEY, "x" KEY}, /* inside a longer word: not a key */
    {"phx_0123 is short", "phx_0123 is short"},
    {"token=" JWT "; done", "token=[REDACTED]; done"},
    {"Authorization: Bearer abc.def-123, next", "Authorization: Bearer [REDACTED], next"},
    {"bearer xyz", "bearer [REDACTED]"},
    {"Bearer [REDACTED]", "Bearer [REDACTED]"},
    {"eyJ alone", "eyJ alone"},
    {"short pw abc", "short pw abc"}, /* "abc" is registered but under 8 bytes: ignored */
    {"", ""},
};

static int setup(void **state)
{
    (void)state;
    phx_redact_clear();
    phx_redact_add("hunter2-hunter2");
    phx_redact_add("s3cr3t-value-that-contains hunter2-hunter2"); /* longest first */
    phx_redact_add("abc");
    return 0;
}

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(redact_cases) / sizeof(redact_cases[0]); i++) {
        char *r = phx_redact_dup(redact_cases[i].in);
        if (strcmp(r, redact_cases[i].out) != 0)
            fail_msg("case %zu: [%s] -> [%s], want [%s]", i, redact_cases[i].in, r,
                     redact_cases[i].out);
        free(r);
    }
}

static void test_buf(void **state)
{
    (void)state;
    char b1[64] = "pw=hunter2-hunter2 end";
    assert_int_equal(phx_redact_buf(b1, sizeof(b1)), 1);
    assert_string_equal(b1, "pw=[REDACTED] end");
    char b2[8]; /* a secret cut short by a small buffer is no longer the secret */
    snprintf(b2, sizeof(b2), "%s", "hunter2-hunter2");
    assert_int_equal(phx_redact_buf(b2, sizeof(b2)), 0);
    char b3[12] = "x hunter2-h"; /* the result may be truncated, never the secret kept */
    assert_int_equal(phx_redact_buf(b3, sizeof(b3)), 0);
}

static void test_json(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:s, s:[s, {s:s}], s:i, s:s}", "a", "pw hunter2-hunter2", "b",
                          "Bearer zzz", "c", KEY, "n", 5, "hunter2-hunter2", "as key");
    assert_int_equal(phx_redact_json(v), 4);
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"[REDACTED]\":\"as key\",\"a\":\"pw [REDACTED]\",\"b\":[\"Bearer "
                           "[REDACTED]\",{\"c\":\"[REDACTED]\"}],\"n\":5}");
    free(s);
    json_decref(v);
}

/* A pool result: an echoed secret in the output or the error message is gone. */
static void test_pool_result(void **state)
{
    (void)state;
    json_t *task = json_pack("{s:s, s:s, s:i, s:s}", "job_id", "J", "step_id", "s", "attempt", 1,
                             "kind", "tool.calc");
    json_t *r = phx_pool_result(task, json_pack("{s:s}", "echo", "got " KEY), NULL, "w", 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "output"), "echo")),
                        "got [REDACTED]");
    json_decref(r);
    phx_err err;
    phx_err_set(&err, "upstream", 1, "provider said: bad key hunter2-hunter2");
    r = phx_pool_result(task, NULL, &err, "w", 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
                        "provider said: bad key [REDACTED]");
    json_decref(r);
    json_decref(task);
}

/* The logger: the line written to stderr carries no secret. */
static void test_log_line(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    phx_log_init("test", PHX_LOG_INFO);
    phx_log_info("connecting with hunter2-hunter2 and %s", "Bearer " JWT);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    char line[4096] = "";
    ssize_t n = read(fds[0], line, sizeof(line) - 1);
    close(fds[0]);
    assert_true(n > 0);
    line[n] = '\0';
    assert_null(strstr(line, "hunter2"));
    assert_null(strstr(line, "eyJ"));
    assert_non_null(strstr(line, "connecting with [REDACTED] and Bearer [REDACTED]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_cases, setup),
        cmocka_unit_test_setup(test_buf, setup),
        cmocka_unit_test_setup(test_json, setup),
        cmocka_unit_test_setup(test_pool_result, setup),
        cmocka_unit_test_setup(test_log_line, setup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    phx_redact_clear();
    return rc;
}
