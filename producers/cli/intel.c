/* intel.c -- `phx intel import`: turn a plain-text blocklist into a threat feed file.
 *
 * Vendor and community blocklists come as one entry a line in a handful of dialects (plain,
 * hosts files, AdBlock rules, sha256sum output); the pools read only the feed format
 * (lib/intel.h). The conversion of one line is lib/intel.c's phx_intel_import_line, so what the
 * importer writes is checked by the same code that loads it. This command adds the file
 * around it: the header with source and expiry, a report of every line it could not use (with
 * its line number; counted, never dropped silently), and an atomic replace (temp file in the
 * same directory, fsync, rename) so a pool reloading the feed never reads half a file.
 *
 * A refusal writes nothing: more bad lines than --max-bad (default 0), or no entries at all
 * (a failed download -- an HTML error page, an empty body -- must not replace a good feed). */
#include "cli.h"
#include "intel.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char phx_intel_usage[] =
    "usage: phx intel import --kind domains|ips|urls|hashes --source NAME --out FEED_FILE\n"
    "                        [--expires DURATION] [--max-bad N] FILE|-\n"
    "  DURATION: N followed by s, m, h, d or w (e.g. 30d); default: entries never expire.\n";

/* "30d" -> ms; -1 when it does not parse. */
static int64_t phx_intel_duration(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v <= 0 || end[0] == '\0' || end[1] != '\0')
        return -1;
    int64_t unit;
    switch (*end) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60 * 1000;
        break;
    case 'h':
        unit = 3600 * 1000;
        break;
    case 'd':
        unit = 86400 * 1000LL;
        break;
    case 'w':
        unit = 7 * 86400 * 1000LL;
        break;
    default:
        return -1;
    }
    if (v > INT64_MAX / unit / 2)
        return -1;
    return (int64_t)v * unit;
}

static int phx_intel_kind(const char *s)
{
    if (!s)
        return -1;
    if (strcmp(s, "domains") == 0)
        return PHX_INTEL_DOMAIN;
    if (strcmp(s, "ips") == 0)
        return PHX_INTEL_IP;
    if (strcmp(s, "urls") == 0)
        return PHX_INTEL_URL;
    if (strcmp(s, "hashes") == 0)
        return PHX_INTEL_SHA256;
    return -1;
}

/* The reasons lines were ignored, counted (a handful of distinct texts). */
typedef struct phx_intel_ignored {
    const char *why[8];
    long n[8];
    int k;
} phx_intel_ignored;

static void phx_intel_ignore(phx_intel_ignored *ig, const char *why)
{
    for (int i = 0; i < ig->k; i++)
        if (ig->why[i] == why || strcmp(ig->why[i], why) == 0) {
            ig->n[i]++;
            return;
        }
    if (ig->k < 8) {
        ig->why[ig->k] = why;
        ig->n[ig->k++] = 1;
    }
}

