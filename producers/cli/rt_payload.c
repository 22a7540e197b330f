/* rt_payload.c -- the payload suite of `phx redteam`: malformed and oversized input on every
 * topic and on the ingress.
 *
 * Kafka: each hostile payload is published with a key of its own to every topic of
 * PHX_REDTEAM_TOPICS (a topic whose consumer is not deployed only yields "no dead letter");
 * the contract is that each one ends in phx.dlq, keyed as sent, with a reason -- never a crash,
 * never a silent drop. A payload still missing from the DLQ when the wait ends is undecided
 * (the consumer may be slow, absent or dead); the deployment then needs a look, which is the
 * point. The oversized payload is produced with message.max.bytes raised for this producer
 * only, so it reaches the consumer's own 1 MiB check; a broker that refuses it is containment
 * too. HTTP (with PHX_REDTEAM_API_KEY): the same shapes as job bodies must get their 4xx, and
 * the ingress must still answer afterwards. */
#include "redteam.h"
#include "kafka.h"
#include "msg.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rt_payload {
    const char *name;
    char *data;
    size_t len;
} rt_payload;

/* The hostile bodies; *n gets the count. Free with rt_payloads_free. */
static rt_payload *rt_payloads(int *n)
{
    static const struct {
        const char *name, *text;
        size_t len; /* 0: strlen */
    } fixed[] = {
        {"truncated json", "{\"schema\": \"job.v1\", \"id\": ", 0},
        {"not an object", "[1, 2, 3]", 0},
        {"schema violation", "{\"schema\": \"job.v1\", \"id\": 7, \"steps\": \"none\"}", 0},
        {"unknown schema", "{\"schema\": \"evil.v9\", \"id\": \"x\"}", 0},
        {"invalid utf-8", "{\"schema\": \"job.v1\", \"id\": \"\xff\xfe\xc0\xaf\"}", 0},
        {"nul byte", "{\"schema\": \"job.v1\", \"id\": \"a\0b\"}", 33},
        {"huge number", "{\"schema\": \"job.v1\", \"id\": \"x\", \"deadline_ms\": 1e999999}", 0},
        {"empty", "", 0},
    };
    int nf = (int)(sizeof(fixed) / sizeof(fixed[0]));
    rt_payload *p = phx_xcalloc((size_t)nf + 2, sizeof(*p));
    for (int i = 0; i < nf; i++) {
        p[i].name = fixed[i].name;
        p[i].len = fixed[i].len ? fixed[i].len : strlen(fixed[i].text);
        p[i].data = phx_xmalloc(p[i].len + 1);
        memcpy(p[i].data, fixed[i].text, p[i].len + 1);
    }
    /* 100k nested arrays: recursion depth for a naive parser. */
    p[nf].name = "deep nesting";
    p[nf].len = 100000;
    p[nf].data = phx_xmalloc(p[nf].len + 1);
    memset(p[nf].data, '[', p[nf].len);
    p[nf].data[p[nf].len] = 0;
    /* Just over the 1 MiB message limit, and valid JSON otherwise. */
    size_t big = PHX_MSG_MAX_BYTES + 4096;
    p[nf + 1].name = "oversized";
    p[nf + 1].len = big;
    p[nf + 1].data = phx_xmalloc(big + 1);
    memset(p[nf + 1].data, 'a', big);
    memcpy(p[nf + 1].data, "{\"schema\": \"job.v1\", \"id\": \"big\", \"goal\": \"", 44);
    memcpy(p[nf + 1].data + big - 2, "\"}", 2);
    p[nf + 1].data[big] = 0;
    *n = nf + 2;
    return p;
}

static void rt_payloads_free(rt_payload *p, int n)
{
    for (int i = 0; i < n; i++)
        free(p[i].data);
    free(p);
}

