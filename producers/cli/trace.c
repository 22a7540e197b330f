/* trace.c -- `phx trace JOB_ID`: one job's life as a timeline.
 *
 * The data comes from lib/jobtrace.c (shared with the ingress's ops page): the job's Redis
 * record joined with its messages on phx.events and phx.results, read as snapshots.
 * --timeout bounds the reading of each topic, and what was read by then is still printed.
 *
 * Output: a text timeline (offsets from the first entry), then one line per step; or with
 * --json one object {job, trace_id, timeline: [...], steps: {...}} for tools. A job with no
 * Redis record (expired) and no event is "not found" (exit 1). */
#include "cli.h"
#include "jobtrace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void phx_trace_print_entry(json_t *e, json_int_t t0)
{
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *step = json_string_value(json_object_get(e, "step"));
    json_int_t att = json_integer_value(json_object_get(e, "attempt"));
    printf("  %+8lld ms  %-20s", (long long)(json_integer_value(json_object_get(e, "ts_ms")) - t0),
           type ? type : "?");
    if (step)
        printf(" %s", step);
    if (att)
        printf(" #%lld", (long long)att);
    if (strcmp(type ? type : "", "result") == 0) {
        printf("  %s", json_string_value(json_object_get(e, "status")) ?: "?");
        if (json_string_value(json_object_get(e, "error")))
            printf(" (%s)", json_string_value(json_object_get(e, "error")));
        printf("  %lld ms  by %s", (long long)json_integer_value(json_object_get(e, "duration_ms")),
               json_string_value(json_object_get(e, "worker")) ?: "?");
    } else {
        json_t *d = json_object_get(e, "detail");
        if (json_is_string(d))
            printf("  %s", json_string_value(d));
        else if (d && !json_is_null(d)) {
            char *s = json_dumps(d, JSON_COMPACT);
            printf("  %.160s", s ? s : "");
            free(s);
        }
    }
    printf("\n");
}

static void phx_trace_print(const char *id, json_t *view, const char *trace, json_t *timeline,
                            json_t *steps)
{
    printf("job %s  state %s  tenant %s\n", id,
           json_string_value(json_object_get(view, "state")) ?: "(not in redis: expired?)",
           json_string_value(json_object_get(view, "tenant")) ?: "?");
    if (trace && *trace)
        printf("trace %s\n", trace);
    json_int_t t0 = json_integer_value(json_object_get(json_array_get(timeline, 0), "ts_ms"));
    json_int_t t1 = json_integer_value(
        json_object_get(json_array_get(timeline, json_array_size(timeline) - 1), "ts_ms"));
    if (json_array_size(timeline))
        printf("timeline (%zu entries, %lld ms first to last):\n", json_array_size(timeline),
               (long long)(t1 - t0));
    size_t i;
    json_t *e;
    json_array_foreach(timeline, i, e) phx_trace_print_entry(e, t0);
    const char *sid;
    json_t *s;
    if (json_object_size(steps))
        printf("steps:\n");
    json_object_foreach(steps, sid, s)
    {
        json_t *d = json_object_get(s, "first_dispatch_ms"),
               *r = json_object_get(s, "last_result_ms");
        printf("  %-16s %-10s attempts %lld", sid,
               json_string_value(json_object_get(s, "state")) ?: "?",
               (long long)json_integer_value(json_object_get(s, "attempts")));
        if (d && r)
            printf("  dispatch->result %lld ms",
                   (long long)(json_integer_value(r) - json_integer_value(d)));
        printf("  busy %lld ms", (long long)json_integer_value(json_object_get(s, "busy_ms")));
        json_t *ws = json_object_get(s, "workers"), *w;
        size_t k;
        json_array_foreach(ws, k, w) printf("%s%s", k ? ", " : "  workers ", json_string_value(w));
        printf("\n");
    }
}

int phx_cli_trace(const phx_cli_env *env, int argc, char **argv)
{
    int as_json = 0, timeout_s = 30;
    const char *id;
    if (phx_cli_job_args(argc, argv, "json", &as_json, &timeout_s, &id) < 0) {
        fprintf(stderr, "usage: phx trace JOB_ID [--json] [--timeout S]\n");
        return PHX_EXIT_USAGE;
    }
    phx_redis *r = phx_cli_redis(env);
    if (!r)
        return PHX_EXIT_USAGE;
    phx_err err;
    phx_err_clear(&err);
    int partial = 0;
    json_t *o = phx_jobtrace_collect(r, env->brokers, id, timeout_s * 1000, &partial, &err);
    phx_redis_free(r);
    if (!o) {
        fprintf(stderr, "phx trace: %s\n", err.message);
        return strcmp(err.code, "not_found") == 0 ? PHX_EXIT_FAILED : PHX_EXIT_INFRA;
    }
    if (partial)
        fprintf(stderr, "phx trace: %s\n", err.message);
    if (as_json) {
        char *s = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
    } else {
        phx_trace_print(id, json_object_get(o, "job"),
                        json_string_value(json_object_get(o, "trace_id")),
                        json_object_get(o, "timeline"), json_object_get(o, "steps"));
    }
    json_decref(o);
    return partial ? PHX_EXIT_INFRA : PHX_EXIT_OK;
}
