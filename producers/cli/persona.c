/* persona.c -- `phx persona set|get|list|delete`: the LLM pool's personas in Redis.
 *
 * Personas live in the hash phx:llm:personas (NAME -> persona JSON); phx-llm reads it on every
 * call, so a change applies to the next call on every replica. A persona is checked against
 * schemas/llm-persona.v1.json here, before it is stored: a bad one is refused at the door,
 * never discovered by a job. */
#include "cli.h"
#include "msg.h"
#include "redis.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHX_PERSONAS_KEY "phx:llm:personas"

/* Read and validate the persona in path; compact JSON (malloc'd) or NULL (reported). */
static char *phx_persona_load(const char *path)
{
    json_error_t je;
    json_t *p = strcmp(path, "-") == 0 ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &je)
                                       : json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!p) {
        fprintf(stderr, "phx persona: %s: %s (line %d)\n", path, je.text, je.line);
        return NULL;
    }
    phx_err err;
    phx_schema_set *set = phx_schemas_load(NULL, &err);
    const phx_schema *s = set ? phx_schema_set_get(set, "llm-persona.v1") : NULL;
    json_t *errors = NULL;
    char *text = NULL;
    if (!s) {
        fprintf(stderr, "phx persona: schema llm-persona.v1 unavailable\n");
    } else if (phx_schema_validate(s, p, &errors) != 0) {
        char *e = json_dumps(errors, JSON_INDENT(2));
        fprintf(stderr, "phx persona: %s does not match llm-persona.v1:\n%s\n", path, e);
        free(e);
    } else {
        text = json_dumps(p, JSON_COMPACT);
    }
    json_decref(errors);
    phx_schema_set_free(set);
    json_decref(p);
    return text;
}

static int phx_persona_usage(void)
{
    fprintf(stderr, "usage: phx persona set NAME [--file] FILE|-\n"
                    "       phx persona get NAME\n"
                    "       phx persona list\n"
                    "       phx persona delete NAME\n");
    return PHX_EXIT_USAGE;
}

int phx_cli_persona(const phx_cli_env *env, int argc, char **argv)
{
    if (argc < 2)
        return phx_persona_usage();
    const char *cmd = argv[1], *name = argc > 2 ? argv[2] : NULL;
    /* `set NAME FILE` and `set NAME --file FILE` are the same command. */
    if (strcmp(cmd, "set") == 0 && argc == 5 && strcmp(argv[3], "--file") == 0) {
        argv[3] = argv[4];
        argc = 4;
    }
    int set = strcmp(cmd, "set") == 0 && argc == 4, list = strcmp(cmd, "list") == 0 && argc == 2;
    int get = strcmp(cmd, "get") == 0 && argc == 3, del = strcmp(cmd, "delete") == 0 && argc == 3;
    if (!(set || list || get || del))
        return phx_persona_usage();
    if (name && !phx_name_valid(name)) {
        fprintf(stderr, "phx persona: name must match [A-Za-z0-9._-]{1,64}\n");
        return PHX_EXIT_USAGE;
    }
    char *text = set ? phx_persona_load(argv[3]) : NULL;
    if (set && !text)
        return PHX_EXIT_USAGE;
    phx_err err;
    phx_err_clear(&err);
    phx_redis *r = phx_redis_new(env->redis_url, getenv("PHX_REDIS_PASSWORD_FILE"), 5000, &err);
    redisReply *rep = NULL;
    int rc = PHX_EXIT_INFRA;
    if (!r)
        goto out;
    if (set)
        rep = phx_redis_cmd(r, &err, "HSET %s %s %s", PHX_PERSONAS_KEY, name, text);
    else if (get)
        rep = phx_redis_cmd(r, &err, "HGET %s %s", PHX_PERSONAS_KEY, name);
    else if (list)
        rep = phx_redis_cmd(r, &err, "HKEYS %s", PHX_PERSONAS_KEY);
    else
        rep = phx_redis_cmd(r, &err, "HDEL %s %s", PHX_PERSONAS_KEY, name);
    if (!rep)
        goto out;
    rc = PHX_EXIT_OK;
    if (get && rep->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "phx persona: no persona %s\n", name);
        rc = PHX_EXIT_FAILED;
    } else if (get) {
        printf("%s\n", rep->str);
    } else if (list) {
        for (size_t i = 0; i < rep->elements; i++)
            printf("%s\n", rep->element[i]->str);
    } else if (del && rep->integer == 0) {
        fprintf(stderr, "phx persona: no persona %s\n", name);
        rc = PHX_EXIT_FAILED;
    }
out:
    if (rc == PHX_EXIT_INFRA)
        fprintf(stderr, "phx persona: %s\n", err.message);
    if (rep)
        freeReplyObject(rep);
    phx_redis_free(r);
    free(text);
    return rc;
}
