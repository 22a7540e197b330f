/* seal.c -- sealed secrets (see seal.h). */
#include "seal.h"
#include "msg.h"
#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int phx_seal_init(phx_err *err)
{
    if (sodium_init() < 0) {
        phx_err_set(err, "internal", 0, "libsodium failed to initialise");
        return -1;
    }
    return 0;
}

int phx_seal_key_load(const char *path, unsigned char key[PHX_SEAL_KEY_LEN], phx_err *err)
{
    char buf[256];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    if (!f) {
        phx_err_set(err, "bad_config", 0, "cannot open key file %s", path);
        return -1;
    }
    buf[n] = '\0';
    size_t bin = 0;
    const char *end = NULL;
    if (sodium_hex2bin(key, PHX_SEAL_KEY_LEN, buf, n, " \t\r\n", &bin, &end) != 0 ||
        bin != PHX_SEAL_KEY_LEN || strspn(end, " \t\r\n") != strlen(end)) {
        sodium_memzero(buf, sizeof(buf));
        phx_err_set(err, "bad_config", 0, "key file %s: want 64 hex digits", path);
        return -1;
    }
    sodium_memzero(buf, sizeof(buf));
    return 0;
}

int phx_seal_keygen(char hex[2 * PHX_SEAL_KEY_LEN + 1])
{
    unsigned char k[PHX_SEAL_KEY_LEN];
    if (sodium_init() < 0)
        return -1;
    crypto_secretbox_keygen(k);
    sodium_bin2hex(hex, 2 * PHX_SEAL_KEY_LEN + 1, k, sizeof(k));
    sodium_memzero(k, sizeof(k));
    return 0;
}

char *phx_seal(const unsigned char key[PHX_SEAL_KEY_LEN], const void *plain, size_t n, phx_err *err)
{
    if (phx_seal_init(err) < 0)
        return NULL;
    size_t len = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + n;
    unsigned char *box = phx_xmalloc(len);
    randombytes_buf(box, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, plain, n, box, key);
    char *b64 = phx_base64_encode(box, len);
    free(box);
    char *out = phx_xmalloc(strlen(PHX_SEAL_PREFIX) + strlen(b64) + 1);
    sprintf(out, "%s%s", PHX_SEAL_PREFIX, b64);
    free(b64);
    return out;
}

char *phx_unseal(const unsigned char key[PHX_SEAL_KEY_LEN], const char *sealed, phx_err *err)
{
    if (phx_seal_init(err) < 0)
        return NULL;
    size_t pl = strlen(PHX_SEAL_PREFIX), len = 0;
    unsigned char *box =
        strncmp(sealed, PHX_SEAL_PREFIX, pl) == 0 ? phx_base64_decode(sealed + pl, &len) : NULL;
    size_t over = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES;
    char *plain = NULL;
    if (box && len >= over) {
        plain = phx_xmalloc(len - over + 1);
        if (crypto_secretbox_open_easy((unsigned char *)plain, box + crypto_secretbox_NONCEBYTES,
                                       len - crypto_secretbox_NONCEBYTES, box, key) != 0) {
            free(plain);
            plain = NULL;
        } else {
            plain[len - over] = '\0';
        }
    }
    free(box);
    if (!plain)
        phx_err_set(err, "bad_secret", 0, "sealed secret does not open: wrong key or damaged");
    return plain;
}
