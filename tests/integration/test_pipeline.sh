#!/usr/bin/env bash
# test_pipeline.sh -- jobs through the real pipeline (ingress or raw Kafka -> planner -> tools
# -> Redis -> phx.replies): DAG order and templates, failures, rejections, poison messages,
# duplicates, retries, step timeouts and job deadlines.
. "$(dirname "$0")/lib.sh"
# Only the planner and the tools pool: section 7 plays the exec pool itself, and section 8
# relies on nobody answering phx.tasks.exec.
export PHX_STACK_POOLS="planner tools"
# No phx-safety in this stack: safety gates (docs/safety.md) are tested in test_safety_gates.sh.
export PHX_SAFETY_GATES=false
stack_up

# --- 1. the contract example, published with kcat exactly as in the docs -----------------
J1=$(uid J1)
job "$J1" '[{"id":"a","kind":"tool.calc","input":{"expr":"2*(3+4)"}},
            {"id":"b","kind":"tool.calc","input":{"expr":"{{steps.a.output.value}} + 1"},"needs":["a"]}]' |
    kafka_put phx.jobs "$J1"
r=$(reply "$J1")
check "kcat job: status" succeeded "$(jq -r .status <<<"$r")"
check "kcat job: outputs" '{"a":{"value":14},"b":{"value":15}}' "$(jq -cS .outputs <<<"$r")"
check "kcat job: reply schema" reply.v1 "$(jq -r .schema <<<"$r")"

# --- 2. table of jobs: steps -> expected status and a jq check on the reply --------------
# name | steps JSON | status | jq expression that must print "true"
while IFS='|' read -r name steps want expr; do
    [ -z "$name" ] && continue
    id=$(uid case)
    job "$id" "$steps" | kafka_put phx.jobs "$id"
    r=$(reply "$id")
    check "case $name: status" "$want" "$(jq -r .status <<<"$r")"
    check "case $name: $expr" true "$(jq -r "$expr" <<<"$r" 2>&1)"
done <<'EOF'
fan-out/fan-in|[{"id":"x","kind":"tool.calc","input":{"expr":"6*7"}},{"id":"s","kind":"tool.calc","input":{"expr":"{{steps.x.output.value}}^2"},"needs":["x"]},{"id":"h","kind":"tool.calc","input":{"expr":"{{steps.x.output.value}}/4"},"needs":["x"]},{"id":"t","kind":"tool.calc","input":{"expr":"{{steps.s.output.value}}+{{steps.h.output.value}}"},"needs":["s","h"]}]|succeeded|.outputs.t.value == 1774.5
order is respected|[{"id":"c","kind":"tool.calc","input":{"expr":"{{steps.b.output.value}}*10"},"needs":["b"]},{"id":"b","kind":"tool.calc","input":{"expr":"{{steps.a.output.value}}+1"},"needs":["a"]},{"id":"a","kind":"tool.calc","input":{"expr":"1"}}]|succeeded|.outputs.c.value == 20
division by zero fails the step|[{"id":"a","kind":"tool.calc","input":{"expr":"1/0"}}]|failed|.steps.a.error.code == "invalid_input" and .error.code == "step_failed" and .steps.a.attempts == 1
failure skips dependants|[{"id":"a","kind":"tool.calc","input":{"expr":"nope"}},{"id":"b","kind":"tool.calc","input":{"expr":"1"},"needs":["a"]},{"id":"c","kind":"tool.calc","input":{"expr":"2"}}]|failed|.steps.b.state == "skipped" and .outputs.c.value == 2
cycle is rejected|[{"id":"a","kind":"tool.calc","needs":["b"]},{"id":"b","kind":"tool.calc","needs":["a"]}]|rejected|(.error.details | tostring | test("cycle"))
unknown needs is rejected|[{"id":"a","kind":"tool.calc","needs":["ghost"]}]|rejected|(.error.details | tostring | test("unknown step ghost"))
unknown kind is rejected|[{"id":"a","kind":"magic.wand"}]|rejected|(.error.details | tostring | test("unknown step kind"))
template outside needs is rejected|[{"id":"a","kind":"tool.calc","input":{"expr":"1"}},{"id":"b","kind":"tool.calc","input":{"expr":"{{steps.a.output.value}}"}}]|rejected|(.error.details | tostring | test("not in its needs"))
missing template value fails the step|[{"id":"a","kind":"tool.calc","input":{"expr":"1"}},{"id":"b","kind":"tool.calc","input":{"expr":"{{steps.a.output.nope}}"},"needs":["a"]}]|failed|.steps.b.error.code == "template_unresolved"
private address refused by http_fetch|[{"id":"f","kind":"tool.http_fetch","input":{"url":"http://169.254.169.254/latest/meta-data/"}}]|failed|.steps.f.error.code == "forbidden_address"
transport failure keeps its cause|[{"id":"f","kind":"tool.http_fetch","input":{"url":"http://nonexistent.invalid/"},"retry":{"max_attempts":1}}]|failed|.steps.f.error.cause | test("libcurl error")
EOF

