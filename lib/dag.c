/* dag.c -- step graph checks and template rendering (see dag.h).
 *
 * Graphs are small (the schema caps a job at 256 steps), so the checks use plain arrays and
 * O(n^2) lookups: clearer than hash maps, and fast enough by orders of magnitude. */
#include "util.h"
#include "dag.h"
#include "msg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHX_DAG_MAX 256

/* needs is size x size (the job's step count), not PHX_DAG_MAX squared: a fixed 64 KB matrix
 * was cleared and freed on every check, which cost the ingress a 64 KB memset and a malloc
 * consolidation per submitted job (docs/benchmarks-ingress.md), for the usual handful of steps. */
typedef struct phx_dag {
    int n, size;
    const char *id[PHX_DAG_MAX];
    unsigned char *needs; /* needs[i * size + j]: step i needs step j */
} phx_dag;

static unsigned char *phx_dag_needs(const phx_dag *g, int i, int j)
{
    return &g->needs[(size_t)i * (size_t)g->size + (size_t)j];
}

static int phx_dag_index(const phx_dag *g, const char *id)
{
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->id[i], id) == 0)
            return i;
    return -1;
}

static void phx_dag_reason(json_t *reasons, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void phx_dag_reason(json_t *reasons, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(reasons, json_string(buf));
}

/* Depth-first search for a cycle; colour: 0 new, 1 on the stack, 2 done. */
static int phx_dag_cycle_from(const phx_dag *g, int i, unsigned char *colour)
{
    colour[i] = 1;
    for (int j = 0; j < g->n; j++) {
        if (!*phx_dag_needs(g, i, j))
            continue;
        if (colour[j] == 1)
            return 1;
        if (colour[j] == 0 && phx_dag_cycle_from(g, j, colour))
            return 1;
    }
    colour[i] = 2;
    return 0;
}

/* reach[j] = 1 for every step that step i transitively needs. */
static void phx_dag_reach(const phx_dag *g, int i, unsigned char *reach)
{
    for (int j = 0; j < g->n; j++) {
        if (*phx_dag_needs(g, i, j) && !reach[j]) {
            reach[j] = 1;
            phx_dag_reach(g, j, reach);
        }
    }
}

/* Call fn for every template reference "steps.ID.output..." found in strings under v. */
typedef void (*phx_dag_ref_fn)(const char *ref, size_t len, void *arg);

static void phx_dag_walk_refs(const json_t *v, phx_dag_ref_fn fn, void *arg)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v), *p = s;
        while ((p = strstr(p, "{{")) != NULL) {
            const char *end = strstr(p + 2, "}}");
            if (!end)
                break;
            const char *r = p + 2;
            while (*r == ' ')
                r++;
            size_t len = (size_t)(end - r);
            while (len > 0 && r[len - 1] == ' ')
                len--;
            fn(r, len, arg);
            p = end + 2;
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) phx_dag_walk_refs(x, fn, arg);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) phx_dag_walk_refs(x, fn, arg);
    }
}

/* Split "steps.ID.output[.PATH]" into the step id; 0 on success. */
static int phx_dag_ref_step(const char *ref, size_t len, char *id, size_t idlen, const char **path,
                            size_t *pathlen)
{
    if (len < 6 || strncmp(ref, "steps.", 6) != 0)
        return -1;
    const char *s = ref + 6, *end = ref + len;
    const char *dot = memchr(s, '.', (size_t)(end - s));
    if (!dot || dot == s || (size_t)(dot - s) >= idlen)
        return -1;
    memcpy(id, s, (size_t)(dot - s));
    id[dot - s] = '\0';
    const char *rest = dot + 1;
    if ((size_t)(end - rest) < 6 || strncmp(rest, "output", 6) != 0)
        return -1;
    rest += 6;
    if (rest < end && *rest != '.')
        return -1;
    *path = rest < end ? rest + 1 : rest;
    *pathlen = (size_t)(end - *path);
    return 0;
}

typedef struct phx_dag_refstep {
    void (*fn)(const char *step_id, void *arg);
    void *arg;
} phx_dag_refstep;

