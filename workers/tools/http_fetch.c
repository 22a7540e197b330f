/* http_fetch.c -- tool.http_fetch (see http_fetch.h for the contract).
 *
 * The request is validated first (scheme, method, headers, sizes), then handed to one libcurl
 * easy handle. The SSRF policy is enforced in CURLOPT_OPENSOCKETFUNCTION: libcurl calls it with
 * the resolved sockaddr just before creating each socket, for the first request and for every
 * redirect, so the address judged is exactly the address connected to. Checking the host name
 * or a separate getaddrinfo() beforehand would leave a window for DNS rebinding; we still do a
 * cheap check on literal IPs in the URL, only so those fail with a clear message and without
 * starting a transfer. Since each call has its own handle, no connection or DNS cache entry
 * outlives it.
 *
 * Trade-offs: the body is capped while downloading and the transfer is aborted at the cap
 * rather than drained, so a huge or endless body costs at most max_body_bytes and no extra
 * time; response headers are kept within FETCH_MAX_RESP_HEADERS / FETCH_MAX_RESP_HDR_BYTES and
 * the rest dropped, as they are only informational for the agent. */
#include "http_fetch.h"
#include "intel.h"
#include "trace.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define FETCH_MAX_CIDRS          32
#define FETCH_MAX_HDR_NAME       256
#define FETCH_MAX_HDR_VALUE      8192
#define FETCH_MAX_RESP_HEADERS   100
#define FETCH_MAX_RESP_HDR_BYTES (64 * 1024)
#define FETCH_MAX_BODY_CAP       ((size_t)256 * 1024 * 1024) /* sanity bound for the config */
#define FETCH_USER_AGENT         "phoenix-http-fetch/1"

/* An address or network, IPv4 in the first 4 bytes of b. */
typedef struct fetch_net {
    int family; /* AF_INET or AF_INET6 */
    unsigned char b[16];
    int prefix; /* bits; for a plain address 32 or 128 */
} fetch_net;

typedef struct fetch_ctx {
    fetch_net allow[FETCH_MAX_CIDRS];
    int nallow;

    /* set by the socket callback when it refuses a connection */
    int refused;
    char refused_addr[INET6_ADDRSTRLEN];
    const char *refused_reason;

    char *body;
    size_t body_len, body_alloc, max_body;
    int truncated;

    json_t *headers; /* of the response being received; reset on each status line */
    int nheaders;
    size_t header_bytes;

    int oom;
    const phx_fetch_hosts *hosts; /* host rule for every request, or NULL */
    CURL *h;
    char refused_host[256]; /* set when the host rule refused a request */
    struct phx_intel *intel;
    char intel_why[512]; /* set when a feed refused the request */
} fetch_ctx;

/* --- addresses and the policy ------------------------------------------------------------- */

/* Parse a numeric IPv4 or IPv6 address (no brackets, no zone id). */
static int fetch_addr_parse(const char *s, fetch_net *out)
{
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, s, out->b) == 1) {
        out->family = AF_INET;
        out->prefix = 32;
        return 0;
    }
    if (inet_pton(AF_INET6, s, out->b) == 1) {
        out->family = AF_INET6;
        out->prefix = 128;
        return 0;
    }
    return -1;
}

static const unsigned char fetch_v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* ::ffff:a.b.c.d reaches a.b.c.d, so it is judged (and allowed) exactly as that address. */
static void fetch_normalize(fetch_net *a)
{
    /* A mapped network shorter than /96 is left alone: turning it into IPv4 /0 would allow
     * every IPv4 address. */
    if (a->family == AF_INET6 && a->prefix >= 96 && memcmp(a->b, fetch_v4mapped, 12) == 0) {
        memmove(a->b, a->b + 12, 4);
        memset(a->b + 4, 0, 12);
        a->family = AF_INET;
        a->prefix -= 96;
    }
}

static int fetch_in_net(const fetch_net *a, const fetch_net *net)
{
    return a->family == net->family && phx_prefix_match(a->b, net->b, net->prefix);
}

static int fetch_in(const fetch_net *a, const char *net, int prefix)
{
    fetch_net n;
    if (fetch_addr_parse(net, &n) < 0)
        return 0;
    n.prefix = prefix;
    return fetch_in_net(a, &n);
}

typedef struct fetch_rule {
    const char *net;
    int prefix;
    const char *reason;
} fetch_rule;

/* IANA special-purpose IPv4 blocks that must not be reachable from an agent's URL. Broadcast is
 * listed before 240/4 only so it gets its own name. */
