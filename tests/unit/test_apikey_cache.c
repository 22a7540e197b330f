/* test_apikey_cache.c -- the ingress's API key lookup cache (lib/apikey.h): a hit only within
 * its TTL and while the key is active, a forget (revoke or rotate on this replica) wins even
 * over an answer still on its way from Redis, and a full table makes keys take turns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/apikey.h"

#define S1 "phx_111111111111111111111111111111111111111111111111"
#define S2 "phx_222222222222222222222222222222222222222222222222"

static phx_apikey key(const char *secret, int64_t expires_ms)
{
    phx_apikey k = {
        .tenant = "t1", .principal = "p1", .roles = "submitter", .expires_ms = expires_ms};
    phx_apikey_id(secret, k.id);
    return k;
}

/* Miss, then put what "Redis" answered, at mono time t. */
static void load(phx_apikey_cache *c, const char *secret, int64_t expires_ms, int64_t t)
{
    phx_apikey out, k = key(secret, expires_ms);
    phx_apikey_ticket tk;
    assert_int_equal(phx_apikey_cache_get(c, secret, 1000, t, &out, &tk), 0);
    phx_apikey_cache_put(c, secret, &k, &tk);
}

static int hit(phx_apikey_cache *c, const char *secret, int64_t now_ms, int64_t mono_ms)
{
    phx_apikey out;
    phx_apikey_ticket tk;
    int h = phx_apikey_cache_get(c, secret, now_ms, mono_ms, &out, &tk);
    if (h) {
        assert_string_equal(out.tenant, "t1");
        assert_string_equal(out.principal, "p1");
        assert_string_equal(out.roles, "submitter");
        phx_apikey_clear(&out);
    }
    return h;
}

static void test_ttl(void **state)
{
    (void)state;
    phx_apikey_cache *c = phx_apikey_cache_new(500, 64);
    assert_int_equal(hit(c, S1, 1000, 0), 0);
    load(c, S1, 0, 100);
    assert_int_equal(hit(c, S1, 1000, 100), 1);
    assert_int_equal(hit(c, S1, 1000, 599), 1);
    assert_int_equal(hit(c, S1, 1000, 600), 0); /* stale: Redis is asked again */
    assert_int_equal(hit(c, S1, 1000, 601), 0); /* and the stale entry is gone */
    assert_int_equal(hit(c, S2, 1000, 100), 0); /* another secret never hits */
    phx_apikey_cache_free(c);
}

static void test_expiry_checked_on_every_use(void **state)
{
    (void)state;
    phx_apikey_cache *c = phx_apikey_cache_new(1000, 64);
    load(c, S1, 5000, 0);
    assert_int_equal(hit(c, S1, 4999, 10), 1);
    assert_int_equal(hit(c, S1, 5000, 10), 0);
    phx_apikey_cache_free(c);
}

static void test_forget(void **state)
{
    (void)state;
    phx_apikey_cache *c = phx_apikey_cache_new(1000, 64);
    char id[17];
    phx_apikey_id(S1, id);
    load(c, S1, 0, 0);
    load(c, S2, 0, 0);
    phx_apikey_cache_forget(c, id);
    assert_int_equal(hit(c, S1, 1000, 1), 0);
    assert_int_equal(hit(c, S2, 1000, 1), 1); /* only that key */
    /* A lookup that began before the revoke must not put its (older) answer back. */
    phx_apikey out, k = key(S1, 0);
    phx_apikey_ticket tk;
    assert_int_equal(phx_apikey_cache_get(c, S1, 1000, 2, &out, &tk), 0);
    phx_apikey_cache_forget(c, id);
    phx_apikey_cache_put(c, S1, &k, &tk);
    assert_int_equal(hit(c, S1, 1000, 3), 0);
    phx_apikey_cache_free(c);
}

static void test_off_and_full(void **state)
{
    (void)state;
    phx_apikey_cache *off = phx_apikey_cache_new(0, 64);
    load(off, S1, 0, 0);
    assert_int_equal(hit(off, S1, 1000, 0), 0);
    phx_apikey_cache_free(off);
    /* One slot: two keys take turns, each still correct. */
    phx_apikey_cache *one = phx_apikey_cache_new(1000, 1);
    load(one, S1, 0, 0);
    load(one, S2, 0, 0);
    assert_int_equal(hit(one, S1, 1000, 1), 0);
    assert_int_equal(hit(one, S2, 1000, 1), 1);
    phx_apikey_cache_free(one);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_expiry_checked_on_every_use),
        cmocka_unit_test(test_forget),
        cmocka_unit_test(test_off_and_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
