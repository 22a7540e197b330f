/* normalize.h -- fold text into the form the detectors read, remembering where each byte came
 * from.
 *
 * Attackers hide words from keyword matchers by changing how they are written, not what they
 * say: fullwidth or mathematical letters, Cyrillic look-alikes, zero-width joiners inside a
 * word, text hidden in Unicode tag characters, "1gn0r3", "i g n o r e". Detectors therefore
 * never see the caller's bytes; they see this folded text:
 *   - Unicode compatibility decomposition (NFKD, ICU) with combining marks dropped: fullwidth,
 *     circled, mathematical and accented letters become their base letters;
 *   - confusables: a non-ASCII letter whose Unicode confusable skeleton (ICU uspoof, from
 *     Unicode's confusables.txt) is an ASCII letter or digit becomes that letter;
 *   - zero-width, bidi-control and other invisible format characters removed (and counted,
 *     because invisible text is itself a finding); Unicode tag characters (U+E0020..E007E)
 *     turned back into the ASCII they smuggle;
 *   - case folding; every run of whitespace becomes one space;
 *   - leetspeak digits and symbols inside words ("h4ck3r" -> "hacker");
 *   - spaced-out or punctuation-split letters ("i g n o r e", "i.g.n.o.r.e") joined; the
 *     joined ranges are listed so a detector can split them into words again.
 * Every output byte maps back to the byte offset of the source character it came from, so a
 * finding in folded text reports a span of the original text.
 *
 * Thread-safe: the per-code-point folding results are cached in a process-wide table filled
 * lazily with atomic stores (the computation is deterministic, so a race only repeats work). */
#ifndef PHX_SAFETY_NORMALIZE_H
#define PHX_SAFETY_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

typedef struct phx_safety_range {
    size_t start, end; /* in folded text */
} phx_safety_range;

typedef struct phx_safety_norm {
    char *text;    /* folded text, NUL-terminated (valid UTF-8) */
    size_t len;    /* bytes in text */
    uint32_t *map; /* map[i] = source offset of text[i]; map[len] = source length */
    /* What folding had to undo (counts of code points / words). */
    int invisible, bidi, tags, homoglyph_words, folded, leet, joined_runs;
    /* Source span covering the invisible / bidi / tag characters (valid when count > 0). */
    size_t inv_start, inv_end, bidi_start, bidi_end, tag_start, tag_end;
    phx_safety_range *joined; /* ranges of text made by joining spaced-out letters */
    int njoined;
    /* The source bytes (not owned: valid as long as the caller's text is). Folding turns every
     * whitespace run into one space, so a detector that needs what the run held (a line break
     * separates the lines of a document) looks here through the map. */
    const char *src;
} phx_safety_norm;

/* Fold len bytes of src (invalid UTF-8 bytes become spaces; at most 4 GiB, offsets are 32-bit).
 * 0, or -1 when out of memory. */
int phx_safety_normalize(const char *src, size_t len, phx_safety_norm *out);
void phx_safety_norm_free(phx_safety_norm *n);
/* The number of line breaks in the source whitespace that folded byte i (a space) stands for:
 * 0 for none, 2 or more for a blank line. */
int phx_safety_norm_breaks(const phx_safety_norm *n, size_t i);

/* 1 when folding changed more than case and whitespace (something was being hidden or
 * disguised, or at least written unusually). */
int phx_safety_norm_changed(const phx_safety_norm *n);

#endif
