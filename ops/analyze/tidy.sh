#!/bin/sh
# tidy.sh -- clang-tidy over the product's C files (lib/, producers/, workers/, ops/) with the
# checks in .clang-tidy, where each choice has its reason; any finding fails. Called by
# `make analyze`. nproc files at a time: the path-sensitive checks cost about a second a file.
set -eu
cd "$(dirname "$0")/../.."
CFLAGS="-std=gnu11 -D_GNU_SOURCE -Ilib $(pkg-config --cflags hiredis jansson libcurl)"
export CFLAGS
out=$(mktemp /tmp/phx-tidy.XXXXXX)
trap 'rm -f "$out"' EXIT
# clang-tidy's exit status is not used: its findings are read back from the output, so one
# file's failure does not stop the others from being checked.
find lib producers workers ops -name '*.c' | sort |
    xargs -P "$(nproc)" -n 4 sh -c 'clang-tidy --quiet "$@" -- $CFLAGS 2>&1 || true' _ >"$out"
if grep -q ': error: \|: warning: ' "$out"; then
    grep -A3 ': error: \|: warning: ' "$out"
    echo "make analyze: clang-tidy findings above (checks and reasons in .clang-tidy)" >&2
    exit 1
fi
