/* test_dag.c -- DAG checks and template rendering, as tables of cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "../../lib/dag.h"

/* steps JSON -> NULL when valid, else a substring of one of the reasons. */
static const struct {
    const char *name, *steps, *want;
} check_cases[] = {
    {"chain",
     "[{\"id\":\"a\",\"kind\":\"tool.calc\"},{\"id\":\"b\",\"kind\":\"tool.calc\",\"needs\":[\"a\"]"
     "}]",
     NULL},
    {"fan-out/fan-in",
     "[{\"id\":\"a\",\"kind\":\"tool.calc\"},{\"id\":\"b\",\"kind\":\"tool.calc\",\"needs\":[\"a\"]"
     "},"
     "{\"id\":\"c\",\"kind\":\"tool.calc\",\"needs\":[\"a\"]},{\"id\":\"d\",\"kind\":\"tool.calc\","
     "\"needs\":[\"b\",\"c\"],\"input\":{\"expr\":\"{{steps.a.output.value}}+{{steps.b.output."
     "value}}\"}}]",
     NULL},
    {"cycle",
     "[{\"id\":\"a\",\"kind\":\"tool.calc\",\"needs\":[\"b\"]},{\"id\":\"b\",\"kind\":\"tool."
     "calc\",\"needs\":[\"a\"]}]",
     "cycle"},
    {"long cycle",
     "[{\"id\":\"a\",\"kind\":\"tool.calc\",\"needs\":[\"c\"]},{\"id\":\"b\",\"kind\":\"tool."
     "calc\",\"needs\":[\"a\"]},"
     "{\"id\":\"c\",\"kind\":\"tool.calc\",\"needs\":[\"b\"]}]",
     "cycle"},
    {"self need", "[{\"id\":\"a\",\"kind\":\"tool.calc\",\"needs\":[\"a\"]}]", "needs itself"},
    {"unknown need", "[{\"id\":\"a\",\"kind\":\"tool.calc\",\"needs\":[\"zz\"]}]",
     "unknown step zz"},
    {"duplicate id",
     "[{\"id\":\"a\",\"kind\":\"tool.calc\"},{\"id\":\"a\",\"kind\":\"tool.calc\"}]",
     "duplicate id"},
    {"unknown kind", "[{\"id\":\"a\",\"kind\":\"tool\"}]", "unknown step kind"},
    {"unknown pool", "[{\"id\":\"a\",\"kind\":\"magic.wand\"}]", "unknown step kind magic.wand"},
    {"template not needed",
     "[{\"id\":\"a\",\"kind\":\"tool.calc\"},{\"id\":\"b\",\"kind\":\"tool.calc\",\"input\":{"
     "\"expr\":\"{{steps.a.output.value}}\"}}]",
     "not in its needs"},
    {"template transitive need ok",
     "[{\"id\":\"a\",\"kind\":\"tool.calc\"},{\"id\":\"b\",\"kind\":\"tool.calc\",\"needs\":[\"a\"]"
     "},"
     "{\"id\":\"c\",\"kind\":\"tool.calc\",\"needs\":[\"b\"],\"input\":{\"x\":[\"{{steps.a.output."
     "value}}\"]}}]",
     NULL},
    {"template unknown step",
     "[{\"id\":\"a\",\"kind\":\"tool.calc\",\"input\":{\"expr\":\"{{steps.q.output.value}}\"}}]",
     "unknown step q"},
    {"template bad form",
     "[{\"id\":\"a\",\"kind\":\"tool.calc\",\"input\":{\"expr\":\"{{nope}}\"}}]",
     "not of the form"},
    /* A plan under review names its own steps (examples/safety-review-plan.json was
     * rejected with "template references unknown step get"). */
    {"review_plan: the plan's templates are data",
     "[{\"id\":\"r\",\"kind\":\"safety.review_plan\",\"input\":{\"steps\":[{\"id\":"
     "\"get\",\"kind\":\"tool.http_fetch\"},{\"id\":\"run\",\"kind\":\"exec.run\","
     "\"needs\":[\"get\"],\"input\":{\"code\":\"{{steps.get.output.body}}\"}}]}}]",
     NULL},
    {"review_plan: its other members are templates",
     "[{\"id\":\"r\",\"kind\":\"safety.review_plan\",\"input\":{\"steps\":[],"
     "\"principal\":\"{{steps.q.output.p}}\"}}]",
     "unknown step q"},
    {"review_plan: a templated plan is this job's",
     "[{\"id\":\"r\",\"kind\":\"safety.review_plan\",\"input\":{\"steps\":"
     "\"{{steps.plan.output.steps}}\"}}]",
     "unknown step plan"},
    {"other kinds: nested steps are templates",
     "[{\"id\":\"r\",\"kind\":\"tool.calc\",\"input\":{\"steps\":[{\"x\":"
     "\"{{steps.get.output.body}}\"}]}}]",
     "unknown step get"},
    {"empty", "[]", "1 to"},
    {"not an array", "{}", "1 to"},
};

