/* embed.h -- llm.embed: text embeddings.
 *
 * input  {"texts": [str, ...] (1..PHX_LLM_MAX_TEXTS non-empty strings), "model"?}
 * output {"vectors": [[...], ...] (one per text, in order, L2-normalised), "dim", "provider",
 *         "model", "kind": "remote" | "lexical", "usage": {"prompt_tokens"}}
 *
 * With an embedding provider configured (a provider with embed_model), the provider's vectors
 * are used after checking them: one per text, all of the same dimension (and of the provider's
 * embed_dim when configured), finite numbers, not all zero; a malformed answer is a provider
 * failure (retried, then the next provider). Without one, the local lexical embedder
 * (lexical.h) answers with provider "local" and kind "lexical" -- never fake zeros, and
 * never presented as semantic. */
#ifndef PHX_LLM_EMBED_H
#define PHX_LLM_EMBED_H

#include <jansson.h>

#include "err.h"
#include "llm.h"

json_t *phx_llm_embed_step(phx_llm_app *app, phx_llm_thread *t, const phx_llm_ctx *ctx,
                           const json_t *input, phx_err *err);

#endif
