/* test_json_extract.c -- tool.json_extract (RFC 6901 pointers), tool.webhook's signature, the
 * tenant host allow-list matching and the PHX_TOOL_RATES parser, driven by tables. The pointer
 * rows are RFC 6901's own examples plus the error cases. */
#include "../../workers/tools/json_extract.h"
#include "../../workers/tools/tenancy.h"
#include "../../workers/tools/webhook.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* RFC 6901 section 5's document. */
static const char *rfc_doc = "{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2, "
                             "\"e^f\": 3, \"g|h\": 4, \"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7, "
                             "\"m~n\": 8}";

static const struct {
    const char *pointer;
    const char *want; /* compact JSON of the value, or an error code */
} ptr_cases[] = {
    {"", NULL}, /* the whole document: checked separately */
    {"/foo", "[\"bar\",\"baz\"]"},
    {"/foo/0", "\"bar\""},
    {"/", "0"},
    {"/a~1b", "1"},
    {"/c%d", "2"},
    {"/e^f", "3"},
    {"/g|h", "4"},
    {"/i\\j", "5"},
    {"/k\"l", "6"},
    {"/ ", "7"},
    {"/m~0n", "8"},
    {"/foo/2", "not_found"},
    {"/foo/-", "not_found"},
    {"/foo/01", "not_found"},
    {"/nope", "not_found"},
    {"/foo/0/x", "not_found"},
    {"foo", "invalid_input"},
    {"/m~2n", "invalid_input"},
    {"/m~", "invalid_input"},
};

static void test_pointers(void **state)
{
    (void)state;
    json_t *doc = json_loads(rfc_doc, 0, NULL);
    assert_non_null(doc);
    for (size_t i = 0; i < sizeof(ptr_cases) / sizeof(ptr_cases[0]); i++) {
        phx_err err;
        phx_err_clear(&err);
        json_t *v = phx_json_pointer(doc, ptr_cases[i].pointer, &err);
        if (!ptr_cases[i].want) {
            assert_ptr_equal(v, doc);
            continue;
        }
        char *got = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : strdup(err.code);
        if (strcmp(got, ptr_cases[i].want) != 0)
            fail_msg("pointer [%s]: got %s, want %s", ptr_cases[i].pointer, got, ptr_cases[i].want);
        free(got);
    }
    json_decref(doc);
}

static const struct {
    const char *input, *want; /* want: compact output, or "error:CODE" */
} step_cases[] = {
    {"{\"doc\": {\"a\": {\"b\": [10, 20]}}, \"pointer\": \"/a/b/1\"}", "{\"value\":20}"},
    {"{\"doc\": {\"a\": 1, \"b\": 2}, \"pointers\": {\"x\": \"/a\", \"y\": \"/b\"}}",
     "{\"values\":{\"x\":1,\"y\":2}}"},
    {"{\"doc\": {}, \"pointer\": \"/missing\", \"default\": null}", "{\"value\":null}"},
    {"{\"doc\": {}, \"pointer\": \"/missing\"}", "error:not_found"},
    {"{\"doc\": {}, \"pointers\": {\"x\": \"/m\"}}", "error:not_found"},
    {"{\"doc\": {}}", "error:invalid_input"},
    {"{\"pointer\": \"/a\"}", "error:invalid_input"},
    {"{\"doc\": {}, \"pointer\": \"/a\", \"pointers\": {}}", "error:invalid_input"},
    {"{\"doc\": {}, \"pointer\": 5}", "error:invalid_input"},
    {"{\"doc\": \"text\", \"pointer\": \"\"}", "{\"value\":\"text\"}"},
};

static void test_step(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(step_cases) / sizeof(step_cases[0]); i++) {
        json_t *in = json_loads(step_cases[i].input, 0, NULL);
        assert_non_null(in);
        phx_err err;
        phx_err_clear(&err);
        json_t *out = phx_json_extract_step(in, &err);
        char *got;
        if (out) {
            got = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
        } else {
            got = malloc(64);
            snprintf(got, 64, "error:%s", err.code);
            assert_false(err.retryable);
        }
        if (strcmp(got, step_cases[i].want) != 0)
            fail_msg("input %s: got %s, want %s", step_cases[i].input, got, step_cases[i].want);
        free(got);
        json_decref(out);
        json_decref(in);
    }
}

