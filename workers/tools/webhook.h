/* webhook.h -- tool.webhook: a signed POST of a JSON payload to a receiver.
 *
 * The body is the payload's compact JSON; the request carries
 *   X-Phx-Timestamp: UNIX_SECONDS
 *   X-Phx-Signature: v1=HEX(HMAC-SHA256(secret, TIMESTAMP "." BODY))
 * so a receiver can check origin and integrity and refuse replays outside its window. The
 * secret comes from a file (PHX_WEBHOOK_SECRET_FILE) read at every call, so rotating it needs
 * no restart; it never appears in the input, output or logs. Delivery goes through
 * tool.http_fetch, so the same SSRF rules apply (private addresses, rebinding, redirects).
 *
 * input {"url", "payload": any JSON, "headers": {..}, "timeout_ms"} -> {"status", "body",
 * "signature_version": "v1"}. A 2xx answer is success; 429 and 5xx fail retryable
 * (webhook_rejected), other statuses fail for good. Other errors as tool.http_fetch. */
#ifndef PHX_WEBHOOK_H
#define PHX_WEBHOOK_H

#include "err.h"
#include "http_fetch.h"

#include <jansson.h>
#include <stddef.h>

typedef struct phx_webhook_cfg {
    const char *secret_file; /* "" = tool disabled */
    const phx_fetch_cfg *fetch;
} phx_webhook_cfg;

/* The v1 signature of body at timestamp ts with secret: "v1=" + 64 hex into out[68]. */
void phx_webhook_sign(const char *secret, long long ts, const char *body, size_t len, char out[68]);
json_t *phx_webhook_step(const json_t *input, const phx_webhook_cfg *cfg, phx_err *err);

#endif
