#!/usr/bin/env bash
# tests/chaos/chaos.sh -- submit mixed jobs at a steady rate while processes, Redis and brokers
# fail, then check the delivery guarantees: every job has one terminal outcome (a reply resent
# after a crash between its produce and its mark is counted as duplicated: replies are
# at-least-once, clients dedupe by job id), no step result applied twice, nothing stuck,
# nothing dead-lettered -- and print, per fault, how long throughput took to come back
# (tests/chaos/report.py defines it).
#
#   CHAOS_JOBS     jobs to submit (default 10000; `make test` runs a short version)
#   CHAOS_RATE     jobs per second (default 20: what the shared 2-core machine sustains
#                  with every pool running; see docs/benchmarks.md)
#   CHAOS_TYPES    job mix, comma-separated (default: tools,exec,safety,kb, less the pools
#                  that cannot run here: exec needs root for its sandbox)
#   CHAOS_KILL_S   length of the kill -9 storm (default 20), CHAOS_STOP_S of the SIGSTOP
#                  (default 20), CHAOS_BROKER_S of the broker outage (default 5), CHAOS_GAP_S
#                  quiet time between faults so each one's recovery can be measured (default 10)
#
# The faults, one after another while the load runs (each needs quiet time around it, or its
# recovery could not be told from the next fault's damage):
#   kill:POOL    kill -9 a random worker process of a random pool (the planner included)
#                every 2 s for CHAOS_KILL_S, restarting it each time
#   redis        kill -9 redis-server (AOF appendfsync always for this run), restart it
#   broker       take a broker down through the dev broker's fault injection (mock cluster
#                rd_kafka_mock_broker_set_down), up again after CHAOS_BROKER_S
#   requests     request error injection: the next Produce, Fetch, OffsetCommit and Heartbeat
#                requests of every client fail with retryable errors
#   stop:POOL    SIGSTOP a random pool for CHAOS_STOP_S so its lag grows, then SIGCONT
# Exits non-zero unless lost = conflicting = wrong = stuck = double-applied = 0 and the DLQ is
# empty (no poison is sent on purpose).
. "$(dirname "$0")/../integration/lib.sh"
T_NAME=chaos
N=${CHAOS_JOBS:-10000}
RATE=${CHAOS_RATE:-20}
KILL_S=${CHAOS_KILL_S:-20}
STOP_S=${CHAOS_STOP_S:-20}
BROKER_S=${CHAOS_BROKER_S:-5}
GAP_S=${CHAOS_GAP_S:-10}
if [ -z "${CHAOS_TYPES:-}" ]; then
    CHAOS_TYPES=tools
    [ "$(id -u)" = 0 ] && [ -x "$PHX_BIN/phx-exec" ] && CHAOS_TYPES+=,exec
    [ -x "$PHX_BIN/phx-safety" ] && CHAOS_TYPES+=,safety
    [ -x "$PHX_BIN/phx-kb" ] && CHAOS_TYPES+=,kb
fi
pools=planner
for t in ${CHAOS_TYPES//,/ }; do pools+=" $t"; done
export PHX_STACK_POOLS=${PHX_STACK_POOLS:-$pools}
export PHX_STACK_REDIS_APPENDFSYNC=always
# A task lost with a killed process is retried after its step timeout. The timeout must outlast
# the consumer group's rebalance after a kill -9 (session.timeout.ms, 6 s), or every attempt
# expires while the partitions wait for their new owner.
export PHX_STEP_TIMEOUT_MS=${PHX_STEP_TIMEOUT_MS:-15000}
export PHX_RETRY_MAX_ATTEMPTS=${PHX_RETRY_MAX_ATTEMPTS:-5}
export PHX_JOB_DEADLINE_MS=${PHX_JOB_DEADLINE_MS:-900000}
stack_up
RUN=c$(date +%s%N | tail -c 8)
read -r -a POOLS <<<"$PHX_STACK_POOLS"
now_ms() { echo $(($(date +%s%N) / 1000000)); }
fault() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$PHX_VAR/faults"; }
: >"$PHX_VAR/faults"
# `stack up` starts what is down under its own lock (two at once never start the same
# process) and waits for readiness after releasing it, so a restart never queues behind
# another one's rebalance. A second try covers an `up` that gave up waiting for readiness.
restart() { "$ROOT/ops/dev/stack" up >/dev/null 2>&1 || "$ROOT/ops/dev/stack" up >/dev/null 2>&1; }
# alive NAME [OLD_PID]: its recorded process runs, and is not OLD_PID. A process killed -9
# answers kill -0 until it is reaped; a zombie has no /proc/PID/exe.
alive() {
    local p
    p=$(cat "$PHX_VAR/run/$1.pid" 2>/dev/null) && [ -n "$p" ] && [ "$p" != "${2:-}" ] &&
        readlink "/proc/$p/exe" >/dev/null 2>&1
}

case ",$CHAOS_TYPES," in *,kb,*) "$PHX" kb create "chaos-$RUN" --dim 3 >/dev/null ;; esac

