/* metrics.c -- the process's Prometheus registry (see metrics.h).
 *
 * Layout: a list of families (one per metric name, sorted by name so the exposition is stable),
 * each with a list of series (one per canonical label set, sorted). Both lists only grow, under
 * one mutex; series are never freed, so a pointer handed out stays valid and updating a series
 * needs no lock at all.
 *
 * Values are 64-bit atomics. A double cannot be fetch-added in C11, so a counter keeps two
 * parts, as the Go client does: whole increments (the common case, "one more request") go to an
 * integer with a single fetch-add, and fractional ones go to a double updated by a
 * compare-and-swap loop. Gauges and histogram sums use the CAS loop only. */
#include "metrics.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <stdarg.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

enum phx_mtype { PHX_MCOUNTER, PHX_MGAUGE, PHX_MHISTOGRAM };

static const char *phx_mtype_names[] = {"counter", "gauge", "histogram"};

struct phx_family {
    struct phx_family *next;
    char *name;
    char *help;
    enum phx_mtype type;
    double *bounds; /* histogram upper bounds, ascending, without +Inf */
    int nbounds;
    struct phx_metric *series;
};

struct phx_metric {
    struct phx_metric *next;
    struct phx_family *fam;
    char *labels;              /* canonical: a="x",b="y" with values escaped; "" for none */
    _Atomic uint64_t ival;     /* counter: whole increments; histogram: observation count */
    _Atomic uint64_t fbits;    /* counter: fractional increments; gauge: value; histogram: sum */
    _Atomic uint64_t *buckets; /* histogram: per-bucket (not cumulative) counts, nbounds long */
};

/* A label value admitted by phx_metrics_bounded_value. */
struct phx_bounded {
    struct phx_bounded *next;
    char *set, *value;
};

static struct {
    pthread_mutex_t mu;
    struct phx_family *families;
    char proc[64]; /* "" until phx_metrics_set_process() */
    struct phx_bounded *bounded;
} phx_reg = {PTHREAD_MUTEX_INITIALIZER, NULL, "", NULL};

static const double phx_default_buckets[] = {.001, .0025, .005, .01, .025, .05, .1,
                                             .25,  .5,    1,    2.5, 5,    10};

/* Registration mistakes are bugs in the calling code, not conditions to handle at run time. */
__attribute__((noreturn, format(printf, 1, 2))) static void phx_metrics_die(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    phx_log_error("metrics: %s", msg);
    abort();
}

static void *phx_metrics_alloc(size_t n)
{
    void *p = calloc(1, n);
    if (!p)
        phx_metrics_die("out of memory");
    return p;
}

static char *phx_metrics_strdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        phx_metrics_die("out of memory");
    return p;
}

static double phx_bits_to_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

static uint64_t phx_double_to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

static void phx_atomic_add_double(_Atomic uint64_t *bits, double v)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    uint64_t upd;
    do {
        upd = phx_double_to_bits(phx_bits_to_double(old) + v);
    } while (!atomic_compare_exchange_weak_explicit(bits, &old, upd, memory_order_relaxed,
                                                    memory_order_relaxed));
}

/* --- names and labels ------------------------------------------------------------------- */

static int phx_metrics_snake(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    }
    return 1;
}

static int phx_metrics_ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void phx_metrics_check_name(enum phx_mtype type, const char *name, const char *help)
{
    if (!phx_metrics_snake(name))
        phx_metrics_die("metric name \"%s\" is not lowercase snake_case", name ? name : "(null)");
    if (strncmp(name, "process_", 8) == 0 || strcmp(name, "phx_build_info") == 0)
        phx_metrics_die("metric name \"%s\" is reserved for the process metrics", name);
    if (!help || !*help)
        phx_metrics_die("metric \"%s\" has no help text", name);
    int total = phx_metrics_ends(name, "_total");
    if (type == PHX_MCOUNTER && !total)
        phx_metrics_die("counter \"%s\" must end in _total", name);
    if (type != PHX_MCOUNTER && total)
        phx_metrics_die("%s \"%s\" must not end in _total", phx_mtype_names[type], name);
    if (type == PHX_MHISTOGRAM &&
        (phx_metrics_ends(name, "_bucket") || phx_metrics_ends(name, "_count") ||
         phx_metrics_ends(name, "_sum")))
        phx_metrics_die("histogram \"%s\" must not end in _bucket, _count or _sum", name);
}

