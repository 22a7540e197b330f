/* fake_llm.c -- an OpenAI-compatible test double for phx-llm (no model inside).
 *
 * Serves POST .../chat/completions and POST .../embeddings under any path prefix, so one
 * process can play several providers (http://127.0.0.1:PORT/a/v1, .../b/v1), each counted
 * separately. Answers are deterministic:
 *   chat        "echo: <last user message>", usage = whitespace-separated words in/out,
 *               "model" = the requested model
 *   embeddings  one vector per input of --dim numbers derived from a hash of the text
 *               (deterministic noise, NOT a meaningful embedding: it only exercises transport)
 * Faults and scripted answers come from rules (--script FILE, or POST /_script with the JSON
 * array at run time); the first rule that matches a request applies:
 *   {"path": substring of the URL, "match": substring of the raw request body,
 *    "times": N (the rule applies to N requests, then is spent),
 *    "delay_ms": N (sleep first: slow answers, timeouts),
 *    "reset": true (close the connection with no answer),
 *    "status": N, "retry_after": "1", "body": "..." (an error answer),
 *    "raw": "..." (200 with this body: truncated or malformed JSON),
 *    "reply": "text" | "reply_json": any (chat content), "echo_system": true (content = the
 *    first system message), "dim": N (embedding dimension), "no_usage": true}
 * Control: GET /_stats -> {"total": n, "paths": {path: n}, "auth_failures": n, "last_auth": bool};
 * POST /_script replaces the rules; POST /_reset zeroes the counters.
 * --key-file F: every request must carry "Authorization: Bearer <content of F>" (re-read per
 * request, so a test rotates it by rewriting F), else 401.
 *
 * usage: fake_llm [--port N] [--port-file F] [--script F] [--key-file F] [--dim N]
 * Prints the port on stdout once listening; runs until SIGTERM/SIGINT. */
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct fake {
    pthread_mutex_t mu;
    json_t *rules; /* array; each rule may carry a "_used" counter */
    json_t *paths; /* path -> requests */
    long total, auth_failures;
    const char *key_file;
    int dim;
    volatile sig_atomic_t stopping;
} fake;

typedef struct fake_req {
    char *body;
    size_t len;
} fake_req;

static fake F;

static enum MHD_Result fake_send(struct MHD_Connection *c, unsigned status, const char *body,
                                 const char *retry_after)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (retry_after)
        MHD_add_response_header(r, "Retry-After", retry_after);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result fake_send_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    enum MHD_Result r = fake_send(c, status, s ? s : "{}", NULL);
    free(s);
    return r;
}

/* The first live rule matching url and body (a copy, new reference), counting its use. */
static json_t *fake_rule(const char *url, const char *body)
{
    json_t *hit = NULL, *r;
    size_t i;
    pthread_mutex_lock(&F.mu);
    json_array_foreach(F.rules, i, r)
    {
        const char *p = json_string_value(json_object_get(r, "path"));
        const char *m = json_string_value(json_object_get(r, "match"));
        json_t *times = json_object_get(r, "times");
        long used = (long)json_integer_value(json_object_get(r, "_used"));
        if ((p && !strstr(url, p)) || (m && !strstr(body, m)))
            continue;
        if (json_is_integer(times) && used >= json_integer_value(times))
            continue;
        json_object_set_new(r, "_used", json_integer(used + 1));
        hit = json_deep_copy(r);
        break;
    }
    pthread_mutex_unlock(&F.mu);
    return hit;
}

static long fake_words(const char *s)
{
    long n = 0;
    int in = 0;
    for (; s && *s; s++) {
        int sp = *s == ' ' || *s == '\n' || *s == '\t';
        if (!sp && !in)
            n++;
        in = !sp;
    }
    return n;
}

static char *fake_read_key(void)
{
    FILE *f = fopen(F.key_file, "r");
    if (!f)
        return NULL;
    char buf[1024] = "";
    if (!fgets(buf, sizeof(buf), f))
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    return strdup(buf);
}