static void test_dag_check(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
        json_t *steps = json_loads(check_cases[i].steps, 0, NULL);
        assert_non_null(steps);
        json_t *reasons = NULL;
        int rc = phx_dag_check(steps, &reasons);
        if (!check_cases[i].want) {
            if (rc != 0)
                fail_msg("%s: expected valid, got %s", check_cases[i].name, json_dumps(reasons, 0));
        } else {
            if (rc == 0)
                fail_msg("%s: expected '%s', got valid", check_cases[i].name, check_cases[i].want);
            char *all = json_dumps(reasons, 0);
            if (!strstr(all, check_cases[i].want))
                fail_msg("%s: expected '%s' in %s", check_cases[i].name, check_cases[i].want, all);
            free(all);
        }
        json_decref(reasons);
        json_decref(steps);
    }
}

/* A rendering's verdict: got (consumed) must equal the JSON want, or, want NULL, be NULL with
 * a non-retryable template_unresolved in err. */
static void expect_rendered(const char *name, json_t *got, const phx_err *err, const char *want)
{
    if (!want) {
        if (got)
            fail_msg("%s: expected an error, got %s", name, json_dumps(got, 0));
        assert_string_equal(err->code, "template_unresolved");
        assert_int_equal(err->retryable, 0);
        return;
    }
    json_t *w = json_loads(want, 0, NULL);
    assert_non_null(w);
    if (!got || !json_equal(got, w))
        fail_msg("%s: got %s want %s (%s)", name, got ? json_dumps(got, 0) : "NULL", want,
                 err->message);
    json_decref(w);
    json_decref(got);
}

/* input JSON rendered against outputs -> expected JSON, or NULL for an error. */
static const struct {
    const char *name, *input, *want;
} render_cases[] = {
    {"embedded int", "{\"expr\":\"{{steps.a.output.value}} + 1\"}", "{\"expr\":\"14 + 1\"}"},
    {"whole keeps type", "{\"n\":\"{{steps.a.output.value}}\"}", "{\"n\":14}"},
    {"spaces inside braces", "{\"n\":\"{{ steps.a.output.value }}\"}", "{\"n\":14}"},
    {"real shortest", "{\"e\":\"x={{steps.r.output.value}}\"}", "{\"e\":\"x=0.1\"}"},
    {"string raw", "{\"s\":\"<{{steps.s.output.text}}>\"}", "{\"s\":\"<hi \\\"there\\\">\"}"},
    {"object embedded as json", "{\"s\":\"{{steps.t.output}}!\"}",
     "{\"s\":\"{\\\"text\\\":\\\"hi\\\"}!\"}"},
    {"nested path and index", "{\"v\":\"{{steps.s.output.list.1.k}}\"}", "{\"v\":\"b\"}"},
    {"two templates", "{\"e\":\"{{steps.a.output.value}}*{{steps.a.output.value}}\"}",
     "{\"e\":\"14*14\"}"},
    {"arrays recurse",
     "{\"l\":[\"{{steps.a.output.value}}\",2,{\"x\":\"{{steps.a.output.value}}\"}]}",
     "{\"l\":[14,2,{\"x\":14}]}"},
    {"no template", "{\"a\":1,\"b\":\"{x}\",\"c\":null}", "{\"a\":1,\"b\":\"{x}\",\"c\":null}"},
    {"unclosed braces literal", "{\"a\":\"{{steps.a\"}", "{\"a\":\"{{steps.a\"}"},
    {"missing field", "{\"e\":\"{{steps.a.output.nope}}\"}", NULL},
    {"missing step", "{\"e\":\"{{steps.zz.output.value}}\"}", NULL},
    {"index out of range", "{\"e\":\"{{steps.s.output.list.9}}\"}", NULL},
};

