/* commit.c -- the group commit of POST /v1/jobs: many requests, one Redis round trip per stage
 * and one Kafka wait.
 *
 * Why: a submit used to cost its HTTP thread a blocking round trip for the rate limit, one
 * for the store and a wait for its own Kafka delivery report. On this paravirtualized
 * two-core machine every one of those blocking waits is a context switch that costs more than
 * the work around it (docs/benchmarks-ingress.md has the profile), so throughput was bound
 * by switches, not by computation. Here a request thread only checks and prepares the job (no
 * I/O), suspends the connection and queues it; a committer thread takes everything queued at
 * that moment (up to PHX_COMMIT_MAX requests and PHX_COMMIT_MAX_BYTES of bodies) and runs the
 * stages for all of it together:
 *
 *   1. rate limits: one GCRA script call per caller for all its requests in the batch, all in
 *      one round trip (phx_redis_batch);
 *   2. Idempotency-Keys: SET NX GET of the requests that carry one, one round trip;
 *   3. store: job_submit + ZADD NX per job, one round trip (rare follow-ups one by one);
 *   4. publish: one phx_produce_batch of every message, waiting for the delivery reports once;
 *   5. answer each request and resume its connection.
 *
 * The contract is unchanged: a 202 still means the job is in Redis and the brokers
 * acknowledged it; every request gets its own verdict at every stage (a 429 for one does not
 * touch the next). While one batch is in flight the next one gathers, so the batch size grows
 * with the load and the per-request cost falls with it. A request that finds the ingress idle
 * (nothing queued, no batch in flight) is committed by its own HTTP thread, without the two
 * thread hand-offs and without suspending its connection, so a lone request's latency is what it
 * was before the group commit. Several committer threads (PHX_INGRESS_COMMITTERS) overlap one
 * batch's Kafka wait with the next one's Redis round trips.
 *
 * Trade-offs: the rate limit is now taken after the body was checked (the check is local CPU
 * work; the limit is still decided before anything is stored, and a limited caller still gets
 * 429 whatever its body); a batch the brokers refuse for good is produced again message by
 * message so that only the requests whose message is refused get 503. */
#include "ingress_int.h"
#include "jobstore.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "ratelimit.h"
#include "trace.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define PHX_COMMIT_MAX 256 /* requests per batch at most: bounds one round trip's size */
/* Body bytes per batch at most (a batch always takes one request): with bodies of up to
 * PHX_INGRESS_MAX_BODY, 256 of them could make one round trip of hundreds of MB, which would
 * outlast PHX_REDIS_TIMEOUT_MS; small jobs, the common case, still batch by the 256. */
#define PHX_COMMIT_MAX_BYTES (4 << 20)

struct phx_commit {
    phx_ingress *in;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    phx_req *head, *tail;
    int stopping;
    int busy; /* batches being committed, by committer threads or inline */
    int nthreads;
    pthread_t *threads;
    phx_metric *m_batch; /* phx_ingress_commit_batch_size, looked up once */
};

/* One request's progress through a batch. */
typedef struct phx_commit_item {
    phx_req *rq;
    int live;    /* still going: allowed, with a job, no answer yet */
    int repeat;  /* the Idempotency-Key names an earlier request's job */
    int claimed; /* this request claimed its Idempotency-Key */
    int rc;      /* phx_jobstore_submit's answer */
    char *spec, fp[65];
    phx_job_submit js;
    phx_job_submit_call sc;
} phx_commit_item;

/* --- the answers ------------------------------------------------------------------------ */

static void phx_commit_fail(phx_commit_item *it, const char *what, const phx_err *err)
{
    const char *id = it->rq->job ? json_string_value(json_object_get(it->rq->job, "id")) : NULL;
    phx_logj(PHX_LOG_WARN, id, NULL, "submit failed: %s", err->message);
    /* A job bigger than Kafka takes (its body fits PHX_INGRESS_MAX_BODY, the message with the
     * envelope does not fit message.max.bytes) would fail the same on every retry: the
     * client's to fix, not a 503 to retry. */
    if (strcmp(err->code, "kafka_too_large") == 0)
        phx_problem(&it->rq->a, 413, "payload_too_large", "Payload too large",
                    "the job is larger than the message brokers accept; make it smaller "
                    "(large inputs belong in a knowledge base or a URL)",
                    NULL);
    else
        phx_unavailable(&it->rq->a, what);
    it->live = 0;
}

