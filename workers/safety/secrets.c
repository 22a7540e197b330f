/* secrets.c -- credential formats and entropy (see secrets.h).
 *
 * Formats are matched by hand-written scanners (prefix, alphabet, length) rather than regular
 * expressions: one pass, no backtracking, and the boundaries are explicit. */
#include "secrets.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct phx_sec_fmt {
    const char *prefix;
    const char *category;
    const char *alphabet; /* "A" = A-Z0-9, "a" = A-Za-z0-9, "-" = A-Za-z0-9_-, "x" = hex */
    int min, max;         /* length of the part after the prefix */
    double severity;
} phx_sec_fmt;

static const phx_sec_fmt phx_sec_fmts[] = {
    {"AKIA", "aws_access_key", "A", 16, 16, 0.9},
    {"ASIA", "aws_access_key", "A", 16, 16, 0.9},
    {"ghp_", "github_token", "a", 36, 36, 0.95},
    {"gho_", "github_token", "a", 36, 36, 0.95},
    {"ghu_", "github_token", "a", 36, 36, 0.95},
    {"ghs_", "github_token", "a", 36, 36, 0.95},
    {"ghr_", "github_token", "a", 36, 36, 0.95},
    {"github_pat_", "github_token", "-", 22, 255, 0.95},
    {"glpat-", "gitlab_token", "-", 20, 64, 0.95},
    {"xoxb-", "slack_token", "-", 10, 255, 0.9},
    {"xoxp-", "slack_token", "-", 10, 255, 0.9},
    {"xoxa-", "slack_token", "-", 10, 255, 0.9},
    {"xoxr-", "slack_token", "-", 10, 255, 0.9},
    {"xoxs-", "slack_token", "-", 10, 255, 0.9},
    {"sk-ant-", "anthropic_api_key", "-", 20, 255, 0.95},
    {"sk-proj-", "openai_api_key", "-", 20, 255, 0.95},
    {"sk-", "openai_api_key", "-", 32, 255, 0.9},
    {"AIza", "google_api_key", "-", 35, 35, 0.9},
    {"sk_live_", "stripe_key", "a", 16, 255, 0.95},
    {"rk_live_", "stripe_key", "a", 16, 255, 0.95},
    {"sk_test_", "stripe_key", "a", 16, 255, 0.6},
    {"SG.", "sendgrid_key", "-", 60, 80, 0.9},
    {"hf_", "huggingface_token", "a", 30, 40, 0.9},
    {"npm_", "npm_token", "a", 36, 36, 0.9},
    {"pypi-", "pypi_token", "-", 50, 255, 0.9},
};

/* Byte classes, one table look-up per byte for every scanner below. */
enum {
    PHX_SEC_UD = 1,    /* A-Z 0-9 */
    PHX_SEC_LO = 2,    /* a-z */
    PHX_SEC_PUNCT = 4, /* _ - . */
    PHX_SEC_HEX = 8,   /* 0-9 a-f A-F */
    PHX_SEC_WORD = 16, /* A-Z a-z 0-9 _ - */
    PHX_SEC_B64 = 32,  /* + / (with the '-' alphabet: what a random run is made of) */
};
#define PHX_SEC_UDH (PHX_SEC_UD | PHX_SEC_HEX | PHX_SEC_WORD)
#define PHX_SEC_LOH (PHX_SEC_LO | PHX_SEC_HEX | PHX_SEC_WORD)
static const unsigned char phx_sec_cls[256] = {
    ['0' ... '9'] = PHX_SEC_UDH,
    ['A' ... 'F'] = PHX_SEC_UDH,
    ['G' ... 'Z'] = PHX_SEC_UD | PHX_SEC_WORD,
    ['a' ... 'f'] = PHX_SEC_LOH,
    ['g' ... 'z'] = PHX_SEC_LO | PHX_SEC_WORD,
    ['_'] = PHX_SEC_PUNCT | PHX_SEC_WORD,
    ['-'] = PHX_SEC_PUNCT | PHX_SEC_WORD,
    ['.'] = PHX_SEC_PUNCT,
    ['+'] = PHX_SEC_B64,
    ['/'] = PHX_SEC_B64,
};

/* alphabet: "A" = A-Z0-9, "a" = A-Za-z0-9, "-" = A-Za-z0-9_-., anything else = hex */
static int phx_sec_in(char alphabet, unsigned char c)
{
    unsigned m = alphabet == 'A'   ? PHX_SEC_UD
                 : alphabet == 'a' ? PHX_SEC_UD | PHX_SEC_LO
                 : alphabet == '-' ? PHX_SEC_UD | PHX_SEC_LO | PHX_SEC_PUNCT
                                   : PHX_SEC_HEX;
    return (phx_sec_cls[c] & m) != 0;
}

static int phx_sec_word(unsigned char c)
{
    return (phx_sec_cls[c] & PHX_SEC_WORD) != 0;
}

