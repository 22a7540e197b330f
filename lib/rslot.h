/* rslot.h -- Redis Cluster key slots: which of the 16384 slots a key lives in, and which
 * argument of a command is the key a cluster routes it by.
 *
 * Kept apart from redis.c because they are pure functions of their input (unit-tested against
 * the values the Redis Cluster specification gives) and because the key layout's hash tags
 * (docs/architecture.md, "Slot audit") are only correct if this agrees with the servers. */
#ifndef PHX_RSLOT_H
#define PHX_RSLOT_H

#include <stddef.h>

#define PHX_RSLOT_COUNT 16384

/* CRC16 (XMODEM) of the key's hash tag -- the part between the first '{' and the next '}'
 * when that part is not empty -- or of the whole key, modulo 16384. */
int phx_rslot_of(const char *key, size_t len);

/* The slot a command is routed by: its key's slot, or -1 for a command without a key (PING,
 * INFO, SCRIPT, WAIT, ...), which any node may serve. argv/lens as for redisCommandArgv. The
 * commands Phoenix sends have their key first (argv[1]), except EVAL/EVALSHA (argv[3] when
 * numkeys > 0). Every key of one command must share the slot; Redis refuses it otherwise. */
int phx_rslot_of_cmd(int argc, const char **argv, const size_t *lens);

#endif
