/* security.c -- security responses and the security audit trail (see security.h). */
#include "security.h"
#include "jobstore.h"
#include "ratelimit.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const phx_sec_names[PHX_SEC_NACTIONS] = {
    "throttle", "suspend_tenant", "suspend_key", "suspend_principal", "quarantine",
};

const char *phx_sec_action_name(phx_sec_action a)
{
    return a >= 0 && a < PHX_SEC_NACTIONS ? phx_sec_names[a] : "unknown";
}

int phx_sec_action_parse(const char *s)
{
    for (int i = 0; s && i < PHX_SEC_NACTIONS; i++)
        if (strcmp(s, phx_sec_names[i]) == 0)
            return i;
    return -1;
}

/* Delete hash field f of k only while it still holds v (a later response of the same subject
 * is not undone by releasing an older one). KEYS[1]; ARGV: field, value. */
static const phx_script phx_sec_hdel_if = {
    "sec_hdel_if", "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then\n"
                   "  return redis.call('HDEL', KEYS[1], ARGV[1]) end\n"
                   "return 0\n"};

/* A tenant or principal name as it appears in a Redis key: printable, no blanks, no braces
 * (which would break the {TENANT} hash tag), bounded. */
static int phx_sec_name_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == '{' || c == '}')
            return 0;
    }
    return 1;
}

static int phx_sec_subject_ok(phx_sec_action a, const char *s)
{
    switch (a) {
    case PHX_SEC_THROTTLE:
    case PHX_SEC_SUSPEND_TENANT:
        return phx_sec_name_ok(s, 128);
    case PHX_SEC_SUSPEND_KEY:
        if (!s || strlen(s) != 16)
            return 0;
        for (int i = 0; i < 16; i++)
            if (!strchr("0123456789abcdef", s[i]))
                return 0;
        return 1;
    case PHX_SEC_SUSPEND_PRINCIPAL: {
        const char *slash = s ? strchr(s, '/') : NULL;
        return slash && slash > s && slash[1] && phx_sec_name_ok(s, 260);
    }
    case PHX_SEC_QUARANTINE:
        return phx_id_valid(s);
    default:
        return 0;
    }
}

void phx_sec_suspended_field(char *buf, size_t n, phx_sec_action a, const char *subject)
{
    const char *p = a == PHX_SEC_SUSPEND_KEY         ? "key"
                    : a == PHX_SEC_SUSPEND_PRINCIPAL ? "principal"
                                                     : "tenant";
    snprintf(buf, n, "%s:%s", p, subject);
}

int phx_audit_add(phx_redis *r, const char *stream, long maxlen, int nkv, const char *const *kv,
                  phx_err *err)
{
    enum { FIXED = 8, MAXKV = 32 };
    if (nkv < 0 || nkv > MAXKV || nkv % 2)
        return phx_err_set(err, "internal", 0, "audit: bad field list");
    char maxs[32], ts[32];
    snprintf(maxs, sizeof(maxs), "%ld", maxlen);
    snprintf(ts, sizeof(ts), "%lld", (long long)phx_now_ms());
    const char *argv[FIXED + MAXKV] = {"XADD", stream, "MAXLEN", "~", maxs, "*", "ts_ms", ts};
    for (int i = 0; i < nkv; i++)
        argv[FIXED + i] = kv[i] ? kv[i] : "";
    redisReply *rep = phx_redis_cmdv(r, err, FIXED + nkv, argv, NULL);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    return 0;
}

static int phx_sec_audit(phx_redis *r, const char *type, const json_t *resp, const char *by,
                         phx_err *err)
{
    const char *kv[] = {
        "type",    type,
        "id",      json_string_value(json_object_get(resp, "id")),
        "action",  json_string_value(json_object_get(resp, "action")),
        "subject", json_string_value(json_object_get(resp, "subject")),
        "rule",    json_string_value(json_object_get(resp, "rule")),
        "reason",  json_string_value(json_object_get(resp, "reason")),
        "by",      by,
    };
    return phx_audit_add(r, PHX_AUDIT_STREAM, PHX_AUDIT_MAXLEN, (int)(sizeof(kv) / sizeof(kv[0])),
                         kv, err);
}