# --- 3. schema-invalid job: rejected reply AND a dead letter with the original bytes -----
id=$(uid badschema)
printf '{"schema":"job.v1","id":"%s","steps":[{"id":"a"}]}' "$id" | kafka_put phx.jobs "$id"
r=$(reply "$id")
check "schema-invalid job: rejected" rejected "$(jq -r .status <<<"$r")"
check "schema-invalid job: reason" invalid_job "$(jq -r .error.code <<<"$r")"
d=$(kafka_get phx.dlq "$id" | head -n1)
check "schema-invalid job: dead letter reason" "message fails job.v1" "$(jq -r .reason <<<"$d")"
check "schema-invalid job: original bytes kept" \
    "$(printf '{"schema":"job.v1","id":"%s","steps":[{"id":"a"}]}' "$id")" \
    "$(jq -r .payload_b64 <<<"$d" | base64 -d)"

# --- 4. poison messages on every consumed topic go to phx.dlq; consumers keep going -------
for topic in phx.jobs phx.results phx.tasks.tools; do
    key=$(uid poison)
    printf 'this is {not json' | kafka_put "$topic" "$key"
    d=$(kafka_get phx.dlq "$key" | head -n1)
    check "poison on $topic: dead-lettered with topic" "$topic" "$(jq -r .topic <<<"$d")"
    check_contains "poison on $topic: reason" "invalid JSON" "$(jq -r .reason <<<"$d")"
done
key=$(uid poison)
printf '{"schema":"task.v1","job_id":"x"}' | kafka_put phx.tasks.tools "$key"
check_contains "schema-invalid task: dead-lettered" "task.v1" "$(kafka_get phx.dlq "$key" | jq -r .reason)"
id=$(uid after-poison)
job "$id" '[{"id":"a","kind":"tool.calc","input":{"expr":"40+2"}}]' | kafka_put phx.jobs "$id"
check "pipeline still works after poison" 42 "$(reply "$id" | jq -r .outputs.a.value)"

# --- 4a. a task whose attempt the planner already timed out is not run ----------------------
# (lib/pool.c): its result would be stale, and under a backlog running it delays fresh attempts.
# The same task dispatched now is run: the control.
task() { jq -cn --arg j "$1" --argjson d "$2" '{schema: "task.v1", job_id: $j, step_id: "a",
    attempt: 1, kind: "tool.calc", input: {expr: "6*7"}, tenant: "default",
    dispatched_ms: $d, timeout_ms: 1000}'; }
now_ms=$(($(date +%s%N) / 1000000))
old=$(uid expired)
fresh=$(uid fresh)
task "$old" $((now_ms - 60000)) | kafka_put phx.tasks.tools "$old"
task "$fresh" "$now_ms" | kafka_put phx.tasks.tools "$fresh"
check "expired attempt: the fresh control is run" 42 \
    "$(kafka_get phx.results "$fresh" 30 | head -n1 | jq -r .output.value)"
check "expired attempt: not run, no result" "" "$(kafka_get phx.results "$old" 2)"
check_contains "expired attempt: counted" 'phx_tasks_expired_total{kind="tool.calc"} 1' \
    "$(curl -s "http://127.0.0.1:$(cat "$PHX_VAR/run/tools.admin")/metrics")"

