/* test_msg.c -- envelope helpers: kind -> pool, trace context, base64, dead letters,
 * payload parsing. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/msg.h"
#include "../../lib/util.h"

static void test_kind_pool(void **state)
{
    (void)state;
    static const struct {
        const char *kind, *pool;
    } cases[] = {{"tool.calc", "tools"}, {"tool.http_fetch", "tools"}, {"llm.chat", "llm"},
                 {"exec.run", "exec"},   {"safety.scan", "safety"},    {"kb.search", "kb"},
                 {"tool.", NULL},        {"tools.calc", NULL},         {"", NULL},
                 {"x.y", NULL}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = phx_kind_pool(cases[i].kind);
        if (cases[i].pool)
            assert_string_equal(got, cases[i].pool);
        else
            assert_null(got);
    }
}

static void test_traceparent(void **state)
{
    (void)state;
    char a[56], b[56];
    phx_traceparent_new(a);
    assert_true(phx_traceparent_valid(a));
    phx_traceparent_child(a, b);
    assert_true(phx_traceparent_valid(b));
    assert_memory_equal(a, b, 35);               /* same trace id */
    assert_memory_not_equal(a + 36, b + 36, 16); /* new span id */
    static const char *bad[] = {"",
                                "00-00000000000000000000000000000000-0000000000000001-01",
                                "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
                                "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                                "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
                                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(phx_traceparent_valid(bad[i]));
    assert_true(phx_traceparent_valid("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
    phx_traceparent_child("garbage", b); /* an invalid parent starts a new trace */
    assert_true(phx_traceparent_valid(b));
}

static void test_base64(void **state)
{
    (void)state;
    static const char *cases[][2] = {{"", ""},
                                     {"f", "Zg=="},
                                     {"fo", "Zm8="},
                                     {"foo", "Zm9v"},
                                     {"foob", "Zm9vYg=="},
                                     {"fooba", "Zm9vYmE="},
                                     {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *e = phx_base64_encode(cases[i][0], strlen(cases[i][0]));
        assert_string_equal(e, cases[i][1]);
        free(e);
        size_t n = 99;
        unsigned char *d = phx_base64_decode(cases[i][1], &n);
        assert_non_null(d);
        assert_int_equal(n, strlen(cases[i][0]));
        assert_memory_equal(d, cases[i][0], n);
        free(d);
    }
    static const char *bad[] = {"Zm9v!", "Zg=x", "@@@@"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n;
        assert_null(phx_base64_decode(bad[i], &n));
    }
}

static void test_parse(void **state)
{
    (void)state;
    static const struct {
        const char *payload, *want;
    } cases[] = {{"{\"a\":1}", NULL},
                 {"", "empty"},
                 {"not json", "invalid JSON"},
                 {"[1,2]", "not a JSON object"},
                 {"{\"a\":1,\"a\":2}", "invalid JSON"},
                 {"{\"a\":\"\\xff\"}", "invalid JSON"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char reason[256] = "";
        json_t *v =
            phx_msg_parse(cases[i].payload, strlen(cases[i].payload), reason, sizeof(reason));
        if (!cases[i].want) {
            assert_non_null(v);
        } else {
            assert_null(v);
            if (!strstr(reason, cases[i].want))
                fail_msg("payload %s: want '%s' got '%s'", cases[i].payload, cases[i].want, reason);
        }
        json_decref(v);
    }
    char *big = malloc(PHX_MSG_MAX_BYTES + 2);
    memset(big, ' ', PHX_MSG_MAX_BYTES + 1);
    char reason[256];
    assert_null(phx_msg_parse(big, PHX_MSG_MAX_BYTES + 1, reason, sizeof(reason)));
    assert_non_null(strstr(reason, "exceeds"));
    free(big);
}

static void test_ids(void **state)
{
    (void)state;
    char a[27], b[27];
    phx_id_new(a);
    phx_id_new(b);
    assert_int_equal(strlen(a), 26);
    assert_string_not_equal(a, b);
    assert_true(phx_id_valid(a));
    static const struct {
        const char *id;
        int ok;
    } cases[] = {{"J1", 1}, {"a.b:c-d_e", 1}, {"", 0}, {"a{b}", 0}, {"a b", 0}, {"é", 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(phx_id_valid(cases[i].id), cases[i].ok);
    /* Distinct across the random pool's refills (32 ids a refill)... */
    char many[100][27];
    for (int i = 0; i < 100; i++) {
        phx_id_new(many[i]);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(many[i], many[j]);
    }
    /* ...and across a fork: a child must not draw its parent's next random bytes. */
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c[27];
        phx_id_new(c);
        _exit(write(fd[1], c, sizeof(c)) == (ssize_t)sizeof(c) ? 0 : 1);
    }
    char mine[27], child[27];
    phx_id_new(mine);
    assert_int_equal(read(fd[0], child, sizeof(child)), (ssize_t)sizeof(child));
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    close(fd[0]), close(fd[1]);
    /* Same millisecond or not, the 80 random bits differ: compare those (the last 16 digits). */
    assert_string_not_equal(mine + 10, child + 10);
    char s[] = "ok \xff\xfe bad \xc3\xa9 good";
    phx_utf8_scrub(s);
    assert_string_equal(s, "ok ?? bad \xc3\xa9 good");
}

/* phx_deadline_ms: now + ms on the clock asked for, normalised (tv_nsec < 1e9), for carries
 * across the second and for both clocks the callers use. */
static void test_deadline(void **state)
{
    (void)state;
    static const struct {
        clockid_t clock;
        int64_t ms;
    } cases[] = {{CLOCK_REALTIME, 0},     {CLOCK_REALTIME, 1},     {CLOCK_REALTIME, 999},
                 {CLOCK_REALTIME, 1000},  {CLOCK_MONOTONIC, 1500}, {CLOCK_MONOTONIC, 100},
                 {CLOCK_MONOTONIC, 2999}, {CLOCK_REALTIME, 100000}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct timespec a, b;
        clock_gettime(cases[i].clock, &a);
        struct timespec d = phx_deadline_ms(cases[i].clock, cases[i].ms);
        clock_gettime(cases[i].clock, &b);
        assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
        int64_t dn = (int64_t)d.tv_sec * 1000000000 + d.tv_nsec;
        int64_t lo = (int64_t)a.tv_sec * 1000000000 + a.tv_nsec + cases[i].ms * 1000000;
        int64_t hi = (int64_t)b.tv_sec * 1000000000 + b.tv_nsec + cases[i].ms * 1000000;
        assert_true(dn >= lo && dn <= hi);
    }
}

/* phx_cond_init_monotonic: a wait until phx_deadline_ms(CLOCK_MONOTONIC, 50) lasts those
 * 50 ms (a realtime condition would read the monotonic deadline as decades past and return
 * at once). */
static void test_cond_monotonic(void **state)
{
    (void)state;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    phx_cond_init_monotonic(&cv);
    pthread_mutex_lock(&mu);
    int64_t t0 = phx_mono_ms();
    struct timespec until = phx_deadline_ms(CLOCK_MONOTONIC, 50);
    int rc;
    while ((rc = pthread_cond_timedwait(&cv, &mu, &until)) == 0)
        ;
    int64_t waited = phx_mono_ms() - t0;
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&cv);
    assert_int_equal(rc, ETIMEDOUT);
    assert_true(waited >= 49);
}

/* phx_fnv32/phx_fnv64 against the FNV reference's test vectors (64-bit from FNV's own basis:
 * PHX_FNV64_SEED is Phoenix's, util.h), and hashing in pieces equals hashing the whole (the
 * kb index, lexical embedder, schema and safety tables rely on both). */
static void test_fnv(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint32_t h32;
        uint64_t h64;
    } cases[] = {{"", 0x811c9dc5u, 0xcbf29ce484222325ULL},
                 {"a", 0xe40c292cu, 0xaf63dc4c8601ec8cULL},
                 {"foobar", 0xbf9cf968u, 0x85944171f73967e8ULL}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].s);
        assert_int_equal(phx_fnv32(PHX_FNV32_BASIS, cases[i].s, n), cases[i].h32);
        assert_true(phx_fnv64(0xcbf29ce484222325ULL, cases[i].s, n) == cases[i].h64);
        uint64_t ours = phx_fnv64(PHX_FNV64_SEED, cases[i].s, n);
        for (size_t k = 0; k <= n; k++) {
            assert_int_equal(
                phx_fnv32(phx_fnv32(PHX_FNV32_BASIS, cases[i].s, k), cases[i].s + k, n - k),
                cases[i].h32);
            assert_true(
                phx_fnv64(phx_fnv64(PHX_FNV64_SEED, cases[i].s, k), cases[i].s + k, n - k) == ours);
        }
    }
}

/* A dead letter must fit in a Kafka message whatever it carries: big originals keep only
 * their start, size and hash; long schema error lists are capped. */
static void test_dlq_bounded(void **state)
{
    (void)state;
    char errstr[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, "phx.jobs", NULL);
    size_t big = 1024 * 1024 + 10;
    char *payload = malloc(big);
    memset(payload, 'x', big);
    rd_kafka_message_t m = {.rkt = t, .payload = payload, .len = big, .key = "k1", .key_len = 2};
    json_t *errors = json_array();
    for (int i = 0; i < 400; i++)
        json_array_append_new(errors, json_string("/steps/0: some long validation error text"));
    json_t *d = phx_dlq_new(&m, "g", "message larger than 1 MiB", errors);
    char *s = json_dumps(d, JSON_COMPACT);
    assert_true(strlen(s) < 200 * 1024);
    assert_true(json_is_true(json_object_get(d, "payload_truncated")));
    assert_int_equal(json_integer_value(json_object_get(d, "payload_bytes")), (json_int_t)big);
    assert_int_equal(strlen(json_string_value(json_object_get(d, "payload_sha256"))), 64);
    assert_null(json_object_get(d, "payload"));
    assert_int_equal(json_array_size(json_object_get(d, "errors")), PHX_DLQ_MAX_ERRORS);
    assert_int_equal(json_integer_value(json_object_get(d, "errors_truncated")), 400);
    free(s);
    json_decref(d);
    /* A small original is kept whole, as bytes and as text. */
    m.len = 5;
    d = phx_dlq_new(&m, "g", "bad", NULL);
    assert_null(json_object_get(d, "payload_truncated"));
    assert_string_equal(json_string_value(json_object_get(d, "payload")), "xxxxx");
    assert_string_equal(json_string_value(json_object_get(d, "payload_b64")), "eHh4eHg=");
    json_decref(d);
    /* A NUL byte keeps the letter loadable by any JSON reader: no text form. */
    payload[2] = 0;
    d = phx_dlq_new(&m, "g", "bad", NULL);
    assert_null(json_object_get(d, "payload"));
    s = json_dumps(d, JSON_COMPACT);
    json_t *back = json_loads(s, 0, NULL);
    assert_non_null(back);
    json_decref(back);
    free(s);
    json_decref(d);
    json_decref(errors);
    free(payload);
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(rk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_pool),
        cmocka_unit_test(test_traceparent),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_dlq_bounded),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_fnv),
        cmocka_unit_test(test_cond_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
