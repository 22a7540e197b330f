/* decode.c -- encoded runs inside text (see decode.h).
 *
 * Each finder recognises its encoding by shape (alphabet, minimum length, markers), decodes,
 * and keeps the result only when it is plausible text. Decoded text is searched again for
 * nested encodings (base64 of hex of ...) up to the depth limit; every nested run reports the
 * outermost span, because offsets inside decoded bytes mean nothing to the caller. */
#include "decode.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHX_DEC_MIN_B64 16 /* shorter runs are words and ids more often than payloads */
#define PHX_DEC_MIN_HEX 16

typedef struct phx_dec_ctx {
    phx_safety_segments *out;
    int max_depth;
    size_t max_bytes;
} phx_dec_ctx;

static int phx_dec_run(phx_dec_ctx *c, const char *text, size_t len, int depth, size_t ostart,
                       size_t oend);

/* Plausible text: valid UTF-8, >= 85% printable, at least 3 letters. */
static int phx_dec_is_text(const unsigned char *s, size_t n)
{
    size_t bad = 0, letters = 0;
    for (size_t i = 0; i < n;) {
        unsigned char b = s[i];
        size_t k = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        if (k == 0 || i + k > n)
            return 0;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
        if (k == 1) {
            if ((b < 0x20 && b != '\n' && b != '\r' && b != '\t') || b == 0x7F)
                bad++;
            if ((b | 0x20) >= 'a' && (b | 0x20) <= 'z')
                letters++;
        } else {
            letters++;
        }
        i += k;
    }
    return n > 0 && letters >= 3 && bad * 100 <= n * 15;
}

static int phx_dec_add(phx_dec_ctx *c, unsigned char *buf, size_t n, const char *enc, int depth,
                       size_t start, size_t end)
{
    phx_safety_segments *o = c->out;
    if (!phx_dec_is_text(buf, n) || o->n >= PHX_SAFETY_MAX_SEGMENTS ||
        o->total + n > c->max_bytes) {
        free(buf);
        return 0;
    }
    if (o->n == o->cap) {
        int cap = o->cap ? o->cap * 2 : 4;
        phx_safety_segment *v = realloc(o->v, (size_t)cap * sizeof(*v));
        if (!v) {
            free(buf);
            return -1;
        }
        o->v = v;
        o->cap = cap;
    }
    buf[n] = '\0';
    phx_safety_segment *s = &o->v[o->n++];
    memset(s, 0, sizeof(*s));
    s->text = (char *)buf;
    s->len = n;
    s->start = start;
    s->end = end;
    s->depth = depth;
    snprintf(s->encoding, sizeof(s->encoding), "%s", enc);
    o->total += n;
    if (depth < c->max_depth)
        return phx_dec_run(c, s->text, n, depth + 1, start, end);
    return 0;
}

/* base64 digit values (standard and URL alphabets), -1 elsewhere; built once. */
static signed char phx_dec_b64tab[256];
static pthread_once_t phx_dec_once = PTHREAD_ONCE_INIT;

static void phx_dec_b64init(void)
{
    for (int c = 0; c < 256; c++) {
        int v = -1;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+' || c == '-')
            v = 62;
        else if (c == '/' || c == '_')
            v = 63;
        phx_dec_b64tab[c] = (signed char)v;
    }
}

static inline int phx_dec_b64val(unsigned char ch)
{
    return phx_dec_b64tab[ch];
}