/* The answer to a repeat of a submission (same Idempotency-Key, or same id and body). */
static void phx_commit_duplicate(phx_answer *a, const char *id)
{
    phx_ok(a, 200, json_pack("{s:s, s:b}", "job_id", id, "duplicate", 1));
    snprintf(a->location, sizeof(a->location), "/v1/jobs/%s", id);
}

/* The 202 of every accepted job: written straight into text (a job id is checked to need no
 * JSON escaping), which spares building and serialising a JSON object per request. */
static void phx_commit_accepted(phx_answer *a, const char *id)
{
    snprintf(a->location, sizeof(a->location), "/v1/jobs/%s", id);
    if (!phx_id_valid(id)) {
        phx_ok(a, 202,
               json_pack("{s:s, s:s, s:s}", "job_id", id, "state", "submitted", "status_url",
                         a->location));
        return;
    }
    phx_ok(a, 202, NULL);
    size_t n = 64 + 2 * strlen(id);
    a->text = phx_xmalloc(n);
    snprintf(a->text, n, "{\"job_id\":\"%s\",\"state\":\"submitted\",\"status_url\":\"%s\"}", id,
             a->location);
}

/* --- stage 1: rate limits --------------------------------------------------------------- */

/* A request's place in the batch, sortable by its caller (qsort has no context argument). */
typedef struct phx_commit_who {
    const char *tenant, *principal;
    int i;
} phx_commit_who;