/* HGET key field as a malloc'd string; *out NULL when absent. 0, or -1 with err. */
static int phx_sec_hget(phx_redis *r, const char *key, const char *field, char **out, phx_err *err)
{
    *out = NULL;
    redisReply *rep = phx_redis_cmd(r, err, "HGET %s %s", key, field);
    if (!rep)
        return -1;
    if (rep->type == REDIS_REPLY_STRING)
        *out = phx_xstrdup(rep->str);
    freeReplyObject(rep);
    return 0;
}

static int phx_sec_cmd_ok(phx_redis *r, phx_err *err, int argc, const char **argv)
{
    redisReply *rep = phx_redis_cmdv(r, err, argc, argv, NULL);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    return 0;
}

static int phx_sec_hdel_if_eq(phx_redis *r, const char *key, const char *field, const char *val,
                              phx_err *err)
{
    const char *argv[] = {key, field, val};
    redisReply *rep = phx_redis_eval(r, &phx_sec_hdel_if, 1, 3, argv, NULL, err);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    return 0;
}

/* The effect of a response; prev gets what a throttle replaced. */
static int phx_sec_effect(phx_redis *r, const phx_sec_req *q, const char *id, json_t *prev,
                          phx_err *err)
{
    char key[400], field[400];
    switch (q->action) {
    case PHX_SEC_THROTTLE: {
        phx_ratelimit_key_conf(key, sizeof(key), q->subject);
        redisReply *rep = phx_redis_cmd(r, err, "HMGET %s tenant_per_s tenant_burst", key);
        if (!rep)
            return -1;
        const char *names[2] = {"tenant_per_s", "tenant_burst"};
        for (size_t i = 0; i < 2 && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++)
            json_object_set_new(prev, names[i],
                                rep->element[i]->type == REDIS_REPLY_STRING
                                    ? json_string(rep->element[i]->str)
                                    : json_null());
        freeReplyObject(rep);
        char rate[32], burst[32];
        snprintf(rate, sizeof(rate), "%.6g", q->throttle_per_s);
        snprintf(burst, sizeof(burst), "%ld", q->throttle_burst < 1 ? 1 : q->throttle_burst);
        const char *argv[] = {"HSET", key, "tenant_per_s", rate, "tenant_burst", burst};
        return phx_sec_cmd_ok(r, err, 6, argv);
    }
    case PHX_SEC_SUSPEND_TENANT:
    case PHX_SEC_SUSPEND_KEY:
    case PHX_SEC_SUSPEND_PRINCIPAL: {
        phx_sec_suspended_field(field, sizeof(field), q->action, q->subject);
        const char *argv[] = {"HSET", PHX_SEC_SUSPENDED, field, id};
        return phx_sec_cmd_ok(r, err, 4, argv);
    }
    case PHX_SEC_QUARANTINE: {
        phx_key_job(key, sizeof(key), q->subject);
        /* Only an existing job: HSET would otherwise create a husk the planner would adopt. */
        redisReply *rep = phx_redis_cmd(r, err, "EXISTS %s", key);
        if (!rep)
            return -1;
        int exists = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
        freeReplyObject(rep);
        if (!exists)
            return phx_err_set(err, "not_found", 0, "job %s not found", q->subject);
        const char *argv[] = {"HSET", key, "quarantine", id};
        return phx_sec_cmd_ok(r, err, 4, argv);
    }
    default:
        return phx_err_set(err, "invalid_input", 0, "unknown action");
    }
}

