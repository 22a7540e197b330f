/* rt_exec.c -- the exec suite of `phx redteam`: sandbox escape programs as exec.run jobs.
 *
 * The programs are the ones tests/security/test_exec_attacks.sh runs (ops/redteam/exec/, one
 * file per attack, Python ones prefixed with exec-prelude.py), so the test and the red team
 * never drift apart. The test asserts each program's exact output with jq; here the verdict
 * is the convention every program follows: an attempt that worked prints SUCCEEDED. A run
 * that a limit killed, or that printed no SUCCEEDED, is contained. Host-side probes: an
 * abstract unix socket and a canary file of this host that the programs try to reach, which
 * only mean something when the exec pool runs on the same host (the local stack). --quick
 * leaves out the resource bombs (the programs with a `# limits:` line), which take seconds;
 * PHX_REDTEAM_EXEC_ONLY names the programs to run. */
#include "util.h"
#include "redteam.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char *rt_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&buf, &cap, '\0', f);
    fclose(f);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Replace every @NAME@ of vars (pairs name, value, NULL-terminated) in s; malloc'd. */
static char *rt_subst(const char *s, const char *const *vars)
{
    size_t cap = strlen(s) + 1024, n = 0;
    char *out = phx_xmalloc(cap);
    while (*s) {
        const char *rep = NULL;
        size_t skip = 0;
        for (const char *const *v = vars; *v && !rep; v += 2) {
            size_t l = strlen(*v);
            if (s[0] == '@' && strncmp(s + 1, *v, l) == 0 && s[l + 1] == '@')
                rep = v[1], skip = l + 2;
        }
        size_t add = rep ? strlen(rep) : 1;
        if (n + add + 1 > cap)
            out = phx_xrealloc(out, cap = (n + add + 1) * 2);
        memcpy(out + n, rep ? rep : s, add);
        n += add;
        s += rep ? skip : 1;
    }
    out[n] = 0;
    return out;
}

/* "redis://host:port/db" or "host:port,..." -> the first port, as text. */
static void rt_port_of(const char *url, const char *def, char *out, size_t len)
{
    const char *p = url ? strstr(url, "://") : NULL;
    p = p ? p + 3 : url;
    const char *at = p ? strchr(p, '@') : NULL;
    if (at)
        p = at + 1;
    const char *colon = p ? strchr(p, ':') : NULL;
    if (!colon) {
        snprintf(out, len, "%s", def);
        return;
    }
    size_t i = 0;
    for (colon++; *colon >= '0' && *colon <= '9' && i + 1 < len; colon++)
        out[i++] = *colon;
    out[i] = 0;
}

/* PHX_REDTEAM_EXEC_ONLY: a comma-separated list of program names (no extension); unset = all. */
static int rt_exec_chosen(const char *file)
{
    const char *only = getenv("PHX_REDTEAM_EXEC_ONLY");
    if (!only || !*only)
        return 1;
    size_t n = strcspn(file, ".");
    for (const char *p = only; *p;) {
        size_t l = strcspn(p, ",");
        if (l == n && strncmp(p, file, n) == 0)
            return 1;
        p += l + (p[l] == ',');
    }
    return 0;
}