static int phx_commit_who_cmp(const void *a, const void *b)
{
    const phx_commit_who *x = a, *y = b;
    int c = strcmp(x->tenant, y->tenant);
    if (!c)
        c = strcmp(x->principal, y->principal);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

static int phx_commit_int_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* One script call per caller (tenant and principal) in the batch, not per request: the
 * script's count form (phx_ratelimit_take_n_call) gives each of a caller's requests, in queue
 * order, exactly the verdict a call of its own at the batch's now would have given, for one
 * call, two reads and two writes in Redis however many requests the caller has in the batch.
 * The callers' calls go in the order of their first request. The difference from one call per
 * request in queue order: when two principals of one tenant share an exhausted tenant limit
 * within one batch, the first principal's requests in the batch are charged before the
 * second's, rather than interleaved. */
static void phx_commit_limits(phx_commit *cm, phx_redis *r, phx_commit_item *it, int n)
{
    const phx_ingress_cfg *cfg = cm->in->cfg;
    phx_rate tr = {(double)cfg->rate_tenant, cfg->burst_tenant};
    phx_rate pr = {(double)cfg->rate_principal, cfg->burst_principal};
    phx_commit_who *w = phx_xcalloc((size_t)n, sizeof(*w));
    int *lead = phx_xcalloc((size_t)n, sizeof(*lead)); /* each caller's first request */
    int *grp = phx_xcalloc((size_t)n, sizeof(*grp));   /* request -> its caller's call */
    int *nth = phx_xcalloc((size_t)n, sizeof(*nth));   /* request -> its place in that call */
    int *cnt = phx_xcalloc((size_t)n, sizeof(*cnt));   /* lead -> requests of that caller */
    for (int i = 0; i < n; i++)
        w[i] = (phx_commit_who){it[i].rq->who.tenant, it[i].rq->who.principal, i};
    qsort(w, (size_t)n, sizeof(*w), phx_commit_who_cmp);
    int ng = 0;
    for (int k = 0; k < n; k++) {
        if (k == 0 || strcmp(w[k].tenant, w[k - 1].tenant) != 0 ||
            strcmp(w[k].principal, w[k - 1].principal) != 0)
            lead[ng++] = w[k].i;
        int l = lead[ng - 1];
        grp[w[k].i] = l; /* for now the lead's index; made a call index below */
        nth[w[k].i] = cnt[l]++;
    }
    qsort(lead, (size_t)ng, sizeof(*lead), phx_commit_int_cmp);
    phx_rate_call *rl = phx_xcalloc((size_t)ng, sizeof(*rl));
    phx_redis_call *calls = phx_xcalloc((size_t)ng, sizeof(*calls));
    redisReply **rep = phx_xcalloc((size_t)ng, sizeof(*rep));
    int *call_of = phx_xcalloc((size_t)n, sizeof(*call_of)); /* lead -> call index */
    phx_err err;
    phx_err_clear(&err);
    int64_t now = phx_now_ms();
    for (int g = 0; g < ng; g++) {
        const phx_principal *who = &it[lead[g]].rq->who;
        phx_ratelimit_take_n_call(&rl[g], who->tenant, who->principal, &tr, &pr, now, cnt[lead[g]]);
        calls[g] = rl[g].call;
        call_of[lead[g]] = g;
    }
    if (!r)
        phx_err_set(&err, "redis_unavailable", 1, "no Redis connection");
    int ok = r && phx_redis_batch(r, calls, ng, rep, &err) == 0;
    for (int i = 0; i < n; i++) {
        phx_answer *a = &it[i].rq->a;
        phx_rate_verdict v;
        it[i].live = 0;
        if (!ok || phx_ratelimit_verdict_at(rep[call_of[grp[i]]], nth[i], &v, &err) < 0) {
            /* Fail closed: an unmetered gateway is how one tenant takes everyone down. */
            phx_logj(PHX_LOG_WARN, NULL, NULL, "rate limiter: %s", err.message);
            phx_unavailable(a, "rate limiter unreachable");
            it[i].rq->audit = 0;
            continue;
        }
        if (phx_ratelimit_answer(a, &v) < 0) {
            it[i].rq->audit = 0;
            continue;
        }
        it[i].live = it[i].rq->job != NULL;
    }
    for (int g = 0; ok && g < ng; g++)
        freeReplyObject(rep[g]);
    free(w), free(lead), free(grp), free(nth), free(cnt), free(rl), free(calls), free(rep);
    free(call_of);
}

/* --- stage 2: Idempotency-Keys ---------------------------------------------------------- */

/* The fingerprint of a job as the client sent it, without the ingress's clock, keys sorted;
 * without its id too when without_id (an Idempotency-Key's claim: a repeat may come with
 * another id, generated or not, and still be the same submission). With spec (not NULL,
 * only with the id), the job as stored and published is made from the same dump: the
 * fingerprinted text with the clock appended, which spares a second serialisation of every
 * job (docs/benchmarks-ingress.md); the key order of the spec means nothing to its readers. */
static void phx_commit_fingerprint(json_t *job, int without_id, char hex[65], char **spec)
{
    json_t *sub = json_incref(json_object_get(job, "submitted_ms"));
    json_t *id = without_id ? json_incref(json_object_get(job, "id")) : NULL;
    json_object_del(job, "submitted_ms");
    if (id)
        json_object_del(job, "id");
    char *s = json_dumps(job, JSON_COMPACT | JSON_SORT_KEYS);
    if (sub)
        json_object_set_new(job, "submitted_ms", sub);
    if (id)
        json_object_set_new(job, "id", id);
    size_t len = s ? strlen(s) : 0;
    phx_sha256_hex(s ? s : "", len, hex);
    if (!spec) {
        free(s);
        return;
    }
    if (!s || len < 2 || !json_is_integer(sub)) {
        /* Not the usual shape (the ingress always sets an integer clock): dump it whole. */
        free(s);
        *spec = json_dumps(job, JSON_COMPACT);
        return;
    }
    char tail[48];
    int n = snprintf(tail, sizeof(tail), "%s\"submitted_ms\":%" JSON_INTEGER_FORMAT "}",
                     len > 2 ? "," : "", json_integer_value(sub));
    s = phx_xrealloc(s, len + (size_t)n);
    memcpy(s + len - 1, tail, (size_t)n + 1); /* over the closing brace */
    *spec = s;
}

/* Why the claim holds the body's fingerprint ("ID FINGERPRINT", see phx_jobstore_idem_claim):
 * two requests with one key and different bodies can race, the second seeing the key taken
 * before the first has stored its job. Were the second to go on as a repeat, its store under
 * the first one's id could land first (another committer thread, another batch): its body
 * would become the job and the first request, the claimer, would get 409 for its own key.
 * Knowing the claimer's body from the claim itself, a request with another body is refused
 * here (422) before it stores anything, so the claimer's body is always the job. A claim
 * without a fingerprint (the planner's, or one made before this format) falls back to the
 * store's comparison, which the race can still defeat. */
static void phx_commit_idem(phx_redis *r, phx_commit_item *it, int n)
{
    int with_key = 0;
    for (int i = 0; i < n && !with_key; i++)
        with_key = it[i].live && json_object_get(it[i].rq->job, "idempotency_key") != NULL;
    if (!with_key)
        return; /* the common case: nothing to claim, nothing to allocate (~1 KB a request) */
    phx_redis_call *calls = phx_xcalloc((size_t)n, sizeof(*calls));
    redisReply **rep = phx_xcalloc((size_t)n, sizeof(*rep));
    const char *(*argv)[7] = phx_xcalloc((size_t)n, sizeof(*argv));
    char(*key)[600] = phx_xcalloc((size_t)n, sizeof(*key));
    char(*val)[256 + 66] = phx_xcalloc((size_t)n, sizeof(*val));
    char(*fp)[65] = phx_xcalloc((size_t)n, sizeof(*fp));
    int *idx = phx_xcalloc((size_t)n, sizeof(*idx));
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", PHX_IDEM_TTL_S);
    int m = 0;
    for (int i = 0; i < n; i++) {
        json_t *job = it[i].rq->job;
        const char *idem = json_string_value(json_object_get(job, "idempotency_key"));
        if (!it[i].live || !idem)
            continue;
        phx_key_idem(key[m], sizeof(key[m]), it[i].rq->who.tenant, idem);
        phx_commit_fingerprint(job, 1, fp[m], NULL);
        snprintf(val[m], sizeof(val[m]), "%s %s", json_string_value(json_object_get(job, "id")),
                 fp[m]);
        const char *av[7] = {"SET", key[m], val[m], "NX", "EX", ttl, "GET"};
        memcpy(argv[m], av, sizeof(av));
        calls[m] = (phx_redis_call){NULL, 0, 7, argv[m], NULL};
        idx[m++] = i;
    }
    phx_err err;
    phx_err_clear(&err);
    int ok = m == 0 || phx_redis_batch(r, calls, m, rep, &err) == 0;
    for (int k = 0; k < m; k++) {
        phx_commit_item *x = &it[idx[k]];
        if (!ok || rep[k]->type == REDIS_REPLY_ERROR) {
            if (ok)
                phx_err_set(&err, "redis_error", 0, "redis: %s", rep[k]->str);
            phx_commit_fail(x, "the job could not be stored durably; retry", &err);
            continue;
        }
        /* SET ... NX GET returns the old value when the key existed, nil when we set it. */
        if (rep[k]->type != REDIS_REPLY_STRING) {
            x->claimed = 1;
            continue;
        }
        const char *id = json_string_value(json_object_get(x->rq->job, "id"));
        char *sp = strchr(rep[k]->str, ' ');
        if (sp && strcmp(sp + 1, fp[k]) != 0) {
            phx_problem(
                &x->rq->a, 422, "idempotency_key_reused", "Idempotency-Key reused with another job",
                "this Idempotency-Key was used for a different job body; use a new key", NULL);
            x->live = 0;
            continue;
        }
        size_t len = sp ? (size_t)(sp - rep[k]->str) : strlen(rep[k]->str);
        if (strlen(id) != len || strncmp(rep[k]->str, id, len) != 0) {
            /* Same key again: this is the first request's job, under its id. */
            json_object_set_new(x->rq->job, "id", json_stringn(rep[k]->str, len));
            x->repeat = 1;
        }
    }
    for (int k = 0; ok && k < m; k++)
        freeReplyObject(rep[k]);
    free(calls), free(rep), free(argv), free(key), free(val), free(fp), free(idx);
}

/* --- stage 3: store --------------------------------------------------------------------- */

static void phx_commit_store(phx_redis *r, phx_commit_item *it, int n)
{
    phx_redis_call *calls = phx_xcalloc((size_t)n * 2, sizeof(*calls));
    redisReply **rep = phx_xcalloc((size_t)n * 2, sizeof(*rep));
    int *idx = phx_xcalloc((size_t)n, sizeof(*idx));
    int64_t now = phx_now_ms();
    int m = 0;
    for (int i = 0; i < n; i++) {
        phx_commit_item *x = &it[i];
        if (!x->live)
            continue;
        const phx_principal *who = &x->rq->who;
        /* With its id: the store's fingerprint (phx_jobstore_submit) tells a repeat of one
         * submission (200) from another job under a taken id (409). */
        phx_commit_fingerprint(x->rq->job, 0, x->fp, &x->spec);
        x->js = (phx_job_submit){.id = json_string_value(json_object_get(x->rq->job, "id")),
                                 .tenant = who->tenant,
                                 .principal = who->principal,
                                 .roles = who->roles,
                                 .spec = x->spec,
                                 .fingerprint = x->fp,
                                 .now_ms = now};
        phx_jobstore_submit_call(&x->js, &x->sc);
        calls[2 * m] = x->sc.calls[0], calls[2 * m + 1] = x->sc.calls[1];
        idx[m++] = i;
    }
    phx_err err;
    phx_err_clear(&err);
    int ok = m == 0 || phx_redis_batch(r, calls, 2 * m, rep, &err) == 0;
    for (int k = 0; k < m; k++) {
        phx_commit_item *x = &it[idx[k]];
        phx_answer *a = &x->rq->a;
        if (!ok || (x->rc = phx_jobstore_submit_finish(r, &x->js, &x->sc, rep + 2 * k, &err)) < 0) {
            phx_commit_fail(x, "the job could not be stored durably; retry", &err);
            continue;
        }
        if (x->rc == PHX_SUBMIT_TAKEN && x->repeat) {
            phx_problem(a, 422, "idempotency_key_reused", "Idempotency-Key reused with another job",
                        "this Idempotency-Key was used for a different job body; use a new key",
                        NULL);
            x->live = 0;
        } else if (x->rc == PHX_SUBMIT_TAKEN) {
            phx_problem(a, 409, "conflict", "Job id already exists",
                        "a job with this id was submitted before; GET it, or submit with a new id",
                        NULL);
            x->live = 0;
        } else if (x->rc == PHX_SUBMIT_TAKEN_UP) {
            /* The key's claimer finds its job stored and published: a repeat with the same
             * body (another thread) got there first, which is still the claimer's job. */
            if (x->claimed)
                phx_commit_accepted(a, x->js.id);
            else
                phx_commit_duplicate(a, x->js.id);
            x->live = 0;
        }
    }
    for (int k = 0; ok && k < 2 * m; k++)
        freeReplyObject(rep[k]);
    free(calls), free(rep), free(idx);
}

/* --- stage 4: publish ------------------------------------------------------------------- */

/* Not on Kafka: take the Redis record back so a retry with the same id works. */
static void phx_commit_unsubmit(phx_redis *r, const char *id, const char *tenant, const char *idem)
{
    char job[400], list[400], ikey[600];
    phx_key_job(job, sizeof(job), id);
    phx_key_tenant_jobs(list, sizeof(list), tenant);
    const char *del[] = {"DEL", job}, *zrem[] = {"ZREM", list, id}, *delidem[] = {"DEL", ikey};
    phx_redis_call calls[3] = {{NULL, 0, 2, del, NULL}, {NULL, 0, 3, zrem, NULL}};
    int n = 2;
    if (idem) {
        phx_key_idem(ikey, sizeof(ikey), tenant, idem);
        calls[n++] = (phx_redis_call){NULL, 0, 2, delidem, NULL};
    }
    redisReply *rep[3];
    phx_err err;
    if (phx_redis_batch(r, calls, n, rep, &err) < 0) {
        phx_logj(PHX_LOG_WARN, id, NULL, "taking back the unpublished job: %s", err.message);
        return;
    }
    for (int i = 0; i < n; i++)
        freeReplyObject(rep[i]);
}

static void phx_commit_publish(phx_commit *cm, phx_redis *r, phx_commit_item *it, int n)
{
    phx_kmsg *m = phx_xcalloc((size_t)n, sizeof(*m));
    int *idx = phx_xcalloc((size_t)n, sizeof(*idx));
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!it[i].live)
            continue;
        phx_job_kmsg(&m[k], it[i].js.id, it[i].rq->who.tenant, it[i].spec, it[i].rq->tp);
        idx[k++] = i;
    }
    phx_err err;
    phx_err_clear(&err);
    int all = k == 0 || phx_produce_batch(cm->in->producer, m, k, &err) == 0;
    /* A batch refused for good (a message the brokers will never take) is sent again message by
     * message, so that only the requests whose own message is refused fail (the planner
     * ignores a second copy of a job). A retryable failure (brokers unreachable, timed out)
     * fails the whole batch at once: one by one would wait out message.timeout.ms each. */
    int one_by_one = !all && k > 1 && !err.retryable;
    for (int j = 0; j < k; j++) {
        phx_commit_item *x = &it[idx[j]];
        const phx_principal *who = &x->rq->who;
        if (!all && (!one_by_one || phx_produce_batch(cm->in->producer, &m[j], 1, &err) < 0)) {
            /* Take back only what this request created; an earlier request's job stays for
             * its client's retry to publish. */
            if (x->rc == PHX_SUBMIT_STORED && !x->repeat)
                phx_commit_unsubmit(
                    r, x->js.id, who->tenant,
                    json_string_value(json_object_get(x->rq->job, "idempotency_key")));
            phx_commit_fail(x, "the job could not be stored durably; retry", &err);
            continue;
        }
        phx_logj(PHX_LOG_INFO, x->js.id, x->rq->tp, "job submitted by %s/%s (%s)%s", who->tenant,
                 who->principal, who->via,
                 x->rc == PHX_SUBMIT_UNSENT ? ", published on a repeat" : "");
        if (x->repeat)
            phx_commit_duplicate(&x->rq->a, x->js.id);
        else
            phx_commit_accepted(&x->rq->a, x->js.id);
        x->live = 0;
    }
    free(m);
    free(idx);
}

