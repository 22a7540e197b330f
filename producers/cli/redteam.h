/* redteam.h -- `phx redteam`: adversarial suites against a live deployment.
 *
 * Every suite attacks the deployment through its public interfaces only -- jobs published to
 * phx.jobs (answers read from phx.replies and phx.dlq) and the HTTP ingress -- never through
 * Redis or a process's internals, so the same command judges the local stack, a staging
 * cluster or production. A suite records one case per attack with an outcome:
 *
 *   contained  the defence held (refused, killed, dead-lettered, answered 401...)
 *   escaped    the attack got through: the command exits non-zero
 *   error      the case could not be decided (no answer in time, an unexpected status);
 *              reported, and exits non-zero unless there was an escape (exit 1 wins)
 *   skipped    the deployment lacks what the case needs (no credentials, no data)
 *
 * Detection rates (the safety corpus) are a different thing from escapes: a prompt-injection
 * detector misses some texts by nature, so the safety suite reports rates against a
 * configured minimum instead of counting each miss as an escape. */
#ifndef PHX_REDTEAM_H
#define PHX_REDTEAM_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"

enum rt_outcome { RT_CONTAINED, RT_ESCAPED, RT_ERROR, RT_SKIPPED };

/* One suite's tally and its cases (a JSON array of {"name", "outcome", "detail"}). */
typedef struct rt_suite {
    const char *name;
    int tried, contained, escaped, errors, skipped;
    json_t *cases;
    json_t *rates; /* rate suites: {"GROUP": {"tried", "flagged", "rate", "min", "ok"}} */
    int below;     /* rate groups under their minimum */
    int64_t ms;    /* how long the suite took */
} rt_suite;

/* The canary: a loopback HTTP listener that counts requests per path, so an SSRF attempt that
 * reaches it is seen even if the tool reported failure. */
typedef struct rt_canary rt_canary;

typedef struct rt_ctx {
    const phx_cli_env *env;
    const char *ingress;    /* PHX_INGRESS_URL */
    const char *api_key;    /* PHX_REDTEAM_API_KEY: admin key of tenant A (optional) */
    const char *api_key_b;  /* PHX_REDTEAM_API_KEY_B: admin key of another tenant (optional) */
    const char *tenant;     /* tenant of the jobs published to phx.jobs */
    const char *corpus_dir; /* ops/redteam */
    const char *eval_dir;   /* $PHX_EVAL_DIR */
    const char *topics;     /* payload suite: comma-separated topics */
    const char *bait_addr;  /* ssrf: an address tool.http_fetch may reach, for redirects */
    int timeout_s;          /* per suite wait for answers */
    int quick;              /* a reduced, fast selection */
    int safety_per_file;    /* corpus records per file */
    double safety_min_rate; /* minimum detection rate per attack group */
    double safety_max_fpr;  /* maximum block rate on benign texts */
    int verbose;
} rt_ctx;

/* Record a case (detail is copied; may be NULL). */
void rt_case(rt_suite *s, const char *name, enum rt_outcome o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Publish jobs (job.v1 objects, ids set) to phx.jobs and wait up to timeout_s for each one's
 * reply on phx.replies. Returns {job_id: reply} (missing ids had no reply in time), or NULL
 * when Kafka is unreachable (a message on stderr). */
json_t *rt_run_jobs(const rt_ctx *c, json_t *jobs, int timeout_s);
/* Read rk until, for every key of want, a JSON message whose string field `field` names it
 * arrived, or timeout_s passed. Returns {key: first such message}. */
json_t *rt_collect(rd_kafka_t *rk, const json_t *want, const char *field, int timeout_s);
/* A one-step job {"id": "rt-PREFIX-...", steps: [{id: "s", kind, input}]} with one attempt. */
json_t *rt_job1(const rt_ctx *c, const char *prefix, const char *kind, json_t *input,
                int timeout_ms);
/* The step "s" of a reply: its output (status succeeded) or NULL; *code gets the error code. */
json_t *rt_step_output(json_t *reply, const char **code);

/* One HTTP request to the ingress. Returns the status (0 when unreachable); body (malloc'd,
 * may be NULL) gets the answer. headers: NULL-terminated "Name: value" strings. */
long rt_http(const rt_ctx *c, const char *method, const char *path, const char *const *headers,
             const void *body, size_t len, char **answer);

rt_canary *rt_canary_start(const char *addr, char *url, size_t urlen);
/* The same, answering every request with a 302 to target + path (the bait of a redirect). */
rt_canary *rt_canary_start_redirect(const char *addr, const char *target, char *url, size_t urlen);
/* Requests seen on path (exact match) so far; any path when path is NULL. */
int rt_canary_hits(rt_canary *k, const char *path);
void rt_canary_stop(rt_canary *k);

int rt_suite_exec(const rt_ctx *c, rt_suite *s);
int rt_suite_safety(const rt_ctx *c, rt_suite *s);
int rt_suite_ssrf(const rt_ctx *c, rt_suite *s);
int rt_suite_auth(const rt_ctx *c, rt_suite *s);
int rt_suite_payload(const rt_ctx *c, rt_suite *s);

int phx_cli_redteam(const phx_cli_env *env, int argc, char **argv);

#endif
