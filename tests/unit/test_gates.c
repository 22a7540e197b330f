/* test_gates.c -- weaving safety gates into jobs and applying their verdicts, as tables of
 * cases (workers/planner/gates.c). JSON in the tables uses ' for " to stay readable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/planner/gates.h"

static json_t *js(const char *text)
{
    char *s = strdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t e;
    json_t *v = json_loads(s, 0, &e);
    if (!v)
        fail_msg("bad JSON in a case: %s: %s", e.text, s);
    free(s);
    return v;
}

/* One line per step: "id kind <needs> @role", steps separated by "; ". */
static void summary(const json_t *steps, char *out, size_t n)
{
    size_t off = 0, i, k;
    json_t *s, *need;
    out[0] = '\0';
    json_array_foreach(steps, i, s)
    {
        off += (size_t)snprintf(out + off, n - off, "%s%s %s <", i ? "; " : "",
                                json_string_value(json_object_get(s, "id")),
                                json_string_value(json_object_get(s, "kind")));
        json_array_foreach(json_object_get(s, "needs"), k, need) off +=
            (size_t)snprintf(out + off, n - off, "%s%s", k ? "," : "", json_string_value(need));
        off += (size_t)snprintf(out + off, n - off, ">");
        const char *role = json_string_value(json_object_get(json_object_get(s, "input"), "role"));
        if (role)
            off += (size_t)snprintf(out + off, n - off, " @%s", role);
    }
}

static const phx_gates all_on = {1, 1, 1, 1, 1, 1};
static const phx_gates code_off = {1, 0, 1, 1, 1, 1};

static const struct {
    const char *name;
    const phx_gates *g;
    const char *steps, *want;
} weave_cases[] = {
    {"no risky step: unchanged", &all_on,
     "[{'id':'a','kind':'tool.calc'},{'id':'b','kind':'tool.calc','needs':['a']}]",
     "a tool.calc <>; b tool.calc <a>"},
    {"exec.run: its code is scanned first", &all_on,
     "[{'id':'x','kind':'exec.run','input':{'code':'print(1)'}}]",
     "safety:x safety.scan <> @code; x exec.run <safety:x>"},
    {"code gate off by policy", &code_off,
     "[{'id':'x','kind':'exec.run','input':{'code':'print(1)'}}]", "x exec.run <>"},
    {"http_fetch: the gate waits for what renders the url", &all_on,
     "[{'id':'a','kind':'tool.calc'},{'id':'f','kind':'tool.http_fetch','needs':['a'],"
     "'input':{'url':'http://h/{{steps.a.output.value}}'}}]",
     "a tool.calc <>; safety:f safety.scan <a> @url; f tool.http_fetch <a,safety:f>"},
    {"goal: the plan step waits for the input gate", &all_on,
     "[{'id':'plan','kind':'llm.plan','input':{'goal':'do it'}}]",
     "safety:input safety.scan <> @user_prompt; plan llm.plan <safety:input>"},
    {"chat: own text, retrieved text, and the reply", &all_on,
     "[{'id':'k','kind':'kb.search'},{'id':'c','kind':'llm.chat','needs':['k'],'input':{"
     "'messages':[{'role':'user','content':'hi'},{'role':'user','content':'doc: "
     "{{steps.k.output.hits}}'}]}}]",
     "k kb.search <>; safety:c safety.scan <k> @user_prompt; safety:c.2 safety.scan <k> "
     "@retrieved_document; c llm.chat <k,safety:c,safety:c.2>; safety:reply safety.scan <c> "
     "@model_output"},
    {"chat fed by chat: model output role, one reply gate on the last", &all_on,
     "[{'id':'a','kind':'llm.chat','input':{'messages':[{'role':'user','content':'q'}]}},"
     "{'id':'b','kind':'llm.chat','needs':['a'],'input':{'messages':[{'role':'user',"
     "'content':'{{steps.a.output.text}}'}]}}]",
     "safety:a safety.scan <> @user_prompt; a llm.chat <safety:a>; safety:b safety.scan <a> "
     "@model_output; b llm.chat <a,safety:b>; safety:reply safety.scan <b> @model_output"},
    {"tool output feeding a chat", &all_on,
     "[{'id':'f','kind':'tool.calc'},{'id':'c','kind':'llm.chat','needs':['f'],'input':{"
     "'messages':[{'role':'user','content':'{{steps.f.output.value}}'}]}}]",
     "f tool.calc <>; safety:c safety.scan <f> @tool_output; c llm.chat <f,safety:c>; "
     "safety:reply safety.scan <c> @model_output"},
    {"empty code is left to the pool's validation", &all_on,
     "[{'id':'x','kind':'exec.run','input':{'code':''}}]", "x exec.run <>"},
};

