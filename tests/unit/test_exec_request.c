/* test_exec_request.c -- exec.run input validation and output shape, driven by a table.
 *
 * Every rejected input must be invalid_input and not retryable (the same input fails the same
 * way every time); accepted inputs must carry the defaults, capped limits and files. */
#include "../../workers/exec/exec.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const phx_exec_cfg cfg = {
    .def = {10000, 10000, 256, 64, 256, 64},
    .max = {60000, 60000, 2048, 512, 4096, 1024},
    .python = "/usr/bin/python3",
    .sh = "/bin/sh",
    .ro_binds = "/usr",
    .cgroup_mode = "off",
    .host_uid = 99999,
    .host_gid = 99999,
    .max_code_kb = 4,
};

typedef struct req_case {
    const char *input;
    const char *err; /* substring of the message, or NULL when valid */
} req_case;

static const req_case req_cases[] = {
    {"{\"lang\":\"python\",\"code\":\"print(1)\"}", NULL},
    {"{\"lang\":\"sh\",\"code\":\"\"}", NULL},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"stdin\":\"in\",\"files\":{\"a.txt\":\"x\",\"B-2_c\":\"\"}}",
     NULL},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"limits\":{\"wall_ms\":1,\"cpu_ms\":1,\"memory_mb\":1,"
     "\"pids\":1,\"output_kb\":1,\"disk_mb\":1}}",
     NULL},
    {"[]", "input must be an object"},
    {"{\"code\":\"x\"}", "lang is required"},
    {"{\"lang\":\"ruby\",\"code\":\"x\"}", "unsupported lang"},
    {"{\"lang\":5,\"code\":\"x\"}", "lang is required"},
    {"{\"lang\":\"sh\"}", "code is required"},
    {"{\"lang\":\"sh\",\"code\":[\"x\"]}", "code is required"},
    {"{\"lang\":\"sh\",\"code\":\"a\\u0000b\"}", "NUL"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"extra\":1}", "unknown field extra"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"stdin\":1}", "stdin must be a string"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"limits\":[]}", "limits must be an object"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"limits\":{\"gpus\":1}}", "unknown limit gpus"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"limits\":{\"wall_ms\":0}}", "positive integer"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"limits\":{\"wall_ms\":-1}}", "positive integer"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"limits\":{\"wall_ms\":1.5}}", "positive integer"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"limits\":{\"wall_ms\":\"9\"}}", "positive integer"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"files\":[]}", "files must be an object"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"files\":{\"../x\":\"\"}}", "bad file name"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"files\":{\"a/b\":\"\"}}", "bad file name"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"files\":{\".\":\"\"}}", "bad file name"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"files\":{\"..\":\"\"}}", "bad file name"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"files\":{\".hidden\":\"\"}}", "bad file name"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"files\":{\"\":\"\"}}", "bad file name"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"files\":{\"a b\":\"\"}}", "bad file name"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"files\":{\"a\\nb\":\"\"}}", "bad file name"},
    {"{\"lang\":\"sh\",\"code\":\"x\",\"files\":{\"a\":1}}", "must be a string"},
};

static void test_req_case(void **state)
{
    const req_case *c = *state;
    json_error_t je;
    json_t *in = json_loads(c->input, JSON_ALLOW_NUL, &je);
    assert_non_null(in);
    phx_exec_req req;
    phx_err err;
    phx_err_clear(&err);
    int rc = phx_exec_req_parse(in, &cfg, &req, &err);
    if (!c->err) {
        if (rc != 0)
            fail_msg("%s: unexpected error %s", c->input, err.message);
    } else {
        assert_int_equal(rc, -1);
        assert_string_equal(err.code, "invalid_input");
        assert_int_equal(err.retryable, 0);
        if (!strstr(err.message, c->err))
            fail_msg("%s: message [%s] lacks [%s]", c->input, err.message, c->err);
    }
    json_decref(in);
}

static void test_req_defaults_and_caps(void **state)
{
    (void)state;
    json_t *in = json_loads("{\"lang\":\"python\",\"code\":\"x\",\"limits\":{\"wall_ms\":999999,"
                            "\"memory_mb\":100}}",
                            0, NULL);
    phx_exec_req req;
    phx_err err;
    assert_int_equal(phx_exec_req_parse(in, &cfg, &req, &err), 0);
    assert_int_equal(req.lang, PHX_EXEC_LANG_PYTHON);
    assert_int_equal(req.lim.wall_ms, 60000); /* capped */
    assert_int_equal(req.lim.memory_mb, 100); /* as asked */
    assert_int_equal(req.lim.cpu_ms, 10000);  /* default */
    assert_int_equal(req.lim.output_kb, 256);
    json_decref(in);
}

static void test_req_sizes(void **state)
{
    (void)state;
    phx_exec_req req;
    phx_err err;
    char *big = malloc(8192);
    memset(big, 'x', 8191);
    big[8191] = 0;
    json_t *in = json_pack("{s:s, s:s}", "lang", "sh", "code", big);
    assert_int_equal(phx_exec_req_parse(in, &cfg, &req, &err), -1); /* > max_code_kb */
    json_decref(in);
    in = json_pack("{s:s, s:s, s:{s:s}}", "lang", "sh", "code", "x", "files", "f", big);
    assert_int_equal(phx_exec_req_parse(in, &cfg, &req, &err), -1);
    assert_string_equal(err.code, "invalid_input");
    json_decref(in);
    free(big);
    /* more files than the limit */
    in = json_pack("{s:s, s:s, s:{}}", "lang", "sh", "code", "x", "files");
    for (int i = 0; i <= PHX_EXEC_MAX_FILES; i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%d", i);
        json_object_set_new(json_object_get(in, "files"), name, json_string(""));
    }
    assert_int_equal(phx_exec_req_parse(in, &cfg, &req, &err), -1);
    json_decref(in);
}

static void test_result_json(void **state)
{
    (void)state;
    phx_exec_result res = {.exit_code = 137, .signo = 9, .timed_out = 1, .duration_ms = 5};
    res.out = malloc(5);
    memcpy(res.out, "a\0b\xff", 5); /* with its NUL terminator */
    res.out_len = 4;
    res.err = strdup("");
    json_t *o = phx_exec_result_json(&res);
    assert_string_equal(json_string_value(json_object_get(o, "stdout")), "a?b?");
    assert_string_equal(json_string_value(json_object_get(o, "signal")), "SIGKILL");
    assert_int_equal(json_integer_value(json_object_get(o, "exit_code")), 137);
    assert_true(json_is_true(json_object_get(o, "timed_out")));
    assert_true(json_is_false(json_object_get(o, "oom_killed")));
    assert_int_equal(json_object_size(o), 10);
    json_decref(o);
    phx_exec_result_free(&res);
}

int main(void)
{
    size_t n = sizeof(req_cases) / sizeof(req_cases[0]);
    struct CMUnitTest *tests = calloc(n + 3, sizeof(*tests));
    for (size_t i = 0; i < n; i++)
        tests[i] = (struct CMUnitTest){req_cases[i].input, test_req_case, NULL, NULL,
                                       (void *)&req_cases[i]};
    tests[n] = (struct CMUnitTest)cmocka_unit_test(test_req_defaults_and_caps);
    tests[n + 1] = (struct CMUnitTest)cmocka_unit_test(test_req_sizes);
    tests[n + 2] = (struct CMUnitTest)cmocka_unit_test(test_result_json);
    int rc = _cmocka_run_group_tests("exec_request", tests, n + 3, NULL, NULL);
    free(tests);
    return rc;
}
