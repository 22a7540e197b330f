/* words.c -- tokenising folded text and matching phrase patterns (see words.h).
 *
 * Matching is driven by the text: each word looks up the patterns whose first element could
 * start with it (a hash on its first three letters), and only those are tried, with a small
 * backtracking walk over the "~N" gaps. Cost is about (words x candidate patterns), which
 * keeps a 2 KB prompt in the tens of microseconds. */
#include "words.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHX_WORDS_BUCKETS 4096 /* first-letters buckets; a power of two */
#define PHX_WORDS_MAXGAP  8
#define PHX_WORDS_MAXSEG  24 /* longest vocabulary word tried when splitting joined runs */

typedef struct phx_ph_alt {
    char *w;
    uint32_t hash; /* of w (whole words only) */
    uint16_t len;
    uint8_t prefix;
} phx_ph_alt;

typedef struct phx_ph_elem {
    phx_ph_alt *alts; /* whole words first, sorted by hash (binary search), then stems */
    int nalts;
    int nwhole; /* alts[0..nwhole) are whole words */
    int gap;    /* words that may be skipped before this element */
} phx_ph_elem;

typedef struct phx_ph_pat {
    phx_ph_elem *e;
    int ne;
} phx_ph_pat;

typedef struct phx_ph_bucket {
    int *pats;
    int n, cap;
} phx_ph_bucket;

struct phx_safety_phrases {
    phx_ph_pat *p;
    int np;
    phx_ph_bucket b[PHX_WORDS_BUCKETS];
    /* vocabulary: every literal word and stem, open addressing */
    char **vocab;
    size_t vcap;
};

static uint32_t phx_words_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int phx_words_vocab_has(const phx_safety_phrases *p, const char *s, size_t n)
{
    if (!p->vcap)
        return 0;
    for (size_t i = phx_words_hash(s, n) & (p->vcap - 1);; i = (i + 1) & (p->vcap - 1)) {
        const char *v = p->vocab[i];
        if (!v)
            return 0;
        if (strlen(v) == n && memcmp(v, s, n) == 0)
            return 1;
    }
}

static void phx_words_vocab_add(phx_safety_phrases *p, char *w)
{
    size_t n = strlen(w);
    if (n < 2 || phx_words_vocab_has(p, w, n))
        return;
    for (size_t i = phx_words_hash(w, n) & (p->vcap - 1);; i = (i + 1) & (p->vcap - 1))
        if (!p->vocab[i]) {
            p->vocab[i] = w;
            return;
        }
}

static int phx_words_bucket_add(phx_ph_bucket *b, int pat)
{
    if (b->n && b->pats[b->n - 1] == pat)
        return 0;
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 4;
        int *v = realloc(b->pats, (size_t)cap * sizeof(int));
        if (!v)
            return -1;
        b->pats = v;
        b->cap = cap;
    }
    b->pats[b->n++] = pat;
    return 0;
}

static uint32_t phx_words_key(const char *w, size_t n)
{
    return phx_words_hash(w, n < 3 ? n : 3) & (PHX_WORDS_BUCKETS - 1);
}

/* Whole words before stems; whole words by hash. */
static int phx_words_alt_cmp(const void *a, const void *b)
{
    const phx_ph_alt *x = a, *y = b;
    if (x->prefix != y->prefix)
        return x->prefix - y->prefix;
    return x->hash < y->hash ? -1 : x->hash > y->hash;
}

