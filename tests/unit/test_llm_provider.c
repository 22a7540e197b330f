/* test_llm_provider.c -- the provider chain against the fake OpenAI-compatible server.
 *
 * Starts tests/tools/fake_llm (built next to this binary) on a free port; it plays two
 * providers, "a" (http://127.0.0.1:PORT/a/v1) and "b" (.../b/v1), and requires an API key
 * from a file. Each case is a row: the fault rules given to the fake, then what the chain must
 * do: which provider answers (or which error), how many requests each provider saw, and time
 * bounds where waiting is the point (Retry-After, timeouts). Then the breaker (opening,
 * half-open recovery), key rotation and the "no key in any error" property. */
#include "../../workers/llm/provider.h"
#include "util.h"

#include <curl/curl.h>
#include <libgen.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define KEY1 "sk-test-key-one-0123456789"
#define KEY2 "sk-test-key-two-9876543210"

static pid_t fake_pid;
static int fake_port;
static char tmpdir[] = "/tmp/phx-llm-prov.XXXXXX";
static char key_srv[PATH_MAX], key_cli[PATH_MAX];
static CURL *curl;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* POST or GET to the fake's control endpoints; returns the body (malloc'd). */
static size_t collect(char *d, size_t s, size_t n, void *arg)
{
    char **buf = arg;
    size_t old = *buf ? strlen(*buf) : 0;
    *buf = realloc(*buf, old + s * n + 1);
    memcpy(*buf + old, d, s * n);
    (*buf)[old + s * n] = '\0';
    return s * n;
}

static char *control(const char *path, const char *body)
{
    char url[256], *out = NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", fake_port, path);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
    return out ? out : strdup("");
}

static void script(const char *rules)
{
    free(control("/_script", rules));
    free(control("/_reset", ""));
}

/* Requests the fake saw on provider p's chat endpoint. */
static long hits(const char *p, const char *endpoint)
{
    char *s = control("/_stats", NULL), path[64];
    json_t *j = json_loads(s, 0, NULL);
    snprintf(path, sizeof(path), "/%s/v1/%s", p, endpoint);
    long n = (long)json_integer_value(json_object_get(json_object_get(j, "paths"), path));
    json_decref(j);
    free(s);
    return n;
}

