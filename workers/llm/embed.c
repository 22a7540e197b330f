/* embed.c -- llm.embed (see embed.h). */
#include "embed.h"
#include "budget.h"
#include "lexical.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHX_EMBED_MAX_TEXT (64 * 1024)

static int phx_embed_input(const phx_llm_app *app, const json_t *in, phx_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        if (strcmp(k, "texts") && strcmp(k, "model"))
            return phx_err_set(err, "invalid_input", 0, "llm.embed: unknown input field %.60s", k);
    }
    json_t *texts = json_object_get(in, "texts"), *m = json_object_get(in, "model");
    if (!json_is_array(texts) || json_array_size(texts) == 0)
        return phx_err_set(err, "invalid_input", 0, "texts must be a non-empty array of strings");
    if ((long)json_array_size(texts) > app->max_texts)
        return phx_err_set(err, "invalid_input", 0,
                           "%zu texts; at most %ld per step (PHX_LLM_MAX_TEXTS)",
                           json_array_size(texts), app->max_texts);
    size_t i;
    json_array_foreach(texts, i, v)
    {
        if (!json_is_string(v) || json_string_length(v) == 0)
            return phx_err_set(err, "invalid_input", 0, "texts[%zu] must be a non-empty string", i);
        if (json_string_length(v) > PHX_EMBED_MAX_TEXT)
            return phx_err_set(err, "invalid_input", 0, "texts[%zu] is over %d bytes", i,
                               PHX_EMBED_MAX_TEXT);
    }
    if (m && (!json_is_string(m) || json_string_length(m) < 1 || json_string_length(m) > 127))
        return phx_err_set(err, "invalid_input", 0, "model must be a string of 1-127 bytes");
    return 0;
}

/* Two texts sharing an index would leave a null in the output: refuse that answer too. */
static int phx_embed_indexes_ok(const json_t *resp, size_t n)
{
    char *seen = phx_xcalloc(n, 1);
    json_t *d;
    size_t i;
    int ok = 1;
    json_array_foreach(json_object_get(resp, "data"), i, d)
    {
        json_t *idx = json_object_get(d, "index");
        size_t at = idx ? (size_t)json_integer_value(idx) : i;
        if (seen[at])
            ok = 0;
        seen[at] = 1;
    }
    free(seen);
    return ok;
}

/* A 2xx embeddings answer: data[i].embedding for every text, same finite dimension. */
static int phx_embed_check(const json_t *resp, const phx_llm_provider *p, void *arg, char *why,
                           size_t whylen)
{
    size_t n = *(size_t *)arg, i, dim = 0;
    json_t *data = json_object_get(resp, "data"), *d;
    if (!json_is_array(data) || json_array_size(data) != n) {
        snprintf(why, whylen, "expected %zu embeddings in data, got %zu", n,
                 json_is_array(data) ? json_array_size(data) : 0);
        return -1;
    }
    json_array_foreach(data, i, d)
    {
        json_t *e = json_object_get(d, "embedding"), *idx = json_object_get(d, "index"), *x;
        if (!json_is_array(e) || json_array_size(e) == 0) {
            snprintf(why, whylen, "data[%zu].embedding is not a non-empty array", i);
            return -1;
        }
        if (idx && (!json_is_integer(idx) || json_integer_value(idx) < 0 ||
                    (size_t)json_integer_value(idx) >= n)) {
            snprintf(why, whylen, "data[%zu].index is out of range", i);
            return -1;
        }
        if (i == 0)
            dim = json_array_size(e);
        if (json_array_size(e) != dim) {
            snprintf(why, whylen, "embeddings of different dimensions (%zu and %zu)", dim,
                     json_array_size(e));
            return -1;
        }
        size_t k;
        double norm = 0;
        json_array_foreach(e, k, x)
        {
            double f = json_number_value(x);
            if (!json_is_number(x) || !isfinite(f)) {
                snprintf(why, whylen, "data[%zu].embedding[%zu] is not a finite number", i, k);
                return -1;
            }
            norm += f * f;
        }
        if (norm == 0 || !isfinite(norm)) {
            snprintf(why, whylen, "data[%zu].embedding is all zeros or overflows", i);
            return -1;
        }
    }
    if (!phx_embed_indexes_ok(resp, n)) {
        snprintf(why, whylen, "two embeddings for the same text index");
        return -1;
    }
    if (p->embed_dim > 0 && (long)dim != p->embed_dim) {
        snprintf(why, whylen, "embedding dimension %zu, but the provider is configured for %ld",
                 dim, p->embed_dim);
        return -1;
    }
    return 0;
}

static json_t *phx_embed_vector(const double *v, int dim)
{
    json_t *a = json_array();
    for (int k = 0; k < dim; k++)
        json_array_append_new(a, json_real(v[k]));
    return a;
}

