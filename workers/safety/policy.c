/* policy.c -- compiling policy documents (see policy.h).
 *
 * The default document is data, not code: the same JSON text is compiled at start, shipped
 * as an example and documented, so "what does Phoenix do by default" has one answer. */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char phx_safety_policy_default[] =
    "{\"schema\": \"policy.v1\", \"name\": \"builtin\", \"version\": 0,\n"
    " \"roles\": {\n"
    "  \"user_prompt\": {\"warn\": 0.35, \"block\": 0.7, \"secrets\": \"redact\", \"pii\": "
    "\"allow\", \"hidden_text\": \"warn\"},\n"
    "  \"retrieved_document\": {\"warn\": 0.4, \"block\": 0.65, \"secrets\": \"redact\", "
    "\"pii\": \"allow\", \"hidden_text\": \"warn\"},\n"
    "  \"tool_output\": {\"warn\": 0.4, \"block\": 0.65, \"secrets\": \"redact\", \"pii\": "
    "\"allow\", \"hidden_text\": \"warn\"},\n"
    "  \"model_output\": {\"warn\": 0.6, \"block\": 0.9, \"secrets\": \"redact\", \"pii\": "
    "\"redact\", \"hidden_text\": \"warn\", \"intel\": \"redact\"},\n"
    "  \"code\": {\"secrets\": \"warn\", \"pii\": \"allow\", \"hidden_text\": \"warn\", "
    "\"code_warn\": 0.5, \"code_block\": 0.9},\n"
    "  \"url\": {\"secrets\": \"warn\", \"pii\": \"allow\", \"hidden_text\": \"block\", "
    "\"url_warn\": 0.5, \"url_block\": 0.9}\n"
    " },\n"
    " \"decode\": {\"max_depth\": 3, \"max_bytes\": 262144},\n"
    " \"urls\": {\"resolve\": true, \"allow_cidrs\": []},\n"
    " \"plan\": {\"deny_kinds\": [], \"principals\": {},\n"
    "  \"untrusted_sources\": [\"tool.http_fetch\", \"kb.search\", \"tool.*\"],\n"
    "  \"sensitive_sinks\": [\"exec.run\", \"tool.http_fetch\"],\n"
    "  \"dangerous_chain\": \"block\", \"forbidden_kind\": \"block\", \"private_url\": "
    "\"block\"},\n"
    " \"gates\": {\"input\": true, \"code\": true, \"urls\": true, \"retrieved\": true, "
    "\"output\": true, \"plan\": true}\n"
    "}\n";

static void phx_pol_role_defaults(phx_safety_role_policy *r)
{
    r->warn = 0.5;
    r->block = 0.8;
    r->secrets = PHX_VERDICT_REDACT;
    r->pii = PHX_VERDICT_ALLOW;
    r->hidden_text = PHX_VERDICT_WARN;
    r->intel = PHX_VERDICT_BLOCK;
    r->code_warn = 0.5;
    r->code_block = 0.9;
    r->url_warn = 0.5;
    r->url_block = 0.9;
}

static void phx_pol_num(const json_t *o, const char *k, double *out)
{
    json_t *v = json_object_get(o, k);
    if (json_is_number(v))
        *out = json_number_value(v);
}

static void phx_pol_action(const json_t *o, const char *k, int *out)
{
    int v = phx_safety_verdict_parse(json_string_value(json_object_get(o, k)));
    if (v >= 0)
        *out = v;
}

/* The guard object (the schema checked its shape). Roles default to the text that comes from
 * outside the system: user prompts, documents, tool output and model output. */
