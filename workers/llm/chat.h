/* chat.h -- llm.chat: a chat completion on the provider chain, with personas, input and output
 * validation, JSON-schema answers and token budgets.
 *
 * input  {"messages": [{"role": "system"|"user"|"assistant", "content": str, "name"?}],
 *         "model"?, "persona"?, "max_tokens"?, "temperature"? (0..2),
 *         "response_format"? {"type": "text"} | {"type": "json_object"} |
 *                            {"type": "json_schema", "schema": {...}}   (also OpenAI's nested
 *                            {"type": "json_schema", "json_schema": {"name", "schema"}})}
 * output {"text", "json" (when a JSON answer was asked for and it parsed and validated),
 *         "model", "provider", "finish_reason", "usage": {"prompt_tokens",
 *         "completion_tokens"}, "attempts" (model calls, 2 when a schema repair was needed)}
 *
 * A json_schema answer that does not parse or validate is sent back to the model once with the
 * validation errors; a second failure is the non-retryable error invalid_output. */
#ifndef PHX_LLM_CHAT_H
#define PHX_LLM_CHAT_H

#include <jansson.h>

#include "err.h"
#include "llm.h"

typedef struct phx_llm_chat_req {
    json_t *messages; /* borrowed */
    const char *model;
    long max_tokens;
    double temperature;
    int has_temperature;
    json_t *response_format; /* as sent to the provider (borrowed), or NULL */
} phx_llm_chat_req;

typedef struct phx_llm_chat_res {
    char *text; /* malloc'd */
    char model[128], provider[64], finish[32];
    long prompt_tokens, completion_tokens;
    int calls;
} phx_llm_chat_res;

/* One budgeted model call: reserve, call the chain, settle, count tokens and cost. Usage is
 * added to res (so repeated calls accumulate); res->text is replaced. 0 or -1 with err. */
int phx_llm_chat_call(phx_llm_app *app, phx_llm_thread *t, const phx_llm_ctx *ctx,
                      const phx_llm_chat_req *req, phx_llm_chat_res *res, phx_err *err);
void phx_llm_chat_res_free(phx_llm_chat_res *res);

/* The JSON in a model's answer: the whole text, or the body of one ``` / ```json fence around
 * it. NULL with why when it does not parse. */
json_t *phx_llm_parse_answer(const char *text, char *why, size_t whylen);

/* The llm.chat step. */
json_t *phx_llm_chat_step(phx_llm_app *app, phx_llm_thread *t, const phx_llm_ctx *ctx,
                          const json_t *input, phx_err *err);

/* Check messages (roles, types, count and size limits); 0 or -1 with err invalid_input. */
int phx_llm_messages_check(const phx_llm_app *app, const json_t *messages, phx_err *err);
/* The largest max_tokens every provider serving model accepts (0 if none serves it). */
long phx_llm_max_tokens_limit(const phx_llm_app *app, const char *model);

#endif
