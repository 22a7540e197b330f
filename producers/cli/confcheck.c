/* confcheck.c -- `phx config check`: validate Phoenix configuration files before they are used.
 *
 * A file is either a JSON object (what PHX_CONFIG_FILE names) or an environment file of
 * KEY=VALUE lines (systemd's EnvironmentFile=, a Kubernetes ConfigMap rendered as env). The
 * files given together are the configuration of one process, as it would see them (later files
 * override earlier ones), judged against the option tables of the target binaries -- read from
 * the binaries themselves (`phx-X --options`), so the check can never know a different set of
 * options than the code. Problems are reported per file and line:
 *   - a name that is no option of any target (with the closest option, when one is close);
 *   - a value the binary would refuse at start (type, range, log level, Redis URL scheme);
 *   - a PHX_KAFKA_CONF_* property or value librdkafka refuses (checked by librdkafka itself);
 *   - a secret file (*_FILE) that does not exist, is not a regular file, or is readable by
 *     every user (a secret must not be);
 *   - a required option missing from the set; a name set twice in one file; a line that is
 *     not KEY=VALUE.
 * Exit: 0 valid, 1 problems found, 2 usage or a file or binary that cannot be read. */
#include "cli.h"
#include "config.h"
#include "kafka.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PHX_CC_MAX_BINS     32
#define PHX_CC_MAX_OPTS     256
#define PHX_CC_MAX_SETTINGS 1024

typedef struct phx_cc_bin {
    char name[64];
    phx_opt opts[PHX_CC_MAX_OPTS];
    int nopts, server;
} phx_cc_bin;

typedef struct phx_cc_setting {
    const char *file;
    int line;
    char *key, *value;
} phx_cc_setting;

typedef struct phx_cc {
    phx_cc_bin *bins; /* every binary that answered --options */
    int nbins;
    int targets[PHX_CC_MAX_BINS]; /* indexes into bins */
    int ntargets;
    phx_cc_setting set[PHX_CC_MAX_SETTINGS];
    int nset;
    int no_file_checks, problems;
} phx_cc;

