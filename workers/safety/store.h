/* store.h -- policy documents in Redis, cached per process and hot-reloaded.
 *
 * Keys: phx:safety:policy:NAME holds a policy.v1 JSON document (NAME is a tenant id, a policy
 * name a scan asks for, or "default"); phx:safety:policy:version is a counter the writer
 * bumps (INCR) after any change. Every check_ms at most, a scan reads the counter; when it
 * moved (or after SIGHUP, phx_safety_store_invalidate) cached policies are reloaded. Lookup
 * order for a scan: the name it asks for, else the tenant's own policy, else "default", else
 * the built-in default. An invalid document is refused (logged, counted) and the last good one
 * for that name stays in force, so a typo cannot switch safety off; if Redis is unreachable the
 * cached policies keep working. */
#ifndef PHX_SAFETY_STORE_H
#define PHX_SAFETY_STORE_H

#include "policy.h"
#include "jobstore.h"
#include "redis.h"

#define PHX_SAFETY_POLICY_KEY     PHX_KEY_SAFETY_POLICY
#define PHX_SAFETY_POLICY_VERSION "phx:safety:policy:version"

typedef struct phx_safety_store phx_safety_store;

phx_safety_store *phx_safety_store_new(const phx_schema *schema, long check_ms);
void phx_safety_store_free(phx_safety_store *s);
/* Force a reload at the next lookup (SIGHUP). Async-signal-unsafe work is not done here. */
void phx_safety_store_invalidate(phx_safety_store *s);

/* The policy for an explicit name (may be NULL) and tenant; a new reference, release with
 * phx_safety_policy_release. NULL with err: "forbidden" when the named policy does not list the
 * tenant, "not_found" when an explicitly named policy does not exist, "redis_unavailable"
 * (retryable) when nothing is cached and Redis cannot be reached. */
phx_safety_policy *phx_safety_store_get(phx_safety_store *s, phx_redis *r, const char *name,
                                        const char *tenant, phx_err *err);

#endif
