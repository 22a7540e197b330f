/* test_schema.c -- tests for lib/schema.c (JSON Schema draft 2020-12).
 *
 * Most of the coverage comes from the official JSON-Schema-Test-Suite, read in place from
 * $PHX_EVAL_DIR/json-schema-test-suite (default ../shared/eval, relative to the repo root where
 * the tests run) and never copied into the project. Every case of each file in
 * phx_suite_files must pass; the only allowed skips are cases whose schema needs a document
 * served from http://localhost:1234 (the suite's remotes), and those are named in the output.
 * The own cases below cover what the suite does not: error messages, error paths, the set API,
 * files, and concurrent use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "schema.h"

/* The keywords Phoenix relies on, one suite file each, plus the asserted formats. */
static const char *const phx_suite_files[] = {
    "type.json",
    "enum.json",
    "const.json",
    "properties.json",
    "required.json",
    "additionalProperties.json",
    "items.json",
    "prefixItems.json",
    "minItems.json",
    "maxItems.json",
    "uniqueItems.json",
    "minLength.json",
    "maxLength.json",
    "pattern.json",
    "minimum.json",
    "maximum.json",
    "exclusiveMinimum.json",
    "exclusiveMaximum.json",
    "allOf.json",
    "anyOf.json",
    "oneOf.json",
    "not.json",
    "ref.json",
    "default.json",
    "optional/format/date-time.json",
    "optional/format/email.json",
    "optional/format/uri.json",
    "optional/format/uuid.json",
};

#define PHX_SUITE_REMOTE "http://localhost:1234/"

static void phx_suite_dir(char *out, size_t len)
{
    const char *eval = getenv("PHX_EVAL_DIR");
    snprintf(out, len, "%s/json-schema-test-suite/tests/draft2020-12",
             eval && *eval ? eval : "../shared/eval");
}

/* An invalid result must come with 1..20 well-formed errors; a valid one with none. */
static int phx_errors_ok(int rc, const json_t *errs)
{
    if (rc == 0)
        return errs == NULL;
    if (!json_is_array(errs) || json_array_size(errs) == 0 ||
        json_array_size(errs) > PHX_SCHEMA_MAX_ERRORS)
        return 0;
    for (size_t i = 0; i < json_array_size(errs); i++) {
        const json_t *e = json_array_get(errs, i);
        const char *path = json_string_value(json_object_get(e, "path"));
        if (!path || (path[0] && path[0] != '/') ||
            !json_is_string(json_object_get(e, "keyword")) ||
            !json_is_string(json_object_get(e, "message")))
            return 0;
    }
    return 1;
}

static void test_suite_file(void **state)
{
    const char *file = *state;
    char dir[1024], path[1200], err[512], why[2048] = "";
    size_t passed = 0, skipped = 0, failed = 0;
    phx_suite_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, file);

    json_error_t jerr;
    json_t *groups = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    if (!groups)
        fail_msg("%s: %s", path, jerr.text);
    size_t g;
    json_t *group;
    json_array_foreach(groups, g, group)
    {
        const char *desc = json_string_value(json_object_get(group, "description"));
        json_t *tests = json_object_get(group, "tests");
        phx_schema *s = phx_schema_new(json_object_get(group, "schema"), err, sizeof(err));
        if (!s && strstr(err, "unresolvable") && strstr(err, PHX_SUITE_REMOTE)) {
            /* the suite serves these documents over HTTP; Phoenix never fetches schemas */
            skipped += json_array_size(tests);
            size_t l = strlen(why);
            snprintf(why + l, sizeof(why) - l, "%s\"%s\"", l ? ", " : "", desc);
            continue;
        }
        if (!s) {
            print_message("  FAIL %s: \"%s\": schema refused: %s\n", file, desc, err);
            failed += json_array_size(tests);
            continue;
        }
        size_t t;
        json_t *test;
        json_array_foreach(tests, t, test)
        {
            json_t *data = json_object_get(test, "data"), *errs = NULL;
            int want = json_is_true(json_object_get(test, "valid")) ? 0 : 1;
            int rc = phx_schema_validate(s, data, &errs);
            int quick = phx_schema_validate(s, data, NULL); /* the stop-at-first-error path */
            if (rc == want && quick == want && phx_errors_ok(rc, errs)) {
                passed++;
            } else {
                char *shown = errs ? json_dumps(errs, JSON_COMPACT) : NULL;
                print_message("  FAIL %s: \"%s\" / \"%s\": want %s, got %d/%d %s\n", file, desc,
                              json_string_value(json_object_get(test, "description")),
                              want ? "invalid" : "valid", rc, quick, shown ? shown : "");
                free(shown);
                failed++;
            }
            json_decref(errs);
        }
        phx_schema_free(s);
    }
    json_decref(groups);
    if (skipped)
        print_message("schema suite: %s: %zu passed, %zu skipped (needs remote refs to %s: %s)\n",
                      file, passed, skipped, PHX_SUITE_REMOTE, why);
    else
        print_message("schema suite: %s: %zu passed, 0 skipped\n", file, passed);
    assert_int_equal(failed, 0);
    assert_true(passed > 0);
}

