#!/usr/bin/env bash
# test_probe.sh -- `phx probe`: canaries through a live stack are counted as succeeded with
# their latency; with the tools pool frozen they time out and are counted so (what
# PhxProbeFailing alerts on); a canary job that fails makes --count exit 1.
. "$(dirname "$0")/lib.sh"
export PHX_STACK_POOLS="planner tools"
stack_up
# The first job waits for the consumer groups to form: not the probe's 2 s budget.
"$PHX" submit --wait --timeout 60 "$ROOT/examples/calc-chain.json" >/dev/null
PORT=$("$PHX_BIN/phx-freeport" 1)
"$PHX" probe --interval 1 --timeout 2 --admin "127.0.0.1:$PORT" 2>"$PHX_VAR/log/probe.log" &
PROBE=$!
trap 'kill -CONT "$(cat "$PHX_VAR/run/tools.pid")" 2>/dev/null; kill $PROBE 2>/dev/null; wait $PROBE; stack_cleanup' EXIT
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
# until metric NAME reaches N (within S seconds)
until_at_least() {
    local end=$((SECONDS + $3))
    while [ $SECONDS -lt $end ]; do
        [ "$(metric "$1" | cut -d. -f1)" -ge "$2" ] 2>/dev/null && return 0
        sleep 0.3
    done
    return 1
}
until_at_least 'phx_probe_runs_total{outcome="succeeded"}' 2 40
check "canaries succeed" 1 "$(( $(metric 'phx_probe_runs_total{outcome="succeeded"}' | cut -d. -f1) >= 2 ))"
check "latency observed per success" 1 "$(( $(metric phx_probe_latency_seconds_count) >= 2 ))"
check "no failure on a healthy stack" 0 "$(metric 'phx_probe_runs_total{outcome="timeout"}')"
check "last success is recent" 1 "$(awk -v t="$(metric phx_probe_last_success_timestamp_seconds)" -v now="$(date +%s)" 'BEGIN { print (now - t < 30) ? 1 : 0 }')"

kill -STOP "$(cat "$PHX_VAR/run/tools.pid")"
until_at_least 'phx_probe_runs_total{outcome="timeout"}' 1 20
check "a frozen pool: canaries time out" 1 "$(( $(metric 'phx_probe_runs_total{outcome="timeout"}' | cut -d. -f1) >= 1 ))"
check_contains "the timeout is logged" "no reply within 2 s" "$(cat "$PHX_VAR/log/probe.log")"
kill -CONT "$(cat "$PHX_VAR/run/tools.pid")"

printf '{"steps":[{"id":"x","kind":"tool.calc","input":{"expr":"1/0"}}]}' >"$PHX_VAR/bad.json"
"$PHX" probe --count 1 --timeout 20 --job "$PHX_VAR/bad.json" 2>"$PHX_VAR/log/probe-bad.log"
check "--count: a failing canary exits 1" 1 "$?"
check_contains "the failure names the job's error" "probe: failed" "$(cat "$PHX_VAR/log/probe-bad.log")"
exit "$((T_FAIL > 0))"
