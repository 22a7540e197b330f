/* intel.c -- threat intelligence feeds (see intel.h).
 *
 * Domains and hashes are sorted arrays (binary search: feeds of 100k+ domains are common);
 * networks, URL globs and prompt signatures are scanned linearly -- those lists are short in
 * practice, and a scan of a few thousand entries is far below the cost of the fetch or scan it
 * guards. */
#include "intel.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

typedef struct intel_entry {
    char *value;
    int64_t expires_ms; /* 0 = never */
    int src;
    int family, prefix; /* ip entries */
    unsigned char b[16];
} intel_entry;

typedef struct intel_list {
    intel_entry *v;
    size_t n, cap;
} intel_list;

struct phx_intel_set {
    intel_list l[PHX_INTEL_NTYPES];
    char **sources;
    int nsources;
};

static const char *const intel_names[PHX_INTEL_NTYPES] = {"domain", "ip", "url", "sha256",
                                                          "prompt"};

const char *phx_intel_type_name(phx_intel_type t)
{
    return t >= 0 && t < PHX_INTEL_NTYPES ? intel_names[t] : "unknown";
}

/* --- parsing ------------------------------------------------------------------------------ */

/* Lowercase, runs of blanks as one space, trimmed: the form prompt signatures compare in. The
 * output needs len + 1 bytes; returns its length. */
static size_t intel_norm(const char *s, size_t len, char *out)
{
    size_t o = 0;
    int space = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isspace(c)) {
            space = o > 0;
            continue;
        }
        if (space)
            out[o++] = ' ';
        space = 0;
        out[o++] = (char)tolower(c);
    }
    out[o] = '\0';
    return o;
}

/* "a.b.c" lowercased without a trailing dot; 0 when it is not a plausible host name. */
static int intel_domain(const char *s, char *out, size_t n)
{
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == '.')
        len--;
    if (len > 0 && s[0] == '.')
        s++, len--; /* ".example.com" (suffix notation) means the same here */
    if (len == 0 || len >= n || len > 253)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '-' || c == '.' || c == '_'))
            return 0;
        out[i] = (char)tolower(c);
    }
    out[len] = '\0';
    return 1;
}

/* Parse "addr" or "addr/prefix" into e; IPv4-mapped IPv6 becomes IPv4. 0, or -1. */
static int intel_net(const char *s, int cidr, intel_entry *e)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof(buf) || (slash && !cidr))
        return -1;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    memset(e->b, 0, sizeof(e->b));
    if (inet_pton(AF_INET, buf, e->b) == 1) {
        e->family = AF_INET, e->prefix = 32;
    } else if (inet_pton(AF_INET6, buf, e->b) == 1) {
        e->family = AF_INET6, e->prefix = 128;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(e->b, mapped, 12) == 0) {
            memmove(e->b, e->b + 12, 4);
            memset(e->b + 4, 0, 12);
            e->family = AF_INET, e->prefix = 32;
            if (slash) {
                char *end;
                long p = strtol(slash + 1, &end, 10);
                if (*end || p < 96 || p > 128)
                    return -1;
                e->prefix = (int)p - 96;
                return 0;
            }
        }
    } else {
        return -1;
    }
    if (slash) {
        char *end;
        long p = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || p < 0 || p > e->prefix)
            return -1;
        e->prefix = (int)p;
    }
    return 0;
}

/* "never" -> 0; ms since the epoch; or RFC 3339 UTC "YYYY-MM-DDTHH:MM:SSZ" (or a date alone).
 * 0 with *ms, -1 when it does not parse. */
static int intel_expiry(const char *s, int64_t *ms)
{
    if (strcmp(s, "never") == 0) {
        *ms = 0;
        return 0;
    }
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end && v > 0) {
        *ms = v;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *r = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!r || *r) {
        memset(&tm, 0, sizeof(tm));
        r = strptime(s, "%Y-%m-%d", &tm);
        if (!r || *r)
            return -1;
    }
    *ms = (int64_t)timegm(&tm) * 1000;
    return 0;
}

static int intel_add(intel_list *l, intel_entry *e)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = phx_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = *e;
    return 0;
}