int phx_sec_apply(phx_redis *r, const phx_sec_req *q, int64_t now_ms, char id[32], phx_err *err)
{
    id[0] = '\0';
    if (!phx_sec_subject_ok(q->action, q->subject))
        return phx_err_set(err, "invalid_input", 0, "%s: invalid subject '%.100s'",
                           phx_sec_action_name(q->action), q->subject ? q->subject : "");
    char slot[600], nid[27];
    snprintf(slot, sizeof(slot), "%s %s", phx_sec_action_name(q->action), q->subject);
    phx_id_new(nid);
    snprintf(id, 32, "sr-%s", nid);
    redisReply *rep = phx_redis_cmd(r, err, "HSETNX %s %s %s", PHX_SEC_ACTIVE, slot, id);
    if (!rep)
        return -1;
    int claimed = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);
    if (!claimed) {
        char *cur = NULL;
        if (phx_sec_hget(r, PHX_SEC_ACTIVE, slot, &cur, err) < 0)
            return -1;
        snprintf(id, 32, "%s", cur ? cur : "");
        free(cur);
        return 0;
    }
    json_t *prev = json_object();
    json_t *resp = NULL;
    char *text = NULL;
    int rc = -1;
    if (phx_sec_effect(r, q, id, prev, err) < 0) {
        phx_err keep = *err;
        phx_sec_hdel_if_eq(r, PHX_SEC_ACTIVE, slot, id, err); /* best effort: nothing applied */
        *err = keep;
        goto out;
    }
    resp = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:O}", "id", id, "action",
                     phx_sec_action_name(q->action), "subject", q->subject, "rule",
                     q->rule ? q->rule : "manual", "reason", q->reason ? q->reason : "", "by",
                     q->by ? q->by : "", "created_ms", (json_int_t)now_ms, "expires_ms",
                     (json_int_t)(q->ttl_ms > 0 ? now_ms + q->ttl_ms : 0), "prev", prev);
    if (q->action == PHX_SEC_THROTTLE) {
        json_object_set_new(resp, "tenant_per_s", json_real(q->throttle_per_s));
        json_object_set_new(resp, "tenant_burst", json_integer(q->throttle_burst));
    }
    text = json_dumps(resp, JSON_COMPACT);
    rep = text ? phx_redis_cmd(r, err, "HSET %s %s %s", PHX_SEC_RESPONSES, id, text) : NULL;
    if (!rep)
        goto out;
    freeReplyObject(rep);
    if (phx_sec_audit(r, "security.response", resp, q->by, err) < 0)
        goto out;
    rc = 1;
out:
    free(text);
    json_decref(resp);
    json_decref(prev);
    return rc;
}

/* Undo the effect of response resp. */
static int phx_sec_undo(phx_redis *r, const json_t *resp, phx_err *err)
{
    const char *id = json_string_value(json_object_get(resp, "id"));
    const char *subject = json_string_value(json_object_get(resp, "subject"));
    int a = phx_sec_action_parse(json_string_value(json_object_get(resp, "action")));
    char key[400], field[400];
    if (!id || !subject || a < 0)
        return phx_err_set(err, "invalid_input", 0, "malformed response record");
    switch ((phx_sec_action)a) {
    case PHX_SEC_THROTTLE: {
        /* Put back what the throttle replaced: a field that was absent is removed, so the
         * tenant falls back to the ingress's defaults again. */
        phx_ratelimit_key_conf(key, sizeof(key), subject);
        json_t *prev = json_object_get(resp, "prev");
        const char *names[2] = {"tenant_per_s", "tenant_burst"};
        for (int i = 0; i < 2; i++) {
            const char *v = json_string_value(json_object_get(prev, names[i]));
            const char *set[] = {"HSET", key, names[i], v};
            const char *del[] = {"HDEL", key, names[i]};
            if (phx_sec_cmd_ok(r, err, v ? 4 : 3, v ? set : del) < 0)
                return -1;
        }
        /* The throttled bucket's arrival time can lie far ahead at the throttled rate; the
         * tenant starts afresh instead of paying that debt at the restored one. */
        phx_ratelimit_key_tenant(key, sizeof(key), subject);
        const char *clear[] = {"DEL", key};
        return phx_sec_cmd_ok(r, err, 2, clear);
    }
    case PHX_SEC_SUSPEND_TENANT:
    case PHX_SEC_SUSPEND_KEY:
    case PHX_SEC_SUSPEND_PRINCIPAL:
        phx_sec_suspended_field(field, sizeof(field), (phx_sec_action)a, subject);
        return phx_sec_hdel_if_eq(r, PHX_SEC_SUSPENDED, field, id, err);
    case PHX_SEC_QUARANTINE:
        phx_key_job(key, sizeof(key), subject);
        return phx_sec_hdel_if_eq(r, key, "quarantine", id, err);
    default:
        return phx_err_set(err, "invalid_input", 0, "unknown action");
    }
}

