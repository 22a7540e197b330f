/* provider.c -- provider chain, HTTP transport, retries and fallback (see provider.h).
 *
 * One libcurl easy handle per worker thread is reused across calls (curl_easy_reset keeps its
 * connection cache), so consecutive calls to a provider reuse the TCP/TLS connection: that is
 * most of the latency the pool adds over a direct call. */
#include "provider.h"
#include "config.h"
#include "log.h"
#include "trace.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One HTTP exchange. */
typedef struct phx_llm_http {
    char *body;
    size_t len, cap;
    int too_big;
    long retry_after_ms; /* -1 = none */
    int64_t now_wall;
} phx_llm_http;

/* --- configuration ------------------------------------------------------------------------ */

static char *phx_llm_jdup(const json_t *o, const char *k, const char *def)
{
    const char *s = json_string_value(json_object_get(o, k));
    return phx_xstrdup(s ? s : def);
}

static long phx_llm_jlong(const json_t *o, const char *k, long def)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (long)json_integer_value(v) : def;
}

static double phx_llm_jnum(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : 0.0;
}

static int phx_llm_name_ok(const char *s)
{
    if (!*s || strlen(s) >= 64)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return 0;
    return 1;
}

/* Read p's key file into p->key. Caller holds no lock; the swap is done under key_mu. */
static int phx_llm_key_load(phx_llm_provider *p, phx_err *err)
{
    if (!p->key_file[0])
        return 0;
    char e[256];
    char *k = phx_config_read_secret(p->key_file, e, sizeof(e));
    if (!k)
        return phx_err_set(err, "bad_config", 0, "provider %s: API key file %s: %s", p->name,
                           p->key_file, e);
    if (strpbrk(k, "\r\n")) {
        explicit_bzero(k, strlen(k));
        free(k);
        return phx_err_set(err, "bad_config", 0,
                           "provider %s: API key file %s holds more than one line", p->name,
                           p->key_file);
    }
    pthread_mutex_lock(&p->key_mu);
    char *old = p->key;
    p->key = k;
    pthread_mutex_unlock(&p->key_mu);
    if (old) {
        explicit_bzero(old, strlen(old));
        free(old);
    }
    return 0;
}

int phx_llm_chain_add(phx_llm_chain *c, const json_t *spec, const phx_llm_defaults *d, phx_err *err)
{
    const char *name = json_string_value(json_object_get(spec, "name"));
    char label[200], esc[128];
    if (!name)
        name = "default";
    if (!phx_llm_name_ok(name))
        return phx_err_set(err, "bad_config", 0,
                           "provider name \"%.64s\" must be 1-63 of [A-Za-z0-9._-]", name);
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->p[i].name, name) == 0)
            return phx_err_set(err, "bad_config", 0, "provider %s listed twice", name);
    const char *url = json_string_value(json_object_get(spec, "base_url"));
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return phx_err_set(err, "bad_config", 0,
                           "provider %s: base_url must be an http:// or https:// URL", name);
    phx_llm_provider *np = realloc(c->p, sizeof(*np) * (size_t)(c->n + 1));
    if (!np)
        return phx_err_set(err, "bad_config", 0, "out of memory");
    c->p = np;
    phx_llm_provider *p = &c->p[c->n];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->base_url = phx_xstrdup(url);
    size_t ul = strlen(p->base_url);
    while (ul > 0 && p->base_url[ul - 1] == '/')
        p->base_url[--ul] = '\0';
    p->model = phx_llm_jdup(spec, "model", "");
    p->embed_model = phx_llm_jdup(spec, "embed_model", "");
    p->key_file = phx_llm_jdup(spec, "api_key_file", "");
    json_t *m = json_object_get(spec, "models");
    p->models = json_is_object(m) ? json_deep_copy(m) : json_object();
    p->timeout_ms = phx_llm_jlong(spec, "timeout_ms", d->timeout_ms);
    p->max_concurrency = phx_llm_jlong(spec, "max_concurrency", d->max_concurrency);
    p->max_retries = phx_llm_jlong(spec, "max_retries", d->max_retries);
    p->max_tokens = phx_llm_jlong(spec, "max_tokens", d->max_tokens);
    p->embed_dim = phx_llm_jlong(spec, "embed_dim", 0);
    p->cost_prompt_1k = phx_llm_jnum(spec, "cost_per_1k_prompt");
    p->cost_completion_1k = phx_llm_jnum(spec, "cost_per_1k_completion");
    pthread_mutex_init(&p->key_mu, NULL);
    phx_breaker_init(&p->breaker, &d->breaker);
    char bname[sizeof(p->breaker.name)];
    snprintf(bname, sizeof(bname), "llm:%s", p->name);
    phx_breaker_name(&p->breaker, bname);
    phx_bulkhead_init(&p->bulkhead, bname, p->max_concurrency, d->bulkhead_wait_ms);
    c->n++; /* from here on phx_llm_chain_free cleans p up */
    if (p->timeout_ms < 1 || p->max_concurrency < 1 || p->max_retries < 0 || p->max_tokens < 1)
        return phx_err_set(err, "bad_config", 0,
                           "provider %s: timeout_ms, max_concurrency and max_tokens must be "
                           "positive, max_retries not negative",
                           name);
    if (!p->model[0] && !p->embed_model[0])
        return phx_err_set(err, "bad_config", 0,
                           "provider %s: set model (chat) and/or embed_model (embeddings)", name);
    if (phx_llm_key_load(p, err) < 0)
        return -1;
    phx_metrics_escape_label(esc, sizeof(esc), name);
    snprintf(label, sizeof(label), "provider=\"%s\"", esc);
    p->m_state =
        phx_gauge("phx_llm_breaker_state",
                  "Circuit breaker of each LLM provider: 0 closed, 1 open, 2 half-open.", label);
    return 0;
}

