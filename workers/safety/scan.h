/* scan.h -- safety.scan: normalise, decode, run the detectors for the text's role, apply the
 * policy, redact.
 *
 * Pure computation (no Redis, no Kafka), so it is what the unit tests, the evaluation and the
 * benchmark call; the pool's step function (main.c) adds policy lookup and audit around it.
 *
 * Verdict rules, per role r of policy p:
 *   injection score >= p.roles[r].block -> block, >= warn -> warn (not scored for code/url);
 *   secrets / PII / hidden-text findings -> the action the role names (allow|warn|redact|block);
 *   code risk >= code_block -> block, >= code_warn -> warn (role code);
 *   URL findings: severity >= url_block -> block, >= url_warn -> warn;
 *   threat-feed matches (detector intel, feeds.h) -> the role's intel action;
 * the verdict is the most severe of these; "score" is the largest of the injection score and
 * the severities of the findings that contributed. redacted_text is present only when the
 * verdict is redact: every redactable span replaced by "[REDACTED:<category>]". */
#ifndef PHX_SAFETY_SCAN_H
#define PHX_SAFETY_SCAN_H

#include <jansson.h>

#include "intel.h"
#include "policy.h"
#include "safety.h"

/* Does score reach threshold? The one comparison every verdict (and the evaluation) uses. A
 * score within 1e-6 under it counts: scores are built from single-precision weights, so one
 * feature that weighs exactly the threshold (0.35f is 0.3499999...) must not miss it by a
 * rounding error. */
static inline int phx_safety_reaches(double score, double threshold)
{
    return score + 1e-6 >= threshold;
}

typedef struct phx_safety_result {
    phx_safety_verdict verdict;
    double score;
    double inject_score; /* the injection detector's own score (for evaluation) */
    phx_safety_findings f;
    char *redacted; /* when verdict == redact */
    int normalized; /* folding or decoding changed what the detectors read */
} phx_safety_result;

/* What a scan knows beyond the policy: the process's threat feeds (NULL = none). */
typedef struct phx_safety_scan_ctx {
    phx_intel *intel;
    /* Detectors an operator's feedback allow-listed for this exact text (comma-separated,
     * lib/feedback.h; NULL = none): their findings, and the injection or code score when
     * "inject" or "code" is listed, do not count. */
    const char *ignore;
} phx_safety_scan_ctx;

/* Scan len bytes of text as role under policy (ctx may be NULL). 0, or -1 with err (out of
 * memory). */
int phx_safety_scan_with(const phx_safety_policy *pol, const phx_safety_scan_ctx *ctx,
                         phx_safety_role role, const char *text, size_t len, phx_safety_result *res,
                         phx_err *err);
/* The same without a context: what the evaluation, the fuzzer and most tests call. */
int phx_safety_scan(const phx_safety_policy *pol, phx_safety_role role, const char *text,
                    size_t len, phx_safety_result *res, phx_err *err);
void phx_safety_result_free(phx_safety_result *r);

/* The scan output object of the step (see issue contract): verdict, score, findings,
 * redacted_text, normalized. */
json_t *phx_safety_result_json(const phx_safety_result *r, const phx_safety_policy *pol,
                               phx_safety_role role);

/* The keyword baseline the evaluation compares against: a fixed list of classic jailbreak
 * and injection phrases, matched case-insensitively as substrings; 1 on a hit. */
int phx_safety_keyword_baseline(const char *text, size_t len);

#endif
