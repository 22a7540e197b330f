/* test_intel.c -- threat intelligence feeds (lib/intel.c): the parser (what loads, what is
 * reported and skipped) and matching of every entry type, expiry included, as tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "intel.h"

static const char feed[] =
    "# phx-intel v1\n"
    "@source test-feed\n"
    "domain Evil.Example.\n"
    "domain .suffix.test\n"
    "ip 203.0.113.7\n"
    "cidr 198.51.100.0/24\n"
    "cidr 2001:db8:bad::/48\n"
    "url http*://cdn.example.net/payload/*\n"
    "url https://exact.example/x\n"
    "sha256 E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\n"
    "prompt Ignore   ALL previous instructions\n"
    "@source old-feed\n"
    "@expires 2001-01-01T00:00:00Z\n"
    "domain expired.example\n"
    "prompt this signature has expired\n"
    "@expires never\n"
    "domain fresh.example\n";

/* Bad lines: each reported with its line number and skipped, the rest still loads. */
static const char bad_feed[] = "domain\n"                  /* 1: no value */
                               "domain bad_host!\n"        /* 2 */
                               "ip 300.1.1.1\n"            /* 3 */
                               "ip 10.0.0.0/8\n"           /* 4: ip takes no prefix */
                               "cidr 10.0.0.0/33\n"        /* 5 */
                               "url notaurl\n"             /* 6 */
                               "sha256 abc\n"              /* 7 */
                               "prompt short\n"            /* 8 */
                               "colour blue\n"             /* 9 */
                               "@expires tomorrow\n"       /* 10 */
                               "domain still.loads.test\n" /* 11: ok */
                               "   # indented comment\n"
                               "\n";

static int nproblems;
static int problem_lines[32];
static void on_problem(void *arg, const char *file, int line, const char *why)
{
    (void)arg, (void)file, (void)why;
    if (nproblems < 32)
        problem_lines[nproblems] = line;
    nproblems++;
}

static phx_intel_set *load(const char *text)
{
    phx_intel_set *s = NULL;
    nproblems = 0;
    phx_intel_parse(&s, text, strlen(text), "t.intel", on_problem, NULL);
    phx_intel_finish(s);
    return s;
}

typedef struct mcase {
    char what; /* h host, i ip, u url, s sha256, p prompt */
    const char *in;
    const char *want; /* entry that matches, or NULL for none */
    const char *source;
} mcase;

