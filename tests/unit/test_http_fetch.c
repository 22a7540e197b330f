/* test_http_fetch.c -- tool.http_fetch against a real HTTP server started inside the test.
 *
 * A libmicrohttpd daemon on 127.0.0.1 (kernel-chosen port) serves the endpoints below; every
 * case is a row of input JSON ("@PORT@" stands for the server's port, "@CLOSED@" for a port
 * nobody listens on) plus fetch configuration and what must come out. Because the server is on
 * loopback, the same URL proves both sides of the SSRF policy: refused by default, reachable
 * once allow_cidrs lists 127.0.0.0/8. Literal private addresses (10.0.0.1, 169.254.169.254...)
 * are refused before any connection, so they need no server and no network.
 *
 *   /text            200 "hello, world\n", X-Test-Header: Value, X-Dup: a + X-Dup: b
 *   /large           200, FETCH_LARGE bytes
 *   /utf8            200, 100 x "é" (2 bytes each), to truncate inside a character
 *   /binary          200, bytes ff fe 00 01 80
 *   /fail            500 "oops"
 *   /echo            the request body back; X-Method, X-Custom-Echo, X-Empty-Seen headers
 *   /slow            200 after FETCH_SLOW_MS
 *   /redirect        302 -> http://127.0.0.1:PORT/text
 *   /redirect-*      302 -> a refused target (10.0.0.1, 169.254.169.254, 127.0.0.2, [::1],
 *                    file:///etc/passwd)
 *   /loop            302 -> /loop */
#include "../../workers/tools/http_fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define FETCH_LARGE   (1024 * 1024)
#define FETCH_SLOW_MS 3000

/* --- the server --------------------------------------------------------------------------- */

typedef struct srv {
    struct MHD_Daemon *d;
    int port;
    int closed_port;
    int stopping; /* read by /slow handlers, via __atomic */
    char *large;
} srv;

typedef struct srv_req {
    char *body;
    size_t len;
} srv_req;

static enum MHD_Result srv_send(struct MHD_Connection *c, unsigned status, const void *data,
                                size_t len, const char *hdr, const char *val)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (hdr)
        MHD_add_response_header(r, hdr, val);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result srv_redirect(struct MHD_Connection *c, const char *location)
{
    return srv_send(c, MHD_HTTP_FOUND, "moved", 5, MHD_HTTP_HEADER_LOCATION, location);
}

static enum MHD_Result srv_handler(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_size, void **con_cls)
{
    srv *s = cls;
    (void)version;
    srv_req *req = *con_cls;
    if (!req) {
        /* First call: headers only. Answer on a later call, after any body arrived. */
        req = calloc(1, sizeof(*req));
        *con_cls = req;
        return req ? MHD_YES : MHD_NO;
    }
    if (*upload_size) {
        char *nb = realloc(req->body, req->len + *upload_size);
        if (!nb)
            return MHD_NO;
        memcpy(nb + req->len, upload_data, *upload_size);
        req->body = nb;
        req->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }

    char loc[128];
    if (strcmp(url, "/text") == 0) {
        struct MHD_Response *r =
            MHD_create_response_from_buffer(13, "hello, world\n", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Content-Type", "text/plain");
        MHD_add_response_header(r, "X-Test-Header", "Value");
        MHD_add_response_header(r, "X-Dup", "a");
        MHD_add_response_header(r, "X-Dup", "b");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (strcmp(url, "/large") == 0)
        return srv_send(c, MHD_HTTP_OK, s->large, FETCH_LARGE, NULL, NULL);
    if (strcmp(url, "/utf8") == 0) {
        char buf[201];
        for (int i = 0; i < 100; i++)
            memcpy(buf + 2 * i, "\xc3\xa9", 2);
        return srv_send(c, MHD_HTTP_OK, buf, 200, NULL, NULL);
    }
    if (strcmp(url, "/binary") == 0)
        return srv_send(c, MHD_HTTP_OK, "\xff\xfe\x00\x01\x80", 5, NULL, NULL);
    if (strcmp(url, "/fail") == 0)
        return srv_send(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "oops", 4, NULL, NULL);
    if (strcmp(url, "/echo") == 0) {
        const char *custom = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Custom");
        const char *empty = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Empty");
        struct MHD_Response *r = MHD_create_response_from_buffer(
            req->len, req->body ? req->body : "", MHD_RESPMEM_MUST_COPY);
        MHD_add_response_header(r, "X-Method", method);
        MHD_add_response_header(r, "X-Custom-Echo", custom ? custom : "(none)");
        MHD_add_response_header(r, "X-Empty-Seen", empty ? "yes" : "no");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (strcmp(url, "/slow") == 0) {
        /* Thread-per-connection, so sleeping here stalls only this request; the stop flag
         * lets teardown finish without waiting out the full delay. */
        for (int i = 0; i < FETCH_SLOW_MS / 10 && !__atomic_load_n(&s->stopping, __ATOMIC_SEQ_CST);
             i++)
            usleep(10 * 1000);
        return srv_send(c, MHD_HTTP_OK, "slow", 4, NULL, NULL);
    }
    if (strcmp(url, "/redirect") == 0) {
        snprintf(loc, sizeof(loc), "http://127.0.0.1:%d/text", s->port);
        return srv_redirect(c, loc);
    }
    if (strcmp(url, "/redirect-private") == 0) {
        snprintf(loc, sizeof(loc), "http://10.0.0.1:%d/text", s->port);
        return srv_redirect(c, loc);
    }
    if (strcmp(url, "/redirect-metadata") == 0)
        return srv_redirect(c, "http://169.254.169.254/latest/meta-data/");
    if (strcmp(url, "/redirect-other-loopback") == 0) {
        snprintf(loc, sizeof(loc), "http://127.0.0.2:%d/text", s->port);
        return srv_redirect(c, loc);
    }
    if (strcmp(url, "/redirect-v6") == 0) {
        snprintf(loc, sizeof(loc), "http://[::1]:%d/text", s->port);
        return srv_redirect(c, loc);
    }
    if (strcmp(url, "/redirect-file") == 0)
        return srv_redirect(c, "file:///etc/passwd");
    if (strcmp(url, "/loop") == 0)
        return srv_redirect(c, "/loop");
    return srv_send(c, MHD_HTTP_NOT_FOUND, "not found", 9, NULL, NULL);
}

static void srv_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    srv_req *req = *con_cls;
    if (req) {
        free(req->body);
        free(req);
        *con_cls = NULL;
    }
}

/* A port with nothing listening: bind to port 0, read it back, close. */
static int srv_closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static int srv_start(void **state)
{
    srv *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->large = malloc(FETCH_LARGE);
    assert_non_null(s->large);
    for (size_t i = 0; i < FETCH_LARGE; i++)
        s->large[i] = (char)('a' + i % 26);

    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                            NULL, NULL, srv_handler, s, MHD_OPTION_SOCK_ADDR, &sin,
                            MHD_OPTION_NOTIFY_COMPLETED, srv_completed, NULL, MHD_OPTION_END);
    if (!s->d) {
        fprintf(stderr, "cannot start libmicrohttpd on 127.0.0.1\n");
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    s->port = info->port;
    s->closed_port = srv_closed_port();
    *state = s;
    return 0;
}

static int srv_stop(void **state)
{
    srv *s = *state;
    __atomic_store_n(&s->stopping, 1, __ATOMIC_SEQ_CST);
    MHD_stop_daemon(s->d);
    free(s->large);
    free(s);
    return 0;
}

/* --- fetch cases -------------------------------------------------------------------------- */

#define LOCAL(path) "{\"url\": \"http://127.0.0.1:@PORT@" path "\"}"
#define ALLOW_LO    "127.0.0.0/8"

typedef struct fetch_case {
    const char *name;
    const char *input; /* JSON; @PORT@ and @CLOSED@ are substituted */
    /* configuration; zero means the default of phx_fetch_cfg_defaults */
    const char *allow;
    size_t max_body;
    int set_redirects, max_redirects;
    long max_timeout_ms;
    /* expected failure */
    const char *code; /* NULL: the fetch must succeed */
    int retryable;
    const char *msg; /* substring of the message */
    /* expected success */
    long status;
    const char *body; /* exact, NULL: unchecked */
    long body_len;    /* 0: unchecked */
    int truncated, b64;
    const char *url_suffix;
    const char *hdr, *hdr_value; /* one response header to check */
    long max_ms;                 /* the call must return within this, 0: unchecked */
} fetch_case;

static const fetch_case fetch_cases[] = {
    /* the loopback server itself: refused by default, reachable when allowed */
    {.name = "loopback refused",
     .input = LOCAL("/text"),
     .code = "forbidden_address",
     .msg = "127.0.0.1: loopback",
     .max_ms = 1000},
    {.name = "loopback allowed",
     .input = LOCAL("/text"),
     .allow = ALLOW_LO,
     .status = 200,
     .body = "hello, world\n",
     .url_suffix = "/text",
     .hdr = "x-test-header",
     .hdr_value = "Value"},
    {.name = "headers lowercased",
     .input = LOCAL("/text"),
     .allow = ALLOW_LO,
     .status = 200,
     .hdr = "content-type",
     .hdr_value = "text/plain"},
    {.name = "repeated headers joined",
     .input = LOCAL("/text"),
     .allow = ALLOW_LO,
     .status = 200,
     .hdr = "x-dup",
     .hdr_value = "a, b"},
    {.name = "allow bare host", .input = LOCAL("/text"), .allow = "127.0.0.1", .status = 200},
    {.name = "allow list without loopback",
     .input = LOCAL("/text"),
     .allow = "10.0.0.0/8, 192.168.0.0/16",
     .code = "forbidden_address"},
    {.name = "localhost name refused after resolving",
     .input = "{\"url\": \"http://localhost:@PORT@/text\"}",
     .code = "forbidden_address"},
    {.name = "localhost name allowed",
     .input = "{\"url\": \"http://localhost:@PORT@/text\"}",
     .allow = ALLOW_LO,
     .status = 200,
     .body = "hello, world\n"},
    {.name = "5xx is a successful fetch",
     .input = LOCAL("/fail"),
     .allow = ALLOW_LO,
     .status = 500,
     .body = "oops"},
    {.name = "404", .input = LOCAL("/nope"), .allow = ALLOW_LO, .status = 404},
    {.name = "fail_on_status: 5xx fails, retryable",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/fail\", \"fail_on_status\": true}",
     .allow = ALLOW_LO,
     .code = "http_status",
     .retryable = 1},
    {.name = "fail_on_status: 404 fails, not retryable",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/nope\", \"fail_on_status\": true}",
     .allow = ALLOW_LO,
     .code = "http_status"},
    {.name = "fail_on_status: 200 is the output",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/text\", \"fail_on_status\": true}",
     .allow = ALLOW_LO,
     .status = 200,
     .body = "hello, world\n"},
    {.name = "fail_on_status false: 5xx is the output",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/fail\", \"fail_on_status\": false}",
     .allow = ALLOW_LO,
     .status = 500},
    {.name = "fail_on_status must be a boolean",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/text\", \"fail_on_status\": 1}",
     .allow = ALLOW_LO,
     .code = "invalid_input"},

    /* redirects: followed, and every hop checked again */
    {.name = "redirect followed",
     .input = LOCAL("/redirect"),
     .allow = ALLOW_LO,
     .status = 200,
     .body = "hello, world\n",
     .url_suffix = ":@PORT@/text"},
    {.name = "redirect not followed with max_redirects 0",
     .input = LOCAL("/redirect"),
     .allow = ALLOW_LO,
     .set_redirects = 1,
     .max_redirects = 0,
     .status = 302,
     .hdr = "location",
     .hdr_value = "http://127.0.0.1:@PORT@/text"},
    {.name = "redirect to private refused",
     .input = LOCAL("/redirect-private"),
     .allow = ALLOW_LO,
     .code = "forbidden_address",
     .msg = "10.0.0.1"},
    {.name = "redirect to metadata refused",
     .input = LOCAL("/redirect-metadata"),
     .allow = ALLOW_LO,
     .code = "forbidden_address",
     .msg = "169.254.169.254"},
    {.name = "redirect outside allowed host refused",
     .input = LOCAL("/redirect-other-loopback"),
     .allow = "127.0.0.1/32",
     .code = "forbidden_address",
     .msg = "127.0.0.2"},
    {.name = "redirect to [::1] refused",
     .input = LOCAL("/redirect-v6"),
     .allow = ALLOW_LO,
     .code = "forbidden_address",
     .msg = "::1"},
    {.name = "redirect to file:// refused",
     .input = LOCAL("/redirect-file"),
     .allow = ALLOW_LO,
     .code = "forbidden_address",
     .msg = "non-http"},
    {.name = "redirect loop",
     .input = LOCAL("/loop"),
     .allow = ALLOW_LO,
     .set_redirects = 1,
     .max_redirects = 3,
     .code = "too_many_redirects"},

    /* schemes */
    {.name = "ftp refused",
     .input = "{\"url\": \"ftp://127.0.0.1:@PORT@/x\"}",
     .allow = ALLOW_LO,
     .code = "invalid_input",
     .msg = "scheme \"ftp\""},
    {.name = "file refused",
     .input = "{\"url\": \"file:///etc/passwd\"}",
     .allow = ALLOW_LO,
     .code = "invalid_input",
     .msg = "scheme \"file\""},
    {.name = "dict refused",
     .input = "{\"url\": \"dict://127.0.0.1:6379/info\"}",
     .allow = ALLOW_LO,
     .code = "invalid_input",
     .msg = "scheme"},
    {.name = "gopher refused",
     .input = "{\"url\": \"gopher://127.0.0.1:6379/_x\"}",
     .allow = ALLOW_LO,
     .code = "invalid_input",
     .msg = "scheme"},

    /* literal addresses: refused before any connection */
    {.name = "10.0.0.1",
     .input = "{\"url\": \"http://10.0.0.1/\"}",
     .code = "forbidden_address",
     .msg = "private",
     .max_ms = 1000},
    {.name = "192.168.1.1",
     .input = "{\"url\": \"https://192.168.1.1:8443/\"}",
     .code = "forbidden_address",
     .msg = "private"},
    {.name = "metadata 169.254.169.254",
     .input = "{\"url\": \"http://169.254.169.254/latest/meta-data/\"}",
     .code = "forbidden_address",
     .msg = "link-local",
     .max_ms = 1000},
    {.name = "CGNAT", .input = "{\"url\": \"http://100.64.0.1/\"}", .code = "forbidden_address"},
    {.name = "0.0.0.0",
     .input = "{\"url\": \"http://0.0.0.0:@PORT@/text\"}",
     .code = "forbidden_address"},
    {.name = "[::1]",
     .input = "{\"url\": \"http://[::1]:@PORT@/text\"}",
     .code = "forbidden_address",
     .msg = "::1",
     .max_ms = 1000},
    {.name = "[::ffff:127.0.0.1]",
     .input = "{\"url\": \"http://[::ffff:127.0.0.1]:@PORT@/text\"}",
     .code = "forbidden_address",
     .msg = "loopback",
     .max_ms = 1000},
    {.name = "[::ffff:7f00:1]",
     .input = "{\"url\": \"http://[::ffff:7f00:1]:@PORT@/text\"}",
     .code = "forbidden_address"},
    {.name = "[fd00::1]",
     .input = "{\"url\": \"http://[fd00::1]/\"}",
     .code = "forbidden_address",
     .msg = "unique local"},
    {.name = "[fe80::1]",
     .input = "{\"url\": \"http://[fe80::1]/\"}",
     .code = "forbidden_address",
     .msg = "link-local"},
    {.name = "decimal 2130706433",
     .input = "{\"url\": \"http://2130706433:@PORT@/text\"}",
     .code = "forbidden_address"},
    {.name = "hex 0x7f.1",
     .input = "{\"url\": \"http://0x7f.1:@PORT@/text\"}",
     .code = "forbidden_address"},

    /* request body, method, request headers */
    {.name = "POST echo",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/echo\", \"method\": \"POST\", "
              "\"body\": \"ping \\u00e9\", \"headers\": {\"X-Custom\": \"v1\", "
              "\"Content-Type\": \"text/plain\"}}",
     .allow = ALLOW_LO,
     .status = 200,
     .body = "ping \xc3\xa9",
     .hdr = "x-custom-echo",
     .hdr_value = "v1"},
    {.name = "POST without body",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/echo\", \"method\": \"post\"}",
     .allow = ALLOW_LO,
     .status = 200,
     .body = "",
     .hdr = "x-method",
     .hdr_value = "POST"},
    {.name = "GET is the default",
     .input = LOCAL("/echo"),
     .allow = ALLOW_LO,
     .status = 200,
     .hdr = "x-method",
     .hdr_value = "GET"},
    {.name = "empty header value sent",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/echo\", \"headers\": {\"X-Empty\": \"\"}}",
     .allow = ALLOW_LO,
     .status = 200,
     .hdr = "x-empty-seen",
     .hdr_value = "yes"},

    /* response body: caps, truncation, encoding */
    {.name = "large body truncated",
     .input = LOCAL("/large"),
     .allow = ALLOW_LO,
     .max_body = 65536,
     .status = 200,
     .body_len = 65536,
     .truncated = 1},
    {.name = "large body within cap",
     .input = LOCAL("/large"),
     .allow = ALLOW_LO,
     .max_body = FETCH_LARGE,
     .status = 200,
     .body_len = FETCH_LARGE},
    {.name = "body exactly at cap",
     .input = LOCAL("/text"),
     .allow = ALLOW_LO,
     .max_body = 13,
     .status = 200,
     .body = "hello, world\n"},
    {.name = "body one past cap",
     .input = LOCAL("/text"),
     .allow = ALLOW_LO,
     .max_body = 12,
     .status = 200,
     .body = "hello, world",
     .truncated = 1},
    {.name = "truncation inside a UTF-8 character",
     .input = LOCAL("/utf8"),
     .allow = ALLOW_LO,
     .max_body = 51,
     .status = 200,
     .body_len = 50,
     .truncated = 1},
    {.name = "binary body base64",
     .input = LOCAL("/binary"),
     .allow = ALLOW_LO,
     .status = 200,
     .body = "//4AAYA=",
     .b64 = 1},

    /* timeouts and transport errors */
    {.name = "timeout",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/slow\", \"timeout_ms\": 300}",
     .allow = ALLOW_LO,
     .code = "timeout",
     .retryable = 1,
     .max_ms = 2000},
    {.name = "timeout capped by config",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/slow\", \"timeout_ms\": 600000}",
     .allow = ALLOW_LO,
     .max_timeout_ms = 300,
     .code = "timeout",
     .retryable = 1,
     .max_ms = 2000},
    {.name = "connection refused",
     .input = "{\"url\": \"http://127.0.0.1:@CLOSED@/\"}",
     .allow = ALLOW_LO,
     .code = "connect_failed",
     .retryable = 1},

    /* invalid input */
    {.name = "CRLF in header value",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/echo\", "
              "\"headers\": {\"X-A\": \"v\\r\\nX-Injected: 1\"}}",
     .allow = ALLOW_LO,
     .code = "invalid_input",
     .msg = "CR, LF"},
    {.name = "LF in header value",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/\", \"headers\": {\"X-A\": \"v\\nw\"}}",
     .code = "invalid_input",
     .msg = "CR, LF"},
    {.name = "NUL in header value",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/\", \"headers\": {\"X-A\": \"v\\u0000w\"}}",
     .code = "invalid_input",
     .msg = "NUL"},
    {.name = "CRLF in header name",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/\", \"headers\": {\"X-A\\r\\nB\": \"v\"}}",
     .code = "invalid_input",
     .msg = "header name"},
    {.name = "space in header name",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/\", \"headers\": {\"X A\": \"v\"}}",
     .code = "invalid_input",
     .msg = "header name"},
    {.name = "Content-Length header refused",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/\", \"headers\": {\"Content-Length\": \"5\"}}",
     .code = "invalid_input",
     .msg = "set automatically"},
    {.name = "header value not a string",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/\", \"headers\": {\"X-A\": 1}}",
     .code = "invalid_input",
     .msg = "must be a string"},
    {.name = "headers not an object",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/\", \"headers\": [\"X-A: 1\"]}",
     .code = "invalid_input",
     .msg = "\"headers\""},
    {.name = "method PUT",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/\", \"method\": \"PUT\"}",
     .code = "invalid_input",
     .msg = "\"method\""},
    {.name = "body with GET",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/\", \"body\": \"x\"}",
     .code = "invalid_input",
     .msg = "POST"},
    {.name = "body not a string",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/\", \"method\": \"POST\", \"body\": {}}",
     .code = "invalid_input",
     .msg = "\"body\""},
    {.name = "missing url",
     .input = "{\"method\": \"GET\"}",
     .code = "invalid_input",
     .msg = "missing \"url\""},
    {.name = "url not a string", .input = "{\"url\": 42}", .code = "invalid_input"},
    {.name = "url without scheme",
     .input = "{\"url\": \"example.com/x\"}",
     .code = "invalid_input"},
    {.name = "url with space",
     .input = "{\"url\": \"http://exa mple.com/\"}",
     .code = "invalid_input",
     .msg = "malformed url"},
    {.name = "url with NUL",
     .input = "{\"url\": \"http://8.8.8.8\\u0000.evil/\"}",
     .code = "invalid_input",
     .msg = "NUL"},
    {.name = "timeout_ms negative",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/\", \"timeout_ms\": -5}",
     .code = "invalid_input",
     .msg = "timeout_ms"},
    {.name = "timeout_ms string",
     .input = "{\"url\": \"http://127.0.0.1:@PORT@/\", \"timeout_ms\": \"5\"}",
     .code = "invalid_input",
     .msg = "timeout_ms"},
    {.name = "input not an object", .input = "[\"http://127.0.0.1/\"]", .code = "invalid_input"},
    {.name = "bad allow_cidrs",
     .input = LOCAL("/text"),
     .allow = "10.0.0.0/33",
     .code = "invalid_config",
     .msg = "/33"},
};

/* Replace @PORT@ and @CLOSED@ in tmpl; the result is malloc'd. */
static char *fetch_subst(const char *tmpl, const srv *s)
{
    size_t cap = strlen(tmpl) + 64, w = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (const char *p = tmpl; *p;) {
        int port = !strncmp(p, "@PORT@", 6)     ? s->port
                   : !strncmp(p, "@CLOSED@", 8) ? s->closed_port
                                                : -1;
        if (port >= 0) {
            w += (size_t)snprintf(out + w, cap - w, "%d", port);
            p += p[1] == 'P' ? 6 : 8;
        } else {
            out[w++] = *p++;
        }
        assert_true(w + 8 < cap);
    }
    out[w] = '\0';
    return out;
}

static long fetch_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const srv *fetch_srv; /* started by main before any case runs */

static void test_fetch_case(void **state)
{
    const fetch_case *c = *state;
    const srv *s = fetch_srv;
    char *text = fetch_subst(c->input, s);
    json_error_t jerr;
    json_t *in = json_loads(text, JSON_ALLOW_NUL, &jerr);
    if (!in)
        fail_msg("%s: bad test input: %s", c->name, jerr.text);

    phx_fetch_cfg cfg;
    phx_fetch_cfg_defaults(&cfg);
    cfg.allow_cidrs = c->allow;
    if (c->max_body)
        cfg.max_body_bytes = c->max_body;
    if (c->set_redirects)
        cfg.max_redirects = c->max_redirects;
    if (c->max_timeout_ms)
        cfg.max_timeout_ms = c->max_timeout_ms;

    phx_err err;
    phx_err_clear(&err);
    long t0 = fetch_now_ms();
    json_t *out = phx_http_fetch(in, &cfg, &err);
    long took = fetch_now_ms() - t0;
    if (c->max_ms && took > c->max_ms)
        fail_msg("%s: took %ld ms, limit %ld", c->name, took, c->max_ms);

    if (c->code) {
        if (out) {
            char got[200] = "";
            json_dumpb(out, got, sizeof(got) - 1, JSON_COMPACT);
            fail_msg("%s: succeeded (%s), want error %s", c->name, got, c->code);
        }
        if (strcmp(err.code, c->code) != 0)
            fail_msg("%s: error %s (%s), want %s", c->name, err.code, err.message, c->code);
        assert_int_equal(err.retryable, c->retryable);
        if (c->msg && !strstr(err.message, c->msg))
            fail_msg("%s: message \"%s\" lacks \"%s\"", c->name, err.message, c->msg);
    } else {
        if (!out)
            fail_msg("%s: unexpected error %s: %s", c->name, err.code, err.message);
        assert_int_equal(json_integer_value(json_object_get(out, "status")), c->status);
        assert_true(json_is_object(json_object_get(out, "headers")));
        const json_t *jb = json_object_get(out, "body");
        assert_true(json_is_string(jb));
        if (c->body && strcmp(json_string_value(jb), c->body) != 0)
            fail_msg("%s: body \"%.80s\", want \"%s\"", c->name, json_string_value(jb), c->body);
        if (c->body_len)
            assert_int_equal(json_string_length(jb), c->body_len);
        if (json_is_true(json_object_get(out, "truncated")) != c->truncated)
            fail_msg("%s: truncated is not %d", c->name, c->truncated);
        const char *enc = json_string_value(json_object_get(out, "body_encoding"));
        if (c->b64)
            assert_string_equal(enc ? enc : "(none)", "base64");
        else
            assert_null(enc);
        const char *url = json_string_value(json_object_get(out, "url"));
        assert_non_null(url);
        if (c->url_suffix) {
            char *suffix = fetch_subst(c->url_suffix, s);
            size_t ul = strlen(url), sl = strlen(suffix);
            int ok = ul >= sl && strcmp(url + ul - sl, suffix) == 0;
            free(suffix);
            if (!ok)
                fail_msg("%s: final url %s", c->name, url);
        }
        if (c->hdr) {
            char *want = fetch_subst(c->hdr_value, s);
            const char *got =
                json_string_value(json_object_get(json_object_get(out, "headers"), c->hdr));
            int ok = got && strcmp(got, want) == 0;
            free(want);
            if (!ok)
                fail_msg("%s: header %s is \"%s\"", c->name, c->hdr, got ? got : "(missing)");
        }
    }
    json_decref(out);
    json_decref(in);
    free(text);
}

/* A request body one byte over the limit is refused; exactly at the limit it is sent. */
static void test_fetch_body_limit(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", fetch_srv->port);
    phx_fetch_cfg cfg;
    phx_fetch_cfg_defaults(&cfg);
    cfg.allow_cidrs = ALLOW_LO;
    cfg.max_body_bytes = 16;
    char *big = malloc(PHX_FETCH_MAX_REQ_BODY + 1);
    assert_non_null(big);
    memset(big, 'x', PHX_FETCH_MAX_REQ_BODY + 1);

    for (int over = 0; over <= 1; over++) {
        json_t *in = json_pack("{s:s, s:s, s:s%}", "url", url, "method", "POST", "body", big,
                               (size_t)PHX_FETCH_MAX_REQ_BODY + over);
        assert_non_null(in);
        phx_err err;
        json_t *out = phx_http_fetch(in, &cfg, &err);
        if (over) {
            assert_null(out);
            assert_string_equal(err.code, "invalid_input");
            assert_non_null(strstr(err.message, "larger than"));
        } else {
            assert_non_null(out);
            assert_int_equal(json_integer_value(json_object_get(out, "status")), 200);
            assert_true(json_is_true(json_object_get(out, "truncated")));
        }
        json_decref(out);
        json_decref(in);
    }
    free(big);
}

/* --- the address policy, without the network ---------------------------------------------- */

typedef struct ip_case {
    const char *ip, *allow;
    int want;           /* 1 allowed, 0 refused, -1 parse error */
    const char *reason; /* substring of the reason when refused */
} ip_case;

static const ip_case ip_cases[] = {
    /* public */
    {"8.8.8.8", NULL, 1, NULL},
    {"1.1.1.1", NULL, 1, NULL},
    {"11.0.0.1", NULL, 1, NULL},
    {"172.32.0.1", NULL, 1, NULL},  /* just past 172.16/12 */
    {"100.128.0.1", NULL, 1, NULL}, /* just past 100.64/10 */
    {"192.169.0.1", NULL, 1, NULL}, /* just past 192.168/16 */
    {"223.255.255.255", NULL, 1, NULL},
    {"2606:4700::1111", NULL, 1, NULL},
    {"2001:4860:4860::8888", NULL, 1, NULL},
    {"::ffff:8.8.8.8", NULL, 1, NULL},
    {"64:ff9b::808:808", NULL, 1, NULL},
    {"2002:808:808::1", NULL, 1, NULL},
    /* IPv4 special purpose */
    {"127.0.0.1", NULL, 0, "loopback"},
    {"127.255.255.254", NULL, 0, "loopback"},
    {"10.1.2.3", NULL, 0, "private"},
    {"172.16.0.1", NULL, 0, "private"},
    {"172.31.255.255", NULL, 0, "private"},
    {"192.168.1.1", NULL, 0, "private"},
    {"169.254.169.254", NULL, 0, "metadata"},
    {"100.64.0.1", NULL, 0, "carrier-grade NAT"},
    {"100.127.255.255", NULL, 0, "carrier-grade NAT"},
    {"0.0.0.0", NULL, 0, "this-network"},
    {"0.1.2.3", NULL, 0, "this-network"},
    {"224.0.0.1", NULL, 0, "multicast"},
    {"239.255.255.250", NULL, 0, "multicast"},
    {"255.255.255.255", NULL, 0, "broadcast"},
    {"240.0.0.1", NULL, 0, "reserved"},
    {"192.0.0.8", NULL, 0, "IETF"},
    {"192.0.2.1", NULL, 0, "documentation"},
    {"198.18.0.1", NULL, 0, "benchmarking"},
    {"198.51.100.1", NULL, 0, "documentation"},
    {"203.0.113.1", NULL, 0, "documentation"},
    /* IPv6 */
    {"::1", NULL, 0, "loopback"},
    {"::", NULL, 0, "unspecified"},
    {"::ffff:127.0.0.1", NULL, 0, "loopback"},
    {"::ffff:10.0.0.1", NULL, 0, "private"},
    {"::ffff:169.254.169.254", NULL, 0, "link-local"},
    {"::127.0.0.1", NULL, 0, "reserved"}, /* IPv4-compatible, deprecated */
    {"fc00::1", NULL, 0, "unique local"},
    {"fd12:3456::1", NULL, 0, "unique local"},
    {"fe80::1", NULL, 0, "link-local"},
    {"fec0::1", NULL, 0, "site-local"},
    {"ff02::1", NULL, 0, "multicast"},
    {"100::1", NULL, 0, "reserved"},
    {"64:ff9b::7f00:1", NULL, 0, "translation"},
    {"64:ff9b::a9fe:a9fe", NULL, 0, "translation"},
    {"64:ff9b:1::1", NULL, 0, "NAT64"},
    {"2002:7f00:1::1", NULL, 0, "translation"},
    {"2001::1", NULL, 0, "Teredo"},
    {"2001:db8::1", NULL, 0, "documentation"},
    {"3fff::1", NULL, 0, "documentation"},
    {"4000::1", NULL, 0, "reserved"},
    /* allow lists */
    {"127.0.0.1", "127.0.0.0/8", 1, NULL},
    {"127.0.0.1", "127.0.0.1", 1, NULL},
    {"127.0.0.2", "127.0.0.1/32", 0, "loopback"},
    {"::ffff:127.0.0.1", "127.0.0.0/8", 1, NULL},
    {"127.0.0.1", "::ffff:127.0.0.0/104", 1, NULL},
    {"10.0.0.1", "::ffff:0:0/80", 0, "private"}, /* a short mapped prefix is not all of IPv4 */
    {"::1", "127.0.0.0/8", 0, "loopback"},
    {"::1", "::1/128", 1, NULL},
    {"fd00::5", "fd00::/8", 1, NULL},
    {"10.1.2.3", "10.1.0.0/16", 1, NULL},
    {"10.2.0.1", "10.1.0.0/16", 0, "private"},
    {"10.0.0.1", " 192.168.0.0/16 , 10.0.0.0/8 ", 1, NULL},
    {"10.0.0.1", "10.9.9.9/8", 1, NULL}, /* host bits ignored */
    {"172.20.0.1", "", 0, "private"},
    /* parse errors */
    {"not-an-ip", NULL, -1, NULL},
    {"[::1]", NULL, -1, NULL},
    {"10.0.0.1", "10.0.0.0/33", -1, NULL},
    {"10.0.0.1", "10.0.0.0/", -1, NULL},
    {"10.0.0.1", "10.0.0.0/-1", -1, NULL},
    {"1.2.3.4", "bogus", -1, NULL},
    {"1.2.3.4", "::/129", -1, NULL},
};

static void test_ip_case(void **state)
{
    const ip_case *c = *state;
    const char *reason = NULL;
    int got = phx_fetch_ip_allowed(c->ip, c->allow, &reason);
    if (got != c->want)
        fail_msg("%s (allow %s): got %d, want %d (%s)", c->ip, c->allow ? c->allow : "-", got,
                 c->want, reason ? reason : "");
    if (c->reason && (!reason || !strstr(reason, c->reason)))
        fail_msg("%s: reason \"%s\" lacks \"%s\"", c->ip, reason ? reason : "", c->reason);
}

static void test_cfg_check(void **state)
{
    (void)state;
    phx_fetch_cfg cfg;
    phx_err err;
    phx_fetch_cfg_defaults(&cfg);
    assert_int_equal(phx_fetch_cfg_check(&cfg, &err), 0);
    cfg.max_body_bytes = 0;
    assert_int_equal(phx_fetch_cfg_check(&cfg, &err), -1);
    assert_string_equal(err.code, "invalid_config");
    phx_fetch_cfg_defaults(&cfg);
    cfg.allow_cidrs = "10.0.0.0/8,,fd00::/8";
    assert_int_equal(phx_fetch_cfg_check(&cfg, &err), 0);
    cfg.allow_cidrs = "10.0.0.0/8,nope";
    assert_int_equal(phx_fetch_cfg_check(&cfg, &err), -1);
    phx_fetch_cfg_defaults(&cfg);
    cfg.timeout_ms = 0;
    assert_int_equal(phx_fetch_cfg_check(&cfg, &err), -1);
}

int main(void)
{
    /* What main of phx-tools does once per process; http_fetch itself never does. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    /* Proxy variables must be ignored: a proxy would make the socket check judge the proxy. */
    setenv("http_proxy", "http://10.255.255.1:3128", 1);
    setenv("HTTPS_PROXY", "http://10.255.255.1:3128", 1);
    setenv("ALL_PROXY", "http://10.255.255.1:3128", 1);

    size_t nf = sizeof(fetch_cases) / sizeof(fetch_cases[0]);
    size_t ni = sizeof(ip_cases) / sizeof(ip_cases[0]);
    struct CMUnitTest *fetch_tests = calloc(nf + 1, sizeof(*fetch_tests));
    struct CMUnitTest *ip_tests = calloc(ni + 1, sizeof(*ip_tests));
    char(*ip_names)[96] = calloc(ni, sizeof(*ip_names));
    if (!fetch_tests || !ip_tests || !ip_names)
        return 1;
    for (size_t i = 0; i < nf; i++)
        fetch_tests[i] = (struct CMUnitTest){fetch_cases[i].name, test_fetch_case, NULL, NULL,
                                             (void *)&fetch_cases[i]};
    fetch_tests[nf] =
        (struct CMUnitTest){"request body limit", test_fetch_body_limit, NULL, NULL, NULL};
    for (size_t i = 0; i < ni; i++) {
        snprintf(ip_names[i], sizeof(ip_names[i]), "%s allow=%s", ip_cases[i].ip,
                 ip_cases[i].allow ? ip_cases[i].allow : "-");
        ip_tests[i] =
            (struct CMUnitTest){ip_names[i], test_ip_case, NULL, NULL, (void *)&ip_cases[i]};
    }
    ip_tests[ni] = (struct CMUnitTest){"cfg check", test_cfg_check, NULL, NULL, NULL};

    int rc = _cmocka_run_group_tests("http_fetch ip policy", ip_tests, ni + 1, NULL, NULL);
    /* The server is started here rather than in a cmocka group setup, whose state would
     * replace each row's prestate. */
    void *server = NULL;
    if (srv_start(&server) < 0)
        return 1;
    fetch_srv = server;
    rc |= _cmocka_run_group_tests("http_fetch", fetch_tests, nf + 1, NULL, NULL);
    srv_stop(&server);
    free(ip_names);
    free(ip_tests);
    free(fetch_tests);
    curl_global_cleanup();
    return rc;
}