static void test_suite_missing(void **state)
{
    char dir[1024];
    (void)state;
    phx_suite_dir(dir, sizeof(dir));
    print_message("schema suite: SKIPPED: %s not found\n", dir);
    skip();
}

/* --- own cases ---------------------------------------------------------------------------- */

/* Compile text; the schema, or NULL with the message in err. */
static phx_schema *phx_compile(const char *text, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_DECODE_ANY, &jerr);
    assert_non_null(root);
    phx_schema *s = phx_schema_new(root, err, errlen);
    json_decref(root);
    return s;
}

static void phx_expect_refused(const char *text, const char *needle)
{
    char err[512] = "";
    phx_schema *s = phx_compile(text, err, sizeof(err));
    if (s || !strstr(err, needle))
        fail_msg("schema %s: want refusal with \"%s\", got %s \"%s\"", text, needle,
                 s ? "a schema" : "message", err);
}

static void test_bad_schemas(void **state)
{
    (void)state;
    phx_expect_refused("42", "must be an object or a boolean");
    phx_expect_refused("{\"type\": \"strnig\"}", "#/type: must be a type name");
    phx_expect_refused("{\"properties\": {\"a\": {\"minLength\": -1}}}",
                       "#/properties/a/minLength: must be a non-negative integer");
    phx_expect_refused("{\"$defs\": {\"x/y\": {\"maxItems\": 1.5}}}", "#/$defs/x~1y/maxItems");
    phx_expect_refused("{\"required\": \"id\"}", "#/required: must be an array of strings");
    phx_expect_refused("{\"allOf\": []}", "#/allOf: must be a non-empty array");
    phx_expect_refused("{\"items\": [{}]}", "use prefixItems");
    phx_expect_refused("{\"multipleOf\": 0}", "greater than 0");
    phx_expect_refused("{\"pattern\": \"(?=a)b\"}", "lookaround");
    phx_expect_refused("{\"pattern\": \"(a)\\\\1\"}", "backreferences");
    phx_expect_refused("{\"patternProperties\": {\"[\": {}}}",
                       "#/patternProperties/[: pattern \"[\" not supported");
    phx_expect_refused("{\"$ref\": \"#/$defs/missing\"}", "no such location");
    phx_expect_refused("{\"$ref\": \"#nowhere\"}", "no anchor \"nowhere\"");
    phx_expect_refused("{\"properties\": {\"a\": {\"$ref\": \"https://example.com/a.json\"}}}",
                       "#/properties/a/$ref: unresolvable $ref \"https://example.com/a.json\"");
    phx_expect_refused("{\"$schema\": \"http://json-schema.org/draft-07/schema#\"}",
                       "unsupported dialect");
    phx_expect_refused("{\"$id\": \"http://x/a#frag\"}", "must not have a fragment");
    phx_expect_refused("{\"$defs\": {\"a\": {\"$id\": \"http://x/a\"}, \"b\": {\"$id\": "
                       "\"http://x/a\"}}}",
                       "duplicate $id");
    phx_expect_refused("{\"$anchor\": \"1bad\"}", "#/$anchor: must be a name");
    /* Repeats glibc's regcomp would expand into too many copies (fuzz_schema's hangs). */
    phx_expect_refused("{\"pattern\": \"a{0,32767}\"}", "pattern too large");
    phx_expect_refused("{\"pattern\": \"((a{0,1000}){0,1000}){0,1000}\"}", "pattern too large");
    phx_expect_refused("{\"pattern\": \"^(?:[a-z]{1,64}\\\\.){40}$\"}", "pattern too large");

    char err[64];
    assert_null(phx_schema_new(NULL, err, sizeof(err)));
    assert_null(phx_compile("{\"type\": 1}", NULL, 0)); /* no buffer for the message is fine */
}

