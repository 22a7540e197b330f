/* fuzz_template.c -- libFuzzer target: the template resolver (lib/dag.c) that substitutes
 * earlier steps' outputs into a later step's input ({{steps.ID.output.PATH}}), with both the
 * template and the outputs fuzzed. The template text comes from whoever submits a job (or
 * from a model, for planned jobs); the outputs from tools, web pages and models. Either side
 * may be hostile, and the planner renders every step, so a crash here is a crash of the
 * planner pool on a poison job.
 *
 * Input: TEMPLATE NUL OUTPUTS. TEMPLATE is a step's input when it parses as JSON, else it is
 * one string; OUTPUTS is the {step id: output} object when it parses as one, else the output
 * of step "a" as a string. Besides "no crash, no leak, no hang", it checks what dag.h
 * promises: a string without "{{" renders to itself; a whole-string template of a value that
 * exists renders to that value; what is substituted stays within one message's size; and
 * phx_dag_check runs on the graph built from the outputs' step ids. */
#include "dag.h"
#include "msg.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void fz_count_ref(const char *step_id, void *arg)
{
    (void)step_id;
    ++*(size_t *)arg;
}

/* Render v and check the promises that do not depend on the outputs. */
static void fz_render(const json_t *v, const json_t *outputs)
{
    phx_err err;
    json_t *out = phx_dag_render(v, outputs, &err);
    if (json_is_string(v) && !strstr(json_string_value(v), "{{") && !json_equal(out, v))
        __builtin_trap(); /* nothing to substitute: the string must come back unchanged */
    /* Substitution is bounded: one message of text on top of the template (which JSON
     * escaping may grow up to sixfold). */
    const size_t fl = JSON_COMPACT | JSON_ENCODE_ANY;
    if (out && json_dumpb(out, NULL, 0, fl) > json_dumpb(v, NULL, 0, fl) + 6 * PHX_MSG_MAX_BYTES)
        __builtin_trap();
    json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t tlen = nul ? (size_t)(nul - text) : size;
    json_error_t je;
    json_t *input = json_loadb(text, tlen, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!input)
        input = json_stringn(text, tlen);
    json_t *outputs = nul ? json_loadb(nul + 1, size - tlen - 1, JSON_ALLOW_NUL, &je) : NULL;
    if (!json_is_object(outputs)) {
        json_decref(outputs);
        outputs = json_pack("{s:s%}", "a", nul ? nul + 1 : "", nul ? size - tlen - 1 : 0);
    }
    if (!input || !outputs)
        goto out;

    fz_render(input, outputs);
    /* Every string of the input on its own too (the renderer's string path). */
    if (json_is_object(input)) {
        const char *k;
        json_t *x;
        json_object_foreach(input, k, x) fz_render(x, outputs);
    }

    /* A whole-string template of an output that exists renders to exactly that output. */
    const char *k;
    json_t *x;
    json_object_foreach(outputs, k, x)
    {
        if (strlen(k) == 0 || strlen(k) > 64 || strpbrk(k, ".{} ") ||
            json_object_get(outputs, k) != x)
            continue;
        char tpl[128];
        snprintf(tpl, sizeof(tpl), "{{steps.%s.output}}", k);
        json_t *t = json_string(tpl);
        phx_err err;
        json_t *r = phx_dag_render(t, outputs, &err);
        if (!r || !json_equal(r, x))
            __builtin_trap();
        json_decref(r);
        json_decref(t);
    }

    /* The step graph: one step per output (ids as they are, valid or not) and a last step
     * "z" with the fuzzed input that needs them all. */
    json_t *steps = json_array(), *needs = json_array();
    json_object_foreach(outputs, k, x)
    {
        json_array_append_new(steps,
                              json_pack("{s:s, s:s, s:{}}", "id", k, "kind", "tool.calc", "input"));
        json_array_append_new(needs, json_string(k));
    }
    json_t *z = json_pack("{s:s, s:s, s:o, s:O}", "id", "z", "kind", "tool.calc", "needs", needs,
                          "input", input);
    json_array_append_new(steps, z);
    json_t *reasons = NULL;
    int rc = phx_dag_check(steps, &reasons);
    if ((rc == 0) != (reasons == NULL))
        __builtin_trap();
    json_decref(reasons);
    size_t nrefs = 0;
    phx_dag_ref_steps(input, fz_count_ref, &nrefs);
    phx_err err;
    json_decref(phx_dag_render_step(z, outputs, &err));
    json_decref(steps);
out:
    json_decref(input);
    json_decref(outputs);
    return 0;
}
