/* inject.h -- prompt injection, jailbreak and indirect-injection detector.
 *
 * Weighted phrase features in categories (instruction override, role hijack, jailbreak
 * persona, restriction removal, refusal suppression, system-prompt exfiltration, instructions
 * addressed to the assistant inside data, embedded tasks, output obfuscation requests,
 * exfiltration actions, fiction framing, persuasion framing, adversarial suffixes) plus one
 * category scored by the harmful-request detector (harm.h: what is being asked for, by topic),
 * whose rows are matched in the same pass. A category's score grows with the number of
 * distinct features that fire in it; categories combine by noisy-OR, plus an interaction: a
 * harmful request wrapped in persona, fiction, persuasion or refusal-suppression framing is
 * what a jailbreak looks like, and scores more than either part.
 *
 * Role matters: every feature has one weight for text a user wrote and one for data the agent
 * reads (retrieved documents, tool output). "Recommend a good book." is a normal prompt and an
 * injection inside a fetched web page. No feature is a single common word, so "ignore the noise
 * in this photo" scores nothing. The features are written from the published taxonomy of
 * attacks, not copied from any evaluation set (see docs/safety.md). */
#ifndef PHX_SAFETY_INJECT_H
#define PHX_SAFETY_INJECT_H

#include "normalize.h"
#include "safety.h"

/* Which weight column applies. */
typedef enum { PHX_INJECT_USER = 0, PHX_INJECT_DATA = 1 } phx_inject_ctx;

/* Compile the feature set once (thread-safe, idempotent). 0, or -1 with err. */
int phx_safety_inject_init(char *err, size_t errlen);

/* Score folded text n (whose map points into the original) for context ctx; adds one finding
 * per category that fired (span in the original, evidence = the matched words) and returns the
 * score in [0, 1]. via / encoding describe how the text was reached (decoded runs: the span is
 * the encoded run, passed as span_start/span_end; otherwise span_end = 0). */
double phx_safety_inject_scan(const phx_safety_norm *n, phx_inject_ctx ctx,
                              phx_safety_findings *out, int via, const char *encoding,
                              size_t span_start, size_t span_end);

#endif
