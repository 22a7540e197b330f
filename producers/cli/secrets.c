/* secrets.c -- `phx secrets keygen|seal|open`: make a key and sealed secret files (seal.h).
 *
 * The sealed text goes to stdout so it can be redirected into the file a process names in a
 * *_FILE option; the plaintext comes from a file or stdin, never from the command line (where
 * it would land in shell history and the process table). */
#include "util.h"
#include "cli.h"
#include "seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *phx_secrets_read(FILE *f, size_t *n)
{
    size_t cap = 4096;
    char *buf = phx_xmalloc(cap);
    *n = 0;
    size_t r;
    while ((r = fread(buf + *n, 1, cap - *n - 1, f)) > 0) {
        *n += r;
        if (*n + 1 == cap)
            buf = phx_xrealloc(buf, cap *= 2);
    }
    while (*n > 0 && (buf[*n - 1] == '\n' || buf[*n - 1] == '\r'))
        (*n)--;
    buf[*n] = '\0';
    return buf;
}

int phx_cli_secrets(const phx_cli_env *env, int argc, char **argv)
{
    (void)env;
    const char *usage = "usage: phx secrets keygen > KEYFILE\n"
                        "       phx secrets seal --key-file KEYFILE [PLAINTEXT_FILE] > SEALED\n"
                        "       phx secrets open --key-file KEYFILE SEALED_FILE\n";
    if (argc == 2 && strcmp(argv[1], "keygen") == 0) {
        char hex[2 * PHX_SEAL_KEY_LEN + 1];
        if (phx_seal_keygen(hex) < 0)
            return PHX_EXIT_INFRA;
        printf("%s\n", hex);
        return PHX_EXIT_OK;
    }
    int seal = argc >= 4 && strcmp(argv[1], "seal") == 0,
        open = argc == 5 && !strcmp(argv[1], "open");
    if ((!seal && !open) || strcmp(argv[2], "--key-file") != 0 || (seal && argc > 5)) {
        fputs(usage, stderr);
        return PHX_EXIT_USAGE;
    }
    unsigned char key[PHX_SEAL_KEY_LEN];
    phx_err err;
    if (phx_seal_key_load(argv[3], key, &err) < 0) {
        fprintf(stderr, "phx secrets: %s\n", err.message);
        return PHX_EXIT_USAGE;
    }
    FILE *in = argc == 5 ? fopen(argv[4], "r") : stdin;
    if (!in) {
        fprintf(stderr, "phx secrets: cannot open %s\n", argv[4]);
        return PHX_EXIT_USAGE;
    }
    size_t n;
    char *text = phx_secrets_read(in, &n), *out;
    if (in != stdin)
        fclose(in);
    out = seal ? phx_seal(key, text, n, &err) : phx_unseal(key, text, &err);
    memset(key, 0, sizeof(key));
    memset(text, 0, n);
    free(text);
    if (!out) {
        fprintf(stderr, "phx secrets: %s\n", err.message);
        return PHX_EXIT_FAILED;
    }
    printf("%s\n", out);
    free(out);
    return PHX_EXIT_OK;
}
