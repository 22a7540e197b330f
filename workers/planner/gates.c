/* gates.c -- weaving safety gates into a job's steps, and applying their verdicts (gates.h).
 *
 * Everything here but phx_gates_load is a pure function on JSON, so the weaving rules are
 * unit-tested case by case (tests/unit/test_gates.c) without a pipeline. */
#include "gates.h"
#include "dag.h"
#include "jobstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHX_GATE_PREFIX "safety:"

static const char *phx_gates_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int phx_gates_kind_is(const json_t *step, const char *kind)
{
    const char *k = phx_gates_str(step, "kind");
    return k && strcmp(k, kind) == 0;
}

int phx_gates_wanted(const json_t *steps)
{
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s)
    {
        if (phx_gates_kind_is(s, "exec.run") || phx_gates_kind_is(s, "tool.http_fetch") ||
            phx_gates_kind_is(s, "llm.chat") || phx_gates_kind_is(s, "llm.plan"))
            return 1;
    }
    return 0;
}

/* --- policy ---------------------------------------------------------------------------- */

static void phx_gates_all(phx_gates *g, int on)
{
    g->input = g->code = g->urls = g->retrieved = g->output = g->plan = on;
}

static void phx_gates_flag(const json_t *o, const char *key, int *out)
{
    json_t *v = json_object_get(o, key);
    if (json_is_boolean(v))
        *out = json_is_true(v);
}

int phx_gates_load(phx_redis *r, const char *tenant, int enabled, phx_gates *g, phx_err *err)
{
    phx_gates_all(g, enabled);
    if (!enabled)
        return 0;
    /* The tenant's document, else the default: both in one round trip (intake's hot path).
     * Two GETs in a pipeline rather than one MGET: the keys have no common hash tag, and a
     * Redis Cluster refuses a multi-key command across slots (CROSSSLOT). */
    char kt[256], kd[256];
    snprintf(kt, sizeof(kt), "%s%s", PHX_KEY_SAFETY_POLICY, tenant ? tenant : "");
    snprintf(kd, sizeof(kd), "%sdefault", PHX_KEY_SAFETY_POLICY);
    const char *gt[] = {"GET", kt}, *gd[] = {"GET", kd};
    const phx_redis_call calls[] = {{NULL, 0, 2, gt, NULL}, {NULL, 0, 2, gd, NULL}};
    redisReply *rep[2];
    if (phx_redis_pipeline(r, calls, 2, rep, err) < 0)
        return -1;
    const redisReply *doc = NULL;
    for (size_t i = 0; i < 2 && !doc; i++)
        if (rep[i]->type == REDIS_REPLY_STRING)
            doc = rep[i];
    if (doc) {
        /* A document that does not parse leaves every gate on: fail closed. (The safety pool
         * refuses it too and keeps its last good copy; we have no copy, so we stay strict.) */
        json_t *d = json_loadb(doc->str, doc->len, 0, NULL);
        const json_t *gates = json_object_get(d, "gates");
        phx_gates_flag(gates, "input", &g->input);
        phx_gates_flag(gates, "code", &g->code);
        phx_gates_flag(gates, "urls", &g->urls);
        phx_gates_flag(gates, "retrieved", &g->retrieved);
        phx_gates_flag(gates, "output", &g->output);
        phx_gates_flag(gates, "plan", &g->plan);
        json_decref(d);
    }
    freeReplyObject(rep[0]);
    freeReplyObject(rep[1]);
    return 0;
}

/* --- weaving --------------------------------------------------------------------------- */

static const json_t *phx_gates_find(const json_t *all, const char *id)
{
    size_t i;
    json_t *s;
    json_array_foreach(all, i, s)
    {
        const char *sid = phx_gates_str(s, "id");
        if (sid && strcmp(sid, id) == 0)
            return s;
    }
    return NULL;
}

