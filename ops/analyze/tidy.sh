#!/bin/sh
# tidy.sh -- clang-tidy over the product's C files (lib/, producers/, workers/, ops/) with the
# checks in .clang-tidy, where each choice has its reason; any finding fails. Called by
# `make analyze`. nproc files at a time (each.sh): the path-sensitive checks cost about a
# second a file.
set -eu
out=$(mktemp /tmp/phx-tidy.XXXXXX)
trap 'rm -f "$out"' EXIT
# clang-tidy's exit status is not used: its findings are read back from the output.
"$(dirname "$0")/each.sh" 4 'clang-tidy --quiet "$@" -- $CFLAGS 2>&1 || true' >"$out"
if grep -q ': error: \|: warning: ' "$out"; then
    grep -A3 ': error: \|: warning: ' "$out"
    echo "make analyze: clang-tidy findings above (checks and reasons in .clang-tidy)" >&2
    exit 1
fi