static void phx_dag_ref_step_cb(const char *ref, size_t len, void *arg)
{
    phx_dag_refstep *rs = arg;
    char id[128];
    const char *path;
    size_t pathlen;
    if (phx_dag_ref_step(ref, len, id, sizeof(id), &path, &pathlen) == 0)
        rs->fn(id, rs->arg);
}

void phx_dag_ref_steps(const json_t *v, void (*fn)(const char *step_id, void *arg), void *arg)
{
    phx_dag_refstep rs = {fn, arg};
    phx_dag_walk_refs(v, phx_dag_ref_step_cb, &rs);
}

typedef struct phx_dag_refcheck {
    const phx_dag *g;
    int step;
    const unsigned char *reach;
    json_t *reasons;
} phx_dag_refcheck;

static void phx_dag_check_ref(const char *ref, size_t len, void *arg)
{
    phx_dag_refcheck *rc = arg;
    char id[128];
    const char *path;
    size_t pathlen;
    if (phx_dag_ref_step(ref, len, id, sizeof(id), &path, &pathlen) < 0) {
        phx_dag_reason(rc->reasons,
                       "step %s: template {{%.*s}} is not of the form {{steps.ID.output.FIELD}}",
                       rc->g->id[rc->step], (int)(len > 200 ? 200 : len), ref);
        return;
    }
    int j = phx_dag_index(rc->g, id);
    if (j < 0)
        phx_dag_reason(rc->reasons, "step %s: template references unknown step %s",
                       rc->g->id[rc->step], id);
    else if (!rc->reach[j])
        phx_dag_reason(rc->reasons,
                       "step %s: template references step %s, which is not in its needs",
                       rc->g->id[rc->step], id);
}

/* The member of a step's input that is data, not templates, or NULL. A safety.review_plan
 * step's `steps` array is the plan under review: its templates name that plan's own steps,
 * which this job does not have (and must not resolve). A `steps` that is not an array -- a
 * whole-string template taking an earlier step's plan, say -- is this job's to render. */
static const char *phx_dag_data_member(const json_t *step)
{
    const char *kind = json_string_value(json_object_get(step, "kind"));
    if (kind && strcmp(kind, "safety.review_plan") == 0 &&
        json_is_array(json_object_get(json_object_get(step, "input"), "steps")))
        return "steps";
    return NULL;
}

/* phx_dag_walk_refs over a step's input, minus its data member. */
static void phx_dag_walk_input(const json_t *step, phx_dag_ref_fn fn, void *arg)
{
    const json_t *input = json_object_get(step, "input");
    const char *data = phx_dag_data_member(step), *k;
    json_t *x;
    if (!data || !json_is_object(input)) {
        phx_dag_walk_refs(input, fn, arg);
        return;
    }
    json_object_foreach((json_t *)input, k, x)
    {
        if (strcmp(k, data) != 0)
            phx_dag_walk_refs(x, fn, arg);
    }
}

