/* words.c -- tokenising folded text and matching phrase patterns (see words.h).
 *
 * Every pattern element gets a number, and compiling precomputes, for each literal word and
 * each stem of the patterns, the set (a bitset) of elements it satisfies; a stem's set
 * includes the sets of the shorter stems that are its prefixes, and a literal word's set
 * includes the set of the longest stem it starts with. Splitting the text then classifies
 * each word once (one hash look-up, or a few for the prefixes of a word that is no literal)
 * and matching only tests bits: the first elements of the patterns are numbered 0..np-1, so
 * the patterns a word can start are the low bits of its set, in pattern order, and the small
 * backtracking walk over the "~N" gaps tests one bit per word. Most words of a text satisfy
 * no element at all and cost nothing past their classification. */
#include "words.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHX_WORDS_MAXGAP  8
#define PHX_WORDS_MAXSEG  24 /* longest vocabulary word tried when splitting joined runs */
#define PHX_WORDS_MAXSTEM 64 /* longest stem a pattern may use (bounds the prefix hashes) */

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
    int id;     /* bit in the word classes; pattern i's first element is bit i */
} phx_ph_elem;

typedef struct phx_ph_pat {
    phx_ph_elem *e;
    int ne;
} phx_ph_pat;

/* A literal word or a stem and the elements a word equal to it (starting with it) satisfies. */
typedef struct phx_ph_cls {
    const char *w; /* NULL: free slot */
    uint32_t hash;
    uint16_t len;
    uint64_t *bits; /* nw words in phx_safety_phrases.bits */
} phx_ph_cls;

struct phx_safety_phrases {
    phx_ph_pat *p;
    int np;
    size_t nw; /* uint64_t words per bitset */
    /* literal words and stems, open addressing; both tables have cap slots */
    phx_ph_cls *whole, *stems;
    size_t cap;
    size_t maxstem; /* longest stem */
    /* the first three letters of the stems (a 4096-bit filter on their hash): most words
     * start with no stem, and this tells so in one look-up */
    uint8_t stem3[512];
    uint64_t *bits; /* storage of every class bitset */
    size_t nbits;   /* bitsets handed out */
};

static uint32_t phx_words_hash(const char *s, size_t n)
{
    return phx_fnv32(PHX_FNV32_BASIS, s, n);
}

uint32_t phx_safety_word_hash(const char *s, size_t n)
{
    return phx_words_hash(s, n);
}

/* The entry of tab for s[0..n) with hash h, or NULL. */
static phx_ph_cls *phx_words_find(const phx_safety_phrases *p, phx_ph_cls *tab, const char *s,
                                  size_t n, uint32_t h)
{
    for (size_t i = h & (p->cap - 1);; i = (i + 1) & (p->cap - 1)) {
        phx_ph_cls *c = &tab[i];
        if (!c->w)
            return NULL;
        if (c->hash == h && c->len == n && memcmp(c->w, s, n) == 0)
            return c;
    }
}

/* Is s[0..n) a literal word or stem of some pattern (what joined runs are split into)? */
static int phx_words_vocab_has(const phx_safety_phrases *p, const char *s, size_t n)
{
    uint32_t h = phx_words_hash(s, n);
    return n >= 2 && (phx_words_find(p, p->whole, s, n, h) || phx_words_find(p, p->stems, s, n, h));
}

/* Mark element id in the class of alternative a, adding the class when it is new. The tables
 * have at least twice as many slots as there are alternatives, so they never fill. */
