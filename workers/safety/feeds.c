/* feeds.c -- the "intel" detector (see feeds.h).
 *
 * One pass over the text finds the candidates (URLs, host-name and address tokens); each is one
 * lookup in the feeds (binary search for domains, a short linear scan for networks and URL
 * globs). Findings are deduplicated by feed entry, so a page that links a listed domain a
 * hundred times is one finding, not the whole finding budget. */
#include "feeds.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define FEEDS_MAX_URL 2048

typedef struct feeds_ctx {
    phx_intel *in;
    const phx_safety_norm *n;
    const phx_safety_feed_seg *seg;
    phx_safety_findings *out;
    int added;
} feeds_ctx;

static const char *feeds_category(phx_intel_type t)
{
    switch (t) {
    case PHX_INTEL_DOMAIN:
        return "blocked_domain";
    case PHX_INTEL_IP:
        return "blocked_ip";
    case PHX_INTEL_URL:
        return "blocked_url";
    case PHX_INTEL_SHA256:
        return "blocked_hash";
    default:
        return "prompt_signature";
    }
}

/* One finding per feed entry: 1 when an earlier finding already names it. */
static int feeds_seen(const phx_safety_findings *out, const char *cat, const char *ev)
{
    for (int i = 0; i < out->n; i++)
        if (!strcmp(out->v[i].detector, "intel") && !strcmp(out->v[i].category, cat) &&
            !strcmp(out->v[i].evidence, ev))
            return 1;
    return 0;
}

static void feeds_add(feeds_ctx *c, const phx_intel_hit *hit, size_t start, size_t end, int via)
{
    const char *cat = feeds_category(hit->type);
    char ev[100];
    /* The entry (shortened) and the source: what an operator needs to judge the finding and
     * to find the line in the feed. */
    snprintf(ev, sizeof(ev), "%.50s (feed %.40s)", hit->entry, hit->source);
    if (feeds_seen(c->out, cat, ev))
        return;
    /* Known-bad is as certain as this pool gets: severity is the entry's weight, not a guess. */
    double sev = hit->type == PHX_INTEL_PROMPT ? 0.9 : 1.0;
    if (c->seg) {
        start = c->seg->start, end = c->seg->end, via = PHX_VIA_DECODED;
    }
    phx_safety_finding *f = phx_safety_add(c->out, "intel", cat, sev, start, end);
    if (!f)
        return;
    phx_safety_evidence(f->evidence, sizeof(f->evidence), ev, strlen(ev));
    f->redact = 1;
    f->via = via;
    if (c->seg && c->seg->encoding)
        snprintf(f->encoding, sizeof(f->encoding), "%s", c->seg->encoding);
    c->added++;
}

/* A prompt signature found at [off, off+len) of the folded text: map it back to the source. */
static void feeds_on_prompt(void *arg, const phx_intel_hit *hit, size_t off, size_t len)
{
    feeds_ctx *c = arg;
    const phx_safety_norm *n = c->n;
    size_t s = n->map[off], e = off + len < n->len ? n->map[off + len] : n->map[n->len];
    feeds_add(c, hit, s, e, phx_safety_norm_changed(n) ? PHX_VIA_NORMALIZED : PHX_VIA_RAW);
}

static int feeds_host_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_';
}

/* Judge the token t[0..n) as a host name or IPv4 address; start is its offset in the text. */
static void feeds_token(feeds_ctx *c, const char *t, size_t n, size_t start)
{
    char h[256];
    while (n > 0 && (t[0] == '.' || t[0] == '-'))
        t++, n--, start++;
    while (n > 0 && (t[n - 1] == '.' || t[n - 1] == '-'))
        n--;
    if (n < 3 || n >= sizeof(h) || !memchr(t, '.', n))
        return;
    memcpy(h, t, n);
    h[n] = '\0';
    /* A host name ends in a label of letters (a TLD); an IPv4 address is four numbers. Other
     * dotted tokens (versions, decimals, file.tar) are neither. */
    const char *last = strrchr(h, '.') + 1;
    int alpha = strlen(last) >= 2, digits = 1;
    for (const char *p = last; *p; p++)
        alpha &= isalpha((unsigned char)*p) != 0;
    for (const char *p = h; *p; p++)
        digits &= isdigit((unsigned char)*p) || *p == '.';
    phx_intel_hit hit;
    struct in_addr a4;
    if (digits && inet_pton(AF_INET, h, &a4) == 1) {
        if (phx_intel_match_ip(c->in, h, &hit))
            feeds_add(c, &hit, start, start + n, PHX_VIA_RAW);
    } else if (alpha && phx_intel_match_host(c->in, h, &hit)) {
        feeds_add(c, &hit, start, start + n, PHX_VIA_RAW);
    }
}

