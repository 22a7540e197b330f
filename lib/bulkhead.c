/* bulkhead.c -- bounded in-flight calls per dependency (see bulkhead.h).
 *
 * A counting semaphore built from a mutex and a condition variable rather than sem_t: the
 * count must be readable for metrics and the wait must be bounded on the monotonic clock
 * (sem_timedwait only takes CLOCK_REALTIME, which jumps with NTP). */
#include "bulkhead.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void phx_bulkhead_init(phx_bulkhead *b, const char *name, long limit, long wait_ms)
{
    memset(b, 0, sizeof(*b));
    pthread_mutex_init(&b->mu, NULL);
    phx_cond_init_monotonic(&b->drained);
    snprintf(b->name, sizeof(b->name), "%s", name);
    b->limit = limit < 1 ? 1 : limit;
    b->wait_ms = wait_ms < 0 ? 0 : wait_ms;
    char esc[128], labels[160];
    phx_metrics_escape_label(esc, sizeof(esc), b->name);
    snprintf(labels, sizeof(labels), "bulkhead=\"%s\"", esc);
    b->m_limit =
        phx_gauge("phx_bulkhead_limit", "Calls a bulkhead lets in flight at once.", labels);
    b->m_inflight =
        phx_gauge("phx_bulkhead_inflight", "Calls in flight through a bulkhead now.", labels);
    b->m_peak = phx_gauge("phx_bulkhead_inflight_max",
                          "Most calls ever in flight at once through a bulkhead (equal to "
                          "phx_bulkhead_limit once it saturated).",
                          labels);
    b->m_rejected = phx_counter("phx_bulkhead_rejected_total",
                                "Calls a full bulkhead refused (the message waited in Kafka: "
                                "partitions paused, retried when drained).",
                                labels);
    b->m_waits = phx_counter("phx_bulkhead_waits_total",
                             "Calls that found a bulkhead full and waited for a slot.", labels);
    phx_metric_set(b->m_limit, (double)b->limit);
}

void phx_bulkhead_destroy(phx_bulkhead *b)
{
    pthread_cond_destroy(&b->drained);
    pthread_mutex_destroy(&b->mu);
}

int phx_bulkhead_enter(phx_bulkhead *b, phx_err *err)
{
    pthread_mutex_lock(&b->mu);
    if (b->inflight >= b->limit && b->wait_ms > 0) {
        phx_metric_add(b->m_waits, 1);
        /* drained waits on the monotonic clock (phx_bulkhead_init) */
        struct timespec until = phx_deadline_ms(CLOCK_MONOTONIC, b->wait_ms);
        while (b->inflight >= b->limit)
            if (pthread_cond_timedwait(&b->drained, &b->mu, &until) == ETIMEDOUT)
                break;
    }
    if (b->inflight >= b->limit) {
        long limit = b->limit;
        pthread_mutex_unlock(&b->mu);
        phx_metric_add(b->m_rejected, 1);
        return phx_err_set(err, PHX_BULKHEAD_FULL, 1,
                           "%s: %ld calls in flight already (the bulkhead's limit)", b->name,
                           limit);
    }
    b->inflight++;
    if (b->inflight > b->peak) {
        b->peak = b->inflight;
        phx_metric_set(b->m_peak, (double)b->peak);
    }
    phx_metric_set(b->m_inflight, (double)b->inflight);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

void phx_bulkhead_leave(phx_bulkhead *b)
{
    pthread_mutex_lock(&b->mu);
    if (b->inflight > 0)
        b->inflight--;
    phx_metric_set(b->m_inflight, (double)b->inflight);
    pthread_cond_signal(&b->drained);
    pthread_mutex_unlock(&b->mu);
}

long phx_bulkhead_inflight(phx_bulkhead *b)
{
    pthread_mutex_lock(&b->mu);
    long n = b->inflight;
    pthread_mutex_unlock(&b->mu);
    return n;
}

int phx_bulkhead_refused(const phx_err *err)
{
    return err && strcmp(err->code, PHX_BULKHEAD_FULL) == 0;
}
