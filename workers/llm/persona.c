/* persona.c -- personas read from Redis (see persona.h). */
#include "persona.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int phx_llm_persona_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > 64)
        return 0;
    for (; *name; name++)
        if (!isalnum((unsigned char)*name) && !strchr("._-", *name))
            return 0;
    return 1;
}

json_t *phx_llm_persona_get(phx_redis *r, const phx_schema *schema, const char *name, phx_err *err)
{
    if (!phx_llm_persona_name_ok(name)) {
        phx_err_set(err, "invalid_input", 0, "persona name must be 1-64 of [A-Za-z0-9._-]");
        return NULL;
    }
    redisReply *rep = phx_redis_cmd(r, err, "HGET %s %s", PHX_LLM_PERSONAS_KEY, name);
    if (!rep)
        return NULL;
    json_t *p = NULL, *errors = NULL;
    if (rep->type != REDIS_REPLY_STRING) {
        phx_err_set(err, "unknown_persona", 0, "no persona named %s (phx persona set %s --file F)",
                    name, name);
        goto out;
    }
    json_error_t je;
    p = json_loadb(rep->str, rep->len, JSON_REJECT_DUPLICATES, &je);
    if (!p || (schema && phx_schema_validate(schema, p, &errors) != 0)) {
        char *e = errors ? json_dumps(errors, JSON_COMPACT) : NULL;
        phx_err_set(err, "invalid_persona", 0, "persona %s in Redis is not valid: %.300s", name,
                    p ? (e ? e : "fails llm-persona.v1") : je.text);
        free(e);
        json_decref(p);
        p = NULL;
    }
out:
    json_decref(errors);
    freeReplyObject(rep);
    return p;
}