static int feeds_url_char(unsigned char c)
{
    return c > ' ' && c != '"' && c != '<' && c != '>' && c != '`' && c != '\'' && c != 0x7F;
}

/* The URL t[0..n) at offset start: its pattern match, and for a URL about to be fetched
 * (strict) the host as the fetch would read it -- a bracketed IPv6 literal or an IPv4 address
 * in any inet_aton notation (2130706433, 0x7f.1). Host names in URLs are tokens like any
 * other (feeds_token). */
static void feeds_url(feeds_ctx *c, const char *t, size_t n, size_t start, int strict)
{
    char u[FEEDS_MAX_URL];
    phx_intel_hit hit;
    if (n == 0 || n >= sizeof(u))
        return;
    memcpy(u, t, n);
    u[n] = '\0';
    if (phx_intel_match_url(c->in, u, &hit))
        feeds_add(c, &hit, start, start + n, PHX_VIA_RAW);
    char *h = strstr(u, "://");
    if (!h)
        return;
    h += 3;
    size_t hl = strcspn(h, "/?#\\");
    h[hl] = '\0';
    char *at = strrchr(h, '@');
    if (at)
        h = at + 1;
    char ip[INET6_ADDRSTRLEN];
    if (h[0] == '[') {
        char *rb = strchr(h, ']');
        if (rb) {
            *rb = '\0';
            if (phx_intel_match_ip(c->in, h + 1, &hit))
                feeds_add(c, &hit, start, start + n, PHX_VIA_RAW);
        }
        return;
    }
    h[strcspn(h, ":")] = '\0';
    struct in_addr a4;
    if (strict && inet_aton(h, &a4) == 1 && inet_ntop(AF_INET, &a4, ip, sizeof(ip)) &&
        phx_intel_match_ip(c->in, ip, &hit))
        feeds_add(c, &hit, start, start + n, PHX_VIA_NORMALIZED);
}

int phx_safety_feeds_scan(phx_intel *in, phx_safety_role role, const char *text, size_t len,
                          const phx_safety_norm *n, const phx_safety_feed_seg *seg,
                          phx_safety_findings *out)
{
    if (!in)
        return 0;
    feeds_ctx c = {in, n, seg, out, 0};
    phx_intel_hit hit;
    char sha[65];
    phx_sha256_hex(text, len, sha);
    if (phx_intel_match_sha256(in, sha, &hit))
        feeds_add(&c, &hit, 0, len, PHX_VIA_RAW);
    if (n && phx_intel_scan_prompts(in, n->text, n->len, feeds_on_prompt, &c) == 0 &&
        phx_intel_match_prompt(in, text, len, &hit))
        /* Folding can change what a signature was written with (digits read as leetspeak);
         * the text as written, only lowercased and blank-collapsed, is the fallback. */
        feeds_add(&c, &hit, 0, len, PHX_VIA_RAW);

    int strict = role == PHX_ROLE_URL && !seg;
    for (size_t i = 0; i < len;) {
        const char *sep = memmem(text + i, len - i, "://", 3);
        if (!sep)
            break;
        size_t s = (size_t)(sep - text), e = s + 3;
        while (s > i && isalpha((unsigned char)text[s - 1]))
            s--;
        while (e < len && feeds_url_char((unsigned char)text[e]))
            e++;
        while (e > s && strchr(".,;:!?)]", text[e - 1]))
            e--;
        if (s < (size_t)(sep - text))
            feeds_url(&c, text + s, e - s, s, strict);
        i = e > s + 3 ? e : (size_t)(sep - text) + 3;
    }
    for (size_t i = 0; i < len;) {
        if (!feeds_host_char((unsigned char)text[i])) {
            i++;
            continue;
        }
        size_t s = i;
        while (i < len && feeds_host_char((unsigned char)text[i]))
            i++;
        feeds_token(&c, text + s, i - s, s);
    }
    return c.added;
}
