/* pii.c -- personal data detectors (see pii.h). */
#include "pii.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static int phx_pii_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int phx_pii_alnum(char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

static int phx_pii_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static phx_safety_finding *phx_pii_add(phx_safety_findings *out, const char *cat, double sev,
                                       size_t s, size_t e, const char *what)
{
    phx_safety_finding *f = phx_safety_add(out, "pii", cat, sev, s, e);
    if (f) {
        f->redact = 1;
        snprintf(f->evidence, sizeof(f->evidence), "%s", what);
    }
    return f;
}

int phx_safety_luhn_ok(const char *d, size_t n)
{
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int v = d[n - 1 - i] - '0';
        if (i % 2 == 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return n > 0 && sum % 10 == 0;
}

/* Issuer prefixes of the major card networks (ISO/IEC 7812 ranges). */
static int phx_pii_card_prefix(const char *d, size_t n)
{
    int p2 = (d[0] - '0') * 10 + (d[1] - '0');
    int p4 = p2 * 100 + (d[2] - '0') * 10 + (d[3] - '0');
    if (d[0] == '4')
        return n == 13 || n == 16 || n == 19;                 /* Visa */
    if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) /* Mastercard */
        return n == 16;
    if (p2 == 34 || p2 == 37) /* Amex */
        return n == 15;
    if (p4 == 6011 || p2 == 65 || (p4 >= 6440 && p4 <= 6499)) /* Discover */
        return n >= 16 && n <= 19;
    if (p2 == 35) /* JCB */
        return n >= 16 && n <= 19;
    if (p2 == 36 || p2 == 38 || (p4 >= 3000 && p4 <= 3059)) /* Diners */
        return n >= 14 && n <= 19;
    if (p2 == 62) /* UnionPay */
        return n >= 16 && n <= 19;
    return 0;
}

static int phx_pii_cards(const char *t, size_t len, phx_safety_findings *out)
{
    int found = 0;
    for (size_t i = 0; i < len; i++) {
        if (!phx_pii_digit(t[i]) || (i > 0 && (phx_pii_alnum(t[i - 1]) || t[i - 1] == '.')))
            continue;
        char d[20];
        size_t n = 0, j = i;
        while (j < len && n < 20) {
            if (phx_pii_digit(t[j])) {
                d[n++] = t[j++];
            } else if ((t[j] == ' ' || t[j] == '-') && j + 1 < len && phx_pii_digit(t[j + 1]) &&
                       phx_pii_digit(t[j - 1])) {
                j++;
            } else {
                break;
            }
        }
        if (j < len &&
            (phx_pii_alnum(t[j]) || (t[j] == '.' && j + 1 < len && phx_pii_digit(t[j + 1]))))
            continue;
        if (n >= 13 && n <= 19 && phx_pii_card_prefix(d, n) && phx_safety_luhn_ok(d, n)) {
            phx_pii_add(out, "card_number", 0.85, i, j, "payment card number (Luhn valid)");
            found++;
            i = j;
        }
    }
    return found;
}

int phx_safety_iban_ok(const char *s, size_t n)
{
    if (n < 15 || n > 34 || !phx_pii_upper((char)s[0]) || !phx_pii_upper((char)s[1]) ||
        !phx_pii_digit(s[2]) || !phx_pii_digit(s[3]))
        return 0;
    /* move the first four characters to the end, letters -> 10..35, then mod 97 */
    int rem = 0;
    for (size_t k = 0; k < n; k++) {
        char c = s[(k + 4) % n];
        if (phx_pii_digit(c)) {
            rem = (rem * 10 + (c - '0')) % 97;
        } else if (phx_pii_upper((char)c)) {
            int v = c - 'A' + 10;
            rem = (rem * 100 + v) % 97;
        } else {
            return 0;
        }
    }
    return rem == 1;
}

static int phx_pii_ibans(const char *t, size_t len, phx_safety_findings *out)
{
    int found = 0;
    for (size_t i = 0; i + 15 <= len; i++) {
        if (!phx_pii_upper((char)t[i]) || !phx_pii_upper((char)t[i + 1]) ||
            !phx_pii_digit(t[i + 2]) || !phx_pii_digit(t[i + 3]) ||
            (i > 0 && phx_pii_alnum(t[i - 1])))
            continue;
        char b[35];
        size_t n = 0, j = i, end = i;
        while (j < len && n < 34) {
            if (phx_pii_upper((char)t[j]) || phx_pii_digit(t[j])) {
                b[n++] = t[j++];
                end = j;
            } else if (t[j] == ' ' && j + 1 < len && phx_pii_alnum(t[j + 1]) && n % 4 == 0) {
                j++;
            } else {
                break;
            }
        }
        /* the longest prefix that validates (a following word may have been swallowed) */
        for (size_t m = n; m >= 15; m--) {
            if (phx_safety_iban_ok(b, m)) {
                /* map m characters back to a source end */
                size_t cnt = 0, e = i;
                while (e < end && cnt < m) {
                    if (t[e] != ' ')
                        cnt++;
                    e++;
                }
                phx_pii_add(out, "iban", 0.75, i, e, "IBAN (checksum valid)");
                found++;
                i = e;
                break;
            }
        }
    }
    return found;
}

