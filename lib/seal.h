/* seal.h -- secrets encrypted at rest (libsodium secretbox: XSalsa20-Poly1305).
 *
 * A sealed secret file holds one line "phx-sealed:v1:" + base64(nonce || ciphertext). Any
 * secret file may be sealed: phx_config_read_secret recognises the prefix and opens it with
 * the key in PHX_SECRETS_KEY_FILE (64 hex digits), so a copied secret file, backup or image
 * layer is useless without the key file, which is mounted separately. `phx secrets keygen`
 * makes a key, `phx secrets seal` a sealed file. Tampering or a wrong key is an error, never
 * garbage. */
#ifndef PHX_SEAL_H
#define PHX_SEAL_H

#include <stddef.h>

#include "err.h"

#define PHX_SEAL_PREFIX  "phx-sealed:v1:"
#define PHX_SEAL_KEY_LEN 32

/* Load a key file of 64 hex digits (whitespace around it allowed). */
int phx_seal_key_load(const char *path, unsigned char key[PHX_SEAL_KEY_LEN], phx_err *err);
/* A new random key as 64 hex digits + NUL. */
int phx_seal_keygen(char hex[2 * PHX_SEAL_KEY_LEN + 1]);
/* Seal n bytes: a malloc'd "phx-sealed:v1:..." string, or NULL with err. */
char *phx_seal(const unsigned char key[PHX_SEAL_KEY_LEN], const void *plain, size_t n,
               phx_err *err);
/* Open a sealed string: malloc'd NUL-terminated plaintext, or NULL with err ("bad_secret"). */
char *phx_unseal(const unsigned char key[PHX_SEAL_KEY_LEN], const char *sealed, phx_err *err);

#endif
