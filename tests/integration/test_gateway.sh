#!/usr/bin/env bash
# test_gateway.sh -- access control at the HTTP gateway and in the planner: API key lifecycle
# (create, list, expire, revoke, rotate via `phx keys` and /v1/admin/keys), RBAC scopes at the
# ingress and on a raw-topic job, tenant isolation (404), rate limits (429 + headers), body
# and connection limits, idempotent re-submit, cancel mid-job, listing with a cursor, and the
# Server-Sent Events stream of a real job.
. "$(dirname "$0")/lib.sh"
export PHX_STACK_POOLS="planner tools"
# No phx-safety in this stack: safety gates (docs/safety.md) are tested in test_safety_gates.sh.
export PHX_SAFETY_GATES=false
export PHX_INGRESS_CONN_TIMEOUT_S=2 PHX_INGRESS_MAX_CONN_PER_IP=64
stack_up

key() { "$PHX" keys create "$@" 2>/dev/null; }   # prints the secret only
ADMIN=$PHX_API_KEY                                 # tenant default, principal dev, role admin
SUB=$(key --tenant default --principal sub --roles submitter)
READER=$(key --tenant default --principal rdr --roles reader)
OTHER=$(key --tenant other --principal eve --roles admin)
T=$PHX_VAR/gw
mkdir -p "$T"
auth() { echo "Authorization: Bearer $1"; }
code() { cut -d' ' -f1 <<<"$1"; }
body() { cut -d' ' -f2- <<<"$1"; }
# jobfile NAME STEPS -> path of a job body without id (the ingress assigns one)
jobfile() { jq -cn --argjson s "$2" '{steps: $s}' >"$T/$1.json"; echo "$T/$1.json"; }
CALC=$(jobfile calc '[{"id":"a","kind":"tool.calc","input":{"expr":"6*7"}}]')
FETCH=$(jobfile fetch '[{"id":"f","kind":"tool.http_fetch","input":{"url":"http://127.0.0.1:1/"}}]')
EXEC=$(jobfile exec '[{"id":"x","kind":"exec.run","input":{"code":"print(1)"}},{"id":"y","kind":"exec.run","input":{"code":"print(2)"}}]')

# --- 1. authentication and RBAC at the ingress (table: key | method | path | body | code) ----
while IFS='|' read -r name k method path file want; do
    [ -z "$name" ] && continue
    case $k in admin) k=$ADMIN ;; sub) k=$SUB ;; reader) k=$READER ;; none) k= ;; *) ;; esac
    args=()
    [ -n "$k" ] && args=(-H "$(auth "$k")")
    r=$(api "$method" "$path" "$file" "${args[@]}")
    check "auth/rbac: $name" "$want" "$(code "$r")"
done <<EOF2
no credentials|none|POST|/v1/jobs|$CALC|401
unknown key|phx_000000000000000000000000000000000000000000000000|POST|/v1/jobs|$CALC|401
submitter runs calc|sub|POST|/v1/jobs|$CALC|202
submitter runs http_fetch (tools:http)|sub|POST|/v1/jobs|$FETCH|202
submitter may not run exec.run or llm (403)|sub|POST|/v1/jobs|$EXEC|403
reader may not submit|reader|POST|/v1/jobs|$CALC|403
reader may list|reader|GET|/v1/jobs||200
reader may not cancel|reader|DELETE|/v1/jobs/nope||403
submitter may not manage keys|sub|GET|/v1/admin/keys||403
admin runs exec.run|admin|POST|/v1/jobs|$EXEC|202
unknown route|admin|GET|/v2/jobs||404
wrong method|admin|PUT|/v1/jobs||405
EOF2
r=$(api POST /v1/jobs "$EXEC" -H "$(auth "$SUB")")
check_contains "rbac: 403 lists the step and the scope" "needs scope exec:run" "$r"
check_contains "rbac: 403 lists every refused step" "step y (exec.run) needs scope exec:run" "$r"
check_contains "rbac: RFC 7807" '"type":"https://phoenix.dev/problems/insufficient_scope"' "$r"
h=$(curl -s -o /dev/null -D - -X POST "$PHX_INGRESS_URL/v1/jobs" --data-binary @"$CALC")
check_contains "401 carries WWW-Authenticate" "WWW-Authenticate: Bearer" "$h"

