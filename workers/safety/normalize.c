/* normalize.c -- folding text for the detectors (see normalize.h).
 *
 * Three passes, each simple: (1) code points -> folded UTF-8 with an offset map, (2)
 * leetspeak inside words, in place (one byte for one byte, so the map is unchanged), (3)
 * joining spaced-out letters, which drops separator bytes and so rebuilds text and map. */
#include "normalize.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/uspoof.h>
#include <unicode/utf16.h>
#include <unicode/utf8.h>

/* Per code point fold cache for the BMP and the SMP (where mathematical alphanumerics live).
 * Entry layout: byte 0 = flags | length, bytes 1..7 = folded UTF-8. */
#define PHX_NORM_CACHE_CPS 0x20000
#define PHX_NORM_F_DONE    0x80 /* entry computed */
#define PHX_NORM_F_ASCII   0x40 /* a non-ASCII letter folded into ASCII */
#define PHX_NORM_F_LONG    0x20 /* result longer than 7 bytes: not cached, recompute */
#define PHX_NORM_F_CONF    0x08 /* ... through its confusable skeleton (another script) */
#define PHX_NORM_LEN_MASK  0x07
static uint64_t phx_norm_cache[PHX_NORM_CACHE_CPS];

static pthread_once_t phx_norm_once = PTHREAD_ONCE_INIT;
static const UNormalizer2 *phx_norm_nfkd;
static USpoofChecker *phx_norm_spoof;

static void phx_norm_init(void)
{
    UErrorCode st = U_ZERO_ERROR;
    phx_norm_nfkd = unorm2_getNFKDInstance(&st);
    if (U_FAILURE(st))
        phx_norm_nfkd = NULL;
    st = U_ZERO_ERROR;
    phx_norm_spoof = uspoof_open(&st);
    if (U_FAILURE(st))
        phx_norm_spoof = NULL;
}

/* Invisible format characters: removed from the text, counted as hidden content. */
static int phx_norm_is_invisible(UChar32 c)
{
    return c == 0x00AD || c == 0x034F || c == 0x115F || c == 0x1160 || c == 0x17B4 || c == 0x17B5 ||
           c == 0x180E || (c >= 0x200B && c <= 0x200D) || (c >= 0x2060 && c <= 0x2064) ||
           c == 0x3164 || c == 0xFEFF || c == 0xFFA0 || (c >= 0xE0100 && c <= 0xE01EF) ||
           c == 0x1D173 || c == 0x1D17A;
}

static int phx_norm_is_bidi(UChar32 c)
{
    return (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) || c == 0x200E ||
           c == 0x200F || c == 0x061C;
}

