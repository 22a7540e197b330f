/* chat.c -- llm.chat (see chat.h). */
#include "chat.h"
#include "budget.h"
#include "log.h"
#include "metrics.h"
#include "persona.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHX_CHAT_NO_PROVIDER                                                                       \
    "no LLM provider configured: set PHX_LLM_BASE_URL and PHX_LLM_MODEL (and "                     \
    "PHX_LLM_API_KEY_FILE if the server needs a key), or PHX_LLM_PROVIDERS for a chain"

/* --- validation --------------------------------------------------------------------------- */

int phx_llm_messages_check(const phx_llm_app *app, const json_t *messages, phx_err *err)
{
    if (!json_is_array(messages) || json_array_size(messages) == 0)
        return phx_err_set(err, "invalid_input", 0, "messages must be a non-empty array");
    if ((long)json_array_size(messages) > app->max_messages)
        return phx_err_set(err, "invalid_input", 0, "%zu messages; at most %ld are accepted",
                           json_array_size(messages), app->max_messages);
    size_t i, bytes = 0;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        if (!json_is_object(m) || !role)
            return phx_err_set(err, "invalid_input", 0, "messages[%zu] needs a string role", i);
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))
            return phx_err_set(err, "invalid_input", 0,
                               "messages[%zu].role \"%.32s\" is not system, user or assistant", i,
                               role);
        if (!json_is_string(content))
            return phx_err_set(err, "invalid_input", 0, "messages[%zu].content must be a string",
                               i);
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)m, k, v)
        {
            if (strcmp(k, "role") && strcmp(k, "content") && strcmp(k, "name"))
                return phx_err_set(err, "invalid_input", 0, "messages[%zu]: unknown field %.40s", i,
                                   k);
        }
        bytes += json_string_length(content);
    }
    if ((long)bytes > app->max_input_bytes)
        return phx_err_set(err, "invalid_input", 0,
                           "messages hold %zu bytes of content; the limit is %ld "
                           "(PHX_LLM_MAX_INPUT_BYTES)",
                           bytes, app->max_input_bytes);
    return 0;
}

long phx_llm_max_tokens_limit(const phx_llm_app *app, const char *model)
{
    long lim = 0;
    for (int i = 0; i < app->chain.n; i++) {
        const phx_llm_provider *p = &app->chain.p[i];
        if (phx_llm_provider_model(p, PHX_LLM_CAP_CHAT, model) && (lim == 0 || p->max_tokens < lim))
            lim = p->max_tokens;
    }
    return lim;
}

/* response_format -> what the provider gets (*wire, new ref) and the compiled schema. */
static int phx_chat_format(const json_t *rf, json_t **wire, phx_schema **schema, int *want_json,
                           phx_err *err)
{
    *wire = NULL;
    *schema = NULL;
    *want_json = 0;
    if (!rf)
        return 0;
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (!json_is_object(rf) || !type)
        return phx_err_set(err, "invalid_input", 0, "response_format needs a string type");
    if (strcmp(type, "text") == 0)
        return 0;
    if (strcmp(type, "json_object") == 0) {
        *wire = json_pack("{s:s}", "type", "json_object");
        *want_json = 1;
        return 0;
    }
    if (strcmp(type, "json_schema") != 0)
        return phx_err_set(err, "invalid_input", 0,
                           "response_format.type must be text, json_object or json_schema");
    json_t *nested = json_object_get(rf, "json_schema");
    json_t *s = json_object_get(json_is_object(nested) ? nested : rf, "schema");
    if (!json_is_object(s))
        return phx_err_set(err, "invalid_input", 0,
                           "response_format json_schema needs a \"schema\" object");
    char e[300];
    json_t *copy = json_deep_copy(s); /* compiled schemas keep their root: never shared */
    *schema = phx_schema_new(copy, e, sizeof(e));
    json_decref(copy);
    if (!*schema)
        return phx_err_set(err, "invalid_input", 0, "response_format schema is invalid: %s", e);
    const char *name = json_string_value(json_object_get(nested, "name"));
    json_t *strict = json_object_get(nested, "strict");
    json_t *js = json_pack("{s:s, s:O}", "name", name ? name : "phoenix_answer", "schema", s);
    if (json_is_boolean(strict))
        json_object_set(js, "strict", strict);
    *wire = json_pack("{s:s, s:o}", "type", "json_schema", "json_schema", js);
    *want_json = 1;
    return 0;
}

