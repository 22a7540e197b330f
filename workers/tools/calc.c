/* calc.c -- tool.calc (see calc.h for the grammar and the limits).
 *
 * One function per grammar rule, each taking the parser state and returning 0 or -1 with the
 * error already filled in, so a failure deep in the recursion unwinds with no cleanup. Every
 * operation checks its result right away and reports the position of the operator that failed,
 * which is far more useful to whoever wrote the template than "result is inf" at the end.
 *
 * Numbers are scanned by hand (the syntax in calc.h) and only then converted with strtod_l in
 * the "C" locale: strtod alone would also accept "inf", "nan" and hex floats, and would read
 * "1,5" as a number under a locale whose decimal point is a comma. */
#include "calc.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct calc_parser {
    const char *s;
    size_t pos;   /* byte offset of the next unread character */
    int depth;    /* current nesting level, see calc_enter() */
    locale_t loc; /* "C" numeric locale for strtod_l */
    phx_err *err;
} calc_parser;

static int calc_parse_expr(calc_parser *p, double *out);
static int calc_parse_unary(calc_parser *p, double *out);

static void calc_skip_ws(calc_parser *p)
{
    while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
           p->s[p->pos] == '\r')
        p->pos++;
}

static int calc_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Describe the character at pos for an error message: 'x', byte 0xNN, or end of expression.
 * Non-printable bytes are shown as hex so the message stays valid, readable UTF-8. */
static const char *calc_describe(const calc_parser *p, size_t pos, char buf[32])
{
    unsigned char c = (unsigned char)p->s[pos];
    if (c == '\0')
        return "end of expression";
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, 32, "'%c'", c);
    else
        snprintf(buf, 32, "byte 0x%02x", c);
    return buf;
}

/* The error helpers return -1 themselves rather than phx_err_set's -1: the analyzer cannot see
 * into lib/err.c, and a "maybe 0" there let it follow failed parses with unset outputs. */
static int calc_fail(calc_parser *p, size_t pos, const char *what)
{
    phx_err_set(p->err, "invalid_input", 0, "%s at position %zu", what, pos + 1);
    return -1;
}

static int calc_unexpected(calc_parser *p, size_t pos, const char *expected)
{
    char buf[32];
    phx_err_set(p->err, "invalid_input", 0, "unexpected %s at position %zu (expected %s)",
                calc_describe(p, pos, buf), pos + 1, expected);
    return -1;
}

/* Each '(' , unary sign and '^' exponent recurses; counting them bounds the C stack no matter
 * how the input is shaped. */
static int calc_enter(calc_parser *p, size_t pos)
{
    if (++p->depth > PHX_CALC_MAX_DEPTH)
        return phx_err_set(p->err, "invalid_input", 0, "nesting deeper than %d at position %zu",
                           PHX_CALC_MAX_DEPTH, pos + 1);
    return 0;
}

static void calc_leave(calc_parser *p)
{
    p->depth--;
}

/* Refuse results JSON cannot carry; pos is the operator that produced v. */
static int calc_check(calc_parser *p, double v, size_t pos)
{
    if (isnan(v))
        return calc_fail(p, pos, "undefined result (not a real number)");
    if (isinf(v))
        return calc_fail(p, pos, "overflow: result out of range");
    return 0;
}

static int calc_parse_number(calc_parser *p, double *out)
{
    size_t start = p->pos, i = p->pos;
    int digits = 0;
    while (calc_is_digit(p->s[i]))
        i++, digits++;
    if (p->s[i] == '.') {
        i++;
        while (calc_is_digit(p->s[i]))
            i++, digits++;
    }
    if (digits == 0)
        return calc_fail(p, start, "malformed number");
    if (p->s[i] == 'e' || p->s[i] == 'E') {
        size_t e = i + 1;
        if (p->s[e] == '+' || p->s[e] == '-')
            e++;
        if (!calc_is_digit(p->s[e]))
            return calc_fail(p, i, "malformed exponent");
        while (calc_is_digit(p->s[e]))
            e++;
        i = e;
    }

    /* The whole input is at most PHX_CALC_MAX_LEN bytes, so the literal fits. */
    char buf[PHX_CALC_MAX_LEN + 1];
    size_t len = i - start;
    memcpy(buf, p->s + start, len);
    buf[len] = '\0';
    errno = 0;
    double v = strtod_l(buf, NULL, p->loc);
    /* ERANGE also flags underflow; a tiny literal rounding to 0 or a subnormal is fine. */
    if (isinf(v))
        return calc_fail(p, start, "number out of range");
    *out = v;
    p->pos = i;
    return 0;
}

static int calc_parse_primary(calc_parser *p, double *out)
{
    calc_skip_ws(p);
    size_t pos = p->pos;
    char c = p->s[pos];
    if (calc_is_digit(c) || c == '.')
        return calc_parse_number(p, out);
    if (c != '(')
        return calc_unexpected(p, pos, "a number or '('");

    if (calc_enter(p, pos) < 0)
        return -1;
    p->pos++;
    if (calc_parse_expr(p, out) < 0)
        return -1;
    calc_skip_ws(p);
    if (p->s[p->pos] != ')') {
        /* Either the input ended early or something odd follows: point at the culprit but
         * also at the '(' being closed, which is what the writer has to go and fix. */
        char buf[32], what[96];
        snprintf(what, sizeof(what), "missing ')' for '(' at position %zu, found %s", pos + 1,
                 calc_describe(p, p->pos, buf));
        return calc_fail(p, p->pos, what);
    }
    p->pos++;
    calc_leave(p);
    return 0;
}