static void phx_words_cls_add(phx_safety_phrases *p, const phx_ph_alt *a, int id)
{
    phx_ph_cls *tab = a->prefix ? p->stems : p->whole;
    uint32_t h = phx_words_hash(a->w, a->len);
    phx_ph_cls *c = phx_words_find(p, tab, a->w, a->len, h);
    if (!c) {
        size_t i = h & (p->cap - 1);
        while (tab[i].w)
            i = (i + 1) & (p->cap - 1);
        c = &tab[i];
        c->w = a->w;
        c->hash = h;
        c->len = a->len;
        c->bits = p->bits + p->nbits++ * p->nw;
        if (a->prefix && a->len > p->maxstem)
            p->maxstem = a->len;
        if (a->prefix) {
            uint32_t h3 = phx_words_hash(a->w, 3) & 4095;
            p->stem3[h3 >> 3] |= (uint8_t)(1u << (h3 & 7));
        }
    }
    c->bits[id >> 6] |= 1ull << (id & 63);
}

static void phx_words_or(uint64_t *dst, const uint64_t *src, size_t nw)
{
    for (size_t i = 0; i < nw; i++)
        dst[i] |= src[i];
}

/* The longest stem that s[0..n) starts with (stems are >= 3 letters), or NULL. */
static const phx_ph_cls *phx_words_stem_of(const phx_safety_phrases *p, const char *s, size_t n)
{
    size_t max = n < p->maxstem ? n : p->maxstem;
    if (max < 3)
        return NULL;
    uint32_t h[PHX_WORDS_MAXSTEM + 1];
    h[0] = PHX_FNV32_BASIS; /* FNV-1a of every prefix, as phx_words_hash computes it */
    for (size_t i = 0; i < max; i++) {
        h[i + 1] = phx_fnv32(h[i], s + i, 1);
        if (i == 2 && !(p->stem3[(h[3] & 4095) >> 3] & (1u << (h[3] & 7))))
            return NULL;
    }
    for (size_t l = max; l >= 3; l--) {
        const phx_ph_cls *c = phx_words_find(p, p->stems, s, l, h[l]);
        if (c)
            return c;
    }
    return NULL;
}

/* The elements a word satisfies: its literal entry, else its longest stem; NULL for none. */
static const uint64_t *phx_words_classify(const phx_safety_phrases *p, const char *s, size_t n,
                                          uint32_t hash)
{
    const phx_ph_cls *c = phx_words_find(p, p->whole, s, n, hash);
    if (!c)
        c = phx_words_stem_of(p, s, n);
    return c ? c->bits : NULL;
}

/* Build the class tables once all patterns are parsed (see the top of the file). */
static int phx_words_cls_build(phx_safety_phrases *p, size_t alts)
{
    int next = p->np; /* ids np.. are the elements after the first */
    for (int i = 0; i < p->np; i++) {
        p->p[i].e[0].id = i;
        for (int j = 1; j < p->p[i].ne; j++)
            p->p[i].e[j].id = next++;
    }
    p->nw = ((size_t)next + 63) / 64;
    for (p->cap = 64; p->cap < alts * 2; p->cap *= 2)
        ;
    p->whole = calloc(p->cap, sizeof(*p->whole));
    p->stems = calloc(p->cap, sizeof(*p->stems));
    p->bits = calloc(alts * p->nw + 1, sizeof(uint64_t));
    if (!p->whole || !p->stems || !p->bits)
        return -1;
    for (int i = 0; i < p->np; i++)
        for (int j = 0; j < p->p[i].ne; j++)
            for (int k = 0; k < p->p[i].e[j].nalts; k++)
                phx_words_cls_add(p, &p->p[i].e[j].alts[k], p->p[i].e[j].id);
    /* A word starting with a stem starts with that stem's shorter prefix stems too. */
    for (size_t i = 0; i < p->cap; i++) {
        phx_ph_cls *c = &p->stems[i];
        for (size_t l = 3; c->w && l < c->len; l++) {
            const phx_ph_cls *t = phx_words_find(p, p->stems, c->w, l, phx_words_hash(c->w, l));
            if (t)
                phx_words_or(c->bits, t->bits, p->nw);
        }
    }
    /* ... and so does a literal word (whose own stems are now closed). */
    for (size_t i = 0; i < p->cap; i++) {
        phx_ph_cls *c = &p->whole[i];
        const phx_ph_cls *t = c->w ? phx_words_stem_of(p, c->w, c->len) : NULL;
        if (t)
            phx_words_or(c->bits, t->bits, p->nw);
    }
    return 0;
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
            if (n == 0 || (alt->prefix && (n < 3 || n > PHX_WORDS_MAXSTEM))) {
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
    free(p->whole);
    free(p->stems);
    free(p->bits);
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
    }
    if (phx_words_cls_build(p, words) < 0)
        goto err;
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

static inline int phx_words_is_char(const char *t, size_t i, size_t len)
{
    unsigned char c = (unsigned char)t[i];
    if (c < 0x80) /* the common case first */
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    /* U+2019 (right single quote) is an apostrophe, not a letter */
    return !(c == 0xE2 && i + 2 < len && (unsigned char)t[i + 1] == 0x80 &&
             (unsigned char)t[i + 2] == 0x99);
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
        if (rc < 0)
            goto err;
    }
    if (vocab && w->n > 0) {
        if (!(w->cls = malloc((size_t)w->n * sizeof(*w->cls))))
            goto err;
        for (int k = 0; k < w->n; k++)
            w->cls[k] = phx_words_classify(vocab, w->buf + w->t[k].off, w->t[k].len, w->t[k].hash);
    }
    w->clsof = vocab;
    return 0;
err:
    phx_safety_words_free(w);
    return -1;
}

