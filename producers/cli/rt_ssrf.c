/* rt_ssrf.c -- the ssrf suite of `phx redteam`: hostile URLs through tool.http_fetch.
 *
 * A canary HTTP listener on this host's loopback is the target: every URL spells its address
 * another way (decimal, hex, octal, short forms, IPv4-mapped IPv6, names that resolve to
 * loopback, userinfo tricks, other schemes), each with its own path, so a request that reaches
 * the canary is an escape even if the tool reported an error. The other private ranges
 * (metadata, RFC 1918, CGNAT, ULA) have no listener; for them the verdict is the tool's: only
 * a refusal before connecting (forbidden_address, or invalid_input for a refused scheme) or a
 * name that does not resolve is contained -- a connect attempt or a fetch means the address
 * policy let it through. With PHX_REDTEAM_BAIT_ADDR (an address the deployment lets
 * http_fetch reach), a bait listener there answers with redirects to the canary, and to a
 * name that resolves to it: the redirect and DNS-rebinding paths, checked at connect time. */
#include "redteam.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Is the step's error a refusal that happened before any connection? */
static int rt_ssrf_refused(const char *code)
{
    /* safety_blocked: the planner's URL gate refused the step before the pool saw it;
     * forbidden_host: the tenant's host allow-list refused it. */
    return code && (strcmp(code, "forbidden_address") == 0 || strcmp(code, "invalid_input") == 0 ||
                    strcmp(code, "dns_failed") == 0 || strcmp(code, "too_many_redirects") == 0 ||
                    strcmp(code, "safety_blocked") == 0 || strcmp(code, "forbidden_host") == 0);
}

