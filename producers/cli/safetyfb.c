/* safetyfb.c -- `phx safety feedback`: label a safety.scan verdict, list and roll back labels.
 *
 * The records and adjustments are lib/feedback.c's; this is argument handling and printing.
 * The operator's name for the record is $PHX_OPERATOR (default "operator"), as for
 * `phx security`. */
#include "cli.h"
#include "feedback.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char phx_fb_usage[] =
    "usage: phx safety feedback JOB_ID [--step ID] --false-positive|--missed [--detector D]\n"
    "                           [--note TEXT]\n"
    "       phx safety feedback list --tenant T [--json]\n"
    "       phx safety feedback rollback ID\n";

/* One line per change: "allow SHA256[:12] for inject,pii" / "inject threshold +0.05 (0 ->
 * 0.05)". */
static void phx_fb_print(const json_t *rec)
{
    printf("%s  %s  tenant=%s job=%s step=%s verdict=%s score=%g detectors=%s%s\n",
           json_string_value(json_object_get(rec, "id")),
           json_string_value(json_object_get(rec, "label")),
           json_string_value(json_object_get(rec, "tenant")),
           json_string_value(json_object_get(rec, "job")),
           json_string_value(json_object_get(rec, "step")),
           json_string_value(json_object_get(rec, "verdict")),
           json_number_value(json_object_get(rec, "score")),
           json_string_value(json_object_get(rec, "detectors")),
           json_object_get(rec, "rolled_back_ms") ? "  (rolled back)" : "");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(rec, "changes"), i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        if (type && !strcmp(type, "allow"))
            printf("    allow-list text %.12s... for %s\n",
                   json_string_value(json_object_get(c, "field")) + 6,
                   json_string_value(json_object_get(c, "detectors")));
        else
            printf("    %s threshold offset %+.2f (%.2f -> %.2f)\n",
                   json_string_value(json_object_get(c, "detector")),
                   json_number_value(json_object_get(c, "delta")),
                   json_number_value(json_object_get(c, "before")),
                   json_number_value(json_object_get(c, "after")));
    }
}

static int phx_fb_fail(const phx_err *e)
{
    fprintf(stderr, "phx safety feedback: %s\n", e->message);
    if (!strcmp(e->code, "not_found"))
        return PHX_EXIT_FAILED;
    if (!strcmp(e->code, "invalid_input"))
        return PHX_EXIT_USAGE;
    return PHX_EXIT_INFRA;
}

static int phx_fb_main(phx_redis *r, int argc, char **argv)
{
    phx_err err;
    phx_err_clear(&err);
    if (argc >= 2 && !strcmp(argv[1], "list")) {
        const char *tenant = NULL;
        int json = 0;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--tenant") && i + 1 < argc)
                tenant = argv[++i];
            else if (!strcmp(argv[i], "--json"))
                json = 1;
            else
                return fprintf(stderr, "%s", phx_fb_usage), PHX_EXIT_USAGE;
        }
        if (!tenant)
            return fprintf(stderr, "%s", phx_fb_usage), PHX_EXIT_USAGE;
        json_t *arr = phx_fb_list(r, tenant, &err);
        if (!arr)
            return phx_fb_fail(&err);
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v)
        {
            if (json) {
                char *s = json_dumps(v, JSON_COMPACT);
                printf("%s\n", s ? s : "");
                free(s);
            } else {
                phx_fb_print(v);
            }
        }
        if (!json && json_array_size(arr) == 0)
            printf("no feedback for tenant %s\n", tenant);
        json_decref(arr);
        return PHX_EXIT_OK;
    }
    if (argc == 3 && !strcmp(argv[1], "rollback")) {
        json_t *rec = NULL;
        int rc = phx_fb_rollback(r, argv[2], phx_cli_operator(), phx_now_ms(), &rec, &err);
        if (rc < 0)
            return phx_fb_fail(&err);
        if (rc == 0) {
            fprintf(stderr, "phx safety feedback: no feedback %s\n", argv[2]);
            return PHX_EXIT_FAILED;
        }
        printf("rolled back: ");
        phx_fb_print(rec);
        json_decref(rec);
        return PHX_EXIT_OK;
    }
    phx_fb_req q = {.by = phx_cli_operator()};
    int labels = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--false-positive"))
            labels++, q.missed = 0;
        else if (!strcmp(a, "--missed"))
            labels++, q.missed = 1;
        else if (!strcmp(a, "--step") && more)
            q.step = argv[++i];
        else if (!strcmp(a, "--detector") && more)
            q.detector = argv[++i];
        else if (!strcmp(a, "--note") && more)
            q.note = argv[++i];
        else if (a[0] != '-' && !q.job_id)
            q.job_id = a;
        else
            return fprintf(stderr, "%s", phx_fb_usage), PHX_EXIT_USAGE;
    }
    if (!q.job_id || labels != 1)
        return fprintf(stderr, "%s", phx_fb_usage), PHX_EXIT_USAGE;
    json_t *rec = phx_fb_record(r, &q, phx_now_ms(), &err);
    if (!rec)
        return phx_fb_fail(&err);
    phx_fb_print(rec);
    json_decref(rec);
    return PHX_EXIT_OK;
}

int phx_cli_safety(const phx_cli_env *env, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "feedback") != 0) {
        fprintf(stderr, "%s", phx_fb_usage);
        return PHX_EXIT_USAGE;
    }
    phx_redis *r = phx_cli_redis(env);
    if (!r)
        return PHX_EXIT_INFRA;
    int rc = phx_fb_main(r, argc - 1, argv + 1);
    phx_redis_free(r);
    return rc;
}
