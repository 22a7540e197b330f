/* expand.c -- planning goal-only jobs (see expand.h). */
#include "expand.h"
#include "dag.h"
#include "gates.h"
#include "jobstore.h"
#include "rbac.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Step kinds a plan may use, when the principal's scopes allow them. The LLM pool is told the
 * subset, so the model is never offered a kind the job would then be refused. */
static const char *const phx_plan_kinds[] = {"tool.calc", "tool.http_fetch", "exec.run",
                                             "llm.chat",  "llm.embed",       "safety.scan"};

json_t *phx_plan_initial_steps(const json_t *job, unsigned scopes)
{
    json_t *kinds = json_array();
    for (size_t i = 0; i < sizeof(phx_plan_kinds) / sizeof(phx_plan_kinds[0]); i++) {
        unsigned need = phx_rbac_kind_scope(phx_plan_kinds[i]);
        if ((scopes & need) == need)
            json_array_append_new(kinds, json_string(phx_plan_kinds[i]));
    }
    json_t *input =
        json_pack("{s:O, s:o}", "goal", json_object_get(job, "goal"), "allowed_kinds", kinds);
    /* A plan takes a model round trip or two: give it more than a tool step's default. */
    return json_pack("[{s:s, s:s, s:o, s:i}]", "id", PHX_PLAN_STEP_ID, "kind", "llm.plan", "input",
                     input, "timeout_ms", 120000);
}

int phx_plan_check(const phx_schema *job_schema, const json_t *job, const json_t *output,
                   unsigned scopes, json_t **reasons)
{
    json_t *rs = json_array(), *errors = NULL, *more = NULL;
    json_t *plan = json_object_get(json_object_get(output, "plan"), "steps");
    if (!json_is_array(plan) || json_array_size(plan) == 0) {
        json_array_append_new(rs, json_string("the plan has no steps"));
        goto out;
    }
    /* The whole job as it would run: the plan step followed by the plan (the job's safety
     * gates left out: they are the planner's, not the client's, and the schema refuses them). */
    json_t *steps = phx_gates_strip(json_object_get(job, "steps"));
    json_array_extend(steps, plan);
    json_t *candidate = json_pack("{s:s, s:O, s:o}", "schema", "job.v1", "id",
                                  json_object_get(job, "id"), "steps", steps);
    if (phx_schema_validate(job_schema, candidate, &errors) != 0) {
        size_t i;
        json_t *e;
        json_array_foreach(errors, i, e)
        {
            char buf[512];
            snprintf(buf, sizeof(buf), "%s: %s", json_string_value(json_object_get(e, "path")),
                     json_string_value(json_object_get(e, "message")));
            json_array_append_new(rs, json_string(buf));
        }
    } else if (phx_dag_check(steps, &more) < 0) {
        json_array_extend(rs, more);
    } else if (phx_rbac_check_steps(plan, scopes, &more) < 0) {
        json_array_extend(rs, more);
    }
    size_t i;
    json_t *s;
    json_array_foreach(plan, i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "kind")) ?: "", "llm.plan") == 0)
            json_array_append_new(rs, json_string("a plan may not plan again (llm.plan)"));
    }
    json_decref(candidate);
out:
    json_decref(errors);
    json_decref(more);
    if (json_array_size(rs) == 0) {
        json_decref(rs);
        *reasons = NULL;
        return 0;
    }
    *reasons = rs;
    return -1;
}

/* Only a running job that was not expanded before: a redelivered result must not append the
 * plan twice. ARGV: new spec, then the new step ids. */
static const phx_script phx_expand_script = {
    "plan_expand", "if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end\n"
                   "if redis.call('HGET', KEYS[1], 'expanded') == '1' then return 0 end\n"
                   "redis.call('HSET', KEYS[1], 'spec', ARGV[1], 'expanded', '1')\n"
                   "for i = 2, #ARGV do\n"
                   "  redis.call('HSETNX', KEYS[2], ARGV[i], 'pending')\n"
                   "  redis.call('HSETNX', KEYS[2], ARGV[i] .. ':attempt', '0')\n"
                   "end\n"
                   "return 1\n"};

int phx_plan_expand(phx_redis *r, const char *id, const json_t *job, const json_t *plan,
                    phx_err *err)
{
    json_t *spec = json_deep_copy(job);
    json_array_extend(json_object_get(spec, "steps"), (json_t *)plan);
    char *text = json_dumps(spec, JSON_COMPACT);
    char kj[192], ks[200];
    phx_key_job(kj, sizeof(kj), id);
    phx_key_steps(ks, sizeof(ks), id);
    size_t n = json_array_size(plan);
    const char **argv = phx_xcalloc(n + 3, sizeof(*argv));
    argv[0] = kj, argv[1] = ks, argv[2] = text;
    for (size_t i = 0; i < n; i++)
        argv[3 + i] = json_string_value(json_object_get(json_array_get(plan, i), "id"));
    redisReply *rep = phx_redis_eval(r, &phx_expand_script, 2, (int)n + 3, argv, NULL, err);
    free(argv);
    free(text);
    json_decref(spec);
    if (!rep)
        return -1;
    int rc = (int)rep->integer;
    freeReplyObject(rep);
    return rc;
}