static void phx_cc_problem(phx_cc *c, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void phx_cc_problem(phx_cc *c, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (line > 0)
        printf("%s:%d: ", file, line);
    else
        printf("%s: ", file);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    c->problems++;
}

/* The directory of the phx binary (the other binaries are installed beside it), or PHX_BIN. */
static int phx_cc_bindir(char *out, size_t outlen)
{
    const char *env = getenv("PHX_BIN");
    if (env && *env) {
        snprintf(out, outlen, "%s", env);
        return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    snprintf(out, outlen, "%s", self);
    return 0;
}

/* Run DIR/NAME --options; then parse its table: 0, or -1 when it is not a binary with a table
 * (e.g. phx-devbroker refuses the flag). */
static FILE *phx_cc_spawn(const char *dir, const char *name)
{
    char cmd[PATH_MAX + 64];
    if (strchr(dir, '\'') || strchr(name, '\''))
        return NULL;
    snprintf(cmd, sizeof(cmd), "'%s/%s' --options 2>/dev/null", dir, name);
    /* The shell sees one single-quoted path (quotes in it are refused above) and a redirect. */
    return popen(cmd, "r"); // NOLINT(cert-env33-c)
}

/* Read the table a spawned binary prints (its output fits a pipe's buffer, so every binary can
 * be started first and read afterwards: they start in parallel). */
static int phx_cc_load_bin(FILE *p, const char *name, phx_cc_bin *b)
{
    memset(b, 0, sizeof(*b));
    snprintf(b->name, sizeof(b->name), "%s", name);
    char line[4096];
    while (fgets(line, sizeof(line), p) && b->nopts < PHX_CC_MAX_OPTS) {
        line[strcspn(line, "\n")] = '\0';
        char *f[6] = {0};
        char *s = line;
        int nf = 0;
        /* strsep keeps empty fields (an empty default) */
        while (nf < 6 && (f[nf] = strsep(&s, "\t")) != NULL)
            nf++;
        if (nf < 6 || strncmp(f[0], "PHX_", 4) != 0)
            continue;
        phx_opt *o = &b->opts[b->nopts++];
        o->name = phx_xstrdup(f[0]);
        o->type = strcmp(f[1], "int") == 0    ? PHX_OPT_INT
                  : strcmp(f[1], "bool") == 0 ? PHX_OPT_BOOL
                                              : PHX_OPT_STR;
        o->min = strtol(f[2], NULL, 10);
        o->max = strtol(f[3], NULL, 10);
        o->def = strcmp(f[4], "required") == 0 ? NULL : phx_xstrdup(f[5]);
        o->help = "";
        if (strcmp(o->name, "PHX_ADMIN_ADDR") == 0)
            b->server = 1;
    }
    int rc = pclose(p);
    if (rc != 0 || b->nopts == 0) {
        for (int i = 0; i < b->nopts; i++) {
            free((char *)b->opts[i].name);
            free((char *)b->opts[i].def);
        }
        b->nopts = 0;
        return -1;
    }
    return 0;
}

static void phx_cc_free_bins(phx_cc *c)
{
    for (int k = 0; k < c->nbins; k++)
        for (int i = 0; i < c->bins[k].nopts; i++) {
            free((char *)c->bins[k].opts[i].name);
            free((char *)c->bins[k].opts[i].def);
        }
    free(c->bins);
}

static int phx_cc_cmp(const void *a, const void *b)
{
    return strcmp(((const phx_cc_bin *)a)->name, ((const phx_cc_bin *)b)->name);
}

static int phx_cc_load_bins(phx_cc *c)
{
    char dir[PATH_MAX];
    if (phx_cc_bindir(dir, sizeof(dir)) < 0) {
        fprintf(stderr, "phx config check: cannot find the Phoenix binaries (set PHX_BIN)\n");
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "phx config check: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    c->bins = phx_xcalloc(PHX_CC_MAX_BINS, sizeof(*c->bins));
    FILE *pipes[PHX_CC_MAX_BINS];
    char names[PHX_CC_MAX_BINS][64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < PHX_CC_MAX_BINS) {
        if (strncmp(e->d_name, "phx-", 4) != 0 || strlen(e->d_name) >= sizeof(names[0]))
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (access(path, X_OK) != 0 || !(pipes[n] = phx_cc_spawn(dir, e->d_name)))
            continue;
        snprintf(names[n++], sizeof(names[0]), "%s", e->d_name);
    }
    closedir(d);
    for (int i = 0; i < n; i++)
        if (phx_cc_load_bin(pipes[i], names[i], &c->bins[c->nbins]) == 0)
            c->nbins++;
    if (c->nbins == 0) {
        fprintf(stderr, "phx config check: no Phoenix binaries answered --options in %s\n", dir);
        return -1;
    }
    qsort(c->bins, (size_t)c->nbins, sizeof(*c->bins), phx_cc_cmp);
    return 0;
    /* Every pipe in pipes[0..n) went to phx_cc_load_bin, which pcloses it. gcc 12's analyzer
     * does not tie the loop above to n (the pipes were stored at a variable index) and reports
     * a pipe as leaked at the end of the function. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
}
#pragma GCC diagnostic pop

static int phx_cc_find_bin(const phx_cc *c, const char *name)
{
    char full[80];
    snprintf(full, sizeof(full), "%s%s", strncmp(name, "phx-", 4) == 0 ? "" : "phx-", name);
    for (int i = 0; i < c->nbins; i++)
        if (strcmp(c->bins[i].name, full) == 0)
            return i;
    return -1;
}

/* --for LIST, "all", or inferred: a file name naming one server (phx-tools.env, tools.json). */
static int phx_cc_targets(phx_cc *c, const char *spec, char **files, int nfiles)
{
    if (spec && strcmp(spec, "all") != 0) {
        char *dup = phx_xstrdup(spec), *s = dup, *tok;
        while ((tok = strsep(&s, ",")) != NULL) {
            int i = phx_cc_find_bin(c, tok);
            if (i < 0 || !c->bins[i].server) {
                fprintf(stderr, "phx config check: --for %s: no such Phoenix server binary\n", tok);
                free(dup);
                return -1;
            }
            c->targets[c->ntargets++] = i;
        }
        free(dup);
        return 0;
    }
    if (!spec) {
        for (int f = 0; f < nfiles && c->ntargets == 0; f++) {
            const char *base = strrchr(files[f], '/') ? strrchr(files[f], '/') + 1 : files[f];
            for (int i = 0; i < c->nbins; i++) {
                const char *pool = c->bins[i].name + 4;
                size_t n = strlen(pool);
                const char *hit = strstr(base, pool);
                if (c->bins[i].server && hit && (hit == base || hit[-1] == '-') &&
                    (hit[n] == '.' || hit[n] == '-'))
                    c->targets[c->ntargets++] = i;
            }
        }
        if (c->ntargets == 1)
            return 0;
        c->ntargets = 0;
    }
    for (int i = 0; i < c->nbins; i++)
        if (c->bins[i].server)
            c->targets[c->ntargets++] = i;
    return 0;
}

static void phx_cc_add(phx_cc *c, const char *file, int line, const char *key, const char *val)
{
    for (int i = 0; i < c->nset; i++)
        if (c->set[i].file == file && strcmp(c->set[i].key, key) == 0)
            phx_cc_problem(c, file, line, "%s is set twice in this file (also line %d)", key,
                           c->set[i].line);
    if (c->nset == PHX_CC_MAX_SETTINGS) {
        phx_cc_problem(c, file, line, "too many settings (more than %d)", PHX_CC_MAX_SETTINGS);
        return;
    }
    c->set[c->nset++] = (phx_cc_setting){file, line, strdup(key), strdup(val)};
}

/* KEY=VALUE lines as systemd reads them: # and ; comments, blank lines, optional quotes. */
static int phx_cc_read_env(phx_cc *c, const char *file, FILE *f)
{
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        n++;
        line[strcspn(line, "\r\n")] = '\0';
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#' || *s == ';')
            continue;
        char *eq = strchr(s, '=');
        if (!eq || eq == s) {
            phx_cc_problem(c, file, n, "not KEY=VALUE: %s", s);
            continue;
        }
        *eq = '\0';
        char *key = s, *val = eq + 1;
        size_t kl = strlen(key);
        while (kl > 0 && (key[kl - 1] == ' ' || key[kl - 1] == '\t'))
            key[--kl] = '\0';
        size_t vl = strlen(val);
        if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
            val[vl - 1] = '\0';
            val++;
        }
        phx_cc_add(c, file, n, key, val);
    }
    return 0;
}

/* The line of "KEY": in a JSON text (jansson keeps no positions; keys are unique). */
static int phx_cc_json_line(const char *text, const char *key)
{
    char pat[300];
    snprintf(pat, sizeof(pat), "\"%s\"", key);
    const char *hit = strstr(text, pat);
    if (!hit)
        return 0;
    int line = 1;
    for (const char *p = text; p < hit; p++)
        line += *p == '\n';
    return line;
}

static int phx_cc_read_json(phx_cc *c, const char *file, FILE *f)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[8192];
    size_t n;
    while (mem && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, mem);
    if (mem)
        fclose(mem);
    if (!text)
        return -1;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        phx_cc_problem(c, file, je.line, "not valid JSON: %s", je.text);
    } else if (!json_is_object(root)) {
        phx_cc_problem(c, file, 1, "must be one JSON object of settings");
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(root, key, v)
        {
            int line = phx_cc_json_line(text, key);
            char num[64];
            const char *s = phx_config_json_text(v, num);
            if (!s) {
                phx_cc_problem(c, file, line, "%s must be a string, integer or boolean", key);
                continue;
            }
            phx_cc_add(c, file, line, key, s);
        }
    }
    json_decref(root);
    free(text);
    return 0;
}

