/* redact.c -- secret redaction (see redact.h).
 *
 * The scan is a plain left-to-right pass: at each position try the registered values (longest
 * first, so a secret that contains another is removed whole), then the built-in shapes. It is
 * O(length x secrets), which is fine for log lines and step results and for the handful of
 * secrets a process holds. */
#include "util.h"
#include "redact.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_rwlock_t phx_redact_lock = PTHREAD_RWLOCK_INITIALIZER;
static char **phx_redact_vals;
static size_t phx_redact_n;

static int phx_redact_longer(const void *a, const void *b)
{
    size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
    return la < lb ? 1 : la > lb ? -1 : 0;
}

void phx_redact_add(const char *secret)
{
    if (!secret || strlen(secret) < 8)
        return;
    pthread_rwlock_wrlock(&phx_redact_lock);
    for (size_t i = 0; i < phx_redact_n; i++) {
        if (strcmp(phx_redact_vals[i], secret) == 0) {
            pthread_rwlock_unlock(&phx_redact_lock);
            return;
        }
    }
    phx_redact_vals = phx_xrealloc(phx_redact_vals, (phx_redact_n + 1) * sizeof(*phx_redact_vals));
    phx_redact_vals[phx_redact_n++] = phx_xstrdup(secret);
    qsort(phx_redact_vals, phx_redact_n, sizeof(*phx_redact_vals), phx_redact_longer);
    pthread_rwlock_unlock(&phx_redact_lock);
}

void phx_redact_clear(void)
{
    pthread_rwlock_wrlock(&phx_redact_lock);
    for (size_t i = 0; i < phx_redact_n; i++)
        free(phx_redact_vals[i]);
    free(phx_redact_vals);
    phx_redact_vals = NULL;
    phx_redact_n = 0;
    pthread_rwlock_unlock(&phx_redact_lock);
}

static int phx_redact_b64url(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_';
}

/* Length of a built-in secret shape starting at s, or 0. *keep: bytes of it to keep visible
 * (the "Bearer " in front of a credential). */
static size_t phx_redact_shape(const char *s, const char *start, size_t *keep)
{
    *keep = 0;
    /* An API key: phx_ + 48 lower-case hex, not inside a longer word. */
    if (strncmp(s, "phx_", 4) == 0 && (s == start || !isalnum((unsigned char)s[-1]))) {
        size_t n = 0;
        while (n < 48 && isxdigit((unsigned char)s[4 + n]) && !isupper((unsigned char)s[4 + n]))
            n++;
        if (n == 48 && !isalnum((unsigned char)s[52]))
            return 52;
    }
    /* A JWT: eyJ... . ... . ... (the header and payload are base64url JSON objects). */
    if (strncmp(s, "eyJ", 3) == 0 && (s == start || !phx_redact_b64url(s[-1]))) {
        size_t n = 0;
        int dots = 0;
        while (phx_redact_b64url(s[n]) || (s[n] == '.' && dots < 2 && ++dots))
            n++;
        if (dots == 2 && n >= 20)
            return n;
    }
    /* Whatever follows "Bearer " is a credential. */
    if (strncasecmp(s, "Bearer ", 7) == 0) {
        size_t n = 7;
        while (s[n] && !isspace((unsigned char)s[n]) && s[n] != '"' && s[n] != '\'' && s[n] != ',')
            n++;
        if (n > 7 && strncmp(s + 7, PHX_REDACTED, strlen(PHX_REDACTED)) != 0) {
            *keep = 7;
            return n;
        }
    }
    return 0;
}

/* Length of the secret at s (registered or shaped), 0 if none; lock held. */
static size_t phx_redact_at(const char *s, const char *start, size_t *keep)
{
    *keep = 0;
    for (size_t i = 0; i < phx_redact_n; i++) {
        size_t n = strlen(phx_redact_vals[i]);
        if (strncmp(s, phx_redact_vals[i], n) == 0)
            return n;
    }
    return phx_redact_shape(s, start, keep);
}

/* Redact s into a new string; *count gets the replacements. */
static char *phx_redact_run(const char *s, int *count)
{
    size_t len = strlen(s), cap = len + 1, o = 0;
    char *out = phx_xmalloc(cap);
    *count = 0;
    pthread_rwlock_rdlock(&phx_redact_lock);
    for (const char *p = s; *p;) {
        size_t keep, n = phx_redact_at(p, s, &keep);
        const char *add = p;
        size_t addn = 1;
        if (n) {
            addn = keep; /* kept prefix first, then the marker */
            (*count)++;
        }
        size_t need = o + addn + (n ? strlen(PHX_REDACTED) : 0) + 1;
        if (need > cap) {
            cap = need + len;
            out = phx_xrealloc(out, cap);
        }
        memcpy(out + o, add, addn);
        o += addn;
        if (n) {
            memcpy(out + o, PHX_REDACTED, strlen(PHX_REDACTED));
            o += strlen(PHX_REDACTED);
            p += n;
        } else {
            p++;
        }
    }
    pthread_rwlock_unlock(&phx_redact_lock);
    out[o] = '\0';
    return out;
}

char *phx_redact_dup(const char *s)
{
    int count;
    return phx_redact_run(s ? s : "", &count);
}

int phx_redact_buf(char *s, size_t cap)
{
    int count;
    char *r = phx_redact_run(s, &count);
    if (count)
        snprintf(s, cap, "%s", r);
    free(r);
    return count;
}

int phx_redact_json(json_t *v)
{
    int count = 0;
    if (json_is_string(v)) {
        char *r = phx_redact_run(json_string_value(v), &count);
        if (count)
            json_string_set(v, r);
        free(r);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) count += phx_redact_json(e);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *e;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, e)
        {
            count += phx_redact_json(e);
            int kc;
            char *rk = phx_redact_run(k, &kc);
            if (kc) { /* a secret as a key: move the value under the redacted key */
                json_object_set(v, rk, e);
                json_object_del(v, k);
                count += kc;
            }
            free(rk);
        }
    }
    return count;
}
