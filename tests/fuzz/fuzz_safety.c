/* fuzz_safety.c -- libFuzzer target: a text scanned by safety.scan, the pool's whole path
 * (normaliser with ICU folding, the decoders and their nesting, every detector) under the
 * default policy, for each role; plus the normaliser and decoders on their own, whose offset
 * maps are the fiddly part. The text is whatever a model, a web page or a user wrote. */
#include "../../workers/safety/decode.h"
#include "../../workers/safety/inject.h"
#include "../../workers/safety/normalize.h"
#include "../../workers/safety/policy.h"
#include "../../workers/safety/scan.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

static phx_safety_policy *fz_pol;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char err[256];
    phx_err e;
    if (phx_safety_inject_init(err, sizeof(err)) < 0) {
        fprintf(stderr, "fuzz_safety: %s\n", err);
        return 1;
    }
    fz_pol = phx_safety_policy_new(NULL, NULL, &e);
    if (fz_pol)
        fz_pol->resolve_urls = 0; /* no DNS from a fuzzer */
    return fz_pol ? 0 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    phx_safety_norm n;
    if (phx_safety_normalize(text, size, &n) == 0)
        phx_safety_norm_free(&n);
    phx_safety_segments segs = {0}; /* decode appends */
    if (phx_safety_decode(text, size, 3, 256 * 1024, &segs) == 0)
        phx_safety_segments_free(&segs);
    /* The role comes from the first byte, so every role's path is reached. */
    phx_safety_role role = (phx_safety_role)(size ? data[0] % 6 : 0);
    phx_safety_result r;
    phx_err e;
    if (phx_safety_scan(fz_pol, role, text, size, &r, &e) == 0) {
        json_decref(phx_safety_result_json(&r, fz_pol, role));
        phx_safety_result_free(&r);
    }
    return 0;
}
