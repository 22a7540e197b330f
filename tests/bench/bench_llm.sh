#!/usr/bin/env bash
# bench_llm.sh [BUILD_DIR] -- phx-llm overhead against the fake OpenAI-compatible server.
#
# Measures, on this machine, with the optimised build (default build/):
#   direct    N sequential chat requests straight to the fake server with curl (its
#             time_total): the floor, what a client would see calling the server itself;
#   in pool   the same request as an llm.chat step: phx_step_duration_seconds of the pool
#             (input checks, budget reserve + settle in Redis, the HTTP call) -- the
#             difference to "direct" is the latency the pool adds per call;
#   end to end  a job of one llm.chat step: the reply's duration_ms (planner + Kafka hops +
#             pool, as the pipeline measures it), jobs run one after the other;
#   throughput  M jobs published at once, jobs/s until the last reply.
# Prints a Markdown table (append it to docs/benchmarks.md).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export PHX_BIN=$BUILD/bin
N=${BENCH_N:-200}
M=${BENCH_M:-500}
. "$ROOT/tests/integration/lib.sh"
T_NAME=bench_llm

WORK=$(mktemp -d /tmp/phx-bench-llm.XXXXXX)
"$BUILD/tests/fake_llm" --port-file "$WORK/port" >/dev/null 2>&1 &
FAKE_PID=$!
for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
FPORT=$(cat "$WORK/port")
BODY='{"model":"m","messages":[{"role":"user","content":"benchmark prompt with a few words"}],"max_tokens":16}'

# --- direct --------------------------------------------------------------------------------
for _ in $(seq 20); do curl -s -o /dev/null "http://127.0.0.1:$FPORT/v1/chat/completions" -d "$BODY"; done
direct=$(for _ in $(seq "$N"); do
    curl -s -o /dev/null -w '%{time_total}\n' -H 'Content-Type: application/json' \
        "http://127.0.0.1:$FPORT/v1/chat/completions" -d "$BODY"
done | awk '{s += $1} END {printf "%.3f", s / NR * 1000}')

# --- through the pool ------------------------------------------------------------------------
export PHX_LLM_BASE_URL=http://127.0.0.1:$FPORT/v1 PHX_LLM_MODEL=m PHX_CONCURRENCY=${BENCH_CONCURRENCY:-2}
export PHX_STACK_POOLS="planner llm" PHX_LOG_LEVEL=warn
# No phx-safety in this stack: safety gates (docs/safety.md) are tested in test_safety_gates.sh.
export PHX_SAFETY_GATES=false
stack_up
trap 'stack_cleanup; kill $FAKE_PID; rm -rf "$WORK"' EXIT
steps='[{"id":"c","kind":"llm.chat","input":{"messages":[{"role":"user","content":"benchmark prompt with a few words"}],"max_tokens":16}}]'
metric() { curl -s "http://127.0.0.1:$(cat "$PHX_VAR/run/llm.admin")/metrics" |
    awk -v n="$1" 'index($0, n) == 1 {print $2}'; }
for i in $(seq 10); do id=$(uid warm); job "$id" "$steps" | kafka_put phx.jobs "$id"; reply "$id" >/dev/null; done
s0=$(metric 'phx_step_duration_seconds_sum{kind="llm.chat"}')
c0=$(metric 'phx_step_duration_seconds_count{kind="llm.chat"}')
for i in $(seq "$N"); do
    id=$(uid seq)
    job "$id" "$steps" | kafka_put phx.jobs "$id"
    reply "$id" 30 | jq -r .duration_ms >>"$WORK/e2e"
done
s1=$(metric 'phx_step_duration_seconds_sum{kind="llm.chat"}')
c1=$(metric 'phx_step_duration_seconds_count{kind="llm.chat"}')
inpool=$(awk -v a="$s0" -v b="$s1" -v c="$c0" -v d="$c1" 'BEGIN {printf "%.3f", (b - a) / (d - c) * 1000}')
e2e=$(awk '{s += $1} END {printf "%.1f", s / NR}' "$WORK/e2e")

# --- throughput ------------------------------------------------------------------------------
P=$(uid burst)
for i in $(seq "$M"); do job "$P-$i" "$steps"; done >"$WORK/jobs"
t0=$(date +%s%N)
awk -v p="$P" '{print p "-" NR "\t" $0}' "$WORK/jobs" | kcat -P -b "$KAFKA" -t phx.jobs -K '\t' 2>/dev/null
while :; do
    got=$(kcat -C -b "$KAFKA" -t phx.replies -o beginning -e -q -f '%k\n' 2>/dev/null | grep -c "^$P-")
    [ "$got" -ge "$M" ] && break
    [ $(( ($(date +%s%N) - t0) / 1000000000 )) -gt 300 ] && break
    sleep 0.2
done
t1=$(date +%s%N)
rps=$(awk -v a="$t0" -v b="$t1" -v n="$got" 'BEGIN {printf "%.0f", n / ((b - a) / 1e9)}')

cat <<EOF2
| measure ($(nproc) cores, PHX_CONCURRENCY=$PHX_CONCURRENCY, fake server) | value |
|---|---|
| direct curl to the server, mean of $N | ${direct} ms |
| llm.chat step inside the pool (budget Lua x2 + HTTP), mean of $N | ${inpool} ms |
| latency added by the pool per call | $(awk -v a="$inpool" -v b="$direct" 'BEGIN {printf "%.3f", a - b}') ms |
| job with one llm.chat, reply duration_ms (job created to finished), mean of $N | ${e2e} ms |
| throughput, $got jobs published at once | ${rps} jobs/s |
EOF2
