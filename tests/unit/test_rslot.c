/* test_rslot.c -- Redis Cluster key slots: CRC16 against the specification's check value, the
 * hash-tag rules, agreement with a real server's CLUSTER KEYSLOT (values taken from
 * redis-server 7.0), and which argument routes a command. */
#include "../../lib/rslot.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static int slot(const char *k)
{
    return phx_rslot_of(k, strlen(k));
}

static void test_crc16_check_value(void **state)
{
    (void)state;
    /* The spec: CRC16 of "123456789" is 0x31C3. */
    assert_int_equal(slot("123456789"), 0x31C3 & 16383);
}

static void test_hash_tags(void **state)
{
    (void)state;
    /* All keys of one job land with its tag. */
    assert_int_equal(slot("phx:job:{j-1}"), slot("j-1"));
    assert_int_equal(slot("phx:job:{j-1}:steps"), slot("phx:job:{j-1}:out"));
    /* Only the first {...}; an empty {} means no tag, the whole key counts. */
    assert_int_equal(slot("{user1000}.following"), slot("user1000"));
    assert_int_equal(slot("foo{}{bar}"), slot("foo{}{bar}"));
    assert_int_not_equal(slot("foo{}{bar}"), slot("bar"));
    assert_int_equal(slot("foo{{bar}}zap"), slot("{bar"));
    assert_int_equal(slot("foo{bar}{zap}"), slot("bar"));
    assert_int_equal(slot("no-close{abc"), slot("no-close{abc"));
}

static void test_server_values(void **state)
{
    (void)state;
    /* redis-cli CLUSTER KEYSLOT on redis-server 7.0.15. */
    assert_int_equal(slot("foo"), 12182);
    assert_int_equal(slot("phx:delay"), 2585);
    assert_int_equal(slot("foo{{bar}}zap"), 4015);
    assert_int_equal(slot("phx:job:{abc}"), 7638);
    assert_int_equal(slot(""), 0);
}

static void test_command_key(void **state)
{
    (void)state;
    const char *get[] = {"GET", "phx:job:{x}"};
    assert_int_equal(phx_rslot_of_cmd(2, get, NULL), slot("x"));
    const char *ev[] = {"EVALSHA", "0123", "2", "phx:job:{x}:steps", "phx:job:{x}", "a"};
    assert_int_equal(phx_rslot_of_cmd(6, ev, NULL), slot("x"));
    const char *ev0[] = {"evalsha", "0123", "0", "arg"};
    assert_int_equal(phx_rslot_of_cmd(4, ev0, NULL), -1);
    const char *ping[] = {"PING"}, *load[] = {"SCRIPT", "LOAD", "return 1"};
    assert_int_equal(phx_rslot_of_cmd(1, ping, NULL), -1);
    assert_int_equal(phx_rslot_of_cmd(3, load, NULL), -1);
    const size_t lens[] = {4, 3};
    const char *bin[] = {"HGET", "fooXXX"}; /* lengths, not strlen, delimit the key */
    assert_int_equal(phx_rslot_of_cmd(2, bin, lens), slot("foo"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_check_value),
        cmocka_unit_test(test_hash_tags),
        cmocka_unit_test(test_server_values),
        cmocka_unit_test(test_command_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
