/* redis.c -- hiredis client with timeouts, reconnect and scripts by SHA (see redis.h). */
#include "redis.h"
#include "redact.h"
#include "breaker.h"
#include "bulkhead.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "retry.h"
#include "rslot.h"
#include "trace.h"
#include "util.h"

#include <openssl/sha.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PHX_REDIS_MAX_SENTINELS 16
#define PHX_REDIS_MAX_NODES     64 /* cluster primaries (and seeds) one client may know */
#define PHX_REDIS_NO_NODE       0xFFFF

/* One host:port. */
typedef struct phx_redis_addr {
    char host[256];
    int port;
} phx_redis_addr;

/* A server and this client's connection to it (NULL until needed, and after an I/O error). */
typedef struct phx_redis_node {
    redisContext *c;
    char host[256];
    int port;
} phx_redis_node;

struct phx_redis {
    phx_redis_node node; /* the server; with sentinels, the master they named last */
    /* Cluster mode (cnodes != NULL): a connection per primary, found through the slot map
     * (slot -> index in cnodes) read with CLUSTER SLOTS from any node; MOVED updates a slot
     * and has the whole map read again before the next batch; ASK sends one command to the
     * importing node. The seeds are only where the first map is asked. */
    phx_redis_node *cnodes;
    int ncnodes;
    uint16_t *slots;
    int map_ok; /* 0: read the map before routing anything */
    /* Sentinel mode (nsentinels > 0): the master is asked of the sentinels at every connect,
     * and a server that is not (or no longer) the master counts as a lost connection. */
    phx_redis_addr sentinels[PHX_REDIS_MAX_SENTINELS];
    int nsentinels, sentinel_next; /* the one that answered last is asked first */
    char *master_name;
    int wait_replicas; /* > 0: every batch ends with WAIT for this many replica acks */
    char unix_path[256];
    int db;
    char *user;
    char *password;
    char *password_file; /* re-read at every connect, so a rotated password needs no restart */
    int timeout_ms;
    phx_breaker *breaker;   /* not owned */
    phx_bulkhead *bulkhead; /* not owned */
    phx_metric *m_breaker;
    phx_metric *m_cmds; /* round trips: what phx-bench divides by steps */
    /* Latency series by command, looked up once per client (the registry lookup locks). */
    struct {
        char cmd[20];
        phx_metric *dur;
    } m_cmd[24];
    int nm_cmd;
    /* Scripts' SHA1s, computed once per client: hashing a script's source for every EVALSHA
     * (the ingress sends one or two per request) cost more than the call's other argument
     * building. A script not among the first few is hashed every time. */
    struct {
        const phx_script *s;
        const char *src; /* the source it was hashed from (scripts are static: see redis.h) */
        char sha[41];
    } shas[8];
    int nshas;
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
                               "timeout, or breaker open), bulkhead_full (refused by the "
                               "process's Redis bulkhead) or error_reply.",
                               labels),
                   1);
}

/* See phx_redis_thread_bulkhead: a per-thread default, not shared state. */
static __thread phx_bulkhead *phx_redis_thread_bh;

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
                r->user = phx_xstrndup(p, (size_t)(colon - p));
            r->password = phx_xstrndup(colon + 1, (size_t)(at - colon - 1));
        } else {
            r->password = phx_xstrndup(p, (size_t)(at - p));
        }
        phx_redact_add(r->password); /* a password in the URL must not reach a log line */
        p = at + 1;
    }
    const char *colon = strrchr(p, ':'), *slash = strchr(p, '/');
    size_t hostlen = colon ? (size_t)(colon - p) : slash ? (size_t)(slash - p) : strlen(p);
    if (hostlen == 0 || hostlen >= sizeof(r->node.host))
        return phx_err_set(err, "bad_config", 0, "redis url %s: bad host", url);
    memcpy(r->node.host, p, hostlen);
    r->node.host[hostlen] = '\0';
    r->node.port = 6379;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (port <= 0 || port > 65535 || (*end && *end != '/'))
            return phx_err_set(err, "bad_config", 0, "redis url %s: bad port", url);
        r->node.port = (int)port;
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

