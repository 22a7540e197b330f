/* filter.h -- metadata filters of kb.search and kb.delete.
 *
 * A filter is a JSON object; every member must hold (AND). A member's value is either a scalar
 * (string, number, boolean, null: equality, numbers compared as numbers) or an object of
 * operators: $eq, $ne, $gt, $gte, $lt, $lte (numbers with numbers, strings with strings by
 * byte order) and $in (an array of scalars). Only top-level metadata fields are addressed.
 * A missing field matches nothing but $ne. Filters are checked once, up front, so a bad one is
 * a clear invalid_input instead of a silent "no hits". */
#ifndef PHX_KB_FILTER_H
#define PHX_KB_FILTER_H

#include <jansson.h>

#include "err.h"

/* 0 if f is a valid filter (NULL is valid: matches everything), else -1 with err. */
int phx_kb_filter_check(const json_t *f, phx_err *err);
/* 1 if meta (an object, or NULL) satisfies f. */
int phx_kb_filter_match(const json_t *f, const json_t *meta);

#endif