int phx_sec_release(phx_redis *r, const char *id, const char *by, int64_t now_ms, phx_err *err)
{
    (void)now_ms;
    char *text = NULL;
    if (!id || !*id || strlen(id) > 64)
        return phx_err_set(err, "invalid_input", 0, "bad response id");
    if (phx_sec_hget(r, PHX_SEC_RESPONSES, id, &text, err) < 0)
        return -1;
    if (!text)
        return 0;
    json_t *resp = json_loads(text, 0, NULL);
    free(text);
    int rc = -1;
    char slot[600];
    if (!resp) {
        phx_err_set(err, "invalid_input", 0, "response %s: unreadable record", id);
        goto out;
    }
    if (phx_sec_undo(r, resp, err) < 0)
        goto out;
    snprintf(slot, sizeof(slot), "%s %s", json_string_value(json_object_get(resp, "action")),
             json_string_value(json_object_get(resp, "subject")));
    if (phx_sec_hdel_if_eq(r, PHX_SEC_ACTIVE, slot, id, err) < 0)
        goto out;
    redisReply *rep = phx_redis_cmd(r, err, "HDEL %s %s", PHX_SEC_RESPONSES, id);
    if (!rep)
        goto out;
    int deleted = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);
    /* Two releases racing: only the one that removed the record writes the audit entry. */
    if (deleted && phx_sec_audit(r, "security.release", resp, by, err) < 0)
        goto out;
    rc = deleted;
out:
    json_decref(resp);
    return rc;
}

static int phx_sec_by_created(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "created_ms"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "created_ms"));
    return x < y ? -1 : x > y;
}

json_t *phx_sec_list(phx_redis *r, phx_err *err)
{
    redisReply *rep = phx_redis_cmd(r, err, "HGETALL %s", PHX_SEC_RESPONSES);
    if (!rep)
        return NULL;
    size_t n = rep->type == REDIS_REPLY_ARRAY ? rep->elements / 2 : 0, k = 0;
    json_t **v = calloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; v && i < n; i++) {
        json_t *j = json_loads(rep->element[2 * i + 1]->str, 0, NULL);
        if (json_is_object(j))
            v[k++] = j;
        else
            json_decref(j);
    }
    freeReplyObject(rep);
    if (!v) {
        phx_err_set(err, "internal", 0, "out of memory");
        return NULL;
    }
    qsort(v, k, sizeof(*v), phx_sec_by_created);
    json_t *arr = json_array();
    for (size_t i = 0; i < k; i++)
        json_array_append_new(arr, v[i]);
    free(v);
    return arr;
}

int phx_sec_expire(phx_redis *r, const char *by, int64_t now_ms, phx_err *err)
{
    json_t *arr = phx_sec_list(r, err);
    if (!arr)
        return -1;
    int n = 0;
    size_t i;
    json_t *resp;
    json_array_foreach(arr, i, resp)
    {
        json_int_t exp = json_integer_value(json_object_get(resp, "expires_ms"));
        if (exp <= 0 || exp > now_ms)
            continue;
        int rc =
            phx_sec_release(r, json_string_value(json_object_get(resp, "id")), by, now_ms, err);
        if (rc < 0) {
            n = -1;
            break;
        }
        n += rc;
    }
    json_decref(arr);
    return n;
}
