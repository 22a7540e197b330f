#!/usr/bin/env bash
# test_bench.sh -- a short smoke of phx-bench against a test stack: closed and open loop,
# the job mix, and a report whose numbers add up (every job submitted is counted once, no
# reply lost or duplicated, percentiles in order, per-process and broker figures present).
# The figures themselves are benchmarks (make bench, docs/benchmarks.md), never checked here.
. "$(dirname "$0")/lib.sh"
export PHX_STACK_POOLS="planner tools"
stack_up
BENCH=$PHX_BIN/phx-bench
OUT=$PHX_VAR/bench

"$BENCH" --no-progress --jobs 40 --concurrency 8 --mix chain:3,dag:1 --warmup 4 --label smoke \
    --json "$OUT-closed.json" >"$OUT-closed.txt" 2>&1
check "closed loop: exit 0" 0 $?
j=$(cat "$OUT-closed.json" 2>/dev/null || echo '{}')
check "closed loop: all jobs counted" "40 40 40 40" \
    "$(jq -r '"\(.jobs) \(.sent) \(.replied) \(.succeeded)"' <<<"$j")"
check "closed loop: nothing lost, failed, wrong or twice" "0 0 0 0" \
    "$(jq -r '"\(.lost) \(.failed) \(.wrong) \(.duplicates)"' <<<"$j")"
check "closed loop: kinds add up" 40 "$(jq '[.by_kind[].jobs] | add' <<<"$j")"
check "closed loop: the mix is 3:1" "30 10" "$(jq -r '"\(.by_kind.chain.jobs) \(.by_kind.dag.jobs)"' <<<"$j")"
check "closed loop: steps/s = (2*30 + 5*10) / elapsed" true \
    "$(jq '((.steps_per_s * .elapsed_s) - 110 | fabs) < 0.01' <<<"$j")"
check "closed loop: percentiles ordered" true \
    "$(jq '.latency_ms | .min <= .p50 and .p50 <= .p90 and .p90 <= .p99 and .p99 <= .p99_9 and .p99_9 <= .max and .min > 0' <<<"$j")"
check "closed loop: throughput = replied / elapsed" true \
    "$(jq '((.jobs_per_s * .elapsed_s) - .replied | fabs) < 0.01' <<<"$j")"
# At least: the job, one task and one result per step, the reply.
check "kafka messages per job counted" true "$(jq '.kafka_msgs_per_job >= (1 + 2 * 110 / 40 + 1)' <<<"$j")"
check "redis commands and round trips counted" true \
    "$(jq '.redis_cmds_per_job > 0 and .redis_round_trips_per_step > 0 and .procs.planner.redis_round_trips > 0' <<<"$j")"
check "per-process cpu and peak rss" true \
    "$(jq '.procs.planner.cpu_s >= 0 and .procs.planner.peak_rss_kb > 0 and .procs.redis.peak_rss_kb > 0' <<<"$j")"
check_contains "text report" "40 sent, 40 replied, 40 succeeded" "$(cat "$OUT-closed.txt")"

"$BENCH" --no-progress --jobs 30 --rate 30 --json "$OUT-open.json" >"$OUT-open.txt" 2>&1
check "open loop: exit 0" 0 $?
check "open loop: all 30 answered once" "30 30 0 0 open" \
    "$(jq -r '"\(.sent) \(.replied) \(.lost) \(.duplicates) \(.mode)"' "$OUT-open.json" 2>/dev/null)"
# 30 jobs due over 1 s: the run cannot be shorter than the schedule.
check "open loop: follows the schedule" true "$(jq '.elapsed_s >= 0.96' "$OUT-open.json" 2>/dev/null)"

# Pipelined scripts after the server forgot them (a restart, a SCRIPT FLUSH): the planner's
# pipelines load the script and send it again with the reads behind it, so jobs still finish.
redis script flush >/dev/null
"$BENCH" --no-progress --jobs 10 --concurrency 5 --mix chain:1,dag:1 --json "$OUT-flush.json" \
    >"$OUT-flush.txt" 2>&1
check "after SCRIPT FLUSH: all 10 answered correctly" "0 10 0 0" \
    "$(jq -r '"\(.lost) \(.succeeded) \(.wrong) \(.duplicates)"' "$OUT-flush.json" 2>/dev/null)"

"$BENCH" --jobs 5 --mix chain:1,magic:2 >/dev/null 2>&1
check "bad --mix: usage error" 2 $?
PHX_KAFKA_BROKERS= PHX_VAR=/nonexistent "$BENCH" --jobs 5 >/dev/null 2>&1
check "no stack: infrastructure error" 4 $?