# --- 2. the planner checks scopes again on a job straight from the topic -------------------
id=$(uid raw-forbidden)
job "$id" '[{"id":"x","kind":"exec.run","input":{"code":"1"}}]' '{"principal":"sub"}' | kafka_put phx.jobs "$id"
r=$(reply "$id")
check "raw topic: submitter's exec.run rejected" rejected "$(jq -r .status <<<"$r")"
check "raw topic: code forbidden" forbidden "$(jq -r .error.code <<<"$r")"
check_contains "raw topic: reason names the scope" "exec:run" "$(jq -c .error.details <<<"$r")"
id=$(uid raw-unknown)
job "$id" '[{"id":"a","kind":"tool.calc","input":{"expr":"1"}}]' '{"principal":"nobody"}' | kafka_put phx.jobs "$id"
check "raw topic: unknown principal rejected" forbidden "$(reply "$id" | jq -r .error.code)"
id=$(uid raw-ok)
job "$id" '[{"id":"a","kind":"tool.calc","input":{"expr":"2+2"}}]' '{"principal":"sub"}' | kafka_put phx.jobs "$id"
check "raw topic: allowed kind runs" 4 "$(reply "$id" | jq -r .outputs.a.value)"

# --- 3. tenant isolation: another tenant's job is 404 for read and cancel ------------------
r=$(api POST /v1/jobs "$CALC" -H "$(auth "$ADMIN")")
mine=$(body "$r" | jq -r .job_id)
check "tenant: own job readable" 200 "$(code "$(api GET "/v1/jobs/$mine" '' -H "$(auth "$ADMIN")")")"
check "tenant: other tenant reads -> 404" 404 "$(code "$(api GET "/v1/jobs/$mine" '' -H "$(auth "$OTHER")")")"
check "tenant: other tenant cancels -> 404" 404 "$(code "$(api DELETE "/v1/jobs/$mine" '' -H "$(auth "$OTHER")")")"
check "tenant: other tenant's events -> 404" 404 "$(code "$(api GET "/v1/jobs/$mine/events" '' -H "$(auth "$OTHER")")")"
check "tenant: missing job -> 404 too" 404 "$(code "$(api GET /v1/jobs/no-such-job '' -H "$(auth "$OTHER")")")"
# Submitting with our job's id: the id is taken (409), and the listing entry the submit added
# in the same round trip is taken back (the listing check below).
jq -cn --arg id "$mine" '{id: $id, steps: [{id: "a", kind: "tool.calc", input: {expr: "1"}}]}' >"$T/taken.json"
check "tenant: another tenant's job id is taken -> 409" 409 "$(code "$(api POST /v1/jobs "$T/taken.json" -H "$(auth "$OTHER")")")"
check "tenant: the 409 left no listing entry behind" "" "$(redis zscore phx:jobs:other "$mine")"
r=$(api GET /v1/jobs '' -H "$(auth "$OTHER")")
check "tenant: other tenant's listing has none of ours" 0 "$(body "$r" | jq "[.jobs[] | select(.job_id == \"$mine\")] | length")"

# --- 4. API key lifecycle: list, expiry, revoke (all replicas within 1 s), rotate ---------
SHORT=$(key --tenant default --principal short --roles reader --expires-in 3)
check "keys: fresh key works" 200 "$(code "$(api GET /v1/jobs '' -H "$(auth "$SHORT")")")"
sleep 3.2
r=$(api GET /v1/jobs '' -H "$(auth "$SHORT")")
check "keys: expired key refused" 401 "$(code "$r")"
check_contains "keys: says expired" "expired API key" "$r"
VICTIM=$(key --tenant default --principal victim --roles reader)
vid=$("$PHX" keys list --tenant default | jq -r 'select(.principal == "victim") | .id')
check "keys: list shows it active" active "$("$PHX" keys list | jq -r "select(.id == \"$vid\") | .state")"
check "keys: list never shows secrets" "" "$("$PHX" keys list | grep -o 'phx_[0-9a-f]\{48\}' | head -1)"
check "keys: victim key works (and is now in the ingress's key cache)" 200 \
    "$(code "$(api GET /v1/jobs '' -H "$(auth "$VICTIM")")")"
# The CLI revokes in Redis only, like a request served by another replica would: this
# ingress trusts its cached lookup for PHX_INGRESS_KEY_CACHE_MS (at most 1000), no longer.
"$PHX" keys revoke "$vid" 2>/dev/null
sleep 1
r=$(api GET /v1/jobs '' -H "$(auth "$VICTIM")")
check "keys: a key revoked elsewhere is refused within 1 s" 401 "$(code "$r")"
check_contains "keys: says revoked" "revoked API key" "$r"
OLD=$(key --tenant default --principal rot --roles reader)
oid=$("$PHX" keys list | jq -r 'select(.principal == "rot") | .id')
NEW=$("$PHX" keys rotate "$oid" --grace 4 2>/dev/null)
check "keys: rotated key works" 200 "$(code "$(api GET /v1/jobs '' -H "$(auth "$NEW")")")"
check "keys: old key works during grace" 200 "$(code "$(api GET /v1/jobs '' -H "$(auth "$OLD")")")"
sleep 4.2
check "keys: old key refused after grace" 401 "$(code "$(api GET /v1/jobs '' -H "$(auth "$OLD")")")"
# The same lifecycle over HTTP, confined to the admin's tenant.
printf '{"principal":"svc","roles":"submitter","expires_in_s":3600}' >"$T/newkey.json"
r=$(api POST /v1/admin/keys "$T/newkey.json" -H "$(auth "$ADMIN")")
check "admin api: create 201" 201 "$(code "$r")"
hk=$(body "$r" | jq -r .key)
hid=$(body "$r" | jq -r .id)
check "admin api: new key works" 202 "$(code "$(api POST /v1/jobs "$CALC" -H "$(auth "$hk")")")"
check "admin api: listed" 1 "$(body "$(api GET /v1/admin/keys '' -H "$(auth "$ADMIN")")" | jq "[.keys[] | select(.id == \"$hid\")] | length")"
check "admin api: other tenant cannot see it" 0 "$(body "$(api GET /v1/admin/keys '' -H "$(auth "$OTHER")")" | jq "[.keys[] | select(.id == \"$hid\")] | length")"
check "admin api: other tenant cannot revoke it" 404 "$(code "$(api DELETE "/v1/admin/keys/$hid" '' -H "$(auth "$OTHER")")")"
r=$(api POST "/v1/admin/keys/$hid/rotate" '' -H "$(auth "$ADMIN")")
check "admin api: rotate 201" 201 "$(code "$r")"
hk2=$(body "$r" | jq -r .key)
hid2=$(body "$r" | jq -r .id)
check "admin api: rotated-out key refused (grace 0)" 401 "$(code "$(api GET /v1/jobs '' -H "$(auth "$hk")")")"
check "admin api: the new key works (cached now)" 200 "$(code "$(api GET /v1/jobs '' -H "$(auth "$hk2")")")"
# The replica that revokes or rotates a key forgets its cached lookup at once.
check "admin api: revoke 200" 200 "$(code "$(api DELETE "/v1/admin/keys/$hid2" '' -H "$(auth "$ADMIN")")")"
check "admin api: revoked key refused" 401 "$(code "$(api GET /v1/jobs '' -H "$(auth "$hk2")")")"
printf '{"principal":"x","roles":"root"}' >"$T/badkey.json"
r=$(api POST /v1/admin/keys "$T/badkey.json" -H "$(auth "$ADMIN")")
check "admin api: unknown role 400" 400 "$(code "$r")"

# --- 5. rate limits: 429 with Retry-After and RateLimit-* headers ------------------------
# Tight limits for two tenants through their Redis overrides (read by the same Lua call).
# One token a second: the request after the burst is a new curl, and on a loaded machine it
# came more than half a second later (with 2/s it then found a token back and got 200).
redis hset 'phx:rl:{burst}:conf' principal_per_s 1 principal_burst 5 >/dev/null
redis hset 'phx:rl:{shared}:conf' tenant_per_s 1 tenant_burst 4 >/dev/null
B1=$(key --tenant burst --principal b1 --roles reader)
B2=$(key --tenant burst --principal b2 --roles reader)
url=$PHX_INGRESS_URL/v1/jobs?limit=1
# urls N: N times "-o /dev/null URL" (curl takes one -o per URL) over one keep-alive connection
urls() { for _ in $(seq "$1"); do echo "-o /dev/null $url"; done; }
codes=$(curl -s -w '%{http_code}\n' -H "$(auth "$B1")" $(urls 20))
n200=$(grep -c 200 <<<"$codes")
check "ratelimit: the burst allowance is served" 1 "$((n200 >= 5 && n200 <= 8))"
check "ratelimit: the rest of a 20-request burst is refused" 1 "$(( $(grep -c 429 <<<"$codes") >= 12 ))"
h=$(curl -s -D - -o /dev/null -H "$(auth "$B1")" "$url")
check_contains "ratelimit: 429" "HTTP/1.1 429" "$h"
check_contains "ratelimit: Retry-After" "Retry-After: 1" "$h"
check_contains "ratelimit: RateLimit-Limit" "RateLimit-Limit: 5" "$h"
check_contains "ratelimit: RateLimit-Remaining" "RateLimit-Remaining: 0" "$h"
check_contains "ratelimit: RateLimit-Reset" "RateLimit-Reset: " "$h"
h=$(curl -s -D - -o /dev/null -H "$(auth "$B2")" "$url")
check_contains "ratelimit: another principal of the tenant unaffected" "HTTP/1.1 200" "$h"
check_contains "ratelimit: 200s carry the headers" "RateLimit-Remaining: 4" "$h"
sleep 1.2
check "ratelimit: allowance comes back" 200 "$(code "$(api GET '/v1/jobs?limit=1' '' -H "$(auth "$B1")")")"
S1=$(key --tenant shared --principal s1 --roles reader)
S2=$(key --tenant shared --principal s2 --roles reader)
codes=$(curl -s -w '%{http_code}\n' -H "$(auth "$S1")" $(urls 3))
codes2=$(curl -s -w '%{http_code}\n' -H "$(auth "$S2")" $(urls 2))
check "ratelimit: the tenant's limit spans its principals" "200 200 200 200 429" "$(echo $codes $codes2)"
check "ratelimit: other tenants unaffected" 200 "$(code "$(api GET '/v1/jobs?limit=1' '' -H "$(auth "$READER")")")"

# --- 6. bodies, headers, slow clients ------------------------------------------------------
head -c 2000000 /dev/zero | tr '\0' 'x' >"$T/big.json"
check "limits: oversized body 413" 413 "$(code "$(api POST /v1/jobs "$T/big.json" -H "$(auth "$ADMIN")")")"
# Under PHX_INGRESS_MAX_BODY (1 MiB) but over what Kafka takes (message.max.bytes, 1,000,000):
# refused for good, so 413, not a 503 to retry forever; and nothing is left stored.
head -c 1010000 /dev/zero | tr '\0' 'y' >"$T/pad"
jq -cn --rawfile pad "$T/pad" \
    '{id: "kafka-too-big", steps: [{id: "a", kind: "tool.calc", input: {expr: "1+1"}}], metadata: {pad: $pad}}' >"$T/kbig.json"
r=$(api POST /v1/jobs "$T/kbig.json" -H "$(auth "$ADMIN")")
check "limits: a job larger than Kafka takes is 413" "413 payload_too_large" "$(code "$r") $(body "$r" | jq -r .code)"
check "limits: ... and is not kept" 0 "$(redis exists 'phx:job:{kafka-too-big}')"
printf '{"steps": [' >"$T/trunc.json"
r=$(api POST /v1/jobs "$T/trunc.json" -H "$(auth "$ADMIN")")
check "limits: malformed JSON 400" 400 "$(code "$r")"
check_contains "limits: says where" "invalid JSON at byte" "$r"
printf '{"steps":[{"id":"a","kind":"tool.calc","bogus":1,"retry":{"max_attempts":"x"}}],"deadline_ms":-5}' >"$T/bad.json"
r=$(api POST /v1/jobs "$T/bad.json" -H "$(auth "$ADMIN")")
check "limits: schema errors 400" 400 "$(code "$r")"
check "limits: every schema error listed" 1 "$(( $(body "$r" | jq '.errors | length') >= 3 ))"
big=$(head -c 40000 /dev/zero | tr '\0' 'a')
check "limits: huge header refused (431)" 431 "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $big" -H "$(auth "$ADMIN")" "$PHX_INGRESS_URL/v1/jobs")"
# Slowloris: a client that sends half a request line and stalls is disconnected.
exec 7<>"/dev/tcp/127.0.0.1/$PHX_INGRESS_PORT"
printf 'GET /v1/jobs HTTP/1.1\r\nHost: x\r\n' >&7
t0=$SECONDS
timeout 10 cat <&7 >/dev/null
check "slow client: disconnected after the idle timeout" 1 "$(( SECONDS - t0 <= 5 ))"
exec 7>&-
# While many idle connections are held, the API still answers.
for i in $(seq 20); do exec {fd}<>"/dev/tcp/127.0.0.1/$PHX_INGRESS_PORT"; fds+=("$fd"); done
check "slow clients: API still answers" 200 "$(code "$(api GET '/v1/jobs?limit=1' '' -H "$(auth "$ADMIN")")")"
for fd in "${fds[@]}"; do exec {fd}>&-; done

# --- 7. idempotent re-submit ---------------------------------------------------------------
r1=$(api POST /v1/jobs "$CALC" -H "$(auth "$ADMIN")" -H 'Idempotency-Key: gw-idem-1')
r2=$(api POST /v1/jobs "$CALC" -H "$(auth "$ADMIN")" -H 'Idempotency-Key: gw-idem-1')
check "idempotency: first 202" 202 "$(code "$r1")"
check "idempotency: repeat 200" 200 "$(code "$r2")"
check "idempotency: same job id" "$(body "$r1" | jq -r .job_id)" "$(body "$r2" | jq -r .job_id)"
r3=$(api POST /v1/jobs "$CALC" -H "$(auth "$OTHER")" -H 'Idempotency-Key: gw-idem-1')
check "idempotency: keys are per tenant" 202 "$(code "$r3")"

# --- 8. cancel mid-job: nothing further dispatched, reply "cancelled" -----------------------
# Step a has no pool that answers it (kb.*: no phx-kb here), b needs a: the job waits on a.
jq -cn '{steps: [{id:"a",kind:"kb.search",input:{},timeout_ms:60000},
                 {id:"b",kind:"tool.calc",input:{expr:"1"},needs:["a"]}]}' >"$T/slow.json"
