/* admin.c -- `phx status` and `phx keys`: commands that read or write Redis directly. */
#include "cli.h"
#include "jobstore.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static phx_redis *phx_cli_redis(const phx_cli_env *env)
{
    phx_err err;
    phx_redis *r = phx_redis_new(env->redis_url, getenv("PHX_REDIS_PASSWORD_FILE"), 5000, &err);
    if (!r)
        fprintf(stderr, "phx: %s\n", err.message);
    return r;
}

static int phx_cli_final(const char *state)
{
    return state && (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
                     strcmp(state, "rejected") == 0 || strcmp(state, "cancelled") == 0);
}

int phx_cli_status(const phx_cli_env *env, int argc, char **argv)
{
    static const struct option opts[] = {{"wait", no_argument, NULL, 'w'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {NULL, 0, NULL, 0}};
    int wait = 0, timeout_s = 60, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "wt:", opts, NULL)) != -1) {
        if (c == 'w') {
            wait = 1;
        } else if (c == 't' && (timeout_s = atoi(optarg)) > 0) {
            continue;
        } else {
            optind = -1;
            break;
        }
    }
    if (optind != argc - 1 || !phx_id_valid(argv[optind])) {
        fprintf(stderr, "usage: phx status JOB_ID [--wait] [--timeout S]\n");
        return PHX_EXIT_USAGE;
    }
    const char *id = argv[optind];
    phx_redis *r = phx_cli_redis(env);
    if (!r)
        return PHX_EXIT_USAGE;
    phx_err err;
    phx_err_clear(&err);
    json_t *view = NULL;
    int64_t deadline = phx_mono_ms() + (int64_t)timeout_s * 1000;
    /* --wait polls: the state is in Redis, and polling every 100 ms costs one HGETALL. */
    for (;;) {
        view = phx_jobstore_view(r, id, &err);
        const char *state = json_string_value(json_object_get(view, "state"));
        if (!wait || phx_cli_final(state) || (!view && strcmp(err.code, "not_found") != 0))
            break;
        if (phx_mono_ms() > deadline) {
            fprintf(stderr, "phx status: job %s not finished within %d s\n", id, timeout_s);
            json_decref(view);
            phx_redis_free(r);
            return PHX_EXIT_TIMEOUT;
        }
        json_decref(view);
        phx_sleep_ms(100);
    }
    phx_redis_free(r);
    if (!view) {
        fprintf(stderr, "phx status: %s\n", err.message);
        return strcmp(err.code, "not_found") == 0 ? PHX_EXIT_FAILED : PHX_EXIT_INFRA;
    }
    char *s = json_dumps(view, JSON_INDENT(2));
    printf("%s\n", s);
    free(s);
    const char *state = json_string_value(json_object_get(view, "state"));
    int rc = !wait || strcmp(state ? state : "", "succeeded") == 0 ? PHX_EXIT_OK : PHX_EXIT_FAILED;
    json_decref(view);
    return rc;
}

int phx_cli_keys(const phx_cli_env *env, int argc, char **argv)
{
    static const struct option opts[] = {{"tenant", required_argument, NULL, 't'},
                                         {"principal", required_argument, NULL, 'p'},
                                         {"roles", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    const char *tenant = "default", *principal = "cli", *roles = "admin";
    if (argc < 2 || strcmp(argv[1], "create") != 0) {
        fprintf(stderr, "usage: phx keys create [--tenant T] [--principal P] [--roles R]\n");
        return PHX_EXIT_USAGE;
    }
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "t:p:r:", opts, NULL)) != -1) {
        if (c == 't')
            tenant = optarg;
        else if (c == 'p')
            principal = optarg;
        else if (c == 'r')
            roles = optarg;
        else
            return PHX_EXIT_USAGE;
    }
    if (optind != argc || !phx_id_valid(tenant) || !*principal) {
        fprintf(stderr,
                "phx keys create: bad arguments (tenant must match [A-Za-z0-9._:-]{1,128})\n");
        return PHX_EXIT_USAGE;
    }
    unsigned char raw[24];
    if (phx_random_bytes(raw, sizeof(raw)) < 0) {
        fprintf(stderr, "phx keys create: no randomness available\n");
        return PHX_EXIT_INFRA;
    }
    /* "phx_" + 48 hex: recognisable in a leaked log or a secret scanner's rules. */
    char key[4 + 48 + 1] = "phx_";
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(key + 4 + 2 * i, 3, "%02x", raw[i]);
    phx_redis *r = phx_cli_redis(env);
    if (!r)
        return PHX_EXIT_USAGE;
    phx_err err;
    int rc = phx_apikey_store(r, key, tenant, principal, roles, &err);
    phx_redis_free(r);
    if (rc < 0) {
        fprintf(stderr, "phx keys create: %s\n", err.message);
        return PHX_EXIT_INFRA;
    }
    printf("%s\n", key);
    return PHX_EXIT_OK;
}