static const mcase mcases[] = {
    {'h', "evil.example", "evil.example", "test-feed"},
    {'h', "EVIL.example.", "evil.example", "test-feed"},
    {'h', "a.b.evil.example", "evil.example", "test-feed"},
    {'h', "notevil.example", NULL, NULL},
    {'h', "evil.example.com", NULL, NULL},
    {'h', "x.suffix.test", "suffix.test", "test-feed"},
    {'h', "203.0.113.7", "203.0.113.7", "test-feed"},
    {'h', "[2001:db8:bad::1]", "2001:db8:bad::/48", "test-feed"},
    {'h', "expired.example", NULL, NULL},
    {'h', "fresh.example", "fresh.example", "old-feed"},
    {'h', "", NULL, NULL},
    {'i', "203.0.113.7", "203.0.113.7", "test-feed"},
    {'i', "203.0.113.8", NULL, NULL},
    {'i', "198.51.100.200", "198.51.100.0/24", "test-feed"},
    {'i', "198.51.101.1", NULL, NULL},
    {'i', "::ffff:198.51.100.9", "198.51.100.0/24", "test-feed"},
    {'i', "2001:db8:bad:ffff::2", "2001:db8:bad::/48", "test-feed"},
    {'i', "2001:db8:bae::1", NULL, NULL},
    {'i', "not-an-ip", NULL, NULL},
    {'u', "https://cdn.example.net/payload/x.exe", "http*://cdn.example.net/payload/*",
     "test-feed"},
    {'u', "HTTP://CDN.example.net/payload/a", "http*://cdn.example.net/payload/*", "test-feed"},
    {'u', "https://cdn.example.net/other", NULL, NULL},
    {'u', "https://exact.example/x", "https://exact.example/x", "test-feed"},
    {'u', "https://exact.example/xy", NULL, NULL},
    {'s', "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "test-feed"},
    {'s', "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b856", NULL, NULL},
    {'s', "e3b0", NULL, NULL},
    {'p', "Please IGNORE all\n\tprevious   instructions, then...",
     "ignore all previous instructions", "test-feed"},
    {'p', "ignore all the previous instructions", NULL, NULL},
    {'p', "this signature has expired", NULL, NULL},
};

static void test_intel_match_table(void **state)
{
    (void)state;
    phx_intel_set *s = load(feed);
    assert_int_equal(nproblems, 0);
    assert_int_equal(phx_intel_count(s, PHX_INTEL_DOMAIN), 4);
    assert_int_equal(phx_intel_count(s, PHX_INTEL_IP), 3);
    assert_int_equal(phx_intel_count(s, PHX_INTEL_PROMPT), 2);
    int64_t now = 1800000000000LL; /* 2027 */
    for (size_t i = 0; i < sizeof(mcases) / sizeof(mcases[0]); i++) {
        const mcase *c = &mcases[i];
        phx_intel_hit hit;
        memset(&hit, 0, sizeof(hit));
        int m = c->what == 'h'   ? phx_intel_set_match_host(s, c->in, now, &hit)
                : c->what == 'i' ? phx_intel_set_match_ip(s, c->in, now, &hit)
                : c->what == 'u' ? phx_intel_set_match_url(s, c->in, now, &hit)
                : c->what == 's' ? phx_intel_set_match_sha256(s, c->in, now, &hit)
                                 : phx_intel_set_match_prompt(s, c->in, strlen(c->in), now, &hit);
        if (m != (c->want != NULL) || (c->want && strcmp(hit.entry, c->want) != 0) ||
            (c->source && strcmp(hit.source, c->source) != 0))
            fail_msg("%c %s: want [%s/%s] got %d [%s/%s]", c->what, c->in, c->want ? c->want : "-",
                     c->source ? c->source : "-", m, hit.entry, hit.source);
    }
    /* Before its expiry an entry matches. */
    assert_int_equal(phx_intel_set_match_host(s, "expired.example", 900000000000LL, NULL), 1);
    phx_intel_set_free(s);
}

static void test_intel_bad_lines(void **state)
{
    (void)state;
    phx_intel_set *s = load(bad_feed);
    assert_int_equal(nproblems, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(problem_lines[i], i + 1);
    assert_int_equal(phx_intel_count(s, PHX_INTEL_DOMAIN), 1);
    assert_int_equal(phx_intel_set_match_host(s, "still.loads.test", 0, NULL), 1);
    phx_intel_set_free(s);
}

/* Hostile input: NUL bytes, a line longer than the buffer, no final newline. */
static void test_intel_hostile(void **state)
{
    (void)state;
    size_t n = 5000;
    char *t = malloc(n + 64);
    memset(t, 'a', n);
    memcpy(t + n, "\ndomain ok.test", 15);
    t[10] = '\0';
    phx_intel_set *s = NULL;
    nproblems = 0;
    phx_intel_parse(&s, t, n + 15, "h", on_problem, NULL);
    phx_intel_finish(s);
    assert_true(nproblems >= 1);
    assert_int_equal(phx_intel_set_match_host(s, "ok.test", 0, NULL), 1);
    phx_intel_set_free(s);
    free(t);
}

/* The file-backed feeds: loaded at open, reloaded when the file changes. */
static void test_intel_reload(void **state)
{
    (void)state;
    char path[] = "/tmp/phx-intel-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "domain one.test\n", 16), 16);
    close(fd);
    phx_err err;
    phx_intel *in = phx_intel_open(path, 0, &err);
    assert_non_null(in);
    assert_int_equal(phx_intel_match_host(in, "one.test", NULL), 1);
    assert_int_equal(phx_intel_refresh(in, 0, &err), 0); /* unchanged */
    FILE *f = fopen(path, "w");
    fputs("domain two.test\nprompt a brand new signature\n", f);
    fclose(f);
    assert_int_equal(phx_intel_refresh(in, 0, &err), 1);
    assert_int_equal(phx_intel_match_host(in, "one.test", NULL), 0);
    assert_int_equal(phx_intel_match_host(in, "x.two.test", NULL), 1);
    const char *p = "here is A BRAND new signature!";
    assert_int_equal(phx_intel_match_prompt(in, p, strlen(p), NULL), 1);
    unlink(path);
    assert_int_equal(phx_intel_refresh(in, 1, &err), -1); /* gone: the old set stays */
    assert_int_equal(phx_intel_match_host(in, "two.test", NULL), 1);
    phx_intel_close(in);
    assert_null(phx_intel_open("/nonexistent/feed.intel", 0, &err));
    assert_int_equal(phx_intel_match_host(NULL, "two.test", NULL), 0);
}

/* phx intel import, one line at a time: kind | input line | result (entries, 0 none, -1 bad) |
 * the feed lines written, or for 0 and -1 a word of the reason ("" = blank or comment). */
static const struct {
    phx_intel_type kind;
    const char *line;
    int rc;
    const char *want;
} import_cases[] = {
    {PHX_INTEL_DOMAIN, "Bad.Example.", 1, "domain bad.example\n"},
    {PHX_INTEL_DOMAIN, "bad.example   # listed 2026-01-02\r\n", 1, "domain bad.example\n"},
    {PHX_INTEL_DOMAIN, "*.wild.example", 1, "domain wild.example\n"},
    {PHX_INTEL_DOMAIN, "0.0.0.0 ads.example tracker.example", 2,
     "domain ads.example\ndomain tracker.example\n"},
    {PHX_INTEL_DOMAIN, "127.0.0.1\tlocalhost", 0, "boilerplate"},
    {PHX_INTEL_DOMAIN, "::1 ip6-localhost ip6-loopback", 0, "boilerplate"},
    {PHX_INTEL_DOMAIN, "0.0.0.0 0.0.0.0", 0, "boilerplate"},
    {PHX_INTEL_DOMAIN, "||evil.example^", 1, "domain evil.example\n"},
    {PHX_INTEL_DOMAIN, "||evil.example^$third-party,script", 1, "domain evil.example\n"},
    {PHX_INTEL_DOMAIN, "||evil.example/ads/*^", -1, "path"},
    {PHX_INTEL_DOMAIN, "@@||good.example^", 0, "exception"},
    {PHX_INTEL_DOMAIN, "example.com##.banner", 0, "element-hiding"},
    {PHX_INTEL_DOMAIN, "[Adblock Plus 2.0]", 0, "header"},
    {PHX_INTEL_DOMAIN, "! Title: a list", 0, ""},
    {PHX_INTEL_DOMAIN, "# comment", 0, ""},
    {PHX_INTEL_DOMAIN, "   ", 0, ""},
    {PHX_INTEL_DOMAIN, "http://bad.example/x", -1, "URL"},
    {PHX_INTEL_DOMAIN, "203.0.113.9", -1, "address"},
    {PHX_INTEL_DOMAIN, "bad_host!", -1, "domain"},
    {PHX_INTEL_DOMAIN, "a.example b.example", -1, "more than one"},
    {PHX_INTEL_IP, "203.0.113.9", 1, "ip 203.0.113.9\n"},
    {PHX_INTEL_IP, "198.51.100.0/24 ; SBL123", 1, "cidr 198.51.100.0/24\n"},
    {PHX_INTEL_IP, "2001:db8::/32", 1, "cidr 2001:db8::/32\n"},
    {PHX_INTEL_IP, "300.1.1.1", -1, "address"},
    {PHX_INTEL_IP, "0.0.0.0 bad.example", -1, "more than one"},
    {PHX_INTEL_URL, "http://cdn.example/payload.exe", 1, "url http://cdn.example/payload.exe\n"},
    {PHX_INTEL_URL, "https://x.example/a#frag", 1, "url https://x.example/a#frag\n"},
    {PHX_INTEL_URL, "cdn.example/payload.exe", -1, "URL"},
    {PHX_INTEL_URL, "||evil.example^", -1, "--kind domains"},
    {PHX_INTEL_URL, "0.0.0.0 bad.example", -1, "hosts-file"},
    {PHX_INTEL_SHA256, "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855  a.exe", 1,
     "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"},
    {PHX_INTEL_SHA256, "d41d8cd98f00b204e9800998ecf8427e", -1, "MD5"},
    {PHX_INTEL_SHA256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85z", -1,
     "hex"},
};

/* Every case: the entries written, or the reason; and what is written loads as a feed without
 * a problem (the importer and the loader agree). */
static void test_intel_import_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(import_cases) / sizeof(import_cases[0]); i++) {
        char out[1024];
        const char *why = NULL;
        int rc = phx_intel_import_line(import_cases[i].kind, import_cases[i].line, out, sizeof(out),
                                       &why);
        if (rc != import_cases[i].rc)
            fail_msg("case %zu (%s): rc %d, want %d (%s)", i, import_cases[i].line, rc,
                     import_cases[i].rc, why ? why : "-");
        if (rc > 0) {
            assert_string_equal(out, import_cases[i].want);
            nproblems = 0;
            phx_intel_set *s = NULL;
            assert_int_equal(phx_intel_parse(&s, out, strlen(out), "import", on_problem, NULL), rc);
            assert_int_equal(nproblems, 0);
            phx_intel_set_free(s);
        } else if (!import_cases[i].want[0]) {
            assert_null(why);
        } else if (!why || !strstr(why, import_cases[i].want)) {
            fail_msg("case %zu (%s): reason [%s] lacks [%s]", i, import_cases[i].line,
                     why ? why : "(none)", import_cases[i].want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intel_match_table),  cmocka_unit_test(test_intel_bad_lines),
        cmocka_unit_test(test_intel_hostile),      cmocka_unit_test(test_intel_reload),
        cmocka_unit_test(test_intel_import_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
