/* url.c -- URL checks (see url.h). */
#include "url.h"
#include "../tools/http_fetch.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

typedef struct phx_url_parts {
    char scheme[16];
    char host[256];
    int userinfo;     /* user[:pass]@ present */
    int userinfo_dot; /* ... and it looks like a domain (deception) */
    int ipv6;         /* [..] literal */
} phx_url_parts;

static phx_safety_finding *phx_url_add(phx_safety_findings *out, const char *cat, double sev,
                                       size_t s, size_t e, const char *ev)
{
    phx_safety_finding *f = phx_safety_add(out, "url", cat, sev, s, e);
    if (f)
        phx_safety_evidence(f->evidence, sizeof(f->evidence), ev, strlen(ev));
    return f;
}

/* Split scheme://[userinfo@]host[:port][/...]. Returns 0, or -1 when there is no host. */
static int phx_url_parse(const char *u, size_t n, phx_url_parts *p)
{
    memset(p, 0, sizeof(*p));
    const char *colon = memchr(u, ':', n);
    if (!colon || colon == u || (size_t)(colon - u) >= sizeof(p->scheme))
        return -1;
    for (const char *c = u; c < colon; c++)
        p->scheme[c - u] = (char)tolower((unsigned char)*c);
    const char *a = colon + 1, *end = u + n;
    if (end - a < 2 || a[0] != '/' || a[1] != '/')
        return 0; /* mailto:, javascript:, data: have no authority */
    a += 2;
    const char *auth_end = a;
    while (auth_end < end && *auth_end != '/' && *auth_end != '?' && *auth_end != '#' &&
           *auth_end != '\\')
        auth_end++;
    const char *at = NULL;
    for (const char *c = a; c < auth_end; c++)
        if (*c == '@')
            at = c;
    if (at) {
        p->userinfo = 1;
        for (const char *c = a; c < at; c++)
            if (*c == '.')
                p->userinfo_dot = 1;
        a = at + 1;
    }
    const char *h = a, *he;
    if (h < auth_end && *h == '[') {
        p->ipv6 = 1;
        h++;
        he = memchr(h, ']', (size_t)(auth_end - h));
        if (!he)
            return -1;
    } else {
        he = h;
        while (he < auth_end && *he != ':')
            he++;
    }
    size_t hl = (size_t)(he - h);
    if (hl == 0)
        return 0; /* file:///path: no host; the caller decides by scheme */
    if (hl >= sizeof(p->host))
        return -1;
    for (size_t i = 0; i < hl; i++)
        p->host[i] = (char)tolower((unsigned char)h[i]);
    while (hl > 0 && p->host[hl - 1] == '.') /* "localhost." is localhost */
        p->host[--hl] = '\0';
    return 0;
}

static int phx_url_suffix(const char *host, const char *suf)
{
    size_t h = strlen(host), s = strlen(suf);
    return h >= s && strcmp(host + h - s, suf) == 0 && (h == s || host[h - s - 1] == '.');
}

/* Check one address with the fetch policy; adds a finding when refused. */
static int phx_url_check_ip(const char *ip, const phx_safety_url_opts *o, double sev, size_t s,
                            size_t e, const char *how, phx_safety_findings *out)
{
    const char *why = NULL;
    int ok = phx_fetch_ip_allowed(ip, o->allow_cidrs, &why);
    if (ok == 1)
        return 0;
    char ev[100];
    snprintf(ev, sizeof(ev), "%s %s (%s)", how, ip, why ? why : "not a valid address");
    phx_url_add(out, "private_address", sev, s, e, ev);
    return 1;
}

