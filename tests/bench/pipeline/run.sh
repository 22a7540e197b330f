#!/usr/bin/env bash
# tests/bench/pipeline/run.sh BUILD_DIR -- `make bench`: Phoenix against Celery 5, same machine,
# same job count, side by side in one run; writes docs/benchmarks.md's pipeline section and
# docs/benchmarks-pipeline.svg (tests/bench/pipeline/report.py).
#
# Phoenix: a fresh local stack (ops/dev/stack: planner, tools and exec pools, phx-devbroker,
# Redis) driven by phx-bench. Celery: its own redis-server (broker and result backend) and a
# prefork worker, driven by celery_bench.py. For each system the concurrency is tuned the same
# way -- two settings tried at maximum throughput, the better one kept -- then both run open
# loop at 25/50/75 % of their own maximum for the throughput-latency curve.
#
# Environment: BENCH_JOBS (jobs per run, default 2000), BENCH_OUT (where the raw JSON reports
# go, default a temp dir), BENCH_DOC (default docs/benchmarks.md), BENCH_BASE_BIN (binaries of
# an earlier build: when set, their stack runs the same maximum-throughput test first, and the
# report shows before and after side by side -- how a change to the planner is judged).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
BIN=$BUILD/bin
JOBS=${BENCH_JOBS:-2000}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/phx-bench.XXXXXX)}
mkdir -p "$OUT"
PY=/usr/bin/python3 # Debian's interpreter: python3-celery and python3-redis live there
HERE=$ROOT/tests/bench/pipeline
SECONDS=0

log() { echo "bench: $*" >&2; }

