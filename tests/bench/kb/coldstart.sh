#!/usr/bin/env bash
# tests/bench/kb/coldstart.sh BUILD -- phx-kb's cold start: the time a fresh phx-kb process
# takes to rebuild a collection's in-memory copy from Redis (the worker's real start path: its
# tick loads every record with HSCAN, verifies each CRC, fills the exact array and, above
# PHX_KB_HNSW_MIN items, the HNSW graph).
#
# Starts a dev stack (real redis-server and phx-devbroker, ops/dev/stack) in a temp dir,
# creates collection "bench" with `phx kb create`, fills it with `bench_kb load` (records
# written by the same function kb.upsert uses), stops the stack's phx-kb, then starts phx-kb
# itself once per mode -- "graph" (PHX_KB_HNSW_MIN=10000, the default: exact array + HNSW) and
# "exact" (PHX_KB_HNSW_MIN=0: no graph) -- and measures from the exec to the moment
# /metrics reports every record loaded (phx_kb_records{collection="bench"} = N, polled every
# 0.1 s), with the worker's own breakdown from its log line and its resident memory; in graph
# mode also until its log says the background-built HNSW graph is attached (graph_s; RSS is
# read then).
# BENCH_KB_COLD_N (default 100000), BENCH_KB_DIM (384), BENCH_KB_COLD_DATA (clustered),
# BENCH_KB_COLD_MODES ("exact graph"), BENCH_KB_COLD_GRAPH_WAIT (1; 0 = do not wait for the
# graph, e.g. at 1M where it takes tens of minutes: graph_s is then null).
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
N=${BENCH_KB_COLD_N:-100000}
DIM=${BENCH_KB_DIM:-384}
BIN=$ROOT/$BUILD/bin
PHX_VAR=$(mktemp -d /tmp/phx-bench-kbcold.XXXXXX)
export PHX_VAR PHX_BIN=$BIN PHX_STACK_POOLS=kb
KB_PID=
cleanup() {
    [ -z "$KB_PID" ] || { kill "$KB_PID" 2>/dev/null; wait "$KB_PID" 2>/dev/null || true; }
    "$ROOT/ops/dev/stack" down >/dev/null 2>&1 || true
    rm -rf "$PHX_VAR"
}
trap cleanup EXIT
"$ROOT/ops/dev/stack" up >/dev/null
# shellcheck disable=SC1091
. "$PHX_VAR/stack.env"
stop_pid() { kill "$1" 2>/dev/null || true; while kill -0 "$1" 2>/dev/null; do sleep 0.1; done; }
stop_pid "$(cat "$PHX_VAR/run/kb.pid")"
"$BIN/phx" kb create bench --dim "$DIM" >/dev/null
t=$(date +%s.%N)
"$ROOT/$BUILD/tests/bench_kb" load "$PHX_REDIS_URL" bench "$N" "$DIM" "${BENCH_KB_COLD_DATA:-clustered}"
echo "coldstart: loaded $N records in $(echo "$(date +%s.%N) - $t" | bc) s wall; redis used_memory $(redis-cli -p "$PHX_REDIS_PORT" info memory | sed -n 's/^used_memory_human://p' | tr -d '\r')" >&2
ADMIN=$("$BIN/phx-freeport" 1)
for mode in ${BENCH_KB_COLD_MODES:-exact graph}; do
    min=10000
    [ "$mode" = exact ] && min=0
    log=$PHX_VAR/log/kb-cold-$mode.log
    t0=$(date +%s.%N)
    PHX_KB_HNSW_MIN=$min PHX_ADMIN_ADDR=127.0.0.1:$ADMIN "$BIN/phx-kb" >"$log" 2>&1 &
    KB_PID=$!
    ready= secs=
    while :; do
        kill -0 "$KB_PID" 2>/dev/null || { echo "coldstart: phx-kb exited; see its log:" >&2; tail -20 "$log" >&2; exit 1; }
        m=$(curl -s -m 2 "http://127.0.0.1:$ADMIN/metrics" || true)
        [ -n "$ready" ] || ! curl -sf -m 2 "http://127.0.0.1:$ADMIN/readyz" >/dev/null || ready=$(echo "$(date +%s.%N) - $t0" | bc)
        [ -n "$secs" ] || [ "$(sed -n 's/^phx_kb_records{collection="bench"} //p' <<<"$m")" != "$N" ] ||
            secs=$(echo "$(date +%s.%N) - $t0" | bc)
        [ -n "$secs" ] && [ -n "$ready" ] && break
        sleep 0.1
    done
    graph=
    if [ "$mode" = graph ] && [ "${BENCH_KB_COLD_GRAPH_WAIT:-1}" = 1 ]; then
        until grep -q 'HNSW graph attached' "$log"; do
            kill -0 "$KB_PID" 2>/dev/null || { echo "coldstart: phx-kb exited; see its log:" >&2; tail -20 "$log" >&2; exit 1; }
            sleep 0.1
        done
        graph=$(echo "$(date +%s.%N) - $t0" | bc)
    fi
    rss=$(awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$KB_PID/status")
    line=$(grep -o 'loaded [0-9]* records from Redis in[^"]*' "$log" | tail -1)
    stop_pid "$KB_PID"
    KB_PID=
    jq -cn --arg mode "$mode" --argjson n "$N" --argjson dim "$DIM" --argjson s "$secs" \
        --argjson rss "$rss" --arg ready "$ready" --arg line "$line" --arg graph "$graph" \
        '{mode: $mode, n: $n, dim: $dim, start_to_loaded_s: $s, records_per_s: ($n / $s | round),
          readyz_s: ($ready | tonumber? // null), graph_s: ($graph | tonumber? // null),
          rss_bytes_per_record: ($rss / $n | round), worker_log: $line}'
done