/* Parse "host:port,host:port" into addrs (at most max). The count, or -1 with err. */
static int phx_redis_parse_addrs(const char *list, const char *what, phx_redis_addr *addrs, int max,
                                 phx_err *err)
{
    int n = 0;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memrchr(p, ':', len);
        char *pend;
        long port = colon ? strtol(colon + 1, &pend, 10) : 0;
        if (!colon || colon == p || (size_t)(colon - p) >= sizeof(addrs[0].host) || port <= 0 ||
            port > 65535 || pend != p + len)
            return phx_err_set(err, "bad_config", 0, "%s=%s: need host:port[,host:port...]", what,
                               list);
        if (n == max)
            return phx_err_set(err, "bad_config", 0, "%s: more than %d entries", what, max);
        memcpy(addrs[n].host, p, (size_t)(colon - p));
        addrs[n].host[colon - p] = '\0';
        addrs[n++].port = (int)port;
        p += len + (end ? 1 : 0);
    }
    return n;
}

phx_redis *phx_redis_new_ex(const char *url, const char *password_file, int timeout_ms,
                            const phx_redis_topology *t, phx_err *err)
{
    phx_redis *r = phx_xcalloc(1, sizeof(*r));
    r->timeout_ms = timeout_ms;
    r->bulkhead = phx_redis_thread_bh;
    r->m_cmds =
        phx_counter("phx_redis_commands_total",
                    "Redis commands sent by this process (each one network round trip).", NULL);
    if (phx_redis_parse_url(r, url, err) < 0)
        goto err;
    if (password_file && *password_file) {
        char e[256];
        free(r->password);
        r->password_file = phx_xstrdup(password_file);
        r->password = phx_config_read_secret(password_file, e, sizeof(e));
        if (!r->password) {
            phx_err_set(err, "bad_config", 0, "PHX_REDIS_PASSWORD_FILE: %s", e);
            goto err;
        }
    }
    if (t && t->sentinels && *t->sentinels) {
        r->nsentinels = phx_redis_parse_addrs(t->sentinels, "PHX_REDIS_SENTINELS", r->sentinels,
                                              PHX_REDIS_MAX_SENTINELS, err);
        if (r->nsentinels < 0)
            goto err;
        if (!t->master_name || !*t->master_name) {
            phx_err_set(err, "bad_config", 0, "PHX_REDIS_SENTINELS needs PHX_REDIS_MASTER_NAME");
            goto err;
        }
        if (r->unix_path[0]) {
            phx_err_set(err, "bad_config", 0, "PHX_REDIS_SENTINELS needs a redis:// URL");
            goto err;
        }
        r->master_name = phx_xstrdup(t->master_name);
    }
    if (t && t->cluster_nodes && *t->cluster_nodes) {
        phx_redis_addr seeds[PHX_REDIS_MAX_NODES];
        int n = phx_redis_parse_addrs(t->cluster_nodes, "PHX_REDIS_CLUSTER_NODES", seeds,
                                      PHX_REDIS_MAX_NODES, err);
        if (n < 0)
            goto err;
        if (r->nsentinels || r->unix_path[0] || r->db) {
            phx_err_set(err, "bad_config", 0,
                        "PHX_REDIS_CLUSTER_NODES: a cluster has no Sentinel, no unix socket and "
                        "only db 0");
            goto err;
        }
        r->cnodes = phx_xcalloc(PHX_REDIS_MAX_NODES, sizeof(*r->cnodes));
        r->slots = phx_xmalloc(PHX_RSLOT_COUNT * sizeof(*r->slots));
        for (int i = 0; i < n; i++) {
            snprintf(r->cnodes[i].host, sizeof(r->cnodes[i].host), "%s", seeds[i].host);
            r->cnodes[i].port = seeds[i].port;
        }
        r->ncnodes = n;
    }
    if (t && (t->wait_replicas < 0 || t->wait_replicas > 16)) {
        phx_err_set(err, "bad_config", 0, "PHX_REDIS_WAIT_REPLICAS=%ld: need 0..16",
                    t->wait_replicas);
        goto err;
    }
    r->wait_replicas = t ? (int)t->wait_replicas : 0;
    return r;
err:
    phx_redis_free(r);
    return NULL;
}

phx_redis *phx_redis_new(const char *url, const char *password_file, int timeout_ms, phx_err *err)
{
    /* Tools without a config table (the CLI, phx-bench) take the topology from the same
     * environment variables the long-running processes document. */
    const char *w = getenv("PHX_REDIS_WAIT_REPLICAS");
    char *end = NULL;
    phx_redis_topology t = {getenv("PHX_REDIS_SENTINELS"), getenv("PHX_REDIS_MASTER_NAME"),
                            w && *w ? strtol(w, &end, 10) : 0, getenv("PHX_REDIS_CLUSTER_NODES")};
    if (end && *end)
        t.wait_replicas = -1; /* not a number: refused below */
    return phx_redis_new_ex(url, password_file, timeout_ms, &t, err);
}

