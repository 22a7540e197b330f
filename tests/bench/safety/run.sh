#!/usr/bin/env bash
# run.sh -- build and run the safety evaluator: what `make eval-safety` does.
#
#   tests/bench/safety/run.sh [--dev]      Markdown report on stdout
#
# Reads $PHX_EVAL_DIR/safety (default ../shared/eval/safety), says plainly that it skips when
# the data is absent, and never copies the data anywhere. --dev reports the development split
# instead of the held-out one (for working on the detector, not for publishing).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
export PHX_EVAL_DIR=${PHX_EVAL_DIR:-$ROOT/../shared/eval}
if [ ! -d "$PHX_EVAL_DIR/safety" ]; then
    echo "SKIP: eval-safety: $PHX_EVAL_DIR/safety not found (set PHX_EVAL_DIR)"
    exit 0
fi
make --no-print-directory -s BUILD="$BUILD" "$BUILD/libphx.a" "$BUILD/libmods.a" >&2
# the Makefile's own library list, so a library added there (libsodium, libjwt) links here too
PKGS=$(sed -n 's/^PKGS := //p' Makefile)
mkdir -p "$BUILD/bench"
# shellcheck disable=SC2046
cc -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Ilib $(pkg-config --cflags $PKGS) \
    -o "$BUILD/bench/safety_eval" tests/bench/safety/eval.c "$BUILD/libmods.a" "$BUILD/libphx.a" \
    $(pkg-config --libs $PKGS) -lpthread -lm
exec "$BUILD/bench/safety_eval" "$PHX_EVAL_DIR/safety" "$@"
