/* breaker.h -- the circuit breaker every outward dependency is wrapped in (Redis, each LLM
 * provider, ...): closed / open / half-open. One implementation for the whole system.
 *
 * Why: when a dependency is down, every call waiting out its timeout on it burns a worker
 * thread and the job's deadline. The breaker notices a failing dependency from its recent
 * failure rate (or slow-call rate) and fails calls at once -- the LLM pool then moves to the
 * next provider in its chain, the worker loop backs off and keeps its message -- and probes
 * the dependency with a few requests before trusting it again.
 *
 *   closed     every request allowed; outcomes counted in a sliding window of time buckets.
 *              When the window holds >= min_requests and the failure share reaches
 *              failure_pct (or, with slow_ms set, the share of calls slower than slow_ms
 *              reaches slow_pct), the breaker opens.
 *   open       nothing allowed until a jittered open interval (open_ms * [0.8, 1.2)) passes;
 *              the jitter keeps many replicas from probing a recovering provider in lockstep.
 *   half-open  at most `probes` requests in flight at once; `probes` successes close the
 *              breaker (window cleared), any probe failure opens it again.
 *
 * Time is passed in by the caller (monotonic ms), so tests drive it without sleeping. All
 * functions are thread-safe (one mutex per breaker; held for a few instructions only). */
#ifndef PHX_BREAKER_H
#define PHX_BREAKER_H

#include <pthread.h>
#include <stdint.h>

#define PHX_BREAKER_BUCKETS 10

enum phx_breaker_state { PHX_BREAKER_CLOSED = 0, PHX_BREAKER_OPEN = 1, PHX_BREAKER_HALF_OPEN = 2 };

typedef struct phx_breaker_cfg {
    long window_ms;    /* length of the sliding window */
    long min_requests; /* fewer outcomes than this in the window never open the breaker */
    long failure_pct;  /* 1..100 */
    long open_ms;      /* base open interval (jittered) */
    long probes;       /* half-open: concurrent probes allowed, and successes needed to close */
    long slow_ms;      /* with phx_breaker_record_timed: a call this slow counts as slow ... */
    long slow_pct;     /* ... and this share of slow calls opens the breaker (0 = off) */
} phx_breaker_cfg;

typedef struct phx_breaker {
    pthread_mutex_t mu;
    char name[48]; /* "" until phx_breaker_name: transitions are reported only when named */
    phx_breaker_cfg cfg;
    int state;
    int64_t open_until;
    int probes_inflight, probes_ok;
    struct {
        int64_t start; /* bucket start (ms); a bucket older than the window counts nothing */
        int ok, fail, slow;
    } b[PHX_BREAKER_BUCKETS];
} phx_breaker;

/* What phx_breaker_allow granted; pass it back to phx_breaker_record. */
enum phx_breaker_ticket { PHX_BREAKER_DENIED = 0, PHX_BREAKER_NORMAL = 1, PHX_BREAKER_PROBE = 2 };

void phx_breaker_init(phx_breaker *b, const phx_breaker_cfg *cfg);
void phx_breaker_destroy(phx_breaker *b);
/* Name the breaker ("redis", "llm:openai"): from then on every state change is counted in
 * phx_breaker_transitions_total{breaker,to} and logged (a warning when it opens). The name
 * is a metric label: keep it to a fixed set per process. */
void phx_breaker_name(phx_breaker *b, const char *name);
/* May a request go now? Returns a ticket (DENIED when open, or half-open with all probe slots
 * taken). */
int phx_breaker_allow(phx_breaker *b, int64_t now_ms);
/* Outcome of a request that got ticket. ok = 0 for a provider failure (5xx, transport error,
 * malformed answer); client errors are not the provider's fault and must not be recorded as
 * failures. A DENIED ticket is ignored. */
void phx_breaker_record(phx_breaker *b, int64_t now_ms, int ticket, int ok);
/* The same, with the call's duration, so slow calls count towards slow_pct. */
void phx_breaker_record_timed(phx_breaker *b, int64_t now_ms, int ticket, int ok,
                              int64_t duration_ms);
/* Give back a ticket without an outcome (the request was not sent after all). */
void phx_breaker_release(phx_breaker *b, int ticket);
/* Current state (an open breaker whose interval passed reports half-open). */
int phx_breaker_state(phx_breaker *b, int64_t now_ms);
const char *phx_breaker_state_name(int state);

#endif
