/* fuzz_jwt.c -- libFuzzer target: the bearer credential of an HTTP request, as phx-ingress
 * verifies it (producers/ingress/jwt.c: split, base64url, header and claims JSON, the alg/kid
 * rules, then libjwt). An HS256 key and an RS256-labelled kid are configured so both the
 * "known kid" and "unknown kid" paths are reached. */
#include "../../producers/ingress/jwt.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static phx_jwt_verifier *fz_v;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char dir[] = "/tmp/phx-fuzz-jwt.XXXXXX", path[256], keys[256], err[256];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof(path), "%s/hs", dir);
    FILE *f = fopen(path, "w");
    fputs("0123456789abcdef0123456789abcdef-fuzz", f);
    fclose(f);
    snprintf(keys, sizeof(keys), "%s/keys.json", dir);
    f = fopen(keys, "w");
    fprintf(f, "{\"keys\": [{\"kid\": \"k1\", \"alg\": \"HS256\", \"secret_file\": \"%s\"}]}",
            path);
    fclose(f);
    fz_v = phx_jwt_verifier_new(keys, "", "", 30, err, sizeof(err));
    unlink(path);
    unlink(keys);
    rmdir(dir);
    if (!fz_v)
        fprintf(stderr, "fuzz_jwt: %s\n", err);
    return fz_v ? 0 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *tok = malloc(size + 1);
    memcpy(tok, data, size);
    tok[size] = 0;
    phx_jwt_claims c = {0};
    char why[256];
    if (phx_jwt_looks_like(tok) && phx_jwt_verify(fz_v, tok, 1700000000, &c, why, sizeof(why)) == 0)
        phx_jwt_claims_clear(&c);
    free(tok);
    return 0;
}
