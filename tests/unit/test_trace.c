/* test_trace.c -- spans and their export (lib/trace.c), against a collector double: a real
 * HTTP server on loopback (libmicrohttpd) that records every posted body and can answer 200,
 * answer 500, or hold a request until the test lets it go (a hung collector).
 *
 * What must hold: parent/child ids across a remote traceparent and nested call spans; a span's
 * JSON log line carries trace_id, span_id, parent_id and its duration; the OTLP/JSON body the
 * collector gets names the service and every span with the right ids; a failing collector costs
 * counted drops (export_failed); a hung collector neither blocks ending spans nor grows memory:
 * the bounded queue fills and the rest is dropped and counted (queue_full). */
#include "log.h"
#include "metrics.h"
#include "trace.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum coll_mode { COLL_OK, COLL_FAIL, COLL_HOLD };

typedef struct coll {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    enum coll_mode mode;
    int holding;    /* a request is being held (COLL_HOLD) */
    int release;    /* the test lets held requests go */
    json_t *bodies; /* every posted body, parsed */
} coll;

typedef struct coll_req {
    char *buf;
    size_t len;
} coll_req;

static enum MHD_Result coll_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version, const char *upload,
                                    size_t *upload_size, void **ctx)
{
    (void)url;
    (void)method;
    (void)version;
    coll *c = cls;
    coll_req *rq = *ctx;
    if (!rq) {
        *ctx = calloc(1, sizeof(coll_req));
        return MHD_YES;
    }
    if (*upload_size) {
        rq->buf = realloc(rq->buf, rq->len + *upload_size + 1);
        memcpy(rq->buf + rq->len, upload, *upload_size);
        rq->len += *upload_size;
        rq->buf[rq->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&c->mu);
    json_t *body = rq->buf ? json_loads(rq->buf, 0, NULL) : NULL;
    json_array_append_new(c->bodies, body ? body : json_null());
    enum coll_mode mode = c->mode;
    if (mode == COLL_HOLD) {
        c->holding++;
        /* Held until released (10 s at most, so a broken test cannot hang forever). */
        for (int i = 0; i < 1000 && !c->release; i++) {
            pthread_mutex_unlock(&c->mu);
            usleep(10000);
            pthread_mutex_lock(&c->mu);
        }
        c->holding--;
    }
    pthread_mutex_unlock(&c->mu);
    static char ok[] = "{}";
    struct MHD_Response *resp = MHD_create_response_from_buffer(2, ok, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result r = MHD_queue_response(conn, mode == COLL_FAIL ? 500 : 200, resp);
    MHD_destroy_response(resp);
    return r;
}

static void coll_done(void *cls, struct MHD_Connection *conn, void **ctx,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    coll_req *rq = *ctx;
    if (rq) {
        free(rq->buf);
        free(rq);
    }
}

static int coll_start(void **state)
{
    coll *c = calloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    c->bodies = json_array();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    c->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                            NULL, NULL, coll_handler, c, MHD_OPTION_SOCK_ADDR, &sin,
                            MHD_OPTION_NOTIFY_COMPLETED, coll_done, NULL, MHD_OPTION_END);
    if (!c->d)
        return -1;
    c->port = MHD_get_daemon_info(c->d, MHD_DAEMON_INFO_BIND_PORT)->port;
    *state = c;
    return 0;
}

static int coll_stop(void **state)
{
    coll *c = *state;
    pthread_mutex_lock(&c->mu);
    c->release = 1;
    pthread_mutex_unlock(&c->mu);
    MHD_stop_daemon(c->d);
    json_decref(c->bodies);
    pthread_mutex_destroy(&c->mu);
    free(c);
    return 0;
}

static void coll_reset(coll *c, enum coll_mode mode)
{
    pthread_mutex_lock(&c->mu);
    c->mode = mode;
    c->release = 0;
    json_array_clear(c->bodies);
    pthread_mutex_unlock(&c->mu);
}

static void coll_init_tracer(coll *c, long timeout_ms, long queue)
{
    char url[128], err[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/traces", c->port);
    assert_int_equal(phx_trace_init("phx-test", url, timeout_ms, queue, err, sizeof(err)), 0);
}

static double dropped(const char *reason)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
    return phx_metric_value(phx_counter("phx_trace_spans_dropped_total",
                                        "Spans not exported: the queue was full (collector slow) "
                                        "or the post failed.",
                                        labels));
}

static double exported(void)
{
    return phx_metric_value(
        phx_counter("phx_trace_spans_exported_total", "Spans the OTLP collector accepted.", NULL));
}

/* --- context -------------------------------------------------------------------------------- */

static void test_context(void **state)
{
    (void)state;
    const char *remote = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    char tp[56];
    phx_span call;
    assert_int_equal(phx_trace_current(tp), -1);
    assert_int_equal(phx_span_call(&call, "redis GET", PHX_SPAN_CLIENT), 0); /* no hop: none */
    phx_span_end(&call);

    phx_span hop, inner;
    phx_span_start(&hop, "hop", PHX_SPAN_CONSUMER, remote);
    phx_span_job(&hop, "job-1");
    assert_string_equal(hop.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_string_equal(hop.parent_id, "b7ad6b7169203331");
    assert_int_equal(strlen(hop.span_id), 16);
    assert_int_equal(phx_trace_current(tp), 0);
    char want[56];
    phx_span_traceparent(&hop, want);
    assert_string_equal(tp, want);

    assert_int_equal(phx_span_call(&inner, "redis GET", PHX_SPAN_CLIENT), 1);
    assert_string_equal(inner.trace_id, hop.trace_id);
    assert_string_equal(inner.parent_id, hop.span_id);
    assert_string_equal(inner.job_id, "job-1"); /* inherited */
    assert_string_not_equal(inner.span_id, hop.span_id);
    phx_span_end(&inner);
    assert_int_equal(phx_trace_current(tp), 0);
    assert_string_equal(tp, want); /* back to the hop */
    phx_span_end(&hop);
    assert_int_equal(phx_trace_current(tp), -1);

    /* An invalid remote context starts a new trace (a root). */
    phx_span_start(&hop, "root", PHX_SPAN_SERVER, "00-zz-nonsense");
    assert_string_equal(hop.parent_id, "");
    assert_int_equal(strlen(hop.trace_id), 32);
    phx_span_end(&hop);
}

/* Point stderr (the log) at a new temp file until log_capture_end; returns the file's fd and
 * keeps the real stderr in *saved. */
static int log_capture_begin(char *path, int *saved, const char *proc)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    *saved = dup(2);
    dup2(fd, 2);
    phx_log_init(proc, PHX_LOG_INFO);
    return fd;
}

/* Restore stderr and read n lines of the capture as JSON (each must parse), ASCII only. */
static void log_capture_end(int fd, int saved, char *path, json_t **l, int n)
{
    phx_log_init("phx-test", PHX_LOG_WARN);
    dup2(saved, 2);
    close(saved);
    FILE *f = fdopen(fd, "r");
    rewind(f);
    char line[8192];
    for (int i = 0; i < n; i++) {
        assert_non_null(fgets(line, sizeof(line), f));
        for (const char *c = line; *c; c++)
            assert_true((unsigned char)*c < 0x80);
        l[i] = json_loads(line, 0, NULL);
        assert_non_null(l[i]);
    }
    fclose(f);
    unlink(path);
}

/* The JSON log line of a span: captured by pointing stderr at a file for the duration. */
static void test_log_line(void **state)
{
    (void)state;
    char path[] = "/tmp/phx-obs-trace-log-XXXXXX";
    int saved, fd = log_capture_begin(path, &saved, "phx-test");
    phx_span hop, inner;
    phx_span_start(&hop, "hop", PHX_SPAN_CONSUMER,
                   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    phx_log_info("inside the hop");
    phx_span_call(&inner, "redis SET", PHX_SPAN_CLIENT);
    phx_span_set(&inner, "db.system", "redis");
    phx_span_fail(&inner, "boom with Bearer abcdefghijklmnopqrstuvwxyz0123456789");
    phx_span_end(&inner);
    phx_span_end(&hop);
    json_t *l[3];
    log_capture_end(fd, saved, path, l, 3);
    /* A plain line inside a span carries the span's ids. */
    assert_string_equal(json_string_value(json_object_get(l[0], "trace_id")), hop.trace_id);
    assert_string_equal(json_string_value(json_object_get(l[0], "span_id")), hop.span_id);
    /* The call span's record. */
    assert_string_equal(json_string_value(json_object_get(l[1], "span")), "redis SET");
    assert_string_equal(json_string_value(json_object_get(l[1], "span_id")), inner.span_id);
    assert_string_equal(json_string_value(json_object_get(l[1], "parent_id")), hop.span_id);
    assert_true(json_is_number(json_object_get(l[1], "duration_ms")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(l[1], "attrs"), "db.system")), "redis");
    const char *e = json_string_value(json_object_get(l[1], "error"));
    assert_non_null(e);
    assert_null(strstr(e, "abcdefghijklmnop")); /* redacted */
    /* The hop's record names its remote parent. */
    assert_string_equal(json_string_value(json_object_get(l[2], "parent_id")), "b7ad6b7169203331");
    for (int i = 0; i < 3; i++)
        json_decref(l[i]);
}

/* Log lines are built by hand (log.c): every byte a job id or a message can carry must come
 * back from a JSON parser as it went in, in an ASCII line; a job id that is not UTF-8 must
 * not lose the line. */
static void test_log_escape(void **state)
{
    (void)state;
    char path[] = "/tmp/phx-obs-trace-esc-XXXXXX";
    int saved, fd = log_capture_begin(path, &saved, "phx-\"test\"");
    const char *text = "q\" b\\ n\n t\t r\r c\x01 e\xc3\xa9 s\xf0\x9f\x98\x80 /end";
    phx_logj(PHX_LOG_INFO, "job-1", NULL, "%s", text);
    phx_logj(PHX_LOG_INFO, "bad\xff-id", NULL, "plain");
    phx_logf f;
    phx_logf_init(&f);
    phx_logf_str(&f, "k\"ey", "v\xe2\x82\xac");
    phx_logf_num(&f, "n", 1.5);
    phx_logf_num(&f, "nan", NAN); /* no NaN in JSON: null, and the line still parses */
    phx_logf_begin(&f, "o");
    phx_logf_str(&f, "a", "1");
    phx_logf_str(&f, "b", "2");
    phx_logf_end(&f);
    for (int i = 0; i < 100; i++) /* outgrows the inline buffer */
        phx_logf_str(&f, "pad", "0123456789");
    phx_log_fields(PHX_LOG_INFO, NULL, NULL, &f, "fields");
    json_t *l[3];
    log_capture_end(fd, saved, path, l, 3);
    assert_string_equal(json_string_value(json_object_get(l[0], "proc")), "phx-\"test\"");
    assert_string_equal(json_string_value(json_object_get(l[0], "msg")), text);
    assert_string_equal(json_string_value(json_object_get(l[0], "job_id")), "job-1");
    assert_string_equal(json_string_value(json_object_get(l[1], "job_id")), "(invalid utf-8)");
    assert_string_equal(json_string_value(json_object_get(l[1], "msg")), "plain");
    assert_string_equal(json_string_value(json_object_get(l[2], "k\"ey")), "v\xe2\x82\xac");
    assert_true(json_real_value(json_object_get(l[2], "n")) == 1.5);
    assert_true(json_is_null(json_object_get(l[2], "nan")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(l[2], "o"), "b")), "2");
    assert_string_equal(json_string_value(json_object_get(l[2], "pad")), "0123456789");
    for (int i = 0; i < 3; i++)
        json_decref(l[i]);
}