r=$(api POST /v1/jobs "$T/slow.json" -H "$(auth "$ADMIN")")
cid=$(body "$r" | jq -r .job_id)
for _ in $(seq 50); do [ "$(redis hget "phx:job:{$cid}:steps" a)" = dispatched ] && break; sleep 0.1; done
r=$(api DELETE "/v1/jobs/$cid" '' -H "$(auth "$SUB")")
check "cancel: 202" 202 "$(code "$r")"
check "cancel: reply cancelled" cancelled "$(reply "$cid" | jq -r .status)"
# The step a answers late: the planner records it but dispatches nothing further.
printf '{"schema":"result.v1","job_id":"%s","step_id":"a","attempt":1,"status":"ok","output":{}}' "$cid" | kafka_put phx.results "$cid"
sleep 1
check "cancel: dependant never dispatched" pending "$(redis hget "phx:job:{$cid}:steps" b)"
check "cancel: state stays cancelled" cancelled "$(body "$(api GET "/v1/jobs/$cid" '' -H "$(auth "$ADMIN")")" | jq -r .state)"
check "cancel: one reply only" 1 "$(kafka_get phx.replies "$cid" 2 | grep -c .)"
check "cancel again: 409" 409 "$(code "$(api DELETE "/v1/jobs/$cid" '' -H "$(auth "$ADMIN")")")"
check "cancel unknown: 404" 404 "$(code "$(api DELETE /v1/jobs/nope-nope '' -H "$(auth "$ADMIN")")")"

