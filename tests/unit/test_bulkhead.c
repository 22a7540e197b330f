/* test_bulkhead.c -- the per-dependency bulkhead (lib/bulkhead.h): the bound holds under
 * threads, a full bulkhead refuses with the retryable bulkhead_full code after its wait, a
 * waiter gets the slot a leaving call frees, and saturation shows in the metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/bulkhead.h"
#include "../../lib/metrics.h"
#include "../../lib/util.h"

/* The value of series NAME{bulkhead="B"} in the rendered registry, or -1. */
static double metric(const char *name, const char *b)
{
    char *text = phx_metrics_render(), key[160];
    snprintf(key, sizeof(key), "\n%s{bulkhead=\"%s\"} ", name, b);
    char *p = strstr(text, key);
    double v = p ? strtod(p + strlen(key), NULL) : -1;
    free(text);
    return v;
}

static void test_refuse_when_full(void **state)
{
    (void)state;
    phx_bulkhead b;
    phx_err err;
    phx_bulkhead_init(&b, "t:full", 2, 0);
    assert_int_equal(phx_bulkhead_enter(&b, &err), 0);
    assert_int_equal(phx_bulkhead_enter(&b, &err), 0);
    phx_err_clear(&err);
    assert_int_equal(phx_bulkhead_enter(&b, &err), -1);
    assert_string_equal(err.code, PHX_BULKHEAD_FULL);
    assert_true(err.retryable);
    assert_true(phx_bulkhead_refused(&err));
    assert_int_equal(phx_bulkhead_inflight(&b), 2);
    assert_true(metric("phx_bulkhead_limit", "t:full") == 2);
    assert_true(metric("phx_bulkhead_inflight", "t:full") == 2);
    assert_true(metric("phx_bulkhead_inflight_max", "t:full") == 2);
    assert_true(metric("phx_bulkhead_rejected_total", "t:full") == 1);
    /* Drained: a slot is free again. */
    phx_bulkhead_leave(&b);
    assert_int_equal(phx_bulkhead_enter(&b, &err), 0);
    phx_bulkhead_leave(&b);
    phx_bulkhead_leave(&b);
    assert_int_equal(phx_bulkhead_inflight(&b), 0);
    assert_true(metric("phx_bulkhead_inflight", "t:full") == 0);
    phx_err other;
    phx_err_set(&other, "redis_unavailable", 1, "x");
    assert_false(phx_bulkhead_refused(&other));
    assert_false(phx_bulkhead_refused(NULL));
    phx_bulkhead_destroy(&b);
}

/* A call that waits gets the slot as soon as another call leaves, well within its wait. */
typedef struct {
    phx_bulkhead *b;
    int64_t ms;
} leaver;

static void *leave_later(void *arg)
{
    leaver *l = arg;
    phx_sleep_ms(l->ms);
    phx_bulkhead_leave(l->b);
    return NULL;
}

static void test_wait_for_slot(void **state)
{
    (void)state;
    phx_bulkhead b;
    phx_err err;
    phx_bulkhead_init(&b, "t:wait", 1, 5000);
    assert_int_equal(phx_bulkhead_enter(&b, &err), 0);
    leaver l = {&b, 50};
    pthread_t t;
    pthread_create(&t, NULL, leave_later, &l);
    int64_t t0 = phx_mono_ms();
    assert_int_equal(phx_bulkhead_enter(&b, &err), 0);
    /* Woken by the leave, not by the end of the 5 s wait. */
    assert_true(phx_mono_ms() - t0 < 4000);
    pthread_join(t, NULL);
    assert_true(metric("phx_bulkhead_waits_total", "t:wait") == 1);
    assert_true(metric("phx_bulkhead_rejected_total", "t:wait") == 0);
    phx_bulkhead_leave(&b);
    phx_bulkhead_destroy(&b);
    /* A bounded wait that nobody ends: refused after it. */
    phx_bulkhead_init(&b, "t:wait2", 1, 20);
    assert_int_equal(phx_bulkhead_enter(&b, &err), 0);
    assert_int_equal(phx_bulkhead_enter(&b, &err), -1);
    assert_string_equal(err.code, PHX_BULKHEAD_FULL);
    phx_bulkhead_leave(&b);
    phx_bulkhead_destroy(&b);
}

/* Many threads hammering a bulkhead of 3: never more than 3 inside at once, every call either
 * ran or was refused (none lost), and the slots all come back. */
typedef struct {
    phx_bulkhead *b;
    atomic_int inside, most, ran, refused;
} hammer;

static void *hammer_main(void *arg)
{
    hammer *h = arg;
    for (int i = 0; i < 300; i++) {
        phx_err err;
        if (phx_bulkhead_enter(h->b, &err) < 0) {
            atomic_fetch_add(&h->refused, 1);
            continue;
        }
        int n = atomic_fetch_add(&h->inside, 1) + 1;
        int m = atomic_load(&h->most);
        while (n > m && !atomic_compare_exchange_weak(&h->most, &m, n))
            ;
        for (volatile int k = 0; k < 2000; k++)
            ;
        atomic_fetch_sub(&h->inside, 1);
        atomic_fetch_add(&h->ran, 1);
        phx_bulkhead_leave(h->b);
    }
    return NULL;
}

static void test_bound_under_threads(void **state)
{
    (void)state;
    phx_bulkhead b;
    phx_bulkhead_init(&b, "t:threads", 3, 1);
    hammer h = {.b = &b};
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, hammer_main, &h);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    assert_true(atomic_load(&h.most) <= 3);
    assert_int_equal(atomic_load(&h.ran) + atomic_load(&h.refused), 8 * 300);
    assert_int_equal(phx_bulkhead_inflight(&b), 0);
    assert_true(metric("phx_bulkhead_inflight_max", "t:threads") <= 3);
    assert_true(metric("phx_bulkhead_rejected_total", "t:threads") == atomic_load(&h.refused));
    phx_bulkhead_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refuse_when_full),
        cmocka_unit_test(test_wait_for_slot),
        cmocka_unit_test(test_bound_under_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