static int phx_norm_is_space(UChar32 c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static size_t phx_norm_put_cp(char *out, UChar32 c)
{
    size_t i = 0;
    UBool err = 0;
    U8_APPEND((uint8_t *)out, i, 8, c, err);
    return err ? 0 : i;
}

/* Fold one non-ASCII code point: NFKD, drop combining marks, case-fold, then map a result
 * that is still non-ASCII through its confusable skeleton when that is ASCII. Writes at most
 * 32 bytes; returns the length and sets *ascii to 1 when a letter became ASCII by
 * decomposition, 2 when through its confusable skeleton. */
static size_t phx_norm_fold_cp(UChar32 c, char out[32], int *ascii)
{
    UChar dec[16];
    int32_t n = -1;
    UErrorCode st = U_ZERO_ERROR;
    *ascii = 0;
    if (phx_norm_nfkd)
        n = unorm2_getDecomposition(phx_norm_nfkd, c, dec, 16, &st);
    if (U_FAILURE(st) || n < 0) {
        n = 0;
        U16_APPEND_UNSAFE(dec, n, c);
    }
    size_t len = 0;
    int all_ascii = 1;
    for (int32_t i = 0; i < n;) {
        UChar32 d;
        U16_NEXT(dec, i, n, d);
        int8_t t = u_charType(d);
        if (t == U_NON_SPACING_MARK || t == U_ENCLOSING_MARK || t == U_COMBINING_SPACING_MARK)
            continue;
        d = u_foldCase(d, U_FOLD_CASE_DEFAULT);
        if (d >= 0x80)
            all_ascii = 0;
        if (len + 4 > 28)
            break;
        len += phx_norm_put_cp(out + len, phx_norm_is_space(d) ? ' ' : d);
    }
    if (len > 0 && all_ascii) {
        *ascii = u_isalpha(c) || u_isdigit(c);
        return len;
    }
    /* Still non-ASCII: a look-alike of an ASCII letter or digit (Cyrillic a, Greek o)? */
    if (phx_norm_spoof && u_isalpha(c)) {
        UChar src[2], sk[8];
        int32_t sn = 0;
        U16_APPEND_UNSAFE(src, sn, c);
        st = U_ZERO_ERROR;
        int32_t k = uspoof_getSkeleton(phx_norm_spoof, 0, src, sn, sk, 8, &st);
        if (U_SUCCESS(st) && k >= 1 && k <= 2) {
            char tmp[4];
            int ok = 1;
            for (int32_t i = 0; i < k; i++) {
                UChar32 a = u_foldCase(sk[i], U_FOLD_CASE_DEFAULT);
                if (!((a >= 'a' && a <= 'z') || (a >= '0' && a <= '9')))
                    ok = 0;
                else
                    tmp[i] = (char)a;
            }
            if (ok) {
                memcpy(out, tmp, (size_t)k);
                *ascii = 2; /* a look-alike from another script */
                return (size_t)k;
            }
        }
    }
    return len;
}

/* Cached fold; returns length and flags. */
static size_t phx_norm_fold(UChar32 c, char out[32], int *ascii)
{
    if (c < PHX_NORM_CACHE_CPS) {
        uint64_t e = __atomic_load_n(&phx_norm_cache[c], __ATOMIC_RELAXED);
        if ((e & PHX_NORM_F_DONE) && !(e & PHX_NORM_F_LONG)) {
            size_t n = e & PHX_NORM_LEN_MASK;
            for (size_t i = 0; i < n; i++)
                out[i] = (char)(e >> (8 * (i + 1)));
            *ascii = (e & PHX_NORM_F_CONF) ? 2 : (e & PHX_NORM_F_ASCII) ? 1 : 0;
            return n;
        }
    }
    size_t n = phx_norm_fold_cp(c, out, ascii);
    if (c < PHX_NORM_CACHE_CPS) {
        uint64_t e = PHX_NORM_F_DONE;
        if (n > 7) {
            e |= PHX_NORM_F_LONG;
        } else {
            e |= n | (*ascii ? PHX_NORM_F_ASCII : 0) | (*ascii == 2 ? PHX_NORM_F_CONF : 0);
            for (size_t i = 0; i < n; i++)
                e |= (uint64_t)(unsigned char)out[i] << (8 * (i + 1));
        }
        __atomic_store_n(&phx_norm_cache[c], e, __ATOMIC_RELAXED);
    }
    return n;
}

typedef struct phx_norm_buf {
    char *t;
    uint32_t *m;
    size_t n, cap;
} phx_norm_buf;

static int phx_norm_reserve(phx_norm_buf *b, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap * 2 + n + 64;
        char *t = realloc(b->t, cap);
        if (!t)
            return -1;
        b->t = t;
        uint32_t *m = realloc(b->m, (cap + 1) * sizeof(uint32_t));
        if (!m)
            return -1;
        b->m = m;
        b->cap = cap;
    }
    return 0;
}

static int phx_norm_push(phx_norm_buf *b, const char *s, size_t n, size_t src)
{
    /* the capacity test inline: the join pass pushes byte by byte into a buffer sized up front */
    if (b->n + n + 1 > b->cap && phx_norm_reserve(b, n) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        b->t[b->n] = s[i];
        b->m[b->n++] = (uint32_t)src;
    }
    return 0;
}

static void phx_norm_span(size_t *s, size_t *e, int count, size_t from, size_t to)
{
    if (count == 0)
        *s = from;
    *e = to;
}