void phx_metrics_bounded_value(const char *set, const char *value, int max, char *out,
                               size_t outlen)
{
    int n = 0, found = 0;
    pthread_mutex_lock(&phx_reg.mu);
    for (struct phx_bounded *b = phx_reg.bounded; b && !found; b = b->next)
        if (strcmp(b->set, set) == 0 && (n++, strcmp(b->value, value) == 0))
            found = 1;
    if (!found && n < max) {
        struct phx_bounded *b = phx_metrics_alloc(sizeof(*b));
        b->set = phx_metrics_strdup(set);
        b->value = phx_metrics_strdup(value);
        b->next = phx_reg.bounded;
        phx_reg.bounded = b;
        found = 1;
    }
    pthread_mutex_unlock(&phx_reg.mu);
    phx_metrics_escape_label(out, outlen, found ? value : "other");
}

size_t phx_metrics_escape_label(char *out, size_t outlen, const char *value)
{
    size_t n = 0;
    for (const char *p = value; *p; p++) {
        char e = *p == '\\' ? '\\' : *p == '"' ? '"' : *p == '\n' ? 'n' : 0;
        char pair[2] = {'\\', e};
        const char *src = e ? pair : p;
        size_t len = e ? 2 : 1;
        for (size_t i = 0; i < len; i++, n++) {
            if (n + 1 < outlen)
                out[n] = src[i];
        }
    }
    if (outlen > 0)
        out[n < outlen ? n : outlen - 1] = '\0';
    return n;
}

/* Escape for a HELP line: only backslash and newline, per the format. */
static void phx_metrics_put_help(FILE *f, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", f);
        else if (*p == '\n')
            fputs("\\n", f);
        else
            fputc(*p, f);
    }
}

struct phx_label {
    char *name;
    char *value; /* decoded */
};

static int phx_label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct phx_label *)a)->name, ((const struct phx_label *)b)->name);
}

/* Parse one value after its opening quote; *pp is left after the closing quote. The decoded
 * value is written over the source copy in place (it is never longer than its escaped form). */
static char *phx_labels_value(char **pp, const char *all)
{
    char *p = *pp, *out = p, *start = p;
    for (;;) {
        if (*p == '\0')
            phx_metrics_die("unterminated label value in \"%s\"", all);
        if (*p == '"')
            break;
        if (*p == '\\') {
            p++;
            if (*p == '\\' || *p == '"')
                *out++ = *p++;
            else if (*p == 'n')
                *out++ = '\n', p++;
            else
                phx_metrics_die("bad escape in label set \"%s\" (escape values with "
                                "phx_metrics_escape_label)",
                                all);
            continue;
        }
        *out++ = *p++;
    }
    *out = '\0';
    *pp = p + 1;
    return start;
}

