/* util.h -- small helpers every Phoenix process needs: clocks, ids, hashing, text hygiene. */
#ifndef PHX_UTIL_H
#define PHX_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Parse s as a whole base-10 integer within [min, max] into *out: 0, or -1 (empty, trailing
 * characters, overflow, out of range) with *out untouched. The one strict parser for numbers
 * a user typed (options, config values, CLI arguments): atoi/atol turn "10x" into 10. */
int phx_parse_long(const char *s, long min, long max, long *out);

/* Do the first prefix bits of the addresses a and net (network byte order) agree? The CIDR
 * test shared by tool.http_fetch's address rules and the intel feeds. */
int phx_prefix_match(const unsigned char *a, const unsigned char *net, int prefix);

/* Wall-clock milliseconds since the epoch (for timestamps stored in Redis and messages). */
int64_t phx_now_ms(void);
/* Monotonic milliseconds (for timeouts and durations inside one process). */
int64_t phx_mono_ms(void);
void phx_sleep_ms(int64_t ms);
/* now + ms on clock (CLOCK_REALTIME or CLOCK_MONOTONIC), as the absolute time
 * pthread_cond_timedwait and pthread_timedjoin_np want: a condition variable waits on the clock
 * its attributes name (realtime unless set otherwise). */
struct timespec phx_deadline_ms(clockid_t clock, int64_t ms);
/* Initialise cv to wait on CLOCK_MONOTONIC (deadlines from phx_deadline_ms(CLOCK_MONOTONIC)):
 * a bounded wait on the realtime clock lasts as long again as any backward step of the wall
 * clock (NTP, an operator's date -s) while it waits. */
#include <pthread.h>
void phx_cond_init_monotonic(pthread_cond_t *cv);

/* FNV-1a over n bytes, going on from h: the seed to start, or an earlier call's result to hash
 * pieces as one. The one hash for in-process tables and feature hashing; never where an
 * attacker could aim at a table's worst case (it has no key). Inline: the safety scanner
 * calls it per word prefix.
 * PHX_FNV64_SEED is not FNV's published 64-bit offset basis (14695981039346656037, one digit
 * longer): Phoenix's first lexical embedder started from this value, and the vectors it made
 * are stored in knowledge bases, so it stays (FNV's mixing does not depend on the basis).
 * The 32-bit one is FNV's own. */
#define PHX_FNV64_SEED  1469598103934665603ULL
#define PHX_FNV32_BASIS 2166136261u
static inline uint64_t phx_fnv64(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}
static inline uint32_t phx_fnv32(uint32_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* A new random id: 26 chars of Crockford base32 (48-bit ms timestamp + 80 random bits, so ids
 * sort by creation time). buf must hold 27 bytes. */
void phx_id_new(char buf[27]);
/* Fill buf with n cryptographically random bytes from getrandom(2); 0 or -1. */
int phx_random_bytes(void *buf, size_t n);
/* Lowercase hex SHA-256 of data; out must hold 65 bytes. */
void phx_sha256_hex(const void *data, size_t len, char out[65]);

/* The UTF-8 sequence at s: its length with the code point in *cp, or 0 when it is not valid
 * (overlong, surrogate, past U+10FFFF, truncated). */
int phx_utf8_decode(const unsigned char *s, unsigned *cp);
/* Replace every byte that is not part of valid UTF-8 with '?', in place. */
void phx_utf8_scrub(char *s);
/* 1 if s is a valid job/step id: 1..128 of [A-Za-z0-9._:-]. No braces, so the Redis hash tag
 * {ID} can never be broken by an id. */
int phx_id_valid(const char *s);
/* 1 if s is a valid name of a stored object (persona, kb collection): 1..64 of
 * [A-Za-z0-9._-] -- safe inside Redis keys and file names. */
int phx_name_valid(const char *s);

/* Parse a listen address "HOST:PORT" or "[V6]:PORT" (empty host = 127.0.0.1) into ss.
 * 0, or -1 with a message naming what (e.g. "PHX_INGRESS_ADDR"). */
struct sockaddr_storage;
int phx_addr_parse(const char *what, const char *addr, struct sockaddr_storage *ss, char *err,
                   size_t errlen);

/* Block SIGTERM, SIGINT and SIGHUP in the calling thread (and every thread created after)
 * and ignore SIGPIPE; set gets the blocked set for sigwait/sigtimedwait. Call before any
 * thread exists, so that only the thread that waits on set ever receives them. */
#include <signal.h>
void phx_signals_block(sigset_t *set);

/* Allocators that do not return on failure: they log "out of memory" and abort, as Redis's
 * zmalloc does. The policy for every Phoenix process: one that cannot allocate a few KiB cannot
 * answer anyone, and handling NULL at hundreds of call sites is code that never runs in tests
 * and so leaks or writes through NULL when it finally does. Aborting is honest for a worker:
 * its supervisor restarts it and Kafka redelivers the uncommitted message. The trade-off: an
 * allocation failure is a process restart, not one failed request -- so a size from outside
 * (a body, a count in a message) must be bounded before it reaches these, never after; code
 * that reads hostile sizes checks them against its cap first (phx_capbuf, body limits).
 * n == 0 allocates 1 byte so the result is never NULL. */
#define PHX_XALLOC __attribute__((malloc, returns_nonnull, warn_unused_result))
void *phx_xmalloc(size_t n) PHX_XALLOC;
void *phx_xcalloc(size_t nmemb, size_t size) PHX_XALLOC;
char *phx_xstrdup(const char *s) PHX_XALLOC;
char *phx_xstrndup(const char *s, size_t n) PHX_XALLOC;
/* Not `malloc`: the result may alias the block passed in. */
void *phx_xrealloc(void *p, size_t n) __attribute__((returns_nonnull, warn_unused_result));

/* A growing, NUL-terminated byte buffer that refuses to pass cap bytes: the target of an HTTP
 * client's body (curl's CURLOPT_WRITEDATA with phx_capbuf_curl_write as CURLOPT_WRITEFUNCTION). */
typedef struct phx_capbuf {
    char *p; /* malloc'd (free it), NUL-terminated; NULL until the first byte */
    size_t n, cap;
} phx_capbuf;

/* libcurl write callback for a phx_capbuf: appends, or returns 0 (which aborts the transfer)
 * when the body would pass buf->cap or memory runs out. */
size_t phx_capbuf_curl_write(char *data, size_t size, size_t nmemb, void *buf);

/* Random jitter in [0, max) from a thread-local PRNG seeded from getrandom. */
uint64_t phx_rand_u64(void);

#endif