phx_redis *phx_redis_from_common(const phx_common *c, phx_err *err)
{
    phx_redis_topology t = {c->redis_sentinels, c->redis_master_name, c->redis_wait_replicas,
                            c->redis_cluster_nodes};
    return phx_redis_new_ex(c->redis_url, getenv("PHX_REDIS_PASSWORD_FILE"),
                            (int)c->redis_timeout_ms, &t, err);
}

void phx_redis_free(phx_redis *r)
{
    if (!r)
        return;
    if (r->node.c)
        redisFree(r->node.c);
    for (int i = 0; i < r->ncnodes; i++)
        if (r->cnodes[i].c)
            redisFree(r->cnodes[i].c);
    free(r->cnodes);
    free(r->slots);
    free(r->user);
    free(r->password);
    free(r->password_file);
    free(r->master_name);
    free(r);
}

static void phx_redis_drop(phx_redis_node *nd)
{
    if (nd->c) {
        redisFree(nd->c);
        nd->c = NULL;
    }
}

/* Ask the sentinels, the last one that answered first, where the master called master_name is
 * now, into r->node. 0, or -1 with why (every sentinel's failure is the last one's). */
static int phx_redis_discover(phx_redis *r, struct timeval tv, char *why, size_t whylen)
{
    for (int k = 0; k < r->nsentinels; k++) {
        int i = (r->sentinel_next + k) % r->nsentinels;
        const phx_redis_addr *s = &r->sentinels[i];
        redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
        redisReply *rep = NULL;
        if (!c || c->err || redisSetTimeout(c, tv) != REDIS_OK) {
            snprintf(why, whylen, "sentinel %.200s:%d: %.120s", s->host, s->port,
                     c ? c->errstr : "out of memory");
        } else if (!(rep =
                         redisCommand(c, "SENTINEL get-master-addr-by-name %s", r->master_name))) {
            snprintf(why, whylen, "sentinel %.200s:%d: %.120s", s->host, s->port, c->errstr);
        } else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
                   rep->element[0]->type != REDIS_REPLY_STRING ||
                   rep->element[0]->len >= sizeof(r->node.host)) {
            snprintf(why, whylen, "sentinel %.200s:%d does not know master %.100s%s%.100s", s->host,
                     s->port, r->master_name, rep->type == REDIS_REPLY_ERROR ? ": " : "",
                     rep->type == REDIS_REPLY_ERROR ? rep->str : "");
        } else {
            snprintf(r->node.host, sizeof(r->node.host), "%s", rep->element[0]->str);
            r->node.port = (int)strtol(rep->element[1]->str, NULL, 10);
            r->sentinel_next = i;
            freeReplyObject(rep);
            redisFree(c);
            return 0;
        }
        if (rep)
            freeReplyObject(rep);
        if (c)
            redisFree(c);
    }
    return -1;
}

/* Connect, authenticate and select the db; with sentinels, find the master first and check
 * that it still is one (a sentinel can answer with an address that was just demoted). 0 or -1
 * (with why). */
static int phx_redis_connect(phx_redis *r, phx_redis_node *nd, char *why, size_t whylen)
{
    struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};
    redisReply *rep = NULL;
    if (nd == &r->node && r->nsentinels && phx_redis_discover(r, tv, why, whylen) < 0)
        return -1;
    /* hiredis 0.14 (Debian 12): connect timeout at connect, command timeout after. */
    nd->c = r->unix_path[0] ? redisConnectUnixWithTimeout(r->unix_path, tv)
                            : redisConnectWithTimeout(nd->host, nd->port, tv);
    if (!nd->c || nd->c->err || redisSetTimeout(nd->c, tv) != REDIS_OK) {
        snprintf(why, whylen, "connect %.200s:%d: %.120s",
                 r->unix_path[0] ? r->unix_path : nd->host, nd->port,
                 nd->c ? nd->c->errstr : "out of memory");
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
        rep = r->user ? redisCommand(nd->c, "AUTH %s %s", r->user, r->password)
                      : redisCommand(nd->c, "AUTH %s", r->password);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            snprintf(why, whylen, "auth failed: %s", rep ? rep->str : nd->c->errstr);
            goto err;
        }
        freeReplyObject(rep);
    }
    if (r->db) {
        rep = redisCommand(nd->c, "SELECT %d", r->db);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            snprintf(why, whylen, "select %d failed", r->db);
            goto err;
        }
        freeReplyObject(rep);
    }
    if (r->nsentinels) {
        rep = redisCommand(nd->c, "ROLE");
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            strcmp(rep->element[0]->str, "master") != 0) {
            snprintf(why, whylen, "%.200s:%d, named by the sentinels, is not the master (yet)",
                     nd->host, nd->port);
            goto err;
        }
        freeReplyObject(rep);
    }
    return 0;