/* Validate text against schema; the errors array (NULL when valid). */
static json_t *phx_errors(const phx_schema *s, const char *text, int want)
{
    json_error_t jerr;
    json_t *inst = json_loads(text, JSON_DECODE_ANY, &jerr), *errs = NULL;
    assert_non_null(inst);
    assert_int_equal(phx_schema_validate(s, inst, &errs), want);
    assert_int_equal(phx_schema_validate(s, inst, NULL), want);
    json_decref(inst);
    return errs;
}

static void phx_expect_error(const json_t *errs, size_t i, const char *path, const char *kw,
                             const char *msg_part)
{
    const json_t *e = json_array_get(errs, i);
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "path")), path);
    assert_string_equal(json_string_value(json_object_get(e, "keyword")), kw);
    assert_non_null(strstr(json_string_value(json_object_get(e, "message")), msg_part));
}

static void test_error_paths(void **state)
{
    (void)state;
    char err[512];
    phx_schema *s = phx_compile(
        "{\"type\": \"object\", \"required\": [\"steps\"], \"additionalProperties\": false,"
        " \"properties\": {\"steps\": {\"type\": \"array\", \"items\": {\"$ref\": "
        "\"#/$defs/step\"}},"
        "   \"a/b~c\": {\"type\": \"integer\"}},"
        " \"$defs\": {\"step\": {\"type\": \"object\", \"required\": [\"id\"],"
        "   \"properties\": {\"id\": {\"type\": \"string\", \"format\": \"uuid\"},"
        "                  \"n\": {\"minimum\": 1}}}}}",
        err, sizeof(err));
    assert_non_null(s);

    json_t *errs =
        phx_errors(s, "{\"steps\": [{\"id\": \"2eb8aa08-aa98-11ea-b4aa-73b441d16380\"}]}", 0);
    assert_null(errs);
    errs = phx_errors(s,
                      "{\"steps\": [{\"id\": \"2eb8aa08-aa98-11ea-b4aa-73b441d16380\"}, {\"x\": 1},"
                      " {\"id\": 3, \"n\": 0}, {\"id\": \"nope\"}], \"a/b~c\": 1.5, \"extra\": 1}",
                      1);
    assert_int_equal(json_array_size(errs), 6);
    phx_expect_error(errs, 0, "/steps/1/id", "required", "missing required property \"id\"");
    phx_expect_error(errs, 1, "/steps/2/id", "type", "expected string, got integer");
    phx_expect_error(errs, 2, "/steps/2/n", "minimum", "must be >= 1");
    phx_expect_error(errs, 3, "/steps/3/id", "format", "not a valid uuid");
    phx_expect_error(errs, 4, "/a~1b~0c", "type", "expected integer, got number");
    phx_expect_error(errs, 5, "/extra", "additionalProperties", "not allowed");
    json_decref(errs);

    errs = phx_errors(s, "[]", 1);
    assert_int_equal(json_array_size(errs), 1);
    phx_expect_error(errs, 0, "", "type", "expected object, got array");
    json_decref(errs);
    phx_schema_free(s);

    /* alternatives are summarised by one error on the keyword, not by their inner failures */
    s = phx_compile(
        "{\"properties\": {\"v\": {\"anyOf\": [{\"type\": \"string\"}, {\"minimum\": 10}]},"
        " \"w\": {\"oneOf\": [{\"type\": \"integer\"}, {\"minimum\": 0}]},"
        " \"x\": {\"not\": {\"const\": 1.0}}}}",
        err, sizeof(err));
    assert_non_null(s);
    errs = phx_errors(s, "{\"v\": 3, \"w\": 5, \"x\": 1}", 1);
    assert_int_equal(json_array_size(errs), 3);
    phx_expect_error(errs, 0, "/v", "anyOf", "does not match any of the 2 alternatives");
    phx_expect_error(errs, 1, "/w", "oneOf", "more than one");
    phx_expect_error(errs, 2, "/x", "not", "must not match");
    json_decref(errs);
    phx_schema_free(s);

    /* at most PHX_SCHEMA_MAX_ERRORS errors, however many there are */
    s = phx_compile("{\"items\": {\"type\": \"string\", \"minLength\": 2}}", err, sizeof(err));
    assert_non_null(s);
    json_t *many = json_array();
    for (int i = 0; i < 50; i++)
        json_array_append_new(many, json_integer(i));
    assert_int_equal(phx_schema_validate(s, many, &errs), 1);
    assert_int_equal(json_array_size(errs), PHX_SCHEMA_MAX_ERRORS);
    phx_expect_error(errs, 19, "/19", "type", "expected string");
    json_decref(errs);
    json_decref(many);

    /* code points, not bytes: "été" is 3 long */
    json_decref(phx_errors(s, "[\"\\u00e9t\\u00e9\", \"ab\"]", 0));
    errs = phx_errors(s, "[\"\\u00e9\"]", 1);
    phx_expect_error(errs, 0, "/0", "minLength", "at least 2 characters long, is 1");
    json_decref(errs);
    phx_schema_free(s);
}

