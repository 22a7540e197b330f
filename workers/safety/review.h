/* review.h -- safety.review_plan: judge a plan (job steps) before any of it runs.
 *
 * Three checks:
 *   - forbidden kinds: a step whose kind the policy denies, globally (plan.deny_kinds) or for
 *     the principal (plan.principals.P.deny_kinds, or not in its allow_kinds);
 *   - dangerous chains: a sensitive sink (default exec.run, tool.http_fetch) that depends,
 *     directly or through other steps, on an untrusted source (default tool.*, kb.search) with
 *     no safety.scan step on that path: content an attacker can write would steer code or an
 *     outbound request unchecked;
 *   - URLs to private ranges: every string in a step's input that is a URL is checked like
 *     safety.scan role url (tool.http_fetch's "url" strictly, with resolution when the policy
 *     says so; other strings without resolution);
 *   - threat feeds: a tool.http_fetch step whose literal URL, host or address is on a feed
 *     (feeds.h), judged by the url role's `intel` action.
 * The output has the shape of a scan: verdict, score, findings (with "step" instead of a text
 * span). */
#ifndef PHX_SAFETY_REVIEW_H
#define PHX_SAFETY_REVIEW_H

#include <jansson.h>

#include "err.h"
#include "intel.h"
#include "policy.h"
#include "safety.h"

/* input {"steps": [...], "principal"?: string}; principal (from the task, trusted) overrides
 * the input's; intel: the process's feeds (NULL = none). Returns the output object (new reference)
 * and sets *verdict and findings for the audit, or NULL with err (invalid_input). */
json_t *phx_safety_review(const phx_safety_policy *pol, phx_intel *intel, const json_t *input,
                          const char *principal, int *verdict, phx_safety_findings *findings,
                          phx_err *err);

#endif
