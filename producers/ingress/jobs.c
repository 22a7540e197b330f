/* jobs.c -- the /v1/jobs handlers of phx-ingress: submit, read, list, cancel.
 *
 * Tenant isolation is enforced here by construction: every lookup carries the caller's
 * tenant, and a job of another tenant answers exactly like a missing one (404), so job ids
 * are not an oracle for what other tenants run. */
#include "dag.h"
#include "ingress_int.h"
#include "jobstore.h"
#include "log.h"
#include "msg.h"
#include "rbac.h"
#include "trace.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* --- POST /v1/jobs ---------------------------------------------------------------------- */

/* Bring the submitted body to a job.v1 the planner will accept, or fill a 400/403. */
json_t *phx_jobs_prepare(const phx_ctx *c, const char *idem, phx_answer *a)
{
    const phx_principal *who = c->who;
    json_t *job = phx_body_object(c, a);
    if (!job)
        return NULL;
    const char *tenant = json_string_value(json_object_get(job, "tenant"));
    if (tenant && strcmp(tenant, who->tenant) != 0) {
        phx_problem(a, 403, "forbidden", "Tenant mismatch",
                    "the job names a tenant other than the caller's", NULL);
        goto err;
    }
    json_object_del(job, "submitted_ms"); /* the ingress's clock, not the client's */
    phx_job_defaults(job);
    json_object_set_new(job, "tenant", json_string(who->tenant));
    json_object_set_new(job, "principal", json_string(who->principal));
    if (idem) {
        if (!*idem || strlen(idem) > 256) {
            phx_problem(a, 400, "invalid_header", "Bad Idempotency-Key",
                        "Idempotency-Key must be 1 to 256 characters", NULL);
            goto err;
        }
        json_object_set_new(job, "idempotency_key", json_string(idem));
    }
    json_t *errors = NULL;
    if (phx_schema_validate(phx_schema_set_get(c->in->schemas, "job.v1"), job, &errors) != 0) {
        phx_problem(a, 400, "invalid_job", "The job does not match schema job.v1", NULL, errors);
        goto err;
    }
    json_t *steps = json_object_get(job, "steps");
    if (!steps) {
        /* Goal only: planned by llm.plan (see workers/planner/expand.h), which needs llm:use. */
        if (!(who->scopes & phx_rbac_kind_scope("llm.plan"))) {
            phx_problem(a, 403, "insufficient_scope", "Planning a goal needs the llm:use scope",
                        NULL, NULL);
            goto err;
        }
        return job;
    }
    if (phx_dag_check(steps, &errors) < 0) {
        phx_problem(a, 400, "invalid_job", "The job's steps are not a valid DAG", NULL, errors);
        goto err;
    }
    if (phx_rbac_check_steps(steps, who->scopes, &errors) < 0) {
        phx_problem(a, 403, "insufficient_scope", "A step kind is not allowed for this principal",
                    NULL, errors);
        goto err;
    }
    return job;
err:
    json_decref(job);
    return NULL;
}

/* --- GET /v1/jobs/{id} ------------------------------------------------------------------ */

void phx_jobs_get(const phx_ctx *c, phx_answer *a)
{
    const char *id = c->arg;
    if (!phx_id_valid(id)) {
        phx_problem(a, 404, "not_found", "No such job", NULL, NULL);
        return;
    }
    phx_err err;
    phx_err_clear(&err);
    phx_redis *r = phx_ingress_redis_get(c->in, &err);
    json_t *view = r ? phx_jobstore_view(r, id, &err) : NULL;
    if (r)
        phx_ingress_redis_put(c->in, r);
    const char *tenant = json_string_value(json_object_get(view, "tenant"));
    if (view && tenant && strcmp(tenant, c->who->tenant) == 0) {
        phx_ok(a, 200, view);
        return;
    }
    json_decref(view);
    /* Another tenant's job answers exactly like a missing one: ids are not an oracle. */
    if (view || strcmp(err.code, "not_found") == 0)
        phx_problem(a, 404, "not_found", "No such job", NULL, NULL);
    else
        phx_unavailable(a, err.message);
}

