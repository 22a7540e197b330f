/* main.c -- phx-ingress: configuration, lifecycle and signals (the API is in ingress.c). */
#include "admin.h"
#include "ingress.h"
#include "log.h"
#include "metrics.h"
#include "opsbeat.h"
#include "trace.h"
#include "msg.h"
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#define CFG phx_ingress_cfg
static const phx_opt phx_ingress_opts[] = {
    PHX_COMMON_OPTS(CFG),
    {"PHX_INGRESS_ADDR", PHX_OPT_STR, "127.0.0.1:8080", 0, 0, offsetof(CFG, listen),
     "Where the HTTP API listens, HOST:PORT or [V6]:PORT (port 0 picks a free one)."},
    {"PHX_INGRESS_MAX_BODY", PHX_OPT_INT, "1048576", 1024, 67108864, offsetof(CFG, max_body),
     "Largest request body accepted; bigger ones get 413."},
    {"PHX_INGRESS_THREADS", PHX_OPT_INT, "4", 1, 256, offsetof(CFG, threads),
     "HTTP worker threads (and the bound on Redis connections)."},
    {"PHX_INGRESS_COMMITTERS", PHX_OPT_INT, "2", 1, 16, offsetof(CFG, committers),
     "Group commit threads: each takes the POST /v1/jobs requests queued meanwhile and stores "
     "and publishes them together (one Redis round trip per stage, one Kafka wait). Two let "
     "one batch's Kafka wait overlap the next batch's Redis round trips."},
    {"PHX_INGRESS_MAX_CONNECTIONS", PHX_OPT_INT, "4096", 16, 1000000,
     offsetof(CFG, max_connections), "Open client connections at most; more are refused."},
    {"PHX_INGRESS_MAX_CONN_PER_IP", PHX_OPT_INT, "256", 0, 1000000, offsetof(CFG, max_conn_per_ip),
     "Open connections per client address at most (0 = no limit): what stops one host from "
     "holding every connection open (slowloris)."},
    {"PHX_INGRESS_CONN_TIMEOUT_S", PHX_OPT_INT, "10", 1, 3600, offsetof(CFG, conn_timeout_s),
     "Close a connection idle this long (headers or body not progressing, or keep-alive idle)."},
    {"PHX_INGRESS_BODY_TIMEOUT_MS", PHX_OPT_INT, "10000", 100, 600000,
     offsetof(CFG, body_timeout_ms),
     "A request body still arriving this long after the request began is cut off (408)."},
    {"PHX_INGRESS_MAX_HEADER_BYTES", PHX_OPT_INT, "32768", 4096, 1048576,
     offsetof(CFG, max_header_bytes),
     "Per-connection buffer for the request line and headers; larger headers get 431."},
    {"PHX_RATE_TENANT_PER_S", PHX_OPT_INT, "2000", 0, 10000000, offsetof(CFG, rate_tenant),
     "Sustained requests per second per tenant, all principals together (0 = unlimited)."},
    {"PHX_RATE_TENANT_BURST", PHX_OPT_INT, "4000", 1, 10000000, offsetof(CFG, burst_tenant),
     "Requests a tenant may send at once above its sustained rate."},
    {"PHX_RATE_PRINCIPAL_PER_S", PHX_OPT_INT, "500", 0, 10000000, offsetof(CFG, rate_principal),
     "Sustained requests per second per principal (0 = unlimited)."},
    {"PHX_RATE_PRINCIPAL_BURST", PHX_OPT_INT, "1000", 1, 10000000, offsetof(CFG, burst_principal),
     "Requests a principal may send at once."},
    {"PHX_JWT_KEYS_FILE", PHX_OPT_STR, "", 0, 0, offsetof(CFG, jwt_keys_file),
     "JSON file of JWT verification keys ({\"keys\": [{\"kid\", \"alg\": HS256|RS256|ES256, "
     "\"secret_file\" or \"public_key_file\"}]}); empty = JWTs refused. Re-read on SIGHUP."},
    {"PHX_JWT_ISSUER", PHX_OPT_STR, "", 0, 0, offsetof(CFG, jwt_issuer),
     "Required `iss` of JWTs (empty = not checked)."},
    {"PHX_JWT_AUDIENCE", PHX_OPT_STR, "", 0, 0, offsetof(CFG, jwt_audience),
     "Required `aud` of JWTs (empty = not checked)."},
    {"PHX_JWT_LEEWAY_S", PHX_OPT_INT, "30", 0, 300, offsetof(CFG, jwt_leeway_s),
     "Clock skew allowed when checking `exp` and `nbf`."},
    {"PHX_INGRESS_MAX_STREAMS", PHX_OPT_INT, "256", 0, 100000, offsetof(CFG, max_streams),
     "Concurrent Server-Sent Event streams (GET /v1/jobs/ID/events); 0 disables them."},
    {"PHX_INGRESS_GUARD_REFRESH_MS", PHX_OPT_INT, "500", 100, 10000,
     offsetof(CFG, guard_refresh_ms),
     "How often the suspended tenants, API keys and principals (phx:sec:suspended, written by "
     "phx-sentinel and `phx security`) are reloaded: a suspension or release takes effect "
     "within this long on every replica (403 code suspended)."},
    {"PHX_INGRESS_KEY_CACHE_MS", PHX_OPT_INT, "500", 0, 1000, offsetof(CFG, key_cache_ms),
     "How long an API key read from Redis is trusted without asking again (0 = ask on every "
     "request). A revocation or rotation made elsewhere takes effect on this replica within "
     "this long, hence at most 1000; the replica that revokes a key stops accepting it at once."},
    {"PHX_INGRESS_AUDIT_AUTH", PHX_OPT_BOOL, "true", 0, 0, offsetof(CFG, audit_auth),
     "Record every 401 and missing-scope 403 in the Redis stream phx:audit:auth (key id, "
     "principal, client address; never the credential) for phx-sentinel."},
    {"PHX_INGRESS_AUDIT_MAXLEN", PHX_OPT_INT, "100000", 1000, 100000000,
     offsetof(CFG, audit_maxlen), "Approximate cap on phx:audit:auth's length (XADD MAXLEN ~)."},
};