static const fetch_rule fetch_v4_rules[] = {
    {"0.0.0.0", 8, "this-network (0.0.0.0/8)"},
    {"10.0.0.0", 8, "private (10.0.0.0/8)"},
    {"100.64.0.0", 10, "carrier-grade NAT (100.64.0.0/10)"},
    {"127.0.0.0", 8, "loopback"},
    {"169.254.0.0", 16, "link-local / cloud metadata (169.254.0.0/16)"},
    {"172.16.0.0", 12, "private (172.16.0.0/12)"},
    {"192.0.0.0", 24, "IETF protocol assignments (192.0.0.0/24)"},
    {"192.0.2.0", 24, "documentation (192.0.2.0/24)"},
    {"192.88.99.0", 24, "6to4 relay anycast (192.88.99.0/24)"},
    {"192.168.0.0", 16, "private (192.168.0.0/16)"},
    {"198.18.0.0", 15, "benchmarking (198.18.0.0/15)"},
    {"198.51.100.0", 24, "documentation (198.51.100.0/24)"},
    {"203.0.113.0", 24, "documentation (203.0.113.0/24)"},
    {"224.0.0.0", 4, "multicast"},
    {"255.255.255.255", 32, "broadcast"},
    {"240.0.0.0", 4, "reserved (240.0.0.0/4)"},
};

/* IPv6 outside 2000::/3 (global unicast) is refused wholesale below, which already covers ::,
 * ::1, IPv4-compatible ::/96, 100::/64, fc00::/7, fe80::/10, fec0::/10 and ff00::/8; these
 * rules only give the common ones a precise name, and carve the non-public blocks out of
 * 2000::/3. */
static const fetch_rule fetch_v6_rules[] = {
    {"::", 128, "unspecified (::)"},
    {"::1", 128, "loopback (::1)"},
    {"fc00::", 7, "unique local (fc00::/7)"},
    {"fe80::", 10, "link-local (fe80::/10)"},
    {"fec0::", 10, "site-local (fec0::/10)"},
    {"ff00::", 8, "multicast (ff00::/8)"},
    {"64:ff9b:1::", 48, "NAT64 local-use (64:ff9b:1::/48)"},
    {"2001::", 23, "IETF protocol assignments incl. Teredo (2001::/23)"},
    {"2001:db8::", 32, "documentation (2001:db8::/32)"},
    {"3fff::", 20, "documentation (3fff::/20)"},
};

/* NULL when a (normalized) may be connected to, else why not. */
static const char *fetch_refusal(const fetch_net *a)
{
    if (a->family == AF_INET) {
        for (size_t i = 0; i < sizeof(fetch_v4_rules) / sizeof(fetch_v4_rules[0]); i++)
            if (fetch_in(a, fetch_v4_rules[i].net, fetch_v4_rules[i].prefix))
                return fetch_v4_rules[i].reason;
        return NULL;
    }
    for (size_t i = 0; i < sizeof(fetch_v6_rules) / sizeof(fetch_v6_rules[0]); i++)
        if (fetch_in(a, fetch_v6_rules[i].net, fetch_v6_rules[i].prefix))
            return fetch_v6_rules[i].reason;

    /* Translation prefixes lead to an IPv4 host on the translator's side: judge that host. */
    fetch_net v4 = {.family = AF_INET, .prefix = 32};
    if (fetch_in(a, "64:ff9b::", 96) || fetch_in(a, "2002::", 16)) {
        memcpy(v4.b, a->b[0] == 0x20 ? a->b + 2 : a->b + 12, 4);
        const char *r = fetch_refusal(&v4);
        return r ? "IPv6 translation of a refused IPv4 address" : NULL;
    }
    if (!fetch_in(a, "2000::", 3))
        return "reserved IPv6 (outside 2000::/3)";
    return NULL;
}

/* Parse "cidr[,cidr...]"; a bare address is a single host. Host bits past the prefix are
 * ignored rather than rejected, so "10.1.2.3/8" means 10/8. */
static int fetch_cidrs_parse(const char *list, fetch_net *out, int *n, phx_err *err)
{
    *n = 0;
    if (!list)
        return 0;
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, ", \t");
        char tok[INET6_ADDRSTRLEN + 8];
        if (len >= sizeof(tok))
            return phx_err_set(err, "invalid_config", 0, "allow_cidrs: entry too long: %.40s", p);
        memcpy(tok, p, len);
        tok[len] = '\0';
        p += len;
        if (*n >= FETCH_MAX_CIDRS)
            return phx_err_set(err, "invalid_config", 0, "allow_cidrs: more than %d entries",
                               FETCH_MAX_CIDRS);

        fetch_net *net = &out[*n];
        char *slash = strchr(tok, '/');
        if (slash)
            *slash = '\0';
        if (fetch_addr_parse(tok, net) < 0)
            return phx_err_set(err, "invalid_config", 0, "allow_cidrs: bad address \"%s\"", tok);
        if (slash) {
            const char *d = slash + 1;
            int bits = 0, max = net->family == AF_INET ? 32 : 128;
            if (!*d || strlen(d) > 3 || strspn(d, "0123456789") != strlen(d) ||
                (bits = (int)strtol(d, NULL, 10)) > max)
                return phx_err_set(err, "invalid_config", 0, "allow_cidrs: bad prefix \"/%s\"", d);
            net->prefix = bits;
        }
        fetch_normalize(net);
        (*n)++;
    }
    return 0;
}