static int setup(void **st)
{
    (void)st;
    assert_non_null(mkdtemp(tmpdir));
    snprintf(key_srv, sizeof(key_srv), "%s/server.key", tmpdir);
    snprintf(key_cli, sizeof(key_cli), "%s/client.key", tmpdir);
    write_file(key_srv, KEY1 "\n");
    write_file(key_cli, KEY1 "\n");
    char exe[PATH_MAX], fake[PATH_MAX + 16], portf[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    snprintf(fake, sizeof(fake), "%s/fake_llm", dirname(exe));
    snprintf(portf, sizeof(portf), "%s/port", tmpdir);
    fake_pid = fork();
    if (fake_pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execl(fake, fake, "--port-file", portf, "--key-file", key_srv, "--dim", "8", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100 && !fake_port; i++) {
        FILE *f = fopen(portf, "r");
        if (f) {
            if (fscanf(f, "%d", &fake_port) != 1)
                fake_port = 0;
            fclose(f);
        }
        if (!fake_port)
            usleep(50000);
    }
    assert_true(fake_port > 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl = curl_easy_init();
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    kill(fake_pid, SIGTERM);
    waitpid(fake_pid, NULL, 0);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A chain a -> b with small timeouts and fast backoff. */
static void chain_init(phx_llm_chain *c, long breaker_min, long retries)
{
    memset(c, 0, sizeof(*c));
    c->backoff_ms = 20;
    c->backoff_max_ms = 100;
    c->retry_after_max_ms = 2000;
    phx_llm_defaults d = {.timeout_ms = 400,
                          .max_concurrency = 4,
                          .max_retries = retries,
                          .max_tokens = 1000,
                          .breaker = {10000, breaker_min, 50, 600, 1}};
    phx_err err;
    for (int i = 0; i < 2; i++) {
        char url[128];
        const char *name = i ? "b" : "a";
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/%s/v1", fake_port, name);
        json_t *spec =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:{s:s}}", "name", name, "base_url", url,
                      "model", "m-chat", "embed_model", "m-embed", "api_key_file", key_cli,
                      "embed_dim", 8, "models", "smart", i ? "b-smart" : "a-smart");
        if (phx_llm_chain_add(c, spec, &d, &err) < 0)
            fail_msg("chain_add: %s", err.message);
        json_decref(spec);
    }
}

static int chat_check(const json_t *resp, const phx_llm_provider *p, void *arg, char *why, size_t n)
{
    (void)p;
    (void)arg;
    if (!json_is_string(json_object_get(
            json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "message"),
            "content"))) {
        snprintf(why, n, "no content");
        return -1;
    }
    return 0;
}

static int embed_check(const json_t *resp, const phx_llm_provider *p, void *arg, char *why,
                       size_t n)
{
    (void)arg;
    json_t *e = json_object_get(json_array_get(json_object_get(resp, "data"), 0), "embedding");
    if ((long)json_array_size(e) != p->embed_dim) {
        snprintf(why, n, "dimension %zu", json_array_size(e));
        return -1;
    }
    return 0;
}

/* Run one chat request; returns 0/-1 like phx_llm_chain_post, out->resp freed. */
static int chat(phx_llm_chain *c, const char *model, const char *text, long deadline_ms,
                phx_llm_reply *out, phx_err *err)
{
    json_t *body = json_pack("{s:[{s:s, s:s}]}", "messages", "role", "user", "content", text);
    int64_t dl = deadline_ms ? phx_mono_ms() + deadline_ms : 0;
    int rc = phx_llm_chain_post(c, curl, PHX_LLM_CAP_CHAT, model, "/chat/completions", body, dl,
                                chat_check, NULL, out, err);
    json_decref(body);
    json_decref(out->resp);
    out->resp = NULL;
    return rc;
}

typedef struct fault_case {
    const char *name;
    const char *rules;
    const char *want;    /* provider name, or error code */
    long hits_a, hits_b; /* requests each provider must see (negative: at least -n) */
    long min_ms, max_ms;
} fault_case;

static const fault_case fault_cases[] = {
    {"healthy", "[]", "a", 1, 0, 0, 1000},
    {"503 twice then success", "[{\"path\":\"/a/\",\"status\":503,\"times\":2}]", "a", 3, 0, 0,
     1000},
    {"500 always: fall back to b", "[{\"path\":\"/a/\",\"status\":500}]", "b", 3, 1, 0, 1500},
    {"429 honours Retry-After",
     "[{\"path\":\"/a/\",\"status\":429,\"retry_after\":\"1\",\"times\":1}]", "a", 2, 0, 950, 2500},
    {"429 with Retry-After beyond the cap: next provider",
     "[{\"path\":\"/a/\",\"status\":429,\"retry_after\":\"60\"}]", "b", 1, 1, 0, 1000},
    {"408 is retried", "[{\"path\":\"/a/\",\"status\":408,\"times\":1}]", "a", 2, 0, 0, 1000},
    {"400 is not retried, no fallback", "[{\"path\":\"/a/\",\"status\":400}]", "provider_rejected",
     1, 0, 0, 1000},
    {"422 is not retried", "[{\"path\":\"/a/\",\"status\":422}]", "provider_rejected", 1, 0, 0,
     1000},
    {"404 (unknown model here): next provider, no retry", "[{\"path\":\"/a/\",\"status\":404}]",
     "b", 1, 1, 0, 1000},
    {"slow past the timeout", "[{\"path\":\"/a/\",\"delay_ms\":1500}]", "b", 3, 1, 1150, 2500},
    {"connection reset", "[{\"path\":\"/a/\",\"reset\":true}]", "b", -3, 1, 0, 1500},
    {"truncated JSON", "[{\"path\":\"/a/\",\"raw\":\"{\\\"choices\\\":[{\\\"mess\"}]", "b", 3, 1, 0,
     1500},
    {"malformed answer (no content)", "[{\"path\":\"/a/\",\"raw\":\"{\\\"choices\\\":[]}\"}]", "b",
     3, 1, 0, 1500},
    {"both down", "[{\"status\":503}]", "provider_unavailable", 3, 3, 0, 2000},
};

static void test_faults(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof(fault_cases) / sizeof(fault_cases[0]); i++) {
        const fault_case *fc = &fault_cases[i];
        phx_llm_chain c;
        chain_init(&c, 100, 2);
        script(fc->rules);
        phx_llm_reply out;
        phx_err err;
        phx_err_clear(&err);
        int64_t t0 = phx_mono_ms();
        int rc = chat(&c, NULL, "hello", 0, &out, &err);
        long ms = (long)(phx_mono_ms() - t0);
        const char *got = rc == 0 ? out.provider->name : err.code;
        if (strcmp(got, fc->want) != 0)
            fail_msg("%s: want %s, got %s (%s)", fc->name, fc->want, got, err.message);
        long ha = hits("a", "chat/completions"), hb = hits("b", "chat/completions");
        /* a negative count means "at least": libcurl itself retries once when a reused
         * keep-alive connection turns out to be closed, which the fake also counts */
        if ((fc->hits_a >= 0 ? ha != fc->hits_a : ha < -fc->hits_a) || hb != fc->hits_b)
            fail_msg("%s: want %ld/%ld requests on a/b, got %ld/%ld", fc->name, fc->hits_a,
                     fc->hits_b, ha, hb);
        if (ms < fc->min_ms || ms > fc->max_ms)
            fail_msg("%s: took %ld ms, want %ld..%ld", fc->name, ms, fc->min_ms, fc->max_ms);
        if (rc < 0 && strstr(err.message, "sk-test"))
            fail_msg("%s: the API key leaked into an error: %s", fc->name, err.message);
        if (!strcmp(fc->want, "provider_unavailable") || !strcmp(fc->want, "provider_rejected"))
            assert_int_equal(err.retryable, strcmp(fc->want, "provider_unavailable") == 0);
        phx_llm_chain_free(&c);
    }
}