double phx_safety_entropy(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    size_t cnt[256] = {0};
    for (size_t i = 0; i < n; i++)
        cnt[(unsigned char)s[i]]++;
    double h = 0;
    for (int i = 0; i < 256; i++)
        if (cnt[i]) {
            double p = (double)cnt[i] / (double)n;
            h -= p * log2(p);
        }
    return h;
}

static phx_safety_finding *phx_sec_add(phx_safety_findings *out, const char *cat, double sev,
                                       size_t s, size_t e, size_t ss, size_t se, const char *what,
                                       size_t n)
{
    phx_safety_finding *f = phx_safety_add(out, "secrets", cat, sev, se ? ss : s, se ? se : e);
    if (f) {
        f->redact = 1;
        f->via = se ? PHX_VIA_DECODED : PHX_VIA_RAW;
        snprintf(f->evidence, sizeof(f->evidence), "%s (%zu chars)", what, n);
    }
    return f;
}

/* First bytes of the format prefixes, for a one-lookup skip of every other position. */
static const unsigned char phx_sec_first[256] = {
    ['A'] = 1, ['g'] = 1, ['x'] = 1, ['s'] = 1, ['r'] = 1,
    ['S'] = 1, ['h'] = 1, ['n'] = 1, ['p'] = 1,
};

/* Known formats. */
static int phx_sec_formats(const char *t, size_t len, phx_safety_findings *out, size_t ss,
                           size_t se)
{
    int found = 0;
    for (size_t i = 0; i < len; i++) {
        if (i > 0 && phx_sec_word((unsigned char)t[i - 1])) {
            /* inside a word: no position up to the byte after it can start a key */
            while (i < len && phx_sec_word((unsigned char)t[i]))
                i++;
            continue;
        }
        if (!phx_sec_first[(unsigned char)t[i]])
            continue;
        for (size_t k = 0; k < sizeof(phx_sec_fmts) / sizeof(phx_sec_fmts[0]); k++) {
            const phx_sec_fmt *f = &phx_sec_fmts[k];
            /* compare in place: most candidates differ at the first or second byte */
            size_t pl = 0;
            while (f->prefix[pl] && i + pl < len && t[i + pl] == f->prefix[pl])
                pl++;
            if (f->prefix[pl])
                continue;
            size_t j = i + pl;
            while (j < len && j - i - pl < (size_t)f->max + 1 &&
                   phx_sec_in(f->alphabet[0], (unsigned char)t[j]))
                j++;
            size_t n = j - i - pl;
            if ((int)n < f->min || (int)n > f->max ||
                (j < len && phx_sec_word((unsigned char)t[j]) && f->alphabet[0] != '-'))
                continue;
            /* a real key is random: reject "sk-this-is-not-a-real-key-at-all-..." */
            if (phx_safety_entropy(t + i + pl, n) < 3.0)
                continue;
            phx_sec_add(out, f->category, f->severity, i, j, ss, se, f->category, j - i);
            found++;
            i = j;
            break;
        }
    }
    return found;
}

/* -----BEGIN ... PRIVATE KEY----- up to the matching END line. */
static int phx_sec_pem(const char *t, size_t len, phx_safety_findings *out, size_t ss, size_t se)
{
    int found = 0;
    const char *p = t, *end = t + len;
    while ((p = memmem(p, (size_t)(end - p), "-----BEGIN ", 11)) != NULL) {
        const char *eol =
            memmem(p, (size_t)(end - p) < 80 ? (size_t)(end - p) : 80, "PRIVATE KEY-----", 16);
        if (!eol) {
            p += 11;
            continue;
        }
        const char *stop = memmem(eol, (size_t)(end - eol), "-----END ", 9);
        const char *e = end;
        if (stop) {
            const char *close = memmem(stop + 9, (size_t)(end - stop - 9), "-----", 5);
            e = close ? close + 5 : end;
        }
        phx_sec_add(out, "private_key", 1.0, (size_t)(p - t), (size_t)(e - t), ss, se,
                    "PEM private key", (size_t)(e - p));
        found++;
        p = e;
    }
    return found;
}

/* JSON Web Tokens: eyJ<header>.eyJ<payload>.<signature> */
static int phx_sec_jwt(const char *t, size_t len, phx_safety_findings *out, size_t ss, size_t se)
{
    int found = 0;
    for (size_t i = 0; i + 10 < len; i++) {
        const char *p = memmem(t + i, len - i, "eyJ", 3);
        if (!p || (size_t)(p - t) + 10 >= len)
            break;
        i = (size_t)(p - t);
        if (i > 0 && phx_sec_word((unsigned char)t[i - 1]))
            continue;
        size_t j = i, dots = 0, part = 0;
        int ok = 1;
        while (j < len && (phx_sec_in('-', (unsigned char)t[j]))) {
            if (t[j] == '.') {
                if (part < 10)
                    ok = 0;
                dots++;
                part = 0;
            } else {
                part++;
            }
            j++;
        }
        if (ok && dots == 2 && part >= 10 && memcmp(t + i, "eyJ", 3) == 0) {
            phx_sec_add(out, "jwt", 0.8, i, j, ss, se, "JSON Web Token", j - i);
            found++;
        }
        i = j;
    }
    return found;
}