err:
    if (rep)
        freeReplyObject(rep);
    phx_redis_drop(nd);
    return -1;
}

/* One command of a batch: argv and lengths. */
typedef struct phx_redis_cmdbuf {
    int argc;
    const char **argv;
    const size_t *lens;
    const char *route; /* cluster: route by this key instead of the command's own (or NULL) */
    size_t route_len;
} phx_redis_cmdbuf;

/* Write n commands, then read their n replies: one network round trip. With wait_replicas, a
 * WAIT goes last in the same round trip, and fewer acknowledgements than asked for count as a
 * failure of the whole batch: the caller sends it again (after finding the master again), so
 * nothing the caller sees as done lives on one server only. 0, or -1 with why (the connection
 * is dropped and every reply read so far freed). */
static int phx_redis_exchange(phx_redis *r, phx_redis_node *nd, int n, const phx_redis_cmdbuf *cmds,
                              redisReply **rep, char *why, size_t whylen)
{
    int i = 0, got = 0;
    why[0] = '\0';
    for (; i < n; i++)
        if (redisAppendCommandArgv(nd->c, cmds[i].argc, cmds[i].argv, cmds[i].lens) != REDIS_OK)
            goto err;
    if (r->wait_replicas > 0 &&
        redisAppendCommand(nd->c, "WAIT %d %d", r->wait_replicas, r->timeout_ms / 2) != REDIS_OK)
        goto err;
    phx_metric_add(r->m_cmds, 1);
    for (; got < n; got++) {
        void *reply = NULL;
        if (redisGetReply(nd->c, &reply) != REDIS_OK || !reply)
            goto err;
        rep[got] = reply;
    }
    if (r->wait_replicas > 0) {
        redisReply *w = NULL;
        if (redisGetReply(nd->c, (void **)&w) != REDIS_OK || !w)
            goto err;
        long long acks = w->type == REDIS_REPLY_INTEGER ? w->integer : -1;
        freeReplyObject(w);
        if (acks < r->wait_replicas) {
            snprintf(why, whylen, "%.200s:%d: %lld of %d replicas acknowledged the writes",
                     nd->host, nd->port, acks, r->wait_replicas);
            goto err;
        }
    }
    return 0;
err:
    if (!why[0])
        snprintf(why, whylen, "%s", nd->c->errstr[0] ? nd->c->errstr : "no reply");
    while (got > 0)
        freeReplyObject(rep[--got]);
    phx_redis_drop(nd);
    return -1;
}

/* With sentinels, a server that refuses writes (READONLY: it was demoted; NOREPLICAS: its
 * min-replicas-to-write is not met) or has lost its master link (MASTERDOWN) is answering for
 * the old topology: the batch is sent again to the
 * master the sentinels name. Nothing it refused was applied. 1 when rep holds such a reply. */
static int phx_redis_stale_master(const phx_redis *r, int n, redisReply **rep, char *why,
                                  size_t whylen)
{
    if (!r->nsentinels)
        return 0;
    for (int i = 0; i < n; i++)
        if (rep[i]->type == REDIS_REPLY_ERROR && (strncmp(rep[i]->str, "READONLY", 8) == 0 ||
                                                  strncmp(rep[i]->str, "MASTERDOWN", 10) == 0 ||
                                                  strncmp(rep[i]->str, "NOREPLICAS", 10) == 0)) {
            snprintf(why, whylen, "%.200s:%d: %.160s", r->node.host, r->node.port, rep[i]->str);
            return 1;
        }
    return 0;
}

/* --- Redis Cluster: slot routing ------------------------------------------------------- */

/* The node host:port, added when new; NULL when the table is full. */
static phx_redis_node *phx_redis_cnode(phx_redis *r, const char *host, int port)
{
    for (int i = 0; i < r->ncnodes; i++)
        if (r->cnodes[i].port == port && strcmp(r->cnodes[i].host, host) == 0)
            return &r->cnodes[i];
    if (r->ncnodes == PHX_REDIS_MAX_NODES || strlen(host) >= sizeof(r->cnodes[0].host))
        return NULL;
    phx_redis_node *nd = &r->cnodes[r->ncnodes++];
    snprintf(nd->host, sizeof(nd->host), "%s", host);
    nd->port = port;
    return nd;
}