static int intel_source(phx_intel_set *s, const char *name)
{
    for (int i = 0; i < s->nsources; i++)
        if (strcmp(s->sources[i], name) == 0)
            return i;
    s->sources = phx_xrealloc(s->sources, (size_t)(s->nsources + 1) * sizeof(*s->sources));
    s->sources[s->nsources] = phx_xstrdup(name);
    return s->nsources++;
}

static void intel_problem(phx_intel_problem_fn fn, void *arg, const char *file, int line,
                          const char *why)
{
    if (fn)
        fn(arg, file, line, why);
}

/* One entry line "TYPE VALUE" into s; NULL, or why it was refused. */
static const char *intel_line(phx_intel_set *s, const char *type, const char *val, int64_t exp,
                              int src)
{
    intel_entry e = {.expires_ms = exp, .src = src};
    char buf[1024];
    phx_intel_type t;
    if (strcmp(type, "domain") == 0) {
        if (!intel_domain(val, buf, sizeof(buf)))
            return "not a domain name";
        t = PHX_INTEL_DOMAIN;
    } else if (strcmp(type, "ip") == 0 || strcmp(type, "cidr") == 0) {
        if (intel_net(val, type[0] == 'c', &e) < 0)
            return type[0] == 'c' ? "not an address or network" : "not an address";
        snprintf(buf, sizeof(buf), "%s", val);
        t = PHX_INTEL_IP;
    } else if (strcmp(type, "url") == 0) {
        if (!strstr(val, "://") || strlen(val) >= sizeof(buf))
            return "not a URL (scheme://...)";
        snprintf(buf, sizeof(buf), "%s", val);
        t = PHX_INTEL_URL;
    } else if (strcmp(type, "sha256") == 0) {
        size_t n = strlen(val);
        if (n != 64)
            return "not 64 hex digits";
        for (size_t i = 0; i < n; i++) {
            if (!isxdigit((unsigned char)val[i]))
                return "not 64 hex digits";
            buf[i] = (char)tolower((unsigned char)val[i]);
        }
        buf[n] = '\0';
        t = PHX_INTEL_SHA256;
    } else if (strcmp(type, "prompt") == 0) {
        size_t n = strlen(val);
        if (n >= sizeof(buf) || intel_norm(val, n, buf) < 8)
            return "a prompt signature needs 8 to 1023 characters";
        t = PHX_INTEL_PROMPT;
    } else {
        return "unknown type (domain, ip, cidr, url, sha256, prompt)";
    }
    e.value = phx_xstrdup(buf);
    intel_add(&s->l[t], &e);
    return NULL;
}

int phx_intel_parse(phx_intel_set **set, const char *text, size_t len, const char *file,
                    phx_intel_problem_fn problems, void *arg)
{
    if (!*set)
        *set = phx_xcalloc(1, sizeof(**set));
    phx_intel_set *s = *set;
    int src = intel_source(s, file ? file : "-");
    int64_t exp = 0;
    int added = 0, lineno = 0;
    const char *p = text, *end = text + len;
    char line[2048];
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        const char *next = nl ? nl + 1 : end;
        if (n >= sizeof(line)) {
            intel_problem(problems, arg, file, lineno, "line longer than 2047 bytes");
            p = next;
            continue;
        }
        memcpy(line, p, n);
        line[n] = '\0';
        p = next;
        /* trim */
        char *a = line, *z = line + n;
        while (*a && isspace((unsigned char)*a))
            a++;
        while (z > a && isspace((unsigned char)z[-1]))
            *--z = '\0';
        if (!*a || *a == '#')
            continue;
        char *sp = a + strcspn(a, " \t");
        char *val = sp;
        if (*sp) {
            *sp = '\0';
            val = sp + 1;
            while (*val && isspace((unsigned char)*val))
                val++;
        }
        if (!*val) {
            intel_problem(problems, arg, file, lineno, "expected TYPE VALUE");
            continue;
        }
        if (strcmp(a, "@source") == 0) {
            src = intel_source(s, val);
            continue;
        }
        if (strcmp(a, "@expires") == 0) {
            if (intel_expiry(val, &exp) < 0) {
                intel_problem(problems, arg, file, lineno,
                              "@expires: use YYYY-MM-DDTHH:MM:SSZ, YYYY-MM-DD, ms or never");
                exp = 0;
            }
            continue;
        }
        const char *why = intel_line(s, a, val, exp, src);
        if (why)
            intel_problem(problems, arg, file, lineno, why);
        else
            added++;
    }
    return added;
}

