/* admin.c -- `phx status` and `phx keys`: commands that read or write Redis directly.
 *
 * `phx keys` is the operator's side of API key lifecycle (create, list, revoke, rotate); the
 * ingress offers the same under /v1/admin/keys for principals with the admin scope. */
#include "apikey.h"
#include "cli.h"
#include "jobstore.h"
#include "rbac.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

phx_redis *phx_cli_redis(const phx_cli_env *env)
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

int phx_cli_job_args(int argc, char **argv, const char *flag, int *flag_set, int *timeout_s,
                     const char **id)
{
    /* Short forms too: -w / -j (the flag's first letter) and -t. */
    const struct option opts[] = {{flag, no_argument, NULL, flag[0]},
                                  {"timeout", required_argument, NULL, 't'},
                                  {NULL, 0, NULL, 0}};
    char shorts[4] = {flag[0], 't', ':', '\0'};
    int c;
    long t;
    optind = 1;
    while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
        if (c == flag[0])
            *flag_set = 1;
        else if (c != 't' || phx_parse_long(optarg, 1, 86400, &t) < 0)
            return -1;
        else
            *timeout_s = (int)t;
    }
    if (optind != argc - 1 || !phx_id_valid(argv[optind]))
        return -1;
    *id = argv[optind];
    return 0;
}

int phx_cli_status(const phx_cli_env *env, int argc, char **argv)
{
    int wait = 0, timeout_s = 60;
    const char *id;
    if (phx_cli_job_args(argc, argv, "wait", &wait, &timeout_s, &id) < 0) {
        fprintf(stderr, "usage: phx status JOB_ID [--wait] [--timeout S]\n");
        return PHX_EXIT_USAGE;
    }
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

/* --- phx keys ------------------------------------------------------------------------- */

static const char phx_keys_usage[] =
    "usage: phx keys create [--tenant T] [--principal P] [--roles R] [--expires-in S]\n"
    "       phx keys list [--tenant T]\n"
    "       phx keys revoke ID\n"
    "       phx keys rotate ID [--grace S]\n";

static int phx_keys_create(phx_redis *r, int argc, char **argv)
{
    static const struct option opts[] = {{"tenant", required_argument, NULL, 't'},
                                         {"principal", required_argument, NULL, 'p'},
                                         {"roles", required_argument, NULL, 'r'},
                                         {"expires-in", required_argument, NULL, 'e'},
                                         {NULL, 0, NULL, 0}};
    const char *tenant = "default", *principal = "cli", *roles = "admin";
    long expires_s = 0;
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "t:p:r:e:", opts, NULL)) != -1) {
        if (c == 't')
            tenant = optarg;
        else if (c == 'p')
            principal = optarg;
        else if (c == 'r')
            roles = optarg;
        else if (c == 'e' && phx_parse_long(optarg, 1, 100L * 365 * 86400, &expires_s) == 0)
            continue;
        else
            return PHX_EXIT_USAGE;
    }
    char bad[64];
    if (optind != argc || !phx_id_valid(tenant) || !phx_id_valid(principal)) {
        fprintf(stderr, "phx keys create: bad arguments (tenant and principal must match "
                        "[A-Za-z0-9._:-]{1,128})\n");
        return PHX_EXIT_USAGE;
    }
    if (phx_rbac_roles_valid(roles, bad, sizeof(bad)) < 0 || !*roles) {
        fprintf(stderr,
                "phx keys create: unknown role '%s' (roles: admin, submitter, developer, "
                "reader, or a scope such as jobs:read)\n",
                bad);
        return PHX_EXIT_USAGE;
    }
    char key[PHX_APIKEY_LEN + 1], id[17];
    if (phx_apikey_generate(key) < 0) {
        fprintf(stderr, "phx keys create: no randomness available\n");
        return PHX_EXIT_INFRA;
    }
    phx_err err;
    int64_t exp = expires_s ? phx_now_ms() + (int64_t)expires_s * 1000 : 0;
    if (phx_apikey_create(r, key, tenant, principal, roles, exp, &err) < 0) {
        fprintf(stderr, "phx keys create: %s\n", err.message);
        return PHX_EXIT_INFRA;
    }
    /* stdout carries only the secret (scripts capture it); the id goes to stderr. */
    phx_apikey_id(key, id);
    fprintf(stderr, "phx keys create: key id %s (tenant %s, principal %s, roles %s)\n", id, tenant,
            principal, roles);
    printf("%s\n", key);
    return PHX_EXIT_OK;
}

static int phx_keys_list(phx_redis *r, int argc, char **argv)
{
    const char *tenant = NULL;
    if (argc == 4 && strcmp(argv[2], "--tenant") == 0)
        tenant = argv[3];
    else if (argc != 2)
        return PHX_EXIT_USAGE;
    phx_err err;
    json_t *a = phx_apikey_list(r, tenant, phx_now_ms(), &err);
    if (!a) {
        fprintf(stderr, "phx keys list: %s\n", err.message);
        return PHX_EXIT_INFRA;
    }
    size_t i;
    json_t *k;
    json_array_foreach(a, i, k)
    {
        char *s = json_dumps(k, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
    }
    json_decref(a);
    return PHX_EXIT_OK;
}

/* revoke ID | rotate ID [--grace S] */
static int phx_keys_change(phx_redis *r, int argc, char **argv)
{
    int rotate = strcmp(argv[1], "rotate") == 0;
    long grace_s = rotate ? 0 : -1;
    if (rotate && argc == 5 && strcmp(argv[3], "--grace") == 0 &&
        phx_parse_long(argv[4], 0, 365L * 86400, &grace_s) == 0)
        argc = 3;
    if (argc != 3 || strlen(argv[2]) != 16)
        return PHX_EXIT_USAGE;
    phx_err err;
    phx_err_clear(&err);
    char key[PHX_APIKEY_LEN + 1];
    int rc = rotate ? phx_apikey_rotate(r, argv[2], NULL, phx_now_ms(), grace_s * 1000, key, &err)
                    : phx_apikey_revoke(r, argv[2], NULL, phx_now_ms(), &err);
    if (rc < 0) {
        fprintf(stderr, "phx keys %s: %s\n", argv[1], err.message);
        return PHX_EXIT_INFRA;
    }
    if (rc == 0) {
        fprintf(stderr, "phx keys %s: no active key %s\n", argv[1], argv[2]);
        return PHX_EXIT_FAILED;
    }
    if (rotate) {
        char id[17];
        phx_apikey_id(key, id);
        fprintf(stderr, "phx keys rotate: new key id %s; %s stops working in %ld s\n", id, argv[2],
                grace_s);
        printf("%s\n", key);
    }
    return PHX_EXIT_OK;
}

int phx_cli_keys(const phx_cli_env *env, int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : "";
    int (*fn)(phx_redis *, int, char **) = NULL;
    if (strcmp(sub, "create") == 0)
        fn = phx_keys_create;
    else if (strcmp(sub, "list") == 0)
        fn = phx_keys_list;
    else if (strcmp(sub, "revoke") == 0 || strcmp(sub, "rotate") == 0)
        fn = phx_keys_change;
    if (!fn) {
        fputs(phx_keys_usage, stderr);
        return PHX_EXIT_USAGE;
    }
    phx_redis *r = phx_cli_redis(env);
    if (!r)
        return PHX_EXIT_INFRA;
    int rc = fn(r, argc, argv);
    phx_redis_free(r);
    if (rc == PHX_EXIT_USAGE)
        fputs(phx_keys_usage, stderr);
    return rc;
}