/* The role of text built from other steps' outputs: the least trusted source wins. */
typedef struct phx_gates_src {
    const json_t *all;
    int retrieved, tool, model;
} phx_gates_src;

static void phx_gates_src_ref(const char *step_id, void *arg)
{
    phx_gates_src *src = arg;
    const char *kind = phx_gates_str(phx_gates_find(src->all, step_id), "kind");
    if (!kind)
        return;
    if (strncmp(kind, "kb.", 3) == 0)
        src->retrieved = 1;
    else if (strncmp(kind, "llm.", 4) == 0)
        src->model = 1;
    else
        src->tool = 1;
}

/* NULL when text has no template (it is the job's own text). */
static const char *phx_gates_source_role(const json_t *text, const json_t *all)
{
    phx_gates_src src = {all, 0, 0, 0};
    phx_dag_ref_steps(text, phx_gates_src_ref, &src);
    if (src.retrieved)
        return "retrieved_document";
    if (src.tool)
        return "tool_output";
    if (src.model)
        return "model_output";
    return NULL;
}

/* The next free gate id on stem name ("safety:NAME", then "safety:NAME.2", ...): *n counts
 * the gates on this stem; ids already used by out or all are skipped, so a plan step called
 * "input" or "reply" cannot collide with the job's own gates. */
static json_t *phx_gates_id(const char *name, int *n, const json_t *out, const json_t *all)
{
    char id[256];
    for (;;) {
        if (++*n <= 1)
            snprintf(id, sizeof(id), PHX_GATE_PREFIX "%s", name);
        else
            snprintf(id, sizeof(id), PHX_GATE_PREFIX "%s.%d", name, *n);
        if (!phx_gates_find(out, id) && !phx_gates_find(all, id))
            return json_string(id);
    }
}

/* A gate step: scans text (a string, templates allowed) in role before step guarded. */
static json_t *phx_gates_step(json_t *id, const char *kind, json_t *input, const json_t *needs,
                              const char *guarded, json_t *path, const char *on)
{
    json_t *g = json_pack("{s:o, s:s, s:o, s:{s:s, s:o, s:s}}", "id", id, "kind", kind, "input",
                          input, "gate", "step", guarded ? guarded : "", "path",
                          path ? path : json_array(), "on", on);
    if (json_array_size(needs) > 0)
        json_object_set_new(g, "needs", json_deep_copy(needs));
    return g;
}

typedef struct phx_gates_weaver {
    const json_t *all;
    const phx_gates *g;
    json_t *out;      /* the new step list */
    json_t *step;     /* the copy of the step being guarded */
    const char *name; /* gate id stem: the step id, or "input" */
    int n;            /* gates on this step so far */
    json_t *needs0;   /* the step's own needs: every gate on it waits for exactly these */
} phx_gates_weaver;

/* Guard the string at path in the step's input: a gate scanning it in role. */
static void phx_gates_guard(phx_gates_weaver *w, json_t *path, const json_t *text, const char *role)
{
    json_t *gid = phx_gates_id(w->name, &w->n, w->out, w->all);
    json_t *needs = json_object_get(w->step, "needs");
    json_t *input = json_pack("{s:O, s:s}", "text", text, "role", role);
    json_array_append_new(w->out, phx_gates_step(json_incref(gid), "safety.scan", input, w->needs0,
                                                 phx_gates_str(w->step, "id"), path, "input"));
    if (!needs) {
        needs = json_array();
        json_object_set_new(w->step, "needs", needs);
    }
    json_array_append_new(needs, gid);
}

static void phx_gates_guard_field(phx_gates_weaver *w, const char *field, const char *role)
{
    const json_t *text = json_object_get(json_object_get(w->step, "input"), field);
    if (json_is_string(text) && json_string_length(text) > 0)
        phx_gates_guard(w, json_pack("[s]", field), text, role);
}

/* llm.chat: literal text is the job's (input gate); templated text comes from other steps
 * (retrieved gate, role from the least trusted source). */
