/* scan.c -- assembling a safety.scan verdict (see scan.h).
 *
 * Order matters for cost: the cheap, always-on work (folding, the phrase matcher) runs once
 * over the text; decoding only produces segments where an encoded run is found, and each
 * decoded segment goes through the same folding and detectors as the text itself. */
#include "scan.h"
#include "code.h"
#include "decode.h"
#include "feedback.h"
#include "feeds.h"
#include "inject.h"
#include "normalize.h"
#include "pii.h"
#include "secrets.h"
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static phx_inject_ctx phx_scan_ctx(phx_safety_role role)
{
    return (role == PHX_ROLE_RETRIEVED_DOCUMENT || role == PHX_ROLE_TOOL_OUTPUT) ? PHX_INJECT_DATA
                                                                                 : PHX_INJECT_USER;
}

/* Hidden-text findings from what folding had to undo. */
static void phx_scan_hidden(const phx_safety_norm *n, phx_safety_findings *f)
{
    phx_safety_finding *x;
    if (n->tags &&
        (x = phx_safety_add(f, "normalize", "tag_characters", 0.8, n->tag_start, n->tag_end)))
        snprintf(x->evidence, sizeof(x->evidence),
                 "%d Unicode tag characters (invisible "
                 "ASCII)",
                 n->tags);
    if (n->invisible &&
        (x = phx_safety_add(f, "normalize", "invisible_characters", 0.5, n->inv_start, n->inv_end)))
        snprintf(x->evidence, sizeof(x->evidence), "%d zero-width or invisible characters",
                 n->invisible);
    if (n->bidi &&
        (x = phx_safety_add(f, "normalize", "bidi_controls", 0.5, n->bidi_start, n->bidi_end)))
        snprintf(x->evidence, sizeof(x->evidence), "%d bidirectional control characters", n->bidi);
    if (n->homoglyph_words &&
        (x = phx_safety_add(f, "normalize", "mixed_script_homoglyphs", 0.5, 0, n->map[n->len])))
        snprintf(x->evidence, sizeof(x->evidence),
                 "%d words mixing Latin and look-alike "
                 "letters",
                 n->homoglyph_words);
}

static int phx_scan_cmp(const void *a, const void *b)
{
    const phx_safety_finding *x = *(const phx_safety_finding *const *)a;
    const phx_safety_finding *y = *(const phx_safety_finding *const *)b;
    return x->start < y->start ? -1 : x->start > y->start ? 1 : 0;
}

/* Replace every redactable span (merged when they overlap) by [REDACTED:category]. */
static char *phx_scan_redact(const char *text, size_t len, const phx_safety_findings *f,
                             const int *act)
{
    const phx_safety_finding **v = malloc(((size_t)f->n + 1) * sizeof(*v));
    int n = 0;
    size_t cap = len + 1;
    if (!v)
        return NULL;
    for (int i = 0; i < f->n; i++)
        if (f->v[i].redact && act[i] == PHX_VERDICT_REDACT) {
            v[n++] = &f->v[i];
            cap += strlen(f->v[i].category) + 16;
        }
    qsort(v, (size_t)n, sizeof(*v), phx_scan_cmp);
    char *out = malloc(cap);
    if (!out) {
        free(v);
        return NULL;
    }
    size_t o = 0, at = 0;
    for (int i = 0; i < n; i++) {
        size_t s = v[i]->start, e = v[i]->end;
        if (e <= at)
            continue;
        if (s < at)
            s = at;
        else {
            memcpy(out + o, text + at, s - at);
            o += s - at;
        }
        /* swallow following overlapping spans */
        while (i + 1 < n && v[i + 1]->start < e) {
            if (v[i + 1]->end > e)
                e = v[i + 1]->end;
            i++;
        }
        o += (size_t)sprintf(out + o, "[REDACTED:%s]", v[i]->category);
        at = e;
    }
    memcpy(out + o, text + at, len - at);
    o += len - at;
    out[o] = '\0';
    free(v);
    return out;
}

/* The verdict a finding asks for under the role's policy. */
static int phx_scan_action(const phx_safety_finding *x, const phx_safety_role_policy *rp)
{
    if (!strcmp(x->detector, "secrets"))
        return rp->secrets;
    if (!strcmp(x->detector, "pii"))
        return rp->pii;
    if (!strcmp(x->detector, "normalize"))
        return rp->hidden_text;
    if (!strcmp(x->detector, "intel"))
        return rp->intel;
    if (!strcmp(x->detector, "url"))
        return x->severity >= rp->url_block  ? PHX_VERDICT_BLOCK
               : x->severity >= rp->url_warn ? PHX_VERDICT_WARN
                                             : PHX_VERDICT_ALLOW;
    if (!strcmp(x->detector, "code"))
        return PHX_VERDICT_ALLOW; /* judged by the combined code score */
    return PHX_VERDICT_ALLOW;     /* inject: judged by the combined score */
}

