#!/usr/bin/env bash
# tests/bench/scale/run.sh BUILD_DIR -- `make bench-scale`: the scaling curve. One local stack
# (ops/dev/stack) is scaled out while it runs -- 1, then 2, then 4 replicas of the bottleneck
# pools (the planner and the tools pool: a 2-step tool.calc chain touches nothing else) -- and
# at each size phx-bench measures the maximum throughput (closed loop). Besides jobs/s it
# records what limits the curve: the machine's CPU use over the run (/proc/stat, all
# processes, other users' included), the load average, and the CPU seconds per 1,000 jobs of
# each kind of process (phx-bench's /proc probe, replicas of one pool summed).
#
# Adding replicas is `ops/dev/stack up` with a larger PHX_STACK_POOLS count: the new processes
# join the pools' consumer groups, the groups rebalance (waited for: every partition held by a
# member, `ops/dev/stack assignment`), and the next run starts. Rounds repeat the whole curve
# (default 2) because the machine is shared: a curve measured twice shows its own noise.
#
# Environment: BENCH_SCALE_REPLICAS (default "1 2 4"), BENCH_SCALE_JOBS (jobs per point,
# default 2000), BENCH_SCALE_ROUNDS (default 2), BENCH_SCALE_CONCURRENCY (handler threads per
# replica, PHX_CONCURRENCY, default 2), BENCH_OUT (raw JSON reports; default a temp dir),
# BENCH_DOC (default docs/benchmarks.md; the section between <!-- bench:scale:begin --> and
# <!-- bench:scale:end --> is replaced, or appended when absent).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
BIN=$BUILD/bin
REPLICAS=${BENCH_SCALE_REPLICAS:-1 2 4}
JOBS=${BENCH_SCALE_JOBS:-2000}
ROUNDS=${BENCH_SCALE_ROUNDS:-2}
CONC=${BENCH_SCALE_CONCURRENCY:-2}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/phx-bench-scale.XXXXXX)}
DOC=${BENCH_DOC:-$ROOT/docs/benchmarks.md}
mkdir -p "$OUT"
SECONDS=0
log() { echo "bench-scale: $*" >&2; }

# Partitions bound the useful replicas: a group member (one per process) beyond the partition
# count idles.
max_r=$(tr ' ' '\n' <<<"$REPLICAS" | sort -n | tail -1)
export PHX_BIN=$BIN PHX_CONCURRENCY=$CONC
# As in `make bench`: the mock broker holds an empty fetch for all of fetch.wait.max.ms instead
# of answering when data arrives; 2 ms models a real broker.
export PHX_KAFKA_CONF_fetch_wait_max_ms=2
export PHX_VAR=$OUT/stack
stack() { PHX_STACK_POOLS="planner:$1 tools:$1" "$ROOT/ops/dev/stack" "${@:2}"; }
cleanup() { stack 1 down >/dev/null 2>&1 || true; }
trap cleanup EXIT

names() { local i; echo "$1"; for i in $(seq 2 "$2"); do echo "$1.$i"; done; }
# settled R: every partition of phx.jobs + phx.results and of phx.tasks.tools is held by
# exactly one consumer of the R replicas (ops/dev/stack assignment: the members' own view).
settled() {
    local want pool
    for pool in planner tools; do
        case $pool in planner) want=$((2 * NPARTS)) ;; *) want=$NPARTS ;; esac
        # shellcheck disable=SC2046
        stack "$1" assignment $(names "$pool" "$1") | cut -d' ' -f2 | sort >"$OUT/held"
        [ "$(sort -u "$OUT/held" | grep -c .)" = "$want" ] && [ "$(grep -c . "$OUT/held")" = "$want" ] || return 1
    done
}
cpu_busy() { awk '/^cpu / { idle = $5 + $6; t = 0; for (i = 2; i <= NF; i++) t += $i; print t, idle }' /proc/stat; }

rm -rf "$PHX_VAR"
stack 1 up >"$OUT/stack-up.log" 2>&1 || { cat "$OUT/stack-up.log" >&2; exit 1; }
. "$PHX_VAR/stack.env"
NPARTS=$(kcat -L -b "$PHX_KAFKA_BROKERS" -t phx.tasks.tools -J 2>/dev/null | jq '.topics[0].partitions | length')
[ "$max_r" -le "$NPARTS" ] || log "warning: $max_r replicas > $NPARTS partitions: the extra members idle"
log "warm-up"
"$BIN/phx-bench" --no-progress --jobs 200 --concurrency 64 >/dev/null || true

