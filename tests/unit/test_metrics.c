/* test_metrics.c -- the Prometheus registry: exact exposition text, exact totals under
 * concurrency, label escaping and canonical label sets, programming errors that abort.
 *
 * The registry is process-wide and cannot be reset, so every test uses its own metric names and
 * checks its families as exact substrings of the whole rendering. */
#include "metrics.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Render and check that want appears verbatim. */
static void assert_rendered(const char *want)
{
    char *text = phx_metrics_render();
    assert_non_null(text);
    if (!strstr(text, want))
        fail_msg("missing from rendering:\n%s\n--- got ---\n%s", want, text);
    free(text);
}

static int count_occurrences(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_render_format(void **state)
{
    (void)state;
    phx_metric *ok =
        phx_counter("phx_t1_jobs_total", "Jobs finished.", "kind=\"tool.calc\",status=\"ok\"");
    phx_metric *err =
        phx_counter("phx_t1_jobs_total", "Jobs finished.", "status=\"err\",kind=\"tool.calc\"");
    phx_metric_add(ok, 1);
    phx_metric_add(ok, 2);
    phx_metric_add(err, 1.5); /* the fractional path */
    phx_metric_add(err, -4);  /* dropped: counters never go down */

    phx_metric *inflight = phx_gauge("phx_t1_inflight", "Jobs in flight.", NULL);
    phx_metric_set(inflight, 7);
    phx_metric_add(inflight, -2);

    const double bounds[] = {0.25, 0.5, 1};
    phx_metric *lat =
        phx_histogram("phx_t1_step_seconds", "Step latency.", "kind=\"llm\"", bounds, 3);
    phx_metric_observe(lat, 0.25); /* le is inclusive */
    phx_metric_observe(lat, 0.375);
    phx_metric_observe(lat, 0.375);
    phx_metric_observe(lat, 2);

    assert_rendered("# HELP phx_t1_inflight Jobs in flight.\n"
                    "# TYPE phx_t1_inflight gauge\n"
                    "phx_t1_inflight 5\n"
                    "# HELP phx_t1_jobs_total Jobs finished.\n"
                    "# TYPE phx_t1_jobs_total counter\n"
                    "phx_t1_jobs_total{kind=\"tool.calc\",status=\"err\"} 1.5\n"
                    "phx_t1_jobs_total{kind=\"tool.calc\",status=\"ok\"} 3\n"
                    "# HELP phx_t1_step_seconds Step latency.\n"
                    "# TYPE phx_t1_step_seconds histogram\n"
                    "phx_t1_step_seconds_bucket{kind=\"llm\",le=\"0.25\"} 1\n"
                    "phx_t1_step_seconds_bucket{kind=\"llm\",le=\"0.5\"} 3\n"
                    "phx_t1_step_seconds_bucket{kind=\"llm\",le=\"1\"} 3\n"
                    "phx_t1_step_seconds_bucket{kind=\"llm\",le=\"+Inf\"} 4\n"
                    "phx_t1_step_seconds_sum{kind=\"llm\"} 3\n"
                    "phx_t1_step_seconds_count{kind=\"llm\"} 4\n");
    assert_true(phx_metric_value(ok) == 3);
    assert_true(phx_metric_value(lat) == 4);
}

static void test_default_buckets_and_numbers(void **state)
{
    (void)state;
    phx_metric *h = phx_histogram("phx_t2_wait_seconds", "Wait.", NULL, NULL, 0);
    phx_metric_observe(h, 0.003);
    assert_rendered("# TYPE phx_t2_wait_seconds histogram\n"
                    "phx_t2_wait_seconds_bucket{le=\"0.001\"} 0\n"
                    "phx_t2_wait_seconds_bucket{le=\"0.0025\"} 0\n"
                    "phx_t2_wait_seconds_bucket{le=\"0.005\"} 1\n");
    assert_rendered("phx_t2_wait_seconds_bucket{le=\"10\"} 1\n"
                    "phx_t2_wait_seconds_bucket{le=\"+Inf\"} 1\n"
                    "phx_t2_wait_seconds_sum 0.003\n"
                    "phx_t2_wait_seconds_count 1\n");

    /* Shortest round-trip text, as Prometheus clients print it. */
    phx_metric *g = phx_gauge("phx_t2_value", "Numbers.", "v=\"a\"");
    phx_metric_set(g, 0.1);
    assert_rendered("phx_t2_value{v=\"a\"} 0.1\n");
    phx_metric_set(g, 1e-7);
    assert_rendered("phx_t2_value{v=\"a\"} 1e-07\n");
    phx_metric_set(g, 1e20);
    assert_rendered("phx_t2_value{v=\"a\"} 1e+20\n");
    phx_metric_set(g, -1.0 / 0.0);
    assert_rendered("phx_t2_value{v=\"a\"} -Inf\n");
    phx_metric_set(g, -3);
    assert_rendered("phx_t2_value{v=\"a\"} -3\n");
}

static void test_same_object(void **state)
{
    (void)state;
    phx_metric *a = phx_counter("phx_t3_x_total", "X.", "a=\"1\",b=\"2\"");
    assert_ptr_equal(a, phx_counter("phx_t3_x_total", "X.", "b=\"2\", a=\"1\""));
    assert_ptr_equal(a, phx_counter("phx_t3_x_total", "X.", " a = \"1\" , b = \"2\" ,"));
    assert_ptr_not_equal(a, phx_counter("phx_t3_x_total", "X.", "a=\"1\""));
    phx_metric *none = phx_counter("phx_t3_x_total", "X.", NULL);
    assert_ptr_equal(none, phx_counter("phx_t3_x_total", "X.", ""));
}

static void test_label_escaping(void **state)
{
    (void)state;
    /* Escaped input is decoded and re-escaped canonically. */
    phx_metric *m = phx_counter("phx_t4_esc_total", "Escapes.", "path=\"a\\\\b\\\"c\\nd\"");
    phx_metric_add(m, 1);
    assert_rendered("phx_t4_esc_total{path=\"a\\\\b\\\"c\\nd\"} 1\n");

    /* A raw value escaped with the helper names the same series. */
    char esc[64], labels[96];
    size_t need = phx_metrics_escape_label(esc, sizeof(esc), "a\\b\"c\nd");
    assert_string_equal(esc, "a\\\\b\\\"c\\nd");
    assert_int_equal(need, strlen(esc));
    snprintf(labels, sizeof(labels), "path=\"%s\"", esc);
    assert_ptr_equal(m, phx_counter("phx_t4_esc_total", "Escapes.", labels));

    /* A raw newline is unambiguous and accepted; invalid UTF-8 is replaced. */
    phx_metric *raw = phx_counter("phx_t4_esc_total", "Escapes.", "path=\"l1\nl2\xff\"");
    phx_metric_add(raw, 2);
    assert_rendered("phx_t4_esc_total{path=\"l1\\nl2?\"} 2\n");

    /* The helper truncates but reports the full length, like snprintf. */
    char small[4];
    assert_int_equal(phx_metrics_escape_label(small, sizeof(small), "\"\"\""), 6);
    assert_string_equal(small, "\\\"\\");

    /* HELP escapes backslash and newline only. */
    phx_metric *h = phx_gauge("phx_t4_help", "line1\nback\\slash \"q\"", NULL);
    phx_metric_set(h, 1);
    assert_rendered("# HELP phx_t4_help line1\\nback\\\\slash \"q\"\n");
}

#define THREADS 8
#define ITERS   50000

static phx_metric *conc_int, *conc_frac, *conc_gauge, *conc_hist;

static void *conc_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        phx_metric_add(conc_int, 1);
        phx_metric_add(conc_frac, 0.5);
        phx_metric_add(conc_gauge, 1);
        phx_metric_observe(conc_hist, (i % 2) ? 0.5 : 5);
        if (i % 5000 == 0) {
            /* Lookups and renders race with the updates; ASan/UBSan watch. */
            assert_ptr_equal(conc_int, phx_counter("phx_t5_ops_total", "Ops.", "t=\"int\""));
            phx_counter("phx_t5_ops_total", "Ops.", "t=\"new\"");
            free(phx_metrics_render());
        }
    }
    return NULL;
}

