/* redact.h -- keep secrets out of log lines, events and replies.
 *
 * Two kinds of secret are recognised: values registered at run time (every secret file read
 * through phx_config_read_secret registers its content, so whatever a process was configured
 * with is known to it), and shapes that are secrets wherever they appear -- Phoenix API keys
 * (phx_ + 48 hex), JWTs (three base64url segments starting eyJ), and the credential after
 * "Bearer ". Each is replaced by "[REDACTED]". The logger applies this to every line, and the
 * pool loop to every result a step produces, so a secret echoed by a tool or a provider's
 * error message does not travel on into replies and events. */
#ifndef PHX_REDACT_H
#define PHX_REDACT_H

#include <jansson.h>
#include <stddef.h>

#define PHX_REDACTED "[REDACTED]"

/* Register a secret value (copied). Values shorter than 8 bytes are ignored: redacting every
 * occurrence of a short string would mangle ordinary text and protect little. */
void phx_redact_add(const char *secret);
/* Forget every registered value (tests; a reload registers the new values). */
void phx_redact_clear(void);
/* A malloc'd copy of s with every secret replaced. */
char *phx_redact_dup(const char *s);
/* Redact s in place within its buffer of size cap (truncating if the result is longer).
 * Returns the number of replacements. */
int phx_redact_buf(char *s, size_t cap);
/* Redact every string (and object key) in a JSON tree in place. Returns the replacements. */
int phx_redact_json(json_t *v);

#endif
