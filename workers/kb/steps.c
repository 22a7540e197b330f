/* steps.c -- kb.upsert, kb.search, kb.delete, kb.prune (see steps.h). */
#include "steps.h"
#include "../llm/embed.h"
#include "filter.h"
#include "lexical.h"
#include "prune.h"
#include "store.h"
#include "util.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PHX_KB_MAX_TTL_S (10L * 365 * 86400)

/* Refuse fields outside allowed (a NULL-terminated list): a typo must not be ignored. */
static int phx_kb_fields(const json_t *o, const char *what, const char *const *allowed,
                         phx_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        int ok = 0;
        for (int i = 0; allowed[i]; i++)
            ok |= strcmp(k, allowed[i]) == 0;
        if (!ok)
            return phx_err_set(err, "invalid_input", 0, "%s: unknown field %.64s", what, k);
    }
    return 0;
}

static phx_kb_coll *phx_kb_input_coll(phx_kb_thread *t, const json_t *in, phx_err *err)
{
    if (!json_is_object(in)) {
        phx_err_set(err, "invalid_input", 0, "input must be an object");
        return NULL;
    }
    const char *name = json_string_value(json_object_get(in, "collection"));
    if (!name) {
        phx_err_set(err, "invalid_input", 0, "collection (a string) is required");
        return NULL;
    }
    return phx_kb_coll_get(t->app, t->r, name, err);
}

/* JSON numbers -> float32, refusing what float32 cannot hold. */
static int phx_kb_vector(const json_t *a, int dim, float *out, const char *what, phx_err *err)
{
    if (!json_is_array(a))
        return phx_err_set(err, "invalid_input", 0, "%s must be an array of numbers", what);
    if ((int)json_array_size(a) != dim)
        return phx_err_set(err, "invalid_input", 0,
                           "%s has dimension %zu; the collection's dimension is %d", what,
                           json_array_size(a), dim);
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x)
    {
        double d = json_number_value(x);
        if (!json_is_number(x) || !isfinite(d) || fabs(d) > FLT_MAX)
            return phx_err_set(err, "invalid_input", 0,
                               "%s[%zu] is not a finite float32 number (NaN, Inf or out of range)",
                               what, i);
        out[i] = (float)d;
    }
    return 0;
}

/* Unit length for a cosine collection (so search is a dot product); a zero vector has no
 * direction and is refused. */
static int phx_kb_normalise(const phx_kb_coll *c, float *v, const char *what, phx_err *err)
{
    if (c->metric != PHX_KB_COSINE)
        return 0;
    double n = 0;
    for (int i = 0; i < c->dim; i++)
        /* v holds dim values: phx_kb_vector checked the size (the analyzer cannot see it) */
        // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
        n += (double)v[i] * v[i];
    if (n == 0 || !isfinite(n))
        return phx_err_set(err, "invalid_input", 0,
                           "%s is all zeros (or overflows): it has no direction for cosine", what);
    float inv = (float)(1.0 / sqrt(n));
    for (int i = 0; i < c->dim; i++)
        v[i] *= inv;
    return 0;
}

/* Embed texts[0..n) into outs[0..n) (c->dim floats each) with the configured embedder: the
 * local lexical one at the collection's dimension, or the LLM pool's embedding providers in
 * one request for all n (phx_llm_embed_remote: same chain, retries, breakers and token budget
 * as llm.embed). A provider whose vectors do not have the collection's dimension is a
 * configuration mismatch, not retryable. */