/* Levenshtein distance, capped (only to suggest a close option name). */
static int phx_cc_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

/* A file a setting names (librdkafka's *.location) must exist and be a regular file; a secret
 * must also not be readable by everyone. */
static void phx_cc_file(phx_cc *c, const phx_cc_setting *s, int secret)
{
    if (c->no_file_checks || strstr(s->value, "%d/") || strstr(s->value, "${"))
        return; /* a systemd credential path exists only inside the running service */
    if (!*s->value)
        return; /* empty = the feature is off */
    struct stat st;
    if (stat(s->value, &st) < 0)
        phx_cc_problem(c, s->file, s->line, "%s=%s: %s", s->key, s->value, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        phx_cc_problem(c, s->file, s->line, "%s=%s: not a regular file", s->key, s->value);
    else if (secret && (st.st_mode & S_IROTH))
        phx_cc_problem(c, s->file, s->line,
                       "%s=%s: readable by every user (mode %04o); a secret file should be "
                       "0600 or 0640",
                       s->key, s->value, (unsigned)(st.st_mode & 07777));
}

static const phx_opt *phx_cc_opt(const phx_cc_bin *b, const char *key)
{
    for (int i = 0; i < b->nopts; i++)
        if (strcmp(b->opts[i].name, key) == 0)
            return &b->opts[i];
    return NULL;
}

/* Variables the code reads outside the option tables (lib/config.c, lib/redis.c). */
static int phx_cc_process_wide(const char *key)
{
    return strcmp(key, "PHX_CONFIG_FILE") == 0 || strcmp(key, "PHX_REDIS_PASSWORD_FILE") == 0 ||
           strcmp(key, "PHX_SECRETS_KEY_FILE") == 0;
}

static void phx_cc_judge(phx_cc *c, const phx_cc_setting *s)
{
    char err[1024];
    if (strncmp(s->key, "PHX_KAFKA_CONF_", 15) == 0) {
        int rc = phx_kafka_conf_check(s->key, s->value, err, sizeof(err));
        size_t kl = strlen(s->key);
        if (rc < 0)
            phx_cc_problem(c, s->file, s->line, "%s", err);
        else if (rc == 1 || (kl > 9 && strcmp(s->key + kl - 9, "_location") == 0))
            phx_cc_file(c, s, rc == 1 || strstr(s->key, "_key_") != NULL);
        return;
    }
    if (phx_cc_process_wide(s->key)) {
        if (strcmp(s->key, "PHX_CONFIG_FILE") != 0)
            phx_cc_file(c, s, 1);
        return;
    }
    int known = 0;
    for (int t = 0; t < c->ntargets; t++) {
        const phx_cc_bin *b = &c->bins[c->targets[t]];
        const phx_opt *o = phx_cc_opt(b, s->key);
        if (!o)
            continue;
        known = 1;
        if (phx_config_check_value(o, s->value, "this file", err, sizeof(err)) < 0) {
            phx_cc_problem(c, s->file, s->line, "%s", err);
            return;
        }
    }
    if (known) {
        size_t kl = strlen(s->key);
        if (kl > 5 && strcmp(s->key + kl - 5, "_FILE") == 0)
            phx_cc_file(c, s, 1);
        return;
    }
    /* Unknown to the targets: the closest option of any binary, and who has it. */
    const char *best = NULL, *owner = NULL;
    int bestd = 4;
    for (int i = 0; i < c->nbins; i++)
        for (int k = 0; k < c->bins[i].nopts; k++) {
            int d = phx_cc_distance(s->key, c->bins[i].opts[k].name);
            if (d < bestd) {
                bestd = d;
                best = c->bins[i].opts[k].name;
                owner = c->bins[i].name;
            }
        }
    char targets[512] = "";
    for (int t = 0; t < c->ntargets; t++)
        snprintf(targets + strlen(targets), sizeof(targets) - strlen(targets), "%s%s",
                 t ? ", " : "", c->bins[c->targets[t]].name);
    if (best && bestd == 0) {
        /* Every binary that has it: shared option sets (PHX_LLM_* in phx-llm, phx-kb and
         * phx-safety) would otherwise name whichever came first. */
        char owners[512] = "";
        for (int i = 0; i < c->nbins; i++)
            for (int k = 0; k < c->bins[i].nopts; k++)
                if (strcmp(s->key, c->bins[i].opts[k].name) == 0)
                    snprintf(owners + strlen(owners), sizeof(owners) - strlen(owners), "%s%s",
                             owners[0] ? ", " : "", c->bins[i].name);
        phx_cc_problem(c, s->file, s->line, "%s is an option of %s, not of %s", s->key,
                       owners[0] ? owners : owner, targets);
    } else if (best)
        phx_cc_problem(c, s->file, s->line, "unknown setting %s (did you mean %s?)", s->key, best);
    else
        phx_cc_problem(c, s->file, s->line, "unknown setting %s (not an option of %s)", s->key,
                       targets);
}

int phx_cli_config(const phx_cli_env *env, int argc, char **argv)
{
    (void)env;
    if (argc < 2 || strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "usage: phx config check [--for BINARY[,BINARY...]|all] "
                        "[--no-file-checks] FILE...\n");
        return PHX_EXIT_USAGE;
    }
    phx_cc *c = calloc(1, sizeof(*c));
    const char *spec = NULL;
    char *files[64];
    int nfiles = 0, rc = PHX_EXIT_USAGE;
    if (!c)
        return PHX_EXIT_FAILED;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--for") == 0 && i + 1 < argc)
            spec = argv[++i];
        else if (strcmp(argv[i], "--no-file-checks") == 0)
            c->no_file_checks = 1;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "phx config check: unknown option '%s'\n", argv[i]);
            goto out;
        } else if (nfiles < 64)
            files[nfiles++] = argv[i];
    }
    if (nfiles == 0) {
        fprintf(stderr, "phx config check: no FILE given\n");
        goto out;
    }
    if (phx_cc_load_bins(c) < 0 || phx_cc_targets(c, spec, files, nfiles) < 0)
        goto out;
    for (int f = 0; f < nfiles; f++) {
        FILE *fp = fopen(files[f], "r");
        if (!fp) {
            fprintf(stderr, "phx config check: %s: %s\n", files[f], strerror(errno));
            goto out;
        }
        size_t l = strlen(files[f]);
        int json = l > 5 && strcmp(files[f] + l - 5, ".json") == 0;
        int r = json ? phx_cc_read_json(c, files[f], fp) : phx_cc_read_env(c, files[f], fp);
        fclose(fp);
        if (r < 0) {
            fprintf(stderr, "phx config check: %s: cannot read\n", files[f]);
            goto out;
        }
    }
    for (int i = 0; i < c->nset; i++)
        phx_cc_judge(c, &c->set[i]);
    /* Required options: judged on the whole set, as the process would see it. */
    for (int t = 0; t < c->ntargets; t++) {
        const phx_cc_bin *b = &c->bins[c->targets[t]];
        for (int k = 0; k < b->nopts; k++) {
            int have = 0;
            for (int i = 0; i < c->nset && !have; i++)
                have = strcmp(c->set[i].key, b->opts[k].name) == 0;
            if (!b->opts[k].def && !have)
                phx_cc_problem(c, files[nfiles - 1], 0, "%s is required by %s and not set",
                               b->opts[k].name, b->name);
        }
    }
    printf("phx config check: %d problem%s in %d file%s (for", c->problems,
           c->problems == 1 ? "" : "s", nfiles, nfiles == 1 ? "" : "s");
    for (int t = 0; t < c->ntargets; t++)
        printf(" %s", c->bins[c->targets[t]].name);
    printf(")\n");
    rc = c->problems ? PHX_EXIT_FAILED : PHX_EXIT_OK;
out:
    for (int i = 0; i < c->nset; i++) {
        free(c->set[i].key);
        free(c->set[i].value);
    }
    phx_cc_free_bins(c);
    free(c);
    return rc;
}
