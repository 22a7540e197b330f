/* detect.h -- what phx-sentinel looks for: turning a message into security signals.
 *
 * Pure functions (no I/O), so the classification is unit-tested with data alone. A signal
 * names the rule it counts towards and the subject it is counted per (a tenant, an API key
 * id, a principal, a client address); main.c counts signals per subject in sliding windows in
 * Redis and acts when a count crosses its rule's threshold.
 *
 * Sources and signals:
 *   phx.events  safety.verdict with verdict block or redact  -> blocks      per tenant
 *               step.dispatched of a tool.* or exec.* kind    -> tool_use    per tenant
 *   phx.results exec.run output timed_out, oom_killed, or killed by SIGSYS (seccomp)
 *                                                             -> sandbox_kills per tenant
 *                                                                (seccomp: also the job)
 *   phx:audit:auth (the ingress's 401/403 records)            -> auth_failures per key id,
 *                                                                else principal, else address */
#ifndef PHX_SENTINEL_DETECT_H
#define PHX_SENTINEL_DETECT_H

#include <jansson.h>

typedef enum {
    PHX_RULE_BLOCKS = 0,
    PHX_RULE_SANDBOX,
    PHX_RULE_AUTH,
    PHX_RULE_TOOLS,
    PHX_NRULES
} phx_rule;

const char *phx_rule_name(phx_rule r);

/* What a subject is, which decides the responses that can apply to it. */
typedef enum {
    PHX_SUBJ_TENANT = 0,
    PHX_SUBJ_KEY,       /* API key id */
    PHX_SUBJ_PRINCIPAL, /* TENANT/PRINCIPAL */
    PHX_SUBJ_ADDR,      /* client address: alert only */
} phx_subj_kind;

typedef struct phx_signal {
    phx_rule rule;
    phx_subj_kind kind;
    char subject[264];
    char tenant[129]; /* for metrics and audit; "" when unknown */
    char job_id[129]; /* the job it came from, when there is one */
    int seccomp;      /* sandbox kill by seccomp: an escape attempt */
    char detail[128]; /* human text for the audit entry */
} phx_signal;

/* An event.v1 from phx.events: 1 with *s filled, 0 when it is not a signal. */
int phx_signal_from_event(const json_t *ev, phx_signal *s);
/* A result.v1 from phx.results, with the tenant from its phx-tenant header (may be NULL). */
int phx_signal_from_result(const json_t *res, const char *tenant, phx_signal *s);
/* One phx:audit:auth entry as a JSON object of its fields. */
int phx_signal_from_auth(const json_t *rec, phx_signal *s);

#endif