static int phx_pii_email_local(char c)
{
    return phx_pii_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static int phx_pii_emails(const char *t, size_t len, phx_safety_findings *out)
{
    int found = 0;
    for (size_t i = 1; i + 3 < len; i++) {
        const char *at = memchr(t + i, '@', len - 3 - i);
        if (!at)
            break;
        i = (size_t)(at - t);
        size_t s = i;
        while (s > 0 && phx_pii_email_local(t[s - 1]))
            s--;
        size_t e = i + 1, lastdot = 0;
        while (e < len && (phx_pii_alnum(t[e]) || t[e] == '-' || t[e] == '.')) {
            if (t[e] == '.')
                lastdot = e;
            e++;
        }
        while (e > i + 1 && t[e - 1] == '.')
            e--;
        if (s == i || !lastdot || lastdot >= e - 2 || lastdot == i + 1)
            continue;
        int tld_alpha = 1;
        for (size_t k = lastdot + 1; k < e; k++)
            tld_alpha &= ((t[k] | 0x20) >= 'a' && (t[k] | 0x20) <= 'z');
        if (!tld_alpha)
            continue;
        phx_pii_add(out, "email", 0.4, s, e, "e-mail address");
        found++;
        i = e;
    }
    return found;
}

/* SSN area/group/serial rules: area not 000, 666 or 9xx; group not 00; serial not 0000. */
static int phx_pii_ssns(const char *t, size_t len, phx_safety_findings *out)
{
    int found = 0;
    for (size_t i = 0; i + 11 <= len; i++) {
        const char *p = t + i;
        if (!phx_pii_digit(p[0]) || p[3] != '-')
            continue;
        if ((i > 0 && (phx_pii_alnum(t[i - 1]) || t[i - 1] == '-')) ||
            (i + 11 < len && (phx_pii_alnum(t[i + 11]) || t[i + 11] == '-')))
            continue;
        int shape = 1;
        for (int k = 0; k < 11; k++)
            shape &= (k == 3 || k == 6) ? p[k] == '-' : phx_pii_digit(p[k]);
        if (!shape)
            continue;
        int area = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
        int group = (p[4] - '0') * 10 + (p[5] - '0');
        int serial = (p[7] - '0') * 1000 + (p[8] - '0') * 100 + (p[9] - '0') * 10 + (p[10] - '0');
        if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0)
            continue;
        phx_pii_add(out, "national_id", 0.8, i, i + 11, "US social security number");
        found++;
    }
    return found;
}

/* Spanish DNI (8 digits + letter) and NIE (X/Y/Z + 7 digits + letter), check letter mod 23. */
static int phx_pii_dni(const char *t, size_t len, phx_safety_findings *out)
{
    static const char letters[] = "TRWAGMYFPDXBNJZSQVHLCKE";
    int found = 0;
    for (size_t i = 0; i + 9 <= len; i++) {
        if (!phx_pii_digit(t[i]) && t[i] != 'X' && t[i] != 'Y' && t[i] != 'Z')
            continue;
        if ((i > 0 && phx_pii_alnum(t[i - 1])) || (i + 9 < len && phx_pii_alnum(t[i + 9])))
            continue;
        long v = 0;
        size_t k = 0;
        if (t[i] == 'X' || t[i] == 'Y' || t[i] == 'Z') {
            v = t[i] - 'X';
            k = 1;
        }
        int ok = 1;
        for (; k < 8; k++) {
            if (!phx_pii_digit(t[i + k]))
                ok = 0;
            else
                v = v * 10 + (t[i + k] - '0');
        }
        if (!ok || t[i + 8] != letters[v % 23])
            continue;
        phx_pii_add(out, "national_id", 0.8, i, i + 9, "Spanish DNI/NIE (check letter valid)");
        found++;
    }
    return found;
}

/* +CC followed by 7..14 more digits with common separators; or (NNN) NNN-NNNN / NNN-NNN-NNNN. */
static int phx_pii_phones(const char *t, size_t len, phx_safety_findings *out)
{
    int found = 0;
    for (size_t i = 0; i < len; i++) {
        int plus = t[i] == '+';
        int paren = t[i] == '(';
        if (!plus && !paren && !phx_pii_digit(t[i])) /* first: the rare case, cheap to test */
            continue;
        if (i > 0 && (phx_pii_alnum(t[i - 1]) || t[i - 1] == '+' || t[i - 1] == '-'))
            continue;
        size_t j = i, digits = 0, groups = 0;
        if (plus || paren)
            j++;
        int prev_digit = 0;
        while (j < len && digits <= 15) {
            char c = t[j];
            if (phx_pii_digit(c)) {
                if (!prev_digit)
                    groups++;
                digits++;
                prev_digit = 1;
            } else if ((c == ' ' || c == '-' || c == '.' || c == ')' || c == '(') && j + 1 < len &&
                       (phx_pii_digit(t[j + 1]) || (c == ')' && t[j + 1] == ' '))) {
                prev_digit = 0;
            } else {
                break;
            }
            j++;
        }
        if (j < len && phx_pii_alnum(t[j]))
            continue;
        int ok = 0;
        if (plus)
            ok = digits >= 8 && digits <= 15;
        else if (paren || groups == 3)
            ok = digits == 10 && (j - i) >= 12 && (t[i + 3] == '-' || t[i + 3] == '.' || paren);
        if (ok) {
            phx_pii_add(out, "phone", 0.4, i, j, "phone number");
            found++;
            i = j;
        }
    }
    return found;
}

int phx_safety_pii_scan(const char *text, size_t len, phx_safety_findings *out)
{
    return phx_pii_cards(text, len, out) + phx_pii_ibans(text, len, out) +
           phx_pii_emails(text, len, out) + phx_pii_ssns(text, len, out) +
           phx_pii_dni(text, len, out) + phx_pii_phones(text, len, out);
}