static char *phx_labels_skip_space(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Canonical form of a caller's label set: sorted by name, values re-escaped. malloc'd. */
static char *phx_labels_canon(const char *labels, int histogram)
{
    if (!labels || !*labels)
        return phx_metrics_strdup("");
    char *copy = phx_metrics_strdup(labels);
    size_t cap = 1;
    for (const char *c = labels; *c; c++)
        cap += *c == '=';
    struct phx_label *set = phx_metrics_alloc(cap * sizeof(*set));
    size_t n = 0;
    char *p = phx_labels_skip_space(copy);
    while (*p) {
        char *name = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
            p++;
        char *name_end = p;
        p = phx_labels_skip_space(p);
        if (name_end == name || *p != '=')
            phx_metrics_die("malformed label set \"%s\" (want name=\"value\",...)", labels);
        p = phx_labels_skip_space(p + 1);
        if (*p != '"')
            phx_metrics_die("malformed label set \"%s\" (value not quoted)", labels);
        p++;
        *name_end = '\0';
        if (!phx_metrics_snake(name) || strncmp(name, "__", 2) == 0)
            phx_metrics_die("label name \"%s\" is invalid or reserved", name);
        if (histogram && strcmp(name, "le") == 0)
            phx_metrics_die("histograms must not use the label \"le\"");
        char *value = phx_labels_value(&p, labels);
        phx_utf8_scrub(value); /* the exposition format is UTF-8 */
        set[n].name = name;
        set[n].value = value;
        n++;
        p = phx_labels_skip_space(p);
        if (*p == ',')
            p = phx_labels_skip_space(p + 1);
        else if (*p)
            phx_metrics_die("malformed label set \"%s\" (expected ',')", labels);
    }
    qsort(set, n, sizeof(*set), phx_label_cmp);
    size_t len = 1;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(set[i - 1].name, set[i].name) == 0)
            phx_metrics_die("label \"%s\" repeated in \"%s\"", set[i].name, labels);
        len += strlen(set[i].name) + 4 + phx_metrics_escape_label(NULL, 0, set[i].value);
    }
    char *canon = phx_metrics_alloc(len);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        off += (size_t)snprintf(canon + off, len - off, "%s%s=\"", i ? "," : "", set[i].name);
        off += phx_metrics_escape_label(canon + off, len - off, set[i].value);
        off += (size_t)snprintf(canon + off, len - off, "\"");
    }
    free(set);
    free(copy);
    return canon;
}

/* --- registration ----------------------------------------------------------------------- */

static void phx_metrics_check_bounds(const char *name, const double *b, int n)
{
    if (n < 0)
        phx_metrics_die("histogram \"%s\": negative bucket count", name);
    for (int i = 0; i < n; i++) {
        if (!isfinite(b[i]))
            phx_metrics_die("histogram \"%s\": bucket bounds must be finite", name);
        if (i > 0 && !(b[i] > b[i - 1]))
            phx_metrics_die("histogram \"%s\": bucket bounds must be strictly ascending", name);
    }
}

/* Find the family under the lock, or create it in sorted position. */
static struct phx_family *phx_family_get(enum phx_mtype type, const char *name, const char *help,
                                         const double *bounds, int nbounds)
{
    struct phx_family **pp = &phx_reg.families;
    while (*pp && strcmp((*pp)->name, name) < 0)
        pp = &(*pp)->next;
    struct phx_family *f = *pp;
    if (f && strcmp(f->name, name) == 0) {
        if (f->type != type)
            phx_metrics_die("metric \"%s\" registered as %s, now requested as %s", name,
                            phx_mtype_names[f->type], phx_mtype_names[type]);
        if (type == PHX_MHISTOGRAM &&
            (f->nbounds != nbounds ||
             (nbounds > 0 && memcmp(f->bounds, bounds, (size_t)nbounds * sizeof(double)) != 0)))
            phx_metrics_die("histogram \"%s\" registered again with other buckets", name);
        return f;
    }
    f = phx_metrics_alloc(sizeof(*f));
    f->name = phx_metrics_strdup(name);
    f->help = phx_metrics_strdup(help);
    f->type = type;
    if (type == PHX_MHISTOGRAM && nbounds > 0) {
        f->bounds = phx_metrics_alloc((size_t)nbounds * sizeof(double));
        memcpy(f->bounds, bounds, (size_t)nbounds * sizeof(double));
        f->nbounds = nbounds;
    }
    f->next = *pp;
    *pp = f;
    return f;
}

