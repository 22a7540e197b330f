/* kbrec.c -- knowledge base records: CRC32C, encode, decode and verify (see kbrec.h). */
#include "kbrec.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>

/* SSE4.2's crc32 instruction computes exactly CRC32C, 8 bytes per instruction. */
__attribute__((target("sse4.2"))) static uint32_t phx_crc32c_hw(uint32_t crc, const void *data,
                                                                size_t len)
{
    const unsigned char *p = data;
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}
#endif

/* Bit-at-a-time fallback: no table to build or keep, and only machines without SSE4.2 pay. */
static uint32_t phx_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc;
}

uint32_t phx_crc32c(uint32_t crc, const void *data, size_t len)
{
    crc = ~crc;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return ~phx_crc32c_hw(crc, data, len);
#endif
    return ~phx_crc32c_sw(crc, data, len);
}

static void phx_kb_put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void phx_kb_put64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

static uint32_t phx_kb_get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int64_t phx_kb_get64(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = u << 8 | p[i];
    return (int64_t)u;
}

static uint32_t phx_kb_rec_crc(const char *id, const unsigned char *buf, size_t len)
{
    uint32_t c = phx_crc32c(0, id, strlen(id));
    return phx_crc32c(c, buf + 8, len - 8);
}

unsigned char *phx_kb_rec_encode(const char *id, const phx_kb_rec *rec, const float *vec,
                                 size_t *len)
{
    size_t n = PHX_KB_REC_HDR + 4 * (size_t)rec->dim + rec->text_len + rec->meta_len;
    unsigned char *b = phx_xmalloc(n);
    memcpy(b, PHX_KB_REC_MAGIC, 4); // NOLINT(bugprone-not-null-terminated-result): binary header
    phx_kb_put32(b + 8, rec->dim);
    phx_kb_put32(b + 12, rec->text_len);
    phx_kb_put32(b + 16, rec->meta_len);
    phx_kb_put64(b + 20, rec->created_ms);
    phx_kb_put64(b + 28, rec->updated_ms);
    phx_kb_put64(b + 36, rec->expires_ms);
    uint32_t u;
    memcpy(&u, &rec->importance, 4);
    phx_kb_put32(b + 44, u);
    unsigned char *p = b + PHX_KB_REC_HDR;
    for (uint32_t i = 0; i < rec->dim; i++, p += 4) {
        memcpy(&u, &vec[i], 4);
        phx_kb_put32(p, u);
    }
    if (rec->text_len)
        memcpy(p, rec->text, rec->text_len);
    p += rec->text_len;
    if (rec->meta_len)
        memcpy(p, rec->meta, rec->meta_len);
    phx_kb_put32(b + 4, phx_kb_rec_crc(id, b, n));
    *len = n;
    return b;
}

int phx_kb_rec_decode(const char *id, const unsigned char *buf, size_t len, phx_kb_rec *out,
                      char *why, size_t whylen)
{
    if (len < PHX_KB_REC_HDR || memcmp(buf, PHX_KB_REC_MAGIC, 4) != 0) {
        snprintf(why, whylen, "not a %s record (%zu bytes)", PHX_KB_REC_MAGIC, len);
        return -1;
    }
    memset(out, 0, sizeof(*out));
    out->crc = phx_kb_get32(buf + 4);
    out->dim = phx_kb_get32(buf + 8);
    out->text_len = phx_kb_get32(buf + 12);
    out->meta_len = phx_kb_get32(buf + 16);
    uint64_t want = PHX_KB_REC_HDR + 4 * (uint64_t)out->dim + out->text_len + out->meta_len;
    if (out->dim > PHX_KB_MAX_DIM || want != len) {
        snprintf(why, whylen, "lengths do not add up (dim %u, %zu bytes)", out->dim, len);
        return -1;
    }
    uint32_t crc = phx_kb_rec_crc(id, buf, len);
    if (crc != out->crc) {
        snprintf(why, whylen, "crc mismatch (stored %08x, computed %08x)", out->crc, crc);
        return -1;
    }
    out->created_ms = phx_kb_get64(buf + 20);
    out->updated_ms = phx_kb_get64(buf + 28);
    out->expires_ms = phx_kb_get64(buf + 36);
    uint32_t u = phx_kb_get32(buf + 44);
    memcpy(&out->importance, &u, 4);
    out->vec = buf + PHX_KB_REC_HDR;
    out->text = (const char *)out->vec + 4 * (size_t)out->dim;
    out->meta = out->text + out->text_len;
    return 0;
}

int phx_kb_name_valid(const char *name)
{
    return phx_name_valid(name);
}

void phx_kb_key(char *buf, size_t len, const char *coll, const char *part)
{
    snprintf(buf, len, "phx:kb:{kb:%s}:%s", coll, part);
}

static const char *const phx_kb_metrics[] = {"cosine", "dot", "l2"};
static const char *const phx_kb_policies[] = {"score", "lru", "lfu", "none"};

const char *phx_kb_metric_name(int m)
{
    return m >= 0 && m < 3 ? phx_kb_metrics[m] : "?";
}

int phx_kb_metric_parse(const char *s)
{
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, phx_kb_metrics[i]) == 0)
            return i;
    return -1;
}

const char *phx_kb_policy_name(int p)
{
    return p >= 0 && p < 4 ? phx_kb_policies[p] : "?";
}

int phx_kb_policy_parse(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, phx_kb_policies[i]) == 0)
            return i;
    return -1;
}
