/* rslot.c -- Redis Cluster key slots (see rslot.h). */
#include "rslot.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, bit by bit. The table-driven form
 * is faster, but a key is at most a few hundred bytes and this runs once per command. */
static uint16_t phx_rslot_crc16(const unsigned char *p, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

int phx_rslot_of(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1) {
            key = open + 1;
            len = (size_t)(close - key);
        }
    }
    return phx_rslot_crc16((const unsigned char *)key, len) & (PHX_RSLOT_COUNT - 1);
}

static int phx_rslot_is(const char *arg, size_t len, const char *name)
{
    return len == strlen(name) && strncasecmp(arg, name, len) == 0;
}

int phx_rslot_of_cmd(int argc, const char **argv, const size_t *lens)
{
    size_t l0 = lens ? lens[0] : strlen(argv[0]);
    if (phx_rslot_is(argv[0], l0, "EVALSHA") || phx_rslot_is(argv[0], l0, "EVAL")) {
        if (argc < 4 || strtol(argv[2], NULL, 10) < 1)
            return -1;
        return phx_rslot_of(argv[3], lens ? lens[3] : strlen(argv[3]));
    }
    if (argc < 2 || phx_rslot_is(argv[0], l0, "PING") || phx_rslot_is(argv[0], l0, "INFO") ||
        phx_rslot_is(argv[0], l0, "SCRIPT") || phx_rslot_is(argv[0], l0, "WAIT") ||
        phx_rslot_is(argv[0], l0, "CLUSTER") || phx_rslot_is(argv[0], l0, "ROLE"))
        return -1;
    return phx_rslot_of(argv[1], lens ? lens[1] : strlen(argv[1]));
}
