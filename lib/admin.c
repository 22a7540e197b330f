/* admin.c -- the admin HTTP listener (see admin.h), on libmicrohttpd.
 *
 * libmicrohttpd runs one internal polling thread: admin traffic is a probe every few seconds
 * and a scrape every few more, so one thread is plenty, and it keeps the ready callback and the
 * extra routes single-threaded with respect to each other. Binding is left to libmicrohttpd;
 * its error-log callback is captured while starting so a bind failure reaches the caller's err
 * buffer with the system's reason instead of a bare NULL. */
#include "admin.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PHX_ADMIN_METRICS_CTYPE "text/plain; version=0.0.4; charset=utf-8"
#define PHX_ADMIN_JSON_CTYPE    "application/json"

struct phx_admin_route {
    char *prefix;
    size_t len;
    phx_admin_route_fn fn;
    void *ctx;
};

struct phx_admin {
    struct MHD_Daemon *mhd;
    int port;
    phx_ready_fn ready;
    void *ready_ctx;
    _Atomic int64_t last_beat_ms; /* phx_mono_ms() of the last heartbeat */
    _Atomic long stuck_after_ms;
    pthread_mutex_t mu; /* guards routes: they may be added while requests are served */
    struct phx_admin_route *routes;
    size_t nroutes;
    _Atomic int starting; /* while set, libmicrohttpd's complaints go to start_err */
    char start_err[256];
};

/* One response in the making: filled by a route, sent by phx_admin_answer. */
struct phx_admin_reply {
    int status;
    char *body; /* malloc'd or NULL */
    const char *ctype;
    const char *path_label; /* bounded value for the requests counter */
    int allow_get;          /* 405: add Allow: GET, HEAD */
};

/* Marks a connection whose headers have been seen (libmicrohttpd's first call per request). */
static int phx_admin_conn_marker;