static int phx_dec_hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* base64 (standard or URL alphabet, padding optional) and plain hex runs. */
static int phx_dec_runs(phx_dec_ctx *c, const char *t, size_t len, int depth, size_t os, size_t oe)
{
    size_t i = 0;
    while (i < len) {
        if (phx_dec_b64val((unsigned char)t[i]) < 0) {
            i++;
            continue;
        }
        size_t s = i;
        while (i < len && phx_dec_b64val((unsigned char)t[i]) >= 0)
            i++;
        size_t n = i - s;
        while (i < len && t[i] == '=')
            i++;
        if (n < PHX_DEC_MIN_HEX && n < PHX_DEC_MIN_B64)
            continue; /* most runs are words, too short for either: skip the letter mix */
        int hex = 1, upper = 0, lower = 0, digit = 0;
        for (size_t k = s; k < s + n; k++) {
            unsigned char ch = (unsigned char)t[k];
            hex &= phx_dec_hexval(ch) >= 0;
            upper |= ch >= 'A' && ch <= 'Z';
            lower |= ch >= 'a' && ch <= 'z';
            digit |= ch >= '0' && ch <= '9';
        }
        size_t ss = depth == 1 ? s : os, se = depth == 1 ? i : oe;
        if (hex && n >= PHX_DEC_MIN_HEX && n % 2 == 0 && digit) {
            unsigned char *b = malloc(n / 2 + 1);
            if (!b)
                return -1;
            for (size_t k = 0; k < n / 2; k++)
                b[k] = (unsigned char)(phx_dec_hexval((unsigned char)t[s + 2 * k]) * 16 +
                                       phx_dec_hexval((unsigned char)t[s + 2 * k + 1]));
            if (phx_dec_add(c, b, n / 2, "hex", depth, ss, se) < 0)
                return -1;
        } else if (n >= PHX_DEC_MIN_B64 && (upper + lower + digit) >= 2) {
            unsigned char *b = malloc(n * 3 / 4 + 2);
            if (!b)
                return -1;
            size_t k = 0;
            uint32_t acc = 0;
            int bits = 0;
            for (size_t p = s; p < s + n; p++) {
                acc = (acc << 6) | (uint32_t)phx_dec_b64val((unsigned char)t[p]);
                bits += 6;
                if (bits >= 8) {
                    bits -= 8;
                    b[k++] = (unsigned char)(acc >> bits);
                    acc &= (1u << bits) - 1;
                }
            }
            if (phx_dec_add(c, b, k, "base64", depth, ss, se) < 0)
                return -1;
        }
    }
    return 0;
}

/* \xHH escapes and %HH URL-encoding: a run with at least 3 escapes, decoded as a whole. */
static int phx_dec_escapes(phx_dec_ctx *c, const char *t, size_t len, int depth, size_t os,
                           size_t oe, char mark)
{
    const char mc = mark == '%' ? '%' : '\\';
    size_t i = 0;
    while (i < len) {
        /* Only a run holding the mark can hold an escape: go to the start of the next one.
         * Escapes never contain a run separator, so runs are the maximal separator-free
         * stretches whichever way they are found. */
        const char *m = memchr(t + i, mc, len - i);
        if (!m)
            break;
        size_t r = (size_t)(m - t);
        while (r > i && t[r - 1] != ' ' && t[r - 1] != '\n' && t[r - 1] != '"' && t[r - 1] != '\'')
            r--;
        i = r;
        size_t s = i, count = 0, e = i;
        /* a run: escapes possibly separated by ordinary non-space characters */
        while (i < len && t[i] != ' ' && t[i] != '\n' && t[i] != '"' && t[i] != '\'') {
            if (mark == '%' && t[i] == '%' && i + 2 < len &&
                phx_dec_hexval((unsigned char)t[i + 1]) >= 0 &&
                phx_dec_hexval((unsigned char)t[i + 2]) >= 0) {
                count++;
                i += 3;
                e = i;
            } else if (mark == 'x' && t[i] == '\\' && i + 3 < len && t[i + 1] == 'x' &&
                       phx_dec_hexval((unsigned char)t[i + 2]) >= 0 &&
                       phx_dec_hexval((unsigned char)t[i + 3]) >= 0) {
                count++;
                i += 4;
                e = i;
            } else {
                i++;
            }
        }
        e = i; /* the whole run: text after the last escape belongs to it */
        if (count >= 3) {
            unsigned char *b = malloc(e - s + 1);
            if (!b)
                return -1;
            size_t k = 0;
            for (size_t p = s; p < e;) {
                if (mark == '%' && t[p] == '%' && p + 2 < e &&
                    phx_dec_hexval((unsigned char)t[p + 1]) >= 0 &&
                    phx_dec_hexval((unsigned char)t[p + 2]) >= 0) {
                    b[k++] = (unsigned char)(phx_dec_hexval((unsigned char)t[p + 1]) * 16 +
                                             phx_dec_hexval((unsigned char)t[p + 2]));
                    p += 3;
                } else if (mark == 'x' && t[p] == '\\' && p + 3 < e && t[p + 1] == 'x' &&
                           phx_dec_hexval((unsigned char)t[p + 2]) >= 0 &&
                           phx_dec_hexval((unsigned char)t[p + 3]) >= 0) {
                    b[k++] = (unsigned char)(phx_dec_hexval((unsigned char)t[p + 2]) * 16 +
                                             phx_dec_hexval((unsigned char)t[p + 3]));
                    p += 4;
                } else {
                    b[k++] = (unsigned char)(mark == '%' && t[p] == '+' ? ' ' : t[p]);
                    p++;
                }
            }
            if (phx_dec_add(c, b, k, mark == '%' ? "url" : "hex", depth, depth == 1 ? s : os,
                            depth == 1 ? e : oe) < 0)
                return -1;
        }
        if (i == s)
            i++;
    }
    return 0;
}