static enum MHD_Result fake_chat(struct MHD_Connection *c, json_t *req, json_t *rule)
{
    json_t *msgs = json_object_get(req, "messages"), *m;
    const char *last = "", *system = "";
    long in_words = 0;
    size_t i;
    json_array_foreach(msgs, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *content = json_string_value(json_object_get(m, "content"));
        in_words += fake_words(content);
        if (role && content && strcmp(role, "user") == 0)
            last = content;
        if (role && content && strcmp(role, "system") == 0 && !system[0])
            system = content;
    }
    char *content = NULL;
    json_t *rj = json_object_get(rule, "reply_json");
    if (json_is_string(json_object_get(rule, "reply")))
        content = strdup(json_string_value(json_object_get(rule, "reply")));
    else if (rj)
        content = json_dumps(rj, JSON_COMPACT | JSON_ENCODE_ANY);
    else if (json_is_true(json_object_get(rule, "echo_system")))
        content = strdup(system);
    else if (asprintf(&content, "echo: %s", last) < 0)
        content = NULL;
    json_t *out = json_pack("{s:s, s:s, s:O, s:[{s:i, s:{s:s, s:s}, s:s}]}", "id", "chatcmpl-fake",
                            "object", "chat.completion", "model", json_object_get(req, "model"),
                            "choices", "index", 0, "message", "role", "assistant", "content",
                            content ? content : "", "finish_reason", "stop");
    if (!json_is_true(json_object_get(rule, "no_usage")))
        json_object_set_new(out, "usage",
                            json_pack("{s:I, s:I}", "prompt_tokens", (json_int_t)in_words,
                                      "completion_tokens", (json_int_t)fake_words(content)));
    free(content);
    return fake_send_json(c, 200, out);
}

