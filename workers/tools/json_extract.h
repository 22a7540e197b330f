/* json_extract.h -- tool.json_extract: pick values out of a JSON document by JSON Pointer
 * (RFC 6901), so a job can feed one field of a tool's or model's output to the next step
 * without an LLM call or a template that only reaches object fields.
 *
 * input {"doc": any, "pointer": "/a/b/0"} -> {"value": ...}
 *   or  {"doc": any, "pointers": {"name": "/p", ...}} -> {"values": {"name": ...}}
 * "default": a value used for pointers that resolve to nothing (else the step fails with
 * not_found). Errors (never retryable): invalid_input (no doc, a pointer not starting with
 * "/", a bad ~ escape, more than 64 pointers), not_found. */
#ifndef PHX_JSON_EXTRACT_H
#define PHX_JSON_EXTRACT_H

#include "err.h"

#include <jansson.h>

/* Resolve pointer in doc: a borrowed reference, or NULL (err: invalid_input or not_found). */
json_t *phx_json_pointer(json_t *doc, const char *pointer, phx_err *err);
json_t *phx_json_extract_step(const json_t *input, phx_err *err);

#endif
