#!/bin/sh
# fanalyzer.sh -- gcc's static analyzer (-fanalyzer: leaks, NULL and freed-pointer use, double
# free, uninitialised reads, file-descriptor leaks, along each path through a file) over the
# product's C files (lib/, producers/, workers/, ops/); any warning fails. Called by
# `make analyze` after cppcheck and clang-tidy. A false positive is silenced around the one
# statement with `#pragma GCC diagnostic push/ignored/pop` and the reason above it; never by a
# flag here (docs/security.md has the rules). nproc files at a time: it costs seconds a file.
set -eu
out=$(mktemp /tmp/phx-fanalyzer.XXXXXX)
trap 'rm -f "$out"' EXIT
# Each file is compiled on its own (code generation to /dev/null: the analyzer runs with it);
# a file that does not compile is reported like a finding rather than stopping the others.
"$(dirname "$0")/each.sh" 1 'gcc $CFLAGS -fanalyzer -c "$1" -o /dev/null 2>&1 || echo "$1: error: does not compile"' >"$out"
if grep -q ': error: \|: warning: ' "$out"; then
    cat "$out"
    echo "make analyze: gcc -fanalyzer findings above" >&2
    exit 1
fi
