/* feedback.c -- operator feedback on safety verdicts (see feedback.h).
 *
 * The C side decides *what* to change from the labelled example (which detectors, which
 * direction); the Lua scripts apply it, bounded, and store the record with the changes as
 * applied, so a rollback subtracts exactly the delta that was added even when a bound clipped
 * it. Rolling back one of several feedbacks leaves the others' changes in place. */
#include "feedback.h"
#include "jobstore.h"
#include "security.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS: adj, records. ARGV: id, record JSON, step, max, ops ("allow HEX DETS" | "off DET +1|-1").
 * Returns the stored record. */
static const phx_script phx_fb_apply_script = {
    "fb_apply",
    "local rec = cjson.decode(ARGV[2])\n"
    "local step, max = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local changes = {}\n"
    "for i = 5, #ARGV do\n"
    "  local op, a, b = string.match(ARGV[i], '^(%S+) (%S+) (%S+)$')\n"
    "  if op == 'allow' then\n"
    "    local f = 'allow:' .. a\n"
    "    local prev = redis.call('HGET', KEYS[1], f)\n"
    "    local val = b .. '|' .. ARGV[1]\n"
    "    redis.call('HSET', KEYS[1], f, val)\n"
    "    table.insert(changes, {type = 'allow', field = f, detectors = b, value = val,\n"
    "                           prev = prev or false})\n"
    "  elseif op == 'off' then\n"
    "    local f = 'off:' .. a\n"
    "    local before = tonumber(redis.call('HGET', KEYS[1], f) or '0')\n"
    "    local after = before + tonumber(b) * step\n"
    "    if after > max then after = max end\n"
    "    if after < -max then after = -max end\n"
    "    after = math.floor(after * 1000 + 0.5) / 1000\n"
    "    redis.call('HSET', KEYS[1], f, tostring(after))\n"
    "    table.insert(changes, {type = 'threshold', detector = a, field = f, before = before,\n"
    "                           after = after, delta = after - before})\n"
    "  end\n"
    "end\n"
    "rec['changes'] = changes\n"
    "local out = cjson.encode(rec)\n"
    "redis.call('HSET', KEYS[2], ARGV[1], out)\n"
    "return out\n"};

/* KEYS: adj, records. ARGV: id, now_ms, by, max. Returns {1, record} | {0, ''} unknown |
 * {-1, record} already rolled back. */
static const phx_script phx_fb_rollback_script = {
    "fb_rollback",
    "local raw = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "if not raw then return {0, ''} end\n"
    "local rec = cjson.decode(raw)\n"
    "if rec['rolled_back_ms'] then return {-1, raw} end\n"
    "local max = tonumber(ARGV[4])\n"
    "for _, c in ipairs(rec['changes'] or {}) do\n"
    "  if c['type'] == 'allow' then\n"
    "    if redis.call('HGET', KEYS[1], c['field']) == c['value'] then\n"
    "      if c['prev'] then redis.call('HSET', KEYS[1], c['field'], c['prev'])\n"
    "      else redis.call('HDEL', KEYS[1], c['field']) end\n"
    "    end\n"
    "  else\n"
    "    local v = tonumber(redis.call('HGET', KEYS[1], c['field']) or '0') - c['delta']\n"
    "    if v > max then v = max end\n"
    "    if v < -max then v = -max end\n"
    "    v = math.floor(v * 1000 + 0.5) / 1000\n"
    "    if v == 0 then redis.call('HDEL', KEYS[1], c['field'])\n"
    "    else redis.call('HSET', KEYS[1], c['field'], tostring(v)) end\n"
    "  end\n"
    "end\n"
    "rec['rolled_back_ms'] = tonumber(ARGV[2])\n"
    "rec['rolled_back_by'] = ARGV[3]\n"
    "local out = cjson.encode(rec)\n"
    "redis.call('HSET', KEYS[2], ARGV[1], out)\n"
    "return {1, out}\n"};

/* The detectors with thresholds a tenant offset moves. */
static int phx_fb_thresholded(const char *d)
{
    return !strcmp(d, "inject") || !strcmp(d, "code") || !strcmp(d, "url");
}

static int phx_fb_tenant_ok(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    if (n < 1 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] <= ' ' || t[i] == '{' || t[i] == '}' || t[i] == 0x7f)
            return 0;
    return 1;
}

static void phx_fb_keys(const char *tenant, char *adj, char *rec, size_t n)
{
    snprintf(adj, n, "phx:safety:adj:{%s}", tenant);
    snprintf(rec, n, "phx:safety:fb:{%s}", tenant);
}