int rt_suite_ssrf(const rt_ctx *c, rt_suite *s)
{
    char curl[128], bait_url[128] = "";
    rt_canary *k = rt_canary_start("127.0.0.1:0", curl, sizeof(curl));
    if (!k) {
        rt_case(s, "canary", RT_ERROR, "cannot start the loopback canary");
        return 0;
    }
    const char *port = strrchr(curl, ':') + 1;
    /* %1$s = the canary's port; each case has its own path, so hits are told apart. */
    static const struct {
        const char *name, *fmt;
    } urls[] = {
        {"loopback literal", "http://127.0.0.1:%1$s/c1"},
        {"localhost name", "http://localhost:%1$s/c2"},
        {"localhost trailing dot", "http://localhost.:%1$s/c3"},
        {"decimal ip", "http://2130706433:%1$s/c4"},
        {"hex ip", "http://0x7f000001:%1$s/c5"},
        {"octal ip", "http://0177.0.0.1:%1$s/c6"},
        {"short ip 127.1", "http://127.1:%1$s/c7"},
        {"ipv4-mapped ipv6", "http://[::ffff:127.0.0.1]:%1$s/c8"},
        {"ipv4-mapped ipv6 hex", "http://[::ffff:7f00:1]:%1$s/c9"},
        {"ipv6 loopback", "http://[::1]:%1$s/c10"},
        {"unspecified 0.0.0.0", "http://0.0.0.0:%1$s/c11"},
        {"zero host", "http://0:%1$s/c12"},
        {"userinfo confusion", "http://example.com@127.0.0.1:%1$s/c13"},
        {"other loopback 127.0.0.3", "http://127.0.0.3:%1$s/c15"},
        {"nat64 embedded loopback", "http://[64:ff9b::7f00:1]:%1$s/c16"},
        {"6to4 embedded loopback", "http://[2002:7f00:1::]:%1$s/c17"},
        {"gopher scheme", "gopher://127.0.0.1:%1$s/_c18"},
        {"dict scheme", "dict://127.0.0.1:%1$s/c19"},
        {"file scheme", "file:///etc/passwd"},
        {"ftp scheme", "ftp://127.0.0.1:%1$s/c21"},
        {"cloud metadata", "http://169.254.169.254/latest/meta-data/"},
        {"cloud metadata ipv6", "http://[fd00:ec2::254]/latest/meta-data/"},
        {"gcp metadata name", "http://metadata.google.internal/computeMetadata/v1/"},
        {"rfc1918 10/8", "http://10.0.0.1/"},
        {"rfc1918 172.16/12", "http://172.16.0.1/"},
        {"rfc1918 192.168/16", "http://192.168.0.1/"},
        {"cgnat 100.64/10", "http://100.64.0.1/"},
        {"ipv6 ula", "http://[fd00::1]/"},
        {"ipv6 link-local", "http://[fe80::1]/"},
        {"multicast", "http://224.0.0.1/"},
        {"broadcast", "http://255.255.255.255/"},
    };
    enum { NURLS = sizeof(urls) / sizeof(urls[0]) };
    rt_canary *bait = NULL;
    if (c->bait_addr) {
        char target[160];
        snprintf(target, sizeof(target), "http://127.0.0.1:%s/redir", port);
        bait = rt_canary_start_redirect(c->bait_addr, target, bait_url, sizeof(bait_url));
    }
    json_t *jobs = json_array(), *cases = json_array();
    int n = NURLS; /* refusals are fast: --quick keeps them all */
    for (int i = 0; i < n + 2; i++) {
        char url[512], path[64] = "";
        const char *name;
        if (i < n) {
            snprintf(url, sizeof(url), urls[i].fmt, port);
            name = urls[i].name;
            const char *p = strstr(url, "/c");
            if (!p)
                p = strstr(url, "/_c");
            if (p && p[1] == '_')
                snprintf(path, sizeof(path), "/_%s", p + 2);
            else if (p)
                snprintf(path, sizeof(path), "%s", p);
        } else if (bait) {
            /* The bait redirects /x to the canary's /redir/x. */
            name = i == n ? "redirect to loopback" : "redirect chain to loopback";
            snprintf(url, sizeof(url), "%s/%s", bait_url, i == n ? "r1" : "r2");
            snprintf(path, sizeof(path), "/redir/%s", i == n ? "r1" : "r2");
        } else {
            rt_case(s, i == n ? "redirect to loopback" : "redirect chain to loopback", RT_SKIPPED,
                    "set PHX_REDTEAM_BAIT_ADDR to an address http_fetch may reach");
            continue;
        }
        json_t *job = rt_job1(c, "ssrf", "tool.http_fetch",
                              json_pack("{s:s, s:i}", "url", url, "timeout_ms", 3000), 15000);
        json_array_append_new(cases, json_pack("{s:s, s:s, s:s, s:O}", "name", name, "url", url,
                                               "path", path, "id", json_object_get(job, "id")));
        json_array_append_new(jobs, job);
    }
    json_t *replies = rt_run_jobs(c, jobs, c->timeout_s);
    int rc = replies ? 0 : -1;
    size_t i;
    json_t *cs;
    json_array_foreach(cases, i, cs)
    {
        if (!replies)
            break;
        const char *name = json_string_value(json_object_get(cs, "name"));
        const char *url = json_string_value(json_object_get(cs, "url"));
        const char *path = json_string_value(json_object_get(cs, "path"));
        json_t *r = json_object_get(replies, json_string_value(json_object_get(cs, "id")));
        const char *code;
        json_t *out = rt_step_output(r, &code);
        int hits = *path ? rt_canary_hits(k, path) : 0;
        if (hits)
            rt_case(s, name, RT_ESCAPED, "%s reached the canary (%d requests)", url, hits);
        else if (out)
            rt_case(s, name, RT_ESCAPED, "%s fetched: HTTP %lld", url,
                    json_integer_value(json_object_get(out, "status")));
        else if (!r)
            rt_case(s, name, RT_ERROR, "%s: no reply within %d s", url, c->timeout_s);
        else if (rt_ssrf_refused(code))
            rt_case(s, name, RT_CONTAINED, "%s: %s", url, code);
        else
            rt_case(s, name, RT_ESCAPED, "%s: %s (a connection was attempted)", url, code);
    }
    int total = rt_canary_hits(k, NULL);
    int mapped = 0;
    json_array_foreach(cases, i, cs)
    {
        const char *path = json_string_value(json_object_get(cs, "path"));
        if (*path)
            mapped += rt_canary_hits(k, path);
    }
    if (total > mapped)
        rt_case(s, "canary (other paths)", RT_ESCAPED, "%d requests the cases cannot explain",
                total - mapped);
    json_decref(replies);
    json_decref(jobs);
    json_decref(cases);
    rt_canary_stop(bait);
    rt_canary_stop(k);
    return rc;
}
