/* test_sentinel_detect.c -- which messages are security signals for phx-sentinel, counted
 * against what subject (workers/sentinel/detect.c), as a table of cases. JSON in the table uses
 * ' for " to stay readable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/sentinel/detect.h"

static json_t *js(const char *text)
{
    char *s = strdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t e;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("bad JSON in a case: %s: %s", e.text, s);
    free(s);
    return v;
}

typedef struct dcase {
    const char *name;
    char src;           /* e = event, r = result (tenant header below), a = auth record */
    const char *header; /* phx-tenant of a result, NULL = none */
    const char *json;
    /* expected: "" = no signal, else "RULE SUBJECT_KIND SUBJECT [seccomp]" */
    const char *want;
} dcase;

static const char *const kinds[] = {"tenant", "key", "principal", "addr"};

static const dcase cases[] = {
    {"block verdict", 'e', NULL,
     "{'type':'safety.verdict','tenant':'t1','job_id':'j','detail':{'kind':'safety.scan',"
     "'verdict':'block','detectors':'inject:x'}}",
     "blocks tenant t1"},
    {"redact verdict", 'e', NULL,
     "{'type':'safety.verdict','tenant':'t1','job_id':'j','detail':{'verdict':'redact'}}",
     "blocks tenant t1"},
    {"warn verdict is not a block", 'e', NULL,
     "{'type':'safety.verdict','tenant':'t1','job_id':'j','detail':{'verdict':'warn'}}", ""},
    {"verdict without a tenant", 'e', NULL,
     "{'type':'safety.verdict','job_id':'j','detail':{'verdict':'block'}}", ""},
    {"verdict with a non-object detail", 'e', NULL,
     "{'type':'safety.verdict','tenant':'t1','job_id':'j','detail':'block'}", ""},
    {"tool dispatched", 'e', NULL,
     "{'type':'step.dispatched','tenant':'t2','job_id':'j','detail':'tool.http_fetch'}",
     "tool_use tenant t2"},
    {"exec dispatched", 'e', NULL,
     "{'type':'step.dispatched','tenant':'t2','job_id':'j','detail':'exec.run'}",
     "tool_use tenant t2"},
    {"llm dispatch is not tool use", 'e', NULL,
     "{'type':'step.dispatched','tenant':'t2','job_id':'j','detail':'llm.chat'}", ""},
    {"other events", 'e', NULL, "{'type':'job.succeeded','tenant':'t2','job_id':'j'}", ""},
    {"exec timeout", 'r', "t3",
     "{'job_id':'j','step_id':'s','kind':'exec.run','status':'ok','output':{'timed_out':true,"
     "'oom_killed':false,'signal':'SIGKILL'}}",
     "sandbox_kills tenant t3"},
    {"exec OOM", 'r', "t3",
     "{'job_id':'j','step_id':'s','kind':'exec.run','status':'ok','output':{'timed_out':false,"
     "'oom_killed':true,'signal':'SIGKILL'}}",
     "sandbox_kills tenant t3"},
    {"exec seccomp kill", 'r', "t3",
     "{'job_id':'j','step_id':'s','kind':'exec.run','status':'ok','output':{'timed_out':false,"
     "'oom_killed':false,'signal':'SIGSYS'}}",
     "sandbox_kills tenant t3 seccomp"},
    {"exec clean exit", 'r', "t3",
     "{'job_id':'j','step_id':'s','kind':'exec.run','status':'ok','output':{'timed_out':false,"
     "'oom_killed':false,'signal':null,'exit_code':1}}",
     ""},
    {"exec cancelled", 'r', "t3",
     "{'job_id':'j','step_id':'s','kind':'exec.run','status':'ok','output':{'timed_out':false,"
     "'cancelled':true,'signal':'SIGKILL'}}",
     ""},
    {"exec result without tenant header", 'r', NULL,
     "{'job_id':'j','step_id':'s','kind':'exec.run','status':'ok','output':{'timed_out':true}}",
     ""},
    {"error result", 'r', "t3",
     "{'job_id':'j','step_id':'s','kind':'exec.run','status':'error','error':{'code':'x'}}", ""},
    {"tool output shaped like exec", 'r', "t3",
     "{'job_id':'j','step_id':'s','kind':'tool.calc','status':'ok','output':{'timed_out':true}}",
     ""},
    {"401 with a key id", 'a', NULL,
     "{'status':'401','code':'unauthorized','cred':'api_key','key_id':'0123456789abcdef',"
     "'ip':'10.0.0.1','route':'/v1/jobs'}",
     "auth_failures key 0123456789abcdef"},
    {"403 of a JWT principal", 'a', NULL,
     "{'status':'403','code':'insufficient_scope','cred':'jwt','key_id':'','tenant':'t',"
     "'principal':'t/alice','ip':'10.0.0.1'}",
     "auth_failures principal t/alice"},
    {"anonymous 401", 'a', NULL, "{'status':'401','code':'unauthorized','ip':'10.0.0.9'}",
     "auth_failures addr 10.0.0.9"},
    {"other status", 'a', NULL, "{'status':'429','key_id':'0123456789abcdef'}", ""},
    {"empty record", 'a', NULL, "{}", ""},
};

static void test_detect_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const dcase *c = &cases[i];
        json_t *v = js(c->json);
        phx_signal s;
        memset(&s, 0, sizeof(s));
        int n = c->src == 'e'   ? phx_signal_from_event(v, &s)
                : c->src == 'r' ? phx_signal_from_result(v, c->header, &s)
                                : phx_signal_from_auth(v, &s);
        char got[400] = "";
        if (n)
            snprintf(got, sizeof(got), "%s %s %s%s", phx_rule_name(s.rule), kinds[s.kind],
                     s.subject, s.seccomp ? " seccomp" : "");
        if (strcmp(got, c->want) != 0)
            fail_msg("%s: want [%s] got [%s]", c->name, c->want, got);
        json_decref(v);
    }
}

/* Anything that is not an object (a hostile or broken message) is no signal and no crash. */
static void test_detect_not_objects(void **state)
{
    (void)state;
    const char *bad[] = {"null", "[1,2]", "'text'", "42", "{'type':7,'tenant':[],'detail':{}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *v = js(bad[i]);
        phx_signal s;
        assert_int_equal(phx_signal_from_event(v, &s), 0);
        assert_int_equal(phx_signal_from_result(v, "t", &s), 0);
        assert_int_equal(phx_signal_from_auth(v, &s), 0);
        json_decref(v);
    }
}

/* Long fields are cut to the signal's buffers, never overflow them. */
static void test_detect_long_fields(void **state)
{
    (void)state;
    char big[2000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    json_t *v = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "type", "safety.verdict", "tenant", big,
                          "job_id", big, "detail", "verdict", "block", "detectors", big);
    phx_signal s;
    assert_int_equal(phx_signal_from_event(v, &s), 1);
    assert_int_equal(strlen(s.subject), sizeof(s.subject) - 1);
    assert_int_equal(strlen(s.tenant), sizeof(s.tenant) - 1);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect_table),
        cmocka_unit_test(test_detect_not_objects),
        cmocka_unit_test(test_detect_long_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