static int calc_parse_power(calc_parser *p, double *out)
{
    double base, ex;
    if (calc_parse_primary(p, &base) < 0)
        return -1;
    calc_skip_ws(p);
    size_t op = p->pos;
    if (p->s[op] != '^') {
        *out = base;
        return 0;
    }
    p->pos++;
    /* The exponent is a unary, not a power: that is what makes '^' right-associative and
     * lets it carry its own sign (2^-1). */
    if (calc_enter(p, op) < 0 || calc_parse_unary(p, &ex) < 0)
        return -1;
    calc_leave(p);
    if (base == 0 && ex < 0)
        return calc_fail(p, op, "division by zero (0 raised to a negative power)");
    *out = pow(base, ex);
    return calc_check(p, *out, op);
}

static int calc_parse_unary(calc_parser *p, double *out)
{
    calc_skip_ws(p);
    size_t pos = p->pos;
    char c = p->s[pos];
    if (c != '-' && c != '+')
        return calc_parse_power(p, out);
    p->pos++;
    if (calc_enter(p, pos) < 0 || calc_parse_unary(p, out) < 0)
        return -1;
    calc_leave(p);
    if (c == '-')
        *out = -*out;
    return 0;
}

static int calc_parse_term(calc_parser *p, double *out)
{
    double acc, rhs;
    if (calc_parse_unary(p, &acc) < 0)
        return -1;
    for (;;) {
        calc_skip_ws(p);
        size_t op = p->pos;
        char c = p->s[op];
        if (c != '*' && c != '/' && c != '%')
            break;
        p->pos++;
        if (calc_parse_unary(p, &rhs) < 0)
            return -1;
        if (c == '*') {
            acc *= rhs;
        } else if (c == '/') {
            if (rhs == 0)
                return calc_fail(p, op, "division by zero");
            acc /= rhs;
        } else {
            if (rhs == 0)
                return calc_fail(p, op, "modulo by zero");
            acc = fmod(acc, rhs);
        }
        if (calc_check(p, acc, op) < 0)
            return -1;
    }
    *out = acc;
    return 0;
}

static int calc_parse_expr(calc_parser *p, double *out)
{
    double acc, rhs;
    if (calc_parse_term(p, &acc) < 0)
        return -1;
    for (;;) {
        calc_skip_ws(p);
        size_t op = p->pos;
        char c = p->s[op];
        if (c != '+' && c != '-')
            break;
        p->pos++;
        if (calc_parse_term(p, &rhs) < 0)
            return -1;
        acc = c == '+' ? acc + rhs : acc - rhs;
        if (calc_check(p, acc, op) < 0)
            return -1;
    }
    *out = acc;
    return 0;
}

int phx_calc_eval(const char *expr, double *out, phx_err *err)
{
    if (!expr)
        return phx_err_set(err, "invalid_input", 0, "no expression");
    if (strnlen(expr, PHX_CALC_MAX_LEN + 1) > PHX_CALC_MAX_LEN)
        return phx_err_set(err, "invalid_input", 0, "expression longer than %d bytes",
                           PHX_CALC_MAX_LEN);

    calc_parser p = {.s = expr, .err = err};
    calc_skip_ws(&p);
    if (expr[p.pos] == '\0')
        return phx_err_set(err, "invalid_input", 0, "empty expression");

    /* A private locale object per call keeps this free of process-wide state (no setlocale,
     * no cached global); creating the "C" locale only allocates, so it fails only on OOM. */
    p.loc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (p.loc == (locale_t)0)
        return phx_err_set(err, "internal", 1, "out of memory creating the C locale");

    double v;
    int rc = calc_parse_expr(&p, &v);
    if (rc == 0 && expr[p.pos] != '\0') {
        if (expr[p.pos] == ')')
            rc = calc_fail(&p, p.pos, "unmatched ')'");
        else
            rc = calc_unexpected(&p, p.pos, "an operator or end of expression");
    }
    freelocale(p.loc);
    if (rc < 0)
        return -1;
    *out = v;
    return 0;
}

json_t *phx_calc_step(const json_t *input, phx_err *err)
{
    if (!json_is_object(input)) {
        phx_err_set(err, "invalid_input", 0, "input must be an object with a string \"expr\"");
        return NULL;
    }
    const json_t *jexpr = json_object_get(input, "expr");
    if (!jexpr) {
        phx_err_set(err, "invalid_input", 0, "missing \"expr\"");
        return NULL;
    }
    if (!json_is_string(jexpr)) {
        phx_err_set(err, "invalid_input", 0, "\"expr\" must be a string");
        return NULL;
    }
    /* JSON strings may hold \u0000; the evaluator would silently stop there. */
    const char *s = json_string_value(jexpr);
    if (strlen(s) != json_string_length(jexpr)) {
        phx_err_set(err, "invalid_input", 0, "\"expr\" contains a NUL character");
        return NULL;
    }

    double v = 0; /* set on success; 0 keeps the analyzer from guessing across lib/err.c */
    if (phx_calc_eval(s, &v, err) < 0)
        return NULL;

    /* 2^53 is the last point up to which every integer is a double, so the integer emitted is
     * exactly the value computed; beyond it a JSON integer would claim precision we lack. */
    json_t *jv;
    if (v == trunc(v) && fabs(v) <= 9007199254740992.0)
        jv = json_integer((json_int_t)v);
    else
        jv = json_real(v);
    json_t *res = json_object();
    /* json_object_set_new takes jv even when it fails (and accepts NULL as a failure). */
    if (!res || json_object_set_new(res, "value", jv) < 0)
        goto err;
    return res;

err:
    if (!res)
        json_decref(jv);
    json_decref(res);
    phx_err_set(err, "internal", 1, "out of memory building the result");
    return NULL;
}
