/* safety.h -- types shared by the safety pool's modules: roles, verdicts, findings.
 *
 * The pool judges text by what it is (its role) and reports what it found as a list of
 * findings, each pointing at a byte span of the caller's original text. Detectors only add
 * findings; turning findings into a verdict is policy (policy.c) and assembly (scan.c), so a
 * detector never needs to know who is asking. */
#ifndef PHX_SAFETY_H
#define PHX_SAFETY_H

#include <stddef.h>

typedef enum phx_safety_role {
    PHX_ROLE_USER_PROMPT = 0,
    PHX_ROLE_RETRIEVED_DOCUMENT,
    PHX_ROLE_TOOL_OUTPUT,
    PHX_ROLE_MODEL_OUTPUT,
    PHX_ROLE_CODE,
    PHX_ROLE_URL,
    PHX_ROLE_COUNT
} phx_safety_role;

typedef enum phx_safety_verdict {
    PHX_VERDICT_ALLOW = 0,
    PHX_VERDICT_WARN,
    PHX_VERDICT_REDACT,
    PHX_VERDICT_BLOCK,
} phx_safety_verdict;

/* How a finding's text reached the detector: as written, only after normalisation (homoglyphs,
 * spacing, leetspeak...), or inside an encoded run (base64, hex, ...). */
enum { PHX_VIA_RAW = 0, PHX_VIA_NORMALIZED, PHX_VIA_DECODED };

typedef struct phx_safety_finding {
    char detector[16];  /* "inject", "secrets", "pii", "url", "code", "normalize", "review" */
    char category[40];  /* e.g. "instruction_override", "aws_access_key", "card_number" */
    double severity;    /* 0..1 */
    size_t start, end;  /* byte span in the original text */
    char evidence[100]; /* short; never the secret or PII value itself */
    int redact;         /* the span is to be masked when the verdict is redact */
    int via;            /* PHX_VIA_* */
    char encoding[12];  /* for PHX_VIA_DECODED: "base64", "hex", "url", "html", "rot13" */
} phx_safety_finding;

typedef struct phx_safety_findings {
    phx_safety_finding *v;
    int n, cap;
} phx_safety_findings;

/* Add a finding; returns it (zeroed but for the given fields) or NULL when out of memory or
 * when the list already holds PHX_SAFETY_MAX_FINDINGS (the rest is noise for a reviewer). */
#define PHX_SAFETY_MAX_FINDINGS 64
phx_safety_finding *phx_safety_add(phx_safety_findings *f, const char *detector,
                                   const char *category, double severity, size_t start, size_t end);
void phx_safety_findings_free(phx_safety_findings *f);

const char *phx_safety_role_name(phx_safety_role r);
/* -1 for an unknown name. */
int phx_safety_role_parse(const char *s);
const char *phx_safety_verdict_name(phx_safety_verdict v);
int phx_safety_verdict_parse(const char *s);

/* Copy at most n bytes of s into out as printable evidence (control bytes -> ' ', cut on a
 * UTF-8 boundary). */
void phx_safety_evidence(char *out, size_t outlen, const char *s, size_t n);

#endif
