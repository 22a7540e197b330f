/* redis.c -- hiredis client with timeouts, reconnect and scripts by SHA (see redis.h). */
#include "redis.h"
#include "redact.h"
#include "breaker.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "retry.h"
#include "trace.h"
#include "util.h"

#include <openssl/sha.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct phx_redis {
    redisContext *c;
    char host[256];
    int port;
    char unix_path[256];
    int db;
    char *user;
    char *password;
    char *password_file; /* re-read at every connect, so a rotated password needs no restart */
    int timeout_ms;
    phx_breaker *breaker; /* not owned */
    phx_metric *m_breaker;
    phx_metric *m_cmds; /* round trips: what phx-bench divides by steps */
    /* Latency series by command, looked up once per client (the registry lookup locks). */
    struct {
        char cmd[20];
        phx_metric *dur;
    } m_cmd[24];
    int nm_cmd;
};

/* The latency histogram of command cmd (bounded: command names come from the source code, and
 * anything unexpected is counted as "other"; a batch of several commands is "pipeline"). */
static phx_metric *phx_redis_cmd_metric(phx_redis *r, const char *cmd, size_t len)
{
    char name[20];
    size_t n = 0;
    for (; n < len && n + 1 < sizeof(name); n++) {
        char ch = cmd[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')))
            break;
        name[n] = (char)(ch | 0x20);
    }
    name[n] = '\0';
    if (n == 0 || n < len)
        snprintf(name, sizeof(name), "other");
    for (int i = 0; i < r->nm_cmd; i++)
        if (strcmp(r->m_cmd[i].cmd, name) == 0)
            return r->m_cmd[i].dur;
    char labels[64];
    snprintf(labels, sizeof(labels), "command=\"%s\"", name);
    phx_metric *m =
        phx_histogram("phx_redis_command_duration_seconds",
                      "Redis call latency (reconnects included), by command; a batch of several "
                      "commands in one round trip is command=\"pipeline\".",
                      labels, NULL, 0);
    if (r->nm_cmd < (int)(sizeof(r->m_cmd) / sizeof(r->m_cmd[0]))) {
        snprintf(r->m_cmd[r->nm_cmd].cmd, sizeof(r->m_cmd[0].cmd), "%s", name);
        r->m_cmd[r->nm_cmd++].dur = m;
    }
    return m;
}

static void phx_redis_count_error(const char *kind)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "kind=\"%s\"", kind);
    phx_metric_add(phx_counter("phx_redis_errors_total",
                               "Redis commands that failed: unavailable (no answer within the "
                               "timeout, or breaker open) or error_reply.",
                               labels),
                   1);
}

/* Reconnects: 20 ms, 40 ms, ... up to 1 s, +-50%, within the command's time budget. */
static const phx_retry_policy phx_redis_reconnect = {6, 20, 1000, 50};

void phx_redis_set_breaker(phx_redis *r, phx_breaker *b)
{
    r->breaker = b;
    r->m_breaker = phx_gauge("phx_breaker_state",
                             "Circuit breaker state per dependency: 0 closed, 1 open, 2 half-open.",
                             "dep=\"redis\"");
}

static int phx_redis_parse_url(phx_redis *r, const char *url, phx_err *err)
{
    if (strncmp(url, "unix://", 7) == 0) {
        snprintf(r->unix_path, sizeof(r->unix_path), "%s", url + 7);
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return phx_err_set(err, "bad_config", 0, "redis url %s: need redis:// or unix://", url);
    const char *p = url + 8, *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (colon > p)
                r->user = strndup(p, (size_t)(colon - p));
            r->password = strndup(colon + 1, (size_t)(at - colon - 1));
        } else {
            r->password = strndup(p, (size_t)(at - p));
        }
        phx_redact_add(r->password); /* a password in the URL must not reach a log line */
        p = at + 1;
    }
    const char *colon = strrchr(p, ':'), *slash = strchr(p, '/');
    size_t hostlen = colon ? (size_t)(colon - p) : slash ? (size_t)(slash - p) : strlen(p);
    if (hostlen == 0 || hostlen >= sizeof(r->host))
        return phx_err_set(err, "bad_config", 0, "redis url %s: bad host", url);
    memcpy(r->host, p, hostlen);
    r->host[hostlen] = '\0';
    r->port = 6379;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (port <= 0 || port > 65535 || (*end && *end != '/'))
            return phx_err_set(err, "bad_config", 0, "redis url %s: bad port", url);
        r->port = (int)port;
    }
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (db < 0 || db > 15 || *end)
            return phx_err_set(err, "bad_config", 0, "redis url %s: bad db", url);
        r->db = (int)db;
    }
    return 0;
}

