/* request.c -- the exec.run contract: validate the input, shape the output.
 *
 * Validation is strict (unknown fields are errors) because a typo such as "limit" instead of
 * "limits" would otherwise silently run with default limits. Every rejection is
 * invalid_input and not retryable: the same input would fail the same way. Limits a request
 * asks for above the pool's maximums are capped (the contract says "capped"), not rejected,
 * so a job written for a generous pool still runs on a strict one. */
#include "exec.h"
#include "util.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static int phx_exec_bad(phx_err *err, const char *fmt, const char *what)
{
    return phx_err_set(err, "invalid_input", 0, fmt, what);
}

/* A file name the supervisor can create without any path resolution surprises: no '/', no
 * leading '.', so never "." or ".." nor hidden files that could shadow the code file. */
static int phx_exec_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static const struct {
    const char *name;
    size_t off;
} phx_exec_limit_fields[] = {
    {"wall_ms", offsetof(phx_exec_limits, wall_ms)},
    {"cpu_ms", offsetof(phx_exec_limits, cpu_ms)},
    {"memory_mb", offsetof(phx_exec_limits, memory_mb)},
    {"pids", offsetof(phx_exec_limits, pids)},
    {"output_kb", offsetof(phx_exec_limits, output_kb)},
    {"disk_mb", offsetof(phx_exec_limits, disk_mb)},
};
#define PHX_EXEC_NLIMITS (sizeof(phx_exec_limit_fields) / sizeof(phx_exec_limit_fields[0]))

static long *phx_exec_limit_ref(phx_exec_limits *l, size_t i)
{
    return (long *)((char *)l + phx_exec_limit_fields[i].off);
}

static int phx_exec_parse_limits(const json_t *lims, const phx_exec_cfg *cfg, phx_exec_limits *out,
                                 phx_err *err)
{
    *out = cfg->def;
    if (!lims)
        return 0;
    if (!json_is_object(lims))
        return phx_exec_bad(err, "%s must be an object", "limits");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)lims, key, v)
    {
        size_t i;
        for (i = 0; i < PHX_EXEC_NLIMITS; i++)
            if (strcmp(key, phx_exec_limit_fields[i].name) == 0)
                break;
        if (i == PHX_EXEC_NLIMITS)
            return phx_exec_bad(err,
                                "unknown limit %s (wall_ms, cpu_ms, memory_mb, pids, "
                                "output_kb, disk_mb)",
                                key);
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return phx_exec_bad(err, "limits.%s must be a positive integer", key);
        json_int_t n = json_integer_value(v);
        long cap = *phx_exec_limit_ref((phx_exec_limits *)&cfg->max, i);
        *phx_exec_limit_ref(out, i) = n > cap ? cap : (long)n;
    }
    return 0;
}

static int phx_exec_parse_files(const json_t *files, const phx_exec_cfg *cfg, phx_exec_req *req,
                                phx_err *err)
{
    if (!files)
        return 0;
    if (!json_is_object(files))
        return phx_exec_bad(err, "%s must be an object of name -> content", "files");
    size_t total = 0;
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)files, name, v)
    {
        if (req->nfiles == PHX_EXEC_MAX_FILES)
            return phx_err_set(err, "invalid_input", 0, "more than %d files", PHX_EXEC_MAX_FILES);
        if (!phx_exec_name_ok(name))
            return phx_exec_bad(err,
                                "bad file name \"%.64s\": use 1-255 of [A-Za-z0-9._-], not "
                                "starting with '.'",
                                name);
        if (!json_is_string(v))
            return phx_exec_bad(err, "files.%.64s must be a string", name);
        size_t len = json_string_length(v);
        if (len > (size_t)cfg->max_code_kb * 1024)
            return phx_exec_bad(err, "files.%.64s is larger than the pool's maximum", name);
        total += len;
        req->files[req->nfiles++] = (phx_exec_file){name, json_string_value(v), len};
    }
    if (total > (size_t)req->lim.disk_mb * 1024 * 1024)
        return phx_exec_bad(err, "%s exceed limits.disk_mb", "files");
    return 0;
}