static void phx_pol_guard(phx_safety_guard_policy *g, const json_t *o)
{
    g->on = 1;
    snprintf(g->model, sizeof(g->model), "%s",
             json_string_value(json_object_get(o, "model")) ?: "");
    snprintf(g->provider, sizeof(g->provider), "%s",
             json_string_value(json_object_get(o, "provider")) ?: "");
    const char *oe = json_string_value(json_object_get(o, "on_error"));
    g->fail_open = oe && strcmp(oe, "fail_open") == 0;
    g->verdict = PHX_VERDICT_BLOCK;
    phx_pol_action(o, "verdict", &g->verdict);
    json_t *mb = json_object_get(o, "max_bytes");
    g->max_bytes = json_is_integer(mb) ? (long)json_integer_value(mb) : 16384;
    json_t *roles = json_object_get(o, "roles"), *r;
    size_t i;
    g->roles = 0;
    if (!json_is_array(roles))
        g->roles = 1u << PHX_ROLE_USER_PROMPT | 1u << PHX_ROLE_RETRIEVED_DOCUMENT |
                   1u << PHX_ROLE_TOOL_OUTPUT | 1u << PHX_ROLE_MODEL_OUTPUT;
    json_array_foreach(roles, i, r)
    {
        int role = phx_safety_role_parse(json_string_value(r));
        if (role >= 0)
            g->roles |= 1u << role;
    }
}

/* Apply one document's fields on top of p. */
static int phx_pol_apply(phx_safety_policy *p, const json_t *doc, phx_err *err)
{
    const char *name = json_string_value(json_object_get(doc, "name"));
    if (name)
        snprintf(p->name, sizeof(p->name), "%s", name);
    if (json_is_integer(json_object_get(doc, "version")))
        p->version = (long)json_integer_value(json_object_get(doc, "version"));
    json_t *roles = json_object_get(doc, "roles");
    const char *rk;
    json_t *rv;
    json_object_foreach(roles, rk, rv)
    {
        int r = phx_safety_role_parse(rk);
        if (r < 0)
            return phx_err_set(err, "invalid_policy", 0, "unknown role %s", rk);
        phx_safety_role_policy *rp = &p->roles[r];
        phx_pol_num(rv, "warn", &rp->warn);
        phx_pol_num(rv, "block", &rp->block);
        phx_pol_num(rv, "code_warn", &rp->code_warn);
        phx_pol_num(rv, "code_block", &rp->code_block);
        phx_pol_num(rv, "url_warn", &rp->url_warn);
        phx_pol_num(rv, "url_block", &rp->url_block);
        phx_pol_action(rv, "secrets", &rp->secrets);
        phx_pol_action(rv, "pii", &rp->pii);
        phx_pol_action(rv, "hidden_text", &rp->hidden_text);
        phx_pol_action(rv, "intel", &rp->intel);
        if (rp->warn > rp->block || rp->code_warn > rp->code_block || rp->url_warn > rp->url_block)
            return phx_err_set(err, "invalid_policy", 0,
                               "role %s: a warn threshold is above "
                               "its block threshold",
                               rk);
    }
    json_t *dec = json_object_get(doc, "decode");
    if (json_is_integer(json_object_get(dec, "max_depth")))
        p->decode_depth = (int)json_integer_value(json_object_get(dec, "max_depth"));
    if (json_is_integer(json_object_get(dec, "max_bytes")))
        p->decode_max_bytes = (size_t)json_integer_value(json_object_get(dec, "max_bytes"));
    json_t *urls = json_object_get(doc, "urls");
    if (json_is_boolean(json_object_get(urls, "resolve")))
        p->resolve_urls = json_is_true(json_object_get(urls, "resolve"));
    json_t *cidrs = json_object_get(urls, "allow_cidrs");
    if (json_is_array(cidrs)) {
        free(p->allow_cidrs);
        p->allow_cidrs = NULL;
        size_t i, total = 1;
        json_t *c;
        json_array_foreach(cidrs, i, c) total +=
            strlen(json_string_value(c) ? json_string_value(c) : "") + 1;
        if (json_array_size(cidrs) > 0) {
            if (!(p->allow_cidrs = calloc(1, total)))
                return phx_err_set(err, "internal", 1, "out of memory");
            json_array_foreach(cidrs, i, c)
            {
                size_t at = strlen(p->allow_cidrs);
                snprintf(p->allow_cidrs + at, total - at, "%s%s", i ? "," : "",
                         json_string_value(c) ? json_string_value(c) : "");
            }
        }
    }
    json_t *tenants = json_object_get(doc, "tenants");
    if (json_is_array(tenants)) {
        json_decref(p->tenants);
        p->tenants = json_incref(tenants);
    }
    json_t *plan = json_object_get(doc, "plan");
    if (json_is_object(plan)) {
        if (!p->plan)
            p->plan = json_object();
        json_object_update(p->plan, plan);
        phx_pol_action(p->plan, "dangerous_chain", &p->chain_verdict);
        phx_pol_action(p->plan, "forbidden_kind", &p->kind_verdict);
        phx_pol_action(p->plan, "private_url", &p->url_verdict);
    }
    json_t *guard = json_object_get(doc, "guard");
    if (json_is_object(guard))
        phx_pol_guard(&p->guard, guard);
    return 0;
}