int phx_dag_check(const json_t *steps, json_t **reasons)
{
    json_t *rs = json_array();
    phx_dag gs = {0}, *g = &gs;
    size_t i;
    json_t *st;

    if (!json_is_array(steps) || json_array_size(steps) == 0 ||
        json_array_size(steps) > PHX_DAG_MAX) {
        phx_dag_reason(rs, "steps must be an array of 1 to %d steps", PHX_DAG_MAX);
        goto done;
    }
    g->size = (int)json_array_size(steps);
    g->needs = phx_xcalloc((size_t)g->size * (size_t)g->size, 1);
    json_array_foreach(steps, i, st)
    {
        const char *id = json_string_value(json_object_get(st, "id"));
        const char *kind = json_string_value(json_object_get(st, "kind"));
        if (!id) {
            phx_dag_reason(rs, "steps[%zu]: missing id", i);
            id = "";
        } else if (phx_dag_index(g, id) >= 0) {
            phx_dag_reason(rs, "step %s: duplicate id", id);
        }
        if (!kind || !phx_kind_pool(kind))
            phx_dag_reason(rs, "step %s: unknown step kind %s", id, kind ? kind : "(none)");
        g->id[g->n++] = id;
    }
    json_array_foreach(steps, i, st)
    {
        size_t k;
        json_t *need;
        json_array_foreach(json_object_get(st, "needs"), k, need)
        {
            const char *nid = json_string_value(need);
            int j = nid ? phx_dag_index(g, nid) : -1;
            if (j < 0)
                phx_dag_reason(rs, "step %s: needs unknown step %s", g->id[i],
                               nid ? nid : "(not a string)");
            else if ((size_t)j == i)
                phx_dag_reason(rs, "step %s: needs itself", g->id[i]);
            else
                *phx_dag_needs(g, (int)i, j) = 1;
        }
    }
    unsigned char colour[PHX_DAG_MAX] = {0};
    for (int s = 0; s < g->n; s++) {
        if (colour[s] == 0 && phx_dag_cycle_from(g, s, colour)) {
            phx_dag_reason(rs, "steps contain a dependency cycle (through step %s)", g->id[s]);
            break;
        }
    }
    if (json_array_size(rs) == 0) {
        for (int s = 0; s < g->n; s++) {
            unsigned char reach[PHX_DAG_MAX] = {0};
            phx_dag_reach(g, s, reach);
            phx_dag_refcheck rc = {g, s, reach, rs};
            phx_dag_walk_input(json_array_get(steps, (size_t)s), phx_dag_check_ref, &rc);
        }
    }
done:
    free(g->needs);
    if (json_array_size(rs) == 0) {
        json_decref(rs);
        if (reasons)
            *reasons = NULL;
        return 0;
    }
    if (reasons)
        *reasons = rs;
    else
        json_decref(rs);
    return -1;
}

/* Follow a dot path ("a.b.0") from v; NULL when absent. */
static json_t *phx_dag_lookup(json_t *v, const char *path, size_t len)
{
    const char *p = path, *end = path + len;
    while (v && p < end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t seg = dot ? (size_t)(dot - p) : (size_t)(end - p);
        char key[256];
        if (seg == 0 || seg >= sizeof(key))
            return NULL;
        memcpy(key, p, seg);
        key[seg] = '\0';
        if (json_is_object(v)) {
            v = json_object_get(v, key);
        } else if (json_is_array(v)) {
            char *e;
            long idx = strtol(key, &e, 10);
            v = (*e || idx < 0) ? NULL : json_array_get(v, (size_t)idx);
        } else {
            return NULL;
        }
        p += seg + (dot ? 1 : 0);
    }
    return v;
}

static json_t *phx_dag_resolve_ref(const char *ref, size_t len, const json_t *outputs, phx_err *err)
{
    char id[128];
    const char *path;
    size_t pathlen;
    if (phx_dag_ref_step(ref, len, id, sizeof(id), &path, &pathlen) < 0) {
        phx_err_set(err, "template_unresolved", 0, "bad template {{%.*s}}", (int)len, ref);
        return NULL;
    }
    json_t *v = phx_dag_lookup(json_object_get(outputs, id), path, pathlen);
    if (!v)
        phx_err_set(err, "template_unresolved", 0, "template {{%.*s}}: no such value", (int)len,
                    ref);
    return v;
}

/* Shortest of %.15g / %.17g that reads back as the same double: "0.1", not
 * "0.10000000000000001", yet never a lossy rounding. */
static char *phx_dag_format_real(double d)
{
    char *s = NULL;
    if (asprintf(&s, "%.15g", d) < 0)
        return NULL;
    if (strtod(s, NULL) != d) {
        free(s);
        if (asprintf(&s, "%.17g", d) < 0)
            return NULL;
    }
    return s;
}

/* Charge n substituted bytes to *budget; -1 with err when that exceeds it. */
static int phx_dag_charge(size_t *budget, size_t n, phx_err *err)
{
    if (n > *budget) {
        phx_err_set(err, "input_too_large", 0,
                    "templates expand the step's input past %d bytes (the largest message)",
                    PHX_MSG_MAX_BYTES);
        return -1;
    }
    *budget -= n;
    return 0;
}