static void test_dag_render(void **state)
{
    (void)state;
    json_t *outputs = json_loads("{\"a\":{\"value\":14},\"r\":{\"value\":0.1},"
                                 "\"t\":{\"text\":\"hi\"},\"s\":{\"text\":\"hi \\\"there\\\"\","
                                 "\"list\":[{\"k\":\"a\"},{\"k\":\"b\"}]}}",
                                 0, NULL);
    assert_non_null(outputs);
    for (size_t i = 0; i < sizeof(render_cases) / sizeof(render_cases[0]); i++) {
        json_t *in = json_loads(render_cases[i].input, 0, NULL);
        assert_non_null(in);
        phx_err err;
        phx_err_clear(&err);
        expect_rendered(render_cases[i].name, phx_dag_render(in, outputs, &err), &err,
                        render_cases[i].want);
        json_decref(in);
    }
    json_decref(outputs);
}

/* phx_dag_render_step: step JSON -> its dispatched input, or NULL for an error. */
static const struct {
    const char *name, *step, *want;
} step_cases[] = {
    {"plain step renders",
     "{\"kind\":\"tool.calc\",\"input\":{\"e\":\"{{steps.a.output.value}}\"}}", "{\"e\":14}"},
    {"no input", "{\"kind\":\"tool.calc\"}", "{}"},
    {"review_plan keeps the plan, renders the rest",
     "{\"kind\":\"safety.review_plan\",\"input\":{\"principal\":\"p{{steps.a.output.value}}\","
     "\"steps\":[{\"id\":\"x\",\"input\":{\"e\":\"{{steps.get.output.body}}\"}}]}}",
     "{\"principal\":\"p14\",\"steps\":[{\"id\":\"x\",\"input\":{\"e\":\"{{steps.get."
     "output.body}}\"}}]}"},
    {"review_plan of an earlier step's plan",
     "{\"kind\":\"safety.review_plan\",\"input\":{\"steps\":\"{{steps.p.output.steps}}\"}}",
     "{\"steps\":[{\"id\":\"y\"}]}"},
    {"review_plan, bad template elsewhere",
     "{\"kind\":\"safety.review_plan\",\"input\":{\"principal\":\"{{steps.zz.output.p}}\","
     "\"steps\":[]}}",
     NULL},
};

static void test_dag_render_step(void **state)
{
    (void)state;
    json_t *outputs =
        json_loads("{\"a\":{\"value\":14},\"p\":{\"steps\":[{\"id\":\"y\"}]}}", 0, NULL);
    assert_non_null(outputs);
    for (size_t i = 0; i < sizeof(step_cases) / sizeof(step_cases[0]); i++) {
        json_t *step = json_loads(step_cases[i].step, 0, NULL);
        assert_non_null(step);
        phx_err err;
        phx_err_clear(&err);
        expect_rendered(step_cases[i].name, phx_dag_render_step(step, outputs, &err), &err,
                        step_cases[i].want);
        json_decref(step);
    }
    json_decref(outputs);
}

/* Many references to a large output: refused once the substituted bytes pass one message,
 * before the planner builds gigabytes (embedded text and whole-value copies alike). */
static void test_dag_render_bounded(void **state)
{
    (void)state;
    char *big = malloc(100001);
    assert_non_null(big);
    memset(big, 'x', 100000);
    big[100000] = '\0';
    json_t *outputs = json_pack("{s:{s:s}}", "a", "t", big);
    free(big);
    json_t *text = json_string(""), *arr = json_array();
    for (int i = 0; i < 11; i++) {
        json_t *t = json_sprintf("%s{{steps.a.output.t}}", json_string_value(text));
        json_decref(text);
        text = t;
        json_array_append_new(arr, json_string("{{steps.a.output}}"));
    }
    json_t *ok = json_pack("[s,s]", "{{steps.a.output}}", "n={{steps.a.output.t}}");
    json_t *inputs[] = {text, arr};
    for (int i = 0; i < 2; i++) {
        phx_err err;
        phx_err_clear(&err);
        json_t *got = phx_dag_render(inputs[i], outputs, &err);
        if (got)
            fail_msg("input %d: rendered %zu bytes", i, json_dumpb(got, NULL, 0, JSON_COMPACT));
        assert_string_equal(err.code, "input_too_large");
        assert_int_equal(err.retryable, 0);
    }
    phx_err err;
    json_t *got = phx_dag_render(ok, outputs, &err); /* 200 KB: well within a message */
    assert_non_null(got);
    json_decref(got);
    json_decref(ok);
    json_decref(text);
    json_decref(arr);
    json_decref(outputs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dag_check),
        cmocka_unit_test(test_dag_render),
        cmocka_unit_test(test_dag_render_step),
        cmocka_unit_test(test_dag_render_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