phx_redis *phx_redis_new(const char *url, const char *password_file, int timeout_ms, phx_err *err)
{
    phx_redis *r = calloc(1, sizeof(*r));
    r->timeout_ms = timeout_ms;
    r->m_cmds =
        phx_counter("phx_redis_commands_total",
                    "Redis commands sent by this process (each one network round trip).", NULL);
    if (phx_redis_parse_url(r, url, err) < 0)
        goto err;
    if (password_file && *password_file) {
        char e[256];
        free(r->password);
        r->password_file = strdup(password_file);
        r->password = phx_config_read_secret(password_file, e, sizeof(e));
        if (!r->password) {
            phx_err_set(err, "bad_config", 0, "PHX_REDIS_PASSWORD_FILE: %s", e);
            goto err;
        }
    }
    return r;
err:
    phx_redis_free(r);
    return NULL;
}

phx_redis *phx_redis_from_common(const phx_common *c, phx_err *err)
{
    return phx_redis_new(c->redis_url, getenv("PHX_REDIS_PASSWORD_FILE"), (int)c->redis_timeout_ms,
                         err);
}

void phx_redis_free(phx_redis *r)
{
    if (!r)
        return;
    if (r->c)
        redisFree(r->c);
    free(r->user);
    free(r->password);
    free(r->password_file);
    free(r);
}

static void phx_redis_drop(phx_redis *r)
{
    if (r->c) {
        redisFree(r->c);
        r->c = NULL;
    }
}

/* Connect, authenticate and select the db. 0 or -1 (with why). */
static int phx_redis_connect(phx_redis *r, char *why, size_t whylen)
{
    struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};
    redisReply *rep = NULL;
    /* hiredis 0.14 (Debian 12): connect timeout at connect, command timeout after. */
    r->c = r->unix_path[0] ? redisConnectUnixWithTimeout(r->unix_path, tv)
                           : redisConnectWithTimeout(r->host, r->port, tv);
    if (!r->c || r->c->err || redisSetTimeout(r->c, tv) != REDIS_OK) {
        snprintf(why, whylen, "connect %.200s:%d: %.120s", r->unix_path[0] ? r->unix_path : r->host,
                 r->port, r->c ? r->c->errstr : "out of memory");
        goto err;
    }
    if (r->password_file) {
        char e[256];
        char *pw = phx_config_read_secret(r->password_file, e, sizeof(e));
        if (pw) { /* else keep the last good one: a half-written file must not lock us out */
            free(r->password);
            r->password = pw;
        }
    }
    if (r->password) {
        rep = r->user ? redisCommand(r->c, "AUTH %s %s", r->user, r->password)
                      : redisCommand(r->c, "AUTH %s", r->password);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            snprintf(why, whylen, "auth failed: %s", rep ? rep->str : r->c->errstr);
            goto err;
        }
        freeReplyObject(rep);
    }
    if (r->db) {
        rep = redisCommand(r->c, "SELECT %d", r->db);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            snprintf(why, whylen, "select %d failed", r->db);
            goto err;
        }
        freeReplyObject(rep);
    }
    return 0;
err:
    if (rep)
        freeReplyObject(rep);
    phx_redis_drop(r);
    return -1;
}

/* One command of a batch: argv and lengths. */
typedef struct phx_redis_cmdbuf {
    int argc;
    const char **argv;
    const size_t *lens;
} phx_redis_cmdbuf;