: >"$OUT/rows"
cur=1 # replicas running now
for round in $(seq "$ROUNDS"); do
    for r in $REPLICAS; do
        if [ "$r" -lt "$cur" ]; then # a new round starts small again: stop the extra replicas
            for n in $(names planner "$cur" | tail -n +$((r + 1))) $(names tools "$cur" | tail -n +$((r + 1))); do
                kill -TERM "$(cat "$PHX_VAR/run/$n.pid")" 2>/dev/null || true
            done
            sleep 3
        fi
        stack "$r" up >>"$OUT/stack-up.log" 2>&1 || { tail "$OUT/stack-up.log" >&2; exit 1; }
        cur=$r
        for _ in $(seq 120); do settled "$r" && break; sleep 0.5; done
        settled "$r" || { log "groups did not settle at $r replicas"; exit 1; }
        log "round $round: $r replica(s) of planner and tools, $JOBS chains, closed loop"
        read -r t0 i0 < <(cpu_busy)
        rc=0
        "$BIN/phx-bench" --no-progress --jobs "$JOBS" --concurrency 64 --label "scale-r$r-$round" \
            --json "$OUT/r$r-$round.json" >"$OUT/r$r-$round.txt" || rc=$?
        read -r t1 i1 < <(cpu_busy)
        [ "$rc" -le 1 ] || { cat "$OUT/r$r-$round.txt" >&2; exit 1; }
        busy=$(awk -v t="$((t1 - t0))" -v i="$((i1 - i0))" 'BEGIN { printf "%.0f", t ? 100 * (t - i) / t : 0 }')
        load=$(cut -d' ' -f1 /proc/loadavg)
        jq -r --arg r "$r" --arg round "$round" --arg busy "$busy" --arg load "$load" '
            def sum(p): [.procs | to_entries[] | select(.key | test(p)) | .value.cpu_s_per_1k_jobs] | add // 0;
            [$round, $r, (.jobs_per_s * 10 | round / 10), (.latency_ms.p50 | round), (.latency_ms.p99 | round),
             (.lost + .failed + .wrong + .duplicates), $busy, $load,
             (sum("^planner") * 100 | round / 100), (sum("^tools") * 100 | round / 100),
             (sum("^devbroker$") * 100 | round / 100), (sum("^redis$") * 100 | round / 100),
             ([.procs[] | .cpu_s] | add * 10 | round / 10), .elapsed_s] | @tsv' "$OUT/r$r-$round.json" >>"$OUT/rows"
        log "$(tail -n1 "$OUT/rows")"
    done
done

# --- the doc section -------------------------------------------------------------------------
{
    echo "<!-- bench:scale:begin -->"
    echo "## Scale-out: throughput against replicas"
    echo
    echo "Generated by \`make bench-scale\` (tests/bench/scale/run.sh) on $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) vCPUs:"
    echo "one stack scaled out live to 1, 2 and 4 replicas of the planner and of the tools pool"
    echo "(PHX_CONCURRENCY=$CONC handler threads each, $NPARTS partitions per topic), \`phx-bench --jobs $JOBS"
    echo "--concurrency 64\` (2-step tool.calc chains, closed loop) at each size, the whole curve $ROUNDS times."
    echo "Machine CPU is /proc/stat over the run (every process on the machine, other users' too);"
    echo "CPU s per 1k jobs is phx-bench's per-process figure, a pool's replicas summed."
    echo
    echo "| round | replicas | jobs/s | vs 1 replica | p50 ms | p99 ms | lost+failed+wrong+dup | machine CPU busy | load avg | CPU s/1k jobs: planners, tools, devbroker, redis | stack CPU s (run) | run s |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    # "vs 1 replica": against the same round's 1-replica run (rounds differ with the machine)
    awk -F'\t' 'NR == FNR { if ($2 == 1) b[$1] = $3; next }
        { printf "| %s | %s | %s | %.2fx | %s | %s | %s | %s %% | %s | %s, %s, %s, %s | %s | %.1f |\n",
        $1, $2, $3, b[$1] ? $3 / b[$1] : 0, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 }' "$OUT/rows" "$OUT/rows"
    echo "<!-- bench:scale:end -->"
} >"$OUT/section.md"
if grep -q '<!-- bench:scale:begin -->' "$DOC"; then
    awk -v f="$OUT/section.md" '/<!-- bench:scale:begin -->/ { while ((getline l < f) > 0) print l; skip = 1; next }
        /<!-- bench:scale:end -->/ { skip = 0; next } !skip' "$DOC" >"$DOC.tmp" && mv "$DOC.tmp" "$DOC"
else
    { echo; cat "$OUT/section.md"; } >>"$DOC"
fi
cat "$OUT/section.md"
log "done in ${SECONDS}s; raw reports in $OUT; section written to $DOC"
