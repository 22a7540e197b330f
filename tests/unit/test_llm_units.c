/* test_llm_units.c -- the pure parts of phx-llm: circuit breaker state machine (driven by a
 * fake clock), backoff and Retry-After, the lexical embedder's promises (deterministic, unit
 * length, never zero, related texts closer than unrelated ones), JSON answer parsing and plan
 * validation. No network, no Redis. */
#include "../../lib/breaker.h"
#include "../../workers/llm/chat.h"
#include "lexical.h"
#include "../../workers/llm/plan.h"
#include "../../workers/llm/provider.h"
#include "schemas_embedded.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* --- breaker ------------------------------------------------------------------------------ */

static const phx_breaker_cfg br_cfg = {
    .window_ms = 10000, .min_requests = 4, .failure_pct = 50, .open_ms = 1000, .probes = 2};

static void test_breaker_opens_on_failure_rate(void **st)
{
    (void)st;
    phx_breaker b;
    phx_breaker_init(&b, &br_cfg);
    int64_t t = 100000;
    /* 3 failures: below min_requests, still closed */
    for (int i = 0; i < 3; i++) {
        int k = phx_breaker_allow(&b, t);
        assert_int_equal(k, PHX_BREAKER_NORMAL);
        phx_breaker_record(&b, t, k, 0);
    }
    assert_int_equal(phx_breaker_state(&b, t), PHX_BREAKER_CLOSED);
    int k = phx_breaker_allow(&b, t);
    phx_breaker_record(&b, t, k, 0);
    assert_int_equal(phx_breaker_state(&b, t), PHX_BREAKER_OPEN);
    assert_int_equal(phx_breaker_allow(&b, t + 500), PHX_BREAKER_DENIED);
    /* jittered interval in [0.8, 1.2) * open_ms */
    assert_int_equal(phx_breaker_state(&b, t + 799), PHX_BREAKER_OPEN);
    assert_int_equal(phx_breaker_state(&b, t + 1200), PHX_BREAKER_HALF_OPEN);
    phx_breaker_destroy(&b);
}

static void test_breaker_successes_keep_it_closed(void **st)
{
    (void)st;
    phx_breaker b;
    phx_breaker_init(&b, &br_cfg);
    int64_t t = 5000;
    /* 1 failure in 3 successes = 25% < 50% */
    for (int i = 0; i < 12; i++) {
        int k = phx_breaker_allow(&b, t);
        phx_breaker_record(&b, t, k, i % 4 != 0);
        t += 10;
    }
    assert_int_equal(phx_breaker_state(&b, t), PHX_BREAKER_CLOSED);
    /* failures that fell out of the window do not count */
    phx_breaker_destroy(&b);
    phx_breaker_init(&b, &br_cfg);
    for (int i = 0; i < 3; i++)
        phx_breaker_record(&b, 1000, phx_breaker_allow(&b, 1000), 0);
    for (int i = 0; i < 3; i++)
        phx_breaker_record(&b, 20000, phx_breaker_allow(&b, 20000), 1);
    phx_breaker_record(&b, 20000, phx_breaker_allow(&b, 20000), 0);
    assert_int_equal(phx_breaker_state(&b, 20000), PHX_BREAKER_CLOSED);
    phx_breaker_destroy(&b);
}

static void test_breaker_half_open_probes(void **st)
{
    (void)st;
    phx_breaker b;
    phx_breaker_init(&b, &br_cfg);
    int64_t t = 0;
    for (int i = 0; i < 4; i++)
        phx_breaker_record(&b, t, phx_breaker_allow(&b, t), 0);
    t += 2000; /* past any jittered interval */
    int p1 = phx_breaker_allow(&b, t), p2 = phx_breaker_allow(&b, t);
    assert_int_equal(p1, PHX_BREAKER_PROBE);
    assert_int_equal(p2, PHX_BREAKER_PROBE);
    assert_int_equal(phx_breaker_allow(&b, t), PHX_BREAKER_DENIED); /* only 2 probes */
    phx_breaker_record(&b, t, p1, 1);
    assert_int_equal(phx_breaker_state(&b, t), PHX_BREAKER_HALF_OPEN);
    phx_breaker_record(&b, t, p2, 1);
    assert_int_equal(phx_breaker_state(&b, t), PHX_BREAKER_CLOSED);
    /* a failed probe opens it again */
    for (int i = 0; i < 4; i++)
        phx_breaker_record(&b, t, phx_breaker_allow(&b, t), 0);
    t += 2000;
    p1 = phx_breaker_allow(&b, t);
    assert_int_equal(p1, PHX_BREAKER_PROBE);
    phx_breaker_record(&b, t, p1, 0);
    assert_int_equal(phx_breaker_state(&b, t), PHX_BREAKER_OPEN);
    /* a released probe frees its slot */
    t += 2000;
    p1 = phx_breaker_allow(&b, t);
    p2 = phx_breaker_allow(&b, t);
    phx_breaker_release(&b, p2);
    assert_int_equal(phx_breaker_allow(&b, t), PHX_BREAKER_PROBE);
    phx_breaker_destroy(&b);
}

