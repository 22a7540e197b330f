/* provider.h -- the chain of OpenAI-compatible providers and the HTTP calls made to them.
 *
 * A provider is one OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp server, Ollama): a
 * base URL ending in /v1, a default chat model, an optional embedding model, a model map
 * (logical name a job uses -> the name this provider knows), an API key read from a file,
 * a per-request timeout, a bulkhead (max requests in flight) and a circuit breaker.
 *
 * A request walks the chain in order. On each provider that serves the requested model it is
 * tried up to 1 + max_retries times with exponential backoff and full jitter, honouring
 * Retry-After (and OpenAI's retry-after-ms); a provider whose breaker is open, whose bulkhead
 * is full, whose Retry-After is longer than the configured cap, or that keeps failing is left
 * for the next one. 4xx answers other than 408/409/429 are never retried: 401/403/404 mean
 * "not here" (wrong key, unknown model) and move on to the next provider, any other 4xx means
 * the request itself is bad and fails at once. Every attempt stays within the step's deadline.
 *
 * Keys: read from the provider's key file at start and again on SIGHUP
 * (phx_llm_chain_reload_keys), so keys rotate without a restart. A key only ever goes into the
 * Authorization header; it is never logged, never put in an error message, event or reply. */
#ifndef PHX_LLM_PROVIDER_H
#define PHX_LLM_PROVIDER_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>

#include "breaker.h"
#include "bulkhead.h"
#include "err.h"
#include "metrics.h"

enum phx_llm_cap { PHX_LLM_CAP_CHAT = 0, PHX_LLM_CAP_EMBED = 1 };

/* Largest provider answer accepted (embeddings of many texts are the big ones). */
#define PHX_LLM_MAX_RESPONSE (32L * 1024 * 1024)

typedef struct phx_llm_provider {
    char name[64];
    char *base_url;    /* without trailing '/' */
    char *model;       /* default chat model; "" = this provider does no chat */
    char *embed_model; /* default embedding model; "" = no embeddings */
    json_t *models;    /* logical name -> provider model name (object, maybe empty) */
    char *key_file;    /* "" = send no Authorization header (local servers) */
    long timeout_ms, max_concurrency, max_retries, max_tokens, embed_dim;
    double cost_prompt_1k, cost_completion_1k; /* estimated USD per 1000 tokens */

    pthread_mutex_t key_mu;
    char *key;             /* current key (NULL when key_file is ""), replaced on reload */
    phx_bulkhead bulkhead; /* "llm:NAME", max_concurrency requests in flight */
    phx_breaker breaker;
    phx_metric *m_state;
} phx_llm_provider;

/* Defaults for provider fields a provider spec leaves out (from PHX_LLM_* options). */
typedef struct phx_llm_defaults {
    long timeout_ms, max_concurrency, max_retries, max_tokens;
    long bulkhead_wait_ms; /* PHX_BULKHEAD_WAIT_MS */
    phx_breaker_cfg breaker;
} phx_llm_defaults;

typedef struct phx_llm_chain {
    phx_llm_provider *p;
    int n;
    long backoff_ms, backoff_max_ms; /* exponential backoff: base and cap of one wait */
    long retry_after_max_ms;         /* a longer Retry-After skips to the next provider */
} phx_llm_chain;

/* Add a provider from a spec object (the items of schema llm-providers.v1: name, base_url,
 * model, embed_model, models, api_key_file, timeout_ms, max_concurrency, max_retries,
 * max_tokens, embed_dim, cost_per_1k_prompt, cost_per_1k_completion). Reads the key file.
 * 0, or -1 with err (code "bad_config") naming the provider and the problem. */
int phx_llm_chain_add(phx_llm_chain *c, const json_t *spec, const phx_llm_defaults *d,
                      phx_err *err);
void phx_llm_chain_free(phx_llm_chain *c);
/* Re-read every key file (SIGHUP). A file that cannot be read keeps the previous key and is
 * reported (by path, never by content). Returns the number of failures. */
int phx_llm_chain_reload_keys(phx_llm_chain *c);
/* 1 when some provider can do cap at all. */
int phx_llm_chain_serves(const phx_llm_chain *c, int cap);
/* The model name provider p knows for the logical name alias (NULL/"" = its default), or NULL
 * when p does not serve it. */
const char *phx_llm_provider_model(const phx_llm_provider *p, int cap, const char *alias);

/* Checks a 2xx answer's body from provider p; 0 if usable, else -1 with why (a malformed answer
 * counts as a provider failure, so it is retried and falls back like a 5xx). */
typedef int (*phx_llm_check_fn)(const json_t *resp, const struct phx_llm_provider *p, void *arg,
                                char *why, size_t whylen);

typedef struct phx_llm_reply {
    json_t *resp; /* parsed answer body (owned by the caller) */
    const phx_llm_provider *provider;
    char model[128]; /* the provider model name used */
    int attempts;    /* HTTP requests sent in total */
} phx_llm_reply;

/* POST body (its "model" member is set per provider) to base_url + path on the chain. The
 * answer is checked with check(arg). deadline_mono_ms = 0 means no deadline beyond the
 * providers' timeouts. 0 with out filled, or -1 with err:
 *   no_provider          0  no provider does cap at all
 *   model_unavailable    0  no provider serves the requested model
 *   provider_rejected    0  a provider refused the request itself (400, 413, 422, ...)
 *   timeout              1  the deadline passed
 *   provider_unavailable 1  every provider failed, was open or full (message says which) */
int phx_llm_chain_post(phx_llm_chain *c, CURL *curl, int cap, const char *alias, const char *path,
                       json_t *body, int64_t deadline_mono_ms, phx_llm_check_fn check, void *arg,
                       phx_llm_reply *out, phx_err *err);

/* Exposed for tests. Retry-After value (delta-seconds or HTTP-date) -> ms from now, or -1. */
long phx_llm_retry_after_ms(const char *value, int64_t now_wall_ms);
/* Full jitter: uniform in [0, min(cap, base * 2^attempt)]. */
long phx_llm_backoff_ms(long base, long cap, int attempt);

#endif