/* Parse one pattern into pat. */
static int phx_words_parse(const char *src, phx_ph_pat *pat, char *err, size_t errlen)
{
    char *copy = strdup(src);
    if (!copy)
        return -1;
    int gap = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        if (tok[0] == '~') {
            gap = (int)strtol(tok + 1, NULL, 10);
            if (gap < 1 || gap > PHX_WORDS_MAXGAP || pat->ne == 0) {
                snprintf(err, errlen, "pattern \"%s\": bad gap %s", src, tok);
                goto err;
            }
            continue;
        }
        phx_ph_elem *e = realloc(pat->e, (size_t)(pat->ne + 1) * sizeof(*e));
        if (!e)
            goto err;
        pat->e = e;
        phx_ph_elem *el = &pat->e[pat->ne++];
        memset(el, 0, sizeof(*el));
        el->gap = gap;
        gap = 0;
        char *s2 = NULL;
        for (char *a = strtok_r(tok, "|", &s2); a; a = strtok_r(NULL, "|", &s2)) {
            phx_ph_alt *v = realloc(el->alts, (size_t)(el->nalts + 1) * sizeof(*v));
            if (!v)
                goto err;
            el->alts = v;
            phx_ph_alt *alt = &el->alts[el->nalts++];
            size_t n = strlen(a);
            alt->prefix = n > 0 && a[n - 1] == '*';
            if (alt->prefix)
                a[--n] = '\0';
            alt->w = strdup(a);
            alt->len = (uint16_t)n;
            alt->hash = phx_words_hash(a, n);
            if (!alt->w)
                goto err;
            if (n == 0 || (alt->prefix && n < 3)) {
                snprintf(err, errlen, "pattern \"%s\": bad word \"%s\"", src, a);
                goto err;
            }
        }
    }
    if (pat->ne == 0) {
        snprintf(err, errlen, "pattern \"%s\" is empty", src);
        goto err;
    }
    for (int i = 0; i < pat->ne; i++) {
        phx_ph_elem *el = &pat->e[i];
        if (el->nalts > 1) /* qsort of a NULL base is undefined even for 0 elements */
            qsort(el->alts, (size_t)el->nalts, sizeof(el->alts[0]), phx_words_alt_cmp);
        el->nwhole = 0;
        while (el->nwhole < el->nalts && !el->alts[el->nwhole].prefix)
            el->nwhole++;
    }
    free(copy);
    return 0;
err:
    free(copy);
    return -1;
}

void phx_safety_phrases_free(phx_safety_phrases *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->np; i++) {
        for (int j = 0; j < p->p[i].ne; j++) {
            for (int k = 0; k < p->p[i].e[j].nalts; k++)
                free(p->p[i].e[j].alts[k].w);
            free(p->p[i].e[j].alts);
        }
        free(p->p[i].e);
    }
    free(p->p);
    for (int i = 0; i < PHX_WORDS_BUCKETS; i++)
        free(p->b[i].pats);
    free(p->vocab);
    free(p);
}

phx_safety_phrases *phx_safety_phrases_compile(const char *const *patterns, int n, char *err,
                                               size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    phx_safety_phrases *p = calloc(1, sizeof(*p));
    if (!p || !(p->p = calloc((size_t)n + 1, sizeof(*p->p))))
        goto err;
    size_t words = 0;
    for (int i = 0; i < n; i++) {
        if (phx_words_parse(patterns[i], &p->p[i], err, errlen) < 0) {
            p->np = i + 1;
            goto err;
        }
        p->np = i + 1;
        for (int j = 0; j < p->p[i].ne; j++)
            words += (size_t)p->p[i].e[j].nalts;
        const phx_ph_elem *first = &p->p[i].e[0];
        for (int k = 0; k < first->nalts; k++)
            if (phx_words_bucket_add(&p->b[phx_words_key(first->alts[k].w, first->alts[k].len)],
                                     i) < 0)
                goto err;
    }
    for (p->vcap = 64; p->vcap < words * 3; p->vcap *= 2)
        ;
    if (!(p->vocab = calloc(p->vcap, sizeof(char *))))
        goto err;
    for (int i = 0; i < p->np; i++)
        for (int j = 0; j < p->p[i].ne; j++)
            for (int k = 0; k < p->p[i].e[j].nalts; k++)
                phx_words_vocab_add(p, p->p[i].e[j].alts[k].w);
    return p;
err:
    phx_safety_phrases_free(p);
    return NULL;
}

static int phx_words_push(phx_safety_words *w, const char *s, size_t n, size_t start, size_t end)
{
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 64;
        phx_safety_tok *t = realloc(w->t, (size_t)cap * sizeof(*t));
        if (!t)
            return -1;
        w->t = t;
        w->cap = cap;
    }
    if (w->blen + n + 1 > w->bcap) {
        size_t cap = w->bcap * 2 + n + 256;
        char *b = realloc(w->buf, cap);
        if (!b)
            return -1;
        w->buf = b;
        w->bcap = cap;
    }
    if (n > 65535)
        n = 65535;
    memcpy(w->buf + w->blen, s, n);
    w->t[w->n].off = (uint32_t)w->blen;
    w->t[w->n].len = (uint16_t)n;
    w->t[w->n].hash = phx_words_hash(s, n);
    w->t[w->n].start = start;
    w->t[w->n].end = end;
    w->n++;
    w->blen += n;
    w->buf[w->blen] = '\0';
    return 0;
}