# --- 9. listing with state filter and cursor ------------------------------------------------
LISTK=$(key --tenant lister --principal l --roles submitter)
for i in 1 2 3 4 5; do api POST /v1/jobs "$CALC" -H "$(auth "$LISTK")" >/dev/null; done
r=$(api GET '/v1/jobs?limit=2' '' -H "$(auth "$LISTK")")
p1=$(body "$r" | jq -r '[.jobs[].job_id] | join(",")')
cur=$(body "$r" | jq -r .next_cursor)
check "list: page of 2" 2 "$(body "$r" | jq '.jobs | length')"
r=$(api GET "/v1/jobs?limit=2&cursor=$cur" '' -H "$(auth "$LISTK")")
p2=$(body "$r" | jq -r '[.jobs[].job_id] | join(",")')
cur=$(body "$r" | jq -r .next_cursor)
r=$(api GET "/v1/jobs?limit=2&cursor=$cur" '' -H "$(auth "$LISTK")")
p3=$(body "$r" | jq -r '[.jobs[].job_id] | join(",")')
check "list: pages cover all 5 without overlap" 5 "$(echo "$p1,$p2,$p3" | tr ',' '\n' | grep . | sort -u | wc -l)"
check "list: last page has no cursor" null "$(body "$r" | jq -r .next_cursor)"
sleep 1
check "list: state filter" 5 "$(body "$(api GET '/v1/jobs?state=succeeded&limit=100' '' -H "$(auth "$LISTK")")" | jq '.jobs | length')"
r=$(api GET '/v1/jobs?state=bogus&limit=0&cursor=zz' '' -H "$(auth "$LISTK")")
check "list: bad query 400" 400 "$(code "$r")"
check "list: every query error listed" 3 "$(body "$r" | jq '.errors | length')"