/* 1 allowed, 0 refused (*reason set). The allow list wins over the refusal rules. */
static int fetch_decide(const fetch_net *addr, const fetch_net *allow, int nallow,
                        const char **reason)
{
    fetch_net a = *addr;
    fetch_normalize(&a);
    for (int i = 0; i < nallow; i++)
        if (fetch_in_net(&a, &allow[i]))
            return 1;
    const char *r = fetch_refusal(&a);
    if (reason)
        *reason = r;
    return r == NULL;
}

int phx_fetch_ip_allowed(const char *ip, const char *allow_cidrs, const char **reason)
{
    fetch_net a, allow[FETCH_MAX_CIDRS];
    int nallow;
    if (reason)
        *reason = NULL;
    if (!ip || fetch_addr_parse(ip, &a) < 0 ||
        fetch_cidrs_parse(allow_cidrs, allow, &nallow, NULL) < 0)
        return -1;
    return fetch_decide(&a, allow, nallow, reason);
}

/* --- configuration ------------------------------------------------------------------------ */

void phx_fetch_cfg_defaults(phx_fetch_cfg *cfg)
{
    cfg->timeout_ms = 10000;
    cfg->max_timeout_ms = 60000;
    cfg->max_body_bytes = 1024 * 1024;
    cfg->allow_cidrs = NULL;
    cfg->max_redirects = 5;
    cfg->intel = NULL;
}

int phx_fetch_cfg_check(const phx_fetch_cfg *cfg, phx_err *err)
{
    fetch_net allow[FETCH_MAX_CIDRS];
    int n;
    if (!cfg)
        return phx_err_set(err, "invalid_config", 0, "no http_fetch configuration");
    if (cfg->timeout_ms <= 0 || cfg->max_timeout_ms <= 0)
        return phx_err_set(err, "invalid_config", 0, "timeouts must be positive");
    if (cfg->max_body_bytes == 0 || cfg->max_body_bytes > FETCH_MAX_BODY_CAP)
        return phx_err_set(err, "invalid_config", 0, "max_body_bytes must be 1..%zu",
                           FETCH_MAX_BODY_CAP);
    if (cfg->max_redirects < 0 || cfg->max_redirects > 50)
        return phx_err_set(err, "invalid_config", 0, "max_redirects must be 0..50");
    return fetch_cidrs_parse(cfg->allow_cidrs, allow, &n, err);
}

/* --- libcurl callbacks -------------------------------------------------------------------- */

/* The SSRF gate: called with the sockaddr libcurl resolved, right before each connect. */
static curl_socket_t fetch_opensocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *sa)
{
    fetch_ctx *ctx = clientp;
    fetch_net a = {0};
    const char *reason = "not an IP connection";

    if (purpose == CURLSOCKTYPE_IPCXN && sa->family == AF_INET &&
        sa->addrlen >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&sa->addr;
        a.family = AF_INET;
        a.prefix = 32;
        memcpy(a.b, &in->sin_addr, 4);
    } else if (purpose == CURLSOCKTYPE_IPCXN && sa->family == AF_INET6 &&
               sa->addrlen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&sa->addr;
        a.family = AF_INET6;
        a.prefix = 128;
        memcpy(a.b, &in6->sin6_addr, 16);
    }
    if (a.family && fetch_decide(&a, ctx->allow, ctx->nallow, &reason))
        return socket(sa->family, sa->socktype | SOCK_CLOEXEC, sa->protocol);

    ctx->refused = 1;
    ctx->refused_reason = reason;
    if (!a.family || !inet_ntop(a.family, a.b, ctx->refused_addr, sizeof(ctx->refused_addr)))
        snprintf(ctx->refused_addr, sizeof(ctx->refused_addr), "?");
    return CURL_SOCKET_BAD;
}

/* The feeds' verdict on a request about to be made: url, its host, the address connected to
 * (may be NULL). 1 with ctx->intel_why filled when something is listed. */
static int fetch_intel_refuses(fetch_ctx *ctx, const char *url, const char *host, const char *ip)
{
    phx_intel_hit hit;
    const char *what = NULL;
    if (host && phx_intel_match_host(ctx->intel, host, &hit))
        what = host;
    else if (ip && *ip && phx_intel_match_ip(ctx->intel, ip, &hit))
        what = ip;
    else if (url && phx_intel_match_url(ctx->intel, url, &hit))
        what = url;
    if (!what)
        return 0;
    snprintf(ctx->intel_why, sizeof(ctx->intel_why), "%.200s is on threat list %.100s (%s %.150s)",
             what, hit.source, phx_intel_type_name(hit.type), hit.entry);
    return 1;
}

