/* plan.c -- llm.plan (see plan.h). */
#include "plan.h"
#include "chat.h"
#include "dag.h"
#include "persona.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHX_PLAN_MAX_GOAL (64 * 1024)

/* What the model is told about the kinds it may use. Kinds without an entry are listed by name
 * only: a deployment can allow them, the model just gets less help. */
static const struct {
    const char *kind, *doc;
} phx_plan_kind_docs[] = {
    {"tool.calc", "input {\"expr\": arithmetic expression, e.g. \"2*(3+4)\" (+ - * / ^ % and "
                  "parentheses)} -> output {\"value\": number}"},
    {"tool.http_fetch", "input {\"url\": http(s) URL, \"method\"?: \"GET\"|\"POST\", \"body\"?: "
                        "string} -> output {\"status\", \"body\", \"headers\"}"},
    {"llm.chat", "input {\"messages\": [{\"role\": \"user\", \"content\": text}]} -> output "
                 "{\"text\"}"},
    {"llm.embed", "input {\"texts\": [text, ...]} -> output {\"vectors\", \"dim\"}"},
    {"kb.search", "input {\"collection\", \"query\": text, \"k\"?} -> output {\"hits\"}"},
    {"kb.upsert", "input {\"collection\", \"documents\": [{\"id\", \"text\"}]} -> output "
                  "{\"upserted\"}"},
    {"exec.run", "input {\"lang\": \"python\"|\"sh\", \"code\": text} -> output {\"stdout\", "
                 "\"stderr\", \"exit_code\"}"},
};

json_t *phx_llm_plan_schema(const json_t *job_schema, long max_steps)
{
    json_t *defs = json_object_get(job_schema, "$defs");
    if (!json_is_object(defs))
        return NULL;
    return json_pack("{s:s, s:s, s:[s], s:b, s:{s:{s:s, s:i, s:I, s:{s:s}}}, s:O}", "$schema",
                     "https://json-schema.org/draft/2020-12/schema", "type", "object", "required",
                     "steps", "additionalProperties", 0, "properties", "steps", "type", "array",
                     "minItems", 1, "maxItems", (json_int_t)max_steps, "items", "$ref",
                     "#/$defs/step", "$defs", defs);
}

static int phx_plan_kind_allowed(const json_t *allowed, const char *kind)
{
    size_t i;
    json_t *k;
    if (strcmp(kind, "llm.plan") == 0)
        return 0; /* a plan that plans again could recurse without bound */
    json_array_foreach(allowed, i, k) if (strcmp(json_string_value(k), kind) == 0) return 1;
    return 0;
}

int phx_llm_plan_check(const phx_schema *plan_schema, const json_t *plan,
                       const json_t *allowed_kinds, const json_t *reserved_ids, long max_steps,
                       json_t **reasons)
{
    json_t *errors = NULL, *r = json_array();
    *reasons = r;
    if (phx_schema_validate(plan_schema, plan, &errors) != 0) {
        size_t i;
        json_t *e;
        json_array_foreach(errors, i, e)
        {
            char buf[600];
            snprintf(buf, sizeof(buf), "at \"%s\": %s",
                     json_string_value(json_object_get(e, "path")),
                     json_string_value(json_object_get(e, "message")));
            json_array_append_new(r, json_string(buf));
        }
        if (!json_array_size(r))
            json_array_append_new(r, json_string("the plan does not satisfy the plan schema"));
        json_decref(errors);
        return -1; /* the rest of the checks assume the shape is right */
    }
    json_t *steps = json_object_get(plan, "steps"), *s;
    size_t i;
    if ((long)json_array_size(steps) > max_steps) {
        char buf[100];
        snprintf(buf, sizeof(buf), "%zu steps; at most %ld are allowed", json_array_size(steps),
                 max_steps);
        json_array_append_new(r, json_string(buf));
    }
    json_array_foreach(steps, i, s)
    {
        const char *kind = json_string_value(json_object_get(s, "kind"));
        const char *sid = json_string_value(json_object_get(s, "id"));
        size_t k;
        json_t *r_id;
        json_array_foreach(reserved_ids, k, r_id) if (strcmp(json_string_value(r_id), sid) == 0)
        {
            char buf[160];
            snprintf(buf, sizeof(buf), "step id %s is taken by the job; choose another", sid);
            json_array_append_new(r, json_string(buf));
        }
        if (!phx_plan_kind_allowed(allowed_kinds, kind)) {
            char buf[200];
            snprintf(buf, sizeof(buf), "step %s: kind %s is not allowed here",
                     json_string_value(json_object_get(s, "id")), kind);
            json_array_append_new(r, json_string(buf));
        }
    }
    json_t *dag = NULL;
    if (phx_dag_check(steps, &dag) < 0)
        json_array_extend(r, dag);
    json_decref(dag);
    return json_array_size(r) ? -1 : 0;
}

