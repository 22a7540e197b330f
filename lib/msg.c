/* msg.c -- envelope helpers (see msg.h). */
#include "msg.h"
#include "schemas_embedded.h"
#include "trace.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *prefix;
    const char *pool;
} phx_kind_pools[] = {
    {"tool.", "tools"}, {"llm.", "llm"}, {"exec.", "exec"}, {"safety.", "safety"}, {"kb.", "kb"},
};

const char *phx_kind_pool(const char *kind)
{
    for (size_t i = 0; i < sizeof(phx_kind_pools) / sizeof(phx_kind_pools[0]); i++) {
        size_t n = strlen(phx_kind_pools[i].prefix);
        if (strncmp(kind, phx_kind_pools[i].prefix, n) == 0 && kind[n])
            return phx_kind_pools[i].pool;
    }
    return NULL;
}

int phx_topics_all(char out[][PHX_TOPIC_NAME_MAX], int max)
{
    static const char *const fixed[] = {PHX_TOPIC_JOBS, PHX_TOPIC_RESULTS, PHX_TOPIC_REPLIES,
                                        PHX_TOPIC_EVENTS, PHX_TOPIC_DLQ};
    const int nfixed = (int)(sizeof(fixed) / sizeof(fixed[0]));
    const int npools = (int)(sizeof(phx_kind_pools) / sizeof(phx_kind_pools[0]));
    for (int i = 0; i < nfixed + npools && i < max; i++) {
        if (i < nfixed)
            snprintf(out[i], PHX_TOPIC_NAME_MAX, "%s", fixed[i]);
        else
            snprintf(out[i], PHX_TOPIC_NAME_MAX, "%s%s", PHX_TASK_TOPIC_PREFIX,
                     phx_kind_pools[i - nfixed].pool);
    }
    return nfixed + npools;
}

static void phx_hex(const unsigned char *b, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* An all-zero id is invalid in W3C trace context; 2^-64 odds, so it is not checked. */
static void phx_random_hex(char *out, size_t nbytes)
{
    unsigned char b[16];
    if (phx_random_bytes(b, nbytes) < 0)
        for (size_t i = 0; i < nbytes; i++)
            b[i] = (unsigned char)phx_rand_u64();
    phx_hex(b, nbytes, out);
}

void phx_traceparent_new(char out[56])
{
    char trace[33], span[17];
    phx_random_hex(trace, 16);
    phx_random_hex(span, 8);
    snprintf(out, 56, "00-%s-%s-01", trace, span);
}

static int phx_is_lowhex(const char *s, size_t n)
{
    int nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
        nonzero |= s[i] != '0';
    }
    return nonzero;
}

int phx_traceparent_valid(const char *tp)
{
    return tp && strlen(tp) == 55 && tp[2] == '-' && tp[35] == '-' && tp[52] == '-' &&
           strncmp(tp, "ff", 2) != 0 && phx_is_lowhex(tp + 3, 32) && phx_is_lowhex(tp + 36, 16);
}

void phx_traceparent_child(const char *parent, char out[56])
{
    if (!phx_traceparent_valid(parent)) {
        phx_traceparent_new(out);
        return;
    }
    char span[17];
    phx_random_hex(span, 8);
    snprintf(out, 56, "00-%.32s-%s-%.2s", parent + 3, span, parent + 53);
}

phx_schema_set *phx_schemas_load(const char *dir, phx_err *err)
{
    char e[512];
    phx_schema_set *set = phx_schema_set_new();
    for (int i = 0; i < phx_embedded_schemas_count; i++) {
        const char *name = phx_embedded_schemas[i].name;
        json_error_t je;
        json_t *root;
        if (dir && *dir) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s.json", dir, name);
            root = json_load_file(path, 0, &je);
        } else {
            root = json_loads(phx_embedded_schemas[i].text, 0, &je);
        }
        if (!root) {
            phx_err_set(err, "bad_config", 0, "schema %s: %s", name, je.text);
            goto err;
        }
        int rc = phx_schema_set_add(set, name, root, e, sizeof(e));
        json_decref(root);
        if (rc != 0) {
            phx_err_set(err, "bad_config", 0, "schema %s: %s", name, e);
            goto err;
        }
    }
    return set;
err:
    phx_schema_set_free(set);
    return NULL;
}