# --- 10. Server-Sent Events of a real job ---------------------------------------------------
jq -cn '{steps: [{id:"a",kind:"tool.calc",input:{expr:"2*21"}},
                 {id:"b",kind:"tool.calc",input:{expr:"{{steps.a.output.value}}+1"},needs:["a"]}]}' >"$T/sse.json"
sid=sse-$(uid j)
jq -c --arg id "$sid" '. + {id: $id}' "$T/sse.json" >"$T/sse-id.json"
# Subscribe before the job exists? No: 404. Submit, then follow it to the end.
r=$(api POST /v1/jobs "$T/sse-id.json" -H "$(auth "$ADMIN")")
timeout 20 curl -sN -H "$(auth "$ADMIN")" "$PHX_INGRESS_URL/v1/jobs/$sid/events" >"$T/sse.out"
check "sse: stream ended by itself" 0 $?
check_contains "sse: snapshot first" "event: snapshot" "$(head -1 "$T/sse.out")"
check "sse: ends succeeded (live event or final snapshot)" 1 "$(grep -cE 'event: job.succeeded|"state":"succeeded"' "$T/sse.out" | awk '{print ($1 > 0)}')"
check "sse: every data line is JSON" 0 "$(grep '^data: ' "$T/sse.out" | sed 's/^data: //' | jq -e . >/dev/null 2>&1; echo $?)"
h=$(curl -s -D - -o /dev/null -H "$(auth "$ADMIN")" "$PHX_INGRESS_URL/v1/jobs/$sid/events")
check_contains "sse: content type" "text/event-stream" "$h"
# A job followed from before its steps run shows its step events live.
jq -cn '{steps: [{id:"w",kind:"kb.search",input:{},timeout_ms:1500,retry:{max_attempts:1}}]}' >"$T/sse2.json"
sid2=$(body "$(api POST /v1/jobs "$T/sse2.json" -H "$(auth "$ADMIN")")" | jq -r .job_id)
timeout 20 curl -sN -H "$(auth "$ADMIN")" "$PHX_INGRESS_URL/v1/jobs/$sid2/events" >"$T/sse2.out"
check_contains "sse live: step timed out event" "step.timed_out" "$(cat "$T/sse2.out")"
check_contains "sse live: job failed event ends it" "event: job.failed" "$(cat "$T/sse2.out")"

# The summary comes from the EXIT trap; the exit status must say whether anything failed.
exit "$((T_FAIL > 0))"
