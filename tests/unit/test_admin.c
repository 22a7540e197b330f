/* test_admin.c -- the admin listener over real HTTP on loopback: /healthz (ok and stuck),
 * /readyz both ways, /metrics and its content type, 404/405, extra routes, the request counter,
 * and start failures (bad address, port in use). */
#include "admin.h"
#include "metrics.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_resp {
    long code;
    char *body;
    size_t len;
    char ctype[128];
    char allow[64];
};

static size_t http_write(char *p, size_t size, size_t n, void *ud)
{
    struct http_resp *r = ud;
    char *grown = realloc(r->body, r->len + size * n + 1);
    if (!grown)
        return 0;
    memcpy(grown + r->len, p, size * n);
    r->len += size * n;
    grown[r->len] = '\0';
    r->body = grown;
    return size * n;
}

static size_t http_header(char *p, size_t size, size_t n, void *ud)
{
    struct http_resp *r = ud;
    size_t len = size * n;
    if (len > 14 && strncasecmp(p, "Content-Type: ", 14) == 0)
        snprintf(r->ctype, sizeof(r->ctype), "%.*s", (int)(len - 14), p + 14);
    else if (len > 7 && strncasecmp(p, "Allow: ", 7) == 0)
        snprintf(r->allow, sizeof(r->allow), "%.*s", (int)(len - 7), p + 7);
    else
        return len;
    /* drop the CRLF */
    char *s = strncasecmp(p, "Allow", 5) == 0 ? r->allow : r->ctype;
    s[strcspn(s, "\r\n")] = '\0';
    return len;
}

/* method NULL = GET; post_body non-NULL sends a POST body. */
static struct http_resp http(const phx_admin *a, const char *method, const char *path,
                             const char *post_body)
{
    struct http_resp r = {0};
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", phx_admin_port(a), path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    if (post_body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_body);
    if (method && strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (method)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        fail_msg("%s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.code);
    curl_easy_cleanup(c);
    if (!r.body)
        r.body = strdup("");
    return r;
}

static void expect(const phx_admin *a, const char *method, const char *path, long code,
                   const char *body)
{
    struct http_resp r = http(a, method, path, NULL);
    assert_int_equal(r.code, code);
    if (body)
        assert_string_equal(r.body, body);
    free(r.body);
}

struct readiness {
    int ready;
    const char *why;
};

static int test_ready(void *ctx, char *why, size_t whylen)
{
    struct readiness *rd = ctx;
    if (rd->ready)
        return 0;
    snprintf(why, whylen, "%s", rd->why);
    return -1;
}

static phx_admin *start(struct readiness *rd)
{
    char err[256] = "";
    phx_admin *a = phx_admin_start("127.0.0.1:0", rd ? test_ready : NULL, rd, err, sizeof(err));
    if (!a)
        fail_msg("phx_admin_start: %s", err);
    assert_true(phx_admin_port(a) > 0);
    return a;
}

static void test_healthz(void **state)
{
    (void)state;
    phx_admin *a = start(NULL);
    struct http_resp r = http(a, NULL, "/healthz", NULL);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    assert_string_equal(r.ctype, "application/json");
    free(r.body);

    /* No heartbeat for longer than stuck_after: stuck, with the age. */
    phx_admin_set_stuck_after_ms(a, 50);
    phx_sleep_ms(120);
    r = http(a, NULL, "/healthz", NULL);
    assert_int_equal(r.code, 503);
    json_t *o = json_loads(r.body, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "stuck");
    json_int_t since = json_integer_value(json_object_get(o, "since_ms"));
    assert_true(since >= 100 && since < 60000);
    json_decref(o);
    free(r.body);

    /* A heartbeat makes it healthy again. */
    phx_admin_heartbeat(a);
    expect(a, NULL, "/healthz", 200, "{\"status\":\"ok\"}");
    expect(a, "HEAD", "/healthz", 200, "");
    phx_admin_stop(a);
}

static void test_readyz(void **state)
{
    (void)state;
    struct readiness rd = {.ready = 1};
    phx_admin *a = start(&rd);
    expect(a, NULL, "/readyz", 200, "{\"status\":\"ready\"}");

    rd.ready = 0;
    rd.why = "kafka \"down\"\n";
    struct http_resp r = http(a, NULL, "/readyz", NULL);
    assert_int_equal(r.code, 503);
    assert_string_equal(r.ctype, "application/json");
    json_t *o = json_loads(r.body, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "not_ready");
    assert_string_equal(json_string_value(json_object_get(o, "reason")), "kafka \"down\"\n");
    json_decref(o);
    free(r.body);

    rd.why = ""; /* a callback that says no without saying why */
    expect(a, NULL, "/readyz", 503, "{\"status\":\"not_ready\",\"reason\":\"unspecified\"}");
    rd.ready = 1;
    expect(a, NULL, "/readyz", 200, NULL);
    phx_admin_stop(a);
}

static void test_metrics_and_errors(void **state)
{
    (void)state;
    phx_admin *a = start(NULL);
    phx_metric_add(phx_counter("phx_test_admin_total", "Test counter.", NULL), 1);
    expect(a, NULL, "/healthz", 200, NULL);
    expect(a, NULL, "/nope", 404, "{\"error\":\"not_found\"}");
    expect(a, NULL, "/healthz/x", 404, NULL);
    expect(a, "DELETE", "/metrics", 405, "{\"error\":\"method_not_allowed\"}");

    struct http_resp r = http(a, NULL, "/healthz", "some body");
    assert_int_equal(r.code, 405);
    assert_string_equal(r.allow, "GET, HEAD");
    free(r.body);

    r = http(a, NULL, "/metrics", NULL);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(r.body, "\nphx_test_admin_total 1\n"));
    assert_non_null(strstr(r.body, "# TYPE phx_admin_requests_total counter\n"));
    assert_non_null(strstr(r.body, "phx_admin_requests_total{code=\"404\",path=\"other\"} 2\n"));
    assert_non_null(strstr(r.body, "phx_admin_requests_total{code=\"405\",path=\"/healthz\"} 1\n"));
    assert_non_null(strstr(r.body, "phx_admin_requests_total{code=\"405\",path=\"/metrics\"} 1\n"));
    /* Unknown paths never become label values. */
    assert_null(strstr(r.body, "nope"));
    free(r.body);
    phx_admin_stop(a);
}

static int ops_route(void *ctx, const char *method, const char *path, char **body,
                     const char **ctype)
{
    int *calls = ctx;
    (*calls)++;
    if (strcmp(path, "/ops/bad") == 0)
        return 42; /* not an HTTP status: the listener answers 500 */
    char buf[128];
    snprintf(buf, sizeof(buf), "%s %s", method, path);
    *body = strdup(buf);
    *ctype = "text/html; charset=utf-8";
    return strcmp(method, "POST") == 0 ? 202 : 200;
}

static int ops_deep_route(void *ctx, const char *method, const char *path, char **body,
                          const char **ctype)
{
    (void)ctx;
    (void)method;
    (void)path;
    (void)ctype;
    *body = NULL; /* empty body, default content type */
    return 204;
}

static void test_routes(void **state)
{
    (void)state;
    int calls = 0;
    phx_admin *a = start(NULL);
    phx_admin_add_route(a, "/ops", ops_route, &calls);
    phx_admin_add_route(a, "/ops/deep/", ops_deep_route, NULL);
    phx_admin_add_route(a, "/healthz", ops_route, &calls); /* built-ins cannot be overridden */

    struct http_resp r = http(a, NULL, "/ops", NULL);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "GET /ops");
    assert_string_equal(r.ctype, "text/html; charset=utf-8");
    free(r.body);
    expect(a, NULL, "/ops/jobs/1", 200, "GET /ops/jobs/1");
    r = http(a, NULL, "/ops/submit", "{\"x\":1}");
    assert_int_equal(r.code, 202);
    assert_string_equal(r.body, "POST /ops/submit");
    free(r.body);
    expect(a, NULL, "/opsx", 404, NULL);
    expect(a, NULL, "/ops/deep/x", 204, "");
    expect(a, NULL, "/ops/bad", 500, "");
    expect(a, NULL, "/healthz", 200, "{\"status\":\"ok\"}");
    assert_int_equal(calls, 4);

    r = http(a, NULL, "/metrics", NULL);
    assert_non_null(strstr(r.body, "phx_admin_requests_total{code=\"202\",path=\"/ops\"} 1\n"));
    assert_non_null(
        strstr(r.body, "phx_admin_requests_total{code=\"204\",path=\"/ops/deep/\"} 1\n"));
    free(r.body);
    phx_admin_stop(a);
}