/* --- one call ---------------------------------------------------------------------------- */

/* The provider answered 2xx: is it a chat completion we can use? */
static int phx_chat_check(const json_t *resp, const phx_llm_provider *p, void *arg, char *why,
                          size_t whylen)
{
    (void)arg;
    (void)p;
    json_t *c0 = json_array_get(json_object_get(resp, "choices"), 0);
    json_t *msg = json_object_get(c0, "message");
    if (!json_is_object(c0) || !json_is_object(msg)) {
        snprintf(why, whylen, "no choices[0].message");
        return -1;
    }
    if (!json_is_string(json_object_get(msg, "content"))) {
        snprintf(why, whylen, "choices[0].message.content is not a string");
        return -1;
    }
    json_t *u = json_object_get(resp, "usage");
    if (u && !json_is_object(u) && !json_is_null(u)) {
        snprintf(why, whylen, "usage is not an object");
        return -1;
    }
    return 0;
}

static long phx_chat_usage(const json_t *resp, const char *k)
{
    json_t *v = json_object_get(json_object_get(resp, "usage"), k);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (long)json_integer_value(v) : -1;
}

/* Count tokens and estimated cost; label values are escaped (tenant and model are data). */
static void phx_chat_metrics(const phx_llm_ctx *ctx, const phx_llm_provider *p, const char *model,
                             long prompt, long completion)
{
    char t[160], m[160], labels[400];
    phx_metrics_escape_label(t, sizeof(t), ctx->tenant ? ctx->tenant : "");
    phx_metrics_escape_label(m, sizeof(m), model);
    snprintf(labels, sizeof(labels), "tenant=\"%s\",model=\"%s\",type=\"prompt\"", t, m);
    const char *help = "LLM tokens used, by tenant, model and type (prompt or completion).";
    phx_metric_add(phx_counter("phx_llm_tokens_total", help, labels), (double)prompt);
    snprintf(labels, sizeof(labels), "tenant=\"%s\",model=\"%s\",type=\"completion\"", t, m);
    phx_metric_add(phx_counter("phx_llm_tokens_total", help, labels), (double)completion);
    snprintf(labels, sizeof(labels), "tenant=\"%s\",model=\"%s\"", t, m);
    double cost = (double)prompt / 1000.0 * p->cost_prompt_1k +
                  (double)completion / 1000.0 * p->cost_completion_1k;
    phx_metric_add(phx_counter("phx_llm_cost_usd_total",
                               "Estimated LLM cost in USD (provider cost_per_1k_* settings), by "
                               "tenant and model.",
                               labels),
                   cost);
}

int phx_llm_chat_call(phx_llm_app *app, phx_llm_thread *t, const phx_llm_ctx *ctx,
                      const phx_llm_chat_req *req, phx_llm_chat_res *res, phx_err *err)
{
    phx_llm_budget b;
    phx_llm_reply rep = {0};
    long need = phx_llm_budget_estimate(req->messages, req->max_tokens);
    if (phx_llm_budget_reserve(t->r, ctx, app->tenant_daily_tokens, need, &b, err) < 0)
        return -1;
    json_t *body = json_pack("{s:O, s:I}", "messages", req->messages, "max_tokens",
                             (json_int_t)req->max_tokens);
    if (req->has_temperature)
        json_object_set_new(body, "temperature", json_real(req->temperature));
    if (req->response_format)
        json_object_set(body, "response_format", req->response_format);
    int rc =
        phx_llm_chain_post(&app->chain, t->curl, PHX_LLM_CAP_CHAT, req->model, "/chat/completions",
                           body, ctx->deadline_mono_ms, phx_chat_check, NULL, &rep, err);
    json_decref(body);
    if (rc < 0) {
        phx_llm_budget_settle(t->r, &b, 0);
        return -1;
    }
    json_t *c0 = json_array_get(json_object_get(rep.resp, "choices"), 0);
    const char *text =
        json_string_value(json_object_get(json_object_get(c0, "message"), "content"));
    const char *finish = json_string_value(json_object_get(c0, "finish_reason"));
    long pt = phx_chat_usage(rep.resp, "prompt_tokens");
    long ct = phx_chat_usage(rep.resp, "completion_tokens");
    /* A server that reports no usage is charged the reservation: never less than it may have
     * cost. */
    if (pt < 0)
        pt = need - req->max_tokens;
    if (ct < 0)
        ct = req->max_tokens;
    phx_llm_budget_settle(t->r, &b, pt + ct);
    phx_chat_metrics(ctx, rep.provider, rep.model, pt, ct);
    free(res->text);
    res->text = phx_xstrdup(text);
    snprintf(res->model, sizeof(res->model), "%s", rep.model);
    snprintf(res->provider, sizeof(res->provider), "%s", rep.provider->name);
    snprintf(res->finish, sizeof(res->finish), "%s", finish ? finish : "unknown");
    res->prompt_tokens += pt;
    res->completion_tokens += ct;
    res->calls++;
    json_decref(rep.resp);
    return 0;
}