phx_safety_policy *phx_safety_policy_new(const json_t *doc, const phx_schema *schema, phx_err *err)
{
    phx_safety_policy *p = calloc(1, sizeof(*p));
    json_t *def = json_loads(phx_safety_policy_default, 0, NULL);
    if (!p || !def) {
        phx_err_set(err, "internal", 1, "out of memory");
        goto err;
    }
    p->refs = 1;
    for (int r = 0; r < PHX_ROLE_COUNT; r++)
        phx_pol_role_defaults(&p->roles[r]);
    p->chain_verdict = p->kind_verdict = p->url_verdict = PHX_VERDICT_BLOCK;
    if (phx_pol_apply(p, def, err) < 0)
        goto err;
    if (doc) {
        json_t *errors = NULL;
        if (schema && phx_schema_validate(schema, doc, &errors) != 0) {
            json_t *e0 = json_array_get(errors, 0);
            phx_err_set(err, "invalid_policy", 0, "policy fails policy.v1 at %s: %s",
                        json_string_value(json_object_get(e0, "path")),
                        json_string_value(json_object_get(e0, "message")));
            json_decref(errors);
            goto err;
        }
        json_decref(errors);
        if (phx_pol_apply(p, doc, err) < 0)
            goto err;
    }
    json_decref(def);
    return p;
err:
    json_decref(def);
    if (p) {
        p->refs = 1;
        phx_safety_policy_release(p);
    }
    return NULL;
}

phx_safety_policy *phx_safety_policy_ref(phx_safety_policy *p)
{
    if (p)
        __atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
    return p;
}

void phx_safety_policy_release(phx_safety_policy *p)
{
    if (!p || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    free(p->allow_cidrs);
    json_decref(p->tenants);
    json_decref(p->plan);
    free(p);
}

int phx_safety_policy_tenant_ok(const phx_safety_policy *p, const char *tenant)
{
    if (!p->tenants)
        return 1;
    size_t i;
    json_t *t;
    json_array_foreach(p->tenants, i, t) if (tenant && json_string_value(t) &&
                                             strcmp(json_string_value(t), tenant) == 0) return 1;
    return 0;
}

int phx_safety_kind_match(const char *pat, const char *kind)
{
    if (!pat || !kind)
        return 0;
    if (strcmp(pat, "*") == 0)
        return 1;
    size_t n = strlen(pat);
    if (n >= 2 && pat[n - 1] == '*')
        return strncmp(pat, kind, n - 1) == 0;
    return strcmp(pat, kind) == 0;
}

int phx_safety_kinds_match(const json_t *pats, const char *kind)
{
    size_t i;
    json_t *p;
    json_array_foreach(pats, i, p) if (phx_safety_kind_match(json_string_value(p), kind)) return 1;
    return 0;
}
