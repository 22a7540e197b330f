#!/usr/bin/env bash
# tests/bench/exec/run.sh [BUILD] [RUNS] [THROUGHPUT_S] -- the exec sandbox benchmark
# (`make bench-exec`): per-run overhead of phx-exec's sandbox and of bubblewrap over a bare
# fork+exec, for /bin/true and python3 -c pass, median and p99, then the sandbox's throughput.
# Builds the driver against BUILD's libraries (default build, the optimised one: benchmark
# never the sanitizer build). Needs root and the bubblewrap package.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
BUILD=${1:-build}
RUNS=${2:-300}
TP=${3:-10}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
command -v bwrap >/dev/null || { echo "bench-exec: bwrap missing (apt-get install bubblewrap)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "bench-exec: needs root (like phx-exec)" >&2; exit 2; }
[ -f "$BUILD/libmods.a" ] || { echo "bench-exec: build $BUILD first (make)" >&2; exit 2; }
PKGS="rdkafka hiredis jansson libcurl libmicrohttpd libcrypto libseccomp"
BIN=$BUILD/bench/bench_exec
mkdir -p "$(dirname "$BIN")"
# shellcheck disable=SC2046
cc -std=gnu11 -O2 -D_GNU_SOURCE -I"$ROOT/lib" $(pkg-config --cflags $PKGS) \
    -o "$BIN" "$ROOT/tests/bench/exec/bench_exec.c" "$BUILD/libmods.a" "$BUILD/libphx.a" \
    $(pkg-config --libs $PKGS) -lpthread -lm
echo "# $(uname -sr), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), bwrap $(bwrap --version | cut -d' ' -f2)"
"$BIN" "$RUNS" "$TP"