static enum MHD_Result fake_embed(struct MHD_Connection *c, json_t *req, json_t *rule)
{
    json_t *input = json_object_get(req, "input"), *t;
    json_t *rd = json_object_get(rule, "dim");
    int dim = json_is_integer(rd) ? (int)json_integer_value(rd) : F.dim;
    json_t *data = json_array();
    long words = 0;
    size_t i;
    if (json_is_string(input)) {
        json_t *a = json_array();
        json_array_append(a, input);
        input = a;
    } else {
        json_incref(input);
    }
    json_array_foreach(input, i, t)
    {
        const char *s = json_string_value(t);
        uint64_t h = 1469598103934665603ULL;
        for (const char *p = s ? s : ""; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        words += fake_words(s);
        json_t *v = json_array();
        for (int k = 0; k < dim; k++)
            json_array_append_new(v, json_real(sin((double)(h % 1000003) + k * 1.7) + 0.01));
        json_array_append_new(data, json_pack("{s:s, s:i, s:o}", "object", "embedding", "index",
                                              (int)i, "embedding", v));
    }
    json_decref(input);
    return fake_send_json(c, 200,
                          json_pack("{s:s, s:o, s:O, s:{s:I, s:I}}", "object", "list", "data", data,
                                    "model", json_object_get(req, "model"), "usage",
                                    "prompt_tokens", (json_int_t)words, "total_tokens",
                                    (json_int_t)words));
}

static enum MHD_Result fake_control(struct MHD_Connection *c, const char *url, fake_req *rq)
{
    if (strcmp(url, "/_stats") == 0) {
        pthread_mutex_lock(&F.mu);
        json_t *s = json_pack("{s:I, s:O, s:I}", "total", (json_int_t)F.total, "paths", F.paths,
                              "auth_failures", (json_int_t)F.auth_failures);
        pthread_mutex_unlock(&F.mu);
        return fake_send_json(c, 200, s);
    }
    if (strcmp(url, "/_reset") == 0) {
        pthread_mutex_lock(&F.mu);
        json_object_clear(F.paths);
        F.total = F.auth_failures = 0;
        pthread_mutex_unlock(&F.mu);
        return fake_send(c, 200, "{}", NULL);
    }
    if (strcmp(url, "/_script") == 0) {
        json_t *rules = json_loadb(rq->body ? rq->body : "", rq->len, 0, NULL);
        if (!json_is_array(rules)) {
            json_decref(rules);
            return fake_send(c, 400, "{\"error\":\"rules must be a JSON array\"}", NULL);
        }
        pthread_mutex_lock(&F.mu);
        json_decref(F.rules);
        F.rules = rules;
        pthread_mutex_unlock(&F.mu);
        return fake_send(c, 200, "{}", NULL);
    }
    return fake_send(c, 404, "{\"error\":{\"message\":\"not found\"}}", NULL);
}

static int fake_ends(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static enum MHD_Result fake_api(struct MHD_Connection *c, const char *url, fake_req *rq)
{
    const char *body = rq->body ? rq->body : "";
    pthread_mutex_lock(&F.mu);
    F.total++;
    json_object_set_new(F.paths, url,
                        json_integer(json_integer_value(json_object_get(F.paths, url)) + 1));
    pthread_mutex_unlock(&F.mu);
    if (F.key_file) {
        char *key = fake_read_key(), want[1100];
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        snprintf(want, sizeof(want), "Bearer %s", key ? key : "");
        int ok = key && auth && strcmp(auth, want) == 0;
        free(key);
        if (!ok) {
            pthread_mutex_lock(&F.mu);
            F.auth_failures++;
            pthread_mutex_unlock(&F.mu);
            return fake_send(c, 401, "{\"error\":{\"message\":\"invalid api key\"}}", NULL);
        }
    }
    json_t *rule = fake_rule(url, body), *v;
    enum MHD_Result ret;
    if ((v = json_object_get(rule, "delay_ms")))
        for (long i = 0; i < json_integer_value(v) / 10 && !F.stopping; i++)
            usleep(10000);
    if (json_is_true(json_object_get(rule, "reset"))) {
        json_decref(rule);
        return MHD_NO; /* libmicrohttpd closes the connection without an answer */
    }
    if ((v = json_object_get(rule, "status"))) {
        const char *b = json_string_value(json_object_get(rule, "body"));
        ret = fake_send(c, (unsigned)json_integer_value(v),
                        b ? b : "{\"error\":{\"message\":\"injected failure\"}}",
                        json_string_value(json_object_get(rule, "retry_after")));
    } else if ((v = json_object_get(rule, "raw"))) {
        ret = fake_send(c, 200, json_string_value(v), NULL);
    } else {
        json_t *req = json_loadb(body, rq->len, 0, NULL);
        if (!json_is_object(req))
            ret =
                fake_send(c, 400, "{\"error\":{\"message\":\"body is not a JSON object\"}}", NULL);
        else if (fake_ends(url, "/chat/completions"))
            ret = fake_chat(c, req, rule);
        else if (fake_ends(url, "/embeddings"))
            ret = fake_embed(c, req, rule);
        else
            ret = fake_send(c, 404, "{\"error\":{\"message\":\"unknown endpoint\"}}", NULL);
        json_decref(req);
    }
    json_decref(rule);
    return ret;
}

static enum MHD_Result fake_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    (void)method;
    fake_req *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof(*rq));
        *con_cls = rq;
        return rq ? MHD_YES : MHD_NO;
    }
    if (*upload_size) {
        char *nb = realloc(rq->body, rq->len + *upload_size + 1);
        if (!nb)
            return MHD_NO;
        memcpy(nb + rq->len, upload_data, *upload_size);
        rq->body = nb;
        rq->len += *upload_size;
        rq->body[rq->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    if (strncmp(url, "/_", 2) == 0)
        return fake_control(c, url, rq);
    return fake_api(c, url, rq);
}

static void fake_done(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    fake_req *rq = *con_cls;
    if (rq) {
        free(rq->body);
        free(rq);
    }
    *con_cls = NULL;
}

int main(int argc, char **argv)
{
    int port = 0;
    const char *port_file = NULL, *script = NULL;
    F.dim = 8;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "fake_llm: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--port") == 0)
            port = atoi(v);
        else if (strcmp(a, "--port-file") == 0)
            port_file = v;
        else if (strcmp(a, "--script") == 0)
            script = v;
        else if (strcmp(a, "--key-file") == 0)
            F.key_file = v;
        else if (strcmp(a, "--dim") == 0)
            F.dim = atoi(v);
        else {
            fprintf(stderr, "fake_llm: unknown argument %s\n", a);
            return 2;
        }
        i++;
    }
    pthread_mutex_init(&F.mu, NULL);
    F.paths = json_object();
    F.rules = json_array();
    if (script) {
        json_error_t je;
        json_decref(F.rules);
        F.rules = json_load_file(script, 0, &je);
        if (!json_is_array(F.rules)) {
            fprintf(stderr, "fake_llm: %s: not a JSON array (%s)\n", script, je.text);
            return 2;
        }
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, fake_handler, NULL, MHD_OPTION_NOTIFY_COMPLETED, fake_done,
        NULL, MHD_OPTION_CONNECTION_TIMEOUT, 3u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "fake_llm: cannot listen on port %d\n", port);
        return 1;
    }
    port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    printf("%d\n", port);
    fflush(stdout);
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "%d\n", port);
            fclose(f);
            rename(tmp, port_file);
        }
    }
    int sig;
    sigwait(&sigs, &sig);
    F.stopping = 1;
    MHD_stop_daemon(d);
    json_decref(F.rules);
    json_decref(F.paths);
    pthread_mutex_destroy(&F.mu);
    return 0;
}