static int intel_cmp(const void *a, const void *b)
{
    return strcmp(((const intel_entry *)a)->value, ((const intel_entry *)b)->value);
}

void phx_intel_finish(phx_intel_set *s)
{
    if (!s)
        return;
    /* qsort on an empty list would get a NULL base, which C does not allow even for 0. */
    if (s->l[PHX_INTEL_DOMAIN].n)
        qsort(s->l[PHX_INTEL_DOMAIN].v, s->l[PHX_INTEL_DOMAIN].n, sizeof(intel_entry), intel_cmp);
    if (s->l[PHX_INTEL_SHA256].n)
        qsort(s->l[PHX_INTEL_SHA256].v, s->l[PHX_INTEL_SHA256].n, sizeof(intel_entry), intel_cmp);
}

void phx_intel_set_free(phx_intel_set *s)
{
    if (!s)
        return;
    for (int t = 0; t < PHX_INTEL_NTYPES; t++) {
        for (size_t i = 0; i < s->l[t].n; i++)
            free(s->l[t].v[i].value);
        free(s->l[t].v);
    }
    for (int i = 0; i < s->nsources; i++)
        free(s->sources[i]);
    free(s->sources);
    free(s);
}

size_t phx_intel_count(const phx_intel_set *s, phx_intel_type t)
{
    return s && t >= 0 && t < PHX_INTEL_NTYPES ? s->l[t].n : 0;
}

/* --- importing plain-text blocklists ------------------------------------------------------ */

/* Names a hosts file maps for the machine's own sake, not because they are bad. */
static const char *const import_boilerplate[] = {
    "localhost",     "localhost.localdomain", "local",        "broadcasthost",
    "ip6-localhost", "ip6-loopback",          "ip6-localnet", "ip6-mcastprefix",
    "ip6-allnodes",  "ip6-allrouters",        "ip6-allhosts", "0.0.0.0",
};

static int import_boiler(const char *v)
{
    for (size_t i = 0; i < sizeof(import_boilerplate) / sizeof(import_boilerplate[0]); i++)
        if (strcasecmp(v, import_boilerplate[i]) == 0)
            return 1;
    return 0;
}

/* Append "type value\n" to out at *at; -1 when it does not fit. */
static int import_emit(char *out, size_t n, size_t *at, const char *type, const char *v)
{
    int w = snprintf(out + *at, n - *at, "%s %s\n", type, v);
    if (w < 0 || (size_t)w >= n - *at)
        return -1;
    *at += (size_t)w;
    return 0;
}

/* One value of a domains list: "*.x" means x (which covers its subdomains). */
static int import_domain(const char *v, char *out, size_t n, size_t *at, const char **why)
{
    char d[300];
    if (strncmp(v, "*.", 2) == 0)
        v += 2;
    if (strstr(v, "://"))
        return *why = "a URL, not a domain (use --kind urls)", -1;
    intel_entry probe;
    if (intel_net(v, 1, &probe) == 0)
        return *why = "an address, not a domain (use --kind ips)", -1;
    if (!intel_domain(v, d, sizeof(d)))
        return *why = "not a domain name", -1;
    if (import_emit(out, n, at, "domain", d) < 0)
        return *why = "too many entries on one line", -1;
    return 0;
}

