/* secrets.h -- credentials in text: provider key formats, private keys, tokens, and
 * high-entropy values assigned to secret-sounding names.
 *
 * A key pasted into a prompt leaks to the model provider; a key in model or tool output leaks
 * to whoever reads the reply. Findings carry redact=1 and evidence that names the kind and
 * length only, never the value. Formats are the providers' published prefixes; the generic
 * rules (password=..., long random strings) use Shannon entropy so "password=changeme" or a
 * placeholder such as "<your-key>" is not reported as a secret. */
#ifndef PHX_SAFETY_SECRETS_H
#define PHX_SAFETY_SECRETS_H

#include "safety.h"

/* Scan len bytes of text; findings get span offset base (for decoded runs pass the run's
 * span via span_end != 0: every finding then reports [span_start, span_end)). Returns the
 * number of findings added. */
int phx_safety_secrets_scan(const char *text, size_t len, phx_safety_findings *out,
                            size_t span_start, size_t span_end);

/* Shannon entropy of n bytes in bits per byte (exposed for tests). */
double phx_safety_entropy(const char *s, size_t n);

#endif
