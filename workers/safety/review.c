/* review.c -- plan review (see review.h).
 *
 * Plans are small (tens of steps), so the chain check is a plain depth-first walk from each
 * sink back through "needs", stopping at safety.scan steps. */
#include "review.h"
#include "feeds.h"
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHX_REVIEW_MAX_STEPS 1024

typedef struct phx_review {
    const phx_safety_policy *pol;
    phx_intel *intel;
    const json_t *steps;
    size_t n;
    json_t *out; /* findings array */
    phx_safety_findings *f;
    int verdict;
    double score;
} phx_review;

static void phx_review_add(phx_review *rv, const char *step, const char *category, double sev,
                           int verdict, const char *fmt, const char *a, const char *b)
{
    char ev[200];
    snprintf(ev, sizeof(ev), fmt, a ? a : "", b ? b : "");
    json_array_append_new(rv->out, json_pack("{s:s, s:s, s:f, s:s, s:s}", "detector", "review",
                                             "category", category, "severity", sev, "step",
                                             step ? step : "", "evidence", ev));
    phx_safety_add(rv->f, "review", category, sev, 0, 0);
    if (verdict > rv->verdict)
        rv->verdict = verdict;
    if (verdict > PHX_VERDICT_ALLOW && sev > rv->score)
        rv->score = sev;
}

static const char *phx_review_str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static long phx_review_index(const phx_review *rv, const char *id)
{
    for (size_t i = 0; i < rv->n; i++)
        if (id && phx_review_str(json_array_get(rv->steps, i), "id") &&
            strcmp(phx_review_str(json_array_get(rv->steps, i), "id"), id) == 0)
            return (long)i;
    return -1;
}

/* Forbidden kinds for this principal. */
static void phx_review_kinds(phx_review *rv, const char *principal)
{
    const json_t *plan = rv->pol->plan;
    const json_t *deny = json_object_get(plan, "deny_kinds");
    const json_t *pp =
        principal ? json_object_get(json_object_get(plan, "principals"), principal) : NULL;
    const json_t *pallow = json_object_get(pp, "allow_kinds");
    const json_t *pdeny = json_object_get(pp, "deny_kinds");
    for (size_t i = 0; i < rv->n; i++) {
        const json_t *s = json_array_get(rv->steps, i);
        const char *kind = phx_review_str(s, "kind"), *id = phx_review_str(s, "id");
        if (!kind)
            continue;
        if (phx_safety_kinds_match(deny, kind) || phx_safety_kinds_match(pdeny, kind) ||
            (pallow && !phx_safety_kinds_match(pallow, kind)))
            phx_review_add(rv, id, "forbidden_kind", 1.0, rv->pol->kind_verdict,
                           "step kind %s is not allowed for principal %s", kind,
                           principal ? principal : "(any)");
    }
}

/* Depth-first from step i through needs: 1 when an untrusted source is reachable without a
 * safety.scan in between. src gets the source's id. */
static int phx_review_tainted(phx_review *rv, size_t i, unsigned char *seen, const char **src)
{
    if (seen[i])
        return 0;
    seen[i] = 1;
    const json_t *s = json_array_get(rv->steps, i);
    const json_t *needs = json_object_get(s, "needs");
    size_t k;
    json_t *nd;
    json_array_foreach(needs, k, nd)
    {
        long j = phx_review_index(rv, json_string_value(nd));
        if (j < 0)
            continue;
        const json_t *d = json_array_get(rv->steps, (size_t)j);
        const char *kind = phx_review_str(d, "kind");
        if (kind && strcmp(kind, "safety.scan") == 0)
            continue; /* the path is checked here */
        if (phx_safety_kinds_match(json_object_get(rv->pol->plan, "untrusted_sources"), kind)) {
            *src = phx_review_str(d, "id");
            return 1;
        }
        if (phx_review_tainted(rv, (size_t)j, seen, src))
            return 1;
    }
    return 0;
}

static void phx_review_chains(phx_review *rv)
{
    unsigned char *seen = malloc(rv->n + 1);
    if (!seen)
        return;
    for (size_t i = 0; i < rv->n; i++) {
        const json_t *s = json_array_get(rv->steps, i);
        const char *kind = phx_review_str(s, "kind");
        if (!kind ||
            !phx_safety_kinds_match(json_object_get(rv->pol->plan, "sensitive_sinks"), kind))
            continue;
        memset(seen, 0, rv->n + 1);
        const char *src = NULL;
        if (phx_review_tainted(rv, i, seen, &src))
            phx_review_add(
                rv, phx_review_str(s, "id"), "dangerous_chain", 0.9, rv->pol->chain_verdict,
                "%s is fed by untrusted step %s with no safety.scan in between", kind, src);
    }
    free(seen);
}

