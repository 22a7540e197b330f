#!/usr/bin/env bash
# bench_ingress.sh [BUILD_DIR] -- phx-ingress throughput and latency: POST /v1/jobs with API-key
# authentication, the rate limiter and schema/DAG/RBAC checks on, each request answered only
# after the job is in Redis and Kafka confirmed it (acks=all). wrk drives it; the stack runs
# only Redis, the dev broker and the ingress (no planner: this measures the front door, not the
# pipeline behind it). Target (issue 7): >= 20k req/s with p99 < 10 ms on this machine.
#
# BENCH_SECONDS (10), BENCH_CONNS (128), BENCH_WRK_THREADS (4), PHX_INGRESS_THREADS (4, the
# daemon's default: with the group commit a few HTTP threads each serve many connections, and
# more threads only add context switches). BENCH_RATE=R: a paced run instead of a flood, for
# latency at a moderate load: each connection waits BENCH_CONNS*1000/R ms between an answer
# and its next request, in whole ms (wrk's delay(); wrk has no open-loop rate like wrk2's -R, which Debian
# does not ship), so the offered rate is R less what the latency adds to each cycle: the
# achieved req/s is printed. BENCH_PERF=DIR: also `perf record -g` the ingress and Redis
# during the measured run, into DIR/perf.ingress.data and DIR/perf.redis.data (read them with
# `perf report -i FILE --no-children`).
#
# On a shared machine req/s and latency swing by 3x from run to run with the load of others;
# so, when `perf stat` works here, the run also counts the system calls and context switches
# of the ingress and of Redis per request, and it always reports their CPU time (and the
# broker's) per request: figures which the neighbours change far less. The ingress's share is
# also split by thread name (MHD-worker: HTTP and the checks; phx-commit: the group commit;
# rdk:*: librdkafka), to say which part of the process a change moved. BENCH_SYSCALLS=1 also
# counts the ingress's system calls per request by name.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export PHX_BIN=$BUILD/bin
. "$ROOT/tests/integration/lib.sh"
T_NAME=bench_ingress
command -v wrk >/dev/null || { echo "bench_ingress: wrk missing (make deps)"; exit 1; }

SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNS:-128}
PACE=nil # wrk's delay() takes whole milliseconds
[ -n "${BENCH_RATE:-}" ] && PACE=$((CONNS * 1000 / BENCH_RATE))
export PHX_INGRESS_THREADS=${PHX_INGRESS_THREADS:-4}
export PHX_STACK_POOLS=" " # no planner, no pools
export PHX_LOG_LEVEL=warn  # one info line per job would measure the logger
stack_up
# The rate limiter stays on (its Lua call is part of every request), with budgets the
# benchmark cannot exhaust.
redis hset 'phx:rl:{default}:conf' tenant_per_s 10000000 tenant_burst 10000000 \
    principal_per_s 10000000 principal_burst 10000000 >/dev/null
cat >"$PHX_VAR/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"steps":[{"id":"a","kind":"tool.calc","input":{"expr":"6*7"}},{"id":"b","kind":"tool.calc","input":{"expr":"{{steps.a.output.value}}+1"},"needs":["a"]}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $PHX_API_KEY"
local pace = $PACE
if pace then delay = function() return pace end end
local codes = {}
response = function(status, headers, body) codes[status] = (codes[status] or 0) + 1 end
done = function(summary, latency, requests)
  io.write(string.format("p50_ms %.3f\np99_ms %.3f\np999_ms %.3f\nrps %.0f\nerrors %d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    summary.requests / (summary.duration / 1e6),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
      + summary.errors.status))
end
LUA
# Warm up (connections, Redis scripts, producer), then measure.
wrk -t2 -c16 -d2s -s "$PHX_VAR/post.lua" "$PHX_INGRESS_URL/v1/jobs" >/dev/null 2>&1
counted=
if perf stat -e context-switches,raw_syscalls:sys_enter -p "$(cat "$PHX_VAR/run/ingress.pid")" \
    -o /dev/null -- true >/dev/null 2>&1; then
    counted=1
    for p in ingress redis; do
        ev=context-switches,raw_syscalls:sys_enter
        # BENCH_SYSCALLS=1: the ingress's system calls by name too (a tracepoint each; costs the
        # ingress a little CPU, so leave it off when comparing CPU per request).
        [ "$p" = ingress ] && [ -n "${BENCH_SYSCALLS:-}" ] &&
            ev=$ev$(printf ',syscalls:sys_enter_%s' recvfrom recvmsg read sendmsg sendto write \
                writev epoll_wait epoll_ctl poll futex getrandom)
        perf stat -x, -e "$ev" -p "$(cat "$PHX_VAR/run/$p.pid")" \
            -o "$PHX_VAR/perf.$p" -- sleep "$((SECS + 1))" &
    done
    sleep 0.2