/* --- the committer threads -------------------------------------------------------------- */

/* Commit the n requests from head; resume their connections unless they were never suspended
 * (an inline commit, answered by the caller). */
static void phx_commit_batch(phx_commit *cm, phx_redis **r, phx_req *head, int n, int resume)
{
    phx_commit_item *it = phx_xcalloc((size_t)n, sizeof(*it));
    for (int i = 0; i < n; i++, head = head->next)
        it[i].rq = head;
    /* The batch's span hangs under its first request's span, so the Redis and Kafka calls made
     * for a batch show in that request's trace (the others' traces show their own span). */
    phx_span sp;
    phx_span_start(&sp, "group commit", PHX_SPAN_INTERNAL, it[0].rq->tp);
    phx_span_set(&sp, "phx.commit.requests", "%d", n);
    phx_err err;
    phx_err_clear(&err);
    if (!*r && !(*r = phx_redis_from_common(&cm->in->cfg->common, &err)))
        phx_logj(PHX_LOG_WARN, NULL, NULL, "group commit: %s", err.message);
    phx_commit_limits(cm, *r, it, n);
    phx_commit_idem(*r, it, n);
    phx_commit_store(*r, it, n);
    phx_commit_publish(cm, *r, it, n);
    phx_span_end(&sp);
    phx_metric_observe(cm->m_batch, (double)n);
    /* Resume last: the connection (and rq with it) may be gone as soon as it is resumed. */
    for (int i = 0; i < n; i++) {
        free(it[i].spec);
        it[i].rq->state = PHX_REQ_ANSWERED;
        if (resume)
            MHD_resume_connection(it[i].rq->conn);
    }
    free(it);
}

