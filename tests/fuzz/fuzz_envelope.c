/* fuzz_envelope.c -- libFuzzer target: a consumed Kafka message body, as every consumer sees
 * it. phx_msg_parse (size limit, JSON, object), then the schema validator against every
 * message schema (the validator walks attacker-shaped documents), then the DAG checks and the
 * template renderer the planner runs on a job's steps. Any crash, leak, hang or sanitizer
 * report is a bug: this input comes from whoever can write to a topic. */
#include "dag.h"
#include "msg.h"
#include "fuzz_schemas.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"job.v1",   "task.v1",  "result.v1",
                                        "reply.v1", "event.v1", "dlq.v1"};
    char reason[256];
    json_t *msg = phx_msg_parse(data, size, reason, sizeof(reason));
    if (!msg)
        return 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_t *errors = NULL;
        phx_schema_validate(phx_schema_set_get(fz_schemas, names[i]), msg, &errors);
        json_decref(errors);
    }
    json_t *steps = json_object_get(msg, "steps");
    if (json_is_array(steps)) {
        json_t *reasons = NULL;
        phx_dag_check(steps, &reasons);
        json_decref(reasons);
        size_t i;
        json_t *st;
        json_array_foreach(steps, i, st)
        {
            phx_err err;
            json_t *out =
                phx_dag_render(json_object_get(st, "input"), json_object_get(msg, "outputs"), &err);
            json_decref(out);
        }
    }
    json_decref(msg);
    return 0;
}
