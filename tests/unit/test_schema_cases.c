/* test_schema_cases.c -- own cases for the schema keywords beyond test_schema.c's suite table.
 *
 * lib/schema.c implements all of draft 2020-12's validation keywords, but only some have
 * official suite files in shared/eval. These cases (written for Phoenix, in the suite's
 * shape) cover the rest: if/then/else, contains, dependent*, propertyNames, patternProperties,
 * unevaluated*, $dynamicRef, $anchor, multipleOf, and the ECMA-262 pattern translation.
 * JSON is written with ' for " to keep it readable in C; no case needs a literal quote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

struct phx_case {
    const char *data;
    int valid;
};

struct phx_group {
    const char *desc;
    const char *schema;
    struct phx_case tests[8]; /* ends at the first NULL data */
};

static const struct phx_group phx_groups[] = {
    {"if/then/else",
     "{'if': {'properties': {'kind': {'const': 'num'}}, 'required': ['kind']},"
     " 'then': {'properties': {'v': {'type': 'number'}}},"
     " 'else': {'properties': {'v': {'type': 'string'}}}}",
     {{"{'kind': 'num', 'v': 1}", 1},
      {"{'kind': 'num', 'v': 'a'}", 0},
      {"{'kind': 'str', 'v': 'a'}", 1},
      {"{'v': 1}", 0},
      {"3", 1}}},
    {"then without if is ignored", "{'then': false, 'else': false}", {{"1", 1}}},
    {"contains, minContains, maxContains",
     "{'contains': {'type': 'integer'}, 'minContains': 2, 'maxContains': 3}",
     {{"[1, 'a', 2]", 1}, {"[1, 'a']", 0}, {"[1, 2, 3, 4.0]", 0}, {"'not an array'", 1}}},
    {"minContains 0 accepts none",
     "{'contains': false, 'minContains': 0}",
     {{"[1]", 1}, {"[]", 1}}},
    {"contains alone", "{'contains': {'minimum': 5}}", {{"[1, 6]", 1}, {"[1, 2]", 0}, {"[]", 0}}},
    {"dependentRequired and dependentSchemas",
     "{'dependentRequired': {'card': ['billing']},"
     " 'dependentSchemas': {'coupon': {'required': ['total'], 'properties': {'total': "
     "{'minimum': 10}}}}}",
     {{"{'card': 1, 'billing': 2}", 1},
      {"{'card': 1}", 0},
      {"{'coupon': 'X', 'total': 12}", 1},
      {"{'coupon': 'X', 'total': 2}", 0},
      {"{'coupon': 'X'}", 0},
      {"{}", 1}}},
    {"propertyNames",
     "{'propertyNames': {'pattern': '^[a-z_]+$', 'maxLength': 5}}",
     {{"{'ab_c': 1}", 1}, {"{'Abc': 1}", 0}, {"{'abcdef': 1}", 0}, {"{}", 1}}},
    {"propertyNames false allows only the empty object",
     "{'propertyNames': false}",
     {{"{}", 1}, {"{'a': 1}", 0}}},
    {"patternProperties: every matching pattern applies",
     "{'patternProperties': {'^a': {'type': 'integer'}, 'b$': {'minimum': 3}},"
     " 'additionalProperties': false}",
     {{"{'ab': 4, 'a': 1, 'xb': 9}", 1}, {"{'ab': 2}", 0}, {"{'ab': 4.5}", 0}, {"{'c': 1}", 0}}},
    {"min/maxProperties",
     "{'minProperties': 1, 'maxProperties': 2}",
     {{"{'a': 1}", 1}, {"{}", 0}, {"{'a': 1, 'b': 2, 'c': 3}", 0}, {"[]", 1}}},
    {"multipleOf",
     "{'properties': {'i': {'multipleOf': 3}, 'r': {'multipleOf': 0.0001},"
     " 'big': {'multipleOf': 0.123456789}}}",
     {{"{'i': 9, 'r': 0.0075}", 1},
      {"{'i': 10}", 0},
      {"{'i': 9.0}", 1},
      {"{'r': 0.00751}", 0},
      {"{'big': 1e308}", 0}}},
    {"unevaluatedProperties sees allOf, $ref, anyOf and if, not cousins",
     "{'$defs': {'r': {'properties': {'viaRef': true}}},"
     " '$ref': '#/$defs/r',"
     " 'allOf': [{'properties': {'viaAll': true}}],"
     " 'anyOf': [{'properties': {'x': {'const': 1}}, 'required': ['x']},"
     "           {'properties': {'y': {'const': 1}}, 'required': ['y']}],"
     " 'if': {'properties': {'viaIf': true}}, 'then': {'properties': {'viaThen': true}},"
     " 'not': {'not': {'properties': {'viaNot': true}}},"
     " 'unevaluatedProperties': false}",
     {{"{'x': 1, 'viaRef': 1, 'viaAll': 1, 'viaIf': 1, 'viaThen': 1}", 1},
      {"{'x': 1, 'y': 1}", 1},
      {"{'x': 1, 'y': 2}", 0},
      {"{'x': 1, 'viaNot': 1}", 0},
      {"{'x': 1, 'other': 1}", 0}}},
    {"unevaluatedProperties cannot see inside cousins",
     "{'allOf': [{'properties': {'foo': true}}, {'unevaluatedProperties': false}]}",
     {{"{'foo': 1}", 0}, {"{}", 1}}},
    {"nested unevaluatedProperties: inner true evaluates everything",
     "{'allOf': [{'unevaluatedProperties': true}], 'unevaluatedProperties': false}",
     {{"{'foo': 1}", 1}}},
    {"unevaluatedProperties in a property (uncle)",
     "{'properties': {'foo': {'properties': {'bar': true}, 'unevaluatedProperties': false}},"
     " 'anyOf': [{'properties': {'foo': {'properties': {'faz': true}}}}]}",
     {{"{'foo': {'bar': 1}}", 1}, {"{'foo': {'bar': 1, 'faz': 1}}", 0}}},
    {"unevaluatedProperties with a failing oneOf branch's annotations dropped",
     "{'oneOf': [{'properties': {'a': {'type': 'string'}}, 'required': ['a']},"
     "           {'properties': {'b': true}, 'required': ['b']}],"
     " 'unevaluatedProperties': false}",
     {{"{'b': 1}", 1}, {"{'b': 1, 'a': 1}", 0}}},
    {"unevaluatedProperties schema",
     "{'properties': {'id': true}, 'unevaluatedProperties': {'type': 'string'}}",
     {{"{'id': 1, 'x': 'a'}", 1}, {"{'id': 1, 'x': 1}", 0}}},
    {"unevaluatedItems after prefixItems, items and contains",
     "{'prefixItems': [{'type': 'string'}], 'contains': {'type': 'null'},"
     " 'unevaluatedItems': {'type': 'boolean'}}",
     {{"['a', null, true, null]", 1}, {"['a', null, 3]", 0}, {"[1]", 0}}},
    {"unevaluatedItems sees allOf and anyOf",
     "{'allOf': [{'prefixItems': [true]}], 'anyOf': [{'prefixItems': [true, true]}, false],"
     " 'unevaluatedItems': false}",
     {{"[1, 2]", 1}, {"[1, 2, 3]", 0}}},
    {"unevaluatedItems with items true",
     "{'items': true, 'unevaluatedItems': false}",
     {{"[1, 2, 3]", 1}}},
    {"many members (bit sets past 64)",
     "{'patternProperties': {'^p': true}, 'unevaluatedProperties': false,"
     " 'properties': {'list': {'prefixItems': [true], 'unevaluatedItems': {'type': 'integer'}}}}",
     {{"{'list': [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,"
       "29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,"
       "58,59,60,61,62,63,64,65,66,67,68,69,'x']}",
       0},
      {"{'list': [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,"
       "29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,"
       "58,59,60,61,62,63,64,65,66,67,68,69,70]}",
       1}}},
    {"$dynamicRef resolves to the outermost $dynamicAnchor in scope",
     "{'$id': 'https://phoenix.invalid/strings', '$ref': 'list',"
     " '$defs': {'item': {'$dynamicAnchor': 'item', 'type': 'string'},"
     "  'list': {'$id': 'list', 'type': 'array', 'items': {'$dynamicRef': '#item'},"
     "           '$defs': {'any': {'$dynamicAnchor': 'item'}}}}}",
     {{"['a', 'b']", 1}, {"['a', 1]", 0}}},
    {"$dynamicRef to a plain $anchor is a $ref",
     "{'$id': 'https://phoenix.invalid/plain', '$ref': 'list',"
     " '$defs': {'item': {'$dynamicAnchor': 'item', 'type': 'string'},"
     "  'list': {'$id': 'list', 'items': {'$dynamicRef': '#item'},"
     "           '$defs': {'any': {'$anchor': 'item'}}}}}",
     {{"['a', 1]", 1}}},
    {"a scope that was left is not used",
     "{'$id': 'https://phoenix.invalid/leave/main',"
     " 'if': {'$id': 'first', '$defs': {'t': {'$dynamicAnchor': 't', 'type': 'number'}}},"
     " 'then': {'$id': 'second', '$ref': 'start',"
     "          '$defs': {'t': {'$dynamicAnchor': 't', 'type': 'null'}}},"
     " '$defs': {'start': {'$id': 'start', '$dynamicRef': 'inner#t'},"
     "           't': {'$id': 'inner', '$dynamicAnchor': 't', 'type': 'string'}}}",
     {{"'a string'", 0}, {"42", 0}, {"null", 1}}},
    {"$anchor resolves against the nearest $id",
     "{'$id': 'https://phoenix.invalid/root.json', '$ref': 'child.json#node',"
     " '$defs': {'c': {'$id': 'child.json', '$defs': {'n': {'$anchor': 'node', 'type': "
     "'integer'}}},"
     "           'decoy': {'$anchor': 'node', 'type': 'string'}}}",
     {{"1", 1}, {"'a'", 0}}},
    {"the same location evaluated twice is not a loop",
     "{'$defs': {'int': {'type': 'integer'}},"
     " 'allOf': [{'properties': {'foo': {'$ref': '#/$defs/int'}}},"
     "           {'additionalProperties': {'$ref': '#/$defs/int'}}]}",
     {{"{'foo': 1}", 1}, {"{'foo': 'a'}", 0}}},
    {"$ref into an unknown keyword",
     "{'definitions': {'s': {'type': 'string'}}, 'properties': {'a': {'$ref': "
     "'#/definitions/s'}}}",
     {{"{'a': 'x'}", 1}, {"{'a': 1}", 0}}},
    {"$id inside enum and const is not a resource",
     "{'$defs': {'inEnum': {'enum': [{'$id': 'https://phoenix.invalid/id.json', 'type': 'null'}]},"
     "           'real': {'$id': 'https://phoenix.invalid/id.json', 'type': 'string'},"
     "           'inConst': {'const': {'$id': 'https://phoenix.invalid/id.json'}}},"
     " 'anyOf': [{'$ref': '#/$defs/inEnum'}, {'$ref': 'https://phoenix.invalid/id.json'}]}",
     {{"'a'", 1}, {"{'$id': 'https://phoenix.invalid/id.json', 'type': 'null'}", 1}, {"1", 0}}},
    {"boolean subschemas everywhere",
     "{'properties': {'no': false, 'yes': true}, 'items': false, 'prefixItems': [true]}",
     {{"{'yes': 1}", 1}, {"{'no': 1}", 0}, {"[1]", 1}, {"[1, 2]", 0}}},
    {"ECMA-262 classes are ASCII",
     "{'properties': {'d': {'pattern': '^\\\\d+$'}, 'w': {'pattern': '^\\\\w+$'},"
     " 's': {'pattern': '^\\\\S+\\\\s\\\\S+$'}, 'n': {'pattern': '^\\\\D\\\\W$'}}}",
     {{"{'d': '0123', 'w': 'a_Z9', 's': 'a b', 'n': 'a-'}", 1},
      {"{'d': '\\u09ea'}", 0},
      {"{'w': '\\u00e9'}", 0},
      {"{'s': 'ab'}", 0},
      {"{'n': '1-'}", 0}}},
    {"ECMA-262 anchors, alternation, escapes and classes",
     "{'properties': {'a': {'pattern': '^(cat|dog)s?$'}, 'b': {'pattern': '[\\\\^\\\\]-]'},"
     " 'c': {'pattern': '^a{2,3}\\\\.\\\\*$'}, 'e': {'pattern': '^[^]$'},"
     " 'f': {'pattern': '^[\\\\t\\\\u0041-\\\\u0043]+$'}, 'g': {'pattern': '\\\\bword\\\\b'}}}",
     {{"{'a': 'dogs', 'b': 'x^', 'c': 'aaa.*', 'e': '\\n', 'f': 'A\\tC', 'g': 'a word.'}", 1},
      {"{'a': 'cow'}", 0},
      {"{'b': 'x'}", 0},
      {"{'c': 'aaaa.*'}", 0},
      {"{'f': 'D'}", 0},
      {"{'g': 'swordfish'}", 0}}},
    {"one-atom patterns (the fast matcher alone, no regex kept) at their bounds",
     "{'properties': {'id': {'pattern': '^[A-Za-z0-9._:-]{2,4}$'}, 'k': {'pattern': '^[a-z]+$'},"
     " 'x': {'pattern': '^x?$'}}}",
     {{"{'id': 'a.', 'k': 'abc', 'x': ''}", 1},
      {"{'id': 'a:b-'}", 1},
      {"{'id': 'a'}", 0},
      {"{'id': 'abcde'}", 0},
      {"{'id': 'a b'}", 0},
      {"{'id': 'a\u00e9'}", 0},
      {"{'k': ''}", 0},
      {"{'x': 'xx'}", 0}}},
};

