/* calc.h -- tool.calc: a safe arithmetic evaluator and the pool step that wraps it.
 *
 * Planner output often ends in a templated expression such as "{{steps.a.value}} + 1", which
 * arrives here already filled in ("14 + 1"). The evaluator is a hand-written recursive-descent
 * parser over numbers and operators only: it never hands text to anything that could run code,
 * has no names, functions or variables, and bounds its own input length and recursion depth.
 *
 * Grammar (loosest binding first):
 *
 *     expr    := term   (('+' | '-') term)*
 *     term    := unary  (('*' | '/' | '%') unary)*
 *     unary   := ('-' | '+') unary | power
 *     power   := primary ('^' unary)?              right-associative
 *     primary := number | '(' expr ')'
 *     number  := digits ['.' digits*] [exponent] | '.' digits [exponent]
 *     exponent:= ('e' | 'E') ['+' | '-'] digits
 *
 * As in mathematics (and Python), '^' binds tighter than unary minus: -2^2 is -(2^2) = -4, and
 * 2^-1 is 0.5 because the exponent may itself carry a sign. 2^3^2 is 2^(3^2) = 512.
 * '%' is the C fmod remainder: its sign follows the dividend (-7 % 3 = -1).
 * Whitespace (space, tab, CR, LF) is allowed between tokens.
 *
 * Limits: at most PHX_CALC_MAX_LEN bytes of input and PHX_CALC_MAX_DEPTH levels of nesting,
 * where each '(' , each unary sign and each '^' exponent counts as one level. Every error is
 * "invalid_input", non-retryable (the same text fails the same way), and names the 1-based byte
 * position it was detected at. Division or modulo by zero, 0 raised to a negative power, a
 * literal or intermediate result that overflows to infinity, and a result that is not a real
 * number (e.g. (-8)^(1/3)) are all errors rather than inf/nan values, since JSON cannot carry
 * those and a silently wrong number is worse than a failed step. */
#ifndef PHX_CALC_H
#define PHX_CALC_H

#include "err.h"

#include <jansson.h>

#define PHX_CALC_MAX_LEN   4096
#define PHX_CALC_MAX_DEPTH 64

/* Evaluate an arithmetic expression. 0 on success (*out set), -1 with err (code
 * "invalid_input", retryable 0) otherwise. Only an allocation failure differs: "internal",
 * retryable 1. Thread-safe: no global state. */
int phx_calc_eval(const char *expr, double *out, phx_err *err);

/* The step: input {"expr": "..."} -> output {"value": number}; NULL + err on failure. Integral
 * results within +-2^53 are emitted as JSON integers, others as reals. Other input keys are
 * ignored. */
json_t *phx_calc_step(const json_t *input, phx_err *err);

#endif