static void test_concurrency(void **state)
{
    (void)state;
    conc_int = phx_counter("phx_t5_ops_total", "Ops.", "t=\"int\"");
    conc_frac = phx_counter("phx_t5_ops_total", "Ops.", "t=\"frac\"");
    conc_gauge = phx_gauge("phx_t5_level", "Level.", NULL);
    const double b[] = {1};
    conc_hist = phx_histogram("phx_t5_lat_seconds", "Latency.", NULL, b, 1);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, conc_worker, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_rendered("phx_t5_level 400000\n");
    assert_rendered("phx_t5_ops_total{t=\"frac\"} 200000\n");
    assert_rendered("phx_t5_ops_total{t=\"int\"} 400000\n");
    assert_rendered("phx_t5_lat_seconds_bucket{le=\"1\"} 200000\n"
                    "phx_t5_lat_seconds_bucket{le=\"+Inf\"} 400000\n"
                    "phx_t5_lat_seconds_sum 1100000\n"
                    "phx_t5_lat_seconds_count 400000\n");
}

/* Run fn in a child and expect it to abort (registration mistakes are programming errors). */
static void assert_aborts(void (*fn)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDERR_FILENO);
        fn();
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void abort_type_reuse(void)
{
    phx_counter("phx_t6_reuse_total", "R.", NULL);
    phx_gauge("phx_t6_reuse_total", "R.", NULL);
}
static void abort_counter_suffix(void)
{
    phx_counter("phx_t6_requests", "R.", NULL);
}
static void abort_gauge_suffix(void)
{
    phx_gauge("phx_t6_level_total", "R.", NULL);
}
static void abort_camel(void)
{
    phx_gauge("phxLevel", "R.", NULL);
}
static void abort_bad_labels(void)
{
    phx_gauge("phx_t6_level", "R.", "a=\"x\"\"");
}
static void abort_bad_escape(void)
{
    phx_gauge("phx_t6_level", "R.", "a=\"\\t\"");
}
static void abort_le_label(void)
{
    phx_histogram("phx_t6_seconds", "R.", "le=\"1\"", NULL, 0);
}
static void abort_bounds(void)
{
    const double b[] = {1, 0.5};
    phx_histogram("phx_t6_seconds", "R.", NULL, b, 2);
}
static void abort_other_bounds(void)
{
    const double b[] = {1, 2};
    phx_histogram("phx_t6_seconds", "R.", NULL, b, 2);
    phx_histogram("phx_t6_seconds", "R.", NULL, NULL, 0);
}
static void abort_reserved(void)
{
    phx_gauge("process_open_fds", "R.", NULL);
}
static void abort_observe_gauge(void)
{
    phx_metric_observe(phx_gauge("phx_t6_level", "R.", NULL), 1);
}
static void abort_no_help(void)
{
    phx_gauge("phx_t6_level", "", NULL);
}

