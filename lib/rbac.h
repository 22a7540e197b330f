/* rbac.h -- roles, scopes and which step kinds a scope allows.
 *
 * One table answers "may this principal run this job?" for the ingress (before publishing)
 * and for the planner (again, because jobs can also arrive straight on phx.jobs). Keeping
 * both checks on one function means they cannot disagree.
 *
 * A principal holds roles (comma-separated, e.g. "submitter,exec"); a role grants scopes; a
 * role may also be written as a scope itself ("jobs:read"). Unknown role names grant nothing
 * (phx_rbac_roles_valid lets `phx keys create` refuse them up front). */
#ifndef PHX_RBAC_H
#define PHX_RBAC_H

#include <jansson.h>

enum phx_scope {
    PHX_SCOPE_JOBS_SUBMIT = 1u << 0,
    PHX_SCOPE_JOBS_READ = 1u << 1,
    PHX_SCOPE_JOBS_CANCEL = 1u << 2,
    PHX_SCOPE_TOOLS_HTTP = 1u << 3,
    PHX_SCOPE_EXEC_RUN = 1u << 4,
    PHX_SCOPE_LLM_USE = 1u << 5,
    PHX_SCOPE_KB_READ = 1u << 6,
    PHX_SCOPE_KB_WRITE = 1u << 7,
    PHX_SCOPE_ADMIN = 1u << 8,
    PHX_SCOPE_OPS_READ = 1u << 9, /* the ops page's API: every tenant's pools and jobs, read-only */
};
#define PHX_SCOPE_ALL 0x3ffu

/* Scopes granted by a comma-separated role list (NULL or "" grants none). */
unsigned phx_rbac_scopes(const char *roles);
/* 0 when every role in the list is known; -1 with the first unknown one in bad. */
int phx_rbac_roles_valid(const char *roles, char *bad, size_t badlen);
/* The scope a step kind needs besides jobs:submit (0 when none). */
unsigned phx_rbac_kind_scope(const char *kind);
/* Name of one scope bit ("jobs:submit"); "?" for anything else. */
const char *phx_rbac_scope_name(unsigned scope);
/* Scopes as a JSON array of names. */
json_t *phx_rbac_scopes_json(unsigned scopes);
/* Scopes named in a JSON array (as phx_rbac_scopes_json writes them; unknown names grant
 * nothing). */
unsigned phx_rbac_scopes_from_json(const json_t *names);
/* 1 if scopes may run a step of kind (admin may run anything). */
int phx_rbac_kind_allowed(unsigned scopes, const char *kind);
/* Check every step of steps (a job's array) against scopes. 0 allowed; -1 with *reasons a
 * new array of one string per refused step. */
int phx_rbac_check_steps(const json_t *steps, unsigned scopes, json_t **reasons);

#endif