int phx_safety_scan(const phx_safety_policy *pol, phx_safety_role role, const char *text,
                    size_t len, phx_safety_result *res, phx_err *err)
{
    return phx_safety_scan_with(pol, NULL, role, text, len, res, err);
}

int phx_safety_scan_with(const phx_safety_policy *pol, const phx_safety_scan_ctx *ctx,
                         phx_safety_role role, const char *text, size_t len, phx_safety_result *res,
                         phx_err *err)
{
    phx_intel *intel = ctx ? ctx->intel : NULL;
    memset(res, 0, sizeof(*res));
    const phx_safety_role_policy *rp = &pol->roles[role];
    phx_safety_norm n;
    phx_safety_segments segs = {0};
    int *act = NULL;
    if (phx_safety_normalize(text, len, &n) < 0)
        return phx_err_set(err, "internal", 1, "out of memory");
    res->normalized = phx_safety_norm_changed(&n);
    phx_scan_hidden(&n, &res->f);

    int scored = role != PHX_ROLE_CODE && role != PHX_ROLE_URL;
    double inj = 0;
    if (scored)
        inj =
            phx_safety_inject_scan(&n, phx_scan_ctx(role), &res->f,
                                   res->normalized ? PHX_VIA_NORMALIZED : PHX_VIA_RAW, NULL, 0, 0);
    /* Instructions someone took the trouble to hide (zero-width splits, tag characters,
     * look-alike letters, spaced-out letters, heavy leetspeak) say more than plain ones. Heavy
     * means dense: a long document has a few digits inside letters anyway (order numbers,
     * "in_0KVn3..." ids), which hide nothing. */
    if (inj > 0.3 && (n.invisible || n.tags || n.homoglyph_words || n.joined_runs ||
                      (n.leet >= 3 && (size_t)n.leet * 25 >= n.len)))
        inj = inj * 1.25 > 1 ? 1 : inj * 1.25;
    if (phx_safety_decode(text, len, pol->decode_depth, pol->decode_max_bytes, &segs) < 0)
        goto oom;
    for (int i = 0; i < segs.n; i++) {
        phx_safety_segment *s = &segs.v[i];
        phx_safety_norm sn;
        res->normalized = 1;
        if (phx_safety_normalize(s->text, s->len, &sn) < 0)
            goto oom;
        if (scored) {
            double d = phx_safety_inject_scan(&sn, phx_scan_ctx(role), &res->f, PHX_VIA_DECODED,
                                              s->encoding, s->start, s->end);
            /* Instructions someone took the trouble to encode are worse than plain ones. */
            d = d > 0.3 ? (d * 1.25 > 1 ? 1 : d * 1.25) : d;
            if (d > inj)
                inj = d;
        }
        phx_safety_secrets_scan(s->text, s->len, &res->f, s->start, s->end);
        phx_safety_feed_seg fs = {s->start, s->end, s->encoding};
        phx_safety_feeds_scan(intel, role, s->text, s->len, &sn, &fs, &res->f);
        phx_safety_norm_free(&sn);
    }
    phx_safety_secrets_scan(text, len, &res->f, 0, 0);
    /* A random-looking run that decoded to text is an encoding, not a secret. */
    for (int i = 0; i < res->f.n; i++)
        for (int k = 0; k < segs.n; k++)
            if (!strcmp(res->f.v[i].category, "high_entropy_string") &&
                res->f.v[i].start >= segs.v[k].start && res->f.v[i].end <= segs.v[k].end)
                res->f.v[i].severity = 0, res->f.v[i].redact = 0;
    if (role != PHX_ROLE_CODE)
        phx_safety_pii_scan(text, len, &res->f);
    phx_safety_url_opts uo = {role == PHX_ROLE_URL, pol->resolve_urls, pol->allow_cidrs};
    phx_safety_url_scan(text, len, &uo, &res->f);
    phx_safety_feeds_scan(intel, role, text, len, &n, NULL, &res->f);
    double code = role == PHX_ROLE_CODE ? phx_safety_code_scan(text, len, &res->f) : 0;

    if (ctx && ctx->ignore && ctx->ignore[0]) {
        for (int i = 0; i < res->f.n; i++)
            if (phx_fb_listed(ctx->ignore, res->f.v[i].detector))
                res->f.v[i].severity = 0, res->f.v[i].redact = 0;
        if (phx_fb_listed(ctx->ignore, "inject"))
            inj = 0;
        if (phx_fb_listed(ctx->ignore, "code"))
            code = 0;
    }

    /* Verdict. The scores are built from single-precision weights, so a text whose one
     * feature weighs exactly the threshold (0.35f = 0.34999999...) would miss it
     * (phx_safety_reaches, scan.h). */
    int v = PHX_VERDICT_ALLOW;
    double score = inj;
    if (scored && phx_safety_reaches(inj, rp->block))
        v = PHX_VERDICT_BLOCK;
    else if (scored && phx_safety_reaches(inj, rp->warn))
        v = PHX_VERDICT_WARN;
    if (role == PHX_ROLE_CODE) {
        int cv = phx_safety_reaches(code, rp->code_block)  ? PHX_VERDICT_BLOCK
                 : phx_safety_reaches(code, rp->code_warn) ? PHX_VERDICT_WARN
                                                           : PHX_VERDICT_ALLOW;
        if (cv > v)
            v = cv;
        if (code > score)
            score = code;
    }
    if (!(act = calloc((size_t)res->f.n + 1, sizeof(int))))
        goto oom;
    for (int i = 0; i < res->f.n; i++) {
        act[i] = res->f.v[i].severity > 0 ? phx_scan_action(&res->f.v[i], rp) : 0;
        if (act[i] > v)
            v = act[i];
        if (act[i] > PHX_VERDICT_ALLOW && res->f.v[i].severity > score)
            score = res->f.v[i].severity;
    }
    res->verdict = (phx_safety_verdict)v;
    res->score = score;
    res->inject_score = inj;
    if (v == PHX_VERDICT_REDACT && !(res->redacted = phx_scan_redact(text, len, &res->f, act)))
        goto oom;
    free(act);
    phx_safety_segments_free(&segs);
    phx_safety_norm_free(&n);
    return 0;
oom:
    free(act);
    phx_safety_segments_free(&segs);
    phx_safety_norm_free(&n);
    phx_safety_result_free(res);
    return phx_err_set(err, "internal", 1, "out of memory");
}

