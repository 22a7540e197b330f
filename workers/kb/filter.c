/* filter.c -- metadata filters (see filter.h). */
#include "filter.h"

#include <string.h>

#define PHX_KB_FILTER_MAX_FIELDS 32
#define PHX_KB_FILTER_MAX_IN     256

static int phx_kb_scalar(const json_t *v)
{
    return json_is_string(v) || json_is_number(v) || json_is_boolean(v) || json_is_null(v);
}

/* Compare two scalars of the same family: <0, 0, >0; 2 when they cannot be ordered. */
static int phx_kb_cmp(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (json_is_string(a) && json_is_string(b)) {
        int c = strcmp(json_string_value(a), json_string_value(b));
        return c < 0 ? -1 : c > 0 ? 1 : 0;
    }
    if (json_is_boolean(a) && json_is_boolean(b))
        return json_is_true(a) == json_is_true(b) ? 0 : 2;
    if (json_is_null(a) && json_is_null(b))
        return 0;
    return 2;
}

static const char *const phx_kb_ops[] = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in"};

int phx_kb_filter_check(const json_t *f, phx_err *err)
{
    if (!f)
        return 0;
    if (!json_is_object(f))
        return phx_err_set(err, "invalid_input", 0, "filter must be an object");
    if (json_object_size(f) > PHX_KB_FILTER_MAX_FIELDS)
        return phx_err_set(err, "invalid_input", 0, "filter has more than %d fields",
                           PHX_KB_FILTER_MAX_FIELDS);
    const char *k, *op;
    json_t *v, *x;
    json_object_foreach((json_t *)f, k, v)
    {
        if (phx_kb_scalar(v))
            continue;
        if (!json_is_object(v) || json_object_size(v) == 0)
            return phx_err_set(err, "invalid_input", 0,
                               "filter.%.64s must be a scalar or an object of operators", k);
        json_object_foreach(v, op, x)
        {
            size_t i, nops = sizeof(phx_kb_ops) / sizeof(phx_kb_ops[0]);
            for (i = 0; i < nops; i++)
                if (strcmp(op, phx_kb_ops[i]) == 0)
                    break;
            if (i == nops)
                return phx_err_set(err, "invalid_input", 0,
                                   "filter.%.64s: unknown operator %.32s (use $eq $ne $gt $gte "
                                   "$lt $lte $in)",
                                   k, op);
            if (strcmp(op, "$in") == 0) {
                if (!json_is_array(x) || json_array_size(x) > PHX_KB_FILTER_MAX_IN)
                    return phx_err_set(err, "invalid_input", 0,
                                       "filter.%.64s.$in must be an array of at most %d scalars", k,
                                       PHX_KB_FILTER_MAX_IN);
                size_t j;
                json_t *e;
                json_array_foreach(x, j, e) if (!phx_kb_scalar(e)) return phx_err_set(
                    err, "invalid_input", 0, "filter.%.64s.$in[%zu] is not a scalar", k, j);
            } else if (op[1] == 'g' || op[1] == 'l') {
                if (!json_is_number(x) && !json_is_string(x))
                    return phx_err_set(err, "invalid_input", 0,
                                       "filter.%.64s.%s needs a number or a string", k, op);
            } else if (!phx_kb_scalar(x)) {
                return phx_err_set(err, "invalid_input", 0, "filter.%.64s.%s needs a scalar", k,
                                   op);
            }
        }
    }
    return 0;
}

static int phx_kb_op_match(const char *op, const json_t *want, const json_t *have)
{
    if (strcmp(op, "$ne") == 0)
        return !have || phx_kb_cmp(have, want) != 0;
    if (!have)
        return 0;
    if (strcmp(op, "$in") == 0) {
        size_t j;
        json_t *e;
        json_array_foreach(want, j, e) if (phx_kb_cmp(have, e) == 0) return 1;
        return 0;
    }
    int c = phx_kb_cmp(have, want);
    if (c == 2)
        return 0;
    if (strcmp(op, "$eq") == 0)
        return c == 0;
    if (strcmp(op, "$gt") == 0)
        return c > 0;
    if (strcmp(op, "$gte") == 0)
        return c >= 0;
    if (strcmp(op, "$lt") == 0)
        return c < 0;
    return c <= 0; /* $lte */
}

int phx_kb_filter_match(const json_t *f, const json_t *meta)
{
    if (!f)
        return 1;
    const char *k, *op;
    json_t *v, *x;
    json_object_foreach((json_t *)f, k, v)
    {
        const json_t *have = meta ? json_object_get(meta, k) : NULL;
        if (phx_kb_scalar(v)) {
            if (!have || phx_kb_cmp(have, v) != 0)
                return 0;
            continue;
        }
        json_object_foreach(v, op, x) if (!phx_kb_op_match(op, x, have)) return 0;
    }
    return 1;
}
