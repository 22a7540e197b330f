/* url.h -- URLs: where a link really points.
 *
 * For role "url" (a URL about to be fetched) the text is one URL and is judged strictly:
 * scheme other than http/https, userinfo ("https://bank.com@evil.example/"), hosts that are
 * internal names (localhost, *.internal, metadata), IP literals in any notation (decimal
 * 2130706433, octal 0177.0.0.1, hex, IPv4-mapped IPv6) and, when resolve is on, every address
 * the name resolves to, all checked with tool.http_fetch's own address policy
 * (phx_fetch_ip_allowed), so the scan and the fetch cannot disagree about what is private.
 * Punycode (xn--) and non-ASCII hosts are reported as possible look-alike domains.
 *
 * In other roles URLs found in the text are checked the same way without resolution, with
 * lower severity (a link in a document is not yet a request), plus markdown images whose URL
 * carries a query string: a rendered image is a request the user's browser makes, the classic
 * channel for exfiltrating conversation data from model output. */
#ifndef PHX_SAFETY_URL_H
#define PHX_SAFETY_URL_H

#include "safety.h"

typedef struct phx_safety_url_opts {
    int strict;              /* the text is a URL about to be fetched (role url) */
    int resolve;             /* resolve host names (strict mode only) */
    const char *allow_cidrs; /* as PHX_FETCH_ALLOW_CIDRS; NULL = none */
} phx_safety_url_opts;

int phx_safety_url_scan(const char *text, size_t len, const phx_safety_url_opts *o,
                        phx_safety_findings *out);

#endif