void phx_safety_result_free(phx_safety_result *r)
{
    phx_safety_findings_free(&r->f);
    free(r->redacted);
    r->redacted = NULL;
}

json_t *phx_safety_result_json(const phx_safety_result *r, const phx_safety_policy *pol,
                               phx_safety_role role)
{
    json_t *o = json_object();
    json_t *fa = json_array();
    for (int i = 0; i < r->f.n; i++) {
        const phx_safety_finding *x = &r->f.v[i];
        if (x->severity <= 0)
            continue;
        json_t *f =
            json_pack("{s:s, s:s, s:f, s:[I,I], s:s}", "detector", x->detector, "category",
                      x->category, "severity", (double)(long)(x->severity * 1000 + 0.5) / 1000,
                      "span", (json_int_t)x->start, (json_int_t)x->end, "evidence", x->evidence);
        if (x->via == PHX_VIA_DECODED)
            json_object_set_new(f, "encoding", json_string(x->encoding));
        else if (x->via == PHX_VIA_NORMALIZED)
            json_object_set_new(f, "normalized", json_true());
        json_array_append_new(fa, f);
    }
    json_object_set_new(o, "verdict", json_string(phx_safety_verdict_name(r->verdict)));
    json_object_set_new(o, "score", json_real((double)(long)(r->score * 1000 + 0.5) / 1000));
    json_object_set_new(o, "findings", fa);
    if (r->verdict == PHX_VERDICT_REDACT && r->redacted)
        json_object_set_new(o, "redacted_text", json_string(r->redacted));
    json_object_set_new(o, "normalized", json_boolean(r->normalized));
    json_object_set_new(o, "role", json_string(phx_safety_role_name(role)));
    if (pol)
        json_object_set_new(o, "policy", json_string(pol->name));
    return o;
}

/* What a keyword filter looks like: the prototype's approach, kept only as the baseline. */
int phx_safety_keyword_baseline(const char *text, size_t len)
{
    static const char *const kw[] = {
        "ignore previous instructions",
        "ignore all previous instructions",
        "ignore the above",
        "disregard previous",
        "jailbreak",
        "do anything now",
        "developer mode",
        "dan mode",
        "system prompt",
        "no restrictions",
        "without any restrictions",
        "pretend you are",
        "you are now",
        "act as",
    };
    char *low = malloc(len + 1);
    if (!low)
        return 0;
    for (size_t i = 0; i < len; i++)
        low[i] = (text[i] >= 'A' && text[i] <= 'Z') ? (char)(text[i] + 32) : text[i];
    low[len] = '\0';
    int hit = 0;
    for (size_t k = 0; k < sizeof(kw) / sizeof(kw[0]) && !hit; k++)
        hit = memmem(low, len, kw[k], strlen(kw[k])) != NULL;
    free(low);
    return hit;
}