int phx_intel_import_line(phx_intel_type kind, const char *line, char *out, size_t n,
                          const char **why)
{
    char buf[2048];
    char *f[64];
    int nf = 0;
    size_t at = 0, len = strlen(line);
    *why = NULL;
    if (n)
        out[0] = '\0';
    if (len >= sizeof(buf))
        return *why = "line longer than 2047 bytes", -1;
    memcpy(buf, line, len + 1);
    /* Comments: whole lines (# or AdBlock's !), and a # (or ; in address lists) after blanks. */
    for (char *p = buf; *p; p++)
        if ((*p == '#' && (p == buf || isspace((unsigned char)p[-1]))) || (*p == '!' && p == buf) ||
            (*p == ';' && kind == PHX_INTEL_IP)) {
            *p = '\0';
            break;
        }
    for (char *save = NULL, *t = strtok_r(buf, " \t\r\n", &save); t && nf < 64;
         t = strtok_r(NULL, " \t\r\n", &save))
        f[nf++] = t;
    if (nf == 0)
        return 0;
    if (strncasecmp(f[0], "[adblock", 8) == 0)
        return *why = "AdBlock header", 0;
    if (strncmp(f[0], "@@", 2) == 0)
        return *why = "AdBlock exception rule", 0;
    if (strstr(f[0], "##") || strstr(f[0], "#@#") || strstr(f[0], "#?#"))
        return *why = "AdBlock element-hiding rule", 0;
    if (strncmp(f[0], "||", 2) == 0) {
        if (kind != PHX_INTEL_DOMAIN || nf > 1)
            return *why = "an AdBlock host rule (use --kind domains)", -1;
        char *v = f[0] + 2;
        v[strcspn(v, "^$")] = '\0';
        if (strpbrk(v, "/*|"))
            return *why = "an AdBlock rule with a path or wildcard is not a domain", -1;
        return import_domain(v, out, n, &at, why) < 0 ? -1 : 1;
    }
    intel_entry e;
    if (nf >= 2 && intel_net(f[0], 0, &e) == 0 && kind != PHX_INTEL_IP) {
        /* hosts file: ADDRESS NAME [NAME...] */
        if (kind != PHX_INTEL_DOMAIN)
            return *why = "a hosts-file line (use --kind domains)", -1;
        int added = 0;
        for (int i = 1; i < nf; i++) {
            if (import_boiler(f[i]))
                continue;
            if (import_domain(f[i], out, n, &at, why) < 0)
                return -1;
            added++;
        }
        if (!added)
            *why = "hosts-file boilerplate";
        return added;
    }
    if (nf > 1 && kind != PHX_INTEL_SHA256)
        return *why = "more than one value on the line", -1;
    const char *v = f[0];
    switch (kind) {
    case PHX_INTEL_DOMAIN:
        if (import_boiler(v))
            return *why = "hosts-file boilerplate", 0;
        return import_domain(v, out, n, &at, why) < 0 ? -1 : 1;
    case PHX_INTEL_IP:
        if (intel_net(v, 1, &e) < 0)
            return *why = "not an address or network", -1;
        return import_emit(out, n, &at, strchr(v, '/') ? "cidr" : "ip", v) < 0 ? -1 : 1;
    case PHX_INTEL_URL:
        if (!strstr(v, "://") || strstr(v, "://") == v || strlen(v) >= 1024)
            return *why = "not a URL (scheme://...)", -1;
        return import_emit(out, n, &at, "url", v) < 0 ? -1 : 1;
    case PHX_INTEL_SHA256: {
        /* "HEX  file" or "HEX *file" from sha256sum: the first field. */
        size_t hl = strlen(v);
        char h[65];
        for (size_t i = 0; i < hl; i++)
            if (!isxdigit((unsigned char)v[i]))
                return *why = "not a hex hash", -1;
        if (hl == 32 || hl == 40)
            return *why = "an MD5 or SHA-1 hash; feeds hold SHA-256", -1;
        if (hl != 64)
            return *why = "not 64 hex digits", -1;
        for (size_t i = 0; i < 64; i++)
            h[i] = (char)tolower((unsigned char)v[i]);
        h[64] = '\0';
        return import_emit(out, n, &at, "sha256", h) < 0 ? -1 : 1;
    }
    default:
        return *why = "this kind cannot be imported", -1;
    }
}

/* --- matching ----------------------------------------------------------------------------- */

static int intel_live(const intel_entry *e, int64_t now)
{
    return e->expires_ms == 0 || e->expires_ms > now;
}