fi
# CPU time (utime + stime, in clock ticks) of the ingress, Redis and the broker around the run:
# like the counts, CPU per request moves far less with the neighbours' load than req/s does.
cpu_ticks() { for p in ingress redis devbroker; do
    awk '{print $14 + $15}' "/proc/$(cat "$PHX_VAR/run/$p.pid")/stat"; done; }
if [ -n "${BENCH_PERF:-}" ]; then
    mkdir -p "$BENCH_PERF"
    for p in ingress redis; do
        perf record -q -g -F 999 -p "$(cat "$PHX_VAR/run/$p.pid")" -o "$BENCH_PERF/perf.$p.data" \
            -- sleep "$SECS" >/dev/null 2>&1 &
    done
fi
# The ingress's CPU time by thread name (libmicrohttpd's workers, the committers, librdkafka's
# rdk:* threads...): where a request's CPU goes inside the process, summed per name.
thread_ticks() { for t in /proc/"$(cat "$PHX_VAR/run/ingress.pid")"/task/*; do
    echo "$(basename "$t") $(tr ' ' _ <"$t/comm") $(awk '{print $14 + $15}' "$t/stat")"; done | sort; }
thr0=$(thread_ticks)
cpu0=$(cpu_ticks)
TIMEFORMAT='%U %S' # wrk's own CPU time too: on two cores the load generator is part of the bill
{ time wrk -t"${BENCH_WRK_THREADS:-4}" -c"$CONNS" -d"${SECS}s" --latency -s "$PHX_VAR/post.lua" \
    "$PHX_INGRESS_URL/v1/jobs" >"$PHX_VAR/wrk.out" 2>&1; } 2>"$PHX_VAR/wrk.time"
cpu1=$(cpu_ticks)
thr1=$(thread_ticks)
wait
cat "$PHX_VAR/wrk.out" >&2
rps=$(awk '$1 == "rps" {print $2}' "$PHX_VAR/wrk.out")
p99=$(awk '$1 == "p99_ms" {print $2}' "$PHX_VAR/wrk.out")
p50=$(awk '$1 == "p50_ms" {print $2}' "$PHX_VAR/wrk.out")
errors=$(awk '$1 == "errors" {print $2}' "$PHX_VAR/wrk.out")
stored=$(redis zcard 'phx:jobs:default')
echo "| $(date -u +%F) | $(nproc) CPUs | $CONNS conns, $PHX_INGRESS_THREADS threads | ${rps} req/s | p50 ${p50} ms | p99 ${p99} ms | ${errors} errors | ${stored} jobs stored |"
if [ -n "$counted" ]; then
    n=$(awk '/requests in/ {print $1}' "$PHX_VAR/wrk.out")
    for p in ingress redis; do
        awk -F, -v n="$n" -v p=$p '/context-switches/ {cs = $1} /raw_syscalls:sys_enter/ {sc = $1}
            END {printf "per request: %s %.1f system calls, %.1f context switches\n", p, sc / n, cs / n}' \
            "$PHX_VAR/perf.$p"
    done
    [ -n "${BENCH_SYSCALLS:-}" ] && awk -F, -v n="$n" '/syscalls:sys_enter_/ && $1 > 0 {
            sub(/.*sys_enter_/, "", $3); out = out sprintf(" %s %.2f", $3, $1 / n)}
        END {print "ingress system calls per request:" out}' "$PHX_VAR/perf.ingress"
fi
n=$(awk '/requests in/ {print $1}' "$PHX_VAR/wrk.out")
paste <(echo "$cpu0") <(echo "$cpu1") | awk -v n="$n" -v hz="$(getconf CLK_TCK)" '
    {us[NR] = ($2 - $1) * 1e6 / hz / n}
    END {printf "CPU per request: ingress %.0f us, redis %.0f us, broker %.0f us", us[1], us[2], us[3]}'
awk -v n="$n" '{printf ", wrk %.0f us\n", ($1 + $2) * 1e6 / n}' "$PHX_VAR/wrk.time"
join <(echo "$thr0") <(echo "$thr1") | awk -v n="$n" -v hz="$(getconf CLK_TCK)" '
    {us[$2] += ($5 - $3) * 1e6 / hz / n; k[$2]++}
    END {printf "ingress CPU per request by thread:"
         for (t in us) if (us[t] >= 0.5) printf " %s(x%d) %.0f us", t, k[t], us[t]; printf "\n"}'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
check "bench: no errors (non-2xx or socket)" 0 "$errors"
check "bench: every answer was a stored job" 1 "$(( stored >= $(awk '$1 == "rps" {printf "%d", $2}' "$PHX_VAR/wrk.out") ))"
exit "$((T_FAIL > 0))"