static int phx_kb_embed(phx_kb_thread *t, const phx_kb_coll *c, const json_t *const *texts,
                        float *const *outs, size_t n, const char *what, phx_err *err)
{
    if (n == 0)
        return 0;
    if (t->app->embedder == PHX_KB_EMBED_NONE)
        return phx_err_set(err, "no_embedder", 0,
                           "%s has text but no vector, and phx-kb has no embedder configured "
                           "(set PHX_KB_EMBEDDER=lexical or llm, or send vectors)",
                           what);
    if (t->app->embedder == PHX_KB_EMBED_LEXICAL) {
        double *d = phx_xmalloc(sizeof(double) * (size_t)c->dim);
        for (size_t i = 0; i < n; i++) {
            phx_llm_lexical_embed(json_string_value(texts[i]), json_string_length(texts[i]), d,
                                  c->dim);
            for (int k = 0; k < c->dim; k++)
                outs[i][k] = (float)d[k];
        }
        free(d);
        return 0;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(arr, (json_t *)texts[i]);
    json_t *res = phx_llm_embed_remote(&t->app->llm, t->curl, t->r, &t->task,
                                       t->app->llm_daily_tokens, arr, NULL, err);
    json_decref(arr);
    if (!res)
        return -1;
    int rc = 0;
    long dim = (long)json_integer_value(json_object_get(res, "dim"));
    if (dim != c->dim) {
        rc = phx_err_set(err, "embed_dim_mismatch", 0,
                         "the embedding provider (%s, model %s) returns %ld-dimensional vectors; "
                         "collection %s has dimension %d (create it with that --dim)",
                         json_string_value(json_object_get(res, "provider")),
                         json_string_value(json_object_get(res, "model")), dim, c->name, c->dim);
        goto out;
    }
    json_t *vecs = json_object_get(res, "vectors");
    for (size_t i = 0; i < n; i++)
        if ((rc = phx_kb_vector(json_array_get(vecs, i), c->dim, outs[i], what, err)) < 0)
            goto out;
out:
    json_decref(res);
    return rc;
}

/* --- kb.upsert ------------------------------------------------------------------------------ */

static int phx_kb_item_check(phx_kb_thread *t, const phx_kb_coll *c, const json_t *item, size_t i,
                             phx_err *err)
{
    static const char *const fields[] = {"id",         "text",  "vector", "metadata",
                                         "importance", "ttl_s", NULL};
    char what[32];
    snprintf(what, sizeof(what), "items[%zu]", i);
    if (!json_is_object(item))
        return phx_err_set(err, "invalid_input", 0, "%s must be an object", what);
    if (phx_kb_fields(item, what, fields, err) < 0)
        return -1;
    const char *id = json_string_value(json_object_get(item, "id"));
    if (!id || !phx_id_valid(id))
        return phx_err_set(err, "invalid_input", 0,
                           "%s.id must be 1-128 characters of [A-Za-z0-9._:-]", what);
    json_t *text = json_object_get(item, "text"), *vec = json_object_get(item, "vector");
    json_t *meta = json_object_get(item, "metadata"), *imp = json_object_get(item, "importance");
    json_t *ttl = json_object_get(item, "ttl_s");
    if (text && !json_is_string(text))
        return phx_err_set(err, "invalid_input", 0, "%s.text must be a string", what);
    if ((long)json_string_length(text) > t->app->max_text)
        return phx_err_set(err, "invalid_input", 0, "%s.text is over %ld bytes (PHX_KB_MAX_TEXT)",
                           what, t->app->max_text);
    if (!vec && json_string_length(text) == 0)
        return phx_err_set(err, "invalid_input", 0,
                           "%s (%s) has neither a vector nor a non-empty text", what, id);
    if (meta && !json_is_object(meta))
        return phx_err_set(err, "invalid_input", 0, "%s.metadata must be an object", what);
    if (meta) {
        char *m = json_dumps(meta, JSON_COMPACT);
        size_t len = m ? strlen(m) : 0;
        free(m);
        if ((long)len > t->app->max_meta)
            return phx_err_set(err, "invalid_input", 0,
                               "%s.metadata is %zu bytes as JSON; at most %ld (PHX_KB_MAX_META)",
                               what, len, t->app->max_meta);
    }
    if (imp &&
        (!json_is_number(imp) || !(json_number_value(imp) >= 0) || json_number_value(imp) > 1))
        return phx_err_set(err, "invalid_input", 0, "%s.importance must be a number in [0, 1]",
                           what);
    if (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < 0 ||
                json_integer_value(ttl) > PHX_KB_MAX_TTL_S))
        return phx_err_set(err, "invalid_input", 0,
                           "%s.ttl_s must be an integer of seconds in [0, %ld] (0 = never expires)",
                           what, PHX_KB_MAX_TTL_S);
    (void)c;
    return 0;
}

