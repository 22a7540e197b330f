/* lexical.h -- the local embedder: a deterministic *lexical* embedding, not a semantic one.
 *
 * Used by llm.embed when no remote embedding provider is configured, so kb.* and similarity
 * steps work out of the box. It is honest about what it is: signed feature hashing (the
 * "hashing trick") of word unigrams, word bigrams and character trigrams of each word,
 * L2-normalised. Texts that share words and word pieces get a high cosine similarity;
 * synonyms with no shared letters do not. It is never all zeros: a text with no word
 * characters is embedded from its raw character trigrams, and an empty text is refused by
 * llm.embed before it gets here.
 *
 * Features: lowercased ASCII words (bytes >= 0x80 count as word characters, so UTF-8 words stay
 * whole), weight 1 per unigram, 0.5 per bigram, 0.25 per trigram of "<word>". Each feature
 * hashes (FNV-1a 64 with a per-type prefix) to an index and a sign; signs make collisions
 * cancel on average instead of piling up. */
#ifndef PHX_LLM_LEXICAL_H
#define PHX_LLM_LEXICAL_H

#include <stddef.h>

#define PHX_LLM_LEXICAL_MODEL "phoenix-lexical-hash-v1"

/* Fill v[0..dim) with the embedding of text[0..len). dim >= 1. */
void phx_llm_lexical_embed(const char *text, size_t len, double *v, int dim);
/* Cosine similarity of two vectors of dim (for tests and ranking). */
double phx_llm_cosine(const double *a, const double *b, int dim);

#endif
