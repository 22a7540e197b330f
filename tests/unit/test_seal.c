/* test_seal.c -- sealed secrets: round trip, tampering and wrong keys refused, and a sealed
 * *_FILE opened transparently by phx_config_read_secret (and registered for redaction). */
#include "../../lib/config.h"
#include "../../lib/redact.h"
#include "../../lib/seal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[] = "/tmp/phx-seal-test.XXXXXX";

static void write_file(const char *name, const char *text, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_round_trip_and_refusals(void **state)
{
    (void)state;
    char hex[65], kp[256];
    unsigned char key[32], other[32];
    assert_int_equal(phx_seal_keygen(hex), 0);
    write_file("k1", hex, kp, sizeof(kp));
    phx_err err;
    assert_int_equal(phx_seal_key_load(kp, key, &err), 0);
    char *s = phx_seal(key, "the-db-password", 15, &err);
    assert_non_null(s);
    assert_int_equal(strncmp(s, PHX_SEAL_PREFIX, strlen(PHX_SEAL_PREFIX)), 0);
    assert_null(strstr(s, "db-password"));
    char *p = phx_unseal(key, s, &err);
    assert_string_equal(p, "the-db-password");
    free(p);
    /* a flipped byte, a wrong key, a truncated text, no prefix: all refused */
    size_t at = strlen(PHX_SEAL_PREFIX) + 30;
    s[at] = s[at] == 'A' ? 'B' : 'A';
    assert_null(phx_unseal(key, s, &err));
    assert_string_equal(err.code, "bad_secret");
    s[at] = s[at] == 'A' ? 'B' : 'A';
    memcpy(other, key, 32);
    other[0] ^= 1;
    assert_null(phx_unseal(other, s, &err));
    s[strlen(PHX_SEAL_PREFIX) + 10] = '\0';
    assert_null(phx_unseal(key, s, &err));
    assert_null(phx_unseal(key, "the-db-password", &err));
    free(s);
    write_file("badkey", "abcd", kp, sizeof(kp));
    assert_int_equal(phx_seal_key_load(kp, key, &err), -1);
}

static void test_config_opens_sealed_files(void **state)
{
    (void)state;
    char hex[65], kp[256], sp[256], e[256];
    unsigned char key[32];
    phx_err err;
    assert_int_equal(phx_seal_keygen(hex), 0);
    write_file("k2", hex, kp, sizeof(kp));
    assert_int_equal(phx_seal_key_load(kp, key, &err), 0);
    char *s = phx_seal(key, "webhook-signing-secret", 22, &err);
    write_file("sealed", s, sp, sizeof(sp));
    free(s);
    unsetenv("PHX_SECRETS_KEY_FILE");
    assert_null(phx_config_read_secret(sp, e, sizeof(e)));
    assert_non_null(strstr(e, "PHX_SECRETS_KEY_FILE"));
    setenv("PHX_SECRETS_KEY_FILE", kp, 1);
    char *v = phx_config_read_secret(sp, e, sizeof(e));
    assert_non_null(v);
    assert_string_equal(v, "webhook-signing-secret");
    free(v);
    char *r = phx_redact_dup("echo webhook-signing-secret");
    assert_string_equal(r, "echo [REDACTED]");
    free(r);
    write_file("k3", "0000000000000000000000000000000000000000000000000000000000000000", kp,
               sizeof(kp));
    setenv("PHX_SECRETS_KEY_FILE", kp, 1);
    assert_null(phx_config_read_secret(sp, e, sizeof(e)));
    assert_non_null(strstr(e, "does not open"));
    unsetenv("PHX_SECRETS_KEY_FILE");
}

int main(void)
{
    assert_non_null(mkdtemp(dir));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_refusals),
        cmocka_unit_test(test_config_opens_sealed_files),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    rc |= system(cmd);
    phx_redact_clear();
    return rc;
}
