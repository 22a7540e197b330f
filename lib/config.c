/* config.c -- table-driven configuration (see config.h).
 *
 * The JSON file exists for deployments that prefer a mounted file to a long environment; it
 * uses the same names as the environment so there is one vocabulary in the docs. Unknown keys
 * in the file are an error: a typo in a config file must not silently fall back to a default. */
#include "config.h"
#include "trace.h"
#include "redact.h"
#include "seal.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Parse val as o's type into *num (INT: the value; BOOL: 1/0; STR: untouched). */
static int phx_config_parse(const phx_opt *o, const char *val, const char *src, long *num,
                            char *err, size_t errlen)
{
    if (o->type == PHX_OPT_STR)
        return 0;
    if (o->type == PHX_OPT_INT) {
        long v;
        if (phx_parse_long(val, LONG_MIN, LONG_MAX, &v) < 0) {
            snprintf(err, errlen, "%s=%s (from %s): not an integer", o->name, val, src);
            return -1;
        }
        if (v < o->min || v > o->max) {
            snprintf(err, errlen, "%s=%ld (from %s): out of range [%ld, %ld]", o->name, v, src,
                     o->min, o->max);
            return -1;
        }
        *num = v;
        return 0;
    }
    static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(val, yes[i]) == 0 || strcasecmp(val, no[i]) == 0) {
            *num = strcasecmp(val, yes[i]) == 0;
            return 0;
        }
    }
    snprintf(err, errlen, "%s=%s (from %s): not a boolean (true/false)", o->name, val, src);
    return -1;
}

static int phx_config_set(const phx_opt *o, void *cfg, const char *val, const char *src, char *err,
                          size_t errlen)
{
    char *base = cfg;
    long num = 0;
    if (phx_config_parse(o, val, src, &num, err, errlen) < 0)
        return -1;
    if (o->type == PHX_OPT_STR) {
        char **dst = (char **)(base + o->offset);
        free(*dst);
        *dst = phx_xstrdup(val);
    } else if (o->type == PHX_OPT_INT) {
        *(long *)(base + o->offset) = num;
    } else {
        *(int *)(base + o->offset) = (int)num;
    }
    return 0;
}

/* The checks of the shared options that go beyond their type (phx_common_apply and
 * phx_config_check_value both use them, so a config file is judged as the process would). */
static int phx_common_check(const char *name, const char *val, char *err, size_t errlen)
{
    enum phx_log_level lvl;
    if (strcmp(name, "PHX_LOG_LEVEL") == 0 && phx_log_level_parse(val, &lvl) < 0) {
        snprintf(err, errlen, "PHX_LOG_LEVEL=%s: must be debug, info, warn or error", val);
        return -1;
    }
    if (strcmp(name, "PHX_KAFKA_BROKERS") == 0 && !*val) {
        snprintf(err, errlen, "PHX_KAFKA_BROKERS is empty");
        return -1;
    }
    if (strcmp(name, "PHX_REDIS_URL") == 0 && strncmp(val, "redis://", 8) != 0 &&
        strncmp(val, "unix://", 7) != 0) {
        snprintf(err, errlen, "PHX_REDIS_URL=%s: must start with redis:// or unix://", val);
        return -1;
    }
    return 0;
}

int phx_config_check_value(const phx_opt *o, const char *val, const char *src, char *err,
                           size_t errlen)
{
    long num;
    if (phx_config_parse(o, val, src, &num, err, errlen) < 0)
        return -1;
    return phx_common_check(o->name, val, err, errlen);
}

void phx_config_options(FILE *out, const phx_opt *opts, size_t n)
{
    static const char *const types[] = {"str", "int", "bool"};
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s\t%s\t%ld\t%ld\t%s\t%s\n", opts[i].name, types[opts[i].type], opts[i].min,
                opts[i].max, opts[i].def ? "default" : "required", opts[i].def ? opts[i].def : "");
}

static const phx_opt *phx_config_find(const phx_opt *opts, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    return NULL;
}

const char *phx_config_json_text(const json_t *v, char buf[64])
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, 64, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    return NULL;
}