static void *phx_commit_main(void *arg)
{
    phx_commit *cm = arg;
    phx_redis *r = NULL; /* this thread's own connection */
    pthread_mutex_lock(&cm->mu);
    for (;;) {
        while (!cm->head && !cm->stopping)
            pthread_cond_wait(&cm->cv, &cm->mu);
        if (!cm->head)
            break; /* stopping, and nothing is left to answer */
        phx_req *head = cm->head, *last = head;
        int n = 1;
        size_t bytes = head->len;
        while (last->next && n < PHX_COMMIT_MAX && bytes + last->next->len <= PHX_COMMIT_MAX_BYTES)
            last = last->next, bytes += last->len, n++;
        cm->head = last->next;
        if (!cm->head)
            cm->tail = NULL;
        last->next = NULL;
        cm->busy++;
        pthread_mutex_unlock(&cm->mu);
        phx_commit_batch(cm, &r, head, n, 1);
        pthread_mutex_lock(&cm->mu);
        cm->busy--;
    }
    pthread_mutex_unlock(&cm->mu);
    phx_redis_free(r);
    return NULL;
}

/* One request committed by the calling HTTP thread, on a connection of the ingress's pool. */
static void phx_commit_inline(phx_commit *cm, phx_req *rq)
{
    phx_err err;
    phx_err_clear(&err);
    phx_redis *pooled = phx_ingress_redis_get(cm->in, &err), *r = pooled;
    phx_commit_batch(cm, &r, rq, 1, 0);
    /* Without a pooled connection phx_commit_batch tried one of its own: not the pool's. */
    if (pooled)
        phx_ingress_redis_put(cm->in, pooled);
    else
        phx_redis_free(r);
}