/* --- backoff and Retry-After ----------------------------------------------------------- */

static void test_backoff_full_jitter(void **st)
{
    (void)st;
    for (int a = 0; a < 8; a++) {
        long ceil = 100L << a;
        if (ceil > 2000)
            ceil = 2000;
        long max = 0;
        for (int i = 0; i < 500; i++) {
            long w = phx_llm_backoff_ms(100, 2000, a);
            assert_true(w >= 0 && w <= ceil);
            if (w > max)
                max = w;
        }
        assert_true(max > ceil / 2); /* the whole range is used, not just the floor */
    }
}

static void test_retry_after(void **st)
{
    (void)st;
    int64_t now = 1700000000000LL; /* 2023-11-14T22:13:20Z */
    assert_int_equal(phx_llm_retry_after_ms(" 2\r\n", now), 2000);
    assert_int_equal(phx_llm_retry_after_ms("0", now), 0);
    assert_int_equal(phx_llm_retry_after_ms("1.5", now), 1500);
    assert_int_equal(phx_llm_retry_after_ms("soon", now), -1);
    assert_int_equal(phx_llm_retry_after_ms("", now), -1);
    assert_int_equal(phx_llm_retry_after_ms("-3", now), -1);
    assert_int_equal(phx_llm_retry_after_ms("Tue, 14 Nov 2023 22:13:25 GMT", now), 5000);
    assert_int_equal(phx_llm_retry_after_ms("Tue, 14 Nov 2023 22:13:00 GMT", now), 0);
}

/* --- lexical embedder ------------------------------------------------------------------- */

#define DIM 256

static double cos_of(const char *a, const char *b)
{
    double va[DIM], vb[DIM];
    phx_llm_lexical_embed(a, strlen(a), va, DIM);
    phx_llm_lexical_embed(b, strlen(b), vb, DIM);
    return phx_llm_cosine(va, vb, DIM);
}

static void test_lexical_properties(void **st)
{
    (void)st;
    static const char *texts[] = {"The cat sat on the mat", "!!!", "a", "日本語のテキスト",
                                  "x y z x y z x y z"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        double v[DIM], w[DIM], norm = 0;
        phx_llm_lexical_embed(texts[i], strlen(texts[i]), v, DIM);
        phx_llm_lexical_embed(texts[i], strlen(texts[i]), w, DIM);
        for (int k = 0; k < DIM; k++) {
            norm += v[k] * v[k];
            assert_true(v[k] == w[k]); /* deterministic */
            assert_true(isfinite(v[k]));
        }
        assert_true(fabs(norm - 1.0) < 1e-9); /* unit length, hence never zero */
    }
    /* case and punctuation do not matter */
    assert_true(cos_of("Hello, World!", "hello world") > 0.999);
}

