/* security.c -- `phx security`: see, apply and undo security responses (lib/security.h).
 *
 * The same records phx-sentinel writes, so an operator can release an automatic response,
 * apply one by hand (throttle or suspend a tenant during an incident, suspend a leaked key,
 * quarantine a job's outputs) and read the audit trail; every action is audited with
 * by = "operator" (or $PHX_OPERATOR when set, e.g. a name for the record). */
#include "cli.h"
#include "security.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char phx_security_usage[] =
    "usage: phx security list [--json]\n"
    "       phx security release ID\n"
    "       phx security throttle TENANT [--per-min N] [--burst N] [--reason TEXT] [--ttl S]\n"
    "       phx security suspend tenant|key|principal SUBJECT [--reason TEXT] [--ttl S]\n"
    "       phx security quarantine JOB_ID [--reason TEXT] [--ttl S]\n"
    "       phx security audit [--count N]\n";

const char *phx_cli_operator(void)
{
    const char *o = getenv("PHX_OPERATOR");
    return o && *o ? o : "operator";
}

static int phx_security_list(phx_redis *r, int json)
{
    phx_err err;
    json_t *arr = phx_sec_list(r, &err);
    if (!arr) {
        fprintf(stderr, "phx security: %s\n", err.message);
        return PHX_EXIT_INFRA;
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json) {
            char *s = json_dumps(v, JSON_COMPACT);
            if (s)
                printf("%s\n", s);
            free(s);
            continue;
        }
        json_int_t exp = json_integer_value(json_object_get(v, "expires_ms"));
        printf("%s  %-17s %-30s rule=%s by=%s expires=%s  %s\n",
               json_string_value(json_object_get(v, "id")),
               json_string_value(json_object_get(v, "action")),
               json_string_value(json_object_get(v, "subject")),
               json_string_value(json_object_get(v, "rule")),
               json_string_value(json_object_get(v, "by")), exp > 0 ? "yes" : "never",
               json_string_value(json_object_get(v, "reason")));
    }
    if (!json && json_array_size(arr) == 0)
        printf("no active security responses\n");
    json_decref(arr);
    return PHX_EXIT_OK;
}

static int phx_security_audit(phx_redis *r, long count)
{
    phx_err err;
    redisReply *rep = phx_redis_cmd(r, &err, "XREVRANGE %s + - COUNT %ld", PHX_AUDIT_STREAM, count);
    if (!rep) {
        fprintf(stderr, "phx security: %s\n", err.message);
        return PHX_EXIT_INFRA;
    }
    /* Oldest first, one JSON object per line, so it reads like a log. */
    for (size_t i = rep->type == REDIS_REPLY_ARRAY ? rep->elements : 0; i-- > 0;) {
        const redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "entry", json_string(e->element[0]->str));
        const redisReply *f = e->element[1];
        for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2)
            json_object_set_new(o, f->element[k]->str, json_string(f->element[k + 1]->str));
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
    }
    freeReplyObject(rep);
    return PHX_EXIT_OK;
}

/* Parse the options after the positional arguments into q; -1 on bad usage. Every option
 * takes a value, so they come in pairs. */
static int phx_security_opts(int argc, char **argv, int i, phx_sec_req *q, long *per_min)
{
    for (; i < argc; i += 2) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!v)
            return -1;
        if (strcmp(o, "--reason") == 0) {
            q->reason = v;
        } else if (strcmp(o, "--ttl") == 0) {
            if (phx_parse_long(v, 0, 31536000, &n) < 0)
                return -1;
            q->ttl_ms = (int64_t)n * 1000;
        } else if (strcmp(o, "--per-min") == 0 && q->action == PHX_SEC_THROTTLE) {
            if (phx_parse_long(v, 1, 1000000, per_min) < 0)
                return -1;
        } else if (strcmp(o, "--burst") == 0 && q->action == PHX_SEC_THROTTLE) {
            if (phx_parse_long(v, 1, 1000000, &n) < 0)
                return -1;
            q->throttle_burst = n;
        } else {
            return -1;
        }
    }
    return 0;
}

