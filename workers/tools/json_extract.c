/* json_extract.c -- tool.json_extract (see json_extract.h). */
#include "json_extract.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define PHX_JX_MAX_POINTERS 64

/* Unescape one reference token (~1 -> /, ~0 -> ~) into out; -1 on a bad escape. */
static int phx_jx_token(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '~') {
            out[o++] = s[i];
            continue;
        }
        if (i + 1 >= n || (s[i + 1] != '0' && s[i + 1] != '1'))
            return -1;
        out[o++] = s[++i] == '0' ? '~' : '/';
    }
    out[o] = '\0';
    return 0;
}

/* An array index per RFC 6901: "0" or no leading zero; -1 otherwise ("-" included). */
static long phx_jx_index(const char *t)
{
    if (!*t || (t[0] == '0' && t[1]) || strlen(t) > 9)
        return -1;
    for (const char *p = t; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    return strtol(t, NULL, 10);
}

json_t *phx_json_pointer(json_t *doc, const char *pointer, phx_err *err)
{
    if (*pointer && *pointer != '/') {
        phx_err_set(err, "invalid_input", 0, "pointer %.80s must be empty or start with /",
                    pointer);
        return NULL;
    }
    json_t *cur = doc;
    char *tok = phx_xmalloc(strlen(pointer) + 1);
    const char *p = pointer;
    while (*p) {
        const char *s = p + 1, *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (phx_jx_token(s, n, tok) < 0) {
            phx_err_set(err, "invalid_input", 0, "pointer %.80s: bad ~ escape", pointer);
            cur = NULL;
            break;
        }
        long i;
        if (json_is_object(cur))
            cur = json_object_get(cur, tok);
        else if (json_is_array(cur) && (i = phx_jx_index(tok)) >= 0)
            cur = json_array_get(cur, (size_t)i);
        else
            cur = NULL;
        if (!cur) {
            phx_err_set(err, "not_found", 0, "pointer %.80s resolves to nothing", pointer);
            break;
        }
        p = s + n;
    }
    free(tok);
    return cur;
}

/* One pointer, with the default when it resolves to nothing. New reference or NULL. */
static json_t *phx_jx_one(json_t *doc, const json_t *ptr, json_t *def, phx_err *err)
{
    if (!json_is_string(ptr)) {
        phx_err_set(err, "invalid_input", 0, "a pointer must be a string");
        return NULL;
    }
    phx_err e;
    phx_err_clear(&e);
    json_t *v = phx_json_pointer(doc, json_string_value(ptr), &e);
    if (v)
        return json_incref(v);
    if (def && strcmp(e.code, "not_found") == 0)
        return json_incref(def);
    *err = e;
    return NULL;
}

json_t *phx_json_extract_step(const json_t *input, phx_err *err)
{
    json_t *doc = json_object_get(input, "doc"), *def = json_object_get(input, "default");
    const json_t *one = json_object_get(input, "pointer"),
                 *many = json_object_get(input, "pointers");
    if (!doc || (!one == !many) || (many && !json_is_object(many))) {
        phx_err_set(err, "invalid_input", 0,
                    "input needs doc and exactly one of pointer (string) or pointers (object)");
        return NULL;
    }
    if (one) {
        json_t *v = phx_jx_one(doc, one, def, err);
        return v ? json_pack("{s:o}", "value", v) : NULL;
    }
    if (json_object_size(many) > PHX_JX_MAX_POINTERS) {
        phx_err_set(err, "invalid_input", 0, "at most %d pointers", PHX_JX_MAX_POINTERS);
        return NULL;
    }
    json_t *values = json_object();
    const char *name;
    json_t *ptr;
    json_object_foreach((json_t *)many, name, ptr)
    {
        json_t *v = phx_jx_one(doc, ptr, def, err);
        if (!v) {
            char m[sizeof(err->message)];
            snprintf(m, sizeof(m), "%s: %s", name, err->message);
            snprintf(err->message, sizeof(err->message), "%s", m);
            json_decref(values);
            return NULL;
        }
        json_object_set_new(values, name, v);
    }
    return json_pack("{s:o}", "values", values);
}
