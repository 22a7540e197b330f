/* fuzz_config.c -- libFuzzer target: PHX_CONFIG_FILE, the JSON configuration file every
 * process reads at start (lib/config.c), against the options table of a typical process. A bad
 * file must give a clear error, never a crash or a half-applied configuration leaking memory. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct fz_cfg {
    phx_common common;
    long n;
    char *s;
} fz_cfg;

static const phx_opt fz_opts[] = {
    PHX_COMMON_OPTS(fz_cfg),
    {"PHX_FUZZ_N", PHX_OPT_INT, "5", 1, 1000, offsetof(fz_cfg, n), "A bounded integer."},
    {"PHX_FUZZ_S", PHX_OPT_STR, "x", 0, 0, offsetof(fz_cfg, s), "A string."},
};

static int fz_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char path[64];
    fz_fd = memfd_create("phx-fuzz-config", 0);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fz_fd);
    setenv("PHX_CONFIG_FILE", path, 1);
    return fz_fd < 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(fz_fd, 0) < 0 || pwrite(fz_fd, data, size, 0) != (ssize_t)size)
        return 0;
    fz_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    char err[512];
    phx_config_load(fz_opts, sizeof(fz_opts) / sizeof(fz_opts[0]), &cfg, err, sizeof(err));
    phx_config_free(fz_opts, sizeof(fz_opts) / sizeof(fz_opts[0]), &cfg);
    return 0;
}