/* Write n commands, then read their n replies: one network round trip. 0, or -1 with why (the
 * connection is dropped and every reply read so far freed). */
static int phx_redis_exchange(phx_redis *r, int n, const phx_redis_cmdbuf *cmds, redisReply **rep,
                              char *why, size_t whylen)
{
    int i = 0, got = 0;
    for (; i < n; i++)
        if (redisAppendCommandArgv(r->c, cmds[i].argc, cmds[i].argv, cmds[i].lens) != REDIS_OK)
            goto err;
    phx_metric_add(r->m_cmds, 1);
    for (; got < n; got++) {
        void *reply = NULL;
        if (redisGetReply(r->c, &reply) != REDIS_OK || !reply)
            goto err;
        rep[got] = reply;
    }
    return 0;
err:
    snprintf(why, whylen, "%s", r->c->errstr[0] ? r->c->errstr : "no reply");
    while (got > 0)
        freeReplyObject(rep[--got]);
    phx_redis_drop(r);
    return -1;
}

/* Send a batch, reconnecting with backoff on I/O errors until the time budget is spent. After
 * an I/O error the whole batch is sent again: every caller's commands are idempotent or
 * compare-and-set (see redis.h). 0 with n replies, or -1 with err. */
static int phx_redis_send_batch(phx_redis *r, int n, const phx_redis_cmdbuf *cmds, redisReply **rep,
                                const char *script, phx_err *err)
{
    int64_t t0 = phx_mono_ms(), deadline = t0 + r->timeout_ms;
    char why[256] = "";
    /* One span and one latency sample per round trip: "redis GET", "redis EVALSHA name", or
     * "redis pipeline" for a batch. */
    const char *cmd = n == 1 ? cmds[0].argv[0] : "pipeline";
    size_t cmdlen = n == 1 && cmds[0].lens ? cmds[0].lens[0] : strlen(cmd);
    phx_span sp;
    if (phx_span_call(&sp, "redis", PHX_SPAN_CLIENT)) {
        snprintf(sp.name, sizeof(sp.name), "redis %.*s%s%s", (int)(cmdlen < 20 ? cmdlen : 20), cmd,
                 script ? " " : "", script ? script : "");
        phx_span_set(&sp, "db.system", "redis");
        if (n > 1)
            phx_span_set(&sp, "db.redis.commands", "%d", n);
    }
    struct timespec ts0, ts1;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    int ticket = r->breaker ? phx_breaker_allow(r->breaker, t0) : PHX_BREAKER_NORMAL;
    if (ticket == PHX_BREAKER_DENIED) {
        phx_err_set(err, "redis_unavailable", 1, "redis: circuit breaker open");
        phx_redis_count_error("unavailable");
        phx_span_fail(&sp, "circuit breaker open");
        phx_span_end(&sp);
        return -1;
    }
    int ok = 0;
    for (int attempt = 1;; attempt++) {
        if ((r->c || phx_redis_connect(r, why, sizeof(why)) == 0) &&
            phx_redis_exchange(r, n, cmds, rep, why, sizeof(why)) == 0) {
            ok = 1;
            break;
        }
        int64_t left = deadline - phx_mono_ms();
        if (left <= 0 || attempt >= phx_redis_reconnect.max_attempts)
            break;
        int64_t sleep = phx_retry_delay(&phx_redis_reconnect, attempt);
        phx_sleep_ms(sleep < left ? sleep : left);
    }
    /* Error replies are answers: only a missing answer counts against the dependency. */
    if (r->breaker) {
        int64_t now = phx_mono_ms();
        phx_breaker_record_timed(r->breaker, now, ticket, ok, now - t0);
        phx_metric_set(r->m_breaker, phx_breaker_state(r->breaker, now));
    }
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    phx_metric_observe(phx_redis_cmd_metric(r, cmd, cmdlen),
                       (double)(ts1.tv_sec - ts0.tv_sec) + (ts1.tv_nsec - ts0.tv_nsec) / 1e9);
    if (!ok) {
        phx_err_set(err, "redis_unavailable", 1, "redis: %s", why);
        phx_redis_count_error("unavailable");
        phx_span_fail(&sp, "%s", why);
        phx_span_end(&sp);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (rep[i]->type == REDIS_REPLY_ERROR && strncmp(rep[i]->str, "NOSCRIPT", 8) != 0) {
            phx_redis_count_error("error_reply");
            phx_span_fail(&sp, "%s", rep[i]->str);
        }
    }
    phx_span_end(&sp);
    return 0;
}

