/* code.h -- risk signals in code about to be executed (role "code").
 *
 * A signal, not a defence: exec.run's sandbox (namespaces, seccomp, no network by default) is
 * what contains hostile code, and any rule here can be written around. The value is in the
 * audit trail and in stopping the obvious (reverse shells, fork bombs, wiping the disk,
 * reading cloud metadata or credentials) before they cost a sandbox. Matching is on a
 * lower-cased copy with whitespace runs collapsed, so "rm   -rf  /" is still "rm -rf /". */
#ifndef PHX_SAFETY_CODE_H
#define PHX_SAFETY_CODE_H

#include "safety.h"

/* Adds one finding per rule that fires; returns the combined risk score in [0, 1]. */
double phx_safety_code_scan(const char *text, size_t len, phx_safety_findings *out);

#endif