/* --- export ---------------------------------------------------------------------------------- */

static json_t *find_span(json_t *bodies, const char *span_id)
{
    size_t i, j;
    json_t *b, *s;
    json_array_foreach(bodies, i, b)
    {
        json_t *spans = json_object_get(
            json_array_get(json_object_get(json_array_get(json_object_get(b, "resourceSpans"), 0),
                                           "scopeSpans"),
                           0),
            "spans");
        json_array_foreach(spans, j, s) if (strcmp(json_string_value(json_object_get(s, "spanId")),
                                                   span_id) == 0) return s;
    }
    return NULL;
}

static void test_export_ok(void **state)
{
    coll *c = *state;
    coll_reset(c, COLL_OK);
    double ex0 = exported();
    coll_init_tracer(c, 2000, 64);
    phx_span hop, inner[5];
    phx_span_start(&hop, "hop", PHX_SPAN_CONSUMER, NULL);
    phx_span_job(&hop, "job-2");
    for (int i = 0; i < 5; i++) {
        phx_span_call(&inner[i], "kafka produce", PHX_SPAN_PRODUCER);
        phx_span_end(&inner[i]);
    }
    phx_span_fail(&hop, "went wrong");
    phx_span_end(&hop);
    phx_trace_shutdown(5000);
    assert_int_equal((int)(exported() - ex0), 6);

    pthread_mutex_lock(&c->mu);
    json_t *b0 = json_array_get(c->bodies, 0);
    assert_non_null(b0);
    json_t *attr = json_array_get(
        json_object_get(
            json_object_get(json_array_get(json_object_get(b0, "resourceSpans"), 0), "resource"),
            "attributes"),
        0);
    assert_string_equal(json_string_value(json_object_get(attr, "key")), "service.name");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(attr, "value"), "stringValue")),
        "phx-test");
    json_t *h = find_span(c->bodies, hop.span_id);
    assert_non_null(h);
    assert_string_equal(json_string_value(json_object_get(h, "traceId")), hop.trace_id);
    assert_null(json_object_get(h, "parentSpanId")); /* a root */
    assert_int_equal(json_integer_value(json_object_get(h, "kind")), PHX_SPAN_CONSUMER);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(h, "status"), "code")), 2);
    long long t0 = atoll(json_string_value(json_object_get(h, "startTimeUnixNano")));
    long long t1 = atoll(json_string_value(json_object_get(h, "endTimeUnixNano")));
    assert_true(t0 > 1600000000LL * 1000000000LL && t1 >= t0);
    for (int i = 0; i < 5; i++) {
        json_t *s = find_span(c->bodies, inner[i].span_id);
        assert_non_null(s);
        assert_string_equal(json_string_value(json_object_get(s, "parentSpanId")), hop.span_id);
        assert_string_equal(json_string_value(json_object_get(s, "traceId")), hop.trace_id);
    }
    pthread_mutex_unlock(&c->mu);
}