static void phx_url_judge(const char *u, size_t n, size_t s, const phx_safety_url_opts *o,
                          int strict, phx_safety_findings *out)
{
    phx_url_parts p;
    double k = strict ? 1.0 : 0.55; /* a link in text is not yet a request */
    if (phx_url_parse(u, n, &p) < 0) {
        if (strict)
            phx_url_add(out, "malformed_url", 0.9, s, s + n, "no host");
        return;
    }
    size_t e = s + n;
    if (strcmp(p.scheme, "http") != 0 && strcmp(p.scheme, "https") != 0) {
        char ev[64];
        snprintf(ev, sizeof(ev), "scheme %s", p.scheme);
        if (strict || !strcmp(p.scheme, "javascript") || !strcmp(p.scheme, "file") ||
            !strcmp(p.scheme, "data"))
            phx_url_add(out, "scheme_not_allowed", strict ? 0.95 : 0.5, s, e, ev);
        if (!p.host[0])
            return;
    }
    if (!p.host[0]) {
        if (strict && (!strcmp(p.scheme, "http") || !strcmp(p.scheme, "https")))
            phx_url_add(out, "malformed_url", 0.9, s, e, "no host");
        return;
    }
    if (p.userinfo)
        phx_url_add(out, "userinfo_in_url", (p.userinfo_dot ? 0.8 : 0.5) * k, s, e,
                    p.userinfo_dot ? "text before @ looks like a domain" : "credentials in URL");
    if (!strcmp(p.host, "localhost") || phx_url_suffix(p.host, "localhost") ||
        phx_url_suffix(p.host, "internal") || phx_url_suffix(p.host, "local") ||
        !strcmp(p.host, "metadata") || !strcmp(p.host, "instance-data") ||
        phx_url_suffix(p.host, "metadata.google.internal")) {
        phx_url_add(out, "internal_host", 0.95 * k, s, e, p.host);
        return;
    }
    /* IP literals in every notation inet_aton accepts (127.1, 0x7f.1, 2130706433, 0177...) */
    struct in_addr a4;
    struct in6_addr a6;
    char ip[INET6_ADDRSTRLEN];
    if (p.ipv6 && inet_pton(AF_INET6, p.host, &a6) == 1) {
        inet_ntop(AF_INET6, &a6, ip, sizeof(ip));
        phx_url_check_ip(ip, o, 1.0 * k, s, e, "address", out);
        return;
    }
    int dotted = 1, dots = 0;
    for (const char *c = p.host; *c; c++) {
        dotted &= isdigit((unsigned char)*c) || *c == '.';
        dots += *c == '.';
    }
    if (inet_aton(p.host, &a4) == 1) {
        inet_ntop(AF_INET, &a4, ip, sizeof(ip));
        if (!dotted || dots != 3 || strcmp(ip, p.host) != 0)
            phx_url_add(out, "obfuscated_ip", 0.6 * k, s, e, p.host);
        phx_url_check_ip(ip, o, 1.0 * k, s, e, "address", out);
        return;
    }
    int idn = 0;
    for (const char *c = p.host; *c; c++)
        idn |= (unsigned char)*c >= 0x80;
    if (strstr(p.host, "xn--") || idn)
        phx_url_add(out, "lookalike_domain", 0.5 * k, s, e,
                    idn ? "non-ASCII host name" : "punycode host name");
    if (strict && o->resolve) {
        struct addrinfo hints = {0}, *res = NULL;
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(p.host, NULL, &hints, &res) == 0) {
            for (struct addrinfo *r = res; r; r = r->ai_next) {
                void *src = r->ai_family == AF_INET
                                ? (void *)&((struct sockaddr_in *)r->ai_addr)->sin_addr
                                : (void *)&((struct sockaddr_in6 *)r->ai_addr)->sin6_addr;
                if (r->ai_family != AF_INET && r->ai_family != AF_INET6)
                    continue;
                inet_ntop(r->ai_family, src, ip, sizeof(ip));
                if (phx_url_check_ip(ip, o, 1.0, s, e, "resolves to", out))
                    break;
            }
            freeaddrinfo(res);
        }
    }
}

static int phx_url_char(unsigned char c)
{
    return c > ' ' && c != '"' && c != '<' && c != '>' && c != '`' && c != ')' && c != ']' &&
           c != '\'' && c != 0x7F;
}

int phx_safety_url_scan(const char *t, size_t len, const phx_safety_url_opts *o,
                        phx_safety_findings *out)
{
    int before = out->n;
    if (o->strict) {
        size_t s = 0, e = len;
        while (s < e && isspace((unsigned char)t[s]))
            s++;
        while (e > s && isspace((unsigned char)t[e - 1]))
            e--;
        phx_url_judge(t + s, e - s, s, o, 1, out);
        return out->n - before;
    }
    static const char *const schemes[] = {"http://",   "https://",    "ftp://",   "file://",
                                          "gopher://", "javascript:", "data:text"};
    /* Every scheme has a ':' 4..10 bytes in: walk the colons, not every byte. */
    size_t from = 0;
    for (const char *colon; from < len && (colon = memchr(t + from, ':', len - from)) != NULL;) {
        size_t ci = (size_t)(colon - t);
        from = ci + 1;
        size_t i = ci;
        while (i > 0 && ci - i < 10 && isalpha((unsigned char)t[i - 1]))
            i--;
        for (size_t k = 0; k < sizeof(schemes) / sizeof(schemes[0]); k++) {
            size_t sl = strlen(schemes[k]);
            if (i + sl > len || strncasecmp(t + i, schemes[k], sl) != 0 ||
                (i > 0 && isalpha((unsigned char)t[i - 1])))
                continue;
            size_t e = i;
            while (e < len && phx_url_char((unsigned char)t[e]))
                e++;
            while (e > i && strchr(".,;:!?", t[e - 1]))
                e--;
            phx_url_judge(t + i, e - i, i, o, 0, out);
            /* ![alt](https://host/p?data=...) : an image that phones home when rendered */
            if (i >= 2 && t[i - 1] == '(' && t[i - 2] == ']' && memchr(t + i, '?', e - i)) {
                size_t b = i - 2;
                while (b > 0 && t[b] != '[')
                    b--;
                if (b > 0 && t[b - 1] == '!')
                    phx_url_add(out, "markdown_image_exfiltration", 0.6, b - 1, e,
                                "image URL with a query string");
            }
            if (e > from)
                from = e;
            break;
        }
    }
    return out->n - before;
}