/* The host rule, run before each request is sent -- the first and every redirect (libcurl's
 * effective URL is the one about to be requested). Redirects are where a listed host could
 * hand the fetch to an unlisted one, and the address check alone would let a public one by. */
static int fetch_prereq(void *clientp, char *primary_ip, char *local_ip, int primary_port,
                        int local_port)
{
    (void)local_ip, (void)primary_port, (void)local_port;
    fetch_ctx *ctx = clientp;
    char *eff = NULL, *host = NULL;
    int ok = 0;
    CURLU *u = curl_url();
    if (u && curl_easy_getinfo(ctx->h, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff &&
        curl_url_set(u, CURLUPART_URL, eff, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        ok = !ctx->hosts || ctx->hosts->allowed(ctx->hosts->arg, host);
    if (ok && ctx->intel && fetch_intel_refuses(ctx, eff, host, primary_ip)) {
        curl_free(host);
        curl_url_cleanup(u);
        return CURL_PREREQFUNC_ABORT;
    }
    if (!ok)
        snprintf(ctx->refused_host, sizeof(ctx->refused_host), "%s", host ? host : "?");
    curl_free(host);
    curl_url_cleanup(u);
    return ok ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT;
}

static size_t fetch_on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    fetch_ctx *ctx = userp;
    size_t n = size * nmemb, room = ctx->max_body - ctx->body_len;
    size_t take = n < room ? n : room;
    if (ctx->body_len + take > ctx->body_alloc) {
        size_t want = ctx->body_alloc ? ctx->body_alloc : 16384;
        while (want < ctx->body_len + take)
            want *= 2;
        if (want > ctx->max_body)
            want = ctx->max_body;
        char *nb = realloc(ctx->body, want);
        if (!nb) {
            ctx->oom = 1;
            return 0;
        }
        ctx->body = nb;
        ctx->body_alloc = want;
    }
    memcpy(ctx->body + ctx->body_len, data, take);
    ctx->body_len += take;
    if (take < n) {
        /* Stop here instead of draining: returning short makes libcurl abort the transfer
         * with CURLE_WRITE_ERROR, which phx_http_fetch reads as success when truncated. */
        ctx->truncated = 1;
        return 0;
    }
    return n;
}

/* RFC 9110 token characters, ASCII only whatever the locale says. */
static int fetch_is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static char *fetch_trim(char *s, char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    *end = '\0';
    return s;
}

/* Record one "Name: value" line; repeated names are joined with ", " (RFC 9110 5.3). */
static int fetch_add_header(fetch_ctx *ctx, char *line, size_t len)
{
    char *colon = memchr(line, ':', len);
    if (!colon)
        return 0;
    char *name = fetch_trim(line, colon);
    char *value = fetch_trim(colon + 1, line + len);
    if (!*name)
        return 0;
    for (char *c = name; *c; c++) {
        if (!fetch_is_tchar((unsigned char)*c))
            return 0; /* not a header line we can name */
        *c = (char)tolower((unsigned char)*c);
    }
    phx_utf8_scrub(value); /* JSON strings must be UTF-8; header bytes need not be */

    const char *old = json_string_value(json_object_get(ctx->headers, name));
    json_t *v;
    if (old) {
        size_t olen = strlen(old), vlen = strlen(value);
        char *joined = malloc(olen + 2 + vlen + 1);
        if (!joined)
            return -1;
        /* NUL-terminated by the last memcpy, which copies value's terminator */
        memcpy(joined, old, olen);      // NOLINT(bugprone-not-null-terminated-result)
        memcpy(joined + olen, ", ", 2); // NOLINT(bugprone-not-null-terminated-result)
        memcpy(joined + olen + 2, value, vlen + 1);
        v = json_string(joined);
        free(joined);
    } else {
        if (ctx->nheaders >= FETCH_MAX_RESP_HEADERS)
            return 0;
        v = json_string(value);
        ctx->nheaders++;
    }
    return json_object_set_new(ctx->headers, name, v);
}

static size_t fetch_on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    fetch_ctx *ctx = userp;
    size_t n = size * nmemb;

    /* Every response (1xx, each redirect, the final one) starts with a status line; only the
     * last response's headers are reported. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        json_object_clear(ctx->headers);
        ctx->nheaders = 0;
        ctx->header_bytes = 0;
        return n;
    }
    if (n == 0 || data[0] == ' ' || data[0] == '\t' ||
        ctx->header_bytes + n > FETCH_MAX_RESP_HDR_BYTES)
        return n; /* blank line, obsolete folding, or over budget: skip */
    ctx->header_bytes += n;

    char *line = malloc(n + 1);
    if (!line) {
        ctx->oom = 1;
        return 0;
    }
    memcpy(line, data, n);
    line[n] = '\0';
    /* A NUL inside a header would make the name/value silently shorter; drop such lines. */
    int rc = strlen(line) == n ? fetch_add_header(ctx, line, n) : 0;
    free(line);
    if (rc < 0) {
        ctx->oom = 1;
        return 0;
    }
    return n;
}

/* --- request validation ------------------------------------------------------------------- */

static int fetch_bad(phx_err *err, const char *what)
{
    return phx_err_set(err, "invalid_input", 0, "%s", what);
}

/* Check the URL with libcurl's own parser (so we judge what it will use) and return its
 * normalized form in *norm (curl_free it) and its host, without IPv6 brackets, in lit (which may
 * be cut short for long names: it is only used to spot numeric addresses). */
static int fetch_check_url(const json_t *jurl, char **norm, char lit[INET6_ADDRSTRLEN + 2],
                           phx_err *err)
{
    const char *url = json_string_value(jurl);
    if (!url)
        return fetch_bad(err, "\"url\" must be a string");
    if (strlen(url) != json_string_length(jurl) || strlen(url) > PHX_FETCH_MAX_URL)
        return phx_err_set(err, "invalid_input", 0, "\"url\" must be at most %d bytes, without NUL",
                           PHX_FETCH_MAX_URL);

    int rc = -1;
    char *scheme = NULL, *host = NULL;
    CURLU *u = curl_url();
    if (!u)
        return phx_err_set(err, "internal", 1, "out of memory");
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        phx_err_set(err, "invalid_input", 0, "malformed url: %s", curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        phx_err_set(err, "invalid_input", 0, "unsupported url scheme \"%.20s\" (only http, https)",
                    scheme ? scheme : "");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
        fetch_bad(err, "url has no host");
        goto out;
    }

    size_t hl = strlen(host);
    if (host[0] == '[' && hl >= 2 && hl - 2 < INET6_ADDRSTRLEN + 2) {
        memcpy(lit, host + 1, hl - 2);
        lit[hl - 2] = '\0';
    } else {
        snprintf(lit, INET6_ADDRSTRLEN + 2, "%s", host);
    }
    if (curl_url_get(u, CURLUPART_URL, norm, 0) != CURLUE_OK) {
        fetch_bad(err, "malformed url");
        goto out;
    }
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* Build the request header list from {"name": "value"}; names must be RFC 9110 tokens and
 * values free of CR, LF and NUL, so nothing can inject an extra header or request line. */
static int fetch_build_headers(const json_t *jh, struct curl_slist **out, phx_err *err)
{
    *out = NULL;
    if (!jh || json_is_null(jh))
        goto done;
    if (!json_is_object(jh))
        return fetch_bad(err, "\"headers\" must be an object of strings");
    if (json_object_size(jh) > PHX_FETCH_MAX_HEADERS)
        return phx_err_set(err, "invalid_input", 0, "more than %d request headers",
                           PHX_FETCH_MAX_HEADERS);

    const char *name;
    json_t *jv;
    int has_expect = 0;
    json_object_foreach((json_t *)jh, name, jv)
    {
        size_t nl = strlen(name);
        if (nl == 0 || nl > FETCH_MAX_HDR_NAME) {
            phx_err_set(err, "invalid_input", 0, "header name must be 1..%d bytes",
                        FETCH_MAX_HDR_NAME);
            goto err;
        }
        for (size_t i = 0; i < nl; i++) {
            if (!fetch_is_tchar((unsigned char)name[i])) {
                /* Show the byte, not the name: it may hold the very CR/LF being refused. */
                phx_err_set(err, "invalid_input", 0,
                            "invalid character 0x%02x in header name at offset %zu",
                            (unsigned char)name[i], i);
                goto err;
            }
        }
        /* Message framing is libcurl's: a caller-chosen length could desynchronise the
         * connection (request smuggling towards the target). */
        if (strcasecmp(name, "content-length") == 0 || strcasecmp(name, "transfer-encoding") == 0) {
            phx_err_set(err, "invalid_input", 0, "header \"%s\" is set automatically", name);
            goto err;
        }
        has_expect |= strcasecmp(name, "expect") == 0;
        const char *v = json_string_value(jv);
        if (!v) {
            phx_err_set(err, "invalid_input", 0, "header \"%.64s\" must be a string", name);
            goto err;
        }
        size_t vl = json_string_length(jv);
        if (vl > FETCH_MAX_HDR_VALUE || strlen(v) != vl || strpbrk(v, "\r\n")) {
            phx_err_set(err, "invalid_input", 0,
                        "header \"%.64s\": value must be at most %d bytes without CR, LF or NUL",
                        name, FETCH_MAX_HDR_VALUE);
            goto err;
        }
        /* "Name;" is libcurl's spelling for a header with an empty value ("Name:" would
         * remove it instead). */
        size_t ll = nl + vl + 3;
        char *line = malloc(ll);
        if (!line)
            goto oom;
        snprintf(line, ll, vl ? "%s: %s" : "%s;", name, v);
        struct curl_slist *l = curl_slist_append(*out, line);
        free(line);
        if (!l)
            goto oom;
        *out = l;
    }
    if (has_expect)
        return 0;
done:
    /* No "Expect: 100-continue" on POSTs: servers that ignore it cost a one-second stall. */
    {
        struct curl_slist *l = curl_slist_append(*out, "Expect:");
        if (!l)
            goto oom;
        *out = l;
    }
    return 0;
oom:
    phx_err_set(err, "internal", 1, "out of memory");
err:
    curl_slist_free_all(*out);
    *out = NULL;
    return -1;
}

/* The effective timeout: the input's, else the default, never above the cap. */
static int fetch_timeout(const json_t *jt, const phx_fetch_cfg *cfg, long *out, phx_err *err)
{
    json_int_t t = cfg->timeout_ms;
    if (jt && !json_is_null(jt)) {
        if (!json_is_integer(jt) || json_integer_value(jt) <= 0)
            return fetch_bad(err, "\"timeout_ms\" must be a positive integer");
        t = json_integer_value(jt);
    }
    *out = t > cfg->max_timeout_ms ? cfg->max_timeout_ms : (long)t;
    return 0;
}

/* --- the result --------------------------------------------------------------------------- */

/* Length of body without a UTF-8 sequence cut short at its end (truncation cuts anywhere). */
static size_t fetch_utf8_trim_tail(const char *s, size_t len)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = (unsigned char)s[len - back];
        if ((c & 0xc0) == 0x80)
            continue; /* continuation byte: keep looking for the lead byte */
        size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        return need > back ? len - back : len;
    }
    return len;
}