json_t *phx_kb_upsert_step(phx_kb_thread *t, const json_t *in, phx_err *err)
{
    static const char *const fields[] = {"collection", "items", NULL};
    phx_kb_coll *c = phx_kb_input_coll(t, in, err);
    if (!c || phx_kb_fields(in, "kb.upsert", fields, err) < 0)
        return NULL;
    json_t *items = json_object_get(in, "items"), *out = NULL;
    size_t n = json_array_size(items), i, embedded = 0;
    if (!json_is_array(items) || n == 0 || (long)n > t->app->max_items) {
        phx_err_set(err, "invalid_input", 0,
                    "items must be an array of 1..%ld items (PHX_KB_MAX_ITEMS)", t->app->max_items);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        if (phx_kb_item_check(t, c, json_array_get(items, i), i, err) < 0)
            return NULL;
        const char *id = json_string_value(json_object_get(json_array_get(items, i), "id"));
        for (size_t j = 0; j < i; j++)
            if (strcmp(id, json_string_value(json_object_get(json_array_get(items, j), "id"))) ==
                0) {
                phx_err_set(err, "invalid_input", 0, "items[%zu] repeats id %s of items[%zu]", i,
                            id, j);
                return NULL;
            }
    }
    /* Created times survive a rewrite: read them from the index once it is current. */
    if (phx_kb_sync(t->app, c, t->r, err) < 0)
        return NULL;
    float *vecs = phx_xmalloc(sizeof(float) * (size_t)c->dim * n);
    phx_kb_put *puts = phx_xcalloc(n, sizeof(*puts));
    char **metas = phx_xcalloc(n, sizeof(*metas));
    const json_t **texts = phx_xcalloc(n, sizeof(*texts));
    float **rows = phx_xcalloc(n, sizeof(*rows));
    int64_t now = phx_now_ms();
    /* The items without a vector are embedded together: one provider request per upsert. */
    for (i = 0; i < n; i++) {
        json_t *item = json_array_get(items, i);
        if (!json_object_get(item, "vector")) {
            texts[embedded] = json_object_get(item, "text");
            rows[embedded++] = vecs + i * (size_t)c->dim;
        }
    }
    if (phx_kb_embed(t, c, texts, rows, embedded, "items[].text", err) < 0)
        goto out;
    for (i = 0; i < n; i++) {
        json_t *item = json_array_get(items, i);
        char what[48];
        snprintf(what, sizeof(what), "items[%zu].vector", i);
        float *v = vecs + i * (size_t)c->dim;
        json_t *vec = json_object_get(item, "vector"), *text = json_object_get(item, "text");
        if (vec && phx_kb_vector(vec, c->dim, v, what, err) < 0)
            goto out;
        if (phx_kb_normalise(c, v, what, err) < 0)
            goto out;
        json_t *meta = json_object_get(item, "metadata"),
               *imp = json_object_get(item, "importance");
        json_t *ttl = json_object_get(item, "ttl_s");
        long ttl_s = ttl ? (long)json_integer_value(ttl) : c->ttl_s;
        metas[i] = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
        const char *id = json_string_value(json_object_get(item, "id"));
        phx_kb_rec rec = {
            .dim = (uint32_t)c->dim,
            .created_ms = now,
            .updated_ms = now,
            .expires_ms = ttl_s > 0 ? now + ttl_s * 1000 : 0,
            .importance = imp ? (float)json_number_value(imp) : 0.5f,
            .text = text ? json_string_value(text) : "",
            .text_len = (uint32_t)json_string_length(text),
            .meta = metas[i],
            .meta_len = metas[i] ? (uint32_t)strlen(metas[i]) : 0,
        };
        pthread_rwlock_rdlock(&c->lock);
        long slot = phx_kb_index_find(&c->idx, id);
        if (slot >= 0)
            rec.created_ms = c->idx.items[slot].created_ms;
        pthread_rwlock_unlock(&c->lock);
        puts[i].id = id;
        puts[i].expires_ms = rec.expires_ms;
        puts[i].rec = phx_kb_rec_encode(id, &rec, v, &puts[i].len);
    }
    int hard = c->capacity > 0 && c->policy == PHX_KB_NONE;
    long count = phx_kb_write(t->app, c, t->r, puts, (int)n, hard, err);
    if (count < 0)
        goto out;
    phx_kb_prune_stats st = {0};
    /* Over capacity: prune now unless another replica is already at it (its run, or the next
     * periodic one, brings the collection back under). */
    if (c->capacity > 0 && c->policy != PHX_KB_NONE && count > c->capacity) {
        phx_err perr;
        phx_err_clear(&perr);
        if (phx_kb_prune(t->app, c, t->r, 0, &st, &perr) == 0)
            count -= st.evicted + st.expired;
    }
    out = json_pack("{s:I, s:I, s:I, s:I}", "upserted", (json_int_t)n, "count", (json_int_t)count,
                    "evicted", (json_int_t)st.evicted, "embedded", (json_int_t)embedded);
out:
    for (i = 0; i < n; i++) {
        free(puts[i].rec);
        free(metas[i]);
    }
    free(puts);
    free(metas);
    free(texts);
    free(rows);
    free(vecs);
    return out;
}