static int intel_fill(const phx_intel_set *s, phx_intel_type t, const intel_entry *e,
                      phx_intel_hit *hit)
{
    if (hit) {
        hit->type = t;
        snprintf(hit->entry, sizeof(hit->entry), "%s", e->value);
        snprintf(hit->source, sizeof(hit->source), "%s", s->sources[e->src]);
    }
    return 1;
}

/* A live entry equal to key in a sorted list. */
static int intel_find(const phx_intel_set *s, phx_intel_type t, const char *key, int64_t now,
                      phx_intel_hit *hit)
{
    const intel_list *l = &s->l[t];
    size_t lo = 0, hi = l->n;
    while (lo < hi) { /* lower bound: duplicates with other expiries follow it */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(l->v[mid].value, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < l->n && strcmp(l->v[lo].value, key) == 0; lo++)
        if (intel_live(&l->v[lo], now))
            return intel_fill(s, t, &l->v[lo], hit);
    return 0;
}

int phx_intel_set_match_host(const phx_intel_set *s, const char *host, int64_t now_ms,
                             phx_intel_hit *hit)
{
    char h[300];
    if (!s || !host)
        return 0;
    /* A literal address is judged by the address lists. */
    const char *lit = host;
    char v6[64];
    size_t hl = strlen(host);
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof(v6)) {
        memcpy(v6, host + 1, hl - 2);
        v6[hl - 2] = '\0';
        lit = v6;
    }
    intel_entry probe;
    if (intel_net(lit, 0, &probe) == 0)
        return phx_intel_set_match_ip(s, lit, now_ms, hit);
    if (!intel_domain(host, h, sizeof(h)))
        return 0;
    /* The host and each parent domain: a listed domain covers its subdomains. */
    for (const char *p = h; p; p = strchr(p, '.') ? strchr(p, '.') + 1 : NULL)
        if (*p && intel_find(s, PHX_INTEL_DOMAIN, p, now_ms, hit))
            return 1;
    return 0;
}

static int intel_in_net(const intel_entry *a, const intel_entry *net)
{
    return a->family == net->family && phx_prefix_match(a->b, net->b, net->prefix);
}

int phx_intel_set_match_ip(const phx_intel_set *s, const char *ip, int64_t now_ms,
                           phx_intel_hit *hit)
{
    intel_entry a;
    if (!s || !ip || intel_net(ip, 0, &a) < 0)
        return 0;
    const intel_list *l = &s->l[PHX_INTEL_IP];
    for (size_t i = 0; i < l->n; i++)
        if (intel_live(&l->v[i], now_ms) && intel_in_net(&a, &l->v[i]))
            return intel_fill(s, PHX_INTEL_IP, &l->v[i], hit);
    return 0;
}

int phx_intel_set_match_url(const phx_intel_set *s, const char *url, int64_t now_ms,
                            phx_intel_hit *hit)
{
    if (!s || !url)
        return 0;
    const intel_list *l = &s->l[PHX_INTEL_URL];
    for (size_t i = 0; i < l->n; i++) {
        const intel_entry *e = &l->v[i];
        if (!intel_live(e, now_ms))
            continue;
        int m = strchr(e->value, '*') || strchr(e->value, '?') || strchr(e->value, '[')
                    ? fnmatch(e->value, url, FNM_CASEFOLD) == 0
                    : strcasecmp(e->value, url) == 0;
        if (m)
            return intel_fill(s, PHX_INTEL_URL, e, hit);
    }
    return 0;
}