static const struct {
    const char *name;
    const char *text;
} phx_dec_entities[] = {
    {"lt", "<"}, {"gt", ">"}, {"amp", "&"}, {"quot", "\""}, {"apos", "'"}, {"nbsp", " "},
};

/* HTML entities: when the text holds at least 3, decode the span from the first to the last. */
static int phx_dec_html(phx_dec_ctx *c, const char *t, size_t len, int depth, size_t os, size_t oe)
{
    size_t first = len, last = 0;
    int count = 0;
    for (size_t i = 0; i + 3 < len; i++) {
        const char *amp = memchr(t + i, '&', len - 3 - i);
        if (!amp)
            break;
        i = (size_t)(amp - t);
        const char *semi = memchr(t + i, ';', len - i < 10 ? len - i : 10);
        if (!semi || semi - (t + i) < 3)
            continue;
        if (first == len)
            first = i;
        last = (size_t)(semi - t) + 1;
        count++;
    }
    if (count < 3)
        return 0;
    unsigned char *b = malloc(last - first + 1);
    if (!b)
        return -1;
    size_t k = 0;
    for (size_t p = first; p < last;) {
        const char *semi = t[p] == '&' ? memchr(t + p, ';', last - p < 10 ? last - p : 10) : NULL;
        unsigned long cp = 0;
        int ok = 0;
        if (semi && t[p + 1] == '#') {
            char *endp;
            int hx = t[p + 2] == 'x' || t[p + 2] == 'X';
            cp = strtoul(t + p + 2 + hx, &endp, hx ? 16 : 10);
            ok = endp == semi && cp > 0 && cp < 0x110000 && !(cp >= 0xD800 && cp < 0xE000);
        } else if (semi) {
            for (size_t e = 0; e < sizeof(phx_dec_entities) / sizeof(phx_dec_entities[0]); e++) {
                size_t en = strlen(phx_dec_entities[e].name);
                if ((size_t)(semi - t - (long)p - 1) == en &&
                    memcmp(t + p + 1, phx_dec_entities[e].name, en) == 0) {
                    cp = (unsigned char)phx_dec_entities[e].text[0];
                    ok = 1;
                }
            }
        }
        if (!ok) {
            b[k++] = (unsigned char)t[p++];
            continue;
        }
        if (cp < 0x80) {
            b[k++] = (unsigned char)cp;
        } else if (cp < 0x800) {
            b[k++] = (unsigned char)(0xC0 | (cp >> 6));
            b[k++] = (unsigned char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            b[k++] = (unsigned char)(0xE0 | (cp >> 12));
            b[k++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            b[k++] = (unsigned char)(0x80 | (cp & 0x3F));
        } else {
            b[k++] = (unsigned char)(0xF0 | (cp >> 18));
            b[k++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
            b[k++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            b[k++] = (unsigned char)(0x80 | (cp & 0x3F));
        }
        p = (size_t)(semi - t) + 1;
    }
    return phx_dec_add(c, b, k, "html", depth, depth == 1 ? first : os, depth == 1 ? last : oe);
}

void phx_safety_rot13(const char *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        if (ch >= 'a' && ch <= 'z')
            ch = (char)('a' + (ch - 'a' + 13) % 26);
        else if (ch >= 'A' && ch <= 'Z')
            ch = (char)('A' + (ch - 'A' + 13) % 26);
        out[i] = ch;
    }
    out[len] = '\0';
}

/* Share of words that are among the most common English function words. ROT13 turns English
 * into text with almost none, so "rot13 has many more than the text" marks a ROT13 run. */
#define PHX_DEC_K(a, b, c, d)                                                                      \
    ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

/* Is the word packed in k (up to 4 lower-case letters, zero-padded) a common function word? */
static int phx_dec_common(uint32_t k)
{
    switch (k) {
    case PHX_DEC_K('t', 'h', 'e', 0):
    case PHX_DEC_K('a', 'n', 'd', 0):
    case PHX_DEC_K('t', 'o', 0, 0):
    case PHX_DEC_K('o', 'f', 0, 0):
    case PHX_DEC_K('a', 0, 0, 0):
    case PHX_DEC_K('y', 'o', 'u', 0):
    case PHX_DEC_K('i', 's', 0, 0):
    case PHX_DEC_K('i', 'n', 0, 0):
    case PHX_DEC_K('t', 'h', 'a', 't'):
    case PHX_DEC_K('i', 't', 0, 0):
    case PHX_DEC_K('f', 'o', 'r', 0):
    case PHX_DEC_K('y', 'o', 'u', 'r'):
    case PHX_DEC_K('a', 'r', 'e', 0):
    case PHX_DEC_K('w', 'i', 't', 'h'):
    case PHX_DEC_K('t', 'h', 'i', 's'):
    case PHX_DEC_K('b', 'e', 0, 0):
    case PHX_DEC_K('o', 'n', 0, 0):
    case PHX_DEC_K('a', 'l', 'l', 0):
    case PHX_DEC_K('n', 'o', 't', 0):
    case PHX_DEC_K('o', 'r', 0, 0):
    case PHX_DEC_K('a', 's', 0, 0):
    case PHX_DEC_K('w', 'h', 'a', 't'):
    case PHX_DEC_K('i', 0, 0, 0):
        return 1;
    default:
        return 0;
    }
}

static double phx_dec_english(const char *t, size_t len, int *words)
{
    int w = 0, hit = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && !((t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'z'))
            i++;
        size_t s = i;
        while (i < len && (t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'z')
            i++;
        if (i == s)
            break;
        w++;
        if (i - s > 4) /* the common words have at most 4 letters */
            continue;
        /* the word is letters only, so | 0x20 is exact case folding */
        uint32_t k = 0;
        for (size_t q = 0; q < i - s; q++)
            k |= (uint32_t)(unsigned char)(t[s + q] | 0x20) << (8 * q);
        hit += phx_dec_common(k);
    }
    *words = w;
    return w ? (double)hit / w : 0;
}

static int phx_dec_rot13(phx_dec_ctx *c, const char *t, size_t len, int depth, size_t os, size_t oe)
{
    int w1, w2;
    if (len < 16 || phx_dec_english(t, len, &w1) > 0.08 || w1 < 5)
        return 0;
    char *r = malloc(len + 1);
    if (!r)
        return -1;
    phx_safety_rot13(t, len, r);
    if (phx_dec_english(r, len, &w2) < 0.2) {
        free(r);
        return 0;
    }
    return phx_dec_add(c, (unsigned char *)r, len, "rot13", depth, depth == 1 ? 0 : os,
                       depth == 1 ? len : oe);
}

/* Morse code: dots and dashes, letters separated by one space, words by "/", "|" or more
 * spaces. A letter's code of up to 6 elements is an index (a leading 1 bit, then dot = 0,
 * dash = 1); the table holds the international letters, digits and common punctuation. */
static char phx_dec_morsetab[128];

static void phx_dec_morseinit(void)
{
    static const char *const codes[] = {
        "a.-",    "b-...",   "c-.-.",   "d-..",    "e.",      "f..-.",   "g--.",
        "h....",  "i..",     "j.---",   "k-.-",    "l.-..",   "m--",     "n-.",
        "o---",   "p.--.",   "q--.-",   "r.-.",    "s...",    "t-",      "u..-",
        "v...-",  "w.--",    "x-..-",   "y-.--",   "z--..",   "0-----",  "1.----",
        "2..---", "3...--",  "4....-",  "5.....",  "6-....",  "7--...",  "8---..",
        "9----.", "..-.-.-", ",--..--", "?..--..", "'.----.", "!-.-.--", "/-..-.",
        "(-.--.", ")-.--.-", ":---...", ";-.-.-.", "=-...-",  "+.-.-.",  "\".-..-.",
    };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        unsigned idx = 1;
        for (const char *q = codes[i] + 1; *q; q++)
            idx = idx << 1 | (*q == '-');
        if (idx < sizeof(phx_dec_morsetab))
            phx_dec_morsetab[idx] = codes[i][0];
    }
}

static pthread_once_t phx_dec_morse_once = PTHREAD_ONCE_INIT;

/* Bytes a Morse run may contain. */
static inline int phx_dec_morse_byte(char ch)
{
    return ch == '.' || ch == '-' || ch == ' ' || ch == '/' || ch == '|' || ch == '\n';
}

/* Decode one run [s, e) of Morse bytes into out (at least e - s + 1 bytes). Returns the number
 * of bytes written, or 0 when the run is too short or too much of it is not Morse. */
static size_t phx_dec_morse_one(const char *s, const char *e, char *out)
{
    size_t o = 0;
    int letters = 0, bad = 0, spaces = 0;
    const char *p = s;
    while (p < e) {
        if (*p == '.' || *p == '-') {
            unsigned idx = 1;
            int n = 0;
            for (; p < e && (*p == '.' || *p == '-'); p++, n++)
                idx = idx << 1 | (*p == '-');
            char ch = n <= 6 ? phx_dec_morsetab[idx] : 0;
            if (ch) {
                letters++;
                out[o++] = ch;
            } else {
                bad++;
            }
            spaces = 0;
            continue;
        }
        /* a separator: one space ends a letter, more (or "/", "|", a line break) a word */
        int word = *p != ' ' || ++spaces == 2;
        if (word && o > 0 && out[o - 1] != ' ')
            out[o++] = ' ';
        p++;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    return letters >= 12 && bad * 10 <= letters ? o : 0;
}

static int phx_dec_morse(phx_dec_ctx *c, const char *t, size_t len, int depth, size_t os, size_t oe)
{
    pthread_once(&phx_dec_morse_once, phx_dec_morseinit);
    const char *end = t + len, *p = t;
    while (p < end) {
        /* every Morse run worth decoding has a dash: jump to the next one (memchr, so text
         * without dashes costs next to nothing), back up to the start of its run, which
         * begins at a dot or dash, and go on while the bytes can be Morse */
        const char *d = memchr(p, '-', (size_t)(end - p));
        if (!d)
            break;
        const char *s = d;
        while (s > p && phx_dec_morse_byte(s[-1]))
            s--;
        while (*s != '.' && *s != '-')
            s++;
        int elems = 0;
        for (p = s; p < end && phx_dec_morse_byte(*p); p++)
            elems += *p == '.' || *p == '-';
        if (elems < 20) /* too short for 12 letters: an ellipsis, a rule, a dash */
            continue;
        char *buf = malloc((size_t)(p - s) + 1);
        if (!buf)
            return -1;
        size_t n = phx_dec_morse_one(s, p, buf);
        int words;
        /* decoded text must read as English: dashes and dots in ASCII art decode to noise */
        if (n == 0 || phx_dec_english(buf, n, &words) < 0.2 || words < 3) {
            free(buf);
            continue;
        }
        size_t rs = depth == 1 ? (size_t)(s - t) : os, re = depth == 1 ? (size_t)(p - t) : oe;
        if (phx_dec_add(c, (unsigned char *)buf, n, "morse", depth, rs, re) < 0)
            return -1;
    }
    return 0;
}

static int phx_dec_run(phx_dec_ctx *c, const char *text, size_t len, int depth, size_t os,
                       size_t oe)
{
    if (phx_dec_runs(c, text, len, depth, os, oe) < 0 ||
        phx_dec_escapes(c, text, len, depth, os, oe, '%') < 0 ||
        phx_dec_escapes(c, text, len, depth, os, oe, 'x') < 0 ||
        phx_dec_html(c, text, len, depth, os, oe) < 0 ||
        phx_dec_rot13(c, text, len, depth, os, oe) < 0 ||
        phx_dec_morse(c, text, len, depth, os, oe) < 0)
        return -1;
    return 0;
}

int phx_safety_decode(const char *text, size_t len, int max_depth, size_t max_bytes,
                      phx_safety_segments *out)
{
    if (max_depth < 1)
        return 0;
    pthread_once(&phx_dec_once, phx_dec_b64init);
    phx_dec_ctx c = {out, max_depth, max_bytes};
    return phx_dec_run(&c, text, len, 1, 0, len);
}

void phx_safety_segments_free(phx_safety_segments *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->v[i].text);
    free(s->v);
    memset(s, 0, sizeof(*s));
}