static json_t *phx_dag_render_string(const char *s, const json_t *outputs, size_t *budget,
                                     phx_err *err)
{
    /* Whole-string template: keep the value's JSON type. */
    size_t slen = strlen(s);
    if (slen > 4 && strncmp(s, "{{", 2) == 0 && strcmp(s + slen - 2, "}}") == 0 &&
        !strstr(s + 2, "{{") && strstr(s + 2, "}}") == s + slen - 2) {
        const char *r = s + 2;
        size_t len = slen - 4;
        while (len && *r == ' ')
            r++, len--;
        while (len && r[len - 1] == ' ')
            len--;
        json_t *v = phx_dag_resolve_ref(r, len, outputs, err);
        /* Its encoded size, measured without building it (costs at most what it charges). */
        if (!v ||
            phx_dag_charge(budget, json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY), err) < 0)
            return NULL;
        return json_deep_copy(v);
    }
    size_t cap = slen + 64, n = 0;
    char *buf = phx_xmalloc(cap);
    const char *p = s;
    for (;;) {
        const char *open = strstr(p, "{{"), *close = open ? strstr(open + 2, "}}") : NULL;
        const char *chunk_end = close ? open : p + strlen(p);
        char *text = NULL;
        size_t tlen = 0;
        if (close) {
            const char *r = open + 2;
            size_t len = (size_t)(close - r);
            while (len && *r == ' ')
                r++, len--;
            while (len && r[len - 1] == ' ')
                len--;
            json_t *v = phx_dag_resolve_ref(r, len, outputs, err);
            if (!v) {
                free(buf);
                return NULL;
            }
            text = json_is_string(v) ? strdup(json_string_value(v))
                                     : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (json_is_real(v)) {
                free(text);
                text = phx_dag_format_real(json_real_value(v));
            }
            tlen = text ? strlen(text) : 0;
            if (phx_dag_charge(budget, tlen, err) < 0) {
                free(text);
                free(buf);
                return NULL;
            }
        }
        size_t clen = (size_t)(chunk_end - p);
        if (n + clen + tlen + 1 > cap) {
            cap = (n + clen + tlen + 1) * 2;
            buf = phx_xrealloc(buf, cap);
        }
        memcpy(buf + n, p, clen);
        n += clen;
        if (text)
            memcpy(buf + n, text, tlen), n += tlen;
        free(text);
        if (!close)
            break;
        p = close + 2;
    }
    buf[n] = '\0';
    json_t *out = json_stringn(buf, n);
    free(buf);
    return out;
}

static json_t *phx_dag_render_in(const json_t *input, const json_t *outputs, size_t *budget,
                                 phx_err *err)
{
    if (json_is_string(input))
        return phx_dag_render_string(json_string_value(input), outputs, budget, err);
    if (json_is_object(input)) {
        json_t *o = json_object();
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)input, k, v)
        {
            json_t *r = phx_dag_render_in(v, outputs, budget, err);
            if (!r) {
                json_decref(o);
                return NULL;
            }
            json_object_set_new(o, k, r);
        }
        return o;
    }
    if (json_is_array(input)) {
        json_t *a = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(input, i, v)
        {
            json_t *r = phx_dag_render_in(v, outputs, budget, err);
            if (!r) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, r);
        }
        return a;
    }
    return json_deep_copy(input);
}

json_t *phx_dag_render(const json_t *input, const json_t *outputs, phx_err *err)
{
    /* What templates substitute is bounded by the largest message a task can be: a job of
     * many references to a large output ("{{steps.a.output}}" 50,000 times in a 1 MB job)
     * would otherwise make the planner build gigabytes before the task is refused. */
    size_t budget = PHX_MSG_MAX_BYTES;
    return phx_dag_render_in(input, outputs, &budget, err);
}

json_t *phx_dag_render_step(const json_t *step, const json_t *outputs, phx_err *err)
{
    const json_t *input = json_object_get(step, "input");
    const char *data = phx_dag_data_member(step);
    if (!input)
        return json_object();
    if (!data)
        return phx_dag_render(input, outputs, err);
    /* Render every other member; the data member is copied as it is. */
    json_t *rest = json_deep_copy(input);
    json_object_del(rest, data);
    json_t *out = phx_dag_render(rest, outputs, err);
    json_decref(rest);
    if (out)
        json_object_set_new(out, data, json_deep_copy(json_object_get(input, data)));
    return out;
}
