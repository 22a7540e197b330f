#!/usr/bin/env bash
# tests/chaos/chaos.sh -- submit jobs at a steady rate while processes, Redis and brokers fail,
# then check the delivery guarantees: nothing lost, nothing applied twice, nothing stuck.
#
#   CHAOS_JOBS     jobs to submit (default 10000; `make test` runs 200)
#   CHAOS_RATE     jobs per second (default 200)
#   CHAOS_SECONDS  how long faults are injected (default: the submission time)
#
# Faults, while the jobs flow: kill -9 a random worker (planner or pool) every 2 s and restart
# it; restart Redis once (AOF appendfsync always for this run); take a broker down and up
# again through the dev broker's fault injection (SIGUSR1/SIGUSR2); pause the tools pool for
# a while (SIGSTOP) so its lag grows, then resume it. Prints lost / duplicated / stuck counts
# and latency; exits non-zero unless lost = 0, stuck = 0 and every output is right.
. "$(dirname "$0")/../integration/lib.sh"
T_NAME=chaos
N=${CHAOS_JOBS:-10000}
RATE=${CHAOS_RATE:-200}
export PHX_STACK_POOLS=${PHX_STACK_POOLS:-planner tools}
# A task lost with a killed process is retried after its step timeout. The timeout must outlast
# the consumer group's rebalance after a kill -9 (session.timeout.ms, 10 s), or every attempt
# expires while the partitions wait for their new owner.
export PHX_STEP_TIMEOUT_MS=${PHX_STEP_TIMEOUT_MS:-15000}
export PHX_RETRY_MAX_ATTEMPTS=${PHX_RETRY_MAX_ATTEMPTS:-5}
export PHX_JOB_DEADLINE_MS=${PHX_JOB_DEADLINE_MS:-600000}
stack_up
redis config set appendfsync always >/dev/null

# --- the load: N two-step jobs, produced at RATE per second ---------------------------------
RUN_ID=$(date +%s%N | tail -c 8)
gen_jobs() {
    local i
    for i in $(seq "$N"); do
        printf 'c%s-%d\t{"schema":"job.v1","id":"c%s-%d","tenant":"default","submitted_ms":%s,"steps":[{"id":"a","kind":"tool.calc","input":{"expr":"%d*3"}},{"id":"b","kind":"tool.calc","input":{"expr":"{{steps.a.output.value}}+1"},"needs":["a"]}]}\n' \
            "$RUN_ID" "$i" "$RUN_ID" "$i" "$(date +%s%3N)" "$i"
        if [ $((i % (RATE / 10 > 0 ? RATE / 10 : 1))) -eq 0 ]; then sleep 0.1; fi
    done
}
gen_jobs | kcat -P -b "$KAFKA" -t phx.jobs -K $'\t' -X queue.buffering.max.ms=5 2>/dev/null &
LOAD=$!
SECONDS_TOTAL=${CHAOS_SECONDS:-$((N / RATE + 2))}
echo "# chaos: $N jobs at $RATE/s, faults for ${SECONDS_TOTAL}s"