/* Write text to path atomically: PATH.tmp.PID beside it, fsync, rename. 0, or -1 (printed). */
static int phx_intel_write(const char *path, const char *text, size_t len)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "phx intel: cannot create %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    int ok = fwrite(text, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) < 0) {
        fprintf(stderr, "phx intel: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int phx_intel_import(int argc, char **argv)
{
    const char *kind_s = NULL, *source = NULL, *out = NULL, *expires = NULL, *in = NULL;
    long max_bad = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (strcmp(a, "--kind") == 0 && more)
            kind_s = argv[++i];
        else if (strcmp(a, "--source") == 0 && more)
            source = argv[++i];
        else if (strcmp(a, "--out") == 0 && more)
            out = argv[++i];
        else if (strcmp(a, "--expires") == 0 && more)
            expires = argv[++i];
        else if (strcmp(a, "--max-bad") == 0 && more)
            max_bad = strtol(argv[++i], NULL, 10);
        else if (!in && (a[0] != '-' || strcmp(a, "-") == 0))
            in = a;
        else {
            fprintf(stderr, "phx intel import: unexpected argument %s\n%s", a, phx_intel_usage);
            return PHX_EXIT_USAGE;
        }
    }
    int kind = phx_intel_kind(kind_s);
    int64_t exp_ms = expires ? phx_intel_duration(expires) : 0;
    if (kind < 0 || !source || !*source || strchr(source, '\n') || !out || !in || exp_ms < 0 ||
        max_bad < 0) {
        fprintf(stderr, "%s", phx_intel_usage);
        return PHX_EXIT_USAGE;
    }
    const char *name = strcmp(in, "-") ? in : "stdin";
    FILE *f = strcmp(in, "-") ? fopen(in, "r") : stdin;
    if (!f) {
        fprintf(stderr, "phx intel import: cannot open %s: %s\n", in, strerror(errno));
        return PHX_EXIT_USAGE;
    }
    int rc = PHX_EXIT_FAILED;
    size_t cap = 65536, at = 0;
    char *feed = phx_xrealloc(NULL, cap);
    char stamp[32] = "never";
    if (exp_ms > 0) {
        time_t t = (time_t)((phx_now_ms() + exp_ms) / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    at += (size_t)snprintf(feed, cap,
                           "# phx-intel v1\n# phx intel import --kind %s of %s\n@source %s\n"
                           "@expires %s\n",
                           kind_s, name, source, stamp);
    long entries = 0, bad = 0, ignored = 0, blank = 0, lineno = 0;
    phx_intel_ignored ig = {0};
    char entry[16384], *line = NULL;
    size_t lcap = 0;
    /* Line by line: hosts files of a few million lines need not fit in memory twice. */
    while (getline(&line, &lcap, f) >= 0) {
        lineno++;
        const char *why = NULL;
        int n = phx_intel_import_line((phx_intel_type)kind, line, entry, sizeof(entry), &why);
        if (n < 0) {
            line[strcspn(line, "\r\n")] = '\0';
            if (++bad <= 50)
                fprintf(stderr, "%s:%ld: %s: %.80s\n", name, lineno, why, line);
        } else if (n == 0) {
            if (why) {
                phx_intel_ignore(&ig, why);
                ignored++;
            } else {
                blank++;
            }
        } else {
            size_t el = strlen(entry);
            if (at + el + 1 > cap)
                feed = phx_xrealloc(feed, cap = (at + el + 1) * 2);
            memcpy(feed + at, entry, el + 1);
            at += el;
            entries += n;
        }
    }
    free(line);
    int read_err = ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad > 50)
        fprintf(stderr, "... and %ld more bad lines\n", bad - 50);
    for (int i = 0; i < ig.k; i++)
        fprintf(stderr, "ignored %ld lines: %s\n", ig.n[i], ig.why[i]);
    fprintf(stderr, "%s: %ld lines: %ld entries, %ld bad, %ld ignored, %ld blank or comments\n",
            name, lineno, entries, bad, ignored, blank);
    if (read_err)
        fprintf(stderr, "phx intel import: error reading %s; %s not written\n", name, out);
    else if (bad > max_bad)
        fprintf(stderr,
                "phx intel import: %ld bad lines (more than --max-bad %ld); %s not "
                "written\n",
                bad, max_bad, out);
    else if (entries == 0)
        fprintf(stderr, "phx intel import: no entries; %s not written\n", out);
    else if (phx_intel_write(out, feed, at) == 0) {
        printf("%s: %ld entries from source %s (expires %s)\n", out, entries, source, stamp);
        rc = PHX_EXIT_OK;
    }
    free(feed);
    return rc;
}

int phx_cli_intel(const phx_cli_env *env, int argc, char **argv)
{
    (void)env;
    if (argc >= 2 && strcmp(argv[1], "import") == 0)
        return phx_intel_import(argc - 1, argv + 1);
    fprintf(stderr, "%s", phx_intel_usage);
    return PHX_EXIT_USAGE;
}