static void test_numbers_and_patterns(void **state)
{
    (void)state;
    char err[512];
    phx_schema *s =
        phx_compile("{\"enum\": [1, [2.0], {\"a\": 3}], \"multipleOf\": 0.5}", err, sizeof(err));
    assert_non_null(s);
    json_decref(phx_errors(s, "1.0", 0));
    json_decref(phx_errors(s, "[2]", 0));
    json_decref(phx_errors(s, "{\"a\": 3.0}", 0));
    json_decref(phx_errors(s, "2", 1));
    phx_schema_free(s);

    s = phx_compile("{\"uniqueItems\": true}", err, sizeof(err));
    assert_non_null(s);
    json_t *errs = phx_errors(s, "[{\"a\": 1, \"b\": [1]}, 7, {\"b\": [1.0], \"a\": 1.0}]", 1);
    phx_expect_error(errs, 0, "", "uniqueItems", "items 0 and 2 are equal");
    json_decref(errs);
    json_decref(phx_errors(s, "[1, true, \"1\", [1], null, 0, false]", 0));
    phx_schema_free(s);

    /* the ECMA-262 features the translation handles */
    s = phx_compile("{\"properties\": {"
                    " \"a\": {\"pattern\": \"^\\\\d{3}-\\\\w+\\\\s?[\\\\d.]*$\"},"
                    " \"b\": {\"pattern\": \"^(?:ab)+?\\\\.[^\\\\]\\\\-]{2}\\\\/x$\"},"
                    " \"c\": {\"pattern\": \"^\\\\u00e9.{1}\\\\x41$\"},"
                    " \"d\": {\"pattern\": \"{\\\\}\"}}}",
                    err, sizeof(err));
    if (!s)
        fail_msg("%s", err);
    json_decref(phx_errors(s, "{\"a\": \"123-ab_c 1.5\", \"b\": \"abab.zz/x\"}", 0));
    json_decref(phx_errors(s, "{\"c\": \"\\u00e9\\u00e8A\", \"d\": \"x{}\"}", 0));
    json_decref(phx_errors(s, "{\"a\": \"12-ab\"}", 1));
    json_decref(phx_errors(s, "{\"b\": \"ab.]z/x\"}", 1));
    json_decref(phx_errors(s, "{\"c\": \"\\u00e9\\nA\"}", 1)); /* '.' does not match \n */
    phx_schema_free(s);
}

/* Anchored character-class patterns take a matcher of their own instead of regexec
 * (schema.c, "fast anchored patterns"): it must accept exactly what the regex accepts. */
