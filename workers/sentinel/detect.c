/* detect.c -- messages to security signals (see detect.h). */
#include "detect.h"

#include <stdio.h>
#include <string.h>

static const char *const phx_rule_names[PHX_NRULES] = {"blocks", "sandbox_kills", "auth_failures",
                                                       "tool_use"};

const char *phx_rule_name(phx_rule r)
{
    return r >= 0 && r < PHX_NRULES ? phx_rule_names[r] : "unknown";
}

static const char *phx_sig_str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static void phx_sig_init(phx_signal *s, phx_rule rule, phx_subj_kind kind, const char *subject,
                         const char *tenant, const char *job_id)
{
    memset(s, 0, sizeof(*s));
    s->rule = rule;
    s->kind = kind;
    snprintf(s->subject, sizeof(s->subject), "%s", subject);
    snprintf(s->tenant, sizeof(s->tenant), "%s", tenant ? tenant : "");
    snprintf(s->job_id, sizeof(s->job_id), "%s", job_id ? job_id : "");
}

int phx_signal_from_event(const json_t *ev, phx_signal *s)
{
    const char *type = phx_sig_str(ev, "type"), *tenant = phx_sig_str(ev, "tenant");
    const json_t *d = json_object_get(ev, "detail");
    if (!*tenant)
        return 0; /* nothing to count it against */
    if (strcmp(type, "safety.verdict") == 0) {
        const char *v = phx_sig_str(d, "verdict");
        if (strcmp(v, "block") != 0 && strcmp(v, "redact") != 0)
            return 0;
        phx_sig_init(s, PHX_RULE_BLOCKS, PHX_SUBJ_TENANT, tenant, tenant,
                     phx_sig_str(ev, "job_id"));
        snprintf(s->detail, sizeof(s->detail), "%s %s (%.80s)", phx_sig_str(d, "kind"), v,
                 phx_sig_str(d, "detectors"));
        return 1;
    }
    if (strcmp(type, "step.dispatched") == 0) {
        const char *kind = json_string_value(d);
        if (!kind || (strncmp(kind, "tool.", 5) != 0 && strncmp(kind, "exec.", 5) != 0))
            return 0;
        phx_sig_init(s, PHX_RULE_TOOLS, PHX_SUBJ_TENANT, tenant, tenant, phx_sig_str(ev, "job_id"));
        snprintf(s->detail, sizeof(s->detail), "%.100s dispatched", kind);
        return 1;
    }
    return 0;
}

int phx_signal_from_result(const json_t *res, const char *tenant, phx_signal *s)
{
    const json_t *out = json_object_get(res, "output");
    if (!tenant || !*tenant || strcmp(phx_sig_str(res, "status"), "ok") != 0 ||
        strcmp(phx_sig_str(res, "kind"), "exec.run") != 0 || !json_is_object(out))
        return 0;
    /* A cancelled run is killed by the operator's request, not by a limit. */
    if (json_is_true(json_object_get(out, "cancelled")))
        return 0;
    int timeout = json_is_true(json_object_get(out, "timed_out"));
    int oom = json_is_true(json_object_get(out, "oom_killed"));
    int seccomp = strcmp(phx_sig_str(out, "signal"), "SIGSYS") == 0;
    if (!timeout && !oom && !seccomp)
        return 0;
    phx_sig_init(s, PHX_RULE_SANDBOX, PHX_SUBJ_TENANT, tenant, tenant, phx_sig_str(res, "job_id"));
    s->seccomp = seccomp;
    snprintf(s->detail, sizeof(s->detail), "exec.run %s (step %.64s)",
             seccomp ? "killed by seccomp"
             : oom   ? "OOM-killed"
                     : "timed out",
             phx_sig_str(res, "step_id"));
    return 1;
}

int phx_signal_from_auth(const json_t *rec, phx_signal *s)
{
    const char *key = phx_sig_str(rec, "key_id"), *tp = phx_sig_str(rec, "principal"),
               *ip = phx_sig_str(rec, "ip"), *tenant = phx_sig_str(rec, "tenant");
    const char *status = phx_sig_str(rec, "status"), *code = phx_sig_str(rec, "code");
    if (strcmp(status, "401") != 0 && strcmp(status, "403") != 0)
        return 0;
    if (*key)
        phx_sig_init(s, PHX_RULE_AUTH, PHX_SUBJ_KEY, key, tenant, NULL);
    else if (*tp && strchr(tp, '/'))
        phx_sig_init(s, PHX_RULE_AUTH, PHX_SUBJ_PRINCIPAL, tp, tenant, NULL);
    else if (*ip)
        phx_sig_init(s, PHX_RULE_AUTH, PHX_SUBJ_ADDR, ip, tenant, NULL);
    else
        return 0;
    snprintf(s->detail, sizeof(s->detail), "%s %.40s on %.60s from %.46s", status, code,
             phx_sig_str(rec, "route"), ip);
    return 1;
}
