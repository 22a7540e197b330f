/* policy.h -- safety policy documents (schemas/policy.v1.json) turned into thresholds.
 *
 * A policy says, per role, at which injection score a text is warned about or blocked and
 * what happens to secrets, personal data and hidden text found in it; how deep to decode;
 * whether to resolve URLs; what a plan may contain; which gates the planner inserts. A
 * document only needs to say what differs from the built-in default (phx_safety_policy_default
 * below, also in examples/safety-policy.json): it is applied on top of it. Compiled policies
 * are immutable and reference-counted, so a hot reload never changes one under a running scan. */
#ifndef PHX_SAFETY_POLICY_H
#define PHX_SAFETY_POLICY_H

#include <jansson.h>

#include "err.h"
#include "safety.h"
#include "schema.h"

typedef struct phx_safety_role_policy {
    double warn, block;            /* injection score thresholds */
    int secrets, pii, hidden_text; /* verdict for such findings (PHX_VERDICT_*) */
    int intel;                     /* verdict for a threat-feed match (detector "intel") */
    double code_warn, code_block;  /* code risk thresholds */
    double url_warn, url_block;    /* URL finding severity thresholds */
} phx_safety_role_policy;

/* The optional model guard of a policy ("guard" in policy.v1): which model judges which roles,
 * what its "unsafe" means, and what happens when it cannot answer. */
typedef struct phx_safety_guard_policy {
    int on;            /* the policy names a guard */
    char model[128];   /* logical model name for the providers ("" = a provider's default) */
    char provider[64]; /* only this provider of the chain ("" = the whole chain) */
    int fail_open;     /* guard unavailable: 1 = verdict as without it, 0 = block */
    int verdict;       /* verdict of an "unsafe" answer (PHX_VERDICT_WARN or _BLOCK) */
    unsigned roles;    /* bit (1 << role) for each role sent to the guard */
    long max_bytes;    /* text beyond this is cut before it is sent */
} phx_safety_guard_policy;

typedef struct phx_safety_policy {
    char name[65];
    long version;
    phx_safety_role_policy roles[PHX_ROLE_COUNT];
    int decode_depth;
    size_t decode_max_bytes;
    int resolve_urls;
    char *allow_cidrs; /* comma-separated, for phx_fetch_ip_allowed; NULL = none */
    json_t *tenants;   /* array or NULL */
    json_t *plan;      /* the "plan" object (defaults applied) */
    int chain_verdict, kind_verdict, url_verdict;
    phx_safety_guard_policy guard; /* the optional model guard (guard.h) */
    int refs;
} phx_safety_policy;

/* The built-in default document. */
extern const char phx_safety_policy_default[];

/* Compile doc (validated against schema when schema is not NULL) over the built-in default.
 * doc NULL = the default itself. NULL with err "invalid_policy" on failure. */
phx_safety_policy *phx_safety_policy_new(const json_t *doc, const phx_schema *schema, phx_err *err);
phx_safety_policy *phx_safety_policy_ref(phx_safety_policy *p);
void phx_safety_policy_release(phx_safety_policy *p);

/* 1 when tenant may use p by name (p->tenants absent or lists it). */
int phx_safety_policy_tenant_ok(const phx_safety_policy *p, const char *tenant);

/* Kind pattern match: "exec.run", "exec.*", "*". */
int phx_safety_kind_match(const char *pattern, const char *kind);
int phx_safety_kinds_match(const json_t *patterns, const char *kind);

#endif