/* Fill the slot map from one CLUSTER SLOTS reply of node nd. 0, or -1 when it is unusable. */
static int phx_redis_cluster_map(phx_redis *r, const phx_redis_node *nd, const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0)
        return -1;
    for (int i = 0; i < PHX_RSLOT_COUNT; i++)
        r->slots[i] = PHX_REDIS_NO_NODE;
    char seen_host[256];
    snprintf(seen_host, sizeof(seen_host), "%s", nd->host); /* nd may move: copy */
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
            continue;
        const redisReply *m = e->element[2];
        /* An empty host means "the address you reached me at". */
        const char *host = m->element[0]->type == REDIS_REPLY_STRING && m->element[0]->len > 0
                               ? m->element[0]->str
                               : seen_host;
        phx_redis_node *to = phx_redis_cnode(r, host, (int)m->element[1]->integer);
        long long a = e->element[0]->integer, b = e->element[1]->integer;
        if (!to || a < 0 || b >= PHX_RSLOT_COUNT)
            continue;
        for (long long k = a; k <= b; k++)
            r->slots[k] = (uint16_t)(to - r->cnodes);
    }
    return 0;
}

/* Read the slot map from the first node that answers (known primaries and seeds alike). */
static int phx_redis_cluster_refresh(phx_redis *r, char *why, size_t whylen)
{
    snprintf(why, whylen, "no cluster node answered CLUSTER SLOTS");
    for (int i = 0; i < r->ncnodes; i++) {
        phx_redis_node *nd = &r->cnodes[i];
        if (!nd->c && phx_redis_connect(r, nd, why, whylen) < 0)
            continue;
        redisReply *rep = redisCommand(nd->c, "CLUSTER SLOTS");
        if (!rep) {
            snprintf(why, whylen, "%.200s:%d: %.120s", nd->host, nd->port, nd->c->errstr);
            phx_redis_drop(nd);
            continue;
        }
        int rc = phx_redis_cluster_map(r, nd, rep);
        if (rc < 0)
            snprintf(why, whylen, "%.200s:%d: no slot map (%.120s)", nd->host, nd->port,
                     rep->type == REDIS_REPLY_ERROR ? rep->str : "empty");
        freeReplyObject(rep);
        if (rc == 0) {
            r->map_ok = 1;
            return 0;
        }
    }
    return -1;
}

/* The node (index) that serves command c: its key's slot, or for a command without a key the
 * node of slot 0 (any node would do). -1 when the map does not know it. */
static int phx_redis_cluster_route(const phx_redis *r, const phx_redis_cmdbuf *c)
{
    int slot = c->route ? phx_rslot_of(c->route, c->route_len)
                        : phx_rslot_of_cmd(c->argc, c->argv, c->lens);
    uint16_t ni = r->slots[slot < 0 ? 0 : slot];
    return ni == PHX_REDIS_NO_NODE ? -1 : ni;
}

/* "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381": 1 with the fields, else 0. */
static int phx_redis_redirect(const redisReply *rep, int *ask, int *slot, char *host,
                              size_t hostlen, int *port)
{
    const char *s = rep->str;
    if (strncmp(s, "MOVED ", 6) == 0)
        *ask = 0, s += 6;
    else if (strncmp(s, "ASK ", 4) == 0)
        *ask = 1, s += 4;
    else
        return 0;
    char *end;
    long sl = strtol(s, &end, 10);
    const char *colon = strrchr(end, ':');
    if (end == s || *end != ' ' || !colon || sl < 0 || sl >= PHX_RSLOT_COUNT ||
        (size_t)(colon - end - 1) >= hostlen)
        return 0;
    memcpy(host, end + 1, (size_t)(colon - end - 1));
    host[colon - end - 1] = '\0';
    *slot = (int)sl;
    *port = (int)strtol(colon + 1, NULL, 10);
    return *port > 0;
}

/* Send commands *done..n-1 to their nodes: each run of consecutive commands for one node is one
 * round trip, the runs one after the other, so the batch keeps its order (the planner relies on
 * a timer being written before the step it guards). A run's replies are kept as it completes
 * (*done moves on); the caller's retry goes on from there. MOVED: the slot is updated, the map
 * is read again, the command and those after it are sent again to the new owner. ASK: that
 * command alone, once, to the importing node, after ASKING. 0 when all are done, or -1 with
 * why (TRYAGAIN, CLUSTERDOWN, a node unreachable: the caller backs off and retries). */