/* Pass 1: code points -> folded text. */
static int phx_norm_fold_pass(const char *src, size_t len, phx_safety_norm *o, phx_norm_buf *b)
{
    int32_t i = 0, n = (int32_t)len;
    int word_ascii = 0, word_conf = 0; /* current word has ASCII letters / folded look-alikes */
    UChar32 prev = 0;
    while (i < n) {
        /* Fast path: ASCII letters and digits, the bulk of most text. */
        unsigned char a = (unsigned char)src[i];
        if ((a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z') || (a >= '0' && a <= '9')) {
            if (b->n + 2 > b->cap && phx_norm_reserve(b, 64) < 0)
                return -1;
            b->t[b->n] = (char)((a >= 'A' && a <= 'Z') ? a + 32 : a);
            b->m[b->n++] = (uint32_t)i;
            if (a > '9')
                word_ascii = 1;
            prev = a;
            i++;
            continue;
        }
        int32_t at = i;
        UChar32 c;
        U8_NEXT((const uint8_t *)src, i, n, c);
        char tmp[32];
        tmp[0] = 0; /* one byte, so no reader can ever see garbage (and cppcheck agrees) */
        size_t tn = 0;
        int ascii = 0;
        if (c < 0) {
            tmp[tn++] = ' ';
        } else if (c < 0x80) {
            if (c < 0x20 || c == 0x7F || c == ' ')
                tmp[tn++] = ' ';
            else
                tmp[tn++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
        } else if (c >= 0xE0000 && c <= 0xE007F) {
            phx_norm_span(&o->tag_start, &o->tag_end, o->tags, (size_t)at, (size_t)i);
            o->tags++;
            if (c >= 0xE0020 && c <= 0xE007E) {
                char a = (char)(c - 0xE0000);
                tmp[tn++] = (a >= 'A' && a <= 'Z') ? (char)(a + 32) : a;
            }
        } else if (phx_norm_is_bidi(c)) {
            phx_norm_span(&o->bidi_start, &o->bidi_end, o->bidi, (size_t)at, (size_t)i);
            o->bidi++;
        } else if (phx_norm_is_invisible(c)) {
            /* A joiner between emoji is how emoji sequences are written, not hiding. */
            if (!((c == 0x200D || c == 0x200C) && prev >= 0x80 && !u_isalpha(prev))) {
                phx_norm_span(&o->inv_start, &o->inv_end, o->invisible, (size_t)at, (size_t)i);
                o->invisible++;
            }
        } else if ((c >= 0xFE00 && c <= 0xFE0F)) {
            /* Variation selectors pick an emoji or text glyph: dropped, not hiding. */
        } else if (phx_norm_is_space(c)) {
            tmp[tn++] = ' ';
        } else {
            tn = phx_norm_fold(c, tmp, &ascii);
            if (ascii)
                o->folded++;
        }
        if (c >= 0)
            prev = c;
        /* Mixed-script words: ASCII letters and folded look-alikes together. */
        int is_letter =
            tn > 0 && ((tmp[0] >= 'a' && tmp[0] <= 'z') || (unsigned char)tmp[0] >= 0x80);
        if (tn == 0) {
            /* removed character: stays inside the word */
        } else if (!is_letter) {
            if (word_ascii && word_conf)
                o->homoglyph_words++;
            word_ascii = word_conf = 0;
        } else if (ascii == 2) {
            word_conf = 1; /* accented Latin (qué) is not a disguise; Cyrillic а is */
        } else if (c < 0x80) {
            word_ascii = 1;
        }
        /* Collapse whitespace runs. */
        if (tn == 1 && tmp[0] == ' ' && (b->n == 0 || b->t[b->n - 1] == ' '))
            continue;
        if (tn && phx_norm_push(b, tmp, tn, (size_t)at) < 0)
            return -1;
    }
    if (word_ascii && word_conf)
        o->homoglyph_words++;
    return 0;
}

/* Byte classes of folded text for the leetspeak and joining passes, one look-up per byte. */
enum { PHX_NORM_C_ALPHA = 1, PHX_NORM_C_ALNUM = 2, PHX_NORM_C_LEET = 4 };
#define PHX_NORM_C_LETTER (PHX_NORM_C_ALPHA | PHX_NORM_C_ALNUM)
#define PHX_NORM_C_LDIGIT (PHX_NORM_C_ALNUM | PHX_NORM_C_LEET)
static const unsigned char phx_norm_cls[256] = {
    ['a' ... 'z'] = PHX_NORM_C_LETTER, ['0'] = PHX_NORM_C_LDIGIT,
    ['1'] = PHX_NORM_C_LDIGIT,         ['2'] = PHX_NORM_C_ALNUM,
    ['3'] = PHX_NORM_C_LDIGIT,         ['4'] = PHX_NORM_C_LDIGIT,
    ['5'] = PHX_NORM_C_LDIGIT,         ['6'] = PHX_NORM_C_ALNUM,
    ['7'] = PHX_NORM_C_LDIGIT,         ['8'] = PHX_NORM_C_ALNUM,
    ['9'] = PHX_NORM_C_ALNUM,          [0x80 ... 0xFF] = PHX_NORM_C_ALNUM,
    ['!'] = PHX_NORM_C_LEET,           ['|'] = PHX_NORM_C_LEET,
    ['@'] = PHX_NORM_C_LEET,           ['$'] = PHX_NORM_C_LEET,
    ['+'] = PHX_NORM_C_LEET,
};

static int phx_norm_alpha(char c)
{
    return phx_norm_cls[(unsigned char)c] & PHX_NORM_C_ALPHA;
}

static int phx_norm_alnum(char c)
{
    return phx_norm_cls[(unsigned char)c] & PHX_NORM_C_ALNUM;
}

/* a letter, a digit or a leetspeak symbol */
static int phx_norm_leetish(char c)
{
    return phx_norm_cls[(unsigned char)c] & (PHX_NORM_C_ALNUM | PHX_NORM_C_LEET);
}

/* The letter a leetspeak character stands for, 0 for the rest (a table: looked up per byte). */
static const char phx_norm_leet_tab[256] = {
    ['0'] = 'o', ['1'] = 'i', ['!'] = 'i', ['|'] = 'i', ['3'] = 'e', ['4'] = 'a',
    ['@'] = 'a', ['5'] = 's', ['$'] = 's', ['7'] = 't', ['+'] = 't',
};

static char phx_norm_leet_char(char c)
{
    return phx_norm_leet_tab[(unsigned char)c];
}

/* Pass 2: leetspeak inside words. A token is a run of letters, digits and leet symbols; it is
 * folded when it has at least two letters and no more leet characters than letters, and a
 * symbol only counts when letters or digits sit on both sides ("h3ll0" yes, "2024" and
 * "hello!" no). A token holding a digit that stands for no letter (2, 6, 8, 9) is a name with
 * a number ("base64", "sha256", "utf8"), not leetspeak: folding it would turn "base64" into
 * "base6a", which no detector's vocabulary knows. */
static void phx_norm_leet_pass(phx_safety_norm *o, char *t, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (!phx_norm_leetish(t[i])) {
            i++;
            continue;
        }
        size_t s = i;
        int letters = 0, leet = 0, number = 0;
        while (i < n && phx_norm_leetish(t[i])) {
            if (phx_norm_alpha(t[i]))
                letters++;
            else if (phx_norm_leet_char(t[i]))
                leet++;
            else if (t[i] >= '0' && t[i] <= '9')
                number = 1;
            i++;
        }
        if (letters < 2 || leet == 0 || leet > letters || number)
            continue;
        for (size_t k = s; k < i; k++) {
            char r = phx_norm_leet_char(t[k]);
            if (!r)
                continue;
            int digit = t[k] >= '0' && t[k] <= '9';
            if (!digit && (k == s || k + 1 >= i || !phx_norm_leetish(t[k - 1]) ||
                           !phx_norm_leetish(t[k + 1])))
                continue;
            t[k] = r;
            o->leet++;
        }
    }
}

/* Pass 3: join runs of at least three single letters separated by short separators
 * ("i g n o r e", "i-g-n-o-r-e"). Word breaks inside a run are lost ("ignoreall"); the
 * detectors split joined ranges into words again with their own vocabulary. */
static int phx_norm_join_pass(phx_safety_norm *o, phx_norm_buf *in, phx_norm_buf *out)
{
    const char *t = in->t;
    size_t n = in->n, i = 0;
    while (i < n) {
        /* A run starts with a one-letter word: copy everything up to the next one at once. */
        size_t c = i;
        while (c < n && !(phx_norm_alpha(t[c]) && (c == 0 || !phx_norm_alnum(t[c - 1])) &&
                          (c + 1 >= n || !phx_norm_alnum(t[c + 1]))))
            c++;
        if (c > i) {
            if (out->n + (c - i) + 1 > out->cap && phx_norm_reserve(out, c - i) < 0)
                return -1;
            memcpy(out->t + out->n, t + i, c - i);
            memcpy(out->m + out->n, in->m + i, (c - i) * sizeof(uint32_t));
            out->n += c - i;
            i = c;
            continue;
        }
        /* Try a run starting at i: letter, sep, letter, sep, letter ... */
        size_t k = i, count = 0, end = i;
        if (phx_norm_alpha(t[i]) && (i == 0 || !phx_norm_alnum(t[i - 1]))) {
            while (k < n && phx_norm_alpha(t[k]) && (k + 1 >= n || !phx_norm_alnum(t[k + 1]))) {
                count++;
                end = k + 1;
                size_t s = end, m = s; /* the separators after this letter */
                while (m < n && !phx_norm_alnum(t[m]) && m - s < 3 && t[m] != '\n')
                    m++;
                if (m == s || m >= n || !phx_norm_alpha(t[m]))
                    break;
                k = m;
            }
        }
        if (count >= 3) {
            size_t rs = out->n;
            for (size_t p = i; p < end; p++)
                if (phx_norm_alpha(t[p]) && phx_norm_push(out, &t[p], 1, in->m[p]) < 0)
                    return -1;
            phx_safety_range *r = realloc(o->joined, (size_t)(o->njoined + 1) * sizeof(*r));
            if (!r)
                return -1;
            o->joined = r;
            o->joined[o->njoined].start = rs;
            o->joined[o->njoined++].end = out->n;
            o->joined_runs++;
            i = end;
            continue;
        }
        if (phx_norm_push(out, &t[i], 1, in->m[i]) < 0)
            return -1;
        i++;
    }
    return 0;
}

int phx_safety_normalize(const char *src, size_t len, phx_safety_norm *o)
{
    memset(o, 0, sizeof(*o));
    pthread_once(&phx_norm_once, phx_norm_init);
    phx_norm_buf a = {0}, b = {0};
    /* folded text is rarely longer than the source: one allocation in the common case */
    if (phx_norm_reserve(&a, len + 16) < 0)
        goto err;
    if (phx_norm_fold_pass(src, len, o, &a) < 0)
        goto err;
    phx_norm_leet_pass(o, a.t, a.n);
    if (phx_norm_reserve(&b, a.n + 16) < 0)
        goto err;
    if (phx_norm_join_pass(o, &a, &b) < 0)
        goto err;
    b.t[b.n] = '\0';
    b.m[b.n] = (uint32_t)len;
    o->text = b.t;
    o->src = src;
    o->map = b.m;
    o->len = b.n;
    free(a.t);
    free(a.m);
    return 0;
err:
    free(a.t);
    free(a.m);
    free(b.t);
    free(b.m);
    free(o->joined);
    memset(o, 0, sizeof(*o));
    return -1;
}

void phx_safety_norm_free(phx_safety_norm *n)
{
    free(n->text);
    free(n->map);
    free(n->joined);
    memset(n, 0, sizeof(*n));
}

int phx_safety_norm_breaks(const phx_safety_norm *n, size_t i)
{
    if (i >= n->len || n->text[i] != ' ' || !n->src)
        return 0;
    /* the run starts at the space's own source offset and ends where the next byte came from
     * (characters folding removed, such as zero-width ones, sit in between and count nothing) */
    int k = 0;
    for (size_t s = n->map[i]; s < n->map[i + 1]; s++)
        k += n->src[s] == '\n';
    return k;
}

int phx_safety_norm_changed(const phx_safety_norm *n)
{
    return n->invisible || n->bidi || n->tags || n->homoglyph_words || n->leet || n->joined_runs ||
           n->folded;
}