phx_commit *phx_commit_start(phx_ingress *in, int nthreads, char *err, size_t errlen)
{
    phx_commit *cm = phx_xcalloc(1, sizeof(*cm));
    cm->in = in;
    cm->m_batch =
        phx_histogram("phx_ingress_commit_batch_size",
                      "POST /v1/jobs requests answered by one group commit.", NULL, NULL, 0);
    pthread_mutex_init(&cm->mu, NULL);
    pthread_cond_init(&cm->cv, NULL);
    cm->threads = phx_xcalloc((size_t)nthreads, sizeof(*cm->threads));
    for (; cm->nthreads < nthreads; cm->nthreads++) {
        if (pthread_create(&cm->threads[cm->nthreads], NULL, phx_commit_main, cm) != 0) {
            snprintf(err, errlen, "cannot start the group commit's threads");
            phx_commit_free(cm);
            return NULL;
        }
        /* Named, so a profile (or bench_ingress.sh's per-thread CPU) tells them apart. */
        pthread_setname_np(cm->threads[cm->nthreads], "phx-commit");
    }
    return cm;
}

int phx_commit_try_inline(phx_commit *cm, phx_req *rq)
{
    pthread_mutex_lock(&cm->mu);
    if (cm->stopping || cm->head || cm->busy) {
        pthread_mutex_unlock(&cm->mu);
        return 0;
    }
    /* An idle ingress: nothing queued that this request could join and no batch in flight,
     * so there is nothing to batch it with. Committing it here, in the HTTP thread, saves two
     * thread hand-offs (to a committer and back), each a context switch of ~0.1 ms on this
     * machine, and, since its connection is never suspended, the suspension's two epoll_ctl
     * calls and the resume's wake-up of the HTTP thread (docs/benchmarks-ingress.md). While it
     * runs, busy makes the next requests queue for the committers, so they batch as before
     * under load. The cost: this HTTP thread's other connections wait for this one commit
     * (one Redis round trip per stage and one Kafka wait), which only happens when the
     * ingress was idle. */
    cm->busy++;
    pthread_mutex_unlock(&cm->mu);
    rq->next = NULL;
    phx_commit_inline(cm, rq);
    pthread_mutex_lock(&cm->mu);
    cm->busy--;
    pthread_mutex_unlock(&cm->mu);
    return 1;
}

