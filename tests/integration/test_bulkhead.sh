#!/usr/bin/env bash
# test_bulkhead.sh -- the per-dependency bulkheads under load: with a Redis bulkhead of 1 call
# per process and 4 consumer threads that all want Redis, the bulkhead saturates and refuses
# (phx_bulkhead_* metrics show it), the refused messages wait in Kafka (partitions paused,
# outcome "backpressure") and run once it drained -- and nothing is lost, failed, duplicated
# or dead-lettered on the way.
. "$(dirname "$0")/lib.sh"
export PHX_STACK_POOLS="planner tools"
export PHX_CONCURRENCY=4 PHX_REDIS_MAX_INFLIGHT=1 PHX_BULKHEAD_WAIT_MS=1
stack_up
N=120
t_sub=$SECONDS
RUN=bh$(date +%s%N | tail -c 7)
for i in $(seq $N); do
    printf '%s-%d\t{"schema":"job.v1","id":"%s-%d","tenant":"default","steps":[{"id":"a","kind":"tool.calc","input":{"expr":"%d*3"}},{"id":"b","kind":"tool.calc","input":{"expr":"{{steps.a.output.value}}+1"},"needs":["a"]}]}\n' \
        "$RUN" "$i" "$RUN" "$i" "$i"
done | kcat -P -b "$KAFKA" -t phx.jobs -K $'\t' 2>/dev/null

# Wait for every reply (90 s at most).
end=$((SECONDS + 90))
while :; do
    kcat -C -b "$KAFKA" -t phx.replies -o beginning -e -q -f '%k\t%s\n' 2>/dev/null |
        awk -F'\t' -v run="$RUN-" 'index($1, run) == 1' >"$PHX_VAR/ours"
    have=$(cut -f1 "$PHX_VAR/ours" | sort -u | grep -c .)
    [ "$have" -ge $N ] || [ $SECONDS -ge $end ] && break
    sleep 1
done
echo "# replies after $((SECONDS - t_sub))s"
check "every job replied" $N "$have"
check "exactly one reply each" $N "$(grep -c . "$PHX_VAR/ours")"
wrong=$(cut -f2- "$PHX_VAR/ours" | jq -r '"\(.job_id) \(.status) \(.outputs.b.value)"' |
    awk '{ n = split($1, p, "-"); if ($2 != "succeeded" || $3 != 3 * p[n] + 1) bad++ } END { print bad + 0 }')
check "every reply succeeded with the right value" 0 "$wrong"

metrics() { curl -s "http://127.0.0.1:$(cat "$PHX_VAR/run/$1.admin")/metrics"; }
# value NAME LABEL-FRAGMENT: the first matching series' value (summed over processes)
value() { awk -v n="$1" -v l="$2" 'index($1, n "{") == 1 && index($1, l) { s += $2 } END { print s + 0 }'; }
pm=$(metrics planner)
check "planner: Redis bulkhead limit exported" 1 "$(value phx_bulkhead_limit 'bulkhead="redis"' <<<"$pm")"
check "planner: Redis bulkhead reached its limit" 1 "$(value phx_bulkhead_inflight_max 'bulkhead="redis"' <<<"$pm")"
rej=$(value phx_bulkhead_rejected_total 'bulkhead="redis"' <<<"$pm")
bp=$(value phx_messages_total 'outcome="backpressure"' <<<"$pm")
echo "# planner: redis bulkhead refused $rej calls; $bp messages held back (backpressure)"
check "planner: saturation refused calls" 1 "$([ "${rej%.*}" -gt 0 ] && echo 1 || echo 0)"
check "planner: refused messages were held back, not failed" 1 "$([ "${bp%.*}" -gt 0 ] && echo 1 || echo 0)"
check "planner: no thread still held once drained" 0 "$(value phx_worker_held_threads '' <<<"$pm")"
# The planner's own ticks (timeouts, usage flush) pass the same bulkhead, so one scrape can catch
# a call in flight; a leaked slot would read >= 1 at every scrape. Look up to 30 times.
inflight=1
for _ in $(seq 30); do
    inflight=$(metrics planner | value phx_bulkhead_inflight 'bulkhead="redis"')
    [ "${inflight%.*}" -eq 0 ] && break
    sleep 0.1
done
check "planner: nothing in flight once drained" 0 "$inflight"
tm=$(metrics tools)
check "tools: outbound tool bulkheads exported" 2 \
    "$(grep -c '^phx_bulkhead_limit{bulkhead="tool:' <<<"$tm")"
dl=$(kcat -C -b "$KAFKA" -t phx.dlq -o beginning -e -q 2>/dev/null | grep -c . || true)
check "DLQ empty" 0 "$dl"