int phx_fb_listed(const char *list, const char *d)
{
    size_t n = strlen(d);
    for (const char *p = list; p && *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == n && strncmp(p, d, n) == 0)
            return 1;
        p = c ? c + 1 : NULL;
    }
    return 0;
}

static double phx_fb_clamp(double v)
{
    return v < 0.05 ? 0.05 : v > 1 ? 1 : v;
}

void phx_fb_shift(double *warn, double *block, double off)
{
    *warn = phx_fb_clamp(*warn + off);
    *block = phx_fb_clamp(*block + off);
    if (*warn > *block)
        *warn = *block;
}

int phx_fb_adj_get(phx_redis *r, const char *tenant, const char *sha256, phx_fb_adj *a,
                   phx_err *err)
{
    memset(a, 0, sizeof(*a));
    if (!phx_fb_tenant_ok(tenant))
        return 0; /* no tenant (an operator's job) or one no feedback can name: none */
    char adj[300], rec[300], allow[80];
    phx_fb_keys(tenant, adj, rec, sizeof(adj));
    snprintf(allow, sizeof(allow), "allow:%s", sha256);
    redisReply *rep = phx_redis_cmd(r, err, "HMGET %s off:inject off:code off:url %s", adj, allow);
    if (!rep)
        return -1;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 4) {
        double *off[3] = {&a->off_inject, &a->off_code, &a->off_url};
        for (int i = 0; i < 3; i++) {
            double v = rep->element[i]->str ? strtod(rep->element[i]->str, NULL) : 0;
            /* Bounded here too: a hand-edited hash cannot push a threshold further. */
            *off[i] = v > PHX_FB_MAX ? PHX_FB_MAX : v < -PHX_FB_MAX ? -PHX_FB_MAX : v;
        }
        const char *s = rep->element[3]->str;
        const char *bar = s ? strchr(s, '|') : NULL;
        if (bar) {
            snprintf(a->allow, sizeof(a->allow), "%.*s", (int)(bar - s), s);
            snprintf(a->allow_id, sizeof(a->allow_id), "%s", bar + 1);
        }
    }
    freeReplyObject(rep);
    return 0;
}

/* The scan output of the job's step (--step, else the only one), with its step id. */
static json_t *phx_fb_scan_output(phx_redis *r, const phx_fb_req *q, const char **step,
                                  phx_err *err)
{
    char key[300];
    phx_key_out(key, sizeof(key), q->job_id);
    redisReply *rep = phx_redis_cmd(r, err, "HGETALL %s", key);
    if (!rep)
        return NULL;
    json_t *found = NULL;
    int n = 0;
    char names[256] = "";
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2) {
        const char *sid = rep->element[i]->str;
        json_t *o = json_loads(rep->element[i + 1]->str ? rep->element[i + 1]->str : "", 0, NULL);
        int scan = json_is_string(json_object_get(o, "text_sha256")) &&
                   json_is_string(json_object_get(o, "verdict"));
        if (scan && (!q->step || strcmp(q->step, sid) == 0)) {
            n++;
            size_t at = strlen(names);
            snprintf(names + at, sizeof(names) - at, "%s%s", at ? ", " : "", sid);
            json_decref(found);
            found = json_incref(o);
            *step = q->step ? q->step : NULL;
            if (!q->step)
                json_object_set_new(found, "_step", json_string(sid));
        }
        json_decref(o);
    }
    freeReplyObject(rep);
    if (n == 0) {
        json_decref(found);
        phx_err_set(err, "not_found", 0, "job %s has no safety.scan output%s%s", q->job_id,
                    q->step ? " in step " : "", q->step ? q->step : "");
        return NULL;
    }
    if (n > 1) {
        json_decref(found);
        phx_err_set(err, "invalid_input", 0, "job %s has several scans (%s): name one with --step",
                    q->job_id, names);
        return NULL;
    }
    return found;
}