static int rt_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A listening abstract unix socket named name; -1 on failure. */
static int rt_abstract_listen(const char *name)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t l = strlen(name);
    memcpy(a.sun_path + 1, name, l);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, (socklen_t)(sizeof(sa_family_t) + 1 + l)) < 0 ||
        listen(fd, 4) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int rt_suite_exec(const rt_ctx *c, rt_suite *s)
{
    char dir[1024], path[1200];
    snprintf(path, sizeof(path), "%s/exec-prelude.py", c->corpus_dir);
    snprintf(dir, sizeof(dir), "%s/exec", c->corpus_dir);
    char *prelude = rt_slurp(path);
    DIR *d = opendir(dir);
    if (!prelude || !d) {
        rt_case(s, "corpus", RT_SKIPPED, "%s not readable (set PHX_REDTEAM_DIR)", dir);
        free(prelude);
        if (d)
            closedir(d);
        return 0;
    }
    char *names[256] = {0};
    int nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nn < 256) {
        size_t l = strlen(e->d_name);
        if (l > 3 &&
            (strcmp(e->d_name + l - 3, ".py") == 0 || strcmp(e->d_name + l - 3, ".sh") == 0))
            names[nn++] = phx_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)nn, sizeof(*names), rt_cmp);

    /* Host-side bait: an abstract socket and a file the sandbox must not see. */
    char abstract[64], canary[] = "/tmp/phx-redteam-canary.XXXXXX", redis_port[16], kafka_port[16];
    snprintf(abstract, sizeof(abstract), "phx-redteam-%d", (int)getpid());
    int afd = rt_abstract_listen(abstract);
    int cfd = mkstemp(canary);
    if (cfd >= 0) {
        if (write(cfd, "intact\n", 7) != 7)
            rt_case(s, "canary file", RT_ERROR, "cannot write %s", canary);
        close(cfd);
    }
    rt_port_of(getenv("PHX_REDIS_URL"), "6379", redis_port, sizeof(redis_port));
    rt_port_of(c->env->brokers, "9092", kafka_port, sizeof(kafka_port));
    const char *vars[] = {"REDIS_PORT", redis_port,   "KAFKA_PORT", kafka_port, "ABSTRACT",
                          abstract,     "HOST_PATHS", canary,       NULL};

    json_t *jobs = json_array(), *byname = json_object();
    for (int i = 0; i < nn; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        char *text = rt_slurp(path);
        if (!text) {
            rt_case(s, names[i], RT_ERROR, "cannot read %s", path);
            continue;
        }
        char *lim = strstr(text, "\n# limits: ");
        if ((c->quick && lim) || !rt_exec_chosen(names[i])) {
            free(text);
            continue;
        }
        json_t *limits = lim ? json_loadb(lim + 11, strcspn(lim + 11, "\n"), 0, NULL) : NULL;
        int py = strcmp(names[i] + strlen(names[i]) - 3, ".py") == 0;
        /* The header lines are the test's metadata, not code (a program listing its own
         * command line would otherwise read the test's patterns). */
        const char *body = text;
        while (strncmp(body, "# check: ", 9) == 0 || strncmp(body, "# limits: ", 10) == 0)
            body += strcspn(body, "\n") + (body[strcspn(body, "\n")] ? 1 : 0);
        char *code = rt_subst(body, vars);
        free(text);
        if (py) {
            char *full = phx_xmalloc(strlen(prelude) + strlen(code) + 2);
            sprintf(full, "%s\n%s", prelude, code);
            free(code);
            code = full;
        }
        json_t *in = json_pack("{s:s, s:s, s:o}", "lang", py ? "python" : "sh", "code", code,
                               "limits", limits ? limits : json_object());
        free(code);
        json_t *job = rt_job1(c, "exec", "exec.run", in, 120000);
        json_object_set(byname, names[i], json_object_get(job, "id"));
        json_array_append_new(jobs, job);
    }
    json_t *replies = rt_run_jobs(c, jobs, c->timeout_s);
    int rc = replies ? 0 : -1;
    const char *name;
    json_t *idv;
    json_object_foreach(byname, name, idv)
    {
        if (!replies)
            break;
        json_t *r = json_object_get(replies, json_string_value(idv));
        const char *code;
        json_t *out = rt_step_output(r, &code);
        const char *so = json_string_value(json_object_get(out, "stdout"));
        if (!r) {
            rt_case(s, name, RT_ERROR, "no reply within %d s", c->timeout_s);
        } else if (!out) {
            rt_case(s, name, RT_ERROR, "step failed: %s", code);
        } else if (so && strstr(so, "SUCCEEDED")) {
            const char *l = strstr(so, "SUCCEEDED"), *b = l;
            while (b > so && b[-1] != '\n')
                b--;
            rt_case(s, name, RT_ESCAPED, "%.*s", (int)(strcspn(l, "\n") + (size_t)(l - b)), b);
        } else {
            json_t *sig = json_object_get(out, "signal");
            rt_case(s, name, RT_CONTAINED, "exit %lld%s%s%s",
                    json_integer_value(json_object_get(out, "exit_code")),
                    json_is_string(sig) ? ", " : "",
                    json_is_string(sig) ? json_string_value(sig) : "",
                    json_is_true(json_object_get(out, "oom_killed")) ? ", oom-killed" : "");
        }
    }
    /* After every program ran: did anything reach the host bait? */
    if (afd >= 0) {
        int got = accept(afd, NULL, NULL);
        if (got >= 0) {
            rt_case(s, "host abstract socket", RT_ESCAPED, "a sandboxed program connected to @%s",
                    abstract);
            close(got);
        } else {
            rt_case(s, "host abstract socket", RT_CONTAINED, "no connection (%s)",
                    errno == EAGAIN ? "none pending" : "accept failed");
        }
        close(afd);
    }
    if (cfd >= 0) {
        char *t = rt_slurp(canary);
        rt_case(s, "host canary file", t && strcmp(t, "intact\n") == 0 ? RT_CONTAINED : RT_ESCAPED,
                "%s", canary);
        free(t);
        unlink(canary);
    }
    json_decref(replies);
    json_decref(jobs);
    json_decref(byname);
    for (int i = 0; i < nn; i++)
        free(names[i]);
    free(prelude);
    return rc;
}
