/* cli.h -- the phx command line tool: shared settings and the subcommands.
 *
 * Exit codes (every subcommand): 0 success; 1 the job failed, was rejected or cancelled, or
 * the thing asked for does not exist; 2 usage or bad input; 3 timeout; 4 infrastructure
 * unreachable (Kafka or Redis). */
#ifndef PHX_CLI_H
#define PHX_CLI_H

#define PHX_EXIT_OK      0
#define PHX_EXIT_FAILED  1
#define PHX_EXIT_USAGE   2
#define PHX_EXIT_TIMEOUT 3
#define PHX_EXIT_INFRA   4

/* Settings read from the environment (the names var/stack.env defines). */
typedef struct phx_cli_env {
    const char *brokers;   /* PHX_KAFKA_BROKERS */
    const char *redis_url; /* PHX_REDIS_URL */
} phx_cli_env;

void phx_cli_env_load(phx_cli_env *env);
/* A Redis client for env (PHX_REDIS_PASSWORD_FILE honoured); NULL after printing why. */
#include "redis.h"
phx_redis *phx_cli_redis(const phx_cli_env *env);
/* Parse "JOB_ID [--FLAG] [--timeout S]" (argv[0] is the subcommand): 0, or -1 on bad usage. */
int phx_cli_job_args(int argc, char **argv, const char *flag, int *flag_set, int *timeout_s,
                     const char **id);

/* Shared by submit and probe (submit.c). The whole of FILE ("-" = stdin), at most
 * PHX_MSG_MAX_BYTES; NULL after printing why. */
char *phx_cli_read(const char *path, size_t *len);
/* The job in buf with the fields a hand-written job may leave out filled (schema, id, tenant
 * "default"), checked against job.v1; NULL after printing why (path names it). */
#include <jansson.h>
json_t *phx_cli_job(const char *buf, size_t len, const char *path);
/* A reader at the end of every partition of topic (no group), taken before a job is
 * published so its reply cannot be missed; NULL after printing why. */
#include <librdkafka/rdkafka.h>
rd_kafka_t *phx_cli_reply_consumer(const char *brokers, const char *topic);
/* The reply to job id read from rk, or NULL when none came before deadline_mono_ms. */
#include <stdint.h>
json_t *phx_cli_await_reply(rd_kafka_t *rk, const char *id, int64_t deadline_mono_ms);

int phx_cli_submit(const phx_cli_env *env, int argc, char **argv);
int phx_cli_probe(const phx_cli_env *env, int argc, char **argv);
int phx_cli_status(const phx_cli_env *env, int argc, char **argv);
int phx_cli_keys(const phx_cli_env *env, int argc, char **argv);
int phx_cli_dlq(const phx_cli_env *env, int argc, char **argv);
int phx_cli_secrets(const phx_cli_env *env, int argc, char **argv);
int phx_cli_persona(const phx_cli_env *env, int argc, char **argv);
int phx_cli_kb(const phx_cli_env *env, int argc, char **argv);
/* kb backup and restore (kbbackup.c): exit codes as above. */
struct phx_redis;
struct phx_err;
int phx_cli_kb_backup(struct phx_redis *r, const char *name, const char *path, struct phx_err *err);
int phx_cli_kb_restore(struct phx_redis *r, const char *path, struct phx_err *err);
/* A parsed record frame of a backup (pointers into the file). */
typedef struct phx_kb_frame {
    const char *id;
    uint32_t idlen;
    const unsigned char *rec;
    uint32_t reclen;
    uint64_t hits, seen;
    int64_t expires_ms;
} phx_kb_frame;
/* Verify a whole backup file p[0..n) as restore reads it, before anything is written: 0 with
 * the settings line in *hdr and the n record frames in *frames, or -1 with why. The caller
 * frees *hdr and *frames (both start NULL) either way. Public for tests/fuzz/fuzz_kb_backup. */
int phx_cli_kb_verify(const unsigned char *p, size_t n, json_t **hdr, phx_kb_frame **frames,
                      size_t *nframes, char *why, size_t whylen);
int phx_cli_trace(const phx_cli_env *env, int argc, char **argv);
int phx_cli_security(const phx_cli_env *env, int argc, char **argv);
/* Who an operator's action is recorded as: $PHX_OPERATOR, default "operator" (security.c). */
const char *phx_cli_operator(void);
/* phx intel import (intel.c). */
int phx_cli_intel(const phx_cli_env *env, int argc, char **argv);
/* phx safety feedback (safetyfb.c). */
int phx_cli_safety(const phx_cli_env *env, int argc, char **argv);
/* phx config check (confcheck.c) and phx topics plan (topics.c). */
int phx_cli_config(const phx_cli_env *env, int argc, char **argv);
int phx_cli_topics(const phx_cli_env *env, int argc, char **argv);

#endif