# --- 4b. the DLQ tool: list, show, replay (validated again), purge ------------------------
key=$(uid dlqtool)
printf 'still {not json' | kafka_put phx.jobs "$key"
kafka_get phx.dlq "$key" >/dev/null
line=$("$PHX" dlq list --reason "invalid JSON" 2>/dev/null | grep "key=$key")
check_contains "phx dlq list: shows the letter" "phx.jobs[" "$line"
pos=${line%%$'\t'*}
check "phx dlq show: original bytes" 'still {not json' "$("$PHX" dlq show "$pos" | jq -r .payload_b64 | base64 -d)"
"$PHX" dlq replay "$pos" >/dev/null 2>&1
check "phx dlq replay: exit 0" 0 $?
sleep 1.5
check "phx dlq replay: still-bad input comes back" 2 "$(kafka_get phx.dlq "$key" | grep -c .)"
"$PHX" dlq purge >/dev/null
check "phx dlq purge: listing empty after" "" "$("$PHX" dlq list 2>/dev/null)"
"$PHX" dlq show 0:999999 >/dev/null 2>&1
check "phx dlq show: unknown position exits 1" 1 $?

# --- 5. duplicates never run a job twice -------------------------------------------------
id=$(uid dup)
doc=$(job "$id" '[{"id":"a","kind":"tool.calc","input":{"expr":"1+1"}}]')
echo "$doc" | kafka_put phx.jobs "$id"
echo "$doc" | kafka_put phx.jobs "$id"
reply "$id" >/dev/null
sleep 1
check "duplicate id: one reply" 1 "$(kafka_get phx.replies "$id" 1 | grep -c .)"
check "duplicate id: one attempt" 1 "$(redis hget "phx:job:{$id}:steps" a:attempt)"
check_contains "duplicate id: event" job.duplicate "$(kafka_get phx.events "$id" | jq -r .type | tr '\n' ' ')"
# Once more, now that the job is over and answered (a redelivery after a planner died): it
# must not leave a deadline timer behind for a job nothing is left to do for.
echo "$doc" | kafka_put phx.jobs "$id"
for _ in $(seq 40); do
    [ "$(kafka_get phx.events "$id" | jq -r 'select(.type == "job.duplicate") | .type' | grep -c .)" -ge 2 ] && break
    sleep 0.25
done
sleep 0.5 # the timer goes once the duplicate's event is out
check "late duplicate id: no deadline timer left" "" "$(redis zscore phx:deadlines "$id")"
# The duplicate also wrote the timer of its root step's first attempt (the create script
# dispatches roots); the job is over, so that timer goes too.
check "late duplicate id: no step timer left" "" "$(redis zscore phx:timeouts "$id"$'\t'a$'\t'1)"

id1=$(uid idem)
id2=$(uid idem)
job "$id1" '[{"id":"a","kind":"tool.calc","input":{"expr":"5"}}]' '{"idempotency_key":"K-'"$id1"'"}' | kafka_put phx.jobs "$id1"
job "$id2" '[{"id":"a","kind":"tool.calc","input":{"expr":"6"}}]' '{"idempotency_key":"K-'"$id1"'"}' | kafka_put phx.jobs "$id2"
check "idempotency key: first runs" succeeded "$(reply "$id1" | jq -r .status)"
r=$(reply "$id2")
check "idempotency key: second is a duplicate" duplicate "$(jq -r .error.code <<<"$r")"
check "idempotency key: names the first" "$id1" "$(jq -r '.error.details[0]' <<<"$r")"

# --- 6. duplicate and late results change nothing ----------------------------------------
id=$(uid dupres)
job "$id" '[{"id":"a","kind":"tool.calc","input":{"expr":"7*6"}}]' | kafka_put phx.jobs "$id"
reply "$id" >/dev/null
for attempt in 1 2; do
    jq -cn --arg j "$id" --argjson a $attempt \
        '{schema:"result.v1",job_id:$j,step_id:"a",attempt:$a,status:"ok",output:{value:999}}' |
        kafka_put phx.results "$id"