static void test_model_map(void **st)
{
    (void)st;
    phx_llm_chain c;
    chain_init(&c, 100, 0);
    script("[{\"path\":\"/a/\",\"match\":\"a-smart\",\"status\":503}]");
    phx_llm_reply out;
    phx_err err;
    /* "smart" maps to a-smart on a (down for that model) and b-smart on b */
    assert_int_equal(chat(&c, "smart", "hi", 0, &out, &err), 0);
    assert_string_equal(out.provider->name, "b");
    assert_string_equal(out.model, "b-smart");
    assert_int_equal(chat(&c, "m-chat", "hi", 0, &out, &err), 0);
    assert_string_equal(out.provider->name, "a");
    assert_int_equal(chat(&c, "gpt-unknown", "hi", 0, &out, &err), -1);
    assert_string_equal(err.code, "model_unavailable");
    assert_false(err.retryable);
    phx_llm_chain_free(&c);
}

static void test_deadline(void **st)
{
    (void)st;
    phx_llm_chain c;
    chain_init(&c, 100, 2);
    script("[{\"delay_ms\":3000}]");
    phx_llm_reply out;
    phx_err err;
    int64_t t0 = phx_mono_ms();
    assert_int_equal(chat(&c, NULL, "hi", 300, &out, &err), -1);
    long ms = (long)(phx_mono_ms() - t0);
    assert_string_equal(err.code, "timeout");
    assert_true(err.retryable);
    if (ms > 800)
        fail_msg("the deadline of 300 ms was overrun: %ld ms", ms);
    phx_llm_chain_free(&c);
}

static void test_breaker_open_and_recover(void **st)
{
    (void)st;
    phx_llm_chain c;
    chain_init(&c, 4, 0); /* opens after 4 outcomes at >= 50% failures; 1 probe */
    script("[{\"path\":\"/a/\",\"status\":503}]");
    phx_llm_reply out;
    phx_err err;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(chat(&c, NULL, "hi", 0, &out, &err), 0);
        assert_string_equal(out.provider->name, "b");
    }
    assert_int_equal(phx_breaker_state(&c.p[0].breaker, phx_mono_ms()), PHX_BREAKER_OPEN);
    long before = hits("a", "chat/completions");
    for (int i = 0; i < 5; i++) {
        assert_int_equal(chat(&c, NULL, "hi", 0, &out, &err), 0);
        assert_string_equal(out.provider->name, "b");
    }
    assert_int_equal(hits("a", "chat/completions"), before); /* open: a is not even tried */
    /* a recovers; after the open interval one probe closes the breaker */
    script("[]");
    phx_sleep_ms(800);
    assert_int_equal(phx_breaker_state(&c.p[0].breaker, phx_mono_ms()), PHX_BREAKER_HALF_OPEN);
    assert_int_equal(chat(&c, NULL, "hi", 0, &out, &err), 0);
    assert_string_equal(out.provider->name, "a");
    assert_int_equal(phx_breaker_state(&c.p[0].breaker, phx_mono_ms()), PHX_BREAKER_CLOSED);
    /* a failed probe re-opens it */
    script("[{\"path\":\"/a/\",\"status\":503}]");
    for (int i = 0; i < 4; i++)
        chat(&c, NULL, "hi", 0, &out, &err);
    assert_int_equal(phx_breaker_state(&c.p[0].breaker, phx_mono_ms()), PHX_BREAKER_OPEN);
    phx_sleep_ms(800);
    assert_int_equal(chat(&c, NULL, "hi", 0, &out, &err), 0);
    assert_string_equal(out.provider->name, "b");
    assert_int_equal(phx_breaker_state(&c.p[0].breaker, phx_mono_ms()), PHX_BREAKER_OPEN);
    phx_llm_chain_free(&c);
}

