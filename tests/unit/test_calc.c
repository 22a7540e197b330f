/* test_calc.c -- tool.calc: the evaluator and the step, driven by tables.
 *
 * Each table row becomes its own cmocka test (named after the expression) so a failure report
 * says which input broke rather than "row 17". Rows expect either a value or an error whose
 * message contains a given substring; every error must be "invalid_input" and non-retryable. */
#include "../../workers/tools/calc.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct calc_case {
    const char *expr;
    double value;    /* expected value when err is NULL */
    const char *err; /* expected substring of the error message, or NULL */
} calc_case;

static const calc_case calc_cases[] = {
    /* values: precedence and associativity */
    {"1 + 2", 3, NULL},
    {"14 + 1", 15, NULL}, /* the templated form "{{steps.a.value}} + 1" */
    {"2 + 3 * 4", 14, NULL},
    {"(2 + 3) * 4", 20, NULL},
    {"10 - 4 - 3", 3, NULL},
    {"100 / 10 / 5", 2, NULL},
    {"8 / 2 * 4", 16, NULL},
    {"2 * 3 % 4", 2, NULL},
    {"1 - 2 * 3 ^ 2", -17, NULL},
    {"2 ^ 3 ^ 2", 512, NULL},
    {"-2^2", -4, NULL},
    {"(-2)^2", 4, NULL},
    {"2^-1", 0.5, NULL},
    {"2^-2^2", 0.0625, NULL},
    {"-3 - -3", 0, NULL},
    {"+5", 5, NULL},
    {"--5", 5, NULL},
    {"-(2 + 3)", -5, NULL},
    {"2 * (3 + (4 - 1)) / 3", 4, NULL},
    {"0^0", 1, NULL},
    {"2^0.5", 1.4142135623730951, NULL},
    /* values: remainder */
    {"7 % 3", 1, NULL},
    {"-7 % 3", -1, NULL},
    {"7.5 % 2", 1.5, NULL},
    /* values: number syntax and whitespace */
    {"1e3", 1000, NULL},
    {"2.5E-1", 0.25, NULL},
    {"1e+2", 100, NULL},
    {".5 + .25", 0.75, NULL},
    {"5.", 5, NULL},
    {"007", 7, NULL},
    {" \t 42 \r\n", 42, NULL},
    {"0.1 + 0.2", 0.30000000000000004, NULL},
    {"1/3", 1.0 / 3.0, NULL},
    {"1e-400", 0, NULL}, /* underflow is not an error */
    {"1.7976931348623157e308", 1.7976931348623157e308, NULL},
    /* errors: arithmetic */
    {"1 / 0", 0, "division by zero at position 3"},
    {"1 / (2 - 2)", 0, "division by zero at position 3"},
    {"5 % 0", 0, "modulo by zero at position 3"},
    {"0^-1", 0, "division by zero"},
    {"1e999", 0, "number out of range at position 1"},
    {"1e308 * 10", 0, "overflow: result out of range at position 7"},
    {"2^1024", 0, "overflow"},
    {"1e308 + 1e308", 0, "overflow"},
    {"-1e308 - 1e308", 0, "overflow"},
    {"(-8)^(1/3)", 0, "not a real number"},
    /* errors: syntax */
    {"", 0, "empty expression"},
    {"   ", 0, "empty expression"},
    {"abc", 0, "unexpected 'a' at position 1"},
    {"1 + x", 0, "unexpected 'x' at position 5"},
    {"2 3", 0, "unexpected '3' at position 3"},
    {"1 + 2)", 0, "unmatched ')' at position 6"},
    {"(1 + 2", 0, "missing ')' for '(' at position 1"},
    {"((1)", 0, "missing ')'"},
    {"()", 0, "unexpected ')' at position 2"},
    {"1 +", 0, "unexpected end of expression at position 4"},
    {"*1", 0, "unexpected '*' at position 1"},
    {"1 ** 2", 0, "unexpected '*' at position 4"},
    {"1 ^^ 2", 0, "unexpected '^'"},
    {"1e", 0, "malformed exponent at position 2"},
    {"1e+", 0, "malformed exponent"},
    {".", 0, "malformed number at position 1"},
    {"1..2", 0, "unexpected '.' at position 3"},
    {"0x10", 0, "unexpected 'x'"},
    {"inf", 0, "unexpected 'i'"},
    {"nan", 0, "unexpected 'n'"},
    {"2(3)", 0, "unexpected '('"},
    {"1,5", 0, "unexpected ','"},
    {"1 + 2 # comment", 0, "unexpected '#'"},
    {"\xff", 0, "unexpected byte 0xff at position 1"},
    {"{{steps.a.value}} + 1", 0, "unexpected '{'"}, /* a template that was never filled in */
};