done
sleep 1.5
check "duplicate result: output unchanged" '{"value":42}' "$(redis hget "phx:job:{$id}:out" a)"
check "duplicate result: still one reply" 1 "$(kafka_get phx.replies "$id" 1 | grep -c .)"

# --- 7. retries: a pool that fails retryably, then succeeds (played by this test) --------
# exec.run has no pool in this stack, so the test answers phx.tasks.exec itself -- through
# the real topics, exactly like a pool would.
answer_task() { # answer_task JOB ATTEMPT RESULT_FIELDS_JSON
    local t="" end=$((SECONDS + 20))
    # kafka_get returns once the job has any task: wait for this attempt's (a retry is
    # dispatched after its backoff, which a quick test can beat)
    while [ -z "$t" ] && [ $SECONDS -lt $end ]; do
        t=$(kafka_get phx.tasks.exec "$1" 20 | jq -c "select(.attempt == $2)" | head -n1)
        [ -n "$t" ] || sleep 0.2
    done
    check "retry: task attempt $2 dispatched" "$2" "$(jq -r .attempt <<<"$t")"
    jq -cn --arg j "$1" --argjson a "$2" --argjson f "$3" \
        '{schema:"result.v1",job_id:$j,step_id:"x",attempt:$a,kind:"exec.run"} + $f' |
        kafka_put phx.results "$1"
}
id=$(uid retry)
job "$id" '[{"id":"x","kind":"exec.run","input":{"lang":"sh","code":"true"},"retry":{"max_attempts":3,"backoff_ms":50}},
            {"id":"y","kind":"tool.calc","input":{"expr":"{{steps.x.output.exit_code}}+100"},"needs":["x"]}]' |
    kafka_put phx.jobs "$id"
answer_task "$id" 1 '{"status":"error","error":{"code":"sandbox_unavailable","message":"try again","retryable":true}}'
answer_task "$id" 2 '{"status":"ok","output":{"exit_code":0}}'
r=$(reply "$id")
check "retry: succeeded on attempt 2" succeeded "$(jq -r .status <<<"$r")"
check "retry: attempts recorded" 2 "$(jq -r .steps.x.attempts <<<"$r")"
check "retry: dependant ran with the output" 100 "$(jq -r .outputs.y.value <<<"$r")"
check_contains "retry: event" step.retry_scheduled "$(kafka_get phx.events "$id" | jq -r .type | tr '\n' ' ')"

id=$(uid noretry)
job "$id" '[{"id":"x","kind":"exec.run","input":{},"retry":{"max_attempts":3,"backoff_ms":50}}]' | kafka_put phx.jobs "$id"
answer_task "$id" 1 '{"status":"error","error":{"code":"bad_input","message":"no","retryable":false}}'
check "non-retryable error: failed at once" "failed 1" "$(reply "$id" | jq -r '"\(.status) \(.steps.x.attempts)"')"

# --- 7b. goal-only jobs: the planner asks llm.plan (played by this test), checks the plan,
#         runs it; a bad plan fails the job with the reasons -----------------------------------
answer_plan() { # answer_plan JOB PLAN_STEPS_JSON
    local t
    t=$(kafka_get phx.tasks.llm "$1" 20 | head -n1)
    check "goal job: llm.plan dispatched with the goal" "add things" "$(jq -r .input.goal <<<"$t")"
    jq -cn --arg j "$1" --argjson steps "$2" \
        '{schema:"result.v1",job_id:$j,step_id:"plan",attempt:1,kind:"llm.plan",status:"ok",
          output:{plan:{steps:$steps},attempts:1}}' | kafka_put phx.results "$1"
}
id=$(uid goal)
jq -cn --arg id "$id" '{schema:"job.v1",id:$id,tenant:"default",goal:"add things"}' | kafka_put phx.jobs "$id"
answer_plan "$id" '[{"id":"x","kind":"tool.calc","input":{"expr":"20+1"}},
                    {"id":"y","kind":"tool.calc","input":{"expr":"{{steps.x.output.value}}*2"},"needs":["x"]}]'