json_t *phx_fb_record(phx_redis *r, const phx_fb_req *q, int64_t now_ms, phx_err *err)
{
    json_t *scan = NULL, *rec = NULL, *out = NULL;
    redisReply *rep = NULL;
    char key[300], adj[300], recs[300], id[40], nid[27], dets[128] = "";
    const char *ops[8];
    char opbuf[8][200];
    int nops = 0;
    if (!phx_id_valid(q->job_id)) {
        phx_err_set(err, "invalid_input", 0, "not a job id: %.100s", q->job_id);
        goto done;
    }
    phx_key_job(key, sizeof(key), q->job_id);
    if (!(rep = phx_redis_cmd(r, err, "HGET %s tenant", key)))
        goto done;
    if (rep->type != REDIS_REPLY_STRING) {
        phx_err_set(err, "not_found", 0, "no job %s", q->job_id);
        goto done;
    }
    char tenant[200];
    snprintf(tenant, sizeof(tenant), "%s", rep->str);
    if (!phx_fb_tenant_ok(tenant)) {
        phx_err_set(err, "invalid_input", 0, "job %s: tenant unusable in a key", q->job_id);
        goto done;
    }
    const char *step = q->step;
    if (!(scan = phx_fb_scan_output(r, q, &step, err)))
        goto done;
    if (!step)
        step = json_string_value(json_object_get(scan, "_step"));
    const char *role = json_string_value(json_object_get(scan, "role"));
    const char *sha = json_string_value(json_object_get(scan, "text_sha256"));
    json_t *findings = json_array(), *f;
    size_t i;
    json_array_foreach(json_object_get(scan, "findings"), i, f)
    {
        const char *d = json_string_value(json_object_get(f, "detector"));
        if (!d)
            continue;
        json_array_append_new(findings, json_pack("{s:s, s:s?, s:O?}", "detector", d, "category",
                                                  json_string_value(json_object_get(f, "category")),
                                                  "severity", json_object_get(f, "severity")));
        if ((!q->detector || !strcmp(q->detector, d)) && !phx_fb_listed(dets, d))
            snprintf(dets + strlen(dets), sizeof(dets) - strlen(dets), "%s%s", dets[0] ? "," : "",
                     d);
    }
    if (q->missed) {
        const char *d = q->detector                     ? q->detector
                        : role && !strcmp(role, "code") ? "code"
                        : role && !strcmp(role, "url")  ? "url"
                                                        : "inject";
        if (!phx_fb_thresholded(d)) {
            phx_err_set(err, "invalid_input", 0,
                        "detector %s has no threshold to lower: change the policy's action for it",
                        d);
            json_decref(findings);
            goto done;
        }
        snprintf(dets, sizeof(dets), "%s", d);
        snprintf(opbuf[nops], sizeof(opbuf[0]), "off %s -1", d);
        ops[nops] = opbuf[nops];
        nops++;
    } else {
        if (!dets[0]) {
            phx_err_set(err, "invalid_input", 0, "step %s has no findings%s%s to call false", step,
                        q->detector ? " of detector " : "", q->detector ? q->detector : "");
            json_decref(findings);
            goto done;
        }
        snprintf(opbuf[nops], sizeof(opbuf[0]), "allow %s %s", sha, dets);
        ops[nops] = opbuf[nops];
        nops++;
        static const char *const th[] = {"inject", "code", "url"};
        for (int k = 0; k < 3; k++)
            if (phx_fb_listed(dets, th[k])) {
                snprintf(opbuf[nops], sizeof(opbuf[0]), "off %s +1", th[k]);
                ops[nops] = opbuf[nops];
                nops++;
            }
    }
    phx_id_new(nid);
    snprintf(id, sizeof(id), "fb-%s", nid);
    rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:O?, s:O?, s:s, s:o, s:s, s:s?, s:s, s:I}",
                    "id", id, "tenant", tenant, "job", q->job_id, "step", step ? step : "", "label",
                    q->missed ? "missed" : "false_positive", "role", role, "verdict",
                    json_object_get(scan, "verdict"), "score", json_object_get(scan, "score"),
                    "text_sha256", sha, "findings", findings, "detectors", dets, "note", q->note,
                    "by", q->by ? q->by : "operator", "created_ms", (json_int_t)now_ms);
    char *body = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    if (!body) {
        phx_err_set(err, "internal", 1, "out of memory");
        goto done;
    }
    phx_fb_keys(tenant, adj, recs, sizeof(adj));
    char stepv[16], maxv[16];
    snprintf(stepv, sizeof(stepv), "%g", PHX_FB_STEP);
    snprintf(maxv, sizeof(maxv), "%g", PHX_FB_MAX);
    const char *argv[6 + 8] = {adj, recs, id, body, stepv, maxv};
    for (int k = 0; k < nops; k++)
        argv[6 + k] = ops[k];
    freeReplyObject(rep);
    /* The index first: a failure after the apply can then still find and undo it. */
    if (!(rep = phx_redis_cmd(r, err, "HSET %s %s %s", PHX_FB_INDEX, id, tenant))) {
        free(body);
        goto done;
    }
    freeReplyObject(rep);
    rep = phx_redis_eval(r, &phx_fb_apply_script, 2, 6 + nops, argv, NULL, err);
    free(body);
    if (!rep)
        goto done;
    if (rep->type != REDIS_REPLY_STRING || !(out = json_loads(rep->str, 0, NULL))) {
        phx_err_set(err, "redis_error", 0, "fb_apply: unexpected reply");
        goto done;
    }
    freeReplyObject(rep);
    rep = NULL;
    char *ch = json_dumps(json_object_get(out, "changes"), JSON_COMPACT);
    const char *kv[] = {"type",    "safety.feedback",
                        "id",      id,
                        "tenant",  tenant,
                        "job",     q->job_id,
                        "step",    step,
                        "label",   q->missed ? "missed" : "false_positive",
                        "changes", ch,
                        "by",      q->by ? q->by : "operator"};
    int a = phx_audit_add(r, PHX_AUDIT_STREAM, PHX_AUDIT_MAXLEN, 16, kv, err);
    free(ch);
    if (a < 0)
        goto fail;
    goto done;
