/* fuzz_schema.c -- libFuzzer target: the JSON Schema validator with a fuzzed schema *and* a
 * fuzzed instance. fuzz_envelope only feeds instances to Phoenix's own fixed schemas; here the
 * compiler itself is attacked too ($ref/$dynamicRef resolution and loops, $id/$anchor URIs,
 * the ECMA-262 -> POSIX pattern translation and the fast anchored matcher, formats, the
 * unevaluated* bookkeeping), because schemas are data Phoenix loads (policies, tool input
 * schemas) and a schema that hangs or crashes the validator takes a pool down with it.
 *
 * Input: SCHEMA NUL INSTANCE (both JSON). Without a NUL the text is the schema and the instance
 * at once (a schema validating itself reaches most keywords with matching types). The schema
 * is also added to a set beside a second member that refers to it by name, so the set's
 * pending-reference linking is exercised. A hang (libFuzzer's -timeout) is a finding like a
 * crash: patterns and recursive schemas must stay bounded. */
#include "schema.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t slen = nul ? (size_t)(nul - text) : size;
    json_error_t je;
    json_t *root = json_loadb(text, slen, JSON_DECODE_ANY, &je);
    if (!root)
        return 0;
    json_t *inst = nul ? json_loadb(nul + 1, size - slen - 1, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je)
                       : json_incref(root);
    char err[256];
    phx_schema *s = phx_schema_new(root, err, sizeof(err));
    if (s && inst) {
        json_t *errors = NULL;
        int rc = phx_schema_validate(s, inst, &errors);
        /* The contract: errors exactly when invalid, 1..PHX_SCHEMA_MAX_ERRORS of them. */
        if ((rc == 0) != (errors == NULL) ||
            (errors &&
             (json_array_size(errors) < 1 || json_array_size(errors) > PHX_SCHEMA_MAX_ERRORS)))
            __builtin_trap();
        json_decref(errors);
    }
    phx_schema_free(s);

    /* The same schema as a set member ("fz"), with a member added first that refers to it by
     * name before it exists. */
    phx_schema_set *set = phx_schema_set_new();
    json_t *ref = json_pack("{s:{s:s}}", "properties", "x", "$ref", "fz");
    if (set && ref && phx_schema_set_add(set, "user", ref, err, sizeof(err)) == 0 &&
        phx_schema_set_add(set, "fz", root, err, sizeof(err)) == 0 && inst &&
        phx_schema_set_check(set, err, sizeof(err)) == 0) {
        json_t *wrap = json_pack("{s:O}", "x", inst);
        json_t *errors = NULL;
        phx_schema_validate(phx_schema_set_get(set, "user"), wrap, &errors);
        json_decref(errors);
        json_decref(wrap);
    }
    json_decref(ref);
    phx_schema_set_free(set);
    json_decref(inst);
    json_decref(root);
    return 0;
}