/* The body as JSON text if it is valid UTF-8 without NUL, else base64 (*b64 set). */
static json_t *fetch_body_json(const fetch_ctx *ctx, int *b64)
{
    const char *body = ctx->body ? ctx->body : "";
    size_t len = ctx->body_len;
    size_t tlen = ctx->truncated ? fetch_utf8_trim_tail(body, len) : len;
    *b64 = 0;
    if (!memchr(body, '\0', tlen)) {
        json_t *s = json_stringn(body, tlen); /* NULL when not valid UTF-8 */
        if (s)
            return s;
    }
    *b64 = 1;
    char *enc = malloc(4 * ((len + 2) / 3) + 1);
    if (!enc)
        return NULL;
    int elen = EVP_EncodeBlock((unsigned char *)enc, (const unsigned char *)body, (int)len);
    json_t *s = json_stringn(enc, (size_t)elen);
    free(enc);
    return s;
}

/* "fail_on_status": an error status fails the step instead of being returned, so the step's
 * retry policy covers a server's transient failures: 408, 429 and 5xx retryable, any other
 * 4xx not (asking again gets the same answer). */
static int fetch_status_fails(CURL *h, phx_err *err)
{
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status < 400)
        return 0;
    int retryable = status >= 500 || status == 408 || status == 429;
    return phx_err_set(err, "http_status", retryable, "the server answered HTTP %ld%s", status,
                       retryable ? " (retryable)" : "");
}