/* Related texts (sharing words and word pieces) score higher than unrelated ones. */
static void test_lexical_related_closer(void **st)
{
    (void)st;
    static const struct {
        const char *q, *related, *unrelated;
    } rows[] = {
        {"how to bake sourdough bread", "baking bread with a sourdough starter",
         "quarterly earnings of the telecom sector"},
        {"python list comprehension", "list comprehensions in Python are concise",
         "the migration of arctic terns"},
        {"kafka consumer group rebalance", "rebalancing a Kafka consumer group",
         "chocolate cake recipe with cherries"},
        {"invoice payment overdue", "your payment for invoice 42 is overdue",
         "mountain hiking trails in spring"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        double r = cos_of(rows[i].q, rows[i].related), u = cos_of(rows[i].q, rows[i].unrelated);
        if (r <= u + 0.1)
            fail_msg("\"%s\": related %.3f not above unrelated %.3f", rows[i].q, r, u);
    }
}

/* --- answers and plans ------------------------------------------------------------------ */

static void test_parse_answer(void **st)
{
    (void)st;
    char why[200];
    static const struct {
        const char *text, *want; /* want = compact JSON, or NULL for a parse failure */
    } rows[] = {
        {"{\"a\":1}", "{\"a\": 1}"},
        {"  \n{\"a\":1}\n ", "{\"a\": 1}"},
        {"```json\n{\"a\":[1,2]}\n```", "{\"a\": [1, 2]}"},
        {"```\n[true]\n```", "[true]"},
        {"\"str\"", "\"str\""},
        {"{\"a\":1", NULL},
        {"Sure! {\"a\":1}", NULL},
        {"{\"a\":1,\"a\":2}", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        json_t *j = phx_llm_parse_answer(rows[i].text, why, sizeof(why));
        if (!rows[i].want) {
            if (j)
                fail_msg("row %zu parsed but should not", i);
            continue;
        }
        if (!j)
            fail_msg("row %zu: %s", i, why);
        json_t *w = json_loads(rows[i].want, JSON_DECODE_ANY, NULL);
        assert_true(json_equal(j, w));
        json_decref(w);
        json_decref(j);
    }
}

static json_t *job_schema_json(void)
{
    for (int i = 0; i < phx_embedded_schemas_count; i++)
        if (strcmp(phx_embedded_schemas[i].name, "job.v1") == 0)
            return json_loads(phx_embedded_schemas[i].text, 0, NULL);
    return NULL;
}

static void test_plan_check(void **st)
{
    (void)st;
    json_t *job = job_schema_json();
    assert_non_null(job);
    json_t *sj = phx_llm_plan_schema(job, 8);
    char e[300];
    phx_schema *s = phx_schema_new(sj, e, sizeof(e));
    assert_non_null(s);
    json_t *allowed = json_pack("[s,s]", "tool.calc", "llm.chat");
    json_t *reserved = json_pack("[s]", "plan");
    static const struct {
        const char *plan;
        const char *reason; /* NULL = valid, else a substring of the reasons */
    } rows[] = {
        {"{\"steps\":[{\"id\":\"a\",\"kind\":\"tool.calc\",\"input\":{\"expr\":\"1+1\"}}]}", NULL},
        {"{\"steps\":[{\"id\":\"a\",\"kind\":\"tool.calc\",\"input\":{\"expr\":\"2\"}},"
         "{\"id\":\"b\",\"kind\":\"tool.calc\",\"input\":{\"expr\":\"{{steps.a.output.value}}*3\"},"
         "\"needs\":[\"a\"]}]}",
         NULL},
        {"{\"steps\":[]}", "/steps"},
        {"{\"plan\":[]}", "steps"},
        {"{\"steps\":[{\"id\":\"a b\",\"kind\":\"tool.calc\"}]}", "/steps/0/id"},
        {"{\"steps\":[{\"id\":\"a\",\"kind\":\"exec.run\",\"input\":{}}]}", "not allowed"},
        {"{\"steps\":[{\"id\":\"a\",\"kind\":\"llm.plan\",\"input\":{}}]}", "not allowed"},
        {"{\"steps\":[{\"id\":\"a\",\"kind\":\"tool.calc\",\"needs\":[\"b\"]},"
         "{\"id\":\"b\",\"kind\":\"tool.calc\",\"needs\":[\"a\"]}]}",
         "cycle"},
        {"{\"steps\":[{\"id\":\"a\",\"kind\":\"tool.calc\",\"needs\":[\"ghost\"]}]}", "ghost"},
        {"{\"steps\":[{\"id\":\"a\",\"kind\":\"tool.calc\",\"input\":{\"expr\":\"1\"}},"
         "{\"id\":\"b\",\"kind\":\"tool.calc\",\"input\":{\"expr\":\"{{steps.a.output.value}}\"}}]"
         "}",
         "needs"},
        {"{\"steps\":[{\"id\":\"a\",\"kind\":\"tool.calc\"},{\"id\":\"a\",\"kind\":\"tool.calc\"}]"
         "}",
         "a"},
        {"{\"steps\":[{\"id\":\"a\",\"kind\":\"tool.calc\",\"colour\":1}]}", "colour"},
        {"{\"steps\":[{\"id\":\"plan\",\"kind\":\"tool.calc\"}]}", "taken by the job"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        json_t *plan = json_loads(rows[i].plan, 0, NULL), *reasons = NULL;
        assert_non_null(plan);
        int rc = phx_llm_plan_check(s, plan, allowed, reserved, 3, &reasons);
        char *txt = json_dumps(reasons, JSON_COMPACT);
        if (!rows[i].reason && rc != 0)
            fail_msg("row %zu should pass: %s", i, txt);
        if (rows[i].reason && (rc == 0 || !strstr(txt, rows[i].reason)))
            fail_msg("row %zu: want a reason containing \"%s\", got %s", i, rows[i].reason, txt);
        free(txt);
        json_decref(reasons);
        json_decref(plan);
    }
    /* max_steps */
    json_t *big = json_pack("{s:[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]}", "steps", "id", "a",
                            "kind", "tool.calc", "id", "b", "kind", "tool.calc", "id", "c", "kind",
                            "tool.calc", "id", "d", "kind", "tool.calc"),
           *reasons = NULL;
    assert_int_equal(phx_llm_plan_check(s, big, allowed, reserved, 3, &reasons), -1);
    json_decref(reasons);
    json_decref(big);
    json_decref(allowed);
    json_decref(reserved);
    phx_schema_free(s);
    json_decref(sj);
    json_decref(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_breaker_opens_on_failure_rate),
        cmocka_unit_test(test_breaker_successes_keep_it_closed),
        cmocka_unit_test(test_breaker_half_open_probes),
        cmocka_unit_test(test_backoff_full_jitter),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_lexical_properties),
        cmocka_unit_test(test_lexical_related_closer),
        cmocka_unit_test(test_parse_answer),
        cmocka_unit_test(test_plan_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
