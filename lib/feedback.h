/* feedback.h -- operator feedback on safety verdicts: labelled examples and the per-tenant
 * adjustments derived from them, bounded, audited and reversible.
 *
 * An operator who finds a safety.scan verdict wrong says so about the job's step
 * (`phx safety feedback JOB_ID --false-positive|--missed`). The scan's output (stored by the
 * planner in phx:job:{ID}:out) carries the scanned text's SHA-256, its role and findings, so
 * the example is recorded without the text itself. From it, for the job's tenant only:
 *
 *   false positive on detectors D (the findings' detectors, or --detector):
 *     - that exact text (by hash) is allow-listed for D: a later scan of it drops D's findings;
 *     - each thresholded detector in D (inject, code, url) gets its tenant offset raised by
 *       PHX_FB_STEP (warn and block thresholds of every role move up by it);
 *   missed on detector D (--detector, else inject, or code / url for those roles):
 *     - D's offset is lowered by PHX_FB_STEP (only thresholded detectors: for secrets, PII,
 *       hidden text and feeds the policy's action is the knob, not feedback).
 * An offset never leaves [-PHX_FB_MAX, +PHX_FB_MAX], and a threshold it moves stays within
 * [0.05, 1]: feedback tunes a policy, it cannot switch a detector off or make it fire on
 * everything. Every record and rollback is one Lua script over the tenant's keys (applied
 * changes are computed and stored atomically with the record, so a rollback undoes exactly
 * what was applied) and one entry in the security audit stream (phx:audit).
 *
 * Keys (hash tag {T}: one tenant's feedback and adjustments live in one cluster slot):
 *   phx:safety:fb:{T}      hash  ID -> the record (JSON: id, tenant, job, step, label, role,
 *                                verdict, score, text_sha256, findings, detectors, note, by,
 *                                created_ms, changes [{type allow|threshold, ...}],
 *                                rolled_back_ms?)
 *   phx:safety:adj:{T}     hash  allow:SHA256 -> "DET,DET|ID"; off:DET -> offset
 *   phx:safety:fb:index    hash  ID -> tenant (rollback by id alone) */
#ifndef PHX_FEEDBACK_H
#define PHX_FEEDBACK_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "redis.h"

#define PHX_FB_STEP  0.05
#define PHX_FB_MAX   0.15
#define PHX_FB_INDEX "phx:safety:fb:index"

/* The adjustments in force for one scanned text of a tenant. */
typedef struct phx_fb_adj {
    double off_inject, off_code, off_url;
    char allow[128];   /* detectors allow-listed for this text, comma-separated; "" = none */
    char allow_id[48]; /* the feedback that allow-listed it */
} phx_fb_adj;

/* One HMGET: the tenant's offsets and the allow entry of text hash sha256. 0, or -1 with err. */
int phx_fb_adj_get(phx_redis *r, const char *tenant, const char *sha256, phx_fb_adj *a,
                   phx_err *err);
/* 1 when detector is in the comma-separated list. */
int phx_fb_listed(const char *list, const char *detector);
/* Move a warn/block threshold pair by off, kept within [0.05, 1] and warn <= block. */
void phx_fb_shift(double *warn, double *block, double off);

typedef struct phx_fb_req {
    const char *job_id;
    const char *step;     /* NULL: the job's only safety.scan output */
    int missed;           /* 0 = false positive */
    const char *detector; /* NULL: derived (see above) */
    const char *note;
    const char *by;
} phx_fb_req;

/* Record feedback on a job's scan and apply its adjustments. The record (new reference), or
 * NULL with err: not_found (job, step or scan output), invalid_input (nothing to adjust, an
 * ambiguous step, a detector without a threshold for --missed), or Redis. */
json_t *phx_fb_record(phx_redis *r, const phx_fb_req *q, int64_t now_ms, phx_err *err);
/* Undo feedback id's changes (those still in force as it left them). 1 rolled back (*rec set),
 * 0 unknown id, -1 with err (invalid_input when already rolled back). */
int phx_fb_rollback(phx_redis *r, const char *id, const char *by, int64_t now_ms, json_t **rec,
                    phx_err *err);
/* A tenant's records, oldest first (JSON array); NULL with err. */
json_t *phx_fb_list(phx_redis *r, const char *tenant, phx_err *err);

#endif