static json_t *fetch_result(CURL *h, fetch_ctx *ctx, phx_err *err)
{
    long status = 0;
    char *eff = NULL;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);

    int b64;
    json_t *res = json_object();
    json_t *body = fetch_body_json(ctx, &b64);
    char *url = strdup(eff ? eff : "");
    if (!res || !body || !url)
        goto oom;
    phx_utf8_scrub(url);
    /* json_object_set_new consumes its value even when it fails, so body is not ours after. */
    int bad = json_object_set_new(res, "body", body) < 0;
    body = NULL;
    if (bad || json_object_set_new(res, "status", json_integer(status)) < 0 ||
        json_object_set(res, "headers", ctx->headers) < 0 ||
        json_object_set_new(res, "truncated", json_boolean(ctx->truncated)) < 0 ||
        json_object_set_new(res, "url", json_string(url)) < 0 ||
        (b64 && json_object_set_new(res, "body_encoding", json_string("base64")) < 0))
        goto oom;
    free(url);
    return res;
oom:
    free(url);
    json_decref(body);
    json_decref(res);
    phx_err_set(err, "internal", 1, "out of memory building the result");
    return NULL;
}

/* Map a failed transfer to the error codes of http_fetch.h. */
static void fetch_map_error(CURLcode rc, const fetch_ctx *ctx, const char *detail, phx_err *err)
{
    const char *msg = detail && *detail ? detail : curl_easy_strerror(rc);
    if (ctx->oom || rc == CURLE_OUT_OF_MEMORY) {
        phx_err_set(err, "internal", 1, "out of memory");
        return;
    }
    if (ctx->refused && rc == CURLE_COULDNT_CONNECT) {
        phx_err_set(err, "forbidden_address", 0, "refusing to connect to %s: %s", ctx->refused_addr,
                    ctx->refused_reason);
        return;
    }
    if (ctx->intel_why[0]) {
        phx_err_set(err, "intel_blocked", 0, "refused: %s", ctx->intel_why);
        return;
    }
    if (ctx->refused_host[0]) {
        phx_err_set(err, "forbidden_host", 0, "host %s is not allowed for this fetch (redirect)",
                    ctx->refused_host);
        return;
    }
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        phx_err_set(err, "timeout", 1, "timed out: %s", msg);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        phx_err_set(err, "dns_failed", 1, "could not resolve host: %s", msg);
        break;
    case CURLE_COULDNT_CONNECT:
        phx_err_set(err, "connect_failed", 1, "could not connect: %s", msg);
        break;
    case CURLE_TOO_MANY_REDIRECTS:
        phx_err_set(err, "too_many_redirects", 0, "%s", msg);
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
        /* The first URL's scheme was checked, so this is a redirect to file://, ftp://... */
        phx_err_set(err, "forbidden_address", 0, "redirect to a non-http(s) url refused: %s", msg);
        break;
    case CURLE_URL_MALFORMAT:
        phx_err_set(err, "invalid_input", 0, "malformed url: %s", msg);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        phx_err_set(err, "tls_failed", 0, "TLS failure: %s", msg);
        break;
    default:
        phx_err_set(err, "fetch_failed", 1, "transfer failed: %s", msg);
        break;
    }
    /* Keep libcurl's own words as the cause: the code above is ours, this is what lay under. */
    phx_err_cause(err, "libcurl error %d: %s", (int)rc, curl_easy_strerror(rc));
}