static redisReply *phx_redis_send(phx_redis *r, int argc, const char **argv, const size_t *lens,
                                  const char *script, phx_err *err)
{
    phx_redis_cmdbuf c = {argc, argv, lens};
    redisReply *rep = NULL;
    return phx_redis_send_batch(r, 1, &c, &rep, script, err) == 0 ? rep : NULL;
}

static redisReply *phx_redis_check(redisReply *rep, phx_err *err)
{
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        phx_err_set(err, "redis_error", 0, "redis: %s", rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

redisReply *phx_redis_cmdv(phx_redis *r, phx_err *err, int argc, const char **argv,
                           const size_t *lens)
{
    return phx_redis_check(phx_redis_send(r, argc, argv, lens, NULL, err), err);
}

redisReply *phx_redis_cmd(phx_redis *r, phx_err *err, const char *fmt, ...)
{
    /* Format once into the wire protocol, then split back into argv so that the same
     * reconnect path serves both APIs. */
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0) {
        phx_err_set(err, "redis_error", 0, "redis: bad command format");
        return NULL;
    }
    /* Parse "*N\r\n$L\r\n<bytes>\r\n..." */
    int argc = atoi(cmd + 1);
    const char **argv = calloc((size_t)argc, sizeof(*argv));
    size_t *lens = calloc((size_t)argc, sizeof(*lens));
    char *p = strchr(cmd, '\n') + 1;
    for (int i = 0; i < argc; i++) {
        lens[i] = (size_t)strtoul(p + 1, &p, 10);
        p += 2;
        argv[i] = p;
        p += lens[i] + 2;
    }
    redisReply *rep = phx_redis_cmdv(r, err, argc, argv, lens);
    free(argv);
    free(lens);
    redisFreeCommand(cmd);
    return rep;
}

static void phx_redis_sha1(const char *src, char out[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)src, strlen(src), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

/* argv for EVALSHA of s: av and lv hold argc + 3 entries; sha and nk are their buffers. */
static void phx_redis_evalsha_argv(const phx_script *s, int nkeys, int argc, const char **argv,
                                   const size_t *lens, const char **av, size_t *lv, char sha[41],
                                   char nk[16])
{
    phx_redis_sha1(s->src, sha);
    snprintf(nk, 16, "%d", nkeys);
    av[0] = "EVALSHA", lv[0] = 7;
    av[1] = sha, lv[1] = 40;
    av[2] = nk, lv[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        lv[i + 3] = lens ? lens[i] : strlen(argv[i]);
    }
}

static int phx_redis_load(phx_redis *r, const phx_script *s, phx_err *err)
{
    const char *la[] = {"SCRIPT", "LOAD", s->src};
    redisReply *rep = phx_redis_check(phx_redis_send(r, 3, la, NULL, NULL, err), err);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    return 0;
}

static int phx_redis_noscript(const redisReply *rep)
{
    return rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0;
}

redisReply *phx_redis_eval(phx_redis *r, const phx_script *s, int nkeys, int argc,
                           const char **argv, const size_t *lens, phx_err *err)
{
    char sha[41], nk[16];
    int n = argc + 3;
    const char **av = calloc((size_t)n, sizeof(*av));
    size_t *lv = calloc((size_t)n, sizeof(*lv));
    phx_redis_evalsha_argv(s, nkeys, argc, argv, lens, av, lv, sha, nk);
    redisReply *rep = phx_redis_send(r, n, av, lv, s->name, err);
    if (phx_redis_noscript(rep)) {
        freeReplyObject(rep);
        rep = NULL;
        if (phx_redis_load(r, s, err) < 0)
            goto out;
        rep = phx_redis_send(r, n, av, lv, s->name, err);
    }
    rep = phx_redis_check(rep, err);
    if (!rep)
        phx_logj(PHX_LOG_WARN, NULL, NULL, "redis script %s: %s", s->name,
                 err ? err->message : "failed");
out:
    free(av);
    free(lv);
    return rep;
}

int phx_redis_pipeline(phx_redis *r, const phx_redis_call *calls, int n, redisReply **rep,
                       phx_err *err)
{
    phx_redis_cmdbuf cmds[PHX_REDIS_PIPELINE_MAX];
    char sha[PHX_REDIS_PIPELINE_MAX][41], nk[PHX_REDIS_PIPELINE_MAX][16];
    int nscripts = 0, rc = -1, i;
    if (n < 1 || n > PHX_REDIS_PIPELINE_MAX)
        return phx_err_set(err, "bad_call", 0, "redis pipeline of %d commands", n);
    for (i = 0; i < n; i++)
        nscripts += calls[i].script != NULL;
    if (nscripts > 1)
        return phx_err_set(err, "bad_call", 0, "redis pipeline with %d scripts", nscripts);
    memset(cmds, 0, sizeof(cmds));
    for (i = 0; i < n; i++) {
        const phx_redis_call *c = &calls[i];
        int argc = c->argc + (c->script ? 3 : 0);
        const char **av = calloc((size_t)argc, sizeof(*av));
        size_t *lv = calloc((size_t)argc, sizeof(*lv));
        if (c->script) {
            phx_redis_evalsha_argv(c->script, c->nkeys, c->argc, c->argv, c->lens, av, lv, sha[i],
                                   nk[i]);
        } else {
            for (int k = 0; k < argc; k++) {
                av[k] = c->argv[k];
                lv[k] = c->lens ? c->lens[k] : strlen(c->argv[k]);
            }
        }
        cmds[i] = (phx_redis_cmdbuf){argc, av, lv};
    }
    const char *script = NULL;
    for (i = 0; i < n; i++)
        if (calls[i].script)
            script = calls[i].script->name;
    if (phx_redis_send_batch(r, n, cmds, rep, script, err) < 0)
        goto out;
    /* A script unknown to this server (restarted, flushed) did not run, and neither did it
     * change anything: load it and send it again with everything after it, so the commands
     * that read what it wrote still see it. The earlier commands stand. */
    for (i = 0; i < n && !phx_redis_noscript(rep[i]); i++)
        ;
    if (i < n) {
        for (int k = i; k < n; k++)
            freeReplyObject(rep[k]);
        if (phx_redis_load(r, calls[i].script, err) < 0 ||
            phx_redis_send_batch(r, n - i, cmds + i, rep + i, script, err) < 0) {
            for (int k = 0; k < i; k++)
                freeReplyObject(rep[k]);
            goto out;
        }
    }
    rc = 0;
    for (i = 0; i < n; i++) {
        if (rc == 0 && rep[i]->type == REDIS_REPLY_ERROR) {
            phx_err_set(err, "redis_error", 0, "redis: %s%s%s", rep[i]->str,
                        calls[i].script ? " in script " : "",
                        calls[i].script ? calls[i].script->name : "");
            rc = -1;
        }
    }
    if (rc < 0) {
        for (i = 0; i < n; i++) {
            freeReplyObject(rep[i]);
            rep[i] = NULL;
        }
    }
out:
    for (i = 0; i < n; i++) {
        free((void *)cmds[i].argv);
        free((void *)cmds[i].lens);
    }
    return rc;
}

int phx_redis_ping(phx_redis *r, char *why, size_t whylen)
{
    phx_err e;
    redisReply *rep = phx_redis_cmd(r, &e, "PING");
    if (!rep) {
        snprintf(why, whylen, "%s", e.message);
        return -1;
    }
    freeReplyObject(rep);
    return 0;
}