void phx_llm_chat_res_free(phx_llm_chat_res *res)
{
    free(res->text);
    res->text = NULL;
}

json_t *phx_llm_parse_answer(const char *text, char *why, size_t whylen)
{
    const char *s = text, *e = text + strlen(text);
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    if (e - s >= 6 && strncmp(s, "```", 3) == 0 && strncmp(e - 3, "```", 3) == 0) {
        const char *nl = memchr(s, '\n', (size_t)(e - s));
        if (nl && nl < e - 3) {
            s = nl + 1;
            e -= 3;
        }
    }
    json_error_t je;
    json_t *j = json_loadb(s, (size_t)(e - s), JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!j)
        snprintf(why, whylen, "the answer is not JSON: %s at line %d column %d", je.text, je.line,
                 je.column);
    return j;
}

/* --- the step ------------------------------------------------------------------------------ */

static int phx_chat_input_check(const json_t *in, phx_err *err)
{
    static const char *const known[] = {"messages",   "model",       "persona",
                                        "max_tokens", "temperature", "response_format"};
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        size_t i = 0;
        while (i < sizeof(known) / sizeof(known[0]) && strcmp(k, known[i]))
            i++;
        if (i == sizeof(known) / sizeof(known[0]))
            return phx_err_set(err, "invalid_input", 0, "llm.chat: unknown input field %.60s", k);
    }
    json_t *m = json_object_get(in, "model"), *p = json_object_get(in, "persona");
    if (m && (!json_is_string(m) || json_string_length(m) < 1 || json_string_length(m) > 127))
        return phx_err_set(err, "invalid_input", 0, "model must be a string of 1-127 bytes");
    if (p && !json_is_string(p))
        return phx_err_set(err, "invalid_input", 0, "persona must be a string");
    json_t *mt = json_object_get(in, "max_tokens"), *te = json_object_get(in, "temperature");
    if (mt && (!json_is_integer(mt) || json_integer_value(mt) < 1))
        return phx_err_set(err, "invalid_input", 0, "max_tokens must be a positive integer");
    if (te && (!json_is_number(te) || json_number_value(te) < 0 || json_number_value(te) > 2))
        return phx_err_set(err, "invalid_input", 0, "temperature must be a number in [0, 2]");
    return 0;
}

/* Messages with the persona's system prompt first, and the persona's defaults. */
static json_t *phx_chat_with_persona(const json_t *persona, const json_t *messages)
{
    json_t *out = json_array();
    if (persona)
        json_array_append_new(out, json_pack("{s:s, s:O}", "role", "system", "content",
                                             json_object_get(persona, "system")));
    json_array_extend(out, (json_t *)messages);
    return out;
}

/* Validate a JSON answer; 0 valid (*json set), else -1 with a description of what is wrong. */
static int phx_chat_answer_ok(const char *text, const phx_schema *schema, json_t **json, char *why,
                              size_t whylen)
{
    json_t *j = phx_llm_parse_answer(text, why, whylen), *errors = NULL;
    if (!j)
        return -1;
    if (schema && phx_schema_validate(schema, j, &errors) != 0) {
        char *e = errors ? json_dumps(errors, JSON_COMPACT) : NULL;
        snprintf(why, whylen, "the answer does not satisfy the schema: %s", e ? e : "invalid");
        free(e);
        json_decref(errors);
        json_decref(j);
        return -1;
    }
    *json = j;
    return 0;
}