void phx_llm_chain_free(phx_llm_chain *c)
{
    for (int i = 0; i < c->n; i++) {
        phx_llm_provider *p = &c->p[i];
        free(p->base_url);
        free(p->model);
        free(p->embed_model);
        free(p->key_file);
        json_decref(p->models);
        if (p->key) {
            explicit_bzero(p->key, strlen(p->key));
            free(p->key);
        }
        pthread_mutex_destroy(&p->key_mu);
        phx_breaker_destroy(&p->breaker);
        phx_bulkhead_destroy(&p->bulkhead);
    }
    free(c->p);
    c->p = NULL;
    c->n = 0;
}

int phx_llm_chain_reload_keys(phx_llm_chain *c)
{
    int bad = 0;
    for (int i = 0; i < c->n; i++) {
        phx_err e;
        if (!c->p[i].key_file[0])
            continue;
        if (phx_llm_key_load(&c->p[i], &e) < 0) {
            phx_log_warn("SIGHUP: keeping the previous key: %s", e.message);
            bad++;
        } else {
            phx_log_info("SIGHUP: provider %s: API key re-read from %s", c->p[i].name,
                         c->p[i].key_file);
        }
    }
    return bad;
}

int phx_llm_chain_serves(const phx_llm_chain *c, int cap)
{
    for (int i = 0; i < c->n; i++)
        if ((cap == PHX_LLM_CAP_CHAT ? c->p[i].model : c->p[i].embed_model)[0])
            return 1;
    return 0;
}

const char *phx_llm_provider_model(const phx_llm_provider *p, int cap, const char *alias)
{
    const char *def = cap == PHX_LLM_CAP_CHAT ? p->model : p->embed_model;
    if (!def[0])
        return NULL; /* the provider does not do this at all */
    if (!alias || !alias[0])
        return def;
    const char *m = json_string_value(json_object_get(p->models, alias));
    if (m)
        return m;
    /* The provider's own default name is always accepted, so the one-variable configuration
     * (PHX_LLM_MODEL) needs no model map. */
    return strcmp(alias, def) == 0 ? def : NULL;
}

/* --- one HTTP exchange ------------------------------------------------------------------ */

long phx_llm_retry_after_ms(const char *v, int64_t now_wall_ms)
{
    while (*v == ' ' || *v == '\t')
        v++;
    if (!*v)
        return -1;
    if (isdigit((unsigned char)*v)) {
        char *end;
        double s = strtod(v, &end);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (*end || s < 0 || s > 86400)
            return -1;
        return (long)(s * 1000);
    }
    time_t t = curl_getdate(v, NULL);
    if (t < 0)
        return -1;
    long ms = (long)((int64_t)t * 1000 - now_wall_ms);
    return ms < 0 ? 0 : ms;
}