/* --- kb.search ------------------------------------------------------------------------------ */

json_t *phx_kb_search_step(phx_kb_thread *t, const json_t *in, phx_err *err)
{
    static const char *const fields[] = {"collection", "query", "vector", "k", "filter",
                                         "min_score",  "ef",    "exact",  NULL};
    phx_kb_coll *c = phx_kb_input_coll(t, in, err);
    if (!c || phx_kb_fields(in, "kb.search", fields, err) < 0)
        return NULL;
    json_t *query = json_object_get(in, "query"), *vec = json_object_get(in, "vector");
    json_t *jk = json_object_get(in, "k"), *filter = json_object_get(in, "filter");
    json_t *ms = json_object_get(in, "min_score");
    if (!query == !vec) {
        phx_err_set(err, "invalid_input", 0, "give exactly one of query (text) and vector");
        return NULL;
    }
    if (query && (!json_is_string(query) || json_string_length(query) == 0 ||
                  (long)json_string_length(query) > t->app->max_text)) {
        phx_err_set(err, "invalid_input", 0,
                    "query must be a non-empty string of at most %ld bytes", t->app->max_text);
        return NULL;
    }
    if (jk && (!json_is_integer(jk) || json_integer_value(jk) < 1 ||
               json_integer_value(jk) > t->app->max_k)) {
        phx_err_set(err, "invalid_input", 0, "k must be an integer in [1, %ld] (PHX_KB_MAX_K)",
                    t->app->max_k);
        return NULL;
    }
    if (ms && (!json_is_number(ms) || !isfinite(json_number_value(ms)))) {
        phx_err_set(err, "invalid_input", 0, "min_score must be a number");
        return NULL;
    }
    json_t *jef = json_object_get(in, "ef"), *jexact = json_object_get(in, "exact");
    if (jef &&
        (!json_is_integer(jef) || json_integer_value(jef) < 1 || json_integer_value(jef) > 10000)) {
        phx_err_set(err, "invalid_input", 0, "ef must be an integer in [1, 10000]");
        return NULL;
    }
    if (jexact && !json_is_boolean(jexact)) {
        phx_err_set(err, "invalid_input", 0, "exact must be a boolean");
        return NULL;
    }
    if (phx_kb_filter_check(filter, err) < 0)
        return NULL;
    size_t k = jk ? (size_t)json_integer_value(jk) : 10;
    size_t ef = json_is_true(jexact) ? 0
                : jef                ? (size_t)json_integer_value(jef)
                                     : (size_t)t->app->hnsw_ef;
    const char *method = "exact";
    double min_score = ms ? json_number_value(ms) : -INFINITY;
    float *q = phx_xmalloc(sizeof(float) * (size_t)c->dim);
    phx_kb_hit *hits = phx_xcalloc(k, sizeof(*hits));
    json_t *out = NULL;
    if ((vec ? phx_kb_vector(vec, c->dim, q, "vector", err)
             : phx_kb_embed(t, c, (const json_t *const *)&query, &q, 1, "query", err)) < 0 ||
        phx_kb_normalise(c, q, vec ? "vector" : "query", err) < 0)
        goto done;
    if (phx_kb_sync(t->app, c, t->r, err) < 0)
        goto done;
    size_t scanned = 0;
    pthread_rwlock_rdlock(&c->lock);
    size_t n = phx_kb_index_query(&c->idx, c->metric, q, k, filter, min_score, phx_now_ms(), ef,
                                  hits, &scanned, &method);
    json_t *arr = json_array();
    const char **ids = phx_xcalloc(n + 1, sizeof(*ids));
    for (size_t i = 0; i < n; i++) {
        const phx_kb_item *it = &c->idx.items[hits[i].slot];
        /* A copy: the output is redacted in place later, and the index's object is shared. */
        json_array_append_new(arr, json_pack("{s:s, s:f, s:s, s:o}", "id", it->id, "score",
                                             (double)hits[i].score, "text", it->text, "metadata",
                                             it->meta ? json_deep_copy(it->meta) : json_object()));
        ids[i] = json_string_value(json_object_get(json_array_get(arr, i), "id"));
    }
    pthread_rwlock_unlock(&c->lock);
    /* Hit counts feed pruning; failing to count one must not fail the search. */
    phx_err terr;
    phx_kb_touch(c, t->r, ids, (int)n, &terr);
    free(ids);
    out =
        json_pack("{s:o, s:I, s:s}", "hits", arr, "scanned", (json_int_t)scanned, "method", method);
done:
    free(q);
    free(hits);
    return out;
}