/* --- the step ----------------------------------------------------------------------------- */

json_t *phx_http_fetch(const json_t *input, const phx_fetch_cfg *cfg, phx_err *err)
{
    return phx_http_fetch_hosts(input, cfg, NULL, err);
}

json_t *phx_http_fetch_hosts(const json_t *input, const phx_fetch_cfg *cfg,
                             const phx_fetch_hosts *hosts, phx_err *err)
{
    fetch_ctx *ctx = NULL;
    CURL *h = NULL;
    struct curl_slist *hdrs = NULL;
    char *url = NULL;
    json_t *res = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";

    if (phx_fetch_cfg_check(cfg, err) < 0)
        return NULL;
    if (!json_is_object(input)) {
        fetch_bad(err, "input must be an object with a string \"url\"");
        return NULL;
    }
    ctx = calloc(1, sizeof(*ctx));
    if (!ctx || !(ctx->headers = json_object())) {
        phx_err_set(err, "internal", 1, "out of memory");
        goto out;
    }
    ctx->max_body = cfg->max_body_bytes;
    if (fetch_cidrs_parse(cfg->allow_cidrs, ctx->allow, &ctx->nallow, err) < 0)
        goto out;

    const json_t *jurl = json_object_get(input, "url");
    if (!jurl) {
        fetch_bad(err, "missing \"url\"");
        goto out;
    }
    char host[INET6_ADDRSTRLEN + 2];
    if (fetch_check_url(jurl, &url, host, err) < 0)
        goto out;

    const json_t *jm = json_object_get(input, "method");
    const char *method = "GET";
    if (jm && !json_is_null(jm)) {
        method = json_string_value(jm);
        if (!method || (strcasecmp(method, "GET") != 0 && strcasecmp(method, "POST") != 0)) {
            fetch_bad(err, "\"method\" must be \"GET\" or \"POST\"");
            goto out;
        }
    }
    int post = strcasecmp(method, "POST") == 0;

    const json_t *jb = json_object_get(input, "body");
    if (jb && !json_is_null(jb)) {
        if (!json_is_string(jb)) {
            fetch_bad(err, "\"body\" must be a string");
            goto out;
        }
        if (!post) {
            fetch_bad(err, "\"body\" needs \"method\": \"POST\"");
            goto out;
        }
        if (json_string_length(jb) > PHX_FETCH_MAX_REQ_BODY) {
            phx_err_set(err, "invalid_input", 0, "\"body\" is larger than %d bytes",
                        PHX_FETCH_MAX_REQ_BODY);
            goto out;
        }
    }

    const json_t *jfail = json_object_get(input, "fail_on_status");
    if (jfail && !json_is_boolean(jfail)) {
        fetch_bad(err, "\"fail_on_status\" must be a boolean");
        goto out;
    }
    long timeout;
    if (fetch_timeout(json_object_get(input, "timeout_ms"), cfg, &timeout, err) < 0)
        goto out;
    if (fetch_build_headers(json_object_get(input, "headers"), &hdrs, err) < 0)
        goto out;

    /* The input is valid; now the policy. Literal IPs are refused here with a clear message
     * and without starting a transfer. The socket callback would refuse them too; host names
     * are only judged there, once resolved. */
    fetch_net lit;
    const char *reason = NULL;
    if (fetch_addr_parse(host, &lit) == 0 &&
        !fetch_decide(&lit, ctx->allow, ctx->nallow, &reason)) {
        phx_err_set(err, "forbidden_address", 0, "refusing to connect to %s: %s", host, reason);
        goto out;
    }

    ctx->intel = cfg->intel;
    if (ctx->intel) {
        /* Before any DNS query or connection: a listed host must not even be resolved. */
        phx_intel_refresh(ctx->intel, 0, NULL);
        CURLU *u = curl_url();
        char *uh = NULL;
        if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK)
            curl_url_get(u, CURLUPART_HOST, &uh, 0);
        int refused = fetch_intel_refuses(ctx, url, uh, NULL);
        curl_free(uh);
        curl_url_cleanup(u);
        if (refused) {
            phx_err_set(err, "intel_blocked", 0, "refused: %s", ctx->intel_why);
            goto out;
        }
    }

    h = curl_easy_init();
    if (!h) {
        phx_err_set(err, "internal", 1, "curl_easy_init failed");
        goto out;
    }
    /* Any option that fails to apply aborts the call: several of these are the security
     * policy, and running without one of them is worse than not running. */
    int bad = 0;
    bad |= curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PROXY, "") != CURLE_OK; /* ignore *_proxy env vars */
    bad |= curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, fetch_opensocket) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, ctx) != CURLE_OK;
    ctx->h = h;
    ctx->hosts = hosts && hosts->allowed ? hosts : NULL;
    if (ctx->hosts || ctx->intel) {
        bad |= curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, fetch_prereq) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_PREREQDATA, ctx) != CURLE_OK;
    }
    bad |= curl_easy_setopt(h, CURLOPT_NETRC, (long)CURL_NETRC_IGNORED) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK; /* threads: no SIGALRM */
    bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout) != CURLE_OK;
    bad |=
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, cfg->max_redirects > 0 ? 1L : 0L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)cfg->max_redirects) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_USERAGENT, FETCH_USER_AGENT) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fetch_on_body) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, ctx) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, fetch_on_header) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HEADERDATA, ctx) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK;
    if (post) {
        const char *b = jb && json_is_string(jb) ? json_string_value(jb) : "";
        curl_off_t bl = jb && json_is_string(jb) ? (curl_off_t)json_string_length(jb) : 0;
        bad |= curl_easy_setopt(h, CURLOPT_POST, 1L) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, bl) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, b) != CURLE_OK;
    }
    if (bad) {
        phx_err_set(err, "internal", 1, "libcurl rejected an option (needs libcurl >= 7.85)");
        goto out;
    }

    phx_span sp;
    if (phx_span_call(&sp, "http", PHX_SPAN_CLIENT)) {
        snprintf(sp.name, sizeof(sp.name), "http %s", post ? "POST" : "GET");
        phx_span_set(&sp, "server.address", "%s", host);
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && ctx->truncated && !ctx->oom)) {
        fetch_map_error(rc, ctx, errbuf, err);
        phx_span_fail(&sp, "%s", curl_easy_strerror(rc));
        phx_span_end(&sp);
        goto out;
    }
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    phx_span_set(&sp, "http.response.status_code", "%ld", code);
    phx_span_end(&sp);
    if (ctx->intel && ctx->body_len > 0) {
        /* A known-bad file: its bytes do not go on into the job. */
        char hex[65];
        phx_intel_hit hit;
        phx_sha256_hex(ctx->body, ctx->body_len, hex);
        if (phx_intel_match_sha256(ctx->intel, hex, &hit)) {
            phx_err_set(err, "intel_blocked", 0,
                        "refused: the response body (sha256 %s) is on threat list %.100s", hex,
                        hit.source);
            goto out;
        }
    }
    if (json_is_true(jfail) && fetch_status_fails(h, err) < 0)
        goto out;
    res = fetch_result(h, ctx, err);

out:
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    curl_free(url);
    if (ctx) {
        json_decref(ctx->headers);
        free(ctx->body);
        free(ctx);
    }
    return res;
}