/* --- DELETE /v1/jobs/{id} --------------------------------------------------------------- */

void phx_jobs_cancel(const phx_ctx *c, phx_answer *a)
{
    const char *id = c->arg;
    if (!phx_id_valid(id)) {
        phx_problem(a, 404, "not_found", "No such job", NULL, NULL);
        return;
    }
    phx_err err;
    phx_err_clear(&err);
    char *state = NULL, by[300];
    snprintf(by, sizeof(by), "%s/%s", c->who->tenant, c->who->principal);
    phx_redis *r = phx_ingress_redis_get(c->in, &err);
    int rc = r ? phx_jobstore_cancel(r, id, c->who->tenant, by, phx_now_ms(), &state, &err) : -1;
    if (r)
        phx_ingress_redis_put(c->in, r);
    if (rc == 1) {
        phx_logj(PHX_LOG_INFO, id, NULL, "job cancelled by %s (%s)", by, c->who->via);
        phx_ok(a, 202, json_pack("{s:s, s:s}", "job_id", id, "state", "cancelled"));
    } else if (rc == 2) {
        char d[200];
        snprintf(d, sizeof(d), "the job is already %s", state);
        phx_problem(a, 409, "conflict", "Job already finished", d, NULL);
    } else if (rc == 0) {
        phx_problem(a, 404, "not_found", "No such job", NULL, NULL);
    } else {
        phx_unavailable(a, err.message);
    }
    free(state);
}

/* --- GET /v1/jobs?state=&limit=&cursor= ------------------------------------------------- */

static const char *const phx_job_states[] = {"submitted", "running",   "succeeded",
                                             "failed",    "cancelled", "rejected"};

static int phx_jobs_state_valid(const char *s)
{
    for (size_t i = 0; i < sizeof(phx_job_states) / sizeof(phx_job_states[0]); i++)
        if (strcmp(s, phx_job_states[i]) == 0)
            return 1;
    return 0;
}

/* Cursor "MS:ID": the listing is newest first by created_ms, ties in descending id order
 * (Redis's order for equal scores in ZREVRANGEBYSCORE). */
static int phx_jobs_cursor(const char *s, long long *ms, const char **id)
{
    char *end;
    *ms = strtoll(s, &end, 10);
    if (end == s || *end != ':' || *ms < 0 || !phx_id_valid(end + 1))
        return -1;
    *id = end + 1;
    return 0;
}

/* One list entry in *e (NULL when the job is gone -- expired --, filtered out, or not the
 * tenant's: phx_jobstore_submit adds an entry before it knows whether the id was free, and
 * takes it back at once when it was not). 0, or -1 with err. */
static int phx_jobs_entry(phx_redis *r, const char *id, const char *tenant, const char *want,
                          json_t **e, phx_err *err)
{
    char key[256];
    phx_key_job(key, sizeof(key), id);
    *e = NULL;
    redisReply *rep = phx_redis_cmd(r, err, "HMGET %s state created_ms finished_ms tenant", key);
    if (!rep)
        return -1;
    if (rep->elements == 4 && rep->element[0]->type == REDIS_REPLY_STRING &&
        rep->element[3]->type == REDIS_REPLY_STRING && strcmp(rep->element[3]->str, tenant) == 0 &&
        (!want || strcmp(want, rep->element[0]->str) == 0)) {
        *e = json_pack("{s:s, s:s}", "job_id", id, "state", rep->element[0]->str);
        for (int i = 1; i <= 2; i++)
            if (rep->element[i]->type == REDIS_REPLY_STRING)
                json_object_set_new(*e, i == 1 ? "created_ms" : "finished_ms",
                                    json_integer(strtoll(rep->element[i]->str, NULL, 10)));
    }
    freeReplyObject(rep);
    return 0;
}