static void test_fast_patterns(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *instance;
        int ok;
    } cases[] = {
        {"^[A-Za-z0-9._:-]{1,4}$", "\"a.:-\"", 1},
        {"^[A-Za-z0-9._:-]{1,4}$", "\"abcde\"", 0},
        {"^[A-Za-z0-9._:-]{1,4}$", "\"\"", 0},
        {"^[A-Za-z0-9._:-]{1,4}$", "\"a b\"", 0},
        {"^[A-Za-z0-9._:-]{1,4}$", "\"\\u00e9\"", 0},
        {"^[a-z]+[.][a-z_]+$", "\"tool.calc\"", 1},
        {"^[a-z]+[.][a-z_]+$", "\"tool.\"", 0},
        {"^[a-z]+[.][a-z_]+$", "\".calc\"", 0},
        {"^[a-z]+[.][a-z_]+$", "\"a.b.c\"", 0},
        {"^[a-z]+[.][a-z_]+$", "\"Tool.calc\"", 0},
        {"^[a-z]*b$", "\"aab\"", 1}, /* the greedy run gives the b back */
        {"^[a-z]*b$", "\"aaa\"", 0},
        {"^x-?[0-9]{2}$", "\"x-12\"", 1},
        {"^x-?[0-9]{2}$", "\"x12\"", 1},
        {"^x-?[0-9]{2}$", "\"x123\"", 0},
        {"^[ab]{2,}c{0,1}$", "\"abbac\"", 1},
        {"^[ab]{2,}c{0,1}$", "\"ac\"", 0},
        {"^[-a]+$", "\"-a-\"", 1},
        {"^[a-]+$", "\"b\"", 0},
    };
    char err[512], doc[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(doc, sizeof(doc), "{\"pattern\": \"%s\"}", cases[i].pattern);
        phx_schema *s = phx_compile(doc, err, sizeof(err));
        if (!s)
            fail_msg("%s: %s", cases[i].pattern, err);
        json_decref(phx_errors(s, cases[i].instance, cases[i].ok ? 0 : 1));
        phx_schema_free(s);
    }
    /* Overlapping runs make backtracking polynomial: past its budget the fast matcher hands
     * over to the regex, with the same answers (this took minutes before: fuzz_schema). */
    phx_schema *s = phx_compile("{\"pattern\": \"^a*a*a*a*a*b$\"}", err, sizeof(err));
    assert_non_null(s);
    char *inst = malloc(20003);
    assert_non_null(inst);
    inst[0] = '"';
    memset(inst + 1, 'a', 20000);
    strcpy(inst + 20001, "\"");
    json_decref(phx_errors(s, inst, 1));
    inst[20000] = 'b';
    json_decref(phx_errors(s, inst, 0));
    free(inst);
    phx_schema_free(s);
}

static void test_meta_schema(void **state)
{
    (void)state;
    char err[512];
    phx_schema *meta = phx_compile("{\"$ref\": \"https://json-schema.org/draft/2020-12/schema\"}",
                                   err, sizeof(err));
    if (!meta)
        fail_msg("%s", err);
    json_decref(
        phx_errors(meta, "{\"type\": \"object\", \"properties\": {\"a\": {\"minimum\": 1}}}", 0));
    json_t *errs = phx_errors(meta, "{\"properties\": {\"a\": {\"minLength\": -1}}}", 1);
    phx_expect_error(errs, 0, "/properties/a/minLength", "minimum", "must be >= 0");
    json_decref(errs);
    phx_schema_free(meta);
}

