/* audit.h -- the record every non-allow verdict leaves: a Redis stream entry and an event.
 *
 * Security teams need to know what was stopped, where and why, without the audit trail
 * becoming a second copy of the secrets it caught: records carry the job, step, tenant, role,
 * verdict, score, the detector/category pairs and a SHA-256 of the text (to match a complaint
 * against a record), never the text, the evidence or the redacted spans. */
#ifndef PHX_SAFETY_AUDIT_H
#define PHX_SAFETY_AUDIT_H

#include <jansson.h>

#include "err.h"
#include "redis.h"
#include "safety.h"

typedef struct phx_safety_audit {
    const char *job_id, *step_id, *tenant, *principal;
    int attempt;
    const char *kind;   /* "safety.scan" / "safety.review_plan" */
    const char *role;   /* scan role, or "plan" */
    const char *policy; /* policy name */
    int verdict;
    double score;
    char detectors[512]; /* "inject:instruction_override,secrets:aws_access_key" */
    char sha256[65];     /* of the scanned text */
} phx_safety_audit;

/* Fill a->detectors from findings (unique detector:category pairs, in order). */
void phx_safety_audit_detectors(phx_safety_audit *a, const phx_safety_findings *f);

/* XADD stream MAXLEN ~ maxlen * field value ... 0, or -1 with err (retryable when Redis is
 * down: the step is retried rather than losing the record). */
int phx_safety_audit_write(phx_redis *r, const char *stream, long maxlen, const phx_safety_audit *a,
                           phx_err *err);

/* The event.v1 for phx.events (type "safety.verdict"). */
json_t *phx_safety_audit_event(const phx_safety_audit *a);

#endif
