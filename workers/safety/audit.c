/* audit.c -- audit stream entries and events (see audit.h). */
#include "audit.h"
#include "msg.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

void phx_safety_audit_detectors(phx_safety_audit *a, const phx_safety_findings *f)
{
    size_t o = 0;
    a->detectors[0] = '\0';
    for (int i = 0; i < f->n; i++) {
        if (f->v[i].severity <= 0)
            continue;
        char pair[64];
        snprintf(pair, sizeof(pair), "%s:%s", f->v[i].detector, f->v[i].category);
        /* unique: look for ",pair," in ",list," */
        int dup = 0;
        for (const char *p = a->detectors; (p = strstr(p, pair)) != NULL; p++) {
            size_t n = strlen(pair);
            if ((p == a->detectors || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) {
                dup = 1;
                break;
            }
        }
        if (dup)
            continue;
        int w = snprintf(a->detectors + o, sizeof(a->detectors) - o, "%s%s", o ? "," : "", pair);
        if (w < 0 || (size_t)w >= sizeof(a->detectors) - o) {
            a->detectors[o] = '\0';
            break;
        }
        o += (size_t)w;
    }
}

int phx_safety_audit_write(phx_redis *r, const char *stream, long maxlen, const phx_safety_audit *a,
                           phx_err *err)
{
    char maxs[32], score[32], attempt[16], ts[32];
    snprintf(maxs, sizeof(maxs), "%ld", maxlen);
    snprintf(score, sizeof(score), "%.3f", a->score);
    snprintf(attempt, sizeof(attempt), "%d", a->attempt);
    snprintf(ts, sizeof(ts), "%lld", (long long)phx_now_ms());
    const char *argv[] = {
        "XADD",        stream,
        "MAXLEN",      "~",
        maxs,          "*",
        "ts_ms",       ts,
        "job_id",      a->job_id ? a->job_id : "",
        "step_id",     a->step_id ? a->step_id : "",
        "attempt",     attempt,
        "tenant",      a->tenant ? a->tenant : "",
        "principal",   a->principal ? a->principal : "",
        "kind",        a->kind ? a->kind : "",
        "role",        a->role ? a->role : "",
        "policy",      a->policy ? a->policy : "",
        "verdict",     phx_safety_verdict_name((phx_safety_verdict)a->verdict),
        "score",       score,
        "detectors",   a->detectors,
        "text_sha256", a->sha256,
    };
    int argc = (int)(sizeof(argv) / sizeof(argv[0]));
    size_t lens[sizeof(argv) / sizeof(argv[0])];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    redisReply *rep = phx_redis_cmdv(r, err, argc, argv, lens);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    return 0;
}

json_t *phx_safety_audit_event(const phx_safety_audit *a)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:f, s:s, s:s, s:s}", "kind", a->kind ? a->kind : "",
                          "role", a->role ? a->role : "", "verdict",
                          phx_safety_verdict_name((phx_safety_verdict)a->verdict), "score",
                          a->score, "detectors", a->detectors, "text_sha256", a->sha256, "policy",
                          a->policy ? a->policy : "");
    return phx_event_new(a->job_id ? a->job_id : "", a->tenant, "safety.verdict", a->step_id,
                         a->attempt, d);
}