int phx_exec_req_parse(const json_t *input, const phx_exec_cfg *cfg, phx_exec_req *req,
                       phx_err *err)
{
    memset(req, 0, sizeof(*req));
    if (!json_is_object(input))
        return phx_exec_bad(err, "%s must be an object", "input");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)input, key, v)
    {
        if (strcmp(key, "lang") && strcmp(key, "code") && strcmp(key, "stdin") &&
            strcmp(key, "files") && strcmp(key, "limits"))
            return phx_exec_bad(err, "unknown field %.64s (lang, code, stdin, files, limits)", key);
    }
    const char *lang = json_string_value(json_object_get(input, "lang"));
    if (!lang)
        return phx_exec_bad(err, "%s is required: \"python\" or \"sh\"", "lang");
    if (strcmp(lang, "python") == 0)
        req->lang = PHX_EXEC_LANG_PYTHON;
    else if (strcmp(lang, "sh") == 0)
        req->lang = PHX_EXEC_LANG_SH;
    else
        return phx_exec_bad(err, "unsupported lang \"%.32s\": \"python\" or \"sh\"", lang);

    size_t max = (size_t)cfg->max_code_kb * 1024;
    json_t *code = json_object_get(input, "code");
    if (!json_is_string(code))
        return phx_exec_bad(err, "%s is required and must be a string", "code");
    req->code = json_string_value(code);
    req->code_len = json_string_length(code);
    /* The code is passed as one argv string (python -c, sh -c): no file to write, nothing in
     * /work to collide with the job's files. The kernel caps one argument at 128 KiB. */
    if (req->code_len > max || req->code_len >= 128 * 1024 || memchr(req->code, 0, req->code_len))
        return phx_exec_bad(err,
                            "%s is larger than 128 KiB (or the pool's maximum) or contains "
                            "NUL bytes; put large programs in files",
                            "code");

    json_t *in = json_object_get(input, "stdin");
    if (in && !json_is_string(in))
        return phx_exec_bad(err, "%s must be a string", "stdin");
    if (in) {
        req->stdin_data = json_string_value(in);
        req->stdin_len = json_string_length(in);
        if (req->stdin_len > max)
            return phx_exec_bad(err, "%s is larger than the pool's maximum", "stdin");
    }
    if (phx_exec_parse_limits(json_object_get(input, "limits"), cfg, &req->lim, err) < 0)
        return -1;
    return phx_exec_parse_files(json_object_get(input, "files"), cfg, req, err);
}

/* Output text as a JSON string: jansson needs valid UTF-8, programs print anything. NUL bytes
 * and invalid sequences (including one cut by truncation) become '?'. */
static json_t *phx_exec_text(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == 0)
            s[i] = '?';
    phx_utf8_scrub(s);
    return json_stringn(s, len);
}

json_t *phx_exec_result_json(const phx_exec_result *res)
{
    json_t *o = json_object();
    json_object_set_new(o, "exit_code", json_integer(res->exit_code));
    /* Signal names, not numbers: numbers differ between architectures. */
    if (res->signo) {
        char name[32];
        const char *abbrev = sigabbrev_np(res->signo);
        if (abbrev)
            snprintf(name, sizeof(name), "SIG%s", abbrev);
        else
            snprintf(name, sizeof(name), "SIG%d", res->signo);
        json_object_set_new(o, "signal", json_string(name));
    } else {
        json_object_set_new(o, "signal", json_null());
    }
    json_object_set_new(o, "stdout", phx_exec_text(res->out, res->out_len));
    json_object_set_new(o, "stderr", phx_exec_text(res->err, res->err_len));
    json_object_set_new(o, "timed_out", json_boolean(res->timed_out));
    if (res->cancelled)
        json_object_set_new(o, "cancelled", json_true());
    json_object_set_new(o, "oom_killed", json_boolean(res->oom_killed));
    json_object_set_new(o, "truncated", json_boolean(res->truncated));
    json_object_set_new(o, "duration_ms", json_integer(res->duration_ms));
    json_object_set_new(o, "cpu_ms", json_integer(res->cpu_ms));
    json_object_set_new(o, "max_rss_kb", json_integer(res->max_rss_kb));
    return o;
}

void phx_exec_result_free(phx_exec_result *res)
{
    free(res->out);
    free(res->err);
    res->out = res->err = NULL;
}