static void phx_gates_guard_messages(phx_gates_weaver *w)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(json_object_get(w->step, "input"), "messages"), i, m)
    {
        const json_t *text = json_object_get(m, "content");
        if (!json_is_string(text) || json_string_length(text) == 0)
            continue;
        const char *src = phx_gates_source_role(text, w->all);
        if (src ? !w->g->retrieved : !w->g->input)
            continue;
        phx_gates_guard(w, json_pack("[s, I, s]", "messages", (json_int_t)i, "content"), text,
                        src ? src : "user_prompt");
    }
}

static int phx_gates_has_dependant(const json_t *all, const char *sid)
{
    size_t i, k;
    json_t *s, *need;
    json_array_foreach(all, i, s)
    {
        json_array_foreach(json_object_get(s, "needs"), k, need)
        {
            if (json_is_string(need) && strcmp(json_string_value(need), sid) == 0)
                return 1;
        }
    }
    return 0;
}

/* The plan gate: safety.review_plan on the plan; every plan step without needs waits for it. */
static json_t *phx_gates_plan_review(const json_t *steps, const json_t *all, json_t *out)
{
    json_t *copy = json_deep_copy(steps);
    int n = 0;
    json_t *gid = phx_gates_id("plan", &n, out, all);
    json_t *need = json_pack("[O]", gid);
    json_array_append_new(out, phx_gates_step(gid, "safety.review_plan",
                                              json_pack("{s:o}", "steps", json_deep_copy(steps)),
                                              NULL, NULL, NULL, "plan"));
    size_t i;
    json_t *s;
    json_array_foreach(copy, i, s)
    {
        if (json_array_size(json_object_get(s, "needs")) == 0)
            json_object_set_new(s, "needs", json_deep_copy(need));
    }
    json_decref(need);
    return copy;
}

json_t *phx_gates_weave(const json_t *steps, const json_t *all, const phx_gates *g, int plan_review)
{
    json_t *out = json_array();
    json_t *todo =
        plan_review && g->plan ? phx_gates_plan_review(steps, all, out) : json_deep_copy(steps);
    if (!all)
        all = todo;
    size_t i;
    json_t *s;
    json_array_foreach(todo, i, s)
    {
        const char *sid = phx_gates_str(s, "id");
        phx_gates_weaver w = {
            all, g, out, s, sid ? sid : "", 0, json_deep_copy(json_object_get(s, "needs"))};
        if (phx_gates_kind_is(s, "exec.run") && g->code)
            phx_gates_guard_field(&w, "code", "code");
        else if (phx_gates_kind_is(s, "tool.http_fetch") && g->urls)
            phx_gates_guard_field(&w, "url", "url");
        else if (phx_gates_kind_is(s, "llm.plan") && g->input) {
            w.name = "input";
            phx_gates_guard_field(&w, "goal", "user_prompt");
        } else if (phx_gates_kind_is(s, "llm.chat"))
            phx_gates_guard_messages(&w);
        json_decref(w.needs0);
        json_array_append(out, s);
    }
    /* The reply gate: what the caller gets from a model is screened last. */
    int n = 0;
    json_array_foreach(todo, i, s)
    {
        const char *sid = phx_gates_str(s, "id");
        if (!g->output || !sid || !phx_gates_kind_is(s, "llm.chat") ||
            phx_gates_has_dependant(all, sid))
            continue;
        char tpl[256];
        snprintf(tpl, sizeof(tpl), "{{steps.%s.output.text}}", sid);
        json_t *needs = json_pack("[s]", sid);
        json_array_append_new(
            out, phx_gates_step(phx_gates_id("reply", &n, out, all), "safety.scan",
                                json_pack("{s:s, s:s}", "text", tpl, "role", "model_output"), needs,
                                sid, json_pack("[s]", "text"), "output"));
        json_decref(needs);
    }
    json_decref(todo);
    return out;
}

