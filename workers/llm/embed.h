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

/* Embed texts (a checked, non-empty array of strings) through the chain's embedding providers,
 * charging the tenant's and job's token budget (tenant_daily_tokens: the default daily limit,
 * 0 = none): the output of llm.embed with a provider, or NULL with err (phx_llm_chain_post's
 * codes, or a budget refusal). Also used by phx-kb, which embeds texts the same way. */
json_t *phx_llm_embed_remote(phx_llm_chain *chain, CURL *curl, phx_redis *r, const phx_llm_ctx *ctx,
                             long tenant_daily_tokens, const json_t *texts, const char *model,
                             phx_err *err);

json_t *phx_llm_embed_step(phx_llm_app *app, phx_llm_thread *t, const phx_llm_ctx *ctx,
                           const json_t *input, phx_err *err);

#endif