static phx_metric *phx_metrics_get(enum phx_mtype type, const char *name, const char *help,
                                   const char *labels, const double *bounds, int nbounds)
{
    phx_metrics_check_name(type, name, help);
    if (type == PHX_MHISTOGRAM) {
        if (!bounds) {
            bounds = phx_default_buckets;
            nbounds = (int)(sizeof(phx_default_buckets) / sizeof(phx_default_buckets[0]));
        }
        phx_metrics_check_bounds(name, bounds, nbounds);
    }
    char *canon = phx_labels_canon(labels, type == PHX_MHISTOGRAM);

    pthread_mutex_lock(&phx_reg.mu);
    struct phx_family *f = phx_family_get(type, name, help, bounds, nbounds);
    struct phx_metric **pp = &f->series;
    while (*pp && strcmp((*pp)->labels, canon) < 0)
        pp = &(*pp)->next;
    struct phx_metric *m = *pp;
    if (!m || strcmp(m->labels, canon) != 0) {
        m = phx_metrics_alloc(sizeof(*m));
        m->fam = f;
        m->labels = canon;
        canon = NULL;
        if (type == PHX_MHISTOGRAM && f->nbounds > 0)
            m->buckets = phx_metrics_alloc((size_t)f->nbounds * sizeof(m->buckets[0]));
        m->next = *pp;
        *pp = m;
    }
    pthread_mutex_unlock(&phx_reg.mu);
    free(canon);
    return m;
}

phx_metric *phx_counter(const char *name, const char *help, const char *labels)
{
    return phx_metrics_get(PHX_MCOUNTER, name, help, labels, NULL, 0);
}

phx_metric *phx_gauge(const char *name, const char *help, const char *labels)
{
    return phx_metrics_get(PHX_MGAUGE, name, help, labels, NULL, 0);
}

phx_metric *phx_histogram(const char *name, const char *help, const char *labels,
                          const double *bounds, int nbounds)
{
    return phx_metrics_get(PHX_MHISTOGRAM, name, help, labels, bounds, nbounds);
}

/* --- updates (lock-free) ---------------------------------------------------------------- */

static void phx_metric_want(const phx_metric *m, enum phx_mtype type, const char *op)
{
    if (!m)
        phx_metrics_die("%s on a NULL metric", op);
    if (m->fam->type != type)
        phx_metrics_die("%s on %s \"%s\"", op, phx_mtype_names[m->fam->type], m->fam->name);
}

void phx_metric_add(phx_metric *m, double v)
{
    if (!m)
        phx_metrics_die("add on a NULL metric");
    switch (m->fam->type) {
    case PHX_MCOUNTER:
        if (!(v >= 0)) /* also catches NaN */
            return;
        if (v <= 9007199254740992.0 && v == floor(v)) /* exact in both uint64 and double */
            atomic_fetch_add_explicit(&m->ival, (uint64_t)v, memory_order_relaxed);
        else
            phx_atomic_add_double(&m->fbits, v);
        return;
    case PHX_MGAUGE:
        phx_atomic_add_double(&m->fbits, v);
        return;
    case PHX_MHISTOGRAM:
        break;
    }
    phx_metrics_die("add on histogram \"%s\" (use phx_metric_observe)", m->fam->name);
}

void phx_metric_set(phx_metric *m, double v)
{
    phx_metric_want(m, PHX_MGAUGE, "set");
    atomic_store_explicit(&m->fbits, phx_double_to_bits(v), memory_order_relaxed);
}

/* The count is incremented before the bucket and render reads the buckets before the count
 * (both sequentially consistent), so a scrape never shows a cumulative bucket above +Inf, even
 * while other threads observe. */
void phx_metric_observe(phx_metric *m, double v)
{
    phx_metric_want(m, PHX_MHISTOGRAM, "observe");
    const struct phx_family *f = m->fam;
    atomic_fetch_add(&m->ival, 1);
    int i = 0;
    while (i < f->nbounds && !(v <= f->bounds[i])) /* NaN lands in +Inf only */
        i++;
    if (i < f->nbounds)
        atomic_fetch_add(&m->buckets[i], 1);
    phx_atomic_add_double(&m->fbits, v);
}