/* Every string value under v that looks like a URL. */
static void phx_review_urls_in(phx_review *rv, const char *step, const json_t *v, int strict)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (!strstr(s, "://") && strncmp(s, "javascript:", 11) != 0)
            return;
        phx_safety_findings f = {0};
        phx_safety_url_opts o = {strict, strict && rv->pol->resolve_urls, rv->pol->allow_cidrs};
        phx_safety_url_scan(s, n, &o, &f);
        for (int i = 0; i < f.n; i++) {
            const phx_safety_role_policy *rp = &rv->pol->roles[PHX_ROLE_URL];
            int v2 = f.v[i].severity >= rp->url_block  ? rv->pol->url_verdict
                     : f.v[i].severity >= rp->url_warn ? PHX_VERDICT_WARN
                                                       : PHX_VERDICT_ALLOW;
            phx_review_add(rv, step, f.v[i].category, f.v[i].severity, v2, "%s%s", f.v[i].evidence,
                           "");
        }
        phx_safety_findings_free(&f);
        return;
    }
    size_t i;
    const char *k;
    json_t *x;
    if (json_is_array(v))
        json_array_foreach(v, i, x) phx_review_urls_in(rv, step, x, 0);
    else if (json_is_object(v))
        json_object_foreach((json_t *)v, k, x) phx_review_urls_in(rv, step, x, 0);
}

/* The fetch target u of step on a threat feed: the feeds detector on it, as role url. */
static void phx_review_feeds(phx_review *rv, const char *step, const char *u, size_t n)
{
    phx_safety_findings f = {0};
    phx_safety_feeds_scan(rv->intel, PHX_ROLE_URL, u, n, NULL, NULL, &f);
    for (int i = 0; i < f.n; i++)
        phx_review_add(rv, step, f.v[i].category, f.v[i].severity,
                       rv->pol->roles[PHX_ROLE_URL].intel, "tool.http_fetch to %s: %s", u,
                       f.v[i].evidence);
    phx_safety_findings_free(&f);
}

static void phx_review_urls(phx_review *rv)
{
    for (size_t i = 0; i < rv->n; i++) {
        const json_t *s = json_array_get(rv->steps, i);
        const char *kind = phx_review_str(s, "kind");
        const json_t *in = json_object_get(s, "input");
        const char *id = phx_review_str(s, "id");
        if (kind && strcmp(kind, "tool.http_fetch") == 0 &&
            json_is_string(json_object_get(in, "url")) &&
            !strstr(json_string_value(json_object_get(in, "url")), "{{")) {
            phx_review_urls_in(rv, id, json_object_get(in, "url"), 1);
            phx_review_feeds(rv, id, json_string_value(json_object_get(in, "url")),
                             json_string_length(json_object_get(in, "url")));
            json_t *rest = json_deep_copy(in);
            json_object_del(rest, "url");
            phx_review_urls_in(rv, id, rest, 0);
            json_decref(rest);
        } else {
            phx_review_urls_in(rv, id, in, 0);
        }
    }
}

json_t *phx_safety_review(const phx_safety_policy *pol, phx_intel *intel, const json_t *input,
                          const char *principal, int *verdict, phx_safety_findings *findings,
                          phx_err *err)
{
    const json_t *steps = json_object_get(input, "steps");
    if (!json_is_array(steps) || json_array_size(steps) > PHX_REVIEW_MAX_STEPS) {
        phx_err_set(err, "invalid_input", 0, "input.steps must be an array of at most %d steps",
                    PHX_REVIEW_MAX_STEPS);
        return NULL;
    }
    if (!principal)
        principal = json_string_value(json_object_get(input, "principal"));
    phx_review rv = {pol, intel, steps, json_array_size(steps), json_array(), findings, 0, 0};
    phx_review_kinds(&rv, principal);
    phx_review_chains(&rv);
    phx_review_urls(&rv);
    *verdict = rv.verdict;
    json_t *o = json_object();
    json_object_set_new(o, "verdict", json_string(phx_safety_verdict_name(rv.verdict)));
    json_object_set_new(o, "score", json_real(rv.score));
    json_object_set_new(o, "findings", rv.out);
    json_object_set_new(o, "normalized", json_false());
    json_object_set_new(o, "policy", json_string(pol->name));
    return o;
}