static void test_start_failures(void **state)
{
    (void)state;
    char err[256];
    phx_admin *a = start(NULL);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", phx_admin_port(a));
    assert_null(phx_admin_start(addr, NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, addr));
    phx_admin_stop(a);

    assert_null(phx_admin_start("127.0.0.1", NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "bad listen address"));
    assert_null(phx_admin_start("127.0.0.1:99999", NULL, NULL, err, sizeof(err)));
    assert_null(phx_admin_start("::1:80", NULL, NULL, err, sizeof(err)));
    assert_null(phx_admin_start("[::1]80", NULL, NULL, err, sizeof(err)));
    assert_null(phx_admin_start("256.1.1.1:0", NULL, NULL, err, sizeof(err)));

    /* ":PORT" and NULL default to loopback. */
    a = phx_admin_start(":0", NULL, NULL, err, sizeof(err));
    assert_non_null(a);
    expect(a, NULL, "/healthz", 200, NULL);
    phx_admin_stop(a);
    a = phx_admin_start(NULL, NULL, NULL, NULL, 0);
    assert_non_null(a);
    phx_admin_stop(a);
    phx_admin_stop(NULL);
}

static void test_ipv6(void **state)
{
    (void)state;
    char err[256];
    phx_admin *a = phx_admin_start("[::1]:0", NULL, NULL, err, sizeof(err));
    if (!a) /* containers without IPv6 on lo */
        skip();
    char url[96];
    snprintf(url, sizeof(url), "http://[::1]:%d/healthz", phx_admin_port(a));
    CURL *c = curl_easy_init();
    struct http_resp r = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.code);
    curl_easy_cleanup(c);
    assert_int_equal(r.code, 200);
    free(r.body);
    phx_admin_stop(a);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthz),
        cmocka_unit_test(test_readyz),
        cmocka_unit_test(test_metrics_and_errors),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_start_failures),
        cmocka_unit_test(test_ipv6),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
