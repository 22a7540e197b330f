/* dlq.c -- `phx dlq list|show|replay|purge`: look at and recover dead letters.
 *
 * phx.dlq is an ordinary topic, so the tool reads it with a plain consumer: every partition is
 * assigned from its start (or from the purge mark) up to the high watermark seen when the
 * command began, so a listing is a consistent snapshot and always terminates.
 *
 * Replay re-publishes the *original bytes* (payload_b64) with the original key to the original
 * topic; the consumer there validates them again exactly like new input, so a letter that is
 * still bad comes straight back to the DLQ with the same reason. Kafka cannot delete single
 * records, so purge moves a mark (the committed offsets of the consumer group
 * "phx-dlq-purged"): later listings start after it, and retention removes the records. */
#include "cli.h"
#include "kafka.h"
#include "msg.h"
#include "util.h"

#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHX_DLQ_MARK_GROUP "phx-dlq-purged"

typedef struct phx_dlq_filter {
    const char *topic;  /* source topic, or NULL */
    const char *reason; /* substring of the reason, or NULL */
    int32_t partition;  /* with offset: one letter; -1 = all */
    int64_t offset;
    long limit;
} phx_dlq_filter;

typedef int (*phx_dlq_visit_fn)(void *arg, const rd_kafka_message_t *m, json_t *letter);

/* A reader on every partition of phx.dlq from the purge mark (or the start); hi[] gets the
 * snapshot's end. */
static rd_kafka_t *phx_dlq_open(const phx_cli_env *env, int64_t **hi, int *nparts, int from_start)
{
    phx_err err;
    rd_kafka_t *rk =
        phx_kafka_reader(env->brokers, PHX_TOPIC_DLQ, PHX_DLQ_MARK_GROUP,
                         from_start ? PHX_READ_FROM_START : PHX_READ_FROM_MARK, hi, nparts, &err);
    if (!rk)
        fprintf(stderr, "phx dlq: %s\n", err.message);
    return rk;
}

static int phx_dlq_match(const phx_dlq_filter *f, const rd_kafka_message_t *m, json_t *letter)
{
    if (f->partition >= 0 && (m->partition != f->partition || m->offset != f->offset))
        return 0;
    const char *topic = json_string_value(json_object_get(letter, "topic"));
    const char *reason = json_string_value(json_object_get(letter, "reason"));
    if (f->topic && (!topic || strcmp(topic, f->topic) != 0))
        return 0;
    if (f->reason && (!reason || !strstr(reason, f->reason)))
        return 0;
    return 1;
}

typedef struct phx_dlq_scan_ctx {
    const phx_dlq_filter *f;
    phx_dlq_visit_fn fn;
    void *arg;
    long seen;
    int failed; /* fn failed (it said why); otherwise a failed scan timed out */
} phx_dlq_scan_ctx;

static int phx_dlq_scan_one(void *arg, const rd_kafka_message_t *m)
{
    phx_dlq_scan_ctx *x = arg;
    if (x->f->limit > 0 && x->seen >= x->f->limit)
        return 1;
    json_t *letter = json_loadb(m->payload, m->len, 0, NULL);
    int rc = 0;
    if (letter && phx_dlq_match(x->f, m, letter)) {
        x->seen++;
        rc = x->fn(x->arg, m, letter) < 0 ? -1 : 0;
        x->failed |= rc < 0;
    }
    json_decref(letter);
    return rc;
}

/* Visit every matching letter up to the snapshot's end. Returns letters visited, -1 error. */
static long phx_dlq_scan(const phx_cli_env *env, const phx_dlq_filter *f, phx_dlq_visit_fn fn,
                         void *arg)
{
    int64_t *hi = NULL;
    int nparts = 0;
    rd_kafka_t *rk = phx_dlq_open(env, &hi, &nparts, 0);
    if (!rk)
        return -1;
    phx_dlq_scan_ctx x = {.f = f, .fn = fn, .arg = arg};
    int rc = phx_kafka_snapshot_scan(rk, hi, nparts, 30000, phx_dlq_scan_one, &x);
    if (rc < 0 && !x.failed)
        fprintf(stderr, "phx: timed out reading %s\n", PHX_TOPIC_DLQ);
    free(hi);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc < 0 ? -1 : x.seen;
}

static int phx_dlq_print_line(void *arg, const rd_kafka_message_t *m, json_t *l)
{
    (void)arg;
    printf("%d:%lld\t%s[%lld]@%lld\tkey=%s\t%s\n", m->partition, (long long)m->offset,
           json_string_value(json_object_get(l, "topic")) ?: "?",
           (long long)json_integer_value(json_object_get(l, "partition")),
           (long long)json_integer_value(json_object_get(l, "offset")),
           json_string_value(json_object_get(l, "key")) ?: "-",
           json_string_value(json_object_get(l, "reason")) ?: "");
    return 0;
}

static int phx_dlq_print_full(void *arg, const rd_kafka_message_t *m, json_t *l)
{
    (void)arg;
    (void)m;
    char *s = json_dumps(l, JSON_INDENT(2));
    printf("%s\n", s);
    free(s);
    return 0;
}

