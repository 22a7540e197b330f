/* schema.h -- JSON Schema (draft 2020-12) validation on top of jansson.
 *
 * Phoenix checks every message it accepts (jobs, step results, tool calls) against a schema
 * before acting on it, so a malformed message is refused at the edge with a precise error
 * instead of failing somewhere inside a worker.
 *
 * A schema is compiled once (keywords checked, patterns compiled, every $ref resolved to a
 * pointer) and is read-only afterwards: one compiled schema may be used by any number of
 * threads at once. Nothing here keeps global mutable state.
 *
 * Supported: the whole draft 2020-12 core, applicator, unevaluated and validation vocabularies
 * ($id, $anchor, $dynamicAnchor, $ref, $dynamicRef, $defs, type, enum, const, numbers, strings,
 * arrays, objects, allOf/anyOf/oneOf/not, if/then/else, dependentSchemas, dependentRequired,
 * propertyNames, unevaluatedItems/Properties), boolean schemas, and the 2020-12 meta-schema
 * itself (bundled, so "$ref": "https://json-schema.org/draft/2020-12/schema" works offline).
 * Numbers compare mathematically: 1.0 is an "integer" and equals 1 in enum/const/uniqueItems.
 * minLength/maxLength count Unicode code points.
 *
 * Limits, on purpose or by cost:
 *   - No network: a $ref to a document that is neither in the schema (or set) nor the bundled
 *     meta-schema makes phx_schema_new fail with "unresolvable $ref".
 *   - "format" asserts date-time (RFC 3339, leap second only at 23:59:60 UTC), email (RFC 5321
 *     mailbox, ASCII only), uri (RFC 3986 absolute URI) and uuid; other formats are annotations
 *     and always pass.
 *   - "pattern"/"patternProperties" are ECMA-262 translated to POSIX extended regular
 *     expressions (glibc <regex.h>, in the C.UTF-8 locale so "." and classes work on code
 *     points). Translated: \d \D \w \W \s \S (ASCII classes; \s is [[:space:]]), \b \B, \n \t
 *     \r \f \v \xHH \uHHHH \u{H..} \cX, escaped punctuation, (?:...), (?<name>...), lazy
 *     quantifiers (match/no-match is the same as greedy), literal { and }, "." not matching
 *     \n or \r, and \p{L} \p{Letter} \p{Lu} \p{Ll} \p{Nd} (glibc's classes, which are close to
 *     but not exactly Unicode's). Refused at compile time with a message: lookaround,
 *     backreferences, \D \W \S \P{..} inside [...], ranges whose ends are ']' or '-', the
 *     empty class [], and other \p{...} names. Matching is unanchored, as in the spec. Without
 *     a C.UTF-8 locale on the machine, patterns fall back to byte semantics. A pattern whose
 *     repeats expand to more than 2048 atoms (a{0,5000}, (a{0,100}){0,100}, thousands of
 *     alternatives) is refused as "pattern too large": glibc's regcomp builds every copy, and
 *     such patterns took seconds to minutes and gigabytes to compile.
 *   - Older dialects ($schema of draft-04..2019-09) are refused rather than misread.
 *   - Evaluation depth is capped (PHX_SCHEMA_MAX_DEPTH) so a schema that recurses without
 *     consuming the instance ({"$ref": "#"}) fails with an error instead of the stack, and so
 *     is the number of evaluations (PHX_SCHEMA_MAX_EVALS) so one that branches exponentially
 *     fails instead of running for hours.
 */
#ifndef PHX_SCHEMA_H
#define PHX_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

/* At most this many error objects are returned by phx_schema_validate. */
#define PHX_SCHEMA_MAX_ERRORS 20
/* Nested schema evaluations allowed at once. A recursive schema spends about two per level of
 * instance nesting (the subschema and the $ref back), so it accepts ~500 nested levels. */
#define PHX_SCHEMA_MAX_DEPTH 1000
/* Schema evaluations allowed per validation: PHX_SCHEMA_MAX_EVALS, plus
 * PHX_SCHEMA_EVALS_PER_VALUE per JSON value in the instance. Depth does not bound a schema
 * whose anyOf/oneOf/allOf branches over $refs that branch again (2^depth evaluations); past
 * the budget the instance is invalid with a message saying so. */
#define PHX_SCHEMA_MAX_EVALS       1000000
#define PHX_SCHEMA_EVALS_PER_VALUE 16

typedef struct phx_schema phx_schema;

/* Compile a schema from a JSON value (incref'd, caller keeps its ref; the value must not be
 * modified afterwards). A schema without "$id" gets a private base URI, so only "#..." and
 * "$id"-based refs inside it resolve. NULL + message in err on a schema that is itself invalid
 * or unsupported; the message starts with the JSON pointer of the offending schema location. */
phx_schema *phx_schema_new(json_t *root, char *err, size_t errlen);
phx_schema *phx_schema_load_file(const char *path, char *err, size_t errlen);
/* NULL is accepted. Never pass a schema obtained from phx_schema_set_get. */
void phx_schema_free(phx_schema *s);

/* 0 = valid, 1 = invalid, -1 = out of memory or a NULL argument (treat as invalid). When errors_out
 * is not NULL and the result is not 0, *errors_out gets a new JSON array
 * of 1..PHX_SCHEMA_MAX_ERRORS objects {"path": "/steps/0/id", "keyword": "required", "message":
 * "..."} where path is a JSON pointer into the instance ("" for the root). For "required" and
 * "dependentRequired" the path names the missing member itself. Failing branches of
 * anyOf/oneOf/not/if are summarised by one error on that keyword rather than listed. *errors_out is
 * set to NULL when valid. */
int phx_schema_validate(const phx_schema *s, const json_t *instance, json_t **errors_out);

/* A named set (e.g. "job.v1" -> schema), so Phoenix can hold all its message schemas in one
 * place; a $ref from one member to another by its "$id" resolves. A member without "$id" gets
 * the base URI "phx-schema:/set/NAME" (NAME percent-encoded): any member can refer to it by
 * that URI, and other members without "$id" simply as {"$ref": "NAME"}.
 *
 * Members may be added in any order: a $ref to a member not added yet stays pending and is
 * resolved by the add that brings it. phx_schema_set_check reports refs still pending; a
 * pending $ref that is reached during validation makes the instance invalid.
 * Adding is not thread-safe; add everything first, then validate from any thread. */
typedef struct phx_schema_set phx_schema_set;
phx_schema_set *phx_schema_set_new(void);
/* 0 ok; -1 + message (invalid schema, duplicate name or $id). A failed add leaves the set as it
 * was. */
int phx_schema_set_add(phx_schema_set *set, const char *name, json_t *root, char *err,
                       size_t errlen);
const phx_schema *phx_schema_set_get(const phx_schema_set *set, const char *name);
/* 0 when every $ref in the set resolves, else -1 + the first pending reference in err. */
int phx_schema_set_check(const phx_schema_set *set, char *err, size_t errlen);
void phx_schema_set_free(phx_schema_set *set);

#endif