static void test_key_rotation(void **st)
{
    (void)st;
    phx_llm_chain c;
    chain_init(&c, 100, 0);
    script("[]");
    phx_llm_reply out;
    phx_err err;
    assert_int_equal(chat(&c, NULL, "hi", 0, &out, &err), 0);
    /* the server rotates: the old key is refused everywhere, and the error says so without
     * the key */
    write_file(key_srv, KEY2 "\n");
    assert_int_equal(chat(&c, NULL, "hi", 0, &out, &err), -1);
    assert_non_null(strstr(err.message, "401"));
    assert_null(strstr(err.message, "sk-test"));
    /* the operator writes the new key; SIGHUP re-reads it */
    write_file(key_cli, KEY2 "\n");
    assert_int_equal(chat(&c, NULL, "hi", 0, &out, &err), -1); /* not before the reload */
    assert_int_equal(phx_llm_chain_reload_keys(&c), 0);
    assert_int_equal(chat(&c, NULL, "hi", 0, &out, &err), 0);
    /* an unreadable key file keeps the previous key */
    unlink(key_cli);
    assert_int_equal(phx_llm_chain_reload_keys(&c), 2);
    assert_int_equal(chat(&c, NULL, "hi", 0, &out, &err), 0);
    write_file(key_cli, KEY1 "\n");
    write_file(key_srv, KEY1 "\n");
    phx_llm_chain_free(&c);
}

static void test_embed_dimension(void **st)
{
    (void)st;
    phx_llm_chain c;
    chain_init(&c, 100, 1);
    script("[{\"path\":\"/a/\",\"dim\":5}]");
    json_t *body = json_pack("{s:[s]}", "input", "hello");
    phx_llm_reply out;
    phx_err err;
    assert_int_equal(phx_llm_chain_post(&c, curl, PHX_LLM_CAP_EMBED, NULL, "/embeddings", body, 0,
                                        embed_check, NULL, &out, &err),
                     0);
    assert_string_equal(out.provider->name, "b");
    assert_string_equal(out.model, "m-embed");
    assert_int_equal(hits("a", "embeddings"), 2);
    json_decref(out.resp);
    json_decref(body);
    phx_llm_chain_free(&c);
}

static void test_bad_config(void **st)
{
    (void)st;
    static const char *bad[] = {
        "{\"name\":\"x\",\"base_url\":\"ftp://h/v1\",\"model\":\"m\"}",
        "{\"name\":\"bad name\",\"base_url\":\"http://h/v1\",\"model\":\"m\"}",
        "{\"name\":\"x\",\"base_url\":\"http://h/v1\"}",
        "{\"name\":\"x\",\"base_url\":\"http://h/v1\",\"model\":\"m\",\"api_key_file\":\"/no/"
        "such\"}",
    };
    phx_llm_defaults d = {.timeout_ms = 1000,
                          .max_concurrency = 1,
                          .max_tokens = 10,
                          .breaker = {1000, 1, 50, 100, 1}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        phx_llm_chain c = {0};
        phx_err err;
        json_t *spec = json_loads(bad[i], 0, NULL);
        assert_int_equal(phx_llm_chain_add(&c, spec, &d, &err), -1);
        assert_string_equal(err.code, "bad_config");
        json_decref(spec);
        phx_llm_chain_free(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faults),       cmocka_unit_test(test_model_map),
        cmocka_unit_test(test_deadline),     cmocka_unit_test(test_breaker_open_and_recover),
        cmocka_unit_test(test_key_rotation), cmocka_unit_test(test_embed_dimension),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
