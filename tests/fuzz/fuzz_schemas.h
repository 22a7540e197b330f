/* fuzz_schemas.h -- the message schemas for the libFuzzer targets that validate documents
 * (fuzz_envelope, fuzz_http): loaded once per fuzzer process by LLVMFuzzerInitialize, so each
 * input pays only for validation. Header-only on purpose: every target is its own program
 * with its own LLVMFuzzerInitialize, and this is the whole of it for these two. */
#ifndef PHX_FUZZ_SCHEMAS_H
#define PHX_FUZZ_SCHEMAS_H

#include "schema.h"

static phx_schema_set *fz_schemas;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    phx_err err;
    fz_schemas = phx_schemas_load(NULL, &err);
    return fz_schemas ? 0 : 1;
}

#endif
