/* words.h -- words of folded text and the phrase patterns detectors match against them.
 *
 * Detectors score *phrases*, not keywords: "ignore ~3 previous|prior|above instruction*"
 * matches "ignore all of the previous instructions" but not "ignore the noise in this photo".
 * Pattern syntax, one pattern per string:
 *   - words separated by spaces; "a|b|c" is a choice; "instruct*" matches any word starting
 *     with "instruct" (stems need at least 3 letters);
 *   - "~N" before a word lets up to N arbitrary words sit in front of it.
 * Words are runs of letters and digits of the folded text (apostrophes dropped: "don't" is
 * "dont"). A word made by joining spaced-out letters ("ignoreallprevious") is split again into
 * the patterns' own vocabulary, longest word first, so spacing tricks still match.
 *
 * A compiled set is read-only and may be shared by threads. */
#ifndef PHX_SAFETY_WORDS_H
#define PHX_SAFETY_WORDS_H

#include <stddef.h>
#include <stdint.h>

#include "normalize.h"

typedef struct phx_safety_tok {
    uint32_t off; /* word bytes at words.buf + off */
    uint16_t len;
    uint32_t hash;     /* of the word, to compare against pattern words cheaply */
    size_t start, end; /* span in folded text */
} phx_safety_tok;

typedef struct phx_safety_phrases phx_safety_phrases;

typedef struct phx_safety_words {
    char *buf;
    phx_safety_tok *t;
    int n, cap;
    size_t blen, bcap;
    /* per word, the pattern elements it satisfies (a bitset owned by the phrase set, NULL for
     * none), filled by a split with a vocabulary so matching only tests bits */
    const uint64_t **cls;
    const phx_safety_phrases *clsof;
} phx_safety_words;

/* The hash a split stores in phx_safety_tok.hash for the word s[0..n) (for detectors that keep
 * word lists of their own). */
uint32_t phx_safety_word_hash(const char *s, size_t n);

/* Compile n patterns. NULL + err (naming the pattern) on a syntax error or out of memory. */
phx_safety_phrases *phx_safety_phrases_compile(const char *const *patterns, int n, char *err,
                                               size_t errlen);
void phx_safety_phrases_free(phx_safety_phrases *p);

/* Split folded text into words; vocab (may be NULL) splits joined runs. 0 or -1 (memory). */
int phx_safety_words_split(const phx_safety_norm *n, const phx_safety_phrases *vocab,
                           phx_safety_words *out);
void phx_safety_words_free(phx_safety_words *w);

/* Call cb for every (pattern, start word) that matches, with the first and last word index.
 * Returns the number of matches. */
typedef void (*phx_safety_match_fn)(void *arg, int pattern, int first, int last);
int phx_safety_phrases_match(const phx_safety_phrases *p, const phx_safety_words *w,
                             phx_safety_match_fn cb, void *arg);

/* 1 when word i satisfies the first element of pattern pat of p (for a one-word pattern: the
 * word is one of its words). Costs one bit test when w was split with p as its vocabulary. */
int phx_safety_words_is(const phx_safety_phrases *p, const phx_safety_words *w, int i, int pat);

/* 1 when word i satisfies the first element of any pattern in [pat0, pat1) (0 <= pat0 < pat1
 * <= the number of patterns): a quick filter before testing them one by one. Only for words
 * split with p as their vocabulary (w->cls set). Inline because it runs for every classified
 * word: the first element of pattern k is bit k of a word's class. */
static inline int phx_safety_words_any(const phx_safety_words *w, int i, int pat0, int pat1)
{
    const uint64_t *c = w->cls ? w->cls[i] : NULL;
    if (!c)
        return 0;
    for (int k = pat0 >> 6; k <= (pat1 - 1) >> 6; k++) {
        uint64_t m = ~0ull;
        if (k == pat0 >> 6)
            m &= ~0ull << (pat0 & 63);
        if (k == (pat1 - 1) >> 6 && ((pat1 - 1) & 63) != 63)
            m &= (1ull << (((pat1 - 1) & 63) + 1)) - 1;
        if (c[k] & m)
            return 1;
    }
    return 0;
}

/* Word i satisfies no pattern element from now on (a detector ruled its sense out). Only for
 * words split with a vocabulary. */
void phx_safety_words_drop(phx_safety_words *w, int i);

#endif
