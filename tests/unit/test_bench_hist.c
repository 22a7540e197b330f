/* test_bench_hist.c -- phx-bench's latency histogram: exact below 128, within 1/64 above,
 * percentiles never optimistic, merge equals recording everything into one. */
#include "../../ops/bench/hist.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

static void test_empty(void **state)
{
    (void)state;
    phx_hist h;
    phx_hist_init(&h);
    assert_int_equal(phx_hist_pct(&h, 99), 0);
    assert_true(phx_hist_mean(&h) == 0);
}

static void test_small_values_exact(void **state)
{
    (void)state;
    phx_hist h;
    phx_hist_init(&h);
    for (int v = 1; v <= 100; v++)
        phx_hist_record(&h, v);
    assert_int_equal(phx_hist_pct(&h, 50), 50);
    assert_int_equal(phx_hist_pct(&h, 99), 99);
    assert_int_equal(phx_hist_pct(&h, 100), 100);
    assert_int_equal(h.min, 1);
    assert_true(phx_hist_mean(&h) == 50.5);
}

/* Every value, over many magnitudes, comes back as a bucket top >= itself and within 1/64. */
static void test_resolution(void **state)
{
    (void)state;
    for (int64_t v = 1; v < ((int64_t)1 << 39); v = v * 3 / 2 + 1) {
        phx_hist h;
        phx_hist_init(&h);
        phx_hist_record(&h, v);
        phx_hist_record(&h, v + 1000000000000LL); /* so the max does not cap the answer */
        int64_t got = phx_hist_pct(&h, 50);
        assert_true(got >= v);
        assert_true((double)(got - v) <= (double)v / 64.0 + 1);
    }
}

static void test_tail_and_merge(void **state)
{
    (void)state;
    phx_hist a, b, all;
    phx_hist_init(&a);
    phx_hist_init(&b);
    phx_hist_init(&all);
    for (int64_t v = 1; v <= 100000; v++) {
        phx_hist_record(v % 2 ? &a : &b, v);
        phx_hist_record(&all, v);
    }
    phx_hist_merge(&a, &b);
    assert_int_equal(a.n, all.n);
    assert_int_equal(a.min, 1);
    assert_int_equal(a.max, 100000);
    double ps[] = {50, 90, 99, 99.9, 100};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        int64_t want = (int64_t)(ps[i] * 1000);
        assert_int_equal(phx_hist_pct(&a, ps[i]), phx_hist_pct(&all, ps[i]));
        assert_true(phx_hist_pct(&a, ps[i]) >= want);
        assert_true(phx_hist_pct(&a, ps[i]) <= want + want / 64 + 1);
    }
    assert_int_equal(phx_hist_pct(&a, 100), 100000); /* capped at the exact max */
}

static void test_out_of_range(void **state)
{
    (void)state;
    phx_hist h;
    phx_hist_init(&h);
    phx_hist_record(&h, -5);
    phx_hist_record(&h, INT64_MAX);
    assert_int_equal(h.n, 2);
    assert_int_equal(phx_hist_pct(&h, 50), 0);
    assert_true(phx_hist_pct(&h, 100) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),        cmocka_unit_test(test_small_values_exact),
        cmocka_unit_test(test_resolution),   cmocka_unit_test(test_tail_and_merge),
        cmocka_unit_test(test_out_of_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
