/* rbac.c -- the role and kind tables (see rbac.h).
 *
 * Roles are built in rather than stored in Redis: a role table that any Redis writer can
 * change would make every principal's power depend on the weakest process with Redis access,
 * and a fixed table is what the docs can describe exactly. */
#include "rbac.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    unsigned scopes;
} phx_rbac_roles[] = {
    {"admin", PHX_SCOPE_ALL},
    /* submitter: runs jobs of every kind but untrusted code, and manages its own jobs. */
    {"submitter", PHX_SCOPE_JOBS_SUBMIT | PHX_SCOPE_JOBS_READ | PHX_SCOPE_JOBS_CANCEL |
                      PHX_SCOPE_TOOLS_HTTP | PHX_SCOPE_LLM_USE | PHX_SCOPE_KB_READ |
                      PHX_SCOPE_KB_WRITE},
    /* developer: a submitter that may also run code in the exec sandbox. */
    {"developer", PHX_SCOPE_JOBS_SUBMIT | PHX_SCOPE_JOBS_READ | PHX_SCOPE_JOBS_CANCEL |
                      PHX_SCOPE_TOOLS_HTTP | PHX_SCOPE_LLM_USE | PHX_SCOPE_KB_READ |
                      PHX_SCOPE_KB_WRITE | PHX_SCOPE_EXEC_RUN},
    {"reader", PHX_SCOPE_JOBS_READ},
};

static const char *const phx_rbac_scope_names[] = {
    "jobs:submit", "jobs:read", "jobs:cancel", "tools:http", "exec:run",
    "llm:use",     "kb:read",   "kb:write",    "admin",      "ops:read",
};
#define PHX_RBAC_NSCOPES (sizeof(phx_rbac_scope_names) / sizeof(phx_rbac_scope_names[0]))

const char *phx_rbac_scope_name(unsigned scope)
{
    for (unsigned i = 0; i < PHX_RBAC_NSCOPES; i++)
        if (scope == 1u << i)
            return phx_rbac_scope_names[i];
    return "?";
}

/* Scopes of one role name (n bytes); -1 when unknown. */
static long phx_rbac_role(const char *name, size_t n)
{
    for (size_t i = 0; i < sizeof(phx_rbac_roles) / sizeof(phx_rbac_roles[0]); i++)
        if (strlen(phx_rbac_roles[i].name) == n && strncmp(phx_rbac_roles[i].name, name, n) == 0)
            return phx_rbac_roles[i].scopes;
    for (unsigned i = 0; i < PHX_RBAC_NSCOPES; i++)
        if (strlen(phx_rbac_scope_names[i]) == n && strncmp(phx_rbac_scope_names[i], name, n) == 0)
            return 1L << i;
    return -1;
}

/* Walk the comma-separated list; call back with each trimmed name. Stops at the first
 * callback returning non-zero and returns that. */
static int phx_rbac_each(const char *roles, int (*fn)(const char *, size_t, void *), void *arg)
{
    const char *p = roles ? roles : "";
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *s = p;
        while (n && *s == ' ')
            s++, n--;
        while (n && s[n - 1] == ' ')
            n--;
        int rc = n ? fn(s, n, arg) : 0;
        if (rc)
            return rc;
        p = e ? e + 1 : p + strlen(p);
    }
    return 0;
}

static int phx_rbac_add(const char *name, size_t n, void *arg)
{
    long s = phx_rbac_role(name, n);
    if (s > 0)
        *(unsigned *)arg |= (unsigned)s;
    return 0;
}

unsigned phx_rbac_scopes(const char *roles)
{
    unsigned scopes = 0;
    phx_rbac_each(roles, phx_rbac_add, &scopes);
    return scopes;
}

typedef struct {
    char *bad;
    size_t badlen;
} phx_rbac_badbuf;

static int phx_rbac_known(const char *name, size_t n, void *arg)
{
    phx_rbac_badbuf *b = arg;
    if (phx_rbac_role(name, n) >= 0)
        return 0;
    snprintf(b->bad, b->badlen, "%.*s", (int)n, name);
    return -1;
}

int phx_rbac_roles_valid(const char *roles, char *bad, size_t badlen)
{
    phx_rbac_badbuf b = {bad, badlen};
    if (bad && badlen)
        bad[0] = '\0';
    return phx_rbac_each(roles, phx_rbac_known, &b) ? -1 : 0;
}

unsigned phx_rbac_kind_scope(const char *kind)
{
    if (strcmp(kind, "tool.http_fetch") == 0 || strcmp(kind, "tool.webhook") == 0)
        return PHX_SCOPE_TOOLS_HTTP; /* anything that reaches the network on the job's behalf */
    if (strncmp(kind, "exec.", 5) == 0)
        return PHX_SCOPE_EXEC_RUN;
    if (strncmp(kind, "llm.", 4) == 0)
        return PHX_SCOPE_LLM_USE;
    if (strcmp(kind, "kb.search") == 0)
        return PHX_SCOPE_KB_READ;
    if (strncmp(kind, "kb.", 3) == 0)
        return PHX_SCOPE_KB_WRITE;
    return 0; /* tool.calc, tool.json_extract, safety.*: pure functions of their input */
}

json_t *phx_rbac_scopes_json(unsigned scopes)
{
    json_t *a = json_array();
    for (unsigned i = 0; i < PHX_RBAC_NSCOPES; i++)
        if (scopes & (1u << i))
            json_array_append_new(a, json_string(phx_rbac_scope_names[i]));
    return a;
}

unsigned phx_rbac_scopes_from_json(const json_t *names)
{
    unsigned scopes = 0;
    size_t k;
    json_t *n;
    json_array_foreach(names, k, n)
    {
        for (unsigned i = 0; json_is_string(n) && i < PHX_RBAC_NSCOPES; i++)
            if (strcmp(json_string_value(n), phx_rbac_scope_names[i]) == 0)
                scopes |= 1u << i;
    }
    return scopes;
}

int phx_rbac_kind_allowed(unsigned scopes, const char *kind)
{
    unsigned need = phx_rbac_kind_scope(kind);
    return (scopes & PHX_SCOPE_ADMIN) || !need || (scopes & need) == need;
}

int phx_rbac_check_steps(const json_t *steps, unsigned scopes, json_t **reasons)
{
    *reasons = NULL;
    if (scopes & PHX_SCOPE_ADMIN)
        return 0;
    if (!(scopes & PHX_SCOPE_JOBS_SUBMIT)) {
        *reasons = json_pack("[s]", "submitting jobs needs scope jobs:submit");
        return -1;
    }
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s)
    {
        const char *kind = json_string_value(json_object_get(s, "kind"));
        if (!kind || phx_rbac_kind_allowed(scopes, kind))
            continue;
        unsigned need = phx_rbac_kind_scope(kind);
        if (!*reasons)
            *reasons = json_array();
        char msg[300];
        snprintf(msg, sizeof(msg), "step %s (%s) needs scope %s",
                 json_string_value(json_object_get(s, "id")) ?: "?", kind,
                 phx_rbac_scope_name(need));
        json_array_append_new(*reasons, json_string(msg));
    }
    return *reasons ? -1 : 0;
}
