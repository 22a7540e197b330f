#!/bin/sh
# each.sh N SCRIPT -- run SCRIPT (sh -c; "$@" = up to N file names) over the product's C files
# (lib/, producers/, workers/, ops/), nproc at a time, with the project's CFLAGS exported, and
# print everything it printed. The one file walk tidy.sh and fanalyzer.sh share: both judge
# the output, never an exit status, so one file's failure does not stop the others.
set -eu
cd "$(dirname "$0")/../.."
CFLAGS="-std=gnu11 -D_GNU_SOURCE -Ilib $(pkg-config --cflags hiredis jansson libcurl)"
export CFLAGS
find lib producers workers ops -name '*.c' | sort | xargs -P "$(nproc)" -n "$1" sh -c "$2" _