json_t *phx_llm_chat_step(phx_llm_app *app, phx_llm_thread *t, const phx_llm_ctx *ctx,
                          const json_t *input, phx_err *err)
{
    json_t *persona = NULL, *messages = NULL, *wire = NULL, *answer = NULL, *out = NULL;
    phx_schema *schema = NULL;
    phx_llm_chat_res res = {0};
    int want_json = 0;
    char why[1200];
    if (!phx_llm_chain_serves(&app->chain, PHX_LLM_CAP_CHAT)) {
        phx_err_set(err, "no_provider", 0, PHX_CHAT_NO_PROVIDER);
        return NULL;
    }
    if (phx_chat_input_check(input, err) < 0 ||
        phx_llm_messages_check(app, json_object_get(input, "messages"), err) < 0 ||
        phx_chat_format(json_object_get(input, "response_format"), &wire, &schema, &want_json,
                        err) < 0)
        goto err;
    const char *pname = json_string_value(json_object_get(input, "persona"));
    if (pname && !(persona = phx_llm_persona_get(
                       t->r, phx_schema_set_get(app->schemas, "llm-persona.v1"), pname, err)))
        goto err;
    phx_llm_chat_req req = {0};
    req.model = json_string_value(json_object_get(input, "model"));
    if (!req.model)
        req.model = json_string_value(json_object_get(persona, "model"));
    json_t *mt = json_object_get(input, "max_tokens");
    if (!mt)
        mt = json_object_get(persona, "max_tokens");
    req.max_tokens = mt ? (long)json_integer_value(mt) : app->max_tokens_default;
    json_t *te = json_object_get(input, "temperature");
    if (!te)
        te = json_object_get(persona, "temperature");
    if (te) {
        req.has_temperature = 1;
        req.temperature = json_number_value(te);
    }
    long limit = phx_llm_max_tokens_limit(app, req.model);
    if (limit == 0) {
        phx_err_set(err, "model_unavailable", 0,
                    "no configured LLM provider serves model \"%.100s\"", req.model);
        goto err;
    }
    if (req.max_tokens > limit) {
        if (json_object_get(input, "max_tokens")) {
            phx_err_set(err, "invalid_input", 0,
                        "max_tokens %ld is above the limit %ld configured for this model",
                        req.max_tokens, limit);
            goto err;
        }
        req.max_tokens = limit; /* a default (ours or the persona's): fit it to the model */
    }
    messages = phx_chat_with_persona(persona, json_object_get(input, "messages"));
    req.messages = messages;
    req.response_format = wire;
    for (int attempt = 0;; attempt++) {
        if (phx_llm_chat_call(app, t, ctx, &req, &res, err) < 0)
            goto err;
        if (!want_json || phx_chat_answer_ok(res.text, schema, &answer, why, sizeof(why)) == 0)
            break;
        if (attempt == 1) {
            phx_err_set(err, "invalid_output", 0,
                        "the model's answer is not valid JSON for the requested format after one "
                        "repair attempt: %.400s",
                        why);
            goto err;
        }
        /* Feed the problem back once: models usually fix a near miss when told what it is. */
        json_array_append_new(messages,
                              json_pack("{s:s, s:s}", "role", "assistant", "content", res.text));
        char fix[1400];
        snprintf(fix, sizeof(fix),
                 "Your answer was rejected: %s. Reply again with only the corrected JSON.", why);
        json_array_append_new(messages, json_pack("{s:s, s:s}", "role", "user", "content", fix));
    }
    out = json_pack("{s:s, s:s, s:s, s:s, s:{s:I, s:I}, s:i}", "text", res.text, "model", res.model,
                    "provider", res.provider, "finish_reason", res.finish, "usage", "prompt_tokens",
                    (json_int_t)res.prompt_tokens, "completion_tokens",
                    (json_int_t)res.completion_tokens, "attempts", res.calls);
    if (answer)
        json_object_set_new(out, "json", answer);
    if (pname)
        json_object_set_new(out, "persona", json_string(pname));
err:
    phx_llm_chat_res_free(&res);
    phx_schema_free(schema);
    json_decref(wire);
    json_decref(messages);
    json_decref(persona);
    return out;
}