static const char *const phx_sec_names[] = {
    "password", "passwd",     "pwd",        "secret",        "token",       "api_key",
    "apikey",   "api-key",    "access_key", "secret_key",    "private_key", "client_secret",
    "auth",     "credential", "bearer",     "authorization", "session",     "aws_secret",
};

/* name = value / name: value / "name": "value", with a random-looking value. */
static int phx_sec_assign(const char *t, size_t len, phx_safety_findings *out, size_t ss, size_t se)
{
    int found = 0;
    /* Driven by the separators (rare) rather than by every position: find "=" or ":", then
     * look at the word in front of it. */
    for (size_t k = 0; k < len; k++) {
        if (t[k] != '=' && t[k] != ':')
            continue;
        size_t j = k;
        while (j > 0 && k - j < 4 && (t[j - 1] == ' ' || t[j - 1] == '"' || t[j - 1] == '\''))
            j--;
        size_t ws = j;
        while (ws > 0 && j - ws < 63 && phx_sec_word((unsigned char)t[ws - 1]))
            ws--;
        if (ws == j)
            continue;
        char word[64];
        for (size_t q = ws; q < j; q++)
            word[q - ws] = (char)(t[q] | 0x20);
        word[j - ws] = '\0';
        int named = 0;
        for (size_t q = 0; q < sizeof(phx_sec_names) / sizeof(phx_sec_names[0]) && !named; q++)
            named = strstr(word, phx_sec_names[q]) != NULL;
        if (!named)
            continue;
        k++;
        while (k < len && (t[k] == ' ' || t[k] == '"' || t[k] == '\''))
            k++;
        if (k + 6 < len && strncasecmp(t + k, "bearer ", 7) == 0)
            k += 7;
        size_t v = k;
        while (k < len && t[k] != ' ' && t[k] != '"' && t[k] != '\'' && t[k] != '\n' &&
               t[k] != ',' && t[k] != ';' && t[k] != '}' && t[k] != '&' && t[k] != '\r')
            k++;
        size_t n = k - v;
        if (n < 8 || n > 512)
            continue;
        /* placeholders and references are not secrets */
        if (t[v] == '<' || t[v] == '$' || t[v] == '{' || t[v] == '*' || t[v] == '%' ||
            strncasecmp(t + v, "your", 4) == 0 || strncasecmp(t + v, "xxx", 3) == 0 ||
            strncasecmp(t + v, "env", 3) == 0 || strncasecmp(t + v, "null", 4) == 0)
            continue;
        if (phx_safety_entropy(t + v, n) < 3.0)
            continue;
        phx_sec_add(out, "credential_assignment", 0.75, v, k, ss, se, "value of a secret name", n);
        found++;
    }
    return found;
}

/* Long random strings not caught above: mixed letters and digits, high entropy. */
static int phx_sec_entropy_runs(const char *t, size_t len, phx_safety_findings *out, size_t ss,
                                size_t se)
{
    int found = 0;
    const unsigned run = PHX_SEC_UD | PHX_SEC_LO | PHX_SEC_PUNCT | PHX_SEC_B64;
    for (size_t i = 0; i < len;) {
        if (!(phx_sec_cls[(unsigned char)t[i]] & run)) {
            i++;
            continue;
        }
        size_t s = i;
        while (i < len && ((phx_sec_cls[(unsigned char)t[i]] & run) || t[i] == '='))
            i++;
        size_t n = i - s;
        if (n < 32 || n > 1024)
            continue; /* most runs are words: the letter mix is only worth it for long ones */
        int up = 0, lo = 0, dg = 0;
        for (size_t k = s; k < i; k++) {
            unsigned char c = (unsigned char)t[k];
            up |= c >= 'A' && c <= 'Z';
            lo |= c >= 'a' && c <= 'z';
            dg |= c >= '0' && c <= '9';
        }
        if (!(up && lo && dg) || memchr(t + s, '/', n) || phx_safety_entropy(t + s, n) < 4.5)
            continue;
        /* already reported by a format rule? */
        int dup = 0;
        for (int k = 0; k < out->n; k++)
            if (strcmp(out->v[k].detector, "secrets") == 0 && out->v[k].start <= (se ? ss : s) &&
                out->v[k].end >= (se ? se : i))
                dup = 1;
        if (dup)
            continue;
        phx_sec_add(out, "high_entropy_string", 0.5, s, i, ss, se, "random-looking string", n);
        found++;
    }
    return found;
}

int phx_safety_secrets_scan(const char *text, size_t len, phx_safety_findings *out,
                            size_t span_start, size_t span_end)
{
    return phx_sec_pem(text, len, out, span_start, span_end) +
           phx_sec_formats(text, len, out, span_start, span_end) +
           phx_sec_jwt(text, len, out, span_start, span_end) +
           phx_sec_assign(text, len, out, span_start, span_end) +
           phx_sec_entropy_runs(text, len, out, span_start, span_end);
}