void phx_safety_words_free(phx_safety_words *w)
{
    free(w->buf);
    free(w->t);
    free(w->cls);
    memset(w, 0, sizeof(*w));
}

/* The class of word i: precomputed when the words were split with this phrase set. */
static const uint64_t *phx_words_cls_at(const phx_safety_phrases *p, const phx_safety_words *w,
                                        int i)
{
    if (w->cls && w->clsof == p)
        return w->cls[i];
    const phx_safety_tok *t = &w->t[i];
    return phx_words_classify(p, w->buf + t->off, t->len, t->hash);
}

static int phx_words_match_at(const phx_safety_phrases *ps, const phx_ph_pat *p, int ei,
                              const phx_safety_words *w, int ti)
{
    if (ei == p->ne)
        return ti - 1;
    int gap = ei == 0 ? 0 : p->e[ei].gap;
    int id = p->e[ei].id;
    for (int k = 0; k <= gap && ti + k < w->n; k++) {
        const uint64_t *c = phx_words_cls_at(ps, w, ti + k);
        if (c && ((c[id >> 6] >> (id & 63)) & 1)) {
            int r = phx_words_match_at(ps, p, ei + 1, w, ti + k + 1);
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
        const uint64_t *c = phx_words_cls_at(p, w, i);
        if (!c)
            continue;
        /* the patterns this word can start: bits 0..np-1, in pattern order */
        for (int base = 0; base < p->np; base += 64) {
            uint64_t m = c[base >> 6];
            if (p->np - base < 64)
                m &= (1ull << (p->np - base)) - 1;
            while (m) {
                int pat = base + __builtin_ctzll(m);
                m &= m - 1;
                int last = phx_words_match_at(p, &p->p[pat], 0, w, i);
                if (last >= 0) {
                    matches++;
                    cb(arg, pat, i, last);
                }
            }
        }
    }
    return matches;
}

int phx_safety_words_is(const phx_safety_phrases *p, const phx_safety_words *w, int i, int pat)
{
    if (i < 0 || i >= w->n || pat < 0 || pat >= p->np)
        return 0;
    const uint64_t *c = phx_words_cls_at(p, w, i);
    return c && ((c[pat >> 6] >> (pat & 63)) & 1);
}

void phx_safety_words_drop(phx_safety_words *w, int i)
{
    if (w->cls && i >= 0 && i < w->n)
        w->cls[i] = NULL;
}