static int phx_redis_cluster_batch(phx_redis *r, int n, const phx_redis_cmdbuf *cmds,
                                   redisReply **rep, int *done, char *why, size_t whylen)
{
    int redirects = 0;
    while (*done < n) {
        if (!r->map_ok && phx_redis_cluster_refresh(r, why, whylen) < 0)
            return -1;
        int ni = phx_redis_cluster_route(r, &cmds[*done]), end = *done + 1;
        if (ni < 0) {
            r->map_ok = 0;
            snprintf(why, whylen, "no cluster node serves the slot of %.*s (cluster down?)",
                     (int)(cmds[*done].lens ? cmds[*done].lens[0] : strlen(cmds[*done].argv[0])),
                     cmds[*done].argv[0]);
            return -1;
        }
        while (end < n && phx_redis_cluster_route(r, &cmds[end]) == ni)
            end++;
        phx_redis_node *nd = &r->cnodes[ni];
        if ((!nd->c && phx_redis_connect(r, nd, why, whylen) < 0) ||
            phx_redis_exchange(r, nd, end - *done, cmds + *done, rep + *done, why, whylen) < 0) {
            r->map_ok = 0; /* the node may have failed over: ask again */
            return -1;
        }
        int k = *done;
        while (k < end &&
               !(rep[k]->type == REDIS_REPLY_ERROR &&
                 (strncmp(rep[k]->str, "MOVED ", 6) == 0 || strncmp(rep[k]->str, "ASK ", 4) == 0 ||
                  strncmp(rep[k]->str, "TRYAGAIN", 8) == 0 ||
                  strncmp(rep[k]->str, "CLUSTERDOWN", 11) == 0)))
            k++;
        if (k == end) {
            *done = end;
            continue;
        }
        /* The replies before k stand; k and after go again. (A command after k that already
         * ran runs twice: every Phoenix command is idempotent or compare-and-set, redis.h.) */
        int ask = 0, slot = 0, port = 0;
        char host[256];
        int redir = phx_redis_redirect(rep[k], &ask, &slot, host, sizeof(host), &port);
        snprintf(why, whylen, "%.200s:%d: %.200s", nd->host, nd->port, rep[k]->str);
        for (int j = k; j < end; j++)
            freeReplyObject(rep[j]);
        *done = k;
        if (!redir)
            return -1; /* TRYAGAIN (a slot in migration), CLUSTERDOWN: after a backoff */
        phx_redis_node *to = phx_redis_cnode(r, host, port);
        if (!to || ++redirects > 8)
            return -1;
        phx_metric_add(phx_counter("phx_redis_redirects_total",
                                   "Redis Cluster redirections followed: MOVED (a slot has a new "
                                   "owner; the slot map is read again) and ASK (a slot in "
                                   "migration).",
                                   ask ? "kind=\"ask\"" : "kind=\"moved\""),
                       1);
        if (!ask) {
            r->slots[slot] = (uint16_t)(to - r->cnodes);
            /* The rest of the map has probably moved too: read it before the next run, but
             * keep this slot's answer, which is fresher than a node's view may be. */
            if (phx_redis_cluster_refresh(r, why, whylen) == 0)
                r->slots[slot] = (uint16_t)(to - r->cnodes);
            continue;
        }
        const char *asking[] = {"ASKING"};
        phx_redis_cmdbuf ab[2] = {{1, asking, NULL, NULL, 0}, cmds[k]};
        redisReply *ar[2];
        if ((!to->c && phx_redis_connect(r, to, why, whylen) < 0) ||
            phx_redis_exchange(r, to, 2, ab, ar, why, whylen) < 0)
            return -1;
        freeReplyObject(ar[0]);
        rep[k] = ar[1];
        *done = k + 1;
    }
    return 0;
}

void phx_redis_set_bulkhead(phx_redis *r, phx_bulkhead *b)
{
    r->bulkhead = b;
}