static int phx_security_apply(phx_redis *r, int argc, char **argv)
{
    phx_sec_req q = {.rule = "manual", .reason = "", .by = phx_cli_operator(), .throttle_burst = 3};
    long per_min = 30;
    int first_opt;
    if (strcmp(argv[1], "throttle") == 0 && argc >= 3) {
        q.action = PHX_SEC_THROTTLE, q.subject = argv[2], first_opt = 3;
    } else if (strcmp(argv[1], "quarantine") == 0 && argc >= 3) {
        q.action = PHX_SEC_QUARANTINE, q.subject = argv[2], first_opt = 3;
    } else if (strcmp(argv[1], "suspend") == 0 && argc >= 4) {
        const char *w = argv[2];
        q.action = strcmp(w, "tenant") == 0      ? PHX_SEC_SUSPEND_TENANT
                   : strcmp(w, "key") == 0       ? PHX_SEC_SUSPEND_KEY
                   : strcmp(w, "principal") == 0 ? PHX_SEC_SUSPEND_PRINCIPAL
                                                 : PHX_SEC_NACTIONS;
        if (q.action == PHX_SEC_NACTIONS)
            return -1;
        q.subject = argv[3], first_opt = 4;
    } else {
        return -1;
    }
    if (phx_security_opts(argc, argv, first_opt, &q, &per_min) < 0)
        return -1;
    q.throttle_per_s = (double)per_min / 60.0;
    phx_err err;
    phx_err_clear(&err);
    char id[32];
    int rc = phx_sec_apply(r, &q, phx_now_ms(), id, &err);
    if (rc < 0) {
        fprintf(stderr, "phx security: %s\n", err.message);
        return strcmp(err.code, "invalid_input") == 0 ? PHX_EXIT_USAGE
               : strcmp(err.code, "not_found") == 0   ? PHX_EXIT_FAILED
                                                      : PHX_EXIT_INFRA;
    }
    printf("%s\n", id);
    if (rc == 0)
        fprintf(stderr, "phx security: already in force as %s\n", id);
    return PHX_EXIT_OK;
}

int phx_cli_security(const phx_cli_env *env, int argc, char **argv)
{
    if (argc < 2) {
        fputs(phx_security_usage, stderr);
        return PHX_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    int list = strcmp(cmd, "list") == 0, audit = strcmp(cmd, "audit") == 0;
    long count = 20;
    if ((list && argc > 3) || (list && argc == 3 && strcmp(argv[2], "--json") != 0) ||
        (strcmp(cmd, "release") == 0 && argc != 3)) {
        fputs(phx_security_usage, stderr);
        return PHX_EXIT_USAGE;
    }
    if (audit) {
        char *end = NULL;
        if (argc == 4 && strcmp(argv[2], "--count") == 0)
            count = strtol(argv[3], &end, 10);
        if ((argc != 2 && argc != 4) || (end && *end) || count < 1 || count > 100000) {
            fputs(phx_security_usage, stderr);
            return PHX_EXIT_USAGE;
        }
    }
    phx_redis *r = phx_cli_redis(env);
    if (!r)
        return PHX_EXIT_INFRA;
    int rc;
    if (list) {
        rc = phx_security_list(r, argc == 3);
    } else if (audit) {
        rc = phx_security_audit(r, count);
    } else if (strcmp(cmd, "release") == 0) {
        phx_err err;
        phx_err_clear(&err);
        int n = phx_sec_release(r, argv[2], phx_cli_operator(), phx_now_ms(), &err);
        if (n < 0)
            fprintf(stderr, "phx security: %s\n", err.message);
        else if (n == 0)
            fprintf(stderr, "phx security: no active response %s\n", argv[2]);
        else
            printf("released %s\n", argv[2]);
        rc = n < 0    ? (strcmp(err.code, "invalid_input") == 0 ? PHX_EXIT_USAGE : PHX_EXIT_INFRA)
             : n == 0 ? PHX_EXIT_FAILED
                      : PHX_EXIT_OK;
    } else if ((rc = phx_security_apply(r, argc, argv)) < 0) {
        fputs(phx_security_usage, stderr);
        rc = PHX_EXIT_USAGE;
    }
    phx_redis_free(r);
    return rc;
}