int main(int argc, char **argv)
{
    phx_ingress_cfg cfg = {0};
    size_t n = sizeof(phx_ingress_opts) / sizeof(phx_ingress_opts[0]);
    phx_config_start(argc, argv, "phx-ingress",
                     "phx-ingress: the HTTP API (docs/api.md). POST /v1/jobs validates a job, "
                     "stores it in Redis and publishes it to phx.jobs; GET, DELETE and "
                     "/events read, cancel and follow it; /v1/admin/keys manages API keys. "
                     "Callers authenticate with an API key or a JWT (Bearer), are rate limited "
                     "per tenant and principal, and need the route's scope. SIGHUP re-reads "
                     "the JWT keys.",
                     phx_ingress_opts, n, &cfg, &cfg.common);
    char err[512];
    phx_err e;
    phx_err_clear(&e);
    int rc = 2;
    phx_producer *producer = NULL;
    phx_schema_set *schemas = NULL;
    phx_ingress *in = NULL;
    phx_admin *admin = NULL;
    phx_redis *beat_redis = NULL; /* the ops heartbeat's own connection (main thread only) */
    phx_opsbeat *beat = NULL;
    phx_metrics_set_process("phx-ingress");
    sigset_t sigs;
    phx_signals_block(&sigs);

    if (!(schemas = phx_schemas_load(cfg.common.schema_dir, &e)) ||
        !(producer = phx_producer_new(cfg.common.kafka_brokers, &e))) {
        phx_log_error("start: %s", e.message);
        goto out;
    }
    rc = 1;
    if (!(in = phx_ingress_start(&cfg, producer, schemas, err, sizeof(err)))) {
        phx_log_error("start: %s", err);
        goto out;
    }
    if (!(admin =
              phx_admin_start(cfg.common.admin_addr, phx_ingress_ready, in, err, sizeof(err)))) {
        phx_log_error("admin listener: %s", err);
        goto out;
    }
    phx_log_info("listening on port %d (admin port %d); ops page at /ops", phx_ingress_port(in),
                 phx_admin_port(admin));
    if (!(beat_redis = phx_redis_from_common(&cfg.common, &e))) {
        phx_log_error("start: %s", e.message);
        goto out;
    }
    beat = phx_opsbeat_new("phx-ingress", phx_admin_port(admin));
    for (;;) {
        struct timespec ts = {0, 200 * 1000000};
        int sig = sigtimedwait(&sigs, NULL, &ts);
        phx_admin_heartbeat(admin);
        if (phx_opsbeat_due(beat)) {
            char why[256] = "";
            int ready = phx_ingress_ready(in, why, sizeof(why)) == 0;
            phx_opsbeat_tick(beat, beat_redis, ready, why, &e);
        }
        phx_ingress_guard_refresh(in, phx_now_ms());
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP && phx_ingress_reload(in, err, sizeof(err)) < 0)
            phx_log_error("reload: %s (keeping the previous keys)", err);
    }
    phx_log_info("stopping");
    phx_opsbeat_gone(beat, beat_redis);
    rc = 0;
out:
    phx_opsbeat_free(beat);
    phx_redis_free(beat_redis);
    /* Stop taking requests first, then let in-flight deliveries finish. */
    phx_ingress_stop(in);
    phx_admin_stop(admin);
    phx_producer_free(producer, 10000);
    phx_trace_shutdown(2000);
    phx_schema_set_free(schemas);
    phx_config_free(phx_ingress_opts, n, &cfg);
    return rc;
}