static void phx_admin_log(void *cls, const char *fmt, va_list ap)
{
    struct phx_admin *a = cls;
    char msg[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (atomic_load(&a->starting)) {
        if (!a->start_err[0]) /* the first message names the cause; later ones are fallout */
            snprintf(a->start_err, sizeof(a->start_err), "%s", msg);
        return;
    }
    phx_log_warn("admin: %s", msg);
}

static char *phx_admin_strdup(const char *s)
{
    return strdup(s); /* NULL on OOM is handled by the sender as a 500 */
}

/* --- built-in endpoints ----------------------------------------------------------------- */

static void phx_admin_healthz(struct phx_admin *a, struct phx_admin_reply *r)
{
    int64_t since = phx_mono_ms() - atomic_load(&a->last_beat_ms);
    r->ctype = PHX_ADMIN_JSON_CTYPE;
    if (since > atomic_load(&a->stuck_after_ms)) {
        char buf[96];
        snprintf(buf, sizeof(buf), "{\"status\":\"stuck\",\"since_ms\":%lld}", (long long)since);
        r->status = MHD_HTTP_SERVICE_UNAVAILABLE;
        r->body = phx_admin_strdup(buf);
        return;
    }
    r->status = MHD_HTTP_OK;
    r->body = phx_admin_strdup("{\"status\":\"ok\"}");
}

static void phx_admin_readyz(struct phx_admin *a, struct phx_admin_reply *r)
{
    char why[256] = "";
    r->ctype = PHX_ADMIN_JSON_CTYPE;
    if (!a->ready || a->ready(a->ready_ctx, why, sizeof(why)) == 0) {
        r->status = MHD_HTTP_OK;
        r->body = phx_admin_strdup("{\"status\":\"ready\"}");
        return;
    }
    why[sizeof(why) - 1] = '\0';
    phx_utf8_scrub(why); /* the reason may quote a broker's error text */
    json_t *o =
        json_pack("{s:s,s:s}", "status", "not_ready", "reason", why[0] ? why : "unspecified");
    r->status = MHD_HTTP_SERVICE_UNAVAILABLE;
    r->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
}

static void phx_admin_metrics(struct phx_admin_reply *r)
{
    r->status = MHD_HTTP_OK;
    r->ctype = PHX_ADMIN_METRICS_CTYPE;
    r->body = phx_metrics_render();
}

/* --- routing ---------------------------------------------------------------------------- */

static int phx_admin_prefix_match(const struct phx_admin_route *rt, const char *path)
{
    if (strncmp(path, rt->prefix, rt->len) != 0)
        return 0;
    /* "/ops" serves "/ops" and "/ops/x" but not "/opsx"; "/ops/" serves anything below. */
    return path[rt->len] == '\0' || path[rt->len] == '/' || rt->prefix[rt->len - 1] == '/';
}

/* Longest matching extra route, copied out so the lock is not held while it runs. */
static int phx_admin_find_route(struct phx_admin *a, const char *path, struct phx_admin_route *out)
{
    int found = 0;
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->nroutes; i++) {
        if (phx_admin_prefix_match(&a->routes[i], path) &&
            (!found || a->routes[i].len > out->len)) {
            *out = a->routes[i];
            found = 1;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return found;
}

static void phx_admin_route(struct phx_admin *a, const char *method, const char *path,
                            struct phx_admin_reply *r)
{
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    static const char *const builtin[] = {"/healthz", "/readyz", "/metrics"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(path, builtin[i]) != 0)
            continue;
        r->path_label = builtin[i];
        if (!get) {
            r->status = MHD_HTTP_METHOD_NOT_ALLOWED;
            r->ctype = PHX_ADMIN_JSON_CTYPE;
            r->body = phx_admin_strdup("{\"error\":\"method_not_allowed\"}");
            r->allow_get = 1;
        } else if (i == 0) {
            phx_admin_healthz(a, r);
        } else if (i == 1) {
            phx_admin_readyz(a, r);
        } else {
            phx_admin_metrics(r);
        }
        if (!r->body) /* every built-in answer has a body: this one ran out of memory */
            r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        return;
    }

    struct phx_admin_route rt = {0};
    if (phx_admin_find_route(a, path, &rt)) {
        r->path_label = rt.prefix;
        char *body = NULL;
        const char *ctype = NULL;
        int status = rt.fn(rt.ctx, method, path, &body, &ctype);
        if (status < 100 || status > 599) {
            phx_log_error("admin: route %s returned HTTP status %d", rt.prefix, status);
            free(body);
            body = NULL;
            ctype = NULL;
            status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        }
        r->status = status;
        r->body = body;
        r->ctype = ctype ? ctype : "text/plain; charset=utf-8";
        return;
    }

    r->path_label = "other";
    r->status = MHD_HTTP_NOT_FOUND;
    r->ctype = PHX_ADMIN_JSON_CTYPE;
    r->body = phx_admin_strdup("{\"error\":\"not_found\"}");
}

static void phx_admin_count(const struct phx_admin_reply *r)
{
    char esc[256], labels[320];
    phx_metrics_escape_label(esc, sizeof(esc), r->path_label);
    snprintf(labels, sizeof(labels), "path=\"%s\",code=\"%d\"", esc, r->status);
    phx_metric_add(phx_counter("phx_admin_requests_total",
                               "Admin HTTP requests served, by path and status code.", labels),
                   1);
}

static enum MHD_Result phx_admin_answer(struct MHD_Connection *conn, struct phx_admin_reply *r)
{
    struct MHD_Response *resp;
    if (r->body) {
        resp = MHD_create_response_from_buffer(strlen(r->body), r->body, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(r->body);
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    r->body = NULL; /* owned by the response now (or freed) */
    if (!resp)
        return MHD_NO;
    enum MHD_Result ok = MHD_NO;
    if ((!r->ctype ||
         MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype) == MHD_YES) &&
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES &&
        (!r->allow_get ||
         MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") == MHD_YES))
        ok = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result phx_admin_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                        const char *method, const char *version,
                                        const char *upload_data, size_t *upload_data_size,
                                        void **con_cls)
{
    (void)version;
    (void)upload_data;
    /* First call: headers only. Answering now would leave a request body unread on a
     * keep-alive connection, so wait for the body (discarded below) to end. */
    if (*con_cls == NULL) {
        *con_cls = &phx_admin_conn_marker;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    struct phx_admin_reply r = {0};
    phx_admin_route(cls, method, url, &r);
    phx_admin_count(&r);
    return phx_admin_answer(conn, &r);
}

/* --- lifecycle -------------------------------------------------------------------------- */

/* "HOST:PORT", "[V6]:PORT", ":PORT" or NULL -> a socket address. 0 or -1 with err. */

phx_admin *phx_admin_start(const char *addr, phx_ready_fn ready, void *ctx, char *err,
                           size_t errlen)
{
    char dummy[8];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    struct sockaddr_storage ss;
    if (phx_addr_parse("admin", addr && *addr ? addr : "127.0.0.1:0", &ss, err, errlen) < 0)
        return NULL;

    struct phx_admin *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "admin: out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    a->ready = ready;
    a->ready_ctx = ctx;
    atomic_store(&a->last_beat_ms, phx_mono_ms());
    atomic_store(&a->stuck_after_ms, 30000);
    atomic_store(&a->starting, 1);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* Connection limit and idle timeout: a probe that hangs must not pin the one thread's
     * connection slots for ever. */
    /* The port argument is only used in libmicrohttpd's messages: SOCK_ADDR carries it too. */
    uint16_t port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    a->mhd =
        MHD_start_daemon(flags, port, NULL, NULL, phx_admin_handle, a, MHD_OPTION_EXTERNAL_LOGGER,
                         phx_admin_log, a, /* must come first */
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    atomic_store(&a->starting, 0);
    if (!a->mhd) {
        snprintf(err, errlen, "admin: cannot listen on %s: %s",
                 addr && *addr ? addr : "127.0.0.1:0",
                 a->start_err[0] ? a->start_err : "libmicrohttpd failed to start");
        goto err;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info ? info->port : 0;
    if (a->port == 0) {
        snprintf(err, errlen, "admin: cannot learn the bound port");
        goto err;
    }
    return a;
err:
    phx_admin_stop(a);
    return NULL;
}

int phx_admin_port(const phx_admin *a)
{
    return a->port;
}

void phx_admin_heartbeat(phx_admin *a)
{
    atomic_store_explicit(&a->last_beat_ms, phx_mono_ms(), memory_order_relaxed);
}

void phx_admin_set_stuck_after_ms(phx_admin *a, long ms)
{
    atomic_store(&a->stuck_after_ms, ms);
}

void phx_admin_add_route(phx_admin *a, const char *path_prefix, phx_admin_route_fn fn, void *ctx)
{
    if (!path_prefix[0]) {
        phx_log_error("admin: cannot add route \"%s\"", path_prefix);
        return;
    }
    pthread_mutex_lock(&a->mu);
    a->routes = phx_xrealloc(a->routes, (a->nroutes + 1) * sizeof(*a->routes));
    a->routes[a->nroutes++] = (struct phx_admin_route){
        .prefix = phx_xstrdup(path_prefix), .len = strlen(path_prefix), .fn = fn, .ctx = ctx};
    pthread_mutex_unlock(&a->mu);
}

void phx_admin_stop(phx_admin *a)
{
    if (!a)
        return;
    if (a->mhd)
        MHD_stop_daemon(a->mhd); /* joins the thread: no handler runs after this */
    for (size_t i = 0; i < a->nroutes; i++)
        free(a->routes[i].prefix);
    free(a->routes);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