static void test_export_fails(void **state)
{
    coll *c = *state;
    coll_reset(c, COLL_FAIL);
    double d0 = dropped("export_failed"), ex0 = exported();
    coll_init_tracer(c, 2000, 64);
    phx_span hop;
    for (int i = 0; i < 7; i++) {
        phx_span_start(&hop, "hop", PHX_SPAN_INTERNAL, NULL);
        phx_span_end(&hop);
    }
    phx_trace_shutdown(5000);
    assert_int_equal((int)(dropped("export_failed") - d0), 7);
    assert_int_equal((int)(exported() - ex0), 0);
    pthread_mutex_lock(&c->mu);
    assert_true(json_array_size(c->bodies) >= 1); /* it did try */
    pthread_mutex_unlock(&c->mu);
}

/* A hung collector: the exporter sits in a post; ending spans goes on regardless, the queue
 * holds its bound and everything beyond it is dropped and counted. */
static void test_export_hung(void **state)
{
    coll *c = *state;
    coll_reset(c, COLL_HOLD);
    double full0 = dropped("queue_full"), ex0 = exported();
    coll_init_tracer(c, 8000, 16);
    phx_span s;
    phx_span_start(&s, "first", PHX_SPAN_INTERNAL, NULL);
    phx_span_end(&s);
    /* Wait for the exporter to be inside the post of that span (flushes every 500 ms). */
    int held = 0;
    for (int i = 0; i < 500 && !held; i++) {
        pthread_mutex_lock(&c->mu);
        held = c->holding > 0;
        pthread_mutex_unlock(&c->mu);
        if (!held)
            usleep(10000);
    }
    assert_true(held);
    for (int i = 0; i < 1000; i++) {
        phx_span_start(&s, "while hung", PHX_SPAN_INTERNAL, NULL);
        phx_span_end(&s);
    }
    /* Every end above returned while the collector still held the first post. */
    pthread_mutex_lock(&c->mu);
    assert_true(c->holding > 0);
    c->release = 1;
    c->mode = COLL_OK;
    pthread_mutex_unlock(&c->mu);
    assert_int_equal((int)(dropped("queue_full") - full0), 1000 - 16);
    phx_trace_shutdown(5000);
    assert_int_equal((int)(exported() - ex0), 1 + 16);
}

/* Export configuration errors are refused at start. */
static void test_bad_endpoint(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(phx_trace_init("phx-test", "ftp://x/v1/traces", 1000, 16, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "PHX_OTLP_ENDPOINT"));
    assert_int_equal(phx_trace_init("phx-test", "", 1000, 16, err, sizeof(err)), 0); /* log only */
    phx_trace_shutdown(100);
}

int main(void)
{
    phx_log_init("phx-test", PHX_LOG_WARN); /* thousands of span lines would drown the output */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_context),      cmocka_unit_test(test_log_line),
        cmocka_unit_test(test_log_escape),   cmocka_unit_test(test_export_ok),
        cmocka_unit_test(test_export_fails), cmocka_unit_test(test_export_hung),
        cmocka_unit_test(test_bad_endpoint),
    };
    return cmocka_run_group_tests(tests, coll_start, coll_stop);
}