/* Rows that need long or deeply nested input, built at start-up. */
enum { CALC_GEN_MAX = 8 };
static calc_case calc_gen[CALC_GEN_MAX];
static char *calc_gen_bufs[CALC_GEN_MAX];
static size_t calc_ngen;

static char *calc_repeat(const char *pre, const char *mid, int n, const char *post)
{
    size_t len = strlen(pre) + strlen(mid) * (size_t)n + strlen(post) + 1;
    char *s = malloc(len), *w = s;
    assert_non_null(s);
    w = stpcpy(w, pre);
    for (int i = 0; i < n; i++)
        w = stpcpy(w, mid);
    stpcpy(w, post);
    return s;
}

static char *calc_nested_parens(int n)
{
    char *open = calc_repeat("", "(", n, "1");
    char *s = calc_repeat(open, ")", n, "");
    free(open);
    return s;
}

static void calc_add_gen(char *expr, double value, const char *err)
{
    assert_true(calc_ngen < CALC_GEN_MAX);
    calc_gen_bufs[calc_ngen] = expr;
    calc_gen[calc_ngen++] = (calc_case){expr, value, err};
}

static void calc_build_gen(void)
{
    calc_add_gen(calc_nested_parens(PHX_CALC_MAX_DEPTH), 1, NULL);
    calc_add_gen(calc_nested_parens(PHX_CALC_MAX_DEPTH + 1), 0, "nesting deeper than 64");
    calc_add_gen(calc_repeat("", "-", PHX_CALC_MAX_DEPTH, "1"), 1, NULL);
    calc_add_gen(calc_repeat("", "-", PHX_CALC_MAX_DEPTH + 1, "1"), 0, "nesting deeper than 64");
    calc_add_gen(calc_repeat("2", "^1", PHX_CALC_MAX_DEPTH + 1, ""), 0, "nesting deeper than 64");
    /* "1" + 2047 * "+1" is 4095 bytes; one more space makes exactly the limit. */
    calc_add_gen(calc_repeat("1", "+1", 2047, " "), 2048, NULL);
    calc_add_gen(calc_repeat("1", "+1", 2047, "  "), 0, "expression longer than 4096 bytes");
}

static void test_calc_case(void **state)
{
    const calc_case *c = *state;
    phx_err err;
    phx_err_clear(&err);
    double v = -12345;
    int rc = phx_calc_eval(c->expr, &v, &err);
    if (!c->err) {
        if (rc != 0)
            fail_msg("\"%.60s\": unexpected error: %s", c->expr, err.message);
        double tol = 1e-12 * fmax(1, fabs(c->value));
        if (!(fabs(v - c->value) <= tol))
            fail_msg("\"%.60s\": got %.17g, want %.17g", c->expr, v, c->value);
        return;
    }
    if (rc != -1)
        fail_msg("\"%.60s\": got value %.17g, want error \"%s\"", c->expr, v, c->err);
    assert_string_equal(err.code, "invalid_input");
    assert_int_equal(err.retryable, 0);
    if (!strstr(err.message, c->err))
        fail_msg("\"%.60s\": error \"%s\" lacks \"%s\"", c->expr, err.message, c->err);
    assert_true(v == -12345); /* *out untouched on failure */
}

/* --- the step: JSON in, JSON out ------------------------------------------------------- */

typedef struct calc_step_case {
    const char *name;
    const char *input; /* JSON text */
    const char *want;  /* expected output JSON text (integer vs real matters), or NULL */
    const char *err;   /* expected error substring when want is NULL */
} calc_step_case;