double phx_metric_value(const phx_metric *m)
{
    if (!m)
        phx_metrics_die("value of a NULL metric");
    double f = phx_bits_to_double(atomic_load(&((phx_metric *)m)->fbits));
    uint64_t i = atomic_load(&((phx_metric *)m)->ival);
    switch (m->fam->type) {
    case PHX_MCOUNTER:
        return (double)i + f;
    case PHX_MGAUGE:
        return f;
    case PHX_MHISTOGRAM:
        return (double)i;
    }
    return 0;
}

void phx_metrics_each(const char *name, phx_metrics_visit_fn fn, void *arg)
{
    pthread_mutex_lock(&phx_reg.mu);
    for (struct phx_family *fam = phx_reg.families; fam; fam = fam->next) {
        if (strcmp(fam->name, name) != 0)
            continue;
        for (phx_metric *m = fam->series; m; m = m->next)
            fn(arg, m->labels, phx_metric_value(m));
        break;
    }
    pthread_mutex_unlock(&phx_reg.mu);
}

/* --- exposition ------------------------------------------------------------------------- */

/* Shortest text that reads back as the same double, like Go's FormatFloat(v, 'g', -1): "%.17g"
 * would print 0.1 as 0.10000000000000001 in every le label. */
static void phx_metrics_fmt(char *buf, size_t n, double v)
{
    if (isnan(v)) {
        snprintf(buf, n, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, n, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        snprintf(buf, n, "0");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, n, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void phx_metrics_put_header(FILE *f, const char *name, const char *help, const char *type)
{
    fprintf(f, "# HELP %s ", name);
    phx_metrics_put_help(f, help);
    fprintf(f, "\n# TYPE %s %s\n", name, type);
}

/* One sample line: name{labels[,extra]} value. */
static void phx_metrics_put_sample(FILE *f, const char *name, const char *suffix,
                                   const char *labels, const char *extra, double v)
{
    char num[40];
    phx_metrics_fmt(num, sizeof(num), v);
    fprintf(f, "%s%s", name, suffix);
    if (*labels || extra)
        fprintf(f, "{%s%s%s}", labels, *labels && extra ? "," : "", extra ? extra : "");
    fprintf(f, " %s\n", num);
}

static void phx_metrics_put_histogram(FILE *f, const struct phx_family *fam, phx_metric *m)
{
    uint64_t cum = 0;
    char le[64], num[40];
    uint64_t counts[fam->nbounds > 0 ? fam->nbounds : 1];
    for (int i = 0; i < fam->nbounds; i++)
        counts[i] = atomic_load(&m->buckets[i]);
    uint64_t count = atomic_load(&m->ival);
    double sum = phx_bits_to_double(atomic_load(&m->fbits));
    for (int i = 0; i < fam->nbounds; i++) {
        /* counts[0..nbounds) were all written by the loop above (same bound). */
        // cppcheck-suppress uninitvar
        cum += counts[i];
        phx_metrics_fmt(num, sizeof(num), fam->bounds[i]);
        snprintf(le, sizeof(le), "le=\"%s\"", num);
        phx_metrics_put_sample(f, fam->name, "_bucket", m->labels, le, (double)cum);
    }
    phx_metrics_put_sample(f, fam->name, "_bucket", m->labels, "le=\"+Inf\"", (double)count);
    phx_metrics_put_sample(f, fam->name, "_sum", m->labels, NULL, sum);
    phx_metrics_put_sample(f, fam->name, "_count", m->labels, NULL, (double)count);
}

/* Fields of /proc/self/stat we report; 0 when /proc is unreadable. */
struct phx_procstat {
    double cpu_seconds;
    double rss_bytes;
    double start_seconds;
};

static void phx_metrics_read_stat(struct phx_procstat *ps)
{
    memset(ps, 0, sizeof(*ps));
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* comm (field 2) may hold spaces and parentheses: parse from the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return;
    unsigned long long utime = 0, stime = 0, start = 0;
    long rss = 0;
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
        field++;
        if (field == 14)
            utime = strtoull(tok, NULL, 10);
        else if (field == 15)
            stime = strtoull(tok, NULL, 10);
        else if (field == 22)
            start = strtoull(tok, NULL, 10);
        else if (field == 24)
            rss = strtol(tok, NULL, 10);
    }
    double tck = (double)sysconf(_SC_CLK_TCK);
    ps->cpu_seconds = (double)(utime + stime) / tck;
    ps->rss_bytes = (double)rss * (double)sysconf(_SC_PAGESIZE);

    /* The start time is in ticks since boot; boot time is btime in /proc/stat. */
    f = fopen("/proc/stat", "re");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        char *end;
        if (strncmp(line, "btime ", 6) == 0) {
            unsigned long long btime = strtoull(line + 6, &end, 10);
            if (end != line + 6)
                ps->start_seconds = (double)btime + (double)start / tck;
            break;
        }
    }
    fclose(f);
}

static double phx_metrics_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

static void phx_metrics_put_process(FILE *f, const char *proc)
{
    struct phx_procstat ps;
    phx_metrics_read_stat(&ps);
    struct rlimit rl;
    double max_fds = 0;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        max_fds = rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur;

    phx_metrics_put_header(f, "process_cpu_seconds_total",
                           "Total user and system CPU time spent in seconds.", "counter");
    phx_metrics_put_sample(f, "process_cpu_seconds_total", "", "", NULL, ps.cpu_seconds);
    phx_metrics_put_header(f, "process_max_fds", "Maximum number of open file descriptors.",
                           "gauge");
    phx_metrics_put_sample(f, "process_max_fds", "", "", NULL, max_fds);
    phx_metrics_put_header(f, "process_open_fds", "Number of open file descriptors.", "gauge");
    phx_metrics_put_sample(f, "process_open_fds", "", "", NULL, phx_metrics_open_fds());
    phx_metrics_put_header(f, "process_resident_memory_bytes", "Resident memory size in bytes.",
                           "gauge");
    phx_metrics_put_sample(f, "process_resident_memory_bytes", "", "", NULL, ps.rss_bytes);
    phx_metrics_put_header(f, "process_start_time_seconds",
                           "Start time of the process since unix epoch in seconds.", "gauge");
    phx_metrics_put_sample(f, "process_start_time_seconds", "", "", NULL, ps.start_seconds);

    char esc[sizeof(phx_reg.proc) * 2 + 16], label[sizeof(esc) + 16];
    phx_metrics_escape_label(esc, sizeof(esc), proc);
    snprintf(label, sizeof(label), "proc=\"%s\"", esc);
    phx_metrics_put_header(f, "phx_build_info", "Phoenix process identity; always 1.", "gauge");
    phx_metrics_put_sample(f, "phx_build_info", "", label, NULL, 1);
}

char *phx_metrics_render(void)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        return NULL;

    pthread_mutex_lock(&phx_reg.mu);
    char proc[sizeof(phx_reg.proc)];
    memcpy(proc, phx_reg.proc, sizeof(proc));
    for (struct phx_family *fam = phx_reg.families; fam; fam = fam->next) {
        if (!fam->series)
            continue;
        phx_metrics_put_header(f, fam->name, fam->help, phx_mtype_names[fam->type]);
        for (phx_metric *m = fam->series; m; m = m->next) {
            if (fam->type == PHX_MHISTOGRAM)
                phx_metrics_put_histogram(f, fam, m);
            else
                phx_metrics_put_sample(f, fam->name, "", m->labels, NULL, phx_metric_value(m));
        }
    }
    pthread_mutex_unlock(&phx_reg.mu);

    /* Outside the lock: reading /proc must not hold up registrations. */
    if (proc[0])
        phx_metrics_put_process(f, proc);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(out);
        return NULL;
    }
    return out;
}

void phx_metrics_set_process(const char *proc)
{
    pthread_mutex_lock(&phx_reg.mu);
    snprintf(phx_reg.proc, sizeof(phx_reg.proc), "%s", proc && *proc ? proc : "phx");
    pthread_mutex_unlock(&phx_reg.mu);
}