/* Split a joined run ("ignoreallprevious") into vocabulary words, longest first. */
static int phx_words_segment(phx_safety_words *w, const char *s, size_t n, size_t start,
                             const phx_safety_phrases *vocab)
{
    size_t i = 0;
    while (i < n) {
        size_t best = 0;
        size_t maxl = n - i < PHX_WORDS_MAXSEG ? n - i : PHX_WORDS_MAXSEG;
        for (size_t l = maxl; l >= 2 && !best; l--)
            if (phx_words_vocab_has(vocab, s + i, l))
                best = l;
        if (!best) {
            i++;
            continue;
        }
        if (phx_words_push(w, s + i, best, start + i, start + i + best) < 0)
            return -1;
        i += best;
    }
    return 0;
}

static int phx_words_is_char(const char *t, size_t i, size_t len)
{
    unsigned char c = (unsigned char)t[i];
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80) {
        /* U+2019 (right single quote) is an apostrophe, not a letter */
        if (c == 0xE2 && i + 2 < len && (unsigned char)t[i + 1] == 0x80 &&
            (unsigned char)t[i + 2] == 0x99)
            return 0;
        return 1;
    }
    return 0;
}

int phx_safety_words_split(const phx_safety_norm *nm, const phx_safety_phrases *vocab,
                           phx_safety_words *w)
{
    memset(w, 0, sizeof(*w));
    const char *t = nm->text;
    size_t len = nm->len, i = 0;
    int jr = 0;
    char tmp[256];
    while (i < len) {
        if (!phx_words_is_char(t, i, len)) {
            i++;
            continue;
        }
        size_t s = i, k = 0;
        while (i < len) {
            if (phx_words_is_char(t, i, len)) {
                if (k < sizeof(tmp))
                    tmp[k++] = t[i];
                i++;
            } else if (t[i] == '\'' && i + 1 < len && phx_words_is_char(t, i + 1, len)) {
                i++;
            } else if ((unsigned char)t[i] == 0xE2 && i + 3 < len &&
                       phx_words_is_char(t, i + 3, len) && (unsigned char)t[i + 1] == 0x80 &&
                       (unsigned char)t[i + 2] == 0x99) {
                i += 3;
            } else {
                break;
            }
        }
        while (jr < nm->njoined && nm->joined[jr].end <= s)
            jr++;
        int joined = jr < nm->njoined && nm->joined[jr].start <= s && nm->joined[jr].end >= i;
        int rc = (joined && vocab && k >= 5) ? phx_words_segment(w, tmp, k, s, vocab)
                                             : phx_words_push(w, tmp, k, s, i);
        if (rc < 0) {
            phx_safety_words_free(w);
            return -1;
        }
    }
    return 0;
}

void phx_safety_words_free(phx_safety_words *w)
{
    free(w->buf);
    free(w->t);
    memset(w, 0, sizeof(*w));
}

static int phx_words_elem_ok(const phx_ph_elem *e, const phx_safety_tok *t, const char *s)
{
    size_t n = t->len;
    int lo = 0, hi = e->nwhole;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (e->alts[mid].hash < t->hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int i = lo; i < e->nwhole && e->alts[i].hash == t->hash; i++)
        if (n == e->alts[i].len && memcmp(s, e->alts[i].w, n) == 0)
            return 1;
    for (int i = e->nwhole; i < e->nalts; i++) {
        const phx_ph_alt *a = &e->alts[i];
        if (n >= a->len && s[0] == a->w[0] && memcmp(s, a->w, a->len) == 0)
            return 1;
    }
    return 0;
}

static int phx_words_match_at(const phx_ph_pat *p, int ei, const phx_safety_words *w, int ti)
{
    if (ei == p->ne)
        return ti - 1;
    int gap = ei == 0 ? 0 : p->e[ei].gap;
    for (int k = 0; k <= gap && ti + k < w->n; k++) {
        const phx_safety_tok *t = &w->t[ti + k];
        if (phx_words_elem_ok(&p->e[ei], t, w->buf + t->off)) {
            int r = phx_words_match_at(p, ei + 1, w, ti + k + 1);
            if (r >= 0)
                return r;
        }
    }
    return -1;
}

int phx_safety_phrases_match(const phx_safety_phrases *p, const phx_safety_words *w,
                             phx_safety_match_fn cb, void *arg)
{
    int matches = 0;
    for (int i = 0; i < w->n; i++) {
        const phx_safety_tok *t = &w->t[i];
        const phx_ph_bucket *b = &p->b[phx_words_key(w->buf + t->off, t->len)];
        for (int j = 0; j < b->n; j++) {
            int last = phx_words_match_at(&p->p[b->pats[j]], 0, w, i);
            if (last >= 0) {
                matches++;
                cb(arg, b->pats[j], i, last);
            }
        }
    }
    return matches;
}