/* --- kb.delete and kb.prune ----------------------------------------------------------------- */

json_t *phx_kb_delete_step(phx_kb_thread *t, const json_t *in, phx_err *err)
{
    static const char *const fields[] = {"collection", "ids", "filter", NULL};
    phx_kb_coll *c = phx_kb_input_coll(t, in, err);
    if (!c || phx_kb_fields(in, "kb.delete", fields, err) < 0)
        return NULL;
    json_t *ids = json_object_get(in, "ids"), *filter = json_object_get(in, "filter"), *x;
    if (!ids == !filter) {
        phx_err_set(err, "invalid_input", 0, "give exactly one of ids and filter");
        return NULL;
    }
    size_t n = 0, i;
    const char **list = NULL;
    if (ids) {
        if (!json_is_array(ids) || json_array_size(ids) == 0 ||
            (long)json_array_size(ids) > t->app->max_items) {
            phx_err_set(err, "invalid_input", 0, "ids must be an array of 1..%ld ids",
                        t->app->max_items);
            return NULL;
        }
        list = phx_xcalloc(json_array_size(ids), sizeof(*list));
        json_array_foreach(ids, i, x)
        {
            if (!json_is_string(x) || !phx_id_valid(json_string_value(x))) {
                phx_err_set(err, "invalid_input", 0,
                            "ids[%zu] must be 1-128 characters of [A-Za-z0-9._:-]", i);
                free(list);
                return NULL;
            }
            list[n++] = json_string_value(x);
        }
    } else {
        /* An empty filter would delete everything: that is not a filter, it is a mistake. */
        if (phx_kb_filter_check(filter, err) < 0)
            return NULL;
        if (json_object_size(filter) == 0) {
            phx_err_set(err, "invalid_input", 0, "filter must name at least one field");
            return NULL;
        }
        if (phx_kb_sync(t->app, c, t->r, err) < 0)
            return NULL;
        pthread_rwlock_rdlock(&c->lock);
        list = phx_xcalloc(c->idx.n + 1, sizeof(*list));
        for (i = 0; i < c->idx.n; i++)
            if (phx_kb_filter_match(filter, c->idx.items[i].meta))
                list[n++] = phx_xstrdup(c->idx.items[i].id);
        pthread_rwlock_unlock(&c->lock);
    }
    long del = phx_kb_delete(t->app, c, t->r, list, NULL, (int)n, err);
    if (!ids)
        for (i = 0; i < n; i++)
            free((char *)list[i]);
    free(list);
    /* Catch up now so this replica stops serving them at once (others do at their next
     * catch-up, which every search starts with). */
    if (del < 0 || phx_kb_sync(t->app, c, t->r, err) < 0)
        return NULL;
    return json_pack("{s:I}", "deleted", (json_int_t)del);
}

json_t *phx_kb_prune_step(phx_kb_thread *t, const json_t *in, phx_err *err)
{
    static const char *const fields[] = {"collection", NULL};
    phx_kb_coll *c = phx_kb_input_coll(t, in, err);
    if (!c || phx_kb_fields(in, "kb.prune", fields, err) < 0)
        return NULL;
    phx_kb_prune_stats st;
    int rc = phx_kb_prune(t->app, c, t->r, 10000, &st, err);
    if (rc < 0)
        return NULL;
    if (rc == 1) {
        phx_err_set(err, "busy", 1, "another replica has been pruning %s for over 10 s", c->name);
        return NULL;
    }
    pthread_rwlock_rdlock(&c->lock);
    size_t count = c->idx.n;
    pthread_rwlock_unlock(&c->lock);
    return json_pack("{s:I, s:I, s:I}", "expired", (json_int_t)st.expired, "evicted",
                     (json_int_t)st.evicted, "count", (json_int_t)count);
}