json_t *phx_msg_parse(const void *payload, size_t len, char *reason, size_t reasonlen)
{
    if (!payload || len == 0) {
        snprintf(reason, reasonlen, "empty message");
        return NULL;
    }
    if (len > PHX_MSG_MAX_BYTES) {
        snprintf(reason, reasonlen, "message of %zu bytes exceeds the %d byte limit", len,
                 PHX_MSG_MAX_BYTES);
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        snprintf(reason, reasonlen, "invalid JSON at byte %d: %s", je.position, je.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        snprintf(reason, reasonlen, "message is not a JSON object");
        json_decref(v);
        return NULL;
    }
    return v;
}

static char *phx_outbox_own(phx_outbox *ob, char *s)
{
    if (ob->nowned == ob->capowned) {
        ob->capowned = ob->capowned ? ob->capowned * 2 : 16;
        ob->owned = phx_xrealloc(ob->owned, (size_t)ob->capowned * sizeof(*ob->owned));
    }
    ob->owned[ob->nowned++] = s;
    return s;
}

void phx_outbox_add(phx_outbox *ob, const char *topic, const char *key, json_t *value,
                    const char *tenant, const char *traceparent, int attempt)
{
    if (ob->n == ob->cap) {
        ob->cap = ob->cap ? ob->cap * 2 : 8;
        ob->msgs = phx_xrealloc(ob->msgs, (size_t)ob->cap * sizeof(*ob->msgs));
    }
    phx_kmsg *m = &ob->msgs[ob->n++];
    memset(m, 0, sizeof(*m));
    m->topic = phx_outbox_own(ob, phx_xstrdup(topic));
    m->key = key ? phx_outbox_own(ob, phx_xstrdup(key)) : NULL;
    char *body = phx_outbox_own(ob, json_dumps(value, JSON_COMPACT));
    m->value = body;
    m->len = strlen(body);
    const char *schema = json_string_value(json_object_get(value, "schema"));
    if (schema)
        m->hdrs[m->nhdrs++] = (phx_hdr){"phx-schema", phx_outbox_own(ob, phx_xstrdup(schema))};
    if (tenant)
        m->hdrs[m->nhdrs++] = (phx_hdr){"phx-tenant", phx_outbox_own(ob, phx_xstrdup(tenant))};
    /* The context passed on is the sender's span itself (the hop span, or the span a timer
     * stored with the job), so the next hop's span is its child and the trace stays one tree. */
    char tp[56];
    int has_tp = 1;
    if (traceparent && phx_traceparent_valid(traceparent))
        snprintf(tp, sizeof(tp), "%s", traceparent);
    else if (traceparent)
        phx_traceparent_new(tp);
    else
        has_tp = phx_trace_current(tp) == 0;
    if (has_tp)
        m->hdrs[m->nhdrs++] = (phx_hdr){"traceparent", phx_outbox_own(ob, phx_xstrdup(tp))};
    if (attempt > 0) {
        char a[16];
        snprintf(a, sizeof(a), "%d", attempt);
        m->hdrs[m->nhdrs++] = (phx_hdr){"phx-attempt", phx_outbox_own(ob, phx_xstrdup(a))};
    }
    json_decref(value);
}

void phx_outbox_after(phx_outbox *ob, phx_after_fn fn, const char *arg)
{
    if (ob->nafter == ob->capafter) {
        ob->capafter = ob->capafter ? ob->capafter * 2 : 4;
        ob->after = phx_xrealloc(ob->after, (size_t)ob->capafter * sizeof(*ob->after));
    }
    ob->after[ob->nafter].fn = fn;
    ob->after[ob->nafter].arg = phx_outbox_own(ob, phx_xstrdup(arg));
    ob->nafter++;
}

void phx_outbox_run_after(phx_outbox *ob, void *tctx)
{
    for (int i = 0; i < ob->nafter; i++)
        ob->after[i].fn(tctx, ob->after[i].arg);
    ob->nafter = 0;
}

void phx_outbox_reset(phx_outbox *ob)
{
    for (int i = 0; i < ob->nowned; i++)
        free(ob->owned[i]);
    ob->nowned = 0;
    ob->n = 0;
    ob->nafter = 0;
}

void phx_outbox_free(phx_outbox *ob)
{
    phx_outbox_reset(ob);
    free(ob->owned);
    free(ob->msgs);
    free(ob->after);
    memset(ob, 0, sizeof(*ob));
}

char *phx_base64_encode(const void *data, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = data;
    char *out = phx_xmalloc(4 * ((len + 2) / 3) + 1), *o = out;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        *o++ = tbl[s[i] >> 2];
        *o++ = tbl[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        *o++ = tbl[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
        *o++ = tbl[s[i + 2] & 63];
    }
    if (i < len) {
        *o++ = tbl[s[i] >> 2];
        if (i + 1 < len) {
            *o++ = tbl[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
            *o++ = tbl[(s[i + 1] & 15) << 2];
        } else {
            *o++ = tbl[(s[i] & 3) << 4];
            *o++ = '=';
        }
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

unsigned char *phx_base64_decode(const char *s, size_t *len)
{
    size_t n = strlen(s);
    unsigned char *out = phx_xmalloc(n / 4 * 3 + 3);
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0, i = 0;
    for (; i < n && s[i] != '='; i++) {
        const char c = s[i];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '+'             ? 62
                : c == '/'             ? 63
                                       : -1;
        if (v < 0)
            goto bad;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    for (; i < n; i++) /* only padding may follow */
        if (s[i] != '=')
            goto bad;
    *len = o;
    return out;
bad:
    free(out);
    return NULL;
}

json_t *phx_dlq_new(const rd_kafka_message_t *m, const char *consumer, const char *reason,
                    const json_t *errors)
{
    json_t *d = json_object();
    json_object_set_new(d, "schema", json_string("dlq.v1"));
    char *r = phx_xstrdup(reason);
    phx_utf8_scrub(r);
    json_object_set_new(d, "reason", json_string(r));
    free(r);
    /* The letter must itself fit in a Kafka message: a letter the broker refuses would be
     * retried for ever and wedge its partition (found by `phx redteam`). So the validator's
     * errors are capped, and so are the original bytes: kept whole (replayable) up to
     * PHX_DLQ_KEEP_BYTES, else only their start, size and hash. */
    size_t nerr = json_array_size(errors);
    if (nerr > PHX_DLQ_MAX_ERRORS) {
        json_t *few = json_array();
        for (size_t i = 0; i < PHX_DLQ_MAX_ERRORS; i++)
            json_array_append(few, json_array_get(errors, i));
        json_object_set_new(d, "errors", few);
        json_object_set_new(d, "errors_truncated", json_integer((json_int_t)nerr));
    } else if (errors) {
        json_object_set(d, "errors", (json_t *)errors);
    }
    json_object_set_new(d, "topic", json_string(rd_kafka_topic_name(m->rkt)));
    json_object_set_new(d, "partition", json_integer(m->partition));
    json_object_set_new(d, "offset", json_integer(m->offset));
    if (m->key) {
        char *k = phx_xstrndup(m->key, m->key_len);
        phx_utf8_scrub(k);
        json_object_set_new(d, "key", json_string(k));
        free(k);
    } else {
        json_object_set_new(d, "key", json_null());
    }
    size_t keep = m->len > PHX_DLQ_KEEP_BYTES ? PHX_DLQ_TEXT_BYTES : m->len;
    char *b64 = phx_base64_encode(m->payload ? m->payload : "", keep);
    json_object_set_new(d, "payload_b64", json_string(b64));
    free(b64);
    if (keep < m->len) {
        char sha[65];
        phx_sha256_hex(m->payload, m->len, sha);
        json_object_set_new(d, "payload_truncated", json_true());
        json_object_set_new(d, "payload_bytes", json_integer((json_int_t)m->len));
        json_object_set_new(d, "payload_sha256", json_string(sha));
    }
    /* The text form is for humans reading the DLQ; the base64 form is what replay uses. Not
     * with a NUL byte: "\u0000" in the letter would make JSON readers without JSON_ALLOW_NUL
     * (phx dlq among them) drop the whole letter. */
    json_t *text = m->payload && m->len <= PHX_DLQ_TEXT_BYTES && !memchr(m->payload, 0, m->len)
                       ? json_stringn(m->payload, m->len)
                       : NULL;
    if (text)
        json_object_set_new(d, "payload", text);
    json_object_set_new(d, "consumer", json_string(consumer));
    json_object_set_new(d, "ts_ms", json_integer(phx_now_ms()));
    return d;
}

json_t *phx_event_new(const char *job_id, const char *tenant, const char *type, const char *step_id,
                      int attempt, json_t *detail)
{
    json_t *e = json_object();
    json_object_set_new(e, "schema", json_string("event.v1"));
    json_object_set_new(e, "job_id", json_string(job_id));
    if (tenant)
        json_object_set_new(e, "tenant", json_string(tenant));
    json_object_set_new(e, "type", json_string(type));
    if (step_id)
        json_object_set_new(e, "step_id", json_string(step_id));
    if (attempt > 0)
        json_object_set_new(e, "attempt", json_integer(attempt));
    json_object_set_new(e, "ts_ms", json_integer(phx_now_ms()));
    if (detail)
        json_object_set_new(e, "detail", detail);
    return e;
}

void phx_job_kmsg(phx_kmsg *m, const char *id, const char *tenant, const char *body,
                  const char *traceparent)
{
    *m = (phx_kmsg){.topic = PHX_TOPIC_JOBS, .key = id, .value = body, .len = strlen(body)};
    m->hdrs[m->nhdrs++] = (phx_hdr){"phx-schema", "job.v1"};
    m->hdrs[m->nhdrs++] = (phx_hdr){"phx-tenant", tenant};
    m->hdrs[m->nhdrs++] = (phx_hdr){"traceparent", traceparent};
}

void phx_job_defaults(json_t *job)
{
    if (!json_object_get(job, "schema"))
        json_object_set_new(job, "schema", json_string("job.v1"));
    if (!json_object_get(job, "id")) {
        char id[27];
        phx_id_new(id);
        json_object_set_new(job, "id", json_string(id));
    }
    if (!json_object_get(job, "submitted_ms"))
        json_object_set_new(job, "submitted_ms", json_integer(phx_now_ms()));
}