void phx_commit_queue(phx_commit *cm, phx_req *rq)
{
    rq->next = NULL;
    pthread_mutex_lock(&cm->mu);
    if (cm->stopping) {
        /* The daemon is stopping: no committer is left to answer. */
        pthread_mutex_unlock(&cm->mu);
        phx_unavailable(&rq->a, "the server is shutting down; retry");
        rq->audit = 0;
        rq->state = PHX_REQ_ANSWERED;
        MHD_resume_connection(rq->conn);
        return;
    }
    if (cm->tail)
        cm->tail->next = rq;
    else
        cm->head = rq;
    cm->tail = rq;
    pthread_cond_signal(&cm->cv);
    pthread_mutex_unlock(&cm->mu);
}

void phx_commit_stop(phx_commit *cm)
{
    if (!cm)
        return;
    pthread_mutex_lock(&cm->mu);
    cm->stopping = 1;
    pthread_cond_broadcast(&cm->cv);
    pthread_mutex_unlock(&cm->mu);
    for (int i = 0; i < cm->nthreads; i++)
        pthread_join(cm->threads[i], NULL);
    cm->nthreads = 0;
}

void phx_commit_free(phx_commit *cm)
{
    if (!cm)
        return;
    phx_commit_stop(cm);
    pthread_mutex_destroy(&cm->mu);
    pthread_cond_destroy(&cm->cv);
    free(cm->threads);
    free(cm);
}
