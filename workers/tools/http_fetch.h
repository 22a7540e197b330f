/* http_fetch.h -- tool.http_fetch: one HTTP(S) request on behalf of an agent, SSRF-safe.
 *
 * The URL comes from a model, so it must be treated as hostile: the step refuses to reach
 * loopback, private, link-local (cloud metadata at 169.254.169.254), CGNAT, multicast and other
 * special-purpose addresses, in IPv4 and IPv6 form, unless an operator listed them in
 * allow_cidrs. The check runs on every address libcurl is about to connect to (after DNS, after
 * each redirect), so a hostname that resolves to 10.0.0.1, a DNS answer that changes between a
 * check and the connect (rebinding), and a redirect to http://127.0.0.1/ are all refused, not
 * just literal URLs. Only http and https are spoken, proxies from the environment are ignored,
 * and there is no cookie engine, no .netrc and no connection shared between calls.
 *
 * libcurl must be initialised once per process with curl_global_init(CURL_GLOBAL_DEFAULT) by
 * main before any thread calls phx_http_fetch; this module keeps no global state of its own and
 * is safe to call from several threads at once (one easy handle per call). */
#ifndef PHX_HTTP_FETCH_H
#define PHX_HTTP_FETCH_H

#include "err.h"

#include <jansson.h>
#include <stddef.h>

#define PHX_FETCH_MAX_REQ_BODY (1024 * 1024) /* request body limit, bytes */
#define PHX_FETCH_MAX_URL      8192
#define PHX_FETCH_MAX_HEADERS  64 /* request headers per call */

typedef struct phx_fetch_cfg {
    long timeout_ms;         /* default per request, capped */
    long max_timeout_ms;     /* cap on timeout_ms and on the input's "timeout_ms" */
    size_t max_body_bytes;   /* response body cap; beyond it truncated=true */
    const char *allow_cidrs; /* comma-separated CIDRs (v4/v6) allowed even though private;
                                NULL/"" = none. A bare address means a single host. */
    int max_redirects;       /* redirects followed; 0 = none (the 3xx itself is returned) */
    struct phx_intel *intel; /* threat intelligence feeds (intel.h), or NULL: a listed host,
                                address or URL is refused before any request (and at each
                                redirect and connect), a body whose SHA-256 is listed after */
} phx_fetch_cfg;

/* Sensible defaults: 10 s timeout capped at 60 s, 1 MiB body, no allow list, 5 redirects. */
void phx_fetch_cfg_defaults(phx_fetch_cfg *cfg);

/* Validate a configuration (positive limits, allow_cidrs parses), so main can refuse to start
 * with a bad one instead of failing every request. 0, or -1 with err "invalid_config". */
int phx_fetch_cfg_check(const phx_fetch_cfg *cfg, phx_err *err);

/* The policy applied to every connection, exposed for callers and tests: 1 if the numeric
 * address ip (IPv4 or IPv6, no brackets) may be connected to under allow_cidrs, 0 if it is
 * refused (reason, if not NULL, is set to a static description such as "loopback"), -1 if ip or
 * allow_cidrs does not parse. IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address;
 * NAT64 (64:ff9b::/96) and 6to4 (2002::/16) by the IPv4 address they embed. */
int phx_fetch_ip_allowed(const char *ip, const char *allow_cidrs, const char **reason);

/* input {"url", "method": "GET"|"POST" (default GET), "headers": {name: value}, "body": string,
 * "timeout_ms", "fail_on_status": bool} -> output {"status": int, "headers": {lowercased-name:
 * value}, "body": string,
 * "truncated": bool, "url": final url}.
 * Input rules: method is matched case-insensitively; "body" (at most PHX_FETCH_MAX_REQ_BODY
 * bytes) only with POST; at most PHX_FETCH_MAX_HEADERS headers, names RFC 9110 tokens, values
 * strings without CR, LF or NUL, an empty value is sent as an empty header; Content-Length and
 * Transfer-Encoding are refused (libcurl frames the message); "timeout_ms" is a positive integer
 * covering the whole request, silently capped at cfg->max_timeout_ms.
 * Body that is not valid UTF-8 (or contains NUL) is returned base64 with "body_encoding":
 * "base64". Repeated response headers are joined with ", "; only the final response's headers
 * (after redirects and 1xx) are returned. By default any HTTP status, 5xx included, is a
 * successful fetch (an agent reads the error page); with "fail_on_status": true a final status
 * >= 400 fails the step instead (http_status below), so the step's retry policy covers a
 * server's transient failures.
 *
 * Errors (err->code, retryable):
 *   invalid_input       0  bad url/scheme/method/headers/body/timeout_ms
 *   forbidden_address   0  a connection to a refused address, or a redirect to a non-http(s) URL
 *   forbidden_host      0  a request (a redirect, with phx_http_fetch_hosts) to a host the
 *                          rule refuses
 *   too_many_redirects  0  more than cfg->max_redirects
 *   intel_blocked       0  the host, address, URL (first or a redirect) or the body's SHA-256
 *                          is on a threat intelligence feed; the message names entry and source
 *   invalid_config      0  cfg->allow_cidrs does not parse
 *   tls_failed          0  certificate or TLS handshake failure
 *   timeout             1  the whole request took longer than the timeout
 *   dns_failed          1  the host name did not resolve
 *   connect_failed      1  TCP connect refused/unreachable
 *   fetch_failed        1  the transfer broke off (reset, empty reply, ...)
 *   http_status      0/1  "fail_on_status" and a final status >= 400: retryable for 408, 429
 *                          and 5xx, not for other 4xx
 *   internal            1  out of memory or an unexpected libcurl error */
json_t *phx_http_fetch(const json_t *input, const phx_fetch_cfg *cfg, phx_err *err);

/* A host rule applied to every request of a fetch, the first and each redirect: allowed(arg,
 * host) returns 1 to go on. A refusal ends the fetch with forbidden_host (not retryable). The
 * tools pool passes the tenant's allow-list here (tenancy.h), so a listed host cannot redirect
 * the fetch to an unlisted one. */
typedef struct phx_fetch_hosts {
    int (*allowed)(void *arg, const char *host);
    void *arg;
} phx_fetch_hosts;

/* phx_http_fetch with a host rule (hosts may be NULL: no rule). */
json_t *phx_http_fetch_hosts(const json_t *input, const phx_fetch_cfg *cfg,
                             const phx_fetch_hosts *hosts, phx_err *err);

#endif