static void test_set(void **state)
{
    (void)state;
    char err[512];
    json_error_t jerr;
    json_t *step = json_loads("{\"$id\": \"https://phoenix.invalid/schemas/step.v1.json\","
                              " \"type\": \"object\", \"required\": [\"id\"],"
                              " \"properties\": {\"id\": {\"$ref\": \"#id\"}},"
                              " \"$defs\": {\"id\": {\"$anchor\": \"id\", \"type\": \"string\"}}}",
                              0, &jerr);
    json_t *job = json_loads("{\"$id\": \"https://phoenix.invalid/schemas/job.v1.json\","
                             " \"type\": \"object\", \"properties\": {\"steps\": {\"type\": "
                             "\"array\", \"items\": {\"$ref\": \"step.v1.json\"}},"
                             " \"first\": {\"$ref\": \"step.v1.json#/properties/id\"},"
                             " \"note\": {\"$ref\": \"phx-schema:/set/note\"}}}",
                             0, &jerr);
    json_t *note = json_loads("{\"type\": \"string\", \"maxLength\": 3}", 0, &jerr);
    json_t *wrap = json_loads("{\"$ref\": \"note\"}", 0, &jerr); /* members without $id: by name */
    json_t *bad = json_loads("{\"$id\": \"https://phoenix.invalid/schemas/step.v1.json\","
                             " \"minItems\": \"x\"}",
                             0, &jerr);
    assert_true(step && job && note && wrap && bad);

    phx_schema_set *set = phx_schema_set_new();
    assert_non_null(set);
    /* job first: its refs stay pending until the members they name arrive */
    assert_int_equal(phx_schema_set_add(set, "job.v1", job, err, sizeof(err)), 0);
    assert_int_equal(phx_schema_set_check(set, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "step.v1.json"));
    const phx_schema *s = phx_schema_set_get(set, "job.v1");
    assert_non_null(s);
    json_t *errs = phx_errors(s, "{\"steps\": [{}]}", 1);
    phx_expect_error(errs, 0, "/steps/0", "$ref", "unresolved reference");
    json_decref(errs);

    /* a failed add changes nothing: the same $id can be added right after */
    assert_int_equal(phx_schema_set_add(set, "step.v1", bad, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "step.v1: #/minItems"));
    assert_null(phx_schema_set_get(set, "step.v1"));
    assert_int_equal(phx_schema_set_add(set, "step.v1", step, err, sizeof(err)), 0);
    assert_int_equal(phx_schema_set_add(set, "note", note, err, sizeof(err)), 0);
    assert_int_equal(phx_schema_set_add(set, "wrap", wrap, err, sizeof(err)), 0);
    assert_int_equal(phx_schema_set_check(set, err, sizeof(err)), 0);
    assert_int_equal(phx_schema_set_add(set, "note", note, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "already in the set"));
    assert_null(phx_schema_set_get(set, "nope"));

    s = phx_schema_set_get(set, "job.v1");
    json_decref(
        phx_errors(s, "{\"steps\": [{\"id\": \"a\"}], \"first\": \"b\", \"note\": \"ok\"}", 0));
    errs = phx_errors(
        s, "{\"steps\": [{\"id\": \"a\"}, {\"id\": 2}], \"first\": 3, \"note\": \"long\"}", 1);
    assert_int_equal(json_array_size(errs), 3);
    phx_expect_error(errs, 0, "/steps/1/id", "type", "expected string");
    phx_expect_error(errs, 1, "/first", "type", "expected string");
    phx_expect_error(errs, 2, "/note", "maxLength", "at most 3");
    json_decref(errs);
    errs = phx_errors(phx_schema_set_get(set, "wrap"), "\"long\"", 1);
    phx_expect_error(errs, 0, "", "maxLength", "at most 3");
    json_decref(errs);
    phx_schema_set_free(set);
    phx_schema_set_free(NULL);
    json_decref(step);
    json_decref(job);
    json_decref(note);
    json_decref(wrap);
    json_decref(bad);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/phx-schema-XXXXXX", err[512];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "{\"type\": \"string\", \"format\": \"date-time\"}";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    phx_schema *s = phx_schema_load_file(path, err, sizeof(err));
    assert_non_null(s);
    json_decref(phx_errors(s, "\"1998-12-31T23:59:60Z\"", 0));
    json_decref(phx_errors(s, "\"1998-12-31 23:59:59Z\"", 1));
    phx_schema_free(s);

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\"type\":", 8), 8);
    close(fd);
    assert_null(phx_schema_load_file(path, err, sizeof(err)));
    assert_non_null(strstr(err, path));
    unlink(path);
    assert_null(phx_schema_load_file("/nonexistent/schema.json", err, sizeof(err)));
    phx_schema_free(NULL);
}

