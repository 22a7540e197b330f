/* breaker.c -- circuit breaker state machine (see breaker.h). */
#include "breaker.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

void phx_breaker_init(phx_breaker *b, const phx_breaker_cfg *cfg)
{
    memset(b, 0, sizeof(*b));
    pthread_mutex_init(&b->mu, NULL);
    b->cfg = *cfg;
    if (b->cfg.window_ms < PHX_BREAKER_BUCKETS)
        b->cfg.window_ms = PHX_BREAKER_BUCKETS;
    if (b->cfg.probes < 1)
        b->cfg.probes = 1;
    b->state = PHX_BREAKER_CLOSED;
}

void phx_breaker_name(phx_breaker *b, const char *name)
{
    snprintf(b->name, sizeof(b->name), "%s", name ? name : "");
}

/* A state change, reported after the mutex is released: a counter an alert can follow and a
 * log line an operator can read (an open breaker is a warning; the way back is news). Only
 * named breakers report, so a label never holds an unbounded value. */
static void phx_breaker_report(phx_breaker *b, int from, int to)
{
    if (from == to || !b->name[0])
        return;
    char esc[128], labels[192];
    phx_metrics_escape_label(esc, sizeof(esc), b->name);
    snprintf(labels, sizeof(labels), "breaker=\"%s\",to=\"%s\"", esc, phx_breaker_state_name(to));
    phx_metric_add(phx_counter("phx_breaker_transitions_total",
                               "Circuit breaker state changes, by breaker and new state.", labels),
                   1);
    phx_logj(to == PHX_BREAKER_OPEN ? PHX_LOG_WARN : PHX_LOG_INFO, NULL, NULL,
             "breaker %s: %s -> %s", b->name, phx_breaker_state_name(from),
             phx_breaker_state_name(to));
}

void phx_breaker_destroy(phx_breaker *b)
{
    pthread_mutex_destroy(&b->mu);
}

static void phx_breaker_clear(phx_breaker *b)
{
    memset(b->b, 0, sizeof(b->b));
}

/* Open with a jittered interval; caller holds mu. */
static void phx_breaker_trip(phx_breaker *b, int64_t now)
{
    long span = b->cfg.open_ms * 2 / 5; /* 0.4 * open_ms -> [0.8, 1.2) */
    long jitter = span > 0 ? (long)(phx_rand_u64() % (uint64_t)span) : 0;
    b->state = PHX_BREAKER_OPEN;
    b->open_until = now + b->cfg.open_ms * 4 / 5 + jitter;
    b->probes_inflight = 0;
    b->probes_ok = 0;
}

/* Open -> half-open once the interval passed; caller holds mu. */
static void phx_breaker_advance(phx_breaker *b, int64_t now)
{
    if (b->state == PHX_BREAKER_OPEN && now >= b->open_until) {
        b->state = PHX_BREAKER_HALF_OPEN;
        b->probes_inflight = 0;
        b->probes_ok = 0;
    }
}

int phx_breaker_allow(phx_breaker *b, int64_t now_ms)
{
    int t = PHX_BREAKER_DENIED;
    pthread_mutex_lock(&b->mu);
    int from = b->state;
    phx_breaker_advance(b, now_ms);
    if (b->state == PHX_BREAKER_CLOSED) {
        t = PHX_BREAKER_NORMAL;
    } else if (b->state == PHX_BREAKER_HALF_OPEN && b->probes_inflight < b->cfg.probes) {
        b->probes_inflight++;
        t = PHX_BREAKER_PROBE;
    }
    int to = b->state;
    pthread_mutex_unlock(&b->mu);
    phx_breaker_report(b, from, to);
    return t;
}

/* Count an outcome in the closed-state window and trip if the failure (or slow-call) rate is
 * reached. */
static void phx_breaker_count(phx_breaker *b, int64_t now, int ok, int slow)
{
    long width = b->cfg.window_ms / PHX_BREAKER_BUCKETS;
    int64_t start = now - now % width;
    int i = (int)((now / width) % PHX_BREAKER_BUCKETS);
    if (b->b[i].start != start) {
        b->b[i].start = start;
        b->b[i].ok = b->b[i].fail = b->b[i].slow = 0;
    }
    if (ok)
        b->b[i].ok++;
    else
        b->b[i].fail++;
    b->b[i].slow += slow;
    if (ok && !slow)
        return;
    long total = 0, fail = 0, nslow = 0;
    for (int k = 0; k < PHX_BREAKER_BUCKETS; k++) {
        if (b->b[k].start + b->cfg.window_ms <= now)
            continue; /* outside the window */
        total += b->b[k].ok + b->b[k].fail;
        fail += b->b[k].fail;
        nslow += b->b[k].slow;
    }
    if (total < b->cfg.min_requests)
        return;
    if (fail * 100 >= b->cfg.failure_pct * total ||
        (b->cfg.slow_pct > 0 && nslow * 100 >= b->cfg.slow_pct * total))
        phx_breaker_trip(b, now);
}

void phx_breaker_record(phx_breaker *b, int64_t now_ms, int ticket, int ok)
{
    phx_breaker_record_timed(b, now_ms, ticket, ok, 0);
}

void phx_breaker_record_timed(phx_breaker *b, int64_t now_ms, int ticket, int ok,
                              int64_t duration_ms)
{
    int slow = b->cfg.slow_ms > 0 && duration_ms >= b->cfg.slow_ms;
    if (ticket == PHX_BREAKER_DENIED)
        return;
    pthread_mutex_lock(&b->mu);
    int from = b->state;
    if (ticket == PHX_BREAKER_PROBE) {
        if (b->state == PHX_BREAKER_HALF_OPEN) {
            b->probes_inflight--;
            if (!ok) {
                phx_breaker_trip(b, now_ms);
            } else if (++b->probes_ok >= b->cfg.probes) {
                b->state = PHX_BREAKER_CLOSED;
                phx_breaker_clear(b);
            }
        }
    } else if (b->state == PHX_BREAKER_CLOSED) {
        phx_breaker_count(b, now_ms, ok, slow);
    }
    /* A normal request finishing after the breaker opened tells nothing new: ignored. */
    int to = b->state;
    pthread_mutex_unlock(&b->mu);
    phx_breaker_report(b, from, to);
}

void phx_breaker_release(phx_breaker *b, int ticket)
{
    if (ticket != PHX_BREAKER_PROBE)
        return;
    pthread_mutex_lock(&b->mu);
    if (b->state == PHX_BREAKER_HALF_OPEN && b->probes_inflight > 0)
        b->probes_inflight--;
    pthread_mutex_unlock(&b->mu);
}

int phx_breaker_state(phx_breaker *b, int64_t now_ms)
{
    pthread_mutex_lock(&b->mu);
    int from = b->state;
    phx_breaker_advance(b, now_ms);
    int s = b->state;
    pthread_mutex_unlock(&b->mu);
    phx_breaker_report(b, from, s);
    return s;
}

const char *phx_breaker_state_name(int state)
{
    switch (state) {
    case PHX_BREAKER_OPEN:
        return "open";
    case PHX_BREAKER_HALF_OPEN:
        return "half_open";
    default:
        return "closed";
    }
}
