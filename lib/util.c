/* util.c -- see util.h. */
#include "util.h"

#include <unistd.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int phx_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int phx_prefix_match(const unsigned char *a, const unsigned char *net, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

int64_t phx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t phx_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void phx_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

struct timespec phx_deadline_ms(clockid_t clock, int64_t ms)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

void phx_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

int phx_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

uint64_t phx_rand_u64(void)
{
    /* xorshift64*: jitter only, never secrets. Thread-local so no lock is needed. */
    static __thread uint64_t state;
    if (state == 0) {
        if (phx_random_bytes(&state, sizeof(state)) < 0 || state == 0)
            state = (uint64_t)phx_mono_ms() | 1;
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 2685821657736338717ULL;
}

/* The random part of ids comes from a per-thread pool refilled by one getrandom call per
 * PHX_ID_POOL bytes: a getrandom per id was one of the ingress's ~12 system calls per submitted
 * job, each dear on this paravirtualized machine (docs/benchmarks-ingress.md). The bytes are
 * the kernel's CSPRNG output all the same, used once each. A forked child would inherit its
 * parent's pool and repeat its next ids, so the child's copy is emptied (pthread_atfork; the
 * child's only thread is the one that forked, whose pool is the only one it has). */
#define PHX_ID_POOL 320 /* 32 ids of 10 random bytes */
static __thread unsigned char phx_id_pool[PHX_ID_POOL];
static __thread size_t phx_id_left;

static void phx_id_pool_forget(void)
{
    phx_id_left = 0;
}

static void phx_id_pool_init(void)
{
    pthread_atfork(NULL, NULL, phx_id_pool_forget);
}

static int phx_id_random(unsigned char *out, size_t n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, phx_id_pool_init);
    if (phx_id_left < n) {
        if (phx_random_bytes(phx_id_pool, sizeof(phx_id_pool)) < 0)
            return -1;
        phx_id_left = sizeof(phx_id_pool);
    }
    unsigned char *p = phx_id_pool + sizeof(phx_id_pool) - phx_id_left;
    memcpy(out, p, n);
    memset(p, 0, n); /* used once: what is handed out leaves the pool */
    phx_id_left -= n;
    return 0;
}

void phx_id_new(char buf[27])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    unsigned char raw[16];
    uint64_t ms = (uint64_t)phx_now_ms();
    for (int i = 5; i >= 0; i--) {
        raw[i] = ms & 0xff;
        ms >>= 8;
    }
    if (phx_id_random(raw + 6, 10) < 0) {
        for (int i = 6; i < 16; i++)
            raw[i] = (unsigned char)phx_rand_u64();
    }
    /* 128 bits -> 26 base32 digits, most significant first (ULID layout). */
    for (int i = 25; i >= 0; i--) {
        int bit = (25 - i) * 5; /* position of this digit's lowest bit from the right */
        unsigned v = 0;
        for (int b = 0; b < 5; b++) {
            int pos = bit + b;
            if (pos < 128 && (raw[15 - pos / 8] >> (pos % 8)) & 1)
                v |= 1u << b;
        }
        buf[i] = b32[v];
    }
    buf[26] = '\0';
}

void phx_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

int phx_utf8_decode(const unsigned char *s, unsigned *cpo)
{
    if (s[0] < 0x80) {
        *cpo = s[0];
        return 1;
    }
    int n;
    unsigned min;
    unsigned cp;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2, min = 0x80, cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3, min = 0x800, cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4, min = 0x10000, cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *cpo = cp;
    return n;
}

void phx_utf8_scrub(char *str)
{
    unsigned char *s = (unsigned char *)str;
    unsigned cp;
    while (*s) {
        int n = phx_utf8_decode(s, &cp);
        if (n == 0) {
            *s++ = '?';
        } else {
            s += n;
        }
    }
}

int phx_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int phx_id_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return n >= 1 && n <= 128;
}

int phx_addr_parse(const char *what, const char *addr, struct sockaddr_storage *ss, char *err,
                   size_t errlen)
{
    char host[256];
    const char *port;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':' || (size_t)(end - addr - 1) >= sizeof(host))
            goto bad;
        snprintf(host, sizeof(host), "%.*s", (int)(end - addr - 1), addr + 1);
        port = end + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon || (size_t)(colon - addr) >= sizeof(host))
            goto bad;
        snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
        if (strchr(host, ':')) /* a bare IPv6 address: the port would be ambiguous */
            goto bad;
        if (!host[0])
            snprintf(host, sizeof(host), "127.0.0.1");
        port = colon + 1;
    }
    long p;
    if (phx_parse_long(port, 0, 65535, &p) < 0)
        goto bad;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot resolve \"%s\": %s", what, host, gai_strerror(rc));
        return -1;
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)p);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)p);
    return 0;
bad:
    snprintf(err, errlen, "%s: bad listen address \"%s\" (want HOST:PORT or [V6]:PORT)", what,
             addr);
    return -1;
}

void phx_signals_block(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    /* A peer closing a socket (or a pipe to our stdout) must be an error return, not death. */
    signal(SIGPIPE, SIG_IGN);
}

size_t phx_capbuf_curl_write(char *data, size_t size, size_t nmemb, void *buf)
{
    phx_capbuf *b = buf;
    size_t add = size * nmemb;
    if (b->n + add > b->cap)
        return 0;
    char *np = realloc(b->p, b->n + add + 1);
    if (!np)
        return 0;
    memcpy(np + b->n, data, add);
    b->p = np;
    b->n += add;
    b->p[b->n] = '\0';
    return add;
}

/* The one place an allocation failure ends the process (see util.h for why). */
static void *util_oom(void *p)
{
    if (!p) {
        static const char msg[] = "phoenix: out of memory; aborting\n";
        if (write(2, msg, sizeof(msg) - 1) < 0) {
            /* nothing left to report with */
        }
        abort();
    }
    return p;
}

void *phx_xmalloc(size_t n)
{
    return util_oom(malloc(n ? n : 1));
}

void *phx_xcalloc(size_t nmemb, size_t size)
{
    return util_oom(calloc(nmemb ? nmemb : 1, size ? size : 1));
}

void *phx_xrealloc(void *p, size_t n)
{
    return util_oom(realloc(p, n ? n : 1));
}

char *phx_xstrdup(const char *s)
{
    return util_oom(strdup(s));
}

char *phx_xstrndup(const char *s, size_t n)
{
    return util_oom(strndup(s, n));
}