r=$(reply "$id")
check "goal job: the plan ran" "succeeded 42" "$(jq -r '"\(.status) \(.outputs.y.value)"' <<<"$r")"
check "goal job: the reply records the plan" 2 "$(jq -r '.outputs.plan.plan.steps | length' <<<"$r")"
id=$(uid badplan)
jq -cn --arg id "$id" '{schema:"job.v1",id:$id,tenant:"default",goal:"add things"}' | kafka_put phx.jobs "$id"
answer_plan "$id" '[{"id":"x","kind":"tool.calc","needs":["x"]}]'
r=$(reply "$id")
check "bad plan: job failed" "failed invalid_plan" "$(jq -r '"\(.status) \(.error.code)"' <<<"$r")"
check_contains "bad plan: reasons listed" "needs itself" "$(jq -c .error.details <<<"$r")"

# --- 8. step timeouts and job deadlines (nobody answers phx.tasks.exec here) -------------
id=$(uid timeout)
job "$id" '[{"id":"x","kind":"exec.run","input":{},"timeout_ms":300,"retry":{"max_attempts":2,"backoff_ms":10}}]' |
    kafka_put phx.jobs "$id"
r=$(reply "$id" 30)
check "step timeout: failed after 2 attempts" "failed 2 step_timeout" \
    "$(jq -r '"\(.status) \(.steps.x.attempts) \(.steps.x.error.code)"' <<<"$r")"

id=$(uid deadline)
job "$id" '[{"id":"x","kind":"exec.run","input":{}}]' '{"deadline_ms":1000}' | kafka_put phx.jobs "$id"
r=$(reply "$id" 30)
check "deadline: job failed" "failed deadline_exceeded" "$(jq -r '"\(.status) \(.error.code)"' <<<"$r")"
check "deadline: took about a second" true "$(jq -r '.duration_ms >= 900 and .duration_ms < 10000' <<<"$r")"

# --- 9. the CLI ----------------------------------------------------------------------------
out=$("$PHX" submit "$ROOT/examples/fan-out.json" --wait --timeout 30)
check "phx submit --wait: exit 0" 0 $?
check "phx submit --wait: fan-out sum" 1787 "$(jq -r .outputs.sum.value <<<"$out")"
echo '{"steps":[{"id":"a","kind":"tool.calc","input":{"expr":"1/0"}}]}' | "$PHX" submit - --wait --timeout 30 >/dev/null
check "phx submit --wait: failed job exits 1" 1 $?
echo '{"steps":[{"id":"a"}]}' | "$PHX" submit - >/dev/null 2>&1
check "phx submit: invalid job exits 2" 2 $?
"$PHX" submit /nonexistent >/dev/null 2>&1
check "phx submit: missing file exits 2" 2 $?
"$PHX" frobnicate >/dev/null 2>&1
check "phx: unknown command exits 2" 2 $?
"$PHX" status "$J1" >/dev/null
check "phx status: exit 0" 0 $?
"$PHX" status no-such-job >/dev/null 2>&1
check "phx status: unknown job exits 1" 1 $?
"$PHX" status no-such-job --wait --timeout 1 >/dev/null 2>&1
check "phx status --wait: timeout exits 3" 3 $?

echo '{"system":"You are terse."}' | "$PHX" persona set terse -
check "phx persona set: exit 0" 0 $?
check "phx persona get" '{"system":"You are terse."}' "$("$PHX" persona get terse)"
echo '{"system":"You are kind."}' >"$PHX_VAR/kind.json"
"$PHX" persona set kind --file "$PHX_VAR/kind.json"
check "phx persona set --file" '{"system":"You are kind."}' "$("$PHX" persona get kind)"
echo '{"nope":1}' | "$PHX" persona set bad - 2>/dev/null
check "phx persona set: invalid persona exits 2" 2 $?
"$PHX" persona delete terse
check "phx persona delete: gone" 1 "$("$PHX" persona get terse >/dev/null 2>&1; echo $?)"