/* Apply PHX_CONFIG_FILE, if set. File values are text, numbers or booleans. */
static int phx_config_file(const phx_opt *opts, size_t n, void *cfg, char *err, size_t errlen)
{
    const char *path = getenv("PHX_CONFIG_FILE");
    if (!path || !*path)
        return 0;
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "PHX_CONFIG_FILE=%s: %s (line %d)", path, je.text, je.line);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "PHX_CONFIG_FILE=%s: must be a JSON object", path);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        const phx_opt *o = phx_config_find(opts, n, key);
        if (!o && strncmp(key, "PHX_KAFKA_CONF_", 15) != 0) {
            snprintf(err, errlen, "PHX_CONFIG_FILE=%s: unknown option %s", path, key);
            goto out;
        }
        char buf[64];
        const char *s = phx_config_json_text(v, buf);
        if (!s) {
            snprintf(err, errlen, "PHX_CONFIG_FILE=%s: %s must be a string, integer or boolean",
                     path, key);
            goto out;
        }
        /* librdkafka properties are read from the environment by phx_kafka_conf, for every
         * client the process makes; the file's become environment here, at start and before
         * any thread, without overriding the real environment (which wins, as for options). */
        if (!o) {
            if (setenv(key, s, 0) < 0) {
                snprintf(err, errlen, "PHX_CONFIG_FILE=%s: %s: %s", path, key, strerror(errno));
                goto out;
            }
            continue;
        }
        if (phx_config_set(o, cfg, s, "config file", err, errlen) < 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int phx_config_load(const phx_opt *opts, size_t n, void *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (opts[i].def && phx_config_set(&opts[i], cfg, opts[i].def, "default", err, errlen) < 0)
            return -1;
    }
    if (phx_config_file(opts, n, cfg, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *v = getenv(opts[i].name);
        if (v && phx_config_set(&opts[i], cfg, v, "environment", err, errlen) < 0)
            return -1;
        if (!v && !opts[i].def && opts[i].type == PHX_OPT_STR &&
            !*(char **)((char *)cfg + opts[i].offset)) {
            snprintf(err, errlen, "%s is required: %s", opts[i].name, opts[i].help);
            return -1;
        }
    }
    return 0;
}

void phx_config_free(const phx_opt *opts, size_t n, void *cfg)
{
    for (size_t i = 0; i < n; i++) {
        if (opts[i].type == PHX_OPT_STR) {
            char **p = (char **)((char *)cfg + opts[i].offset);
            free(*p);
            *p = NULL;
        }
    }
}

void phx_config_usage(FILE *out, const char *prog, const char *summary, const phx_opt *opts,
                      size_t n)
{
    fprintf(out,
            "usage: %s [--help]\n\n%s\n\nConfiguration (environment, or the same names in "
            "the JSON object of PHX_CONFIG_FILE):\n",
            prog, summary);
    for (size_t i = 0; i < n; i++) {
        const phx_opt *o = &opts[i];
        fprintf(out, "  %s", o->name);
        if (o->type == PHX_OPT_INT)
            fprintf(out, " (integer %ld..%ld)", o->min, o->max);
        else if (o->type == PHX_OPT_BOOL)
            fprintf(out, " (boolean)");
        if (o->def)
            fprintf(out, " [default: %s]", *o->def ? o->def : "empty");
        else
            fprintf(out, " [required]");
        fprintf(out, "\n      %s\n", o->help);
    }
    fprintf(out, "\nExit codes: 0 clean stop (SIGTERM/SIGINT), 1 runtime failure, 2 bad "
                 "configuration or usage.\n");
}

int phx_common_apply(const char *proc, const phx_common *c, char *err, size_t errlen)
{
    enum phx_log_level lvl;
    if (phx_common_check("PHX_LOG_LEVEL", c->log_level, err, errlen) < 0 ||
        phx_common_check("PHX_KAFKA_BROKERS", c->kafka_brokers, err, errlen) < 0 ||
        phx_common_check("PHX_REDIS_URL", c->redis_url, err, errlen) < 0)
        return -1;
    phx_log_level_parse(c->log_level, &lvl);
    phx_log_init(proc, lvl);
    return phx_trace_init(proc, c->otlp_endpoint, c->otlp_timeout_ms, c->otlp_queue_spans, err,
                          errlen);
}

/* Open a sealed secret file's content (consumed) with the key in PHX_SECRETS_KEY_FILE. */
static char *phx_config_unseal(const char *path, char *sealed, char *err, size_t errlen)
{
    const char *kf = getenv("PHX_SECRETS_KEY_FILE");
    unsigned char key[PHX_SEAL_KEY_LEN];
    phx_err e;
    char *plain = NULL;
    if (!kf || !*kf)
        snprintf(err, errlen, "secret file %s is sealed but PHX_SECRETS_KEY_FILE is not set", path);
    else if (phx_seal_key_load(kf, key, &e) < 0 || !(plain = phx_unseal(key, sealed, &e)))
        snprintf(err, errlen, "secret file %s: %s", path, e.message);
    memset(key, 0, sizeof(key));
    memset(sealed, 0, strlen(sealed));
    free(sealed);
    return plain;
}

char *phx_config_read_secret(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open secret file %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(65536);
    size_t n = buf ? fread(buf, 1, 65535, f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (n == 0) {
        snprintf(err, errlen, "secret file %s is empty", path);
        free(buf);
        return NULL;
    }
    if (strncmp(buf, PHX_SEAL_PREFIX, strlen(PHX_SEAL_PREFIX)) == 0 &&
        !(buf = phx_config_unseal(path, buf, err, errlen)))
        return NULL;
    phx_redact_add(buf); /* from now on this value never appears in a log line or result */
    return buf;
}

void phx_config_main(int argc, char **argv, const char *summary, const phx_opt *opts, size_t n,
                     void *cfg)
{
    const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            phx_config_usage(stdout, prog, summary, opts, n);
            exit(0);
        }
        if (strcmp(argv[i], "--options") == 0) {
            phx_config_options(stdout, opts, n);
            exit(0);
        }
        fprintf(stderr, "%s: unknown argument '%s' (configuration is by environment; see --help)\n",
                prog, argv[i]);
        exit(2);
    }
    char err[512];
    if (phx_config_load(opts, n, cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: configuration error: %s\n", prog, err);
        exit(2);
    }
}

void phx_config_start(int argc, char **argv, const char *proc, const char *summary,
                      const phx_opt *opts, size_t n, void *cfg, phx_common *common)
{
    phx_config_main(argc, argv, summary, opts, n, cfg);
    char err[512];
    if (phx_common_apply(proc, common, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: configuration error: %s\n", proc, err);
        phx_config_free(opts, n, cfg);
        exit(2);
    }
}