# --- the load ----------------------------------------------------------------------------------
python3 "$ROOT/tests/chaos/load.py" --n "$N" --rate "$RATE" --run "$RUN" --types "$CHAOS_TYPES" \
    --jobs "$PHX_VAR/jobs" |
    kcat -P -b "$KAFKA" -t phx.jobs -K $'\t' -X queue.buffering.max.ms=5 2>/dev/null &
LOAD=$!
# The fault clock starts with the first job (the generator can take seconds to start on a
# loaded machine).
until [ -s "$PHX_VAR/jobs" ] || ! kill -0 "$LOAD" 2>/dev/null; do sleep 0.1; done
echo "# chaos: $N jobs ($CHAOS_TYPES) at $RATE/s; pools: $PHX_STACK_POOLS"
t0=$SECONDS
gap() { sleep "$GAP_S"; }

# --- the faults, in turn -----------------------------------------------------------------------
gap
end=$((SECONDS + KILL_S))
kills=0
restarts=()
# Every 2 s a victim among the processes running now; its restart runs in the background (it
# can take longer than 2 s on a loaded machine), and the fault ends when it is back.
while [ $SECONDS -lt $end ]; do
    s=$(now_ms)
    up=()
    for p in "${POOLS[@]}"; do alive "$p" && up+=("$p"); done
    if [ ${#up[@]} -gt 0 ]; then
        victim=${up[$((RANDOM % ${#up[@]}))]}
        old=$(cat "$PHX_VAR/run/$victim.pid")
        kill -9 "$old" 2>/dev/null && kills=$((kills + 1))
        # The fault ends when the victim runs again (not when every pool is ready).
        (
            restart &
            for _ in $(seq 600); do alive "$victim" "$old" && break; sleep 0.1; done
            alive "$victim" "$old" || echo "$victim" >>"$PHX_VAR/not_back"
            fault "kill:$victim" "$s" "$(now_ms)"
            wait
            echo "# chaos: stack up after kill:$victim returned in $(($(now_ms) - s)) ms"
        ) &
        restarts+=($!)
    fi
    left=$((2000 - ($(now_ms) - s)))
    [ $left -gt 0 ] && sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
done
wait "${restarts[@]}" 2>/dev/null
echo "# chaos: $kills kill -9 in ${KILL_S}s"
gap

s=$(now_ms)
kill -9 "$(cat "$PHX_VAR/run/redis.pid")"
restart
fault redis "$s" "$(now_ms)"
check "redis restarted with appendfsync always" always "$(redis config get appendfsync | tail -1)"
gap

s=$(now_ms)
kill -USR1 "$(cat "$PHX_VAR/run/devbroker.pid")"
sleep "$BROKER_S"
kill -USR2 "$(cat "$PHX_VAR/run/devbroker.pid")"
fault broker "$s" "$(now_ms)"
gap

s=$(now_ms)
kill -WINCH "$(cat "$PHX_VAR/run/devbroker.pid")"
fault requests "$s" "$(now_ms)"
gap

victim=${POOLS[$((1 + RANDOM % (${#POOLS[@]} - 1)))]}
s=$(now_ms)
kill -STOP "$(cat "$PHX_VAR/run/$victim.pid")"
sleep "$STOP_S"
kill -CONT "$(cat "$PHX_VAR/run/$victim.pid")"
fault "stop:$victim" "$s" "$(now_ms)"
echo "# chaos: faults done in $((SECONDS - t0))s"
wait "$LOAD" 2>/dev/null || true
restart

# --- the verdict -------------------------------------------------------------------------------
# Wait until every job has a reply (or nothing moves for 90 s).
last=-1
still=0
while :; do
    kcat -C -b "$KAFKA" -t phx.replies -o beginning -e -q -f '%k\t%T\t%s\n' 2>/dev/null >"$PHX_VAR/replies"
    have=$(cut -f1 "$PHX_VAR/replies" | grep "^$RUN-" | sort -u | grep -c .)
    [ "$have" -ge "$N" ] && break
    if [ "$have" = "$last" ]; then still=$((still + 1)); else still=0; fi
    [ $still -ge 45 ] && break
    last=$have
    sleep 2
done
sleep 2 # a duplicate reply still on its way counts too
kcat -C -b "$KAFKA" -t phx.replies -o beginning -e -q -f '%k\t%T\t%s\n' 2>/dev/null >"$PHX_VAR/replies"
kcat -C -b "$KAFKA" -t phx.events -o beginning -e -q -f '%k\t%s\n' 2>/dev/null >"$PHX_VAR/events"
# Every job's state, steps and outputs, in one script run.
redis --raw eval "local r = {}
for _, k in ipairs(redis.call('KEYS', 'phx:job:{' .. ARGV[1] .. '-*}')) do
  local id = string.sub(k, 10, -2)
  local function h(key) local t, f = {}, redis.call('HGETALL', key)
    for i = 1, #f, 2 do t[f[i]] = f[i + 1] end return t end
  r[id] = {state = redis.call('HGET', k, 'state'), steps = h(k .. ':steps'), out = h(k .. ':out')}
end
return cjson.encode(r)" 0 "$RUN" >"$PHX_VAR/redis.json"
python3 "$ROOT/tests/chaos/report.py" --jobs "$PHX_VAR/jobs" --replies "$PHX_VAR/replies" \
    --events "$PHX_VAR/events" --redis "$PHX_VAR/redis.json" --faults "$PHX_VAR/faults" |
    tee "$PHX_VAR/report"
stale=$(curl -s "http://127.0.0.1:$(cat "$PHX_VAR/run/planner.admin")/metrics" |
    awk '/^phx_step_outcomes_total\{.*outcome="stale"/ { s += $2 } END { print s + 0 }')
echo "# chaos: duplicate or late results the planner ignored (since its last restart): $stale"
declare -A R
for kv in $(tail -1 "$PHX_VAR/report"); do R[${kv%%=*}]=${kv#*=}; done
check "chaos: report complete" "$N" "${R[jobs]:-}"
check "chaos: no job lost" 0 "${R[lost]:-}"
check "chaos: one terminal outcome per job (every reply of a job the same)" 0 "${R[conflicting]:-}"
check "chaos: every reply right" 0 "${R[wrong]:-}"
check "chaos: every step's Redis state and output right" 0 "${R[wrong_redis]:-}"
check "chaos: no step applied twice" 0 "${R[double_applied]:-}"
check "chaos: no job stuck" 0 "${R[stuck]:-}"
check "chaos: every killed process came back within 60 s" "" "$(cat "$PHX_VAR/not_back" 2>/dev/null)"
dl=$(kcat -C -b "$KAFKA" -t phx.dlq -o beginning -e -q 2>/dev/null | grep -c . || true)
check "chaos: DLQ empty (no poison was sent)" 0 "$dl"
[ -n "${CHAOS_KEEP:-}" ] && cp -r "$PHX_VAR" "$CHAOS_KEEP"
true
