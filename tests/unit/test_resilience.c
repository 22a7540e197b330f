/* test_resilience.c -- the shared retry policy and circuit breaker, driven by a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>

#include "../../lib/breaker.h"
#include "../../lib/metrics.h"
#include "../../lib/retry.h"

static void test_retry_delay(void **state)
{
    (void)state;
    static const struct {
        phx_retry_policy p;
        int attempt;
        int64_t lo, hi;
    } cases[] = {
        {{0, 100, 6400, 0}, 1, 100, 100},   {{0, 100, 6400, 0}, 2, 200, 200},
        {{0, 100, 6400, 0}, 7, 6400, 6400}, {{0, 100, 6400, 0}, 60, 6400, 6400},
        {{0, 100, 6400, 50}, 1, 50, 150},   {{0, 200, 60000, 25}, 3, 600, 1000},
        {{0, 0, 1000, 50}, 5, 0, 0},        {{0, 100, 50, 0}, 1, 50, 50},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int k = 0; k < 200; k++) {
            int64_t d = phx_retry_delay(&cases[i].p, cases[i].attempt);
            if (d < cases[i].lo || d > cases[i].hi)
                fail_msg("case %zu: %lld not in [%lld, %lld]", i, (long long)d,
                         (long long)cases[i].lo, (long long)cases[i].hi);
        }
    }
    phx_retry_policy three = {3, 10, 100, 0};
    phx_err retryable = {.retryable = 1}, permanent = {.retryable = 0};
    assert_true(phx_retry_should(&three, &retryable, 2));
    assert_false(phx_retry_should(&three, &retryable, 3));
    assert_false(phx_retry_should(&three, &permanent, 1));
    phx_retry_policy forever = {0, 10, 100, 0};
    assert_true(phx_retry_should(&forever, &retryable, 1000));
}

/* Closed -> open on failures, fail fast while open, half-open probes, close on success. */
static void test_breaker_cycle(void **state)
{
    (void)state;
    phx_breaker_cfg cfg = {
        .window_ms = 10000, .min_requests = 4, .failure_pct = 50, .open_ms = 1000, .probes = 2};
    phx_breaker b;
    phx_breaker_init(&b, &cfg);
    phx_breaker_name(&b, "unit");
    int64_t t = 1000000;
    for (int i = 0; i < 3; i++) /* below min_requests: stays closed whatever happens */
        phx_breaker_record(&b, t, phx_breaker_allow(&b, t), 0);
    assert_int_equal(phx_breaker_state(&b, t), PHX_BREAKER_CLOSED);
    phx_breaker_record(&b, t, phx_breaker_allow(&b, t), 0);
    assert_int_equal(phx_breaker_state(&b, t), PHX_BREAKER_OPEN);
    assert_int_equal(phx_breaker_allow(&b, t + 100), PHX_BREAKER_DENIED);
    t += 1300; /* past the jittered interval (at most 1.2 s) */
    int p1 = phx_breaker_allow(&b, t), p2 = phx_breaker_allow(&b, t);
    assert_int_equal(p1, PHX_BREAKER_PROBE);
    assert_int_equal(p2, PHX_BREAKER_PROBE);
    assert_int_equal(phx_breaker_allow(&b, t), PHX_BREAKER_DENIED); /* probes are limited */
    phx_breaker_record(&b, t, p1, 1);
    assert_int_equal(phx_breaker_state(&b, t), PHX_BREAKER_HALF_OPEN);
    phx_breaker_record(&b, t, p2, 1);
    assert_int_equal(phx_breaker_state(&b, t), PHX_BREAKER_CLOSED);
    /* A failed probe re-opens. */
    for (int i = 0; i < 4; i++)
        phx_breaker_record(&b, t, phx_breaker_allow(&b, t), 0);
    t += 1300;
    phx_breaker_record(&b, t, phx_breaker_allow(&b, t), 0);
    assert_int_equal(phx_breaker_state(&b, t), PHX_BREAKER_OPEN);
    /* Every transition was counted once: open, half-open, closed, open, half-open, open. */
    const char *help = "Circuit breaker state changes, by breaker and new state.";
    const struct {
        const char *to;
        double n;
    } want[] = {{"open", 3}, {"half_open", 2}, {"closed", 1}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "breaker=\"unit\",to=\"%s\"", want[i].to);
        assert_true(phx_metric_value(phx_counter("phx_breaker_transitions_total", help, labels)) ==
                    want[i].n);
    }
    phx_breaker_destroy(&b);
}

static void test_breaker_slow_calls(void **state)
{
    (void)state;
    phx_breaker_cfg cfg = {.window_ms = 10000,
                           .min_requests = 5,
                           .failure_pct = 50,
                           .open_ms = 1000,
                           .probes = 1,
                           .slow_ms = 500,
                           .slow_pct = 80};
    phx_breaker b;
    phx_breaker_init(&b, &cfg);
    int64_t t = 5000000;
    for (int i = 0; i < 3; i++) /* fast successes */
        phx_breaker_record_timed(&b, t, phx_breaker_allow(&b, t), 1, 10);
    for (int i = 0; i < 10; i++) /* slow successes: 10 of 13 is below 80% */
        phx_breaker_record_timed(&b, t, phx_breaker_allow(&b, t), 1, 900);
    assert_int_equal(phx_breaker_state(&b, t), PHX_BREAKER_CLOSED);
    for (int i = 0; i < 5; i++) /* 15 of 18 slow: above 80% */
        phx_breaker_record_timed(&b, t, phx_breaker_allow(&b, t), 1, 900);
    assert_int_equal(phx_breaker_state(&b, t), PHX_BREAKER_OPEN);
    /* One good probe closes it with a fresh window: the old slow calls are forgotten. */
    t += 20000;
    phx_breaker_record(&b, t, phx_breaker_allow(&b, t), 1);
    assert_int_equal(phx_breaker_state(&b, t), PHX_BREAKER_CLOSED);
    for (int i = 0; i < 4; i++)
        phx_breaker_record(&b, t, phx_breaker_allow(&b, t), 0);
    assert_int_equal(phx_breaker_state(&b, t), PHX_BREAKER_CLOSED); /* 4 < min_requests */
    phx_breaker_record(&b, t, phx_breaker_allow(&b, t), 0);
    assert_int_equal(phx_breaker_state(&b, t), PHX_BREAKER_OPEN);
    phx_breaker_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_delay),
        cmocka_unit_test(test_breaker_cycle),
        cmocka_unit_test(test_breaker_slow_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
