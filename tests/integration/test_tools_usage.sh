#!/usr/bin/env bash
# test_tools_usage.sh -- the tools pool sums its usage counts in the process and writes them
# every PHX_TOOLS_USAGE_FLUSH_MS (workers/tools/usage.h): with a flush interval longer than the
# test, calls are not in Redis while the pool runs, and SIGTERM writes all of them, exactly.
# (test_gateway_tools.sh checks the counts at the default 100 ms interval.)
. "$(dirname "$0")/lib.sh"
export PHX_STACK_POOLS="planner tools" PHX_SAFETY_GATES=false
export PHX_TOOLS_USAGE_FLUSH_MS=60000 # the tick runs at start, then not again during the test
stack_up
U="phx:usage:{default}:$(date -u +%Y%m%d)"
ids=()
for i in 1 2 3; do
    id=$(uid usage)
    job "$id" '[{"id":"a","kind":"tool.calc","input":{"expr":"1+1"}},
                {"id":"b","kind":"tool.calc","input":{"expr":"{{steps.a.output.value}}*2"},"needs":["a"]}]' |
        tr -d '\n' | kafka_put phx.jobs "$id"
    ids+=("$id")
done
for id in "${ids[@]}"; do
    check "job $id succeeded" succeeded "$(reply "$id" 60 | jq -r .status)"
done
check "calls are summed in the process, not yet in Redis" "" "$(redis hget "$U" tool.calc:calls)"
check "metrics count at once" 1 "$(curl -s "http://127.0.0.1:$(cat "$PHX_VAR/run/tools.admin")/metrics" |
    grep -c '^phx_tool_calls_total{kind="tool.calc",outcome="ok",tenant="default"} 6$')"
pid=$(cat "$PHX_VAR/run/tools.pid")
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
check "tools pool stopped on SIGTERM" 1 "$(kill -0 "$pid" 2>/dev/null && echo 0 || echo 1)"
check "SIGTERM writes every summed call" 6 "$(redis hget "$U" tool.calc:calls)"
check "the key expires (35 days)" 1 "$(( $(redis ttl "$U") > 3000000 ))"
exit "$((T_FAIL > 0))"