# --- 10. HTTP API ----------------------------------------------------------------------------
tmp=$PHX_VAR/http
mkdir -p "$tmp"
cp "$ROOT/examples/calc-chain.json" "$tmp/good.json"
printf '{nope' >"$tmp/badjson.json"
printf '{"steps":[{"id":"a"}]}' >"$tmp/badschema.json"
printf '{"steps":[{"id":"a","kind":"tool.calc","needs":["a"]}]}' >"$tmp/cycle.json"
printf '{"tenant":"other","steps":[{"id":"a","kind":"tool.calc","input":{"expr":"1"}}]}' >"$tmp/tenant.json"
head -c 1100000 /dev/zero | tr '\0' ' ' >"$tmp/big.json"
AUTH=(-H "Authorization: Bearer $PHX_API_KEY")
# name | method | path | body file | auth (yes/no/bad) | expected code | jq check on body
while IFS='|' read -r name method path body auth want expr; do
    [ -z "$name" ] && continue
    case $auth in
    yes) a=("${AUTH[@]}") ;;
    bad) a=(-H "Authorization: Bearer phx_not_a_key") ;;
    *) a=() ;;
    esac
    res=$(api "$method" "$path" "${body:+$tmp/$body}" "${a[@]}")
    check "http $name: code" "$want" "${res%% *}"
    [ -n "$expr" ] && check "http $name: $expr" true "$(jq -r "$expr" <<<"${res#* }" 2>&1)"
done <<'EOF'
no key|POST|/v1/jobs|good.json|no|401|.type | test("unauthorized")
bad key|POST|/v1/jobs|good.json|bad|401|.status == 401
bad json|POST|/v1/jobs|badjson.json|yes|400|.code == "invalid_json"
schema violation|POST|/v1/jobs|badschema.json|yes|400|.errors | length > 0
cycle|POST|/v1/jobs|cycle.json|yes|400|.errors | tostring | test("itself")
other tenant in body|POST|/v1/jobs|tenant.json|yes|403|.code == "forbidden"
too large|POST|/v1/jobs|big.json|yes|413|.code == "payload_too_large"
wrong method|PUT|/v1/jobs||yes|405|
unknown path|GET|/v2/nothing||yes|404|
unknown job|GET|/v1/jobs/nope||yes|404|.code == "not_found"
get needs a key|GET|/v1/jobs/x||no|401|
accepted|POST|/v1/jobs|good.json|yes|202|.job_id | length > 10
EOF
res=$(api POST /v1/jobs "$tmp/good.json" "${AUTH[@]}")
hid=$(jq -r .job_id <<<"${res#* }")
"$PHX" status "$hid" --wait --timeout 30 >/dev/null
res=$(api GET "/v1/jobs/$hid" "" "${AUTH[@]}")
check "http get: 200" 200 "${res%% *}"
check "http get: outputs" 15 "$(jq -r .outputs.b.value <<<"${res#* }")"
check "http job: reply on phx.replies" succeeded "$(reply "$hid" | jq -r .status)"
OTHER=$("$PHX" keys create --tenant other --principal eve)
res=$(api GET "/v1/jobs/$hid" "" -H "Authorization: Bearer $OTHER")
check "http get: other tenant sees 404" 404 "${res%% *}"
r1=$(api POST /v1/jobs "$tmp/good.json" "${AUTH[@]}" -H "Idempotency-Key: idem-$hid")
r2=$(api POST /v1/jobs "$tmp/good.json" "${AUTH[@]}" -H "Idempotency-Key: idem-$hid")
check "http idempotency: first 202" 202 "${r1%% *}"
check "http idempotency: second 200" 200 "${r2%% *}"
check "http idempotency: same job" "$(jq -r .job_id <<<"${r1#* }")" "$(jq -r .job_id <<<"${r2#* }")"

# --- 11. admin endpoints -------------------------------------------------------------------
port=$(cat "$PHX_VAR/run/planner.admin")
check "admin: healthz" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")"
m=$(curl -s "http://127.0.0.1:$port/metrics")
check_contains "admin: metrics count jobs" 'phx_jobs_finished_total{state="succeeded",tenant="default"}' "$m"
check_contains "admin: metrics count poison" 'outcome="poison"' "$m"
port=$(cat "$PHX_VAR/run/tools.admin")
check_contains "admin: tools step metrics" 'phx_steps_total{kind="tool.calc",outcome="ok"}' \
    "$(curl -s "http://127.0.0.1:$port/metrics")"