static void test_programming_errors_abort(void **state)
{
    (void)state;
    assert_aborts(abort_type_reuse);
    assert_aborts(abort_counter_suffix);
    assert_aborts(abort_gauge_suffix);
    assert_aborts(abort_camel);
    assert_aborts(abort_bad_labels);
    assert_aborts(abort_bad_escape);
    assert_aborts(abort_le_label);
    assert_aborts(abort_bounds);
    assert_aborts(abort_other_bounds);
    assert_aborts(abort_reserved);
    assert_aborts(abort_observe_gauge);
    assert_aborts(abort_no_help);
}

static void test_process_metrics(void **state)
{
    (void)state;
    phx_metrics_set_process("test \"metrics\"");
    char *text = phx_metrics_render();
    assert_non_null(text);
    assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(text, "# TYPE process_start_time_seconds gauge\n"));
    assert_non_null(strstr(text, "# TYPE process_open_fds gauge\n"));
    assert_non_null(strstr(text, "phx_build_info{proc=\"test \\\"metrics\\\"\"} 1\n"));
    const char *rss = strstr(text, "\nprocess_resident_memory_bytes ");
    assert_non_null(rss);
    assert_true(strtod(rss + strlen("\nprocess_resident_memory_bytes "), NULL) > 1e6);
    const char *start = strstr(text, "\nprocess_start_time_seconds ");
    assert_non_null(start);
    assert_true(strtod(start + strlen("\nprocess_start_time_seconds "), NULL) > 1.6e9);
    const char *fds = strstr(text, "\nprocess_open_fds ");
    assert_non_null(fds);
    assert_true(strtod(fds + strlen("\nprocess_open_fds "), NULL) >= 3);
    assert_int_equal(count_occurrences(text, "# TYPE process_open_fds "), 1);
    free(text);
}

/* The whole rendering passes promtool's checks, when promtool is installed (package
 * "prometheus"; not a build dependency). */
static void test_promtool(void **state)
{
    (void)state;
    if (access("/usr/bin/promtool", X_OK) != 0)
        skip();
    char *text = phx_metrics_render();
    assert_non_null(text);
    FILE *p = popen("/usr/bin/promtool check metrics >/dev/null 2>&1", "w");
    assert_non_null(p);
    fputs(text, p);
    free(text);
    assert_int_equal(pclose(p), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_format),   cmocka_unit_test(test_default_buckets_and_numbers),
        cmocka_unit_test(test_same_object),     cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_concurrency),     cmocka_unit_test(test_programming_errors_abort),
        cmocka_unit_test(test_process_metrics), cmocka_unit_test(test_promtool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