/* Depth is capped: a schema that recurses without consuming the instance fails cleanly. */
static void test_recursion_limit(void **state)
{
    (void)state;
    char err[512];
    phx_schema *s = phx_compile("{\"$defs\": {\"a\": {\"$ref\": \"#/$defs/b\"}, \"b\": {\"$ref\": "
                                "\"#/$defs/a\"}}, \"$ref\": \"#/$defs/a\"}",
                                err, sizeof(err));
    assert_non_null(s);
    json_t *errs = phx_errors(s, "1", 1);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(errs, 0), "message")),
                           "nested more than"));
    json_decref(errs);
    phx_schema_free(s);

    /* Breadth: 40 levels of anyOf over two refs to the next level, ending in false, is 2^40
     * evaluations of the same value (fuzz_schema: hours). The budget stops it, invalid. A
     * "not" around it must not turn the cut-off into a pass. */
    for (int neg = 0; neg < 2; neg++) {
        char doc[8192];
        size_t n = (size_t)snprintf(doc, sizeof(doc), "{\"$defs\": {");
        for (int i = 0; i < 40; i++)
            n += (size_t)snprintf(doc + n, sizeof(doc) - n,
                                  "\"a%d\": {\"anyOf\": [{\"$ref\": \"#/$defs/a%d\"}, "
                                  "{\"$ref\": \"#/$defs/a%d\"}]}, ",
                                  i, i + 1, i + 1);
        snprintf(doc + n, sizeof(doc) - n, "\"a40\": false}, %s}",
                 neg ? "\"not\": {\"$ref\": \"#/$defs/a0\"}" : "\"$ref\": \"#/$defs/a0\"");
        s = phx_compile(doc, err, sizeof(err));
        assert_non_null(s);
        errs = phx_errors(s, "[1, 2, 3]", 1);
        assert_non_null(strstr(
            json_string_value(json_object_get(json_array_get(errs, 0), "message")), "stopped"));
        json_decref(errs);
        phx_schema_free(s);
    }
}

struct phx_thread_arg {
    const phx_schema *s;
    json_t *good, *bad;
    int failures;
};

static void *phx_thread_main(void *p)
{
    struct phx_thread_arg *a = p;
    for (int i = 0; i < 2000; i++) {
        json_t *errs = NULL;
        if (phx_schema_validate(a->s, a->good, NULL) != 0 ||
            phx_schema_validate(a->s, a->bad, &errs) != 1 || json_array_size(errs) != 2)
            a->failures++;
        json_decref(errs);
    }
    return NULL;
}

/* One compiled schema shared by several threads (run under TSan to check for races). */
static void test_threads(void **state)
{
    (void)state;
    char err[512];
    json_error_t jerr;
    phx_schema *s =
        phx_compile("{\"properties\": {\"name\": {\"pattern\": \"^[a-z]+$\"},"
                    " \"tags\": {\"uniqueItems\": true}}, \"unevaluatedProperties\": false}",
                    err, sizeof(err));
    assert_non_null(s);
    json_t *good = json_loads("{\"name\": \"abc\", \"tags\": [1, 2]}", 0, &jerr);
    json_t *bad = json_loads("{\"name\": \"ABC\", \"tags\": [1, 1.0]}", 0, &jerr);
    pthread_t th[4];
    struct phx_thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct phx_thread_arg){s, good, bad, 0};
        assert_int_equal(pthread_create(&th[i], NULL, phx_thread_main, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    json_decref(good);
    json_decref(bad);
    phx_schema_free(s);
}

int main(void)
{
    static const struct CMUnitTest own[] = {
        cmocka_unit_test(test_bad_schemas),
        cmocka_unit_test(test_error_paths),
        cmocka_unit_test(test_numbers_and_patterns),
        cmocka_unit_test(test_fast_patterns),
        cmocka_unit_test(test_meta_schema),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_recursion_limit),
        cmocka_unit_test(test_threads),
    };
    enum { N_FILES = sizeof(phx_suite_files) / sizeof(phx_suite_files[0]) };
    struct CMUnitTest suite[N_FILES];
    size_t n_suite = 0;
    char dir[1024];
    phx_suite_dir(dir, sizeof(dir));
    if (access(dir, R_OK) != 0) {
        suite[n_suite++] =
            (struct CMUnitTest){"schema_suite", test_suite_missing, NULL, NULL, NULL};
    } else {
        for (size_t i = 0; i < N_FILES; i++)
            suite[n_suite++] = (struct CMUnitTest){phx_suite_files[i], test_suite_file, NULL, NULL,
                                                   (void *)phx_suite_files[i]};
    }
    int failed =
        _cmocka_run_group_tests("schema_own", own, sizeof(own) / sizeof(own[0]), NULL, NULL);
    failed += _cmocka_run_group_tests("schema_suite", suite, n_suite, NULL, NULL);
    return failed ? 1 : 0;
}