/* The system prompt: what a plan is, the kinds and how steps pass data. */
static char *phx_plan_prompt(const json_t *allowed, const json_t *reserved, long max_steps,
                             const char *context)
{
    size_t cap = 8192 + (context ? strlen(context) : 0), len = 0;
    char *p = phx_xmalloc(cap);
    len += (size_t)snprintf(
        p + len, cap - len,
        "You are the planner of Phoenix, a job pipeline that runs steps. Turn the user's goal "
        "into a plan: a JSON object {\"steps\": [...]}, at most %ld steps. Each step is "
        "{\"id\": short identifier of letters, digits, _ or -, \"kind\": one of the kinds below, "
        "\"input\": object, \"needs\": [ids of steps that must finish first]}. A step can use "
        "an earlier step's output by writing {{steps.ID.output.FIELD}} inside a string of its "
        "input (a string that is exactly one such reference takes the value with its type); "
        "every step it references must be listed in its needs. Steps without needs run in "
        "parallel. Use only these kinds:\n",
        max_steps);
    size_t i;
    json_t *k;
    json_array_foreach(allowed, i, k)
    {
        const char *kind = json_string_value(k), *doc = "see the deployment's documentation";
        if (strcmp(kind, "llm.plan") == 0)
            continue;
        for (size_t d = 0; d < sizeof(phx_plan_kind_docs) / sizeof(phx_plan_kind_docs[0]); d++)
            if (strcmp(phx_plan_kind_docs[d].kind, kind) == 0)
                doc = phx_plan_kind_docs[d].doc;
        if (len + 512 < cap)
            len += (size_t)snprintf(p + len, cap - len, "- %s: %s\n", kind, doc);
    }
    json_array_foreach(reserved, i, k)
    {
        if (len + 200 < cap)
            len += (size_t)snprintf(p + len, cap - len, "%s\"%.64s\"",
                                    i ? ", " : "Do not use the step ids ", json_string_value(k));
        if (i + 1 == json_array_size(reserved) && len + 4 < cap)
            len += (size_t)snprintf(p + len, cap - len, ".\n");
    }
    if (context && len + strlen(context) + 64 < cap)
        len += (size_t)snprintf(p + len, cap - len, "Context:\n%s\n", context);
    snprintf(p + len, cap - len, "Answer with the JSON object only, no prose.");
    return p;
}

static int phx_plan_input(const phx_llm_app *app, const json_t *in, json_t **allowed,
                          long *max_steps, phx_err *err)
{
    static const char *const known[] = {"goal",  "allowed_kinds", "max_steps",  "context",
                                        "model", "persona",       "max_tokens", "temperature"};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)in, key, v)
    {
        size_t i = 0;
        while (i < sizeof(known) / sizeof(known[0]) && strcmp(key, known[i]))
            i++;
        if (i == sizeof(known) / sizeof(known[0]))
            return phx_err_set(err, "invalid_input", 0, "llm.plan: unknown input field %.60s", key);
    }
    json_t *goal = json_object_get(in, "goal"), *ctx = json_object_get(in, "context");
    if (!json_is_string(goal) || json_string_length(goal) == 0 ||
        json_string_length(goal) > PHX_PLAN_MAX_GOAL)
        return phx_err_set(err, "invalid_input", 0, "goal must be a string of 1-%d bytes",
                           PHX_PLAN_MAX_GOAL);
    if (ctx && (!json_is_string(ctx) || json_string_length(ctx) > PHX_PLAN_MAX_GOAL))
        return phx_err_set(err, "invalid_input", 0, "context must be a string of at most %d bytes",
                           PHX_PLAN_MAX_GOAL);
    json_t *ms = json_object_get(in, "max_steps");
    *max_steps = app->plan_max_steps;
    if (ms) {
        if (!json_is_integer(ms) || json_integer_value(ms) < 1 ||
            json_integer_value(ms) > app->plan_max_steps)
            return phx_err_set(err, "invalid_input", 0, "max_steps must be in 1..%ld",
                               app->plan_max_steps);
        *max_steps = (long)json_integer_value(ms);
    }
    json_t *rid = json_object_get(in, "reserved_ids"), *x;
    size_t ri;
    if (rid && !json_is_array(rid))
        return phx_err_set(err, "invalid_input", 0, "reserved_ids must be an array of step ids");
    json_array_foreach(rid, ri, x) if (!json_is_string(x)) return phx_err_set(
        err, "invalid_input", 0, "reserved_ids[%zu] is not a string", ri);
    json_t *ak = json_object_get(in, "allowed_kinds");
    if (ak) {
        size_t i;
        json_t *k;
        if (!json_is_array(ak) || json_array_size(ak) == 0)
            return phx_err_set(err, "invalid_input", 0,
                               "allowed_kinds must be a non-empty array of step kinds");
        json_array_foreach(ak, i, k) if (!json_is_string(k)) return phx_err_set(
            err, "invalid_input", 0, "allowed_kinds[%zu] is not a string", i);
        *allowed = json_incref(ak);
        return 0;
    }
    *allowed = json_array();
    char *kinds = phx_xstrdup(app->plan_kinds), *save = NULL;
    for (char *k = strtok_r(kinds, ", ", &save); k; k = strtok_r(NULL, ", ", &save))
        json_array_append_new(*allowed, json_string(k));
    free(kinds);
    return 0;
}