/* Re-publish the original bytes of one letter. */
static int phx_dlq_replay_one(void *arg, const rd_kafka_message_t *m, json_t *l)
{
    phx_producer *p = arg;
    const char *topic = json_string_value(json_object_get(l, "topic"));
    const char *b64 = json_string_value(json_object_get(l, "payload_b64"));
    size_t len = 0;
    if (json_is_true(json_object_get(l, "payload_truncated"))) {
        fprintf(stderr, "phx dlq: %d:%lld kept only the start of its %lld bytes; not replayable\n",
                m->partition, (long long)m->offset,
                (long long)json_integer_value(json_object_get(l, "payload_bytes")));
        return 0;
    }
    unsigned char *raw = b64 ? phx_base64_decode(b64, &len) : NULL;
    if (!topic || !raw) {
        fprintf(stderr, "phx dlq: %d:%lld has no original topic or payload; skipped\n",
                m->partition, (long long)m->offset);
        free(raw);
        return 0;
    }
    phx_kmsg k = {.topic = topic,
                  .key = json_string_value(json_object_get(l, "key")),
                  .value = raw,
                  .len = len};
    k.hdrs[k.nhdrs++] = (phx_hdr){"phx-replayed-from", "phx.dlq"};
    phx_err err;
    int rc = phx_produce_batch(p, &k, 1, &err);
    free(raw);
    if (rc < 0) {
        fprintf(stderr, "phx dlq: replay of %d:%lld: %s\n", m->partition, (long long)m->offset,
                err.message);
        return -1;
    }
    printf("replayed %d:%lld -> %s\n", m->partition, (long long)m->offset, topic);
    return 0;
}

/* Commit the snapshot's end offsets as the purge mark. */
static int phx_dlq_purge(const phx_cli_env *env)
{
    int64_t *hi = NULL;
    int nparts = 0;
    rd_kafka_t *rk = phx_dlq_open(env, &hi, &nparts, 1);
    if (!rk)
        return PHX_EXIT_INFRA;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
    for (int i = 0; i < nparts; i++)
        rd_kafka_topic_partition_list_add(l, PHX_TOPIC_DLQ, i)->offset = hi[i];
    rd_kafka_resp_err_t e = rd_kafka_commit(rk, l, 0);
    rd_kafka_topic_partition_list_destroy(l);
    free(hi);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (e) {
        fprintf(stderr, "phx dlq purge: %s\n", rd_kafka_err2str(e));
        return PHX_EXIT_INFRA;
    }
    printf("purged: later listings start after the current end of %s\n", PHX_TOPIC_DLQ);
    return PHX_EXIT_OK;
}

static int phx_dlq_usage(void)
{
    fprintf(stderr, "usage: phx dlq list [--topic T] [--reason TEXT] [--limit N]\n"
                    "       phx dlq show PARTITION:OFFSET\n"
                    "       phx dlq replay (PARTITION:OFFSET | --all) [--topic T] [--reason TEXT]\n"
                    "       phx dlq purge\n");
    return PHX_EXIT_USAGE;
}

int phx_cli_dlq(const phx_cli_env *env, int argc, char **argv)
{
    static const struct option opts[] = {{"topic", required_argument, NULL, 't'},
                                         {"reason", required_argument, NULL, 'r'},
                                         {"limit", required_argument, NULL, 'n'},
                                         {"all", no_argument, NULL, 'a'},
                                         {NULL, 0, NULL, 0}};
    if (argc < 2)
        return phx_dlq_usage();
    const char *cmd = argv[1];
    phx_dlq_filter f = {.partition = -1};
    int all = 0, c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "t:r:n:a", opts, NULL)) != -1) {
        if (c == 't')
            f.topic = optarg;
        else if (c == 'r')
            f.reason = optarg;
        else if (c == 'n' && phx_parse_long(optarg, 1, LONG_MAX, &f.limit) == 0)
            continue;
        else if (c == 'a')
            all = 1;
        else
            return phx_dlq_usage();
    }
    if (optind < argc) {
        char *colon = strchr(argv[optind], ':');
        long part, off;
        if (!colon || optind + 1 != argc)
            return phx_dlq_usage();
        *colon = '\0';
        if (phx_parse_long(argv[optind], 0, INT32_MAX, &part) < 0 ||
            phx_parse_long(colon + 1, 0, LONG_MAX, &off) < 0)
            return phx_dlq_usage();
        f.partition = (int32_t)part, f.offset = off;
    }
    long n;
    if (strcmp(cmd, "list") == 0 && f.partition < 0) {
        n = phx_dlq_scan(env, &f, phx_dlq_print_line, NULL);
        if (n >= 0)
            fprintf(stderr, "%ld dead letter(s)\n", n);
        return n < 0 ? PHX_EXIT_INFRA : PHX_EXIT_OK;
    }
    if (strcmp(cmd, "show") == 0 && f.partition >= 0) {
        n = phx_dlq_scan(env, &f, phx_dlq_print_full, NULL);
        if (n == 0)
            fprintf(stderr, "phx dlq show: no letter at %d:%lld\n", f.partition,
                    (long long)f.offset);
        return n < 0 ? PHX_EXIT_INFRA : n == 0 ? PHX_EXIT_FAILED : PHX_EXIT_OK;
    }
    if (strcmp(cmd, "replay") == 0 && (f.partition >= 0) != all) {
        phx_err err;
        phx_producer *p = phx_producer_new(env->brokers, &err);
        if (!p) {
            fprintf(stderr, "phx dlq: %s\n", err.message);
            return PHX_EXIT_INFRA;
        }
        n = phx_dlq_scan(env, &f, phx_dlq_replay_one, p);
        phx_producer_free(p, 10000);
        if (n >= 0)
            fprintf(stderr, "%ld dead letter(s) replayed\n", n);
        return n < 0 ? PHX_EXIT_INFRA : n == 0 ? PHX_EXIT_FAILED : PHX_EXIT_OK;
    }
    if (strcmp(cmd, "purge") == 0 && f.partition < 0)
        return phx_dlq_purge(env);
    return phx_dlq_usage();
}