void phx_redis_thread_bulkhead(phx_bulkhead *b)
{
    phx_redis_thread_bh = b;
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
    /* every command has its name in argv[0] (the analyzer cannot see the callers) */
    // NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker)
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
    /* The bulkhead before the breaker: a refused call never reached Redis, so it says nothing
     * about Redis's health and must not take a half-open probe slot. */
    if (r->bulkhead && phx_bulkhead_enter(r->bulkhead, err) < 0) {
        phx_redis_count_error("bulkhead_full");
        phx_span_fail(&sp, "bulkhead full");
        phx_span_end(&sp);
        return -1;
    }
    int ticket = r->breaker ? phx_breaker_allow(r->breaker, t0) : PHX_BREAKER_NORMAL;
    if (ticket == PHX_BREAKER_DENIED) {
        if (r->bulkhead)
            phx_bulkhead_leave(r->bulkhead);
        phx_err_set(err, "redis_unavailable", 1, "redis: circuit breaker open");
        phx_redis_count_error("unavailable");
        phx_span_fail(&sp, "circuit breaker open");
        phx_span_end(&sp);
        return -1;
    }
    int ok = 0, done = 0; /* done: replies in hand (cluster: the runs that went through) */
    for (int attempt = 1;; attempt++) {
        if (r->cnodes) {
            if (phx_redis_cluster_batch(r, n, cmds, rep, &done, why, sizeof(why)) == 0) {
                ok = 1;
                break;
            }
        } else if ((r->node.c || phx_redis_connect(r, &r->node, why, sizeof(why)) == 0) &&
                   phx_redis_exchange(r, &r->node, n, cmds, rep, why, sizeof(why)) == 0) {
            if (!phx_redis_stale_master(r, n, rep, why, sizeof(why))) {
                ok = 1;
                break;
            }
            for (int i = 0; i < n; i++)
                freeReplyObject(rep[i]);
            phx_redis_drop(&r->node);
        }
        int64_t left = deadline - phx_mono_ms();
        if (left <= 0 || attempt >= phx_redis_reconnect.max_attempts)
            break;
        int64_t sleep = phx_retry_delay(&phx_redis_reconnect, attempt);
        phx_sleep_ms(sleep < left ? sleep : left);
    }
    if (r->bulkhead)
        phx_bulkhead_leave(r->bulkhead);
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
        while (done > 0)
            freeReplyObject(rep[--done]);
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
    phx_redis_cmdbuf c = {argc, argv, lens, NULL, 0};
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
    int argc = (int)strtol(cmd + 1, NULL, 10); /* our own formatted command */
    const char **argv = phx_xcalloc((size_t)argc, sizeof(*argv));
    size_t *lens = phx_xcalloc((size_t)argc, sizeof(*lens));
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

/* The SHA1 of script s into sha, from r's cache when it was hashed before. */
static void phx_redis_script_sha(phx_redis *r, const phx_script *s, char sha[41])
{
    for (int i = 0; i < r->nshas; i++)
        if (r->shas[i].s == s && r->shas[i].src == s->src) {
            memcpy(sha, r->shas[i].sha, 41);
            return;
        }
    phx_redis_sha1(s->src, sha);
    if (r->nshas < (int)(sizeof(r->shas) / sizeof(r->shas[0]))) {
        r->shas[r->nshas].s = s;
        r->shas[r->nshas].src = s->src;
        memcpy(r->shas[r->nshas++].sha, sha, 41);
    }
}

/* argv for EVALSHA of s: av and lv hold argc + 3 entries; sha and nk are their buffers. */
static void phx_redis_evalsha_argv(phx_redis *r, const phx_script *s, int nkeys, int argc,
                                   const char **argv, const size_t *lens, const char **av,
                                   size_t *lv, char sha[41], char nk[16])
{
    phx_redis_script_sha(r, s, sha);
    snprintf(nk, 16, "%d", nkeys);
    av[0] = "EVALSHA", lv[0] = 7;
    av[1] = sha, lv[1] = 40;
    av[2] = nk, lv[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        lv[i + 3] = lens ? lens[i] : strlen(argv[i]);
    }
}

/* Load script s where the EVALSHA ev (that got NOSCRIPT) runs: in a cluster, on the node of its
 * first key (each node has its own script cache). */
static int phx_redis_load(phx_redis *r, const phx_script *s, const phx_redis_cmdbuf *ev,
                          phx_err *err)
{
    /* only called for an EVALSHA, which always has its script (the analyzer cannot see it) */
    // NOLINTNEXTLINE(clang-analyzer-core.NullDereference)
    const char *la[] = {"SCRIPT", "LOAD", s->src};
    phx_redis_cmdbuf c = {3, la, NULL, NULL, 0};
    if (ev->argc > 3 && strtol(ev->argv[2], NULL, 10) > 0)
        c.route = ev->argv[3], c.route_len = ev->lens ? ev->lens[3] : strlen(ev->argv[3]);
    redisReply *rep = NULL;
    if (phx_redis_send_batch(r, 1, &c, &rep, NULL, err) < 0)
        return -1;
    if (!(rep = phx_redis_check(rep, err)))
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
    const char **av = phx_xcalloc((size_t)n, sizeof(*av));
    size_t *lv = phx_xcalloc((size_t)n, sizeof(*lv));
    phx_redis_evalsha_argv(r, s, nkeys, argc, argv, lens, av, lv, sha, nk);
    redisReply *rep = phx_redis_send(r, n, av, lv, s->name, err);
    if (phx_redis_noscript(rep)) {
        freeReplyObject(rep);
        rep = NULL;
        phx_redis_cmdbuf ev = {n, av, lv, NULL, 0};
        if (phx_redis_load(r, s, &ev, err) < 0)
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

/* The wire form of calls[i] into cmds[i] (EVALSHA for a script; sha and nk its buffers). */
static void phx_redis_call_buf(phx_redis *r, const phx_redis_call *c, phx_redis_cmdbuf *cmd,
                               char sha[41], char nk[16])
{
    int argc = c->argc + (c->script ? 3 : 0);
    const char **av = phx_xcalloc((size_t)argc, sizeof(*av));
    size_t *lv = phx_xcalloc((size_t)argc, sizeof(*lv));
    if (c->script) {
        phx_redis_evalsha_argv(r, c->script, c->nkeys, c->argc, c->argv, c->lens, av, lv, sha, nk);
    } else {
        for (int k = 0; k < argc; k++) {
            av[k] = c->argv[k];
            lv[k] = c->lens ? c->lens[k] : strlen(c->argv[k]);
        }
    }
    *cmd = (phx_redis_cmdbuf){argc, av, lv, NULL, 0};
}

/* Free n replies (NULL ones are skipped) and clear them. */
static void phx_redis_replies_free(redisReply **rep, int n)
{
    for (int i = 0; i < n; i++) {
        freeReplyObject(rep[i]);
        rep[i] = NULL;
    }
}

/* Free the argument arrays phx_redis_call_buf made for n commands. */
static void phx_redis_call_bufs_free(phx_redis_cmdbuf *cmds, int n)
{
    for (int i = 0; i < n; i++) {
        free((void *)cmds[i].argv);
        free((void *)cmds[i].lens);
    }
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
    for (i = 0; i < n; i++)
        phx_redis_call_buf(r, &calls[i], &cmds[i], sha[i], nk[i]);
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
        if (phx_redis_load(r, calls[i].script, &cmds[i], err) < 0 ||
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
    if (rc < 0)
        phx_redis_replies_free(rep, n);
out:
    phx_redis_call_bufs_free(cmds, n);
    return rc;
}

int phx_redis_batch(phx_redis *r, const phx_redis_call *calls, int n, redisReply **rep,
                    phx_err *err)
{
    if (n < 1)
        return phx_err_set(err, "bad_call", 0, "redis batch of %d commands", n);
    phx_redis_cmdbuf *cmds = phx_xcalloc((size_t)n, sizeof(*cmds));
    char(*sha)[41] = phx_xcalloc((size_t)n, sizeof(*sha));
    char(*nk)[16] = phx_xcalloc((size_t)n, sizeof(*nk));
    phx_redis_cmdbuf *again = phx_xcalloc((size_t)n, sizeof(*again));
    redisReply **rep2 = phx_xcalloc((size_t)n, sizeof(*rep2));
    int *idx = phx_xcalloc((size_t)n, sizeof(*idx));
    int rc = -1, i;
    for (i = 0; i < n; i++)
        phx_redis_call_buf(r, &calls[i], &cmds[i], sha[i], nk[i]);
    if (phx_redis_send_batch(r, n, cmds, rep,
                             n == 1 && calls[0].script ? calls[0].script->name : NULL, err) < 0)
        goto out;
    /* Scripts unknown to the server (restarted, flushed) did not run: load each once, then send
     * only those commands again. Nothing else in the batch depends on them. */
    int m = 0;
    for (i = 0; i < n; i++) {
        if (!phx_redis_noscript(rep[i]))
            continue;
        int loaded = 0;
        for (int k = 0; k < m && !loaded; k++)
            loaded = calls[idx[k]].script == calls[i].script;
        if (!loaded && phx_redis_load(r, calls[i].script, &cmds[i], err) < 0)
            goto fail;
        idx[m] = i, again[m++] = cmds[i];
    }
    if (m > 0) {
        if (phx_redis_send_batch(r, m, again, rep2, NULL, err) < 0)
            goto fail;
        for (int k = 0; k < m; k++) {
            freeReplyObject(rep[idx[k]]);
            rep[idx[k]] = rep2[k];
        }
    }
    rc = 0;
    goto out;
fail:
    phx_redis_replies_free(rep, n);
out:
    phx_redis_call_bufs_free(cmds, n);
    free(cmds), free(sha), free(nk), free(again), free(rep2), free(idx);
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