static void test_weave(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(weave_cases) / sizeof(weave_cases[0]); i++) {
        json_t *steps = js(weave_cases[i].steps);
        json_t *woven = phx_gates_weave(steps, NULL, weave_cases[i].g, 0);
        char got[2048];
        summary(woven, got, sizeof(got));
        if (strcmp(got, weave_cases[i].want) != 0)
            fail_msg("%s:\n  got  %s\n  want %s", weave_cases[i].name, got, weave_cases[i].want);
        /* Stripping the gates gives back what the client wrote. */
        json_t *back = phx_gates_strip(woven);
        if (!json_equal(back, steps))
            fail_msg("%s: strip does not give the original back", weave_cases[i].name);
        json_decref(back);
        json_decref(woven);
        json_decref(steps);
    }
}

/* A goal job's plan: reviewed first, gated like a client's steps, and gate ids never collide
 * with the job's own (a plan step called "input" gets safety:input.2). */
static void test_weave_plan(void **state)
{
    (void)state;
    json_t *job = js("[{'id':'safety:input','kind':'safety.scan','gate':{'on':'input'}},"
                     "{'id':'plan','kind':'llm.plan','needs':['safety:input']}]");
    json_t *plan = js("[{'id':'input','kind':'exec.run','input':{'code':'id'}},"
                      "{'id':'b','kind':'tool.calc','needs':['input']}]");
    json_t *all = json_deep_copy(job);
    json_array_extend(all, plan);
    json_t *woven = phx_gates_weave(plan, all, &all_on, 1);
    char got[2048];
    summary(woven, got, sizeof(got));
    assert_string_equal(got, "safety:plan safety.review_plan <>; safety:input.2 safety.scan "
                             "<safety:plan> @code; input exec.run <safety:plan,safety:input.2>; "
                             "b tool.calc <input>");
    assert_true(json_equal(
        json_object_get(json_object_get(json_array_get(woven, 0), "input"), "steps"), plan));
    json_decref(woven);
    json_decref(all);
    json_decref(plan);
    json_decref(job);
}

static const struct {
    const char *name, *steps, *sid, *input, *outputs, *want;
} redact_in_cases[] = {
    {"redact replaces the code",
     "[{'id':'safety:x','kind':'safety.scan','gate':{'step':'x','path':['code'],'on':'input'}}]",
     "x", "{'code':'key=AKIA','lang':'sh'}",
     "{'safety:x':{'verdict':'redact','redacted_text':'key=[REDACTED]'}}",
     "{'code':'key=[REDACTED]','lang':'sh'}"},
    {"warn passes the text unchanged",
     "[{'id':'safety:x','kind':'safety.scan','gate':{'step':'x','path':['code'],'on':'input'}}]",
     "x", "{'code':'c'}", "{'safety:x':{'verdict':'warn'}}", "{'code':'c'}"},
    {"a message inside an array",
     "[{'id':'safety:c.2','kind':'safety.scan','gate':{'step':'c','path':['messages',1,"
     "'content'],'on':'input'}}]",
     "c", "{'messages':[{'content':'a'},{'content':'b'}]}",
     "{'safety:c.2':{'verdict':'redact','redacted_text':'B'}}",
     "{'messages':[{'content':'a'},{'content':'B'}]}"},
    {"another step's gate does not apply",
     "[{'id':'safety:y','kind':'safety.scan','gate':{'step':'y','path':['code'],'on':'input'}}]",
     "x", "{'code':'c'}", "{'safety:y':{'verdict':'redact','redacted_text':'R'}}", "{'code':'c'}"},
};

static void test_redact_input(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(redact_in_cases) / sizeof(redact_in_cases[0]); i++) {
        json_t *steps = js(redact_in_cases[i].steps), *input = js(redact_in_cases[i].input);
        json_t *outputs = js(redact_in_cases[i].outputs), *want = js(redact_in_cases[i].want);
        phx_gates_redact_input(steps, redact_in_cases[i].sid, input, outputs);
        if (!json_equal(input, want)) {
            char *got = json_dumps(input, JSON_COMPACT);
            fail_msg("%s: got %s", redact_in_cases[i].name, got);
        }
        json_decref(steps), json_decref(input), json_decref(outputs), json_decref(want);
    }
}

static void test_redact_output(void **state)
{
    (void)state;
    json_t *gate = js("{'id':'safety:reply','kind':'safety.scan','gate':{'step':'c','path':["
                      "'text'],'on':'output'}}");
    json_t *outputs = js("{'c':{'text':'the key is AKIA','model':'m'},'safety:reply':{'verdict':"
                         "'redact','redacted_text':'the key is [REDACTED]'}}");
    json_t *red = phx_gates_redact_output(gate, outputs);
    assert_non_null(red);
    assert_string_equal(json_string_value(json_object_get(red, "text")), "the key is [REDACTED]");
    assert_string_equal(json_string_value(json_object_get(red, "model")), "m");
    /* Applied once, nothing more to do: the planner's repair passes do not rewrite it again. */
    json_object_set_new(outputs, "c", red);
    assert_null(phx_gates_redact_output(gate, outputs));
    /* Not a redaction: nothing. */
    json_object_set_new(outputs, "safety:reply", js("{'verdict':'warn'}"));
    assert_null(phx_gates_redact_output(gate, outputs));
    json_decref(gate);
    json_decref(outputs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weave),
        cmocka_unit_test(test_weave_plan),
        cmocka_unit_test(test_redact_input),
        cmocka_unit_test(test_redact_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