static json_t *phx_embed_local(const phx_llm_app *app, const json_t *texts)
{
    int dim = (int)app->embed_dim;
    double *v = phx_xmalloc(sizeof(double) * (size_t)dim);
    json_t *vecs = json_array(), *t;
    size_t i;
    json_array_foreach(texts, i, t)
    {
        phx_llm_lexical_embed(json_string_value(t), json_string_length(t), v, dim);
        json_array_append_new(vecs, phx_embed_vector(v, dim));
    }
    free(v);
    return json_pack("{s:o, s:i, s:s, s:s, s:s, s:{s:i}}", "vectors", vecs, "dim", dim, "provider",
                     "local", "model", PHX_LLM_LEXICAL_MODEL, "kind", "lexical", "usage",
                     "prompt_tokens", 0);
}

/* Provider vectors, put in input order (by "index" when given) and L2-normalised. */
static json_t *phx_embed_remote_out(const json_t *resp, size_t n, const phx_llm_reply *rep,
                                    long tokens)
{
    json_t *data = json_object_get(resp, "data");
    json_t *vecs = json_array();
    size_t dim = json_array_size(json_object_get(json_array_get(data, 0), "embedding"));
    double *v = phx_xmalloc(sizeof(double) * dim);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(vecs, json_null());
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_array_get(data, i), *idx = json_object_get(d, "index");
        json_t *e = json_object_get(d, "embedding");
        size_t at = idx ? (size_t)json_integer_value(idx) : i;
        double norm = 0;
        for (size_t k = 0; k < dim; k++) {
            v[k] = json_number_value(json_array_get(e, k));
            norm += v[k] * v[k];
        }
        norm = sqrt(norm);
        for (size_t k = 0; k < dim; k++)
            v[k] /= norm;
        json_array_set_new(vecs, at, phx_embed_vector(v, (int)dim));
    }
    free(v);
    return json_pack("{s:o, s:i, s:s, s:s, s:s, s:{s:I}}", "vectors", vecs, "dim", (int)dim,
                     "provider", rep->provider->name, "model", rep->model, "kind", "remote",
                     "usage", "prompt_tokens", (json_int_t)tokens);
}

json_t *phx_llm_embed_remote(phx_llm_chain *chain, CURL *curl, phx_redis *r, const phx_llm_ctx *ctx,
                             long tenant_daily_tokens, const json_t *texts, const char *model,
                             phx_err *err)
{
    size_t n = json_array_size(texts), i, bytes = 0;
    json_t *x;
    json_array_foreach(texts, i, x) bytes += json_string_length(x);
    long need = (long)(bytes / 3) + 8 * (long)n;
    phx_llm_budget b;
    if (phx_llm_budget_reserve(r, ctx, tenant_daily_tokens, need, &b, err) < 0)
        return NULL;
    json_t *body = json_pack("{s:O, s:s}", "input", texts, "encoding_format", "float");
    phx_llm_reply rep;
    int rc = phx_llm_chain_post(chain, curl, PHX_LLM_CAP_EMBED, model, "/embeddings", body,
                                ctx->deadline_mono_ms, phx_embed_check, &n, &rep, err);
    json_decref(body);
    if (rc < 0) {
        phx_llm_budget_settle(r, &b, 0);
        return NULL;
    }
    json_t *u = json_object_get(json_object_get(rep.resp, "usage"), "prompt_tokens");
    long used = json_is_integer(u) ? (long)json_integer_value(u) : need;
    phx_llm_budget_settle(r, &b, used);
    json_t *out = phx_embed_remote_out(rep.resp, n, &rep, used);
    json_decref(rep.resp);
    return out;
}

json_t *phx_llm_embed_step(phx_llm_app *app, phx_llm_thread *t, const phx_llm_ctx *ctx,
                           const json_t *input, phx_err *err)
{
    if (phx_embed_input(app, input, err) < 0)
        return NULL;
    json_t *texts = json_object_get(input, "texts");
    const char *model = json_string_value(json_object_get(input, "model"));
    if (!phx_llm_chain_serves(&app->chain, PHX_LLM_CAP_EMBED)) {
        if (model && strcmp(model, PHX_LLM_LEXICAL_MODEL) != 0) {
            phx_err_set(err, "model_unavailable", 0,
                        "no embedding provider is configured (PHX_LLM_EMBED_MODEL or embed_model "
                        "in PHX_LLM_PROVIDERS), so only the local model %s is available",
                        PHX_LLM_LEXICAL_MODEL);
            return NULL;
        }
        return phx_embed_local(app, texts);
    }
    return phx_llm_embed_remote(&app->chain, t->curl, t->r, ctx, app->tenant_daily_tokens, texts,
                                model, err);
}