fail:
    /* Applied but not indexed or audited: undo, so no change is in force unrecorded. */
    {
        phx_err e2;
        json_t *ignored = NULL;
        phx_fb_rollback(r, id, "phx (failed feedback)", now_ms, &ignored, &e2);
        json_decref(ignored);
    }
    json_decref(out);
    out = NULL;
done:
    if (rep)
        freeReplyObject(rep);
    json_decref(scan);
    json_decref(rec);
    return out;
}

int phx_fb_rollback(phx_redis *r, const char *id, const char *by, int64_t now_ms, json_t **rec,
                    phx_err *err)
{
    *rec = NULL;
    redisReply *rep = phx_redis_cmd(r, err, "HGET %s %s", PHX_FB_INDEX, id ? id : "");
    if (!rep)
        return -1;
    char tenant[200];
    int known = rep->type == REDIS_REPLY_STRING;
    if (known)
        snprintf(tenant, sizeof(tenant), "%s", rep->str);
    freeReplyObject(rep);
    if (!known || !phx_fb_tenant_ok(tenant))
        return 0;
    char adj[300], recs[300], now[32], maxv[16];
    phx_fb_keys(tenant, adj, recs, sizeof(adj));
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    snprintf(maxv, sizeof(maxv), "%g", PHX_FB_MAX);
    const char *argv[] = {adj, recs, id, now, by ? by : "operator", maxv};
    rep = phx_redis_eval(r, &phx_fb_rollback_script, 2, 6, argv, NULL, err);
    if (!rep)
        return -1;
    int rc = -1;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
        long long st = rep->element[0]->integer;
        const char *body = rep->element[1]->str;
        if (st == 0)
            rc = 0;
        else if (st < 0)
            phx_err_set(err, "invalid_input", 0, "%s was already rolled back", id);
        else if ((*rec = json_loads(body ? body : "", 0, NULL)))
            rc = 1;
        else
            phx_err_set(err, "redis_error", 0, "fb_rollback: unexpected reply");
    } else {
        phx_err_set(err, "redis_error", 0, "fb_rollback: unexpected reply");
    }
    freeReplyObject(rep);
    if (rc == 1) {
        char *ch = json_dumps(json_object_get(*rec, "changes"), JSON_COMPACT);
        const char *kv[] = {
            "type", "safety.feedback_rollback", "id", id, "tenant", tenant, "changes", ch,
            "by",   by ? by : "operator"};
        int a = phx_audit_add(r, PHX_AUDIT_STREAM, PHX_AUDIT_MAXLEN, 10, kv, err);
        free(ch);
        if (a < 0)
            return -1; /* rolled back, not audited: the caller reports the error */
    }
    return rc;
}

static int phx_fb_cmp(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    const char *p = json_string_value(json_object_get(x, "id"));
    const char *q = json_string_value(json_object_get(y, "id"));
    return strcmp(p ? p : "", q ? q : "");
}

json_t *phx_fb_list(phx_redis *r, const char *tenant, phx_err *err)
{
    if (!phx_fb_tenant_ok(tenant)) {
        phx_err_set(err, "invalid_input", 0, "not a tenant name");
        return NULL;
    }
    char adj[300], recs[300];
    phx_fb_keys(tenant, adj, recs, sizeof(adj));
    redisReply *rep = phx_redis_cmd(r, err, "HVALS %s", recs);
    if (!rep)
        return NULL;
    size_t n = rep->type == REDIS_REPLY_ARRAY ? rep->elements : 0;
    json_t **v = phx_xcalloc(n + 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; v && i < n; i++)
        if ((v[k] = json_loads(rep->element[i]->str ? rep->element[i]->str : "", 0, NULL)))
            k++;
    freeReplyObject(rep);
    if (k)
        qsort(v, k, sizeof(*v), phx_fb_cmp); /* ids sort by creation time */
    json_t *arr = json_array();
    for (size_t i = 0; i < k; i++)
        json_array_append_new(arr, v[i]);
    free(v);
    return arr;
}
