/* kbrec.h -- the knowledge base's record format and Redis key layout, shared by phx-kb (which
 * reads and writes records) and the phx CLI (collections, backup and restore).
 *
 * One record per item, stored as a binary string in the hash phx:kb:{C}:rec (field = item id):
 *
 *   off  size  field
 *   0    4     magic "PKB1" (the version: a new layout gets a new magic)
 *   4    4     CRC32C (Castagnoli) of the item id followed by bytes 8..end
 *   8    4     dim            (u32, little-endian like every integer here)
 *   12   4     text length    (u32)
 *   16   4     metadata length (u32, compact JSON object)
 *   20   8     created_ms     (i64)
 *   28   8     updated_ms     (i64)
 *   36   8     expires_ms     (i64, 0 = never)
 *   44   4     importance     (f32, 0..1)
 *   48   4*dim vector         (f32; unit length in a cosine collection)
 *   ..         text, then metadata
 *
 * The CRC covers the id too, so a record copied under another id is as corrupt as one with a
 * flipped bit. Hit counts and last-hit times change on every search, so they live beside the
 * record (hashes hits and seen), not in it: rewriting and re-checksumming a whole record per
 * search would cost far more than the counters are worth, and a damaged counter can only
 * misorder pruning, never serve wrong content.
 *
 * Keys of collection C (all share the hash tag {kb:C}, so one collection's Lua scripts stay
 * legal on a Redis Cluster):
 *   phx:kb:collections          set     collection names (the CLI's index; cross-slot)
 *   phx:kb:{kb:C}:meta          hash    dim, metric, capacity, ttl_s, policy, created_ms, gen
 *   phx:kb:{kb:C}:rec           hash    id -> record (above)
 *   phx:kb:{kb:C}:hits / :seen  hash    id -> search hits / last hit ms
 *   phx:kb:{kb:C}:ttl           zset    id scored by expires_ms (records with a TTL only)
 *   phx:kb:{kb:C}:log / :seq    stream + counter: every change, in order (see workers/kb)
 *   phx:kb:{kb:C}:quarantine    hash    id -> bytes of a record that failed its check
 *   phx:kb:{kb:C}:prune_lock / :prune_due   strings with a TTL: the pruning leases */
#ifndef PHX_KBREC_H
#define PHX_KBREC_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define PHX_KB_REC_MAGIC   "PKB1"
#define PHX_KB_REC_HDR     48
#define PHX_KB_MAX_DIM     4096
#define PHX_KB_COLLECTIONS "phx:kb:collections"

enum phx_kb_metric { PHX_KB_COSINE = 0, PHX_KB_DOT = 1, PHX_KB_L2 = 2 };
enum phx_kb_policy { PHX_KB_SCORE = 0, PHX_KB_LRU = 1, PHX_KB_LFU = 2, PHX_KB_NONE = 3 };

/* A decoded record. Pointers point into the buffer given to phx_kb_rec_decode (the vector may
 * be unaligned there: copy it with memcpy). */
typedef struct phx_kb_rec {
    uint32_t dim, crc;
    int64_t created_ms, updated_ms, expires_ms;
    float importance;
    const unsigned char *vec; /* dim little-endian f32 */
    const char *text, *meta;
    uint32_t text_len, meta_len;
} phx_kb_rec;

uint32_t phx_crc32c(uint32_t crc, const void *data, size_t len);

/* Encode rec (vec as host floats) for id into a malloc'd buffer; *len gets its size. */
unsigned char *phx_kb_rec_encode(const char *id, const phx_kb_rec *rec, const float *vec,
                                 size_t *len);
/* Parse and verify buf (what Redis holds for id). 0, or -1 with why ("crc mismatch", ...). */
int phx_kb_rec_decode(const char *id, const unsigned char *buf, size_t len, phx_kb_rec *out,
                      char *why, size_t whylen);

/* 1 if name is a valid collection name: 1..64 of [A-Za-z0-9._-]. */
int phx_kb_name_valid(const char *name);
/* Key of collection coll's part ("rec", "meta", ...) into buf. */
void phx_kb_key(char *buf, size_t len, const char *coll, const char *part);

const char *phx_kb_metric_name(int m);
int phx_kb_metric_parse(const char *s); /* -1 if unknown */
const char *phx_kb_policy_name(int p);
int phx_kb_policy_parse(const char *s); /* -1 if unknown */

#endif
