/* submit.c -- `phx submit`: publish a job straight to phx.jobs and optionally wait.
 *
 * Waiting without a race: before publishing, the reply topic's current end offsets are read
 * and assigned explicitly, so a reply that arrives a millisecond after the job was published
 * is still seen. The wait joins no consumer group (partitions are assigned, not
 * subscribed): nothing is committed, and many CLIs can wait at once without a rebalance. */
#include "cli.h"
#include "kafka.h"
#include "msg.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *phx_cli_read(const char *path, size_t *len)
{
    const int from_stdin = strcmp(path, "-") == 0;
    FILE *f = from_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "phx submit: cannot open %s: %m\n", path);
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = phx_xmalloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n > PHX_MSG_MAX_BYTES) {
            fprintf(stderr, "phx submit: %s is larger than %d bytes\n", path, PHX_MSG_MAX_BYTES);
            free(buf);
            buf = NULL;
            break;
        }
        if (n == cap)
            buf = phx_xrealloc(buf, cap *= 2);
    }
    if (!from_stdin)
        fclose(f);
    *len = n;
    return buf;
}

json_t *phx_cli_job(const char *buf, size_t len, const char *path)
{
    json_error_t je;
    json_t *job = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!job || !json_is_object(job)) {
        fprintf(stderr, "phx submit: %s: %s (line %d)\n", path, job ? "not a JSON object" : je.text,
                je.line);
        json_decref(job);
        return NULL;
    }
    phx_job_defaults(job);
    if (!json_object_get(job, "tenant"))
        json_object_set_new(job, "tenant", json_string("default"));
    phx_err err;
    phx_schema_set *set = phx_schemas_load(NULL, &err);
    json_t *errors = NULL;
    int bad = phx_schema_validate(phx_schema_set_get(set, "job.v1"), job, &errors);
    phx_schema_set_free(set);
    if (bad) {
        char *e = json_dumps(errors, JSON_INDENT(2));
        fprintf(stderr, "phx submit: %s does not match schema job.v1:\n%s\n", path, e);
        free(e);
        json_decref(errors);
        json_decref(job);
        return NULL;
    }
    return job;
}

rd_kafka_t *phx_cli_reply_consumer(const char *brokers, const char *topic)
{
    /* assign() needs a group id, though nothing joins or commits: make it unique. */
    char group[64], gid[27];
    phx_id_new(gid);
    snprintf(group, sizeof(group), "phx-cli-wait-%s", gid);
    phx_err err;
    rd_kafka_t *rk = phx_kafka_reader(brokers, topic, group, PHX_READ_FROM_END, NULL, NULL, &err);
    if (!rk)
        fprintf(stderr, "phx submit: reply topic %s\n", err.message);
    return rk;
}

json_t *phx_cli_await_reply(rd_kafka_t *rk, const char *id, int64_t deadline_mono_ms)
{
    size_t idlen = strlen(id);
    while (phx_mono_ms() < deadline_mono_ms) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err || m->key_len != idlen || memcmp(m->key, id, idlen) != 0) {
            rd_kafka_message_destroy(m);
            continue;
        }
        json_t *reply = json_loadb(m->payload, m->len, 0, NULL);
        rd_kafka_message_destroy(m);
        const char *jid = json_string_value(json_object_get(reply, "job_id"));
        if (!jid || strcmp(jid, id) != 0) {
            json_decref(reply);
            continue;
        }
        return reply;
    }
    return NULL;
}

/* Wait for the reply keyed id; print it. Returns the exit code. */
static int phx_cli_wait(rd_kafka_t *rk, const char *id, int timeout_s)
{
    json_t *reply = phx_cli_await_reply(rk, id, phx_mono_ms() + (int64_t)timeout_s * 1000);
    if (reply) {
        char *s = json_dumps(reply, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        int ok = strcmp(json_string_value(json_object_get(reply, "status")) ?: "", "succeeded");
        json_decref(reply);
        return ok == 0 ? PHX_EXIT_OK : PHX_EXIT_FAILED;
    }
    fprintf(stderr, "phx submit: no reply for job %s within %d s\n", id, timeout_s);
    return PHX_EXIT_TIMEOUT;
}

int phx_cli_submit(const phx_cli_env *env, int argc, char **argv)
{
    static const struct option opts[] = {{"wait", no_argument, NULL, 'w'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int wait = 0, timeout_s = 60, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "wt:h", opts, NULL)) != -1) {
        long t;
        switch (c) {
        case 'w':
            wait = 1;
            break;
        case 't':
            if (phx_parse_long(optarg, 1, 86400, &t) < 0) {
                fprintf(stderr, "phx submit: --timeout wants seconds (1..86400)\n");
                return PHX_EXIT_USAGE;
            }
            timeout_s = (int)t;
            break;
        default:
            fprintf(stderr, "usage: phx submit FILE|- [--wait] [--timeout S]\n");
            return c == 'h' ? PHX_EXIT_OK : PHX_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: phx submit FILE|- [--wait] [--timeout S]\n");
        return PHX_EXIT_USAGE;
    }
    const char *path = argv[optind];
    size_t len = 0;
    char *buf = phx_cli_read(path, &len);
    if (!buf)
        return PHX_EXIT_USAGE;
    json_t *job = phx_cli_job(buf, len, path);
    free(buf);
    if (!job)
        return PHX_EXIT_USAGE;

    int rc = PHX_EXIT_INFRA;
    phx_err err;
    phx_err_clear(&err);
    rd_kafka_t *waiter = NULL;
    phx_producer *p = NULL;
    char *body = json_dumps(job, JSON_COMPACT);
    const char *id = json_string_value(json_object_get(job, "id"));
    const char *tenant = json_string_value(json_object_get(job, "tenant"));
    const char *reply_to = json_string_value(json_object_get(job, "reply_to"));
    if (wait &&
        !(waiter = phx_cli_reply_consumer(env->brokers, reply_to ? reply_to : PHX_TOPIC_REPLIES)))
        goto out;
    if (!(p = phx_producer_new(env->brokers, &err)))
        goto fail;
    char tp[56];
    phx_traceparent_new(tp);
    phx_kmsg m;
    phx_job_kmsg(&m, id, tenant, body, tp);
    if (phx_produce_batch(p, &m, 1, &err) < 0)
        goto fail;
    if (!wait) {
        printf("{\"job_id\": \"%s\"}\n", id);
        rc = PHX_EXIT_OK;
        goto out;
    }
    rc = phx_cli_wait(waiter, id, timeout_s);
    goto out;
fail:
    fprintf(stderr, "phx submit: %s\n", err.message);
out:
    if (waiter) {
        rd_kafka_consumer_close(waiter);
        rd_kafka_destroy(waiter);
    }
    phx_producer_free(p, 5000);
    free(body);
    json_decref(job);
    return rc;
}