static int rt_payload_kafka(const rt_ctx *c, rt_suite *s, const rt_payload *pl, int npl)
{
    phx_err err;
    phx_err_clear(&err);
    char group[64], gid[27];
    phx_id_new(gid);
    snprintf(group, sizeof(group), "phx-redteam-%s", gid);
    rd_kafka_t *rk = phx_kafka_reader(c->env->brokers, PHX_TOPIC_DLQ, group, PHX_READ_FROM_END,
                                      NULL, NULL, &err);
    /* Only this producer may send a message over the limit the consumers enforce. */
    setenv("PHX_KAFKA_CONF_message_max_bytes", "4194304", 1);
    phx_producer *p = rk ? phx_producer_new(c->env->brokers, &err) : NULL;
    unsetenv("PHX_KAFKA_CONF_message_max_bytes");
    if (!p) {
        fprintf(stderr, "phx redteam: kafka: %s\n", err.message);
        if (rk) {
            rd_kafka_consumer_close(rk);
            rd_kafka_destroy(rk);
        }
        return -1;
    }
    json_t *want = json_object(); /* key -> "topic: payload" */
    char *topics = phx_xstrdup(c->topics), *save = NULL;
    int n = 0;
    for (char *t = strtok_r(topics, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        for (int i = 0; i < npl; i++) {
            char key[96], name[160];
            snprintf(key, sizeof(key), "rt-payload-%s-%d", gid, n++);
            snprintf(name, sizeof(name), "%s: %s", t, pl[i].name);
            phx_kmsg m = {.topic = t, .key = key, .value = pl[i].data, .len = pl[i].len};
            phx_err e;
            phx_err_clear(&e);
            if (phx_produce_batch(p, &m, 1, &e) < 0)
                rt_case(s, name, RT_CONTAINED, "refused by Kafka: %s", e.message);
            else
                json_object_set_new(want, key, json_string(name));
        }
    }
    free(topics);
    json_t *seen = rt_collect(rk, want, "key", c->timeout_s);
    const char *k;
    json_t *name;
    json_object_foreach(want, k, name)
    {
        json_t *l = json_object_get(seen, k);
        const char *reason = json_string_value(json_object_get(l, "reason"));
        if (!l)
            rt_case(s, json_string_value(name), RT_ERROR, "no dead letter within %d s",
                    c->timeout_s);
        else if (!reason || !*reason)
            rt_case(s, json_string_value(name), RT_ESCAPED, "dead letter without a reason");
        else
            rt_case(s, json_string_value(name), RT_CONTAINED, "DLQ: %.160s", reason);
    }
    json_decref(seen);
    json_decref(want);
    phx_producer_free(p, 5000);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}

static void rt_payload_http(const rt_ctx *c, rt_suite *s, const rt_payload *pl, int npl)
{
    if (!c->api_key) {
        rt_case(s, "http bodies", RT_SKIPPED, "set PHX_REDTEAM_API_KEY (jobs:submit)");
        return;
    }
    char auth[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->api_key);
    const char *hs[] = {auth, "Content-Type: application/json", NULL};
    for (int i = 0; i < npl; i++) {
        char name[128];
        snprintf(name, sizeof(name), "POST /v1/jobs: %s", pl[i].name);
        long st = rt_http(c, "POST", "/v1/jobs", hs, pl[i].data, pl[i].len, NULL);
        if (st == 400 || st == 413)
            rt_case(s, name, RT_CONTAINED, "HTTP %ld", st);
        else if (st >= 200 && st < 300)
            rt_case(s, name, RT_ESCAPED, "HTTP %ld: accepted", st);
        else
            rt_case(s, name, RT_ERROR, "HTTP %ld (expected 400 or 413)", st);
    }
    /* 8 MiB: far over any sane body limit. */
    size_t big = 8u << 20;
    char *b = phx_xmalloc(big);
    memset(b, ' ', big);
    long st = rt_http(c, "POST", "/v1/jobs", hs, b, big, NULL);
    free(b);
    rt_case(s, "POST /v1/jobs: 8 MiB body",
            st == 413       ? RT_CONTAINED
            : st / 100 == 2 ? RT_ESCAPED
                            : RT_ERROR,
            "HTTP %ld", st);
    /* 64 KiB of headers. */
    char *h = phx_xmalloc(65536 + 16);
    memcpy(h, "X-Pad: ", 7);
    memset(h + 7, 'x', 65536);
    h[65536 + 7] = 0;
    const char *hh[] = {auth, h, NULL};
    st = rt_http(c, "GET", "/v1/jobs", hh, NULL, 0, NULL);
    free(h);
    rt_case(s, "GET /v1/jobs: 64 KiB header",
            st == 431 || st == 400 ? RT_CONTAINED
            : st / 100 == 2        ? RT_ESCAPED
                                   : RT_ERROR,
            "HTTP %ld", st);
    st = rt_http(c, "GET", "/v1/jobs", hs, NULL, 0, NULL);
    rt_case(s, "ingress still serves", st == 200 ? RT_CONTAINED : RT_ERROR, "HTTP %ld", st);
}

int rt_suite_payload(const rt_ctx *c, rt_suite *s)
{
    int n;
    rt_payload *pl = rt_payloads(&n);
    rt_payload_http(c, s, pl, n);
    int rc = rt_payload_kafka(c, s, pl, n);
    rt_payloads_free(pl, n);
    return rc;
}
