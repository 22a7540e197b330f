/* guard.h -- the optional model guard: a second opinion on a text from a classifier model.
 *
 * The rule-based detectors are fast and explainable but miss what carries none of their
 * features (persuasion rewrites, adversarial suffixes). Where a policy names a guard, the text
 * is also sent to a guard model behind the same OpenAI-compatible providers the LLM pool uses
 * (workers/llm/provider.h: chain with fallback, retries, Retry-After, breakers, bulkheads),
 * with a Llama-Guard-style prompt: the model answers "safe", or "unsafe" and a line of
 * violated categories. The answer can only make a verdict stricter, never looser: a model can
 * be talked round by the very text it judges, the rules cannot. An answer in any other form is
 * a provider failure (retried, then the next provider), so a chatty model never counts as
 * "safe" by accident. */
#ifndef PHX_SAFETY_GUARD_H
#define PHX_SAFETY_GUARD_H

#include <curl/curl.h>
#include <stdint.h>

#include "../llm/provider.h"
#include "err.h"
#include "policy.h"
#include "safety.h"
#include "scan.h"

typedef struct phx_safety_guard_answer {
    int unsafe;
    char categories[96]; /* as the model listed them, e.g. "S1,S2" ("" when safe) */
    char provider[64], model[128];
    long ms; /* the call, retries included */
} phx_safety_guard_answer;

/* Ask chain's guard model (g->model on g->provider, or the chain) about len bytes of text of
 * the given role (cut to g->max_bytes), before deadline_mono_ms (0 = the providers' own
 * timeouts). 0 with *ans, or -1 with err (the provider chain's codes: no_provider,
 * model_unavailable, provider_unavailable, timeout, ...). */
int phx_safety_guard_ask(phx_llm_chain *chain, CURL *curl, const phx_safety_guard_policy *g,
                         phx_safety_role role, const char *text, size_t len,
                         int64_t deadline_mono_ms, phx_safety_guard_answer *ans, phx_err *err);

/* Apply pol's guard (if any) to a scan result of text: skipped for roles it does not judge and
 * for text the rules already block; an "unsafe" answer adds a finding (detector guard,
 * category model_unsafe, evidence = the categories) and raises the verdict to the policy's;
 * a guard that cannot answer adds guard_unavailable and blocks (fail_closed) or changes
 * nothing (fail_open). Returns the "guard" member of the scan output (NULL: no guard). */
json_t *phx_safety_guard_judge(phx_llm_chain *chain, CURL *curl, const phx_safety_policy *pol,
                               phx_safety_role role, const char *text, size_t len,
                               int64_t deadline_mono_ms, phx_safety_result *res);

/* Read a guard model's reply: 1 "unsafe" (cats = its category line, trimmed), 0 "safe", -1
 * anything else. Exposed for tests. */
int phx_safety_guard_parse(const char *content, char *cats, size_t catslen);

#endif
