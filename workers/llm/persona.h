/* persona.h -- personas: a named system prompt plus defaults (model, temperature, max_tokens).
 *
 * Personas live in Redis, hash phx:llm:personas (field = name, value = JSON satisfying schema
 * llm-persona.v1), so an operator changes one with `phx persona set NAME --file F` and every
 * replica uses the new text on its next call. There is deliberately no cache: one HGET costs
 * ~0.1 ms next to an LLM call of hundreds of ms, and reading on every call is what makes a
 * change visible immediately ("within a second") on every worker without a restart or an
 * invalidation protocol. */
#ifndef PHX_LLM_PERSONA_H
#define PHX_LLM_PERSONA_H

#include <jansson.h>

#include "err.h"
#include "redis.h"
#include "schema.h"

#define PHX_LLM_PERSONAS_KEY "phx:llm:personas"

/* 1 if name is a valid persona name: 1..64 of [A-Za-z0-9._-]. */
int phx_llm_persona_name_ok(const char *name);
/* The persona called name (new reference), checked against schema (may be NULL), or NULL with
 * err: unknown_persona / invalid_persona (not retryable) or a Redis error (retryable). */
json_t *phx_llm_persona_get(phx_redis *r, const phx_schema *schema, const char *name, phx_err *err);

#endif
