#!/usr/bin/env bash
# test_gateway_resubmit.sh -- a submission whose request dies halfway is never stranded.
#
# POST /v1/jobs stores the job in Redis, then publishes it to Kafka. Between the two the Redis
# reply can be lost (a dropped connection, a failover): the Redis client resends the store, or
# the HTTP client retries after a 503. Either repeat must end with the job published and run,
# not with "id taken" for a job that sits in Redis and never reaches the planner. A second
# phx-ingress talks to Redis through tests/tools/tcp_cut.py, which swallows Redis's answer to
# the store of a chosen job (the store itself happens).
. "$(dirname "$0")/lib.sh"
export PHX_STACK_POOLS="planner tools"
export PHX_SAFETY_GATES=false
stack_up

CUT=$PHX_VAR/cut
python3 "$ROOT/tests/tools/tcp_cut.py" "$CUT.port" "$PHX_REDIS_PORT" 'cut-marker' "$CUT" &
PROXY=$!
T_PIDS+=("$PROXY")
for _ in $(seq 50); do [ -s "$CUT.port" ] && break; sleep 0.1; done
mapfile -t FP < <("$PHX_BIN/phx-freeport" 2)
PORT=${FP[0]}
PHX_REDIS_URL=redis://127.0.0.1:$(cat "$CUT.port")/0 PHX_INGRESS_ADDR=127.0.0.1:$PORT \
    PHX_ADMIN_ADDR=127.0.0.1:${FP[1]} PHX_REDIS_TIMEOUT_MS=2000 \
    "$PHX_BIN/phx-ingress" >"$PHX_VAR/log/ingress-cut.log" 2>&1 &
INGRESS=$!
T_PIDS=("$INGRESS" "${T_PIDS[@]}")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
CUT_URL=http://127.0.0.1:$PORT
AUTH="Authorization: Bearer $PHX_API_KEY"

# post URL FILE [curl args...] -> "CODE BODY"
post() {
    local url=$1 file=$2
    shift 2
    local out
    out=$(curl -s -X POST "$url/v1/jobs" -H "$AUTH" --data-binary "@$file" -w '\n%{http_code}' "$@")
    echo "$(tail -n1 <<<"$out") $(head -n -1 <<<"$out")"
}
# state ID [WANT] -> the job's state, waiting up to 20 s for WANT
state() {
    local s end=$((SECONDS + 20))
    while :; do
        s=$(curl -s "$PHX_INGRESS_URL/v1/jobs/$1" -H "$AUTH" | jq -r '.state // empty')
        if [ "$s" = "${2:-}" ] || [ -z "${2:-}" ] || [ $SECONDS -ge $end ]; then break; fi
        sleep 0.2
    done
    echo "$s"
}
cuts() { wc -l <"$CUT.cuts" 2>/dev/null || echo 0; }
T=$PHX_VAR/bodies
mkdir -p "$T"


# A first submission loads the store script into Redis: a cut before that would swallow a
# NOSCRIPT error, not a store.
jq -cn '{steps: [{id: "a", kind: "tool.calc", input: {expr: "1+1"}}]}' >"$T/warm.json"
check "warm-up submission" 202 "$(post "$CUT_URL" "$T/warm.json" | cut -d' ' -f1)"

# --- 1. the Redis reply to the store is lost once: the client's resend finds it stored -----
id=$(uid cut-marker-once)
job "$id" '[{"id":"a","kind":"tool.calc","input":{"expr":"6*7"}}]' >"$T/once.json"
echo once >"$CUT"
r=$(post "$CUT_URL" "$T/once.json")
check "lost store reply: the proxy cut it once" 1 "$(cuts)"
check "lost store reply: the resend is accepted (202, not 409)" 202 "${r%% *}"
check "lost store reply: the job is published and runs" succeeded "$(state "$id" succeeded)"
check "lost store reply: one listing entry" 1 "$(redis zscore phx:jobs:default "$id" | grep -c .)"

# --- 2. every store reply lost: 503; the retry with the same Idempotency-Key publishes it ---
jq -cn '{steps: [{id: "a", kind: "tool.calc", input: {expr: "2*21"}}], metadata: {tag: "cut-marker-idem"}}' >"$T/idem.json"
echo always >"$CUT"
key=idem-$(uid k)
r=$(post "$CUT_URL" "$T/idem.json" -H "Idempotency-Key: $key")
check "every reply lost: 503" 503 "${r%% *}"
jid=$(redis get "phx:idem:default:$(printf %s "$key" | sha256sum | cut -d' ' -f1)" | cut -d' ' -f1) # "ID FINGERPRINT"
check "every reply lost: the job is stored but not published" submitted "$(redis hget "phx:job:{$jid}" state)"
rm -f "$CUT"
r=$(post "$CUT_URL" "$T/idem.json" -H "Idempotency-Key: $key")
check "retry with the key: 200 duplicate of the first job" "200 $jid true" "${r%% *} $(jq -r '.job_id + " " + (.duplicate|tostring)' <<<"${r#* }")"
check "retry with the key: the stranded job is published and runs" succeeded "$(state "$jid" succeeded)"
r=$(post "$CUT_URL" "$T/idem.json" -H "Idempotency-Key: $key")
check "third try with the key: still the same job, nothing new" "200 $jid" "${r%% *} $(jq -r .job_id <<<"${r#* }")"

# --- 3. what a repeat means once the job is running or done -------------------------------
r=$(post "$PHX_INGRESS_URL" "$T/once.json")
check "same id and body after it ran: 200 duplicate" "200 true" "${r%% *} $(jq -r .duplicate <<<"${r#* }")"
job "$id" '[{"id":"a","kind":"tool.calc","input":{"expr":"1+1"}}]' >"$T/other.json"
r=$(post "$PHX_INGRESS_URL" "$T/other.json")
check "same id, another body: 409" 409 "${r%% *}"
jq -cn '{steps: [{id: "a", kind: "tool.calc", input: {expr: "9*9"}}]}' >"$T/idem2.json"
r=$(post "$PHX_INGRESS_URL" "$T/idem2.json" -H "Idempotency-Key: $key")
check "Idempotency-Key reused with another body: 422" 422 "${r%% *}"
check_contains "422 says why" idempotency_key_reused "$r"
exit 0