static const calc_step_case calc_step_cases[] = {
    {"templated", "{\"expr\": \"14 + 1\"}", "{\"value\": 15}", NULL},
    {"real", "{\"expr\": \"1/2\"}", "{\"value\": 0.5}", NULL},
    {"integral_real_is_int", "{\"expr\": \"2.5 * 2\"}", "{\"value\": 5}", NULL},
    {"two_pow_53_int", "{\"expr\": \"2^53\"}", "{\"value\": 9007199254740992}", NULL},
    {"minus_two_pow_53_int", "{\"expr\": \"-2^53\"}", "{\"value\": -9007199254740992}", NULL},
    {"beyond_2_53_real", "{\"expr\": \"2^53 + 2\"}", "{\"value\": 9007199254740994.0}", NULL},
    {"big_real", "{\"expr\": \"1e300\"}", "{\"value\": 1e300}", NULL},
    {"negative_zero_int", "{\"expr\": \"-0\"}", "{\"value\": 0}", NULL},
    {"extra_keys_ignored", "{\"expr\": \"6*7\", \"note\": \"x\"}", "{\"value\": 42}", NULL},
    {"missing_expr", "{}", NULL, "missing \"expr\""},
    {"expr_number", "{\"expr\": 5}", NULL, "\"expr\" must be a string"},
    {"expr_null", "{\"expr\": null}", NULL, "\"expr\" must be a string"},
    {"not_object", "[\"1+1\"]", NULL, "input must be an object"},
    {"nul_in_expr", "{\"expr\": \"1\\u00002\"}", NULL, "NUL"},
    {"eval_error", "{\"expr\": \"1/0\"}", NULL, "division by zero"},
};

static void test_calc_step_case(void **state)
{
    const calc_step_case *c = *state;
    json_error_t jerr;
    json_t *in = json_loads(c->input, JSON_ALLOW_NUL, &jerr);
    assert_non_null(in);
    phx_err err;
    phx_err_clear(&err);
    json_t *out = phx_calc_step(in, &err);
    if (c->want) {
        if (!out)
            fail_msg("%s: unexpected error: %s", c->name, err.message);
        json_t *want = json_loads(c->want, 0, &jerr);
        assert_non_null(want);
        if (!json_equal(out, want)) {
            char got[256] = "";
            json_dumpb(out, got, sizeof(got) - 1, JSON_COMPACT);
            fail_msg("%s: got %s, want %s", c->name, got, c->want);
        }
        json_decref(want);
    } else {
        assert_null(out);
        assert_string_equal(err.code, "invalid_input");
        assert_int_equal(err.retryable, 0);
        if (!strstr(err.message, c->err))
            fail_msg("%s: error \"%s\" lacks \"%s\"", c->name, err.message, c->err);
    }
    json_decref(out);
    json_decref(in);
}

static void test_calc_null_expr(void **state)
{
    (void)state;
    phx_err err;
    double v;
    assert_int_equal(phx_calc_eval(NULL, &v, &err), -1);
    assert_string_equal(err.code, "invalid_input");
    assert_int_equal(phx_calc_eval("1/0", &v, NULL), -1); /* err is optional */
}

/* "eval \"<expr>\"" with control and non-ASCII bytes escaped, cut to fit the buffer. */
static void calc_test_name(char *buf, size_t size, const char *expr)
{
    size_t w = (size_t)snprintf(buf, size, "eval \"");
    const unsigned char *p = (const unsigned char *)expr;
    for (; *p && w + 10 < size; p++) {
        if (*p >= 0x20 && *p < 0x7f)
            buf[w++] = (char)*p;
        else
            w += (size_t)snprintf(buf + w, size - w, "\\x%02x", *p);
    }
    snprintf(buf + w, size - w, "%s\"", *p ? "..." : "");
}

int main(void)
{
    calc_build_gen();
    size_t nstatic = sizeof(calc_cases) / sizeof(calc_cases[0]);
    size_t nstep = sizeof(calc_step_cases) / sizeof(calc_step_cases[0]);
    size_t n = nstatic + calc_ngen + nstep + 1;
    struct CMUnitTest *tests = calloc(n, sizeof(*tests));
    char(*names)[80] = calloc(n, sizeof(*names));
    assert_non_null(tests);
    assert_non_null(names);

    size_t t = 0;
    for (size_t i = 0; i < nstatic + calc_ngen; i++, t++) {
        const calc_case *c = i < nstatic ? &calc_cases[i] : &calc_gen[i - nstatic];
        calc_test_name(names[t], sizeof(names[t]), c->expr);
        tests[t] = (struct CMUnitTest){names[t], test_calc_case, NULL, NULL, (void *)c};
    }
    for (size_t i = 0; i < nstep; i++, t++) {
        snprintf(names[t], sizeof(names[t]), "step %s", calc_step_cases[i].name);
        tests[t] = (struct CMUnitTest){names[t], test_calc_step_case, NULL, NULL,
                                       (void *)&calc_step_cases[i]};
    }
    tests[t++] = (struct CMUnitTest){"eval NULL", test_calc_null_expr, NULL, NULL, NULL};

    int rc = _cmocka_run_group_tests("calc", tests, t, NULL, NULL);
    for (size_t i = 0; i < calc_ngen; i++)
        free(calc_gen_bufs[i]);
    free(names);
    free(tests);
    return rc;
}