/* The signature a receiver computes: HMAC-SHA256(secret, "TS.BODY"), checked against a value
 * computed independently (python3 -c 'import hmac,hashlib; ...'). */
static void test_webhook_signature(void **state)
{
    (void)state;
    char sig[68];
    phx_webhook_sign("s3cret-s3cret", 1700000000, "{\"a\":1}", 7, sig);
    assert_string_equal(sig, "v1=dc275b9b10940ba0d7c1290581d12308aeda04610e93d3230e209ba3c7b3f866");
}

/* Tenant allow-list entries: exact names, or ".suffix" for a domain and its subdomains. */
static void test_host_match(void **state)
{
    (void)state;
    const char *list[] = {"api.example.com", ".corp.test"};
    static const struct {
        const char *host;
        int want;
    } rows[] = {
        {"api.example.com", 1},   {"API.Example.com", 1}, {"example.com", 0},
        {"x.api.example.com", 0}, {"corp.test", 1},       {"a.b.corp.test", 1},
        {"evilcorp.test", 0},     {"corp.test.evil", 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (phx_tenancy_host_match(rows[i].host, list, 2) != rows[i].want)
            fail_msg("host %s: want %d", rows[i].host, rows[i].want);
    assert_int_equal(phx_tenancy_host_match("any", NULL, 0), 0);
}

/* PHX_TOOL_RATES: spec -> the rate of each kind ("per_s/burst", "-" = none) or an error. */
static void test_tool_rates(void **state)
{
    (void)state;
    static const char *const kinds[] = {"tool.calc", "tool.http_fetch"};
    static const struct {
        const char *spec;
        int ok;
        const char *calc, *fetch;
    } rows[] = {
        {"", 1, "-", "-"},
        {"tool.calc=10/20", 1, "10/20", "-"},
        {"tool.calc=2.5, tool.http_fetch=1/1", 1, "2.5/3", "1/1"},
        {"tool.http_fetch=0.5", 1, "-", "0.5/1"},
        {"tool.nope=1", 0, NULL, NULL},
        {"tool.calc", 0, NULL, NULL},
        {"tool.calc=", 0, NULL, NULL},
        {"tool.calc=0", 0, NULL, NULL},
        {"tool.calc=-3", 0, NULL, NULL},
        {"tool.calc=abc", 0, NULL, NULL},
        {"tool.calc=5/0", 0, NULL, NULL},
        {"tool.calc=5/x", 0, NULL, NULL},
        {"tool.calc=5x", 0, NULL, NULL},
        {"tool.calc=nan", 0, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        phx_tool_rates r = {0};
        phx_err err;
        phx_err_clear(&err);
        int rc = phx_tool_rates_parse(rows[i].spec, kinds, 2, &r, &err);
        if ((rc == 0) != rows[i].ok)
            fail_msg("'%s': rc %d (%s)", rows[i].spec, rc, err.message);
        if (rc < 0) {
            assert_string_equal(err.code, "invalid_config");
            assert_null(r.rate);
            continue;
        }
        const char *want[2] = {rows[i].calc, rows[i].fetch};
        for (int k = 0; k < 2; k++) {
            char got[64] = "-";
            if (r.rate[k].per_s > 0)
                snprintf(got, sizeof(got), "%g/%ld", r.rate[k].per_s, r.rate[k].burst);
            if (strcmp(got, want[k]) != 0)
                fail_msg("'%s' %s: got %s, want %s", rows[i].spec, kinds[k], got, want[k]);
        }
        phx_tool_rates_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pointers),
        cmocka_unit_test(test_step),
        cmocka_unit_test(test_webhook_signature),
        cmocka_unit_test(test_host_match),
        cmocka_unit_test(test_tool_rates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
