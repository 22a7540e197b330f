/* lexical.c -- signed feature hashing embedder (see lexical.h); in lib/ because phx-llm (llm.embed)
 * and phx-kb (texts stored without vectors) must embed identically. */
#include "lexical.h"
#include "util.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define PHX_LEX_MAX_WORD 64

static uint64_t phx_lex_fnv(char type, const char *a, size_t alen, const char *b, size_t blen)
{
    static const char sep = 0x1f; /* "ab"+"c" != "a"+"bc" */
    uint64_t h = phx_fnv64(PHX_FNV64_SEED, &type, 1);
    h = phx_fnv64(h, a, alen);
    if (b)
        h = phx_fnv64(phx_fnv64(h, &sep, 1), b, blen);
    /* final avalanche (splitmix64 finaliser): FNV's low bits alone are weak for "% dim" */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

static void phx_lex_add(double *v, int dim, uint64_t h, double w)
{
    v[(h >> 1) % (uint64_t)dim] += (h & 1) ? w : -w;
}

static int phx_lex_wordch(unsigned char c)
{
    return isalnum(c) || c >= 0x80;
}

/* Character trigrams of "<w>" (boundaries marked, so prefixes and suffixes count). */
static void phx_lex_trigrams(double *v, int dim, const char *w, size_t n, double weight)
{
    char buf[PHX_LEX_MAX_WORD + 2];
    buf[0] = '<';
    memcpy(buf + 1, w, n);
    buf[n + 1] = '>';
    for (size_t i = 0; i + 3 <= n + 2; i++)
        phx_lex_add(v, dim, phx_lex_fnv('c', buf + i, 3, NULL, 0), weight);
}

void phx_llm_lexical_embed(const char *text, size_t len, double *v, int dim)
{
    char prev[PHX_LEX_MAX_WORD], cur[PHX_LEX_MAX_WORD];
    size_t plen = 0, i = 0;
    int words = 0;
    memset(v, 0, sizeof(double) * (size_t)dim);
    while (i < len) {
        while (i < len && !phx_lex_wordch((unsigned char)text[i]))
            i++;
        size_t n = 0;
        while (i < len && phx_lex_wordch((unsigned char)text[i])) {
            if (n < PHX_LEX_MAX_WORD)
                cur[n++] = (char)tolower((unsigned char)text[i]);
            i++;
        }
        if (!n)
            break;
        words++;
        phx_lex_add(v, dim, phx_lex_fnv('w', cur, n, NULL, 0), 1.0);
        if (plen)
            phx_lex_add(v, dim, phx_lex_fnv('b', prev, plen, cur, n), 0.5);
        phx_lex_trigrams(v, dim, cur, n, 0.25);
        memcpy(prev, cur, n);
        plen = n;
    }
    if (!words) /* only punctuation/space: its raw characters are all there is */
        for (size_t k = 0; k < len; k++)
            phx_lex_add(v, dim, phx_lex_fnv('r', text + k, len - k < 3 ? len - k : 3, NULL, 0),
                        1.0);
    double norm = 0;
    for (int k = 0; k < dim; k++)
        norm += v[k] * v[k];
    if (norm == 0) {
        /* Everything cancelled out (possible with tiny dims): a fixed unit vector is still a
         * truthful "no lexical signal", and never the zero vector. */
        v[0] = 1.0;
        return;
    }
    norm = sqrt(norm);
    for (int k = 0; k < dim; k++)
        v[k] /= norm;
}

double phx_llm_cosine(const double *a, const double *b, int dim)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < dim; i++) {
        ab += a[i] * b[i];
        aa += a[i] * a[i];
        bb += b[i] * b[i];
    }
    return aa > 0 && bb > 0 ? ab / (sqrt(aa) * sqrt(bb)) : 0.0;
}