# --- Phoenix -------------------------------------------------------------------------------
export PHX_BIN=$BIN PHX_STACK_POOLS="planner tools exec"
# phx-devbroker is librdkafka's mock cluster, which holds an empty fetch for the whole
# fetch.wait.max.ms instead of answering when data arrives as a real broker does; at the
# default 20 ms that adds ~20 ms to every hop. 2 ms models a real broker's latency. It holds
# for phx-bench's own reply reader too (lib/kafka.c, phx_kafka_reader_conf), as Celery's
# client reads its results without such a wait.
export PHX_KAFKA_CONF_fetch_wait_max_ms=2
# The stack runs no safety pool: without this the planner gates every exec.run behind a
# safety.scan step nobody answers, and the mix's exec jobs fail on step timeouts.
export PHX_SAFETY_GATES=false
STACK_VAR=""
stack_down() { [ -z "$STACK_VAR" ] || PHX_VAR=$STACK_VAR "$ROOT/ops/dev/stack" down >/dev/null 2>&1 || true; }
CEL_PIDS=()
cleanup() {
    stack_down
    local p
    for p in "${CEL_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# Lost, failed or wrong jobs (exit 1) are results that the report shows; only a stack that
# cannot be reached (exit >= 2) stops the run.
bench() {
    local rc=0
    "$BIN/phx-bench" --no-progress "$@" || rc=$?
    [ "$rc" -le 1 ]
}
rate_of() { jq -r .jobs_per_s "$1"; }

# open_curve NAME SETUP MAX_RATE COMMAND...: open loop at 25, 50 and 75 % of MAX_RATE, ~10 s
# each, every point on a fresh system (`SETUP BEST_C`) after 100 unmeasured jobs. Fresh, because
# phx-devbroker (librdkafka's mock cluster) finds a fetch's offset by walking its in-memory log
# from the oldest batch (rd_kafka_mock_msgset_find, "FIXME: Maintain an index"): its CPU per job
# grows with every job it holds, where a real broker looks offsets up in an index. Celery's
# broker list shrinks as it is consumed, so without this each Phoenix point would carry the
# earlier points' jobs and Celery's would not. Both systems get the same restarts.
open_curve() {
    local name=$1 setup=$2 max=$3 f rate n
    shift 3
    for f in 25 50 75; do
        rate=$(awk -v r="$max" -v f="$f" 'BEGIN { printf "%.1f", r * f / 100 }')
        n=$(awk -v r="$rate" 'BEGIN { n = int(r * 10); print (n < 200 ? 200 : n) }')
        "$setup" "$BEST_C"
        log "$name: open loop at $rate jobs/s ($f % of max), $n chains"
        "$@" --warmup 100 --jobs "$n" --rate "$rate" --label "$name-open-$f" \
            --json "$OUT/$name-open-$f.json" | tee -a "$OUT/report.txt"
    done
}

# tune NAME SETUP "C1 C2" COMMAND...: for each concurrency C, `SETUP C` then a closed-loop
# maximum run; the faster setting is kept (BEST_C, BEST_RATE) for the unloaded-latency run and
# the open-loop curve.
tune() {
    local name=$1 setup=$2 settings=$3 c r
    shift 3
    BEST_RATE=0 BEST_C=0
    for c in $settings; do
        "$setup" "$c"
        log "$name concurrency $c: closed loop, $JOBS chains"
        "$@" --warmup 200 --jobs "$JOBS" --concurrency 64 --label "$name-max-c$c" \
            --json "$OUT/$name-max-c$c.json" | tee -a "$OUT/report.txt"
        r=$(rate_of "$OUT/$name-max-c$c.json")
        if awk -v a="$r" -v b="$BEST_RATE" 'BEGIN { exit !(a > b) }'; then BEST_RATE=$r BEST_C=$c; fi
    done
    "$setup" "$BEST_C"
    log "$name: unloaded latency (one job at a time)"
    "$@" --warmup 50 --jobs 100 --concurrency 1 --label "$name-idle" --json "$OUT/$name-idle.json" |
        tee -a "$OUT/report.txt"
    open_curve "$name" "$setup" "$BEST_RATE" "$@"
}

phx_stack() { # phx_stack CONCURRENCY: a fresh stack (stops the previous one)
    stack_down
    STACK_VAR=$OUT/stack-c$1
    rm -rf "$STACK_VAR"
    PHX_VAR=$STACK_VAR PHX_CONCURRENCY=$1 "$ROOT/ops/dev/stack" up >"$OUT/stack-c$1.log" 2>&1 ||
        { cat "$OUT/stack-c$1.log" >&2; exit 1; }
    export PHX_VAR=$STACK_VAR
}

tune phoenix phx_stack "2 8" bench
best_phx_c=$BEST_C
if [ -n "${BENCH_BASE_BIN:-}" ]; then
    log "phoenix baseline ($BENCH_BASE_BIN) PHX_CONCURRENCY=$best_phx_c: closed loop, $JOBS chains"
    PHX_BIN=$BENCH_BASE_BIN phx_stack "$best_phx_c"
    bench --warmup 200 --jobs "$JOBS" --concurrency 64 --label phoenix-base-max \
        --json "$OUT/phoenix-base-max.json" | tee -a "$OUT/report.txt"
fi
phx_stack "$best_phx_c" # fresh, as in open_curve
log "phoenix: job mix chain:6,dag:2,exec:2, closed loop"
bench --jobs "$((JOBS / 2))" --concurrency 64 --mix chain:6,dag:2,exec:2 --label phoenix-mix \
    --json "$OUT/phx-mix.json" | tee -a "$OUT/report.txt"
stack_down
STACK_VAR=""

# --- Celery --------------------------------------------------------------------------------
cd "$HERE"
CEL_DIR=$OUT/celery
mkdir -p "$CEL_DIR"
port=$("$BIN/phx-freeport" 1)
# Same durability as the Phoenix stack's Redis (AOF, fsync every second).
redis-server --bind 127.0.0.1 --port "$port" --dir "$CEL_DIR" --appendonly yes \
    --appendfsync everysec --save "" >"$CEL_DIR/redis.log" 2>&1 &
CEL_PIDS+=($!)
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
export PHX_CELERY_REDIS=redis://127.0.0.1:$port/0

worker_pid="" worker_c=0
celery_worker() { # celery_worker N: a prefork worker with N processes (stops the previous)
    if [ -n "$worker_pid" ]; then
        kill "$worker_pid" 2>/dev/null || true
        wait "$worker_pid" 2>/dev/null || true
    fi
    redis-cli -p "$port" flushall >/dev/null
    # Gossip, mingle and heartbeats are cluster chatter a single benchmark worker does not
    # need; turning them off is what Celery's own docs advise for throughput.
    $PY -m celery -A celery_tasks worker -P prefork -c "$1" --without-gossip --without-mingle \
        --without-heartbeat -l warning >"$CEL_DIR/worker-c$1.log" 2>&1 &
    worker_pid=$! worker_c=$1
    CEL_PIDS+=("$worker_pid")
    for _ in $(seq 100); do
        $PY -m celery -A celery_tasks inspect ping >/dev/null 2>&1 && break
        sleep 0.2
    done
}
cbench() {
    local rc=0
    $PY "$HERE/celery_bench.py" --redis-port "$port" --worker-pids "$worker_pid" \
        --workers "$worker_c" "$@" || rc=$?
    [ "$rc" -le 1 ]
}

tune celery celery_worker "2 4" cbench
best_cel_c=$BEST_C
cleanup
CEL_PIDS=()

log "done in ${SECONDS}s; raw reports in $OUT"
$PY "$HERE/report.py" --dir "$OUT" --doc "${BENCH_DOC:-$ROOT/docs/benchmarks.md}" \
    --svg "$ROOT/docs/benchmarks-pipeline.svg" --phx-c "$best_phx_c" --celery-c "$best_cel_c" \
    --jobs "$JOBS" --seconds "$SECONDS"