json_t *phx_gates_strip(const json_t *steps)
{
    json_t *out = json_array();
    size_t i, k;
    json_t *s, *need;
    json_array_foreach(steps, i, s)
    {
        if (phx_gates_of(s))
            continue;
        json_t *c = json_deep_copy(s), *needs = json_object_get(c, "needs");
        if (needs) {
            json_t *kept = json_array();
            json_array_foreach(needs, k, need)
            {
                const char *n = json_string_value(need);
                if (!n || strncmp(n, PHX_GATE_PREFIX, strlen(PHX_GATE_PREFIX)) != 0)
                    json_array_append(kept, need);
            }
            if (json_array_size(kept))
                json_object_set_new(c, "needs", kept);
            else {
                json_decref(kept);
                json_object_del(c, "needs");
            }
        }
        json_array_append_new(out, c);
    }
    return out;
}

/* --- verdicts -------------------------------------------------------------------------- */

const json_t *phx_gates_of(const json_t *step)
{
    const json_t *g = json_object_get(step, "gate");
    return json_is_object(g) ? g : NULL;
}

const char *phx_gates_verdict(const json_t *outputs, const char *gid)
{
    return phx_gates_str(json_object_get(outputs, gid), "verdict");
}

/* Set v (stolen) at path under root; 0 if the path exists up to its last element. */
static int phx_gates_path_set(json_t *root, const json_t *path, json_t *v)
{
    json_t *cur = root;
    size_t n = json_array_size(path);
    for (size_t i = 0; i + 1 < n && cur; i++) {
        const json_t *p = json_array_get(path, i);
        cur = json_is_integer(p) ? json_array_get(cur, (size_t)json_integer_value(p))
                                 : json_object_get(cur, json_string_value(p));
    }
    const json_t *last = json_array_get(path, n ? n - 1 : 0);
    int rc = -1;
    if (cur && n && json_is_integer(last) && json_is_array(cur))
        rc = json_array_set(cur, (size_t)json_integer_value(last), v);
    else if (cur && n && json_is_string(last) && json_is_object(cur))
        rc = json_object_set(cur, json_string_value(last), v);
    json_decref(v);
    return rc;
}

static const json_t *phx_gates_redacted(const json_t *outputs, const char *gid)
{
    const char *v = phx_gates_verdict(outputs, gid);
    if (!v || strcmp(v, "redact") != 0)
        return NULL;
    const json_t *t = json_object_get(json_object_get(outputs, gid), "redacted_text");
    return json_is_string(t) ? t : NULL;
}

void phx_gates_redact_input(const json_t *steps, const char *sid, json_t *input,
                            const json_t *outputs)
{
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s)
    {
        const json_t *g = phx_gates_of(s);
        const char *on = phx_gates_str(g, "on"), *step = phx_gates_str(g, "step");
        if (!g || !on || strcmp(on, "input") != 0 || !step || strcmp(step, sid) != 0)
            continue;
        const json_t *t = phx_gates_redacted(outputs, phx_gates_str(s, "id"));
        if (t)
            phx_gates_path_set(input, json_object_get(g, "path"), json_deep_copy(t));
    }
}

json_t *phx_gates_redact_output(const json_t *gate_step, const json_t *outputs)
{
    const json_t *g = phx_gates_of(gate_step);
    const char *on = phx_gates_str(g, "on"), *step = phx_gates_str(g, "step");
    if (!g || !on || strcmp(on, "output") != 0 || !step)
        return NULL;
    const json_t *t = phx_gates_redacted(outputs, phx_gates_str(gate_step, "id"));
    const json_t *cur = json_object_get(outputs, step);
    if (!t || !json_is_object(cur))
        return NULL;
    json_t *copy = json_deep_copy(cur);
    if (phx_gates_path_set(copy, json_object_get(g, "path"), json_deep_copy(t)) < 0 ||
        json_equal(copy, cur)) {
        json_decref(copy);
        return NULL;
    }
    return copy;
}