# --- the faults ------------------------------------------------------------------------------
t0=$SECONDS
kills=0
round=0
# Each fault happens once, in turn, between kill -9 rounds; the loop runs until the load is
# submitted and every fault has happened.
while [ $((SECONDS - t0)) -lt "$SECONDS_TOTAL" ] || [ $round -lt 8 ]; do
    sleep 2
    round=$((round + 1))
    read -r -a pools <<<"$PHX_STACK_POOLS"
    victim=${pools[$((RANDOM % ${#pools[@]}))]}
    kill -9 "$(cat "$PHX_VAR/run/$victim.pid")" 2>/dev/null && kills=$((kills + 1))
    "$ROOT/ops/dev/stack" up >/dev/null 2>&1 # restarts what is not running
    case $round in
    2)
        redis shutdown >/dev/null 2>&1 || true
        sleep 1
        "$ROOT/ops/dev/stack" up >/dev/null 2>&1
        redis config set appendfsync always >/dev/null
        echo "# chaos: redis restarted at $((SECONDS - t0))s"
        ;;
    4)
        kill -USR1 "$(cat "$PHX_VAR/run/devbroker.pid")"
        sleep 3
        kill -USR2 "$(cat "$PHX_VAR/run/devbroker.pid")"
        echo "# chaos: a broker was down for 3s at $((SECONDS - t0))s"
        ;;
    6)
        pid=$(cat "$PHX_VAR/run/tools.pid")
        kill -STOP "$pid"
        sleep 5
        kill -CONT "$pid"
        echo "# chaos: tools paused for 5s at $((SECONDS - t0))s"
        ;;
    esac
done
wait "$LOAD" 2>/dev/null || true
"$ROOT/ops/dev/stack" up >/dev/null 2>&1
echo "# chaos: $kills kill -9 in $round rounds, faults done in $((SECONDS - t0))s"

# --- the verdict -----------------------------------------------------------------------------
# Wait until every job has a reply (or nothing moves for 90 s).
last=-1
still=0
while :; do
    kcat -C -b "$KAFKA" -t phx.replies -o beginning -e -q -f '%k\t%s\n' 2>/dev/null >"$PHX_VAR/replies"
    have=$(cut -f1 "$PHX_VAR/replies" | grep "^c$RUN_ID-" | sort -u | grep -c .)
    [ "$have" -ge "$N" ] && break
    if [ "$have" = "$last" ]; then still=$((still + 1)); else still=0; fi
    [ $still -ge 45 ] && break
    last=$have
    sleep 2
done
awk -F'\t' -v run="c$RUN_ID-" 'index($1, run) == 1' "$PHX_VAR/replies" >"$PHX_VAR/ours"
lost=$((N - $(cut -f1 "$PHX_VAR/ours" | sort -u | grep -c .)))
dups=$(($(grep -c . "$PHX_VAR/ours") - (N - lost)))
# Every reply right: status succeeded and b = 3i + 1.
cut -f2- "$PHX_VAR/ours" >"$PHX_VAR/ours.json"
wrong=$(jq -r '"\(.job_id) \(.status) \(.outputs.b.value)"' "$PHX_VAR/ours.json" |
    awk '{ split($1, p, "-"); i = p[2]; if ($2 != "succeeded" || $3 != 3 * i + 1) bad++ } END { print bad + 0 }')
# Stuck: jobs still running in Redis.
stuck=0
for i in $(seq "$N"); do
    st=$(redis hget "phx:job:{c$RUN_ID-$i}" state)
    case $st in succeeded | failed | rejected) ;; *) stuck=$((stuck + 1)) ;; esac
done
lat=$(jq -r '.duration_ms' <"$PHX_VAR/ours.json" | sort -n |
    awk '{ a[NR] = $1 } END { if (NR) printf "p50=%dms p99=%dms max=%dms", a[int(NR * .5) + 1], a[int(NR * .99) + 1], a[NR] }')
retried=$(redis eval "local n = 0 for _, k in ipairs(redis.call('KEYS', 'phx:job:{c$RUN_ID-*}:steps')) do if tonumber(redis.call('HGET', k, 'a:attempt') or 0) > 1 or tonumber(redis.call('HGET', k, 'b:attempt') or 0) > 1 then n = n + 1 end end return n" 0 | tr -dc 0-9)
echo "# chaos: lost=$lost duplicated_replies=$dups wrong=$wrong stuck=$stuck retried_jobs=$retried $lat"
check "chaos: no job lost" 0 "$lost"
check "chaos: every output right (no step applied twice or wrongly)" 0 "$wrong"
check "chaos: no job stuck" 0 "$stuck"
dl=$(kcat -C -b "$KAFKA" -t phx.dlq -o beginning -e -q 2>/dev/null | grep -c . || true)
check "chaos: DLQ empty (no poison was sent)" 0 "$dl"