int phx_jobs_query_parse(const char *state, const char *limit, const char *cursor,
                         phx_jobs_query *q, phx_answer *a)
{
    json_t *errors = json_array();
    q->state = state;
    q->limit = 20;
    q->cursor_ms = -1;
    q->cursor_id = NULL;
    if (state && !phx_jobs_state_valid(state))
        json_array_append_new(errors, json_string("state: not a job state"));
    if (limit && ((q->limit = strtol(limit, NULL, 10)) < 1 || q->limit > 100))
        json_array_append_new(errors, json_string("limit: an integer from 1 to 100"));
    if (cursor && phx_jobs_cursor(cursor, &q->cursor_ms, &q->cursor_id) < 0)
        json_array_append_new(errors, json_string("cursor: not a cursor this API returned"));
    if (json_array_size(errors)) {
        phx_problem(a, 400, "invalid_query", "Bad query parameters", NULL, errors);
        return -1;
    }
    json_decref(errors);
    return 0;
}

void phx_jobs_list(const phx_ctx *c, phx_answer *a)
{
    struct MHD_Connection *conn = c->conn;
    phx_jobs_query q;
    if (phx_jobs_query_parse(MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "state"),
                             MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit"),
                             MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "cursor"), &q,
                             a) < 0)
        return;
    const char *state = q.state, *cid = q.cursor_id;
    long limit = q.limit;
    long long cms = q.cursor_ms;
    phx_err err;
    phx_err_clear(&err);
    phx_redis *r = phx_ingress_redis_get(c->in, &err);
    if (!r) {
        phx_unavailable(a, err.message);
        return;
    }
    char key[300], max[40], next[200] = "";
    phx_key_tenant_jobs(key, sizeof(key), c->who->tenant);
    json_t *items = json_array();
    long long last_ms = -1;
    char last_id[160] = "";
    int exhausted = 0;
    if (cms >= 0)
        snprintf(max, sizeof(max), "%lld", cms);
    else
        snprintf(max, sizeof(max), "+inf");
    /* Scan in batches; a state filter may skip many entries, so bound the work per page. */
    for (int scanned = 0, offset = 0;
         !exhausted && scanned < 2000 && json_array_size(items) < (size_t)limit;) {
        redisReply *rep = phx_redis_cmd(
            r, &err, "ZREVRANGEBYSCORE %s %s -inf WITHSCORES LIMIT %d 200", key, max, offset);
        if (!rep)
            goto unavailable;
        exhausted = rep->elements < 400;
        size_t i;
        for (i = 0; i + 1 < rep->elements && json_array_size(items) < (size_t)limit;
             i += 2, scanned++) {
            const char *id = rep->element[i]->str;
            long long ms = strtoll(rep->element[i + 1]->str, NULL, 10);
            if (cid && ms == cms && strcmp(id, cid) >= 0)
                continue; /* on or before the cursor */
            json_t *e;
            if (phx_jobs_entry(r, id, c->who->tenant, state, &e, &err) < 0) {
                freeReplyObject(rep);
                goto unavailable;
            }
            if (e)
                json_array_append_new(items, e);
            last_ms = ms;
            snprintf(last_id, sizeof(last_id), "%s", id);
        }
        if (i + 1 < rep->elements)
            exhausted = 0; /* stopped before the end of the batch: more follow */
        offset += (int)(rep->elements / 2);
        freeReplyObject(rep);
    }
    if (last_id[0] && !exhausted)
        snprintf(next, sizeof(next), "%lld:%s", last_ms, last_id);
    phx_ingress_redis_put(c->in, r);
    phx_ok(a, 200, json_pack("{s:o}", "jobs", items));
    if (next[0])
        json_object_set_new(a->json, "next_cursor", json_string(next));
    return;
unavailable:
    phx_ingress_redis_put(c->in, r);
    json_decref(items);
    phx_unavailable(a, err.message);
}
