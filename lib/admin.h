/* admin.h -- each Phoenix process's admin HTTP listener: health, readiness, metrics.
 *
 * Orchestrators and the dev stack probe every process the same way:
 *   GET /healthz  200 {"status":"ok"}, or 503 {"status":"stuck","since_ms":N} when the main
 *                 loop has not called phx_admin_heartbeat() for longer than stuck_after
 *                 (a wedged loop is restarted, not waited for);
 *   GET /readyz   200 {"status":"ready"}, or 503 {"status":"not_ready","reason":"..."} from
 *                 the process's ready callback (e.g. Kafka or Redis not reachable yet);
 *   GET /metrics  phx_metrics_render(), text exposition format 0.0.4.
 * Any other path is 404 and any method but GET (or HEAD) on these is 405. Requests are counted
 * in phx_admin_requests_total{path,code}, with unknown paths counted as path="other" so a
 * scanner cannot grow the registry.
 *
 * The listener runs on libmicrohttpd's internal thread, so callbacks run on that thread, not on
 * the caller's. There is no authentication: bind to loopback (the default) unless the network
 * in front of it is trusted. */
#ifndef PHX_ADMIN_H
#define PHX_ADMIN_H

#include <stddef.h>

/* Readiness probe: 0 = ready, else fill why (NUL-terminated, whylen bytes at most). Runs on the
 * admin thread, so it must be thread-safe and quick (it holds up the other probes). */
typedef int (*phx_ready_fn)(void *ctx, char *why, size_t whylen);

typedef struct phx_admin phx_admin;

/* Listen on addr: "HOST:PORT" (IPv4 or host name), "[V6]:PORT", or ":PORT"; NULL or "" means
 * 127.0.0.1:0. Port 0 picks an ephemeral port (see phx_admin_port). ready may be NULL (always
 * ready). NULL with err filled when the address is bad or cannot be bound. */
phx_admin *phx_admin_start(const char *addr, phx_ready_fn ready, void *ctx, char *err,
                           size_t errlen);
int phx_admin_port(const phx_admin *a);

/* The main loop calls this each iteration; cheap (one atomic store). */
void phx_admin_heartbeat(phx_admin *a);
/* Default 30000. */
void phx_admin_set_stuck_after_ms(phx_admin *a, long ms);

/* Extra routes (e.g. the ingress ops page): a request whose path equals path_prefix, or continues
 * it after a '/', goes to fn, with any method; the longest matching prefix wins and the built-in
 * paths above cannot be overridden. fn returns an HTTP status and sets *body (malloc'd, or NULL
 * for none; the listener frees it) and *ctype (a static string; NULL means text/plain). It runs
 * on the admin thread. Request bodies are read and discarded. Routes can be added at any time;
 * add them right after phx_admin_start() so the first probe already sees them. */
typedef int (*phx_admin_route_fn)(void *ctx, const char *method, const char *path, char **body,
                                  const char **ctype);
void phx_admin_add_route(phx_admin *a, const char *path_prefix, phx_admin_route_fn fn, void *ctx);

/* Stop listening, wait for requests in flight, free. NULL is a no-op. */
void phx_admin_stop(phx_admin *a);

#endif
