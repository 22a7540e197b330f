/* main.c -- phx-ingress: configuration, lifecycle and signals (the API is in ingress.c). */
#include "admin.h"
#include "ingress.h"
#include "log.h"
#include "metrics.h"
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
};

int main(int argc, char **argv)
{
    phx_ingress_cfg cfg = {0};
    size_t n = sizeof(phx_ingress_opts) / sizeof(phx_ingress_opts[0]);
    phx_config_start(argc, argv, "phx-ingress",
                     "phx-ingress: the HTTP API. POST /v1/jobs (Bearer API key) validates a job, "
                     "stores it in Redis and publishes it to phx.jobs; GET /v1/jobs/ID returns "
                     "its state and outputs.",
                     phx_ingress_opts, n, &cfg, &cfg.common);
    char err[512];
    phx_err e;
    phx_err_clear(&e);
    int rc = 2;
    phx_producer *producer = NULL;
    phx_schema_set *schemas = NULL;
    phx_ingress *in = NULL;
    phx_admin *admin = NULL;
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
    phx_log_info("listening on port %d (admin port %d)", phx_ingress_port(in),
                 phx_admin_port(admin));
    for (;;) {
        struct timespec ts = {0, 200 * 1000000};
        int sig = sigtimedwait(&sigs, NULL, &ts);
        phx_admin_heartbeat(admin);
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    phx_log_info("stopping");
    rc = 0;
out:
    /* Stop taking requests first, then let in-flight deliveries finish. */
    phx_ingress_stop(in);
    phx_admin_stop(admin);
    phx_producer_free(producer, 10000);
    phx_schema_set_free(schemas);
    phx_config_free(phx_ingress_opts, n, &cfg);
    return rc;
}