int phx_intel_set_match_sha256(const phx_intel_set *s, const char *hex, int64_t now_ms,
                               phx_intel_hit *hit)
{
    char h[65];
    if (!s || !hex || strlen(hex) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        h[i] = (char)tolower((unsigned char)hex[i]);
    h[64] = '\0';
    return intel_find(s, PHX_INTEL_SHA256, h, now_ms, hit);
}

int phx_intel_set_match_prompt(const phx_intel_set *s, const char *text, size_t len, int64_t now_ms,
                               phx_intel_hit *hit)
{
    if (!s || !text || s->l[PHX_INTEL_PROMPT].n == 0)
        return 0;
    char *norm = malloc(len + 1);
    if (!norm)
        return 0;
    intel_norm(text, len, norm);
    int found = 0;
    const intel_list *l = &s->l[PHX_INTEL_PROMPT];
    for (size_t i = 0; i < l->n && !found; i++)
        if (intel_live(&l->v[i], now_ms) && strstr(norm, l->v[i].value))
            found = intel_fill(s, PHX_INTEL_PROMPT, &l->v[i], hit);
    free(norm);
    return found;
}

int phx_intel_set_scan_prompts(const phx_intel_set *s, const char *norm, size_t len, int64_t now_ms,
                               phx_intel_prompt_fn fn, void *arg)
{
    if (!s || !norm)
        return 0;
    int found = 0;
    const intel_list *l = &s->l[PHX_INTEL_PROMPT];
    for (size_t i = 0; i < l->n; i++) {
        const intel_entry *e = &l->v[i];
        size_t n = strlen(e->value);
        const char *at = intel_live(e, now_ms) ? memmem(norm, len, e->value, n) : NULL;
        if (!at)
            continue;
        phx_intel_hit hit;
        intel_fill(s, PHX_INTEL_PROMPT, e, &hit);
        if (fn)
            fn(arg, &hit, (size_t)(at - norm), n);
        found++;
    }
    return found;
}

/* --- the process's feeds ------------------------------------------------------------------ */

#define INTEL_MAX_FILES 32

struct phx_intel {
    pthread_rwlock_t lock;
    pthread_mutex_t reload_mu;
    phx_intel_set *set;
    char *files[INTEL_MAX_FILES];
    int nfiles;
    struct stat st[INTEL_MAX_FILES];
    long check_ms;
    int64_t checked_ms;
};

static void intel_log_problem(void *arg, const char *file, int line, const char *why)
{
    int *n = arg;
    if ((*n)++ < 20)
        phx_log_warn("intel feed %s:%d: %s (line skipped)", file, line, why);
}

/* Read every file into a new finished set, with the stat of each. NULL with err. */
static phx_intel_set *intel_load(phx_intel *in, struct stat *st, phx_err *err)
{
    phx_intel_set *s = phx_xcalloc(1, sizeof(*s));
    int problems = 0;
    for (int i = 0; i < in->nfiles; i++) {
        FILE *f = fopen(in->files[i], "r");
        if (!f || fstat(fileno(f), &st[i]) < 0) {
            phx_err_set(err, "invalid_config", 0, "intel feed %s: cannot read", in->files[i]);
            if (f)
                fclose(f);
            phx_intel_set_free(s);
            return NULL;
        }
        size_t cap = (size_t)st[i].st_size + 1, n = 0, r;
        char *buf = malloc(cap);
        while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
            n += r;
            if (n == cap)
                buf = phx_xrealloc(buf, cap *= 2);
        }
        fclose(f);
        phx_intel_parse(&s, buf ? buf : "", n, in->files[i], intel_log_problem, &problems);
        free(buf);
    }
    if (problems > 20)
        phx_log_warn("intel feeds: %d bad lines in all (first 20 shown)", problems);
    phx_intel_finish(s);
    return s;
}

phx_intel *phx_intel_open(const char *files, long check_ms, phx_err *err)
{
    phx_intel *in = phx_xcalloc(1, sizeof(*in));
    pthread_rwlock_init(&in->lock, NULL);
    pthread_mutex_init(&in->reload_mu, NULL);
    in->check_ms = check_ms;
    char *copy = phx_xstrdup(files ? files : ""), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (!*t)
            continue;
        if (in->nfiles == INTEL_MAX_FILES) {
            phx_err_set(err, "invalid_config", 0, "more than %d intel feed files", INTEL_MAX_FILES);
            free(copy);
            phx_intel_close(in);
            return NULL;
        }
        in->files[in->nfiles++] = phx_xstrdup(t);
    }
    free(copy);
    if (!(in->set = intel_load(in, in->st, err))) {
        phx_intel_close(in);
        return NULL;
    }
    in->checked_ms = phx_mono_ms();
    phx_log_info("intel feeds: %d files, %zu domains, %zu addresses/networks, %zu URL patterns, "
                 "%zu hashes, %zu prompt signatures",
                 in->nfiles, in->set->l[0].n, in->set->l[1].n, in->set->l[2].n, in->set->l[3].n,
                 in->set->l[4].n);
    return in;
}