/* ' -> " so the case text becomes JSON. */
static json_t *phx_case_json(const char *text)
{
    char *s = strdup(text);
    assert_non_null(s);
    for (char *p = s; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    json_error_t jerr;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &jerr);
    if (!v)
        fail_msg("case JSON %s: %s", s, jerr.text);
    free(s);
    return v;
}

static void test_group(void **state)
{
    const struct phx_group *g = *state;
    char err[512];
    json_t *root = phx_case_json(g->schema);
    phx_schema *s = phx_schema_new(root, err, sizeof(err));
    json_decref(root);
    if (!s)
        fail_msg("%s: schema refused: %s", g->desc, err);
    int failed = 0;
    for (size_t i = 0; i < sizeof(g->tests) / sizeof(g->tests[0]) && g->tests[i].data; i++) {
        json_t *data = phx_case_json(g->tests[i].data), *errs = NULL;
        int want = g->tests[i].valid ? 0 : 1;
        int rc = phx_schema_validate(s, data, &errs);
        int quick = phx_schema_validate(s, data, NULL);
        if (rc != want || quick != want || (want && json_array_size(errs) == 0)) {
            char *shown = errs ? json_dumps(errs, JSON_COMPACT) : NULL;
            print_message("  FAIL %s: %s: want %s, got %d/%d %s\n", g->desc, g->tests[i].data,
                          want ? "invalid" : "valid", rc, quick, shown ? shown : "");
            free(shown);
            failed++;
        }
        json_decref(errs);
        json_decref(data);
    }
    phx_schema_free(s);
    assert_int_equal(failed, 0);
}

int main(void)
{
    enum { N = sizeof(phx_groups) / sizeof(phx_groups[0]) };
    struct CMUnitTest tests[N];
    for (size_t i = 0; i < N; i++)
        tests[i] =
            (struct CMUnitTest){phx_groups[i].desc, test_group, NULL, NULL, (void *)&phx_groups[i]};
    return _cmocka_run_group_tests("schema_cases", tests, N, NULL, NULL) ? 1 : 0;
}
