/* findings.c -- the finding list and the names of roles and verdicts (see safety.h).
 *
 * Kept apart from the detectors so every detector, the scanner and the tests share one
 * definition of what a finding is and how roles and verdicts are spelled on the wire. */
#include "safety.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const phx_safety_roles[PHX_ROLE_COUNT] = {
    "user_prompt", "retrieved_document", "tool_output", "model_output", "code", "url",
};
static const char *const phx_safety_verdicts[] = {"allow", "warn", "redact", "block"};

phx_safety_finding *phx_safety_add(phx_safety_findings *f, const char *detector,
                                   const char *category, double severity, size_t start, size_t end)
{
    if (f->n >= PHX_SAFETY_MAX_FINDINGS)
        return NULL;
    if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 8;
        phx_safety_finding *v = realloc(f->v, (size_t)cap * sizeof(*v));
        if (!v)
            return NULL;
        f->v = v;
        f->cap = cap;
    }
    phx_safety_finding *x = &f->v[f->n++];
    memset(x, 0, sizeof(*x));
    snprintf(x->detector, sizeof(x->detector), "%s", detector);
    snprintf(x->category, sizeof(x->category), "%s", category);
    x->severity = severity < 0 ? 0 : severity > 1 ? 1 : severity;
    x->start = start;
    x->end = end < start ? start : end;
    return x;
}

void phx_safety_findings_free(phx_safety_findings *f)
{
    free(f->v);
    memset(f, 0, sizeof(*f));
}

const char *phx_safety_role_name(phx_safety_role r)
{
    return (int)r >= 0 && r < PHX_ROLE_COUNT ? phx_safety_roles[r] : "unknown";
}

int phx_safety_role_parse(const char *s)
{
    for (int i = 0; s && i < PHX_ROLE_COUNT; i++)
        if (strcmp(s, phx_safety_roles[i]) == 0)
            return i;
    return -1;
}

const char *phx_safety_verdict_name(phx_safety_verdict v)
{
    return (int)v >= 0 && v <= PHX_VERDICT_BLOCK ? phx_safety_verdicts[v] : "block";
}

int phx_safety_verdict_parse(const char *s)
{
    for (int i = 0; s && i <= PHX_VERDICT_BLOCK; i++)
        if (strcmp(s, phx_safety_verdicts[i]) == 0)
            return i;
    return -1;
}

void phx_safety_evidence(char *out, size_t outlen, const char *s, size_t n)
{
    if (outlen == 0)
        return;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = (c < 0x20 || c == 0x7F) ? ' ' : (char)c;
    }
    /* Do not end inside a UTF-8 sequence. */
    while (k > 0 && ((unsigned char)out[k - 1] & 0xC0) == 0x80)
        k--;
    if (k > 0 && (unsigned char)out[k - 1] >= 0xC0)
        k--;
    out[k] = '\0';
}