/* The input llm.chat would take, built for this plan request. */
static json_t *phx_plan_chat_input(const json_t *in, const char *prompt, const json_t *schema)
{
    json_t *c = json_pack("{s:[{s:s, s:s}, {s:s, s:O}], s:{s:s, s:{s:s, s:O}}}", "messages", "role",
                          "system", "content", prompt, "role", "user", "content",
                          json_object_get(in, "goal"), "response_format", "type", "json_schema",
                          "json_schema", "name", "phoenix_plan", "schema", schema);
    static const char *const pass[] = {"model", "persona", "max_tokens", "temperature"};
    for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++)
        if (json_object_get(in, pass[i]))
            json_object_set(c, pass[i], json_object_get(in, pass[i]));
    return c;
}

static char *phx_plan_reasons_text(const json_t *reasons)
{
    size_t cap = 2048, len = 0, i;
    char *s = phx_xmalloc(cap);
    json_t *r;
    s[0] = '\0';
    json_array_foreach(reasons, i, r)
    {
        if (len + 8 >= cap)
            break;
        len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? "; " : "", json_string_value(r));
        if (len >= cap)
            len = cap - 1;
    }
    return s;
}

json_t *phx_llm_plan_step(phx_llm_app *app, phx_llm_thread *t, const phx_llm_ctx *ctx,
                          const json_t *input, phx_err *err)
{
    json_t *allowed = NULL, *chat_in = NULL, *first = NULL, *out = NULL, *reasons = NULL;
    json_t *reserved = NULL;
    char *prompt = NULL;
    long max_steps = 0;
    long pt = 0, ct = 0;
    if (phx_plan_input(app, input, &allowed, &max_steps, err) < 0)
        goto out;
    reserved = json_object_get(input, "reserved_ids");
    /* Default: the id the planner gives the llm.plan step itself, which the plan's steps join. */
    reserved = reserved ? json_incref(reserved) : json_pack("[s]", "plan");
    prompt = phx_plan_prompt(allowed, reserved, max_steps,
                             json_string_value(json_object_get(input, "context")));
    chat_in = phx_plan_chat_input(input, prompt, app->plan_schema_json);
    for (int attempt = 1; attempt <= 2; attempt++) {
        /* llm.chat does the call, the budget, the JSON parse and the schema check (with its
         * own single repair); the kind and DAG checks are ours. */
        json_t *res = phx_llm_chat_step(app, t, ctx, chat_in, err);
        if (!res) {
            if (strcmp(err->code, "invalid_output") == 0)
                snprintf(err->code, sizeof(err->code), "invalid_plan");
            goto out;
        }
        json_t *u = json_object_get(res, "usage");
        pt += (long)json_integer_value(json_object_get(u, "prompt_tokens"));
        ct += (long)json_integer_value(json_object_get(u, "completion_tokens"));
        json_t *plan = json_object_get(res, "json");
        json_decref(reasons);
        reasons = NULL;
        if (phx_llm_plan_check(app->plan_schema, plan, allowed, reserved, max_steps, &reasons) ==
            0) {
            out = json_pack("{s:O, s:i, s:O, s:O, s:{s:I, s:I}}", "plan", plan, "attempts", attempt,
                            "model", json_object_get(res, "model"), "provider",
                            json_object_get(res, "provider"), "usage", "prompt_tokens",
                            (json_int_t)pt, "completion_tokens", (json_int_t)ct);
            if (first)
                json_object_set(out, "rejected", first);
            json_decref(res);
            goto out;
        }
        char *why = phx_plan_reasons_text(reasons);
        if (attempt == 2) {
            phx_err_set(err, "invalid_plan", 0,
                        "the model did not produce a valid plan in two attempts: %.440s", why);
            free(why);
            json_decref(res);
            goto out;
        }
        first = json_incref(reasons);
        /* Second try: the model sees its plan and every reason it was refused. */
        json_t *msgs = json_object_get(chat_in, "messages");
        json_array_append_new(msgs, json_pack("{s:s, s:O}", "role", "assistant", "content",
                                              json_object_get(res, "text")));
        size_t fl = strlen(why) + 200;
        char *fix = phx_xmalloc(fl);
        snprintf(fix, fl,
                 "That plan was rejected: %s. Produce a corrected plan that fixes every "
                 "problem. Answer with the JSON object only.",
                 why);
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", fix));
        free(fix);
        free(why);
        json_decref(res);
    }
out:
    json_decref(reserved);
    json_decref(reasons);
    json_decref(first);
    json_decref(chat_in);
    json_decref(allowed);
    free(prompt);
    return out;
}