long phx_llm_backoff_ms(long base, long cap, int attempt)
{
    long ceil = base;
    for (int i = 0; i < attempt && ceil < cap; i++)
        ceil *= 2;
    if (ceil > cap)
        ceil = cap;
    return ceil > 0 ? (long)(phx_rand_u64() % (uint64_t)(ceil + 1)) : 0;
}

static size_t phx_llm_on_body(char *data, size_t sz, size_t nmemb, void *arg)
{
    phx_llm_http *h = arg;
    size_t n = sz * nmemb;
    if (h->len + n > (size_t)PHX_LLM_MAX_RESPONSE) {
        h->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (h->len + n + 1 > h->cap) {
        size_t nc = h->cap ? h->cap : 16384;
        while (nc < h->len + n + 1)
            nc *= 2;
        char *nb = realloc(h->body, nc);
        if (!nb)
            return 0;
        h->body = nb;
        h->cap = nc;
    }
    memcpy(h->body + h->len, data, n);
    h->len += n;
    h->body[h->len] = '\0';
    return n;
}

static size_t phx_llm_on_header(char *data, size_t sz, size_t nmemb, void *arg)
{
    phx_llm_http *h = arg;
    size_t n = sz * nmemb;
    char line[256];
    if (n >= sizeof(line))
        return n;
    memcpy(line, data, n);
    line[n] = '\0';
    if (strncasecmp(line, "retry-after-ms:", 15) == 0) {
        char *end;
        long ms = strtol(line + 15, &end, 10);
        if (end != line + 15 && ms >= 0) /* a value that is not a number is ignored */
            h->retry_after_ms = ms;      /* more precise than Retry-After: wins */
    } else if (strncasecmp(line, "retry-after:", 12) == 0 && h->retry_after_ms < 0) {
        h->retry_after_ms = phx_llm_retry_after_ms(line + 12, h->now_wall);
    }
    return n;
}

/* Send one request. Returns the HTTP status, or 0 on a transport failure (curl code in *cc,
 * curl's message in errbuf). */
static long phx_llm_http_post(CURL *curl, phx_llm_provider *p, const char *path, const char *body,
                              long timeout_ms, phx_llm_http *h, CURLcode *cc,
                              char errbuf[CURL_ERROR_SIZE])
{
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", p->base_url, path);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    pthread_mutex_lock(&p->key_mu);
    if (p->key && p->key[0]) {
        size_t n = strlen(p->key) + 32;
        char *auth = phx_xmalloc(n);
        snprintf(auth, n, "Authorization: Bearer %s", p->key);
        hdrs = curl_slist_append(hdrs, auth);
        explicit_bzero(auth, n);
        free(auth);
    }
    pthread_mutex_unlock(&p->key_mu);
    h->retry_after_ms = -1;
    h->now_wall = phx_now_ms();
    errbuf[0] = '\0';
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    curl_easy_setopt(curl, CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "phoenix-llm/1");
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, phx_llm_on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, phx_llm_on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    phx_span sp;
    if (phx_span_call(&sp, "http POST", PHX_SPAN_CLIENT))
        phx_span_set(&sp, "url.path", "%s", path);
    *cc = curl_easy_perform(curl);
    long status = 0;
    if (*cc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    phx_span_set(&sp, "http.response.status_code", "%ld", status);
    if (*cc != CURLE_OK)
        phx_span_fail(&sp, "%s", curl_easy_strerror(*cc));
    else if (status >= 400)
        phx_span_fail(&sp, "HTTP %ld", status);
    phx_span_end(&sp);
    /* The header list held the key: scrub libcurl's copies before freeing them. */
    for (struct curl_slist *s = hdrs; s; s = s->next)
        explicit_bzero(s->data, strlen(s->data));
    curl_slist_free_all(hdrs);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    return status;
}

/* --- the chain ---------------------------------------------------------------------------- */

/* What one attempt amounted to. */
enum phx_llm_outcome {
    PHX_LLM_OK,
    PHX_LLM_RETRY,    /* provider failure: retry / fall back (counts against the breaker) */
    PHX_LLM_THROTTLE, /* 429: retry after a while (counts against the breaker too) */
    PHX_LLM_NOT_HERE, /* 401/403/404: next provider, no retry, provider healthy */
    PHX_LLM_REJECTED, /* other 4xx: the request is bad everywhere */
};

static void phx_llm_count(const phx_llm_provider *p, const char *outcome, double seconds)
{
    char labels[200], esc[128];
    phx_metrics_escape_label(esc, sizeof(esc), p->name);
    snprintf(labels, sizeof(labels), "provider=\"%s\",outcome=\"%s\"", esc, outcome);
    phx_metric_add(phx_counter("phx_llm_requests_total",
                               "HTTP requests to LLM providers, by provider and outcome.", labels),
                   1);
    if (seconds >= 0) {
        snprintf(labels, sizeof(labels), "provider=\"%s\"", esc);
        static const double bounds[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60};
        phx_metric_observe(phx_histogram("phx_llm_request_duration_seconds",
                                         "Duration of one HTTP request to an LLM provider.", labels,
                                         bounds, 13),
                           seconds);
    }
}

/* Pull a short, safe error text out of a provider's error body ({"error":{"message":...}}). */
static void phx_llm_error_text(const phx_llm_http *h, char *out, size_t n)
{
    out[0] = '\0';
    if (!h->body)
        return;
    json_t *j = json_loadb(h->body, h->len, 0, NULL);
    json_t *e = json_object_get(j, "error");
    const char *m = json_string_value(json_is_object(e) ? json_object_get(e, "message") : e);
    snprintf(out, n, "%.200s", m ? m : h->body);
    json_decref(j);
    for (char *s = out; *s; s++)
        if (*s == '\n' || *s == '\r')
            *s = ' ';
    phx_utf8_scrub(out);
}

/* Classify one finished request; on PHX_LLM_OK *resp gets the parsed body. */
static int phx_llm_judge(const phx_llm_provider *p, long status, CURLcode cc, const char *errbuf,
                         phx_llm_http *h, phx_llm_check_fn check, void *arg, json_t **resp,
                         const char **outcome, char *why, size_t whylen)
{
    char txt[256];
    if (status == 0) {
        int to = cc == CURLE_OPERATION_TIMEDOUT;
        *outcome = to ? "timeout" : h->too_big ? "too_large" : "transport";
        if (h->too_big)
            snprintf(why, whylen, "answer larger than %ld bytes", PHX_LLM_MAX_RESPONSE);
        else
            snprintf(why, whylen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
        return PHX_LLM_RETRY;
    }
    if (status >= 200 && status < 300) {
        json_error_t je;
        json_t *j = h->body ? json_loadb(h->body, h->len, 0, &je) : NULL;
        char cw[200] = "";
        if (!j) {
            snprintf(why, whylen, "HTTP %ld with a body that is not JSON (%s)", status,
                     h->body ? je.text : "empty");
        } else if (!json_is_object(j) || (check && check(j, p, arg, cw, sizeof(cw)) < 0)) {
            snprintf(why, whylen, "HTTP %ld with a malformed answer: %s", status,
                     cw[0] ? cw : "not an object");
        } else {
            *resp = j;
            *outcome = "ok";
            return PHX_LLM_OK;
        }
        json_decref(j);
        *outcome = "malformed";
        return PHX_LLM_RETRY;
    }
    phx_llm_error_text(h, txt, sizeof(txt));
    snprintf(why, whylen, "HTTP %ld%s%s", status, txt[0] ? ": " : "", txt);
    if (status == 429) {
        *outcome = "throttled";
        return PHX_LLM_THROTTLE;
    }
    if (status >= 500 || status == 408 || status == 409) {
        *outcome = "http_error";
        return PHX_LLM_RETRY;
    }
    *outcome = "rejected";
    if (status == 401 || status == 403 || status == 404)
        return PHX_LLM_NOT_HERE;
    return PHX_LLM_REJECTED;
}

static void phx_llm_note(char *buf, size_t n, const char *name, const char *what)
{
    size_t l = strlen(buf);
    if (l + 4 < n)
        snprintf(buf + l, n - l, "%s%s: %s", l ? "; " : "", name, what);
}

/* Try provider p. Returns 1 done (ok, *resp set), 0 move on, -1 stop with err set. */
static int phx_llm_try(phx_llm_chain *c, phx_llm_provider *p, CURL *curl, const char *path,
                       const char *body, int64_t deadline, phx_llm_check_fn check, void *arg,
                       json_t **resp, int *attempts, int *refused, char *notes, size_t nlen,
                       phx_err *err)
{
    char why[400];
    for (int a = 0; a <= p->max_retries; a++) {
        int64_t now = phx_mono_ms();
        long timeout = p->timeout_ms;
        if (deadline > 0) {
            if (deadline - now < 1) {
                phx_llm_note(notes, nlen, p->name, "deadline reached");
                return phx_err_set(err, "timeout", 1,
                                   "the step's deadline passed while calling LLM providers (%s)",
                                   notes);
            }
            if (deadline - now < timeout)
                timeout = (long)(deadline - now);
        }
        phx_err full;
        if (phx_bulkhead_enter(&p->bulkhead, &full) < 0) {
            phx_llm_count(p, "bulkhead_full", -1);
            phx_llm_note(notes, nlen, p->name, "bulkhead full");
            (*refused)++;
            return 0;
        }
        int ticket = phx_breaker_allow(&p->breaker, now);
        if (ticket == PHX_BREAKER_DENIED) {
            phx_bulkhead_leave(&p->bulkhead);
            phx_metric_set(p->m_state, phx_breaker_state(&p->breaker, now));
            phx_llm_count(p, "breaker_open", -1);
            phx_llm_note(notes, nlen, p->name, "circuit open");
            return 0;
        }
        phx_llm_http h = {0};
        CURLcode cc;
        char errbuf[CURL_ERROR_SIZE];
        long status = phx_llm_http_post(curl, p, path, body, timeout, &h, &cc, errbuf);
        phx_bulkhead_leave(&p->bulkhead);
        (*attempts)++;
        const char *outcome = "ok";
        int v =
            phx_llm_judge(p, status, cc, errbuf, &h, check, arg, resp, &outcome, why, sizeof(why));
        int64_t done = phx_mono_ms();
        phx_llm_count(p, outcome, (double)(done - now) / 1000.0);
        phx_breaker_record(&p->breaker, done, ticket,
                           v == PHX_LLM_OK || v == PHX_LLM_NOT_HERE || v == PHX_LLM_REJECTED);
        phx_metric_set(p->m_state, phx_breaker_state(&p->breaker, done));
        long ra = h.retry_after_ms;
        free(h.body);
        if (v == PHX_LLM_OK)
            return 1;
        phx_log_info("llm provider %s: attempt %d: %s", p->name, a + 1, why);
        if (v == PHX_LLM_REJECTED)
            return phx_err_set(err, "provider_rejected", 0, "provider %s refused the request: %s",
                               p->name, why);
        if (v == PHX_LLM_NOT_HERE || a == p->max_retries ||
            phx_breaker_state(&p->breaker, done) != PHX_BREAKER_CLOSED) {
            phx_llm_note(notes, nlen, p->name, why);
            return 0;
        }
        long wait = phx_llm_backoff_ms(c->backoff_ms, c->backoff_max_ms, a);
        if (ra >= 0 && ra > c->retry_after_max_ms) {
            char w[500];
            snprintf(w, sizeof(w), "%s (Retry-After %ld ms is beyond the cap)", why, ra);
            phx_llm_note(notes, nlen, p->name, w);
            return 0;
        }
        if (ra > wait)
            wait = ra;
        if (deadline > 0 && phx_mono_ms() + wait >= deadline) {
            phx_llm_note(notes, nlen, p->name, why);
            return 0; /* no time to wait here; maybe the next provider answers at once */
        }
        phx_sleep_ms(wait);
    }
    return 0;
}

int phx_llm_chain_post(phx_llm_chain *c, CURL *curl, int cap, const char *alias, const char *path,
                       json_t *body, int64_t deadline_mono_ms, phx_llm_check_fn check, void *arg,
                       phx_llm_reply *out, phx_err *err)
{
    char notes[1500] = "";
    int served = 0, refused = 0;
    memset(out, 0, sizeof(*out));
    if (!phx_llm_chain_serves(c, cap))
        return phx_err_set(err, "no_provider", 0, "no LLM provider configured for %s",
                           cap == PHX_LLM_CAP_CHAT ? "chat" : "embeddings");
    for (int i = 0; i < c->n; i++) {
        phx_llm_provider *p = &c->p[i];
        const char *model = phx_llm_provider_model(p, cap, alias);
        if (!model)
            continue;
        served++;
        json_object_set_new(body, "model", json_string(model));
        char *text = json_dumps(body, JSON_COMPACT);
        if (!text)
            return phx_err_set(err, "internal", 1, "out of memory");
        json_t *resp = NULL;
        int rc = phx_llm_try(c, p, curl, path, text, deadline_mono_ms, check, arg, &resp,
                             &out->attempts, &refused, notes, sizeof(notes), err);
        free(text);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            out->resp = resp;
            out->provider = p;
            snprintf(out->model, sizeof(out->model), "%s", model);
            return 0;
        }
    }
    if (!served)
        return phx_err_set(err, "model_unavailable", 0,
                           "no configured LLM provider serves model \"%.100s\"",
                           alias ? alias : "");
    /* Every provider was only busy (our own bulkheads full), none failed: back-pressure, the
     * pool holds the message in Kafka instead of failing the step (see bulkhead.h). */
    if (refused == served)
        return phx_err_set(err, PHX_BULKHEAD_FULL, 1, "every LLM provider is at its limit: %s",
                           notes);
    return phx_err_set(err, "provider_unavailable", 1, "every LLM provider failed: %s", notes);
}

/* --- the chain from configuration ---------------------------------------------------------- */

int phx_llm_chain_build(phx_llm_chain *c, const phx_llm_provider_cfg *cfg, long bulkhead_wait_ms,
                        const phx_schema_set *set, phx_err *err)
{
    phx_llm_defaults d = {
        .timeout_ms = cfg->timeout_ms,
        .max_concurrency = cfg->max_concurrency,
        .max_retries = cfg->max_retries,
        .max_tokens = cfg->max_tokens,
        .bulkhead_wait_ms = bulkhead_wait_ms,
        .breaker = {cfg->br_window_ms, cfg->br_min_requests, cfg->br_failure_pct, cfg->br_open_ms,
                    cfg->br_probes},
    };
    c->backoff_ms = cfg->backoff_ms;
    c->backoff_max_ms = cfg->backoff_max_ms;
    c->retry_after_max_ms = cfg->retry_after_max_ms;
    if (cfg->providers[0]) {
        if (cfg->base_url[0])
            return phx_err_set(err, "bad_config", 0,
                               "set PHX_LLM_PROVIDERS or PHX_LLM_BASE_URL, not both");
        json_error_t je;
        json_t *doc = json_load_file(cfg->providers, JSON_REJECT_DUPLICATES, &je), *errors = NULL;
        if (!doc)
            return phx_err_set(err, "bad_config", 0, "PHX_LLM_PROVIDERS %s: %s (line %d)",
                               cfg->providers, je.text, je.line);
        const phx_schema *s = phx_schema_set_get(set, "llm-providers.v1");
        if (s && phx_schema_validate(s, doc, &errors) != 0) {
            char *e = json_dumps(errors, JSON_COMPACT);
            phx_err_set(err, "bad_config", 0, "PHX_LLM_PROVIDERS %s fails llm-providers.v1: %.400s",
                        cfg->providers, e ? e : "");
            free(e);
            json_decref(errors);
            json_decref(doc);
            return -1;
        }
        size_t i;
        json_t *p;
        int rc = 0;
        json_array_foreach(json_object_get(doc, "providers"), i, p) if (rc == 0) rc =
            phx_llm_chain_add(c, p, &d, err);
        json_decref(doc);
        return rc;
    }
    if (!cfg->base_url[0]) {
        if (cfg->model[0] || cfg->key_file[0] || cfg->embed_model[0])
            return phx_err_set(err, "bad_config", 0,
                               "PHX_LLM_MODEL/API_KEY_FILE/EMBED_MODEL need PHX_LLM_BASE_URL");
        return 0;
    }
    if (!cfg->model[0] && !cfg->embed_model[0])
        return phx_err_set(err, "bad_config", 0,
                           "PHX_LLM_BASE_URL needs PHX_LLM_MODEL (and/or PHX_LLM_EMBED_MODEL)");
    json_t *spec = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "default", "base_url",
                             cfg->base_url, "model", cfg->model, "embed_model", cfg->embed_model,
                             "api_key_file", cfg->key_file);
    if (cfg->embed_dim_check > 0)
        json_object_set_new(spec, "embed_dim", json_integer(cfg->embed_dim_check));
    int rc = phx_llm_chain_add(c, spec, &d, err);
    json_decref(spec);
    return rc;
}
