#!/usr/bin/env bash
# test_kb_ready.sh -- phx-kb's readiness follows its start-up load: a fresh worker answers
# /readyz 503 naming the collection it is loading until every collection that existed at start
# is in memory, then 200; a search issued during the load gets the complete answer (the same
# hits as an exact search after it), never one from a half-loaded copy.
#
# The load is a real one, made slow by size: collection "big" holds KB_READY_N 384-dim records
# (default 60000; a few seconds to load under the sanitizers, about one without), written by
# bench_kb load through the kb.upsert write path.
. "$(dirname "$0")/lib.sh"

N=${KB_READY_N:-60000}
BENCH=$PHX_BIN/../tests/bench_kb
[ -x "$BENCH" ] || { not_ok "bench_kb missing in $PHX_BIN/../tests (make test-build)"; exit 1; }

# PHX_KB_HNSW_MIN=0: this test is about the load; test_kb.sh covers the graph.
export PHX_STACK_POOLS="planner kb" PHX_STEP_TIMEOUT_MS=120000 PHX_KB_HNSW_MIN=0
stack_up

# Warm-up: the consumer groups form before the timed part.
"$PHX" kb create warm --dim 2 >/dev/null
w=$(uid warm)
job "$w" '[{"id":"s","kind":"kb.search","input":{"collection":"warm","vector":[1,0]}}]' | kafka_put phx.jobs "$w"
check "warm-up search answers" succeeded "$(reply "$w" 120 | jq -r .status)"

"$PHX" kb create big --dim 384 >/dev/null
"$BENCH" load "$PHX_REDIS_URL" big "$N" 384 uniform 2>/dev/null
check "big: $N records in Redis" "$N" "$(redis HLEN 'phx:kb:{kb:big}:rec')"

# Replace the stack's phx-kb (it already holds the collection) with a fresh one.
stop_procs "$(cat "$PHX_VAR/run/kb.pid")"
ADMIN=$("$PHX_BIN/phx-freeport" 1)
PHX_ADMIN_ADDR=127.0.0.1:$ADMIN "$PHX_BIN/phx-kb" >"$PHX_VAR/log/kb-ready.log" 2>&1 &
KB=$!
T_PIDS+=("$KB")

# A query vector (a fixed direction) and the search job for it.
vec=$(jq -cn '[range(384)] | map(if . % 7 == 0 then 1 else 0 end)')
search() { # search ID EXACT
    job "$1" "[{\"id\":\"s\",\"kind\":\"kb.search\",\"input\":{\"collection\":\"big\",\"vector\":$vec,\"k\":10,\"exact\":$2},\"retry\":{\"max_attempts\":1}}]" |
        kafka_put phx.jobs "$1"
}

# Poll /readyz until 200; the first 503 about the load sends the search.
during=
not_ready=
ready_body=
for _ in $(seq 1200); do
    out=$(curl -s -m 2 -w '\n%{http_code}' "http://127.0.0.1:$ADMIN/readyz" || true)
    code=$(tail -n1 <<<"$out")
    body=$(head -n -1 <<<"$out")
    if [ "$code" = 503 ] && [ -z "$during" ] && jq -e '.reason | test("loading collections")' <<<"$body" >/dev/null 2>&1; then
        not_ready=$body
        during=$(uid during)
        search "$during" false
        echo "# t=$SECONDS: not ready ($(jq -r .reason <<<"$body")): search $during sent"
    fi
    if [ "$code" = 200 ]; then
        ready_body=$body
        break
    fi
    kill -0 "$KB" 2>/dev/null || break
    sleep 0.05
done
echo "# t=$SECONDS: ready"
check "readyz: 503 while loading" not_ready "$(jq -r .status <<<"${not_ready:-{\}}")"
check_contains "readyz: the reason names the collection loading" "now big" "$(jq -r .reason <<<"${not_ready:-{\}}")"
check "readyz: 200 once loaded" ready "$(jq -r .status <<<"${ready_body:-{\}}")"
check "worker: every record loaded when ready" "$N" \
    "$(curl -s "http://127.0.0.1:$ADMIN/metrics" | sed -n 's/^phx_kb_records{collection="big"} //p')"

# The search sent during the load against an exact one sent after it.
r1=$(reply "${during:-none}" 120)
after=$(uid after)
search "$after" true
r2=$(reply "$after" 120)
check "search during the load: succeeded with 10 hits" "succeeded 10" \
    "$(jq -r '"\(.status) \(.outputs.s.hits | length)"' <<<"${r1:-{\}}")"
check "search during the load: the complete answer (same hits as exact after it)" \
    "$(jq -c '[.outputs.s.hits[].id]' <<<"${r2:-{\}}" 2>/dev/null)" \
    "$(jq -c '[.outputs.s.hits[].id]' <<<"${r1:-{\}}" 2>/dev/null)"

stop_procs "$KB"
[ "$T_FAIL" -eq 0 ]
