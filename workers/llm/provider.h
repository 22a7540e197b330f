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
#include "config.h"
#include "err.h"
#include "metrics.h"
#include "schema.h"

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

/* The provider settings a process reads from PHX_LLM_*: phx-llm, and phx-kb when it embeds
 * texts through the same providers (PHX_KB_EMBEDDER=llm). A process embeds this struct in its
 * configuration and lists PHX_LLM_PROVIDER_OPTS(its type, the member) in its option table, so
 * both read one set of variables with one meaning. */
typedef struct phx_llm_provider_cfg {
    char *base_url, *model, *key_file, *embed_model, *providers;
    long embed_dim_check, timeout_ms, max_concurrency, max_retries, backoff_ms, backoff_max_ms;
    long retry_after_max_ms, max_tokens, tenant_daily_tokens;
    long br_window_ms, br_min_requests, br_failure_pct, br_open_ms, br_probes;
} phx_llm_provider_cfg;

#define PHX_LLM_PROVIDER_OPTS(type, f)                                                             \
    {"PHX_LLM_BASE_URL",                                                                           \
     PHX_OPT_STR,                                                                                  \
     "",                                                                                           \
     0,                                                                                            \
     0,                                                                                            \
     offsetof(type, f.base_url),                                                                   \
     "OpenAI-compatible API base URL of the one provider of the simple configuration, e.g. "       \
     "https://api.openai.com/v1, http://host:8000/v1 (vLLM), http://host:8080/v1 (llama.cpp), "    \
     "http://host:11434/v1 (Ollama). Empty = no provider: llm.chat and llm.plan fail with "        \
     "no_provider, llm.embed uses the local lexical embedder."},                                   \
        {"PHX_LLM_MODEL",                                                                          \
         PHX_OPT_STR,                                                                              \
         "",                                                                                       \
         0,                                                                                        \
         0,                                                                                        \
         offsetof(type, f.model),                                                                  \
         "Chat model of the simple configuration (required with PHX_LLM_BASE_URL unless "          \
         "PHX_LLM_EMBED_MODEL is set)."},                                                          \
        {"PHX_LLM_API_KEY_FILE",                                                                   \
         PHX_OPT_STR,                                                                              \
         "",                                                                                       \
         0,                                                                                        \
         0,                                                                                        \
         offsetof(type, f.key_file),                                                               \
         "File holding the API key of the simple configuration (re-read on SIGHUP). Empty = no "   \
         "Authorization header (local servers)."},                                                 \
        {"PHX_LLM_EMBED_MODEL",                                                                    \
         PHX_OPT_STR,                                                                              \
         "",                                                                                       \
         0,                                                                                        \
         0,                                                                                        \
         offsetof(type, f.embed_model),                                                            \
         "Embedding model of the simple configuration; empty = llm.embed uses the local lexical "  \
         "embedder."},                                                                             \
        {"PHX_LLM_EMBED_DIM",                                                                      \
         PHX_OPT_INT,                                                                              \
         "0",                                                                                      \
         0,                                                                                        \
         65536,                                                                                    \
         offsetof(type, f.embed_dim_check),                                                        \
         "Expected dimension of the provider's embeddings (0 = any; answers of another "           \
         "dimension are treated as a provider failure)."},                                         \
        {"PHX_LLM_PROVIDERS",                                                                      \
         PHX_OPT_STR,                                                                              \
         "",                                                                                       \
         0,                                                                                        \
         0,                                                                                        \
         offsetof(type, f.providers),                                                              \
         "Path of a JSON file with the provider chain (schema llm-providers.v1: name, base_url, "  \
         "model, embed_model, models map, api_key_file, timeout_ms, max_concurrency, "             \
         "max_retries, "                                                                           \
         "max_tokens, embed_dim, cost_per_1k_*). Replaces PHX_LLM_BASE_URL/MODEL/API_KEY_FILE."},  \
        {"PHX_LLM_TIMEOUT_MS",                                                                     \
         PHX_OPT_INT,                                                                              \
         "60000",                                                                                  \
         100,                                                                                      \
         600000,                                                                                   \
         offsetof(type, f.timeout_ms),                                                             \
         "Default timeout of one request to a provider (also bounded by the step's deadline)."},   \
        {"PHX_LLM_MAX_CONCURRENCY",                                                                \
         PHX_OPT_INT,                                                                              \
         "16",                                                                                     \
         1,                                                                                        \
         10000,                                                                                    \
         offsetof(type, f.max_concurrency),                                                        \
         "Default bulkhead: requests in flight to one provider from this process; beyond it the "  \
         "next provider is used."},                                                                \
        {"PHX_LLM_MAX_RETRIES",                                                                    \
         PHX_OPT_INT,                                                                              \
         "2",                                                                                      \
         0,                                                                                        \
         10,                                                                                       \
         offsetof(type, f.max_retries),                                                            \
         "Default retries on one provider after a 429, 5xx, timeout or malformed answer."},        \
        {"PHX_LLM_BACKOFF_MS",                                                                     \
         PHX_OPT_INT,                                                                              \
         "250",                                                                                    \
         1,                                                                                        \
         60000,                                                                                    \
         offsetof(type, f.backoff_ms),                                                             \
         "Base of the exponential backoff between retries (full jitter)."},                        \
        {"PHX_LLM_BACKOFF_MAX_MS",                                                                 \
         PHX_OPT_INT,                                                                              \
         "8000",                                                                                   \
         1,                                                                                        \
         600000,                                                                                   \
         offsetof(type, f.backoff_max_ms),                                                         \
         "Cap of one backoff wait."},                                                              \
        {"PHX_LLM_RETRY_AFTER_MAX_MS",                                                             \
         PHX_OPT_INT,                                                                              \
         "30000",                                                                                  \
         0,                                                                                        \
         600000,                                                                                   \
         offsetof(type, f.retry_after_max_ms),                                                     \
         "A Retry-After longer than this moves on to the next provider instead of waiting."},      \
        {"PHX_LLM_MAX_TOKENS",                                                                     \
         PHX_OPT_INT,                                                                              \
         "8192",                                                                                   \
         1,                                                                                        \
         10000000,                                                                                 \
         offsetof(type, f.max_tokens),                                                             \
         "Default per-model limit on max_tokens (a request above it is invalid_input)."},          \
        {"PHX_LLM_TENANT_DAILY_TOKENS",                                                            \
         PHX_OPT_INT,                                                                              \
         "0",                                                                                      \
         0,                                                                                        \
         4000000000000L,                                                                           \
         offsetof(type, f.tenant_daily_tokens),                                                    \
         "Default token budget per tenant per UTC day (0 = unlimited); a tenant's own limit in "   \
         "Redis key phx:llm:budget:{TENANT}:limit overrides it."},                                 \
        {"PHX_LLM_BREAKER_WINDOW_MS",                                                              \
         PHX_OPT_INT,                                                                              \
         "30000",                                                                                  \
         100,                                                                                      \
         3600000,                                                                                  \
         offsetof(type, f.br_window_ms),                                                           \
         "Circuit breaker: sliding window over which a provider's failure rate is measured."},     \
        {"PHX_LLM_BREAKER_MIN_REQUESTS",                                                           \
         PHX_OPT_INT,                                                                              \
         "10",                                                                                     \
         1,                                                                                        \
         100000,                                                                                   \
         offsetof(type, f.br_min_requests),                                                        \
         "Circuit breaker: outcomes in the window before it may open."},                           \
        {"PHX_LLM_BREAKER_FAILURE_PCT",                                                            \
         PHX_OPT_INT,                                                                              \
         "50",                                                                                     \
         1,                                                                                        \
         100,                                                                                      \
         offsetof(type, f.br_failure_pct),                                                         \
         "Circuit breaker: failure percentage in the window that opens it."},                      \
        {"PHX_LLM_BREAKER_OPEN_MS",                                                                \
         PHX_OPT_INT,                                                                              \
         "10000",                                                                                  \
         10,                                                                                       \
         3600000,                                                                                  \
         offsetof(type, f.br_open_ms),                                                             \
         "Circuit breaker: how long it stays open (jittered +-20%) before half-open probes."},     \
    {                                                                                              \
        "PHX_LLM_BREAKER_PROBES", PHX_OPT_INT, "2", 1, 100, offsetof(type, f.br_probes),           \
            "Circuit breaker: concurrent half-open probes, and successes needed to close."         \
    }

/* Build chain c from PHX_LLM_PROVIDERS (validated against llm-providers.v1 in set) or the
 * simple PHX_LLM_BASE_URL/MODEL/EMBED_MODEL variables; no provider at all is not an error (c
 * stays empty). 0, or -1 with err (code "bad_config"). */
int phx_llm_chain_build(phx_llm_chain *c, const phx_llm_provider_cfg *cfg, long bulkhead_wait_ms,
                        const phx_schema_set *set, phx_err *err);

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