void phx_intel_close(phx_intel *in)
{
    if (!in)
        return;
    phx_intel_set_free(in->set);
    for (int i = 0; i < in->nfiles; i++)
        free(in->files[i]);
    pthread_rwlock_destroy(&in->lock);
    pthread_mutex_destroy(&in->reload_mu);
    free(in);
}

int phx_intel_refresh(phx_intel *in, int force, phx_err *err)
{
    if (!in)
        return 0;
    pthread_mutex_lock(&in->reload_mu); /* one reloader; matching goes on meanwhile */
    int rc = 0;
    int64_t now = phx_mono_ms();
    if (!force && now - in->checked_ms < in->check_ms)
        goto out;
    in->checked_ms = now;
    int changed = force;
    for (int i = 0; i < in->nfiles && !changed; i++) {
        struct stat st;
        changed = stat(in->files[i], &st) < 0 || st.st_size != in->st[i].st_size ||
                  st.st_mtim.tv_sec != in->st[i].st_mtim.tv_sec ||
                  st.st_mtim.tv_nsec != in->st[i].st_mtim.tv_nsec || st.st_ino != in->st[i].st_ino;
    }
    if (!changed)
        goto out;
    struct stat nst[INTEL_MAX_FILES];
    phx_intel_set *s = intel_load(in, nst, err);
    if (!s) {
        rc = -1;
        goto out;
    }
    pthread_rwlock_wrlock(&in->lock);
    phx_intel_set *old = in->set;
    in->set = s;
    memcpy(in->st, nst, sizeof(nst[0]) * (size_t)in->nfiles);
    pthread_rwlock_unlock(&in->lock);
    phx_intel_set_free(old);
    phx_log_info("intel feeds reloaded: %zu domains, %zu addresses/networks, %zu URL patterns, "
                 "%zu hashes, %zu prompt signatures",
                 s->l[0].n, s->l[1].n, s->l[2].n, s->l[3].n, s->l[4].n);
    rc = 1;
out:
    pthread_mutex_unlock(&in->reload_mu);
    return rc;
}

#define INTEL_MATCH(call)                                                                          \
    if (!in)                                                                                       \
        return 0;                                                                                  \
    pthread_rwlock_rdlock(&in->lock);                                                              \
    int rc = call;                                                                                 \
    pthread_rwlock_unlock(&in->lock);                                                              \
    return rc

int phx_intel_match_host(phx_intel *in, const char *host, phx_intel_hit *hit)
{
    INTEL_MATCH(phx_intel_set_match_host(in->set, host, phx_now_ms(), hit));
}

int phx_intel_match_ip(phx_intel *in, const char *ip, phx_intel_hit *hit)
{
    INTEL_MATCH(phx_intel_set_match_ip(in->set, ip, phx_now_ms(), hit));
}

int phx_intel_match_url(phx_intel *in, const char *url, phx_intel_hit *hit)
{
    INTEL_MATCH(phx_intel_set_match_url(in->set, url, phx_now_ms(), hit));
}

int phx_intel_match_sha256(phx_intel *in, const char *hex, phx_intel_hit *hit)
{
    INTEL_MATCH(phx_intel_set_match_sha256(in->set, hex, phx_now_ms(), hit));
}

int phx_intel_match_prompt(phx_intel *in, const char *text, size_t len, phx_intel_hit *hit)
{
    INTEL_MATCH(phx_intel_set_match_prompt(in->set, text, len, phx_now_ms(), hit));
}

int phx_intel_scan_prompts(phx_intel *in, const char *norm, size_t len, phx_intel_prompt_fn fn,
                           void *arg)
{
    INTEL_MATCH(phx_intel_set_scan_prompts(in->set, norm, len, phx_now_ms(), fn, arg));
}
