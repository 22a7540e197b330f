/* webhook.c -- tool.webhook (see webhook.h). */
#include "webhook.h"
#include "config.h"
#include "util.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

void phx_webhook_sign(const char *secret, long long ts, const char *body, size_t len, char out[68])
{
    char prefix[32];
    int pn = snprintf(prefix, sizeof(prefix), "%lld.", ts);
    unsigned char *msg = phx_xmalloc((size_t)pn + len), mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    memcpy(msg, prefix, (size_t)pn);
    memcpy(msg + pn, body, len);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, (size_t)pn + len, mac, &maclen);
    free(msg);
    /* the hex that follows ends the string */
    memcpy(out, "v1=", 3); // NOLINT(bugprone-not-null-terminated-result)
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 3 + 2 * i, 3, "%02x", mac[i]);
}

/* The tool.http_fetch input for the signed POST; NULL with err. */
static json_t *phx_webhook_request(const json_t *input, const char *secret, char **body,
                                   phx_err *err)
{
    const json_t *url = json_object_get(input, "url"), *payload = json_object_get(input, "payload");
    const json_t *hdrs = json_object_get(input, "headers"),
                 *t = json_object_get(input, "timeout_ms");
    if (!json_is_string(url) || !payload || (hdrs && !json_is_object(hdrs))) {
        phx_err_set(err, "invalid_input", 0, "input needs url (string) and payload (JSON)");
        return NULL;
    }
    *body = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
    long long ts = phx_now_ms() / 1000;
    char sig[68], tss[24];
    phx_webhook_sign(secret, ts, *body, strlen(*body), sig);
    snprintf(tss, sizeof(tss), "%lld", ts);
    json_t *h = hdrs ? json_deep_copy(hdrs) : json_object();
    const char *name;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(h, tmp, name, v)
    {
        if (strncasecmp(name, "X-Phx-", 6) == 0 || strcasecmp(name, "Content-Type") == 0)
            json_object_del(h, name); /* ours: a caller must not forge or override them */
    }
    json_object_set_new(h, "Content-Type", json_string("application/json"));
    json_object_set_new(h, "X-Phx-Timestamp", json_string(tss));
    json_object_set_new(h, "X-Phx-Signature", json_string(sig));
    json_t *req = json_pack("{s:O, s:s, s:o, s:s}", "url", url, "method", "POST", "headers", h,
                            "body", *body);
    if (t)
        json_object_set(req, "timeout_ms", (json_t *)t);
    return req;
}

json_t *phx_webhook_step(const json_t *input, const phx_webhook_cfg *cfg, phx_err *err)
{
    char e[256], *body = NULL;
    if (!cfg->secret_file || !*cfg->secret_file) {
        phx_err_set(err, "unavailable", 0, "tool.webhook needs PHX_WEBHOOK_SECRET_FILE");
        return NULL;
    }
    char *secret = phx_config_read_secret(cfg->secret_file, e, sizeof(e));
    if (!secret) {
        phx_err_set(err, "internal", 1, "webhook secret: %s", e);
        return NULL;
    }
    json_t *out = NULL, *req = phx_webhook_request(input, secret, &body, err);
    free(secret);
    json_t *res = req ? phx_http_fetch(req, cfg->fetch, err) : NULL;
    if (res) {
        json_int_t st = json_integer_value(json_object_get(res, "status"));
        if (st >= 200 && st < 300) {
            out = json_pack("{s:I, s:O, s:s}", "status", st, "body", json_object_get(res, "body"),
                            "signature_version", "v1");
        } else {
            phx_err_set(err, "webhook_rejected", st == 429 || st >= 500,
                        "the receiver answered HTTP %d", (int)st);
        }
    }
    json_decref(res);
    json_decref(req);
    free(body);
    return out;
}
