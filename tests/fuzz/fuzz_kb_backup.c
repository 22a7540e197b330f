/* fuzz_kb_backup.c -- libFuzzer target: the KB backup reader, phx_cli_kb_verify, which `phx
 * kb restore FILE` runs over the whole file before it writes one key (producers/cli/
 * kbbackup.c), and the record decoder (lib/kbrec.c) it calls per record. A backup file comes
 * from wherever operators keep them (a bucket, a colleague, an old disk), so the reader must
 * refuse any damaged or crafted file with a reason -- never crash, over-read, or trust a
 * count it has not checked.
 *
 * The input is a backup file. It is verified as it is, and again with its last 72 bytes
 * replaced by the correct "sha256 ..." trailer: the digest protects against damage, not
 * against a crafted file (anyone can recompute it), and without the second pass the fuzzer
 * would never get past the digest to the settings line and the record frames. On success the
 * result is checked against the file: every frame lies inside it and decodes again. */
#include "../../producers/cli/cli.h"
#include "kbrec.h"
#include "util.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fz_verify(const unsigned char *p, size_t n)
{
    json_t *hdr = NULL;
    phx_kb_frame *frames = NULL;
    size_t nf = 0;
    char why[300] = "";
    if (phx_cli_kb_verify(p, n, &hdr, &frames, &nf, why, sizeof(why)) == 0) {
        if (!hdr || (nf && !frames))
            __builtin_trap();
        for (size_t i = 0; i < nf; i++) {
            const phx_kb_frame *f = &frames[i];
            const unsigned char *id = (const unsigned char *)f->id;
            if (id < p || id + f->idlen > p + n || f->rec < p || f->rec + f->reclen > p + n)
                __builtin_trap(); /* a frame pointing outside the file */
            char sid[129];
            memcpy(sid, f->id, f->idlen);
            sid[f->idlen] = '\0';
            phx_kb_rec rec;
            char rwhy[160];
            if (phx_kb_rec_decode(sid, f->rec, f->reclen, &rec, rwhy, sizeof(rwhy)) < 0)
                __builtin_trap(); /* accepted, yet the record does not decode */
        }
    } else if (!why[0]) {
        __builtin_trap(); /* refused without saying why */
    }
    json_decref(hdr);
    free(frames);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes, so ASan sees any read past the end of the file. */
    unsigned char *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    memcpy(p, data, size);
    fz_verify(p, size);
    if (size >= 72) {
        char sha[65];
        phx_sha256_hex(p, size - 72, sha);
        /* a fixed 7-byte field of the file, not a C string */
        memcpy(p + size - 72, "sha256 ", 7); // NOLINT(bugprone-not-null-terminated-result)
        memcpy(p + size - 65, sha, 64);
        p[size - 1] = '\n';
        fz_verify(p, size);
    }
    /* The record decoder on its own, under an id from the first bytes (as Redis hands a
     * record to phx-kb: any bytes under any field). */
    if (size > 8) {
        char id[9];
        memcpy(id, p, 8);
        id[8] = '\0';
        phx_kb_rec rec;
        char why[160];
        phx_kb_rec_decode(id, p + 8, size - 8, &rec, why, sizeof(why));
    }
    free(p);
    return 0;
}
