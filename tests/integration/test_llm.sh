#!/usr/bin/env bash
# test_llm.sh -- the LLM pool through the real pipeline (Kafka -> planner -> phx-llm ->
# fake OpenAI-compatible providers -> phx.replies): chat, embeddings, JSON-schema answers,
# retries and fallback, input validation, personas changed at run time, token budgets (per
# job, per tenant, and no overspend under concurrency), llm.plan (valid, repaired, refused)
# and running the plan it returns, API key rotation by SIGHUP, no key in any log line.
#
# tests/tools/fake_llm plays two providers: a = /a/v1 and b = /b/v1. Its fault rules are all
# set up front; each case's message carries a marker that selects its rule.
. "$(dirname "$0")/lib.sh"

FAKE=$PHX_BIN/../tests/fake_llm
[ -x "$FAKE" ] || { not_ok "fake_llm built" "$FAKE missing"; exit 1; }
WORK=$(mktemp -d /tmp/phx-llm-it.XXXXXX)
KEY1=sk-phoenix-it-$RANDOM$RANDOM-one
KEY2=sk-phoenix-it-$RANDOM$RANDOM-two
printf '%s\n' "$KEY1" >"$WORK/server.key"
printf '%s\n' "$KEY1" >"$WORK/client.key"

cat >"$WORK/rules.json" <<'EOF2'
[
  {"match": "retry-marker", "status": 503, "times": 2},
  {"path": "/a/", "match": "fallback-marker", "status": 500},
  {"match": "throttle-marker", "status": 429, "retry_after": "1", "times": 1},
  {"match": "down-marker", "status": 503},
  {"match": "schema-ok-marker", "reply_json": {"n": 3, "unit": "apples"}},
  {"match": "schema-repair-marker", "reply": "Sure! Here it is: n=4", "times": 1},
  {"match": "schema-repair-marker", "reply_json": {"n": 4, "unit": "pears"}},
  {"match": "schema-bad-marker", "reply_json": {"n": "many"}},
  {"match": "persona-marker", "echo_system": true},
  {"match": "budget-marker", "delay_ms": 300, "reply": "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"},
  {"match": "plan-ok-marker", "reply_json": {"steps": [
      {"id": "a", "kind": "tool.calc", "input": {"expr": "6*7"}},
      {"id": "b", "kind": "tool.calc", "input": {"expr": "{{steps.a.output.value}} + 8"}, "needs": ["a"]}]}},
  {"match": "plan-cycle-marker", "times": 1, "reply_json": {"steps": [
      {"id": "a", "kind": "tool.calc", "input": {"expr": "1"}, "needs": ["b"]},
      {"id": "b", "kind": "tool.calc", "input": {"expr": "2"}, "needs": ["a"]}]}},
  {"match": "plan-cycle-marker", "reply_json": {"steps": [
      {"id": "x", "kind": "tool.calc", "input": {"expr": "2^10"}}]}},
  {"match": "plan-never-marker", "reply_json": {"steps": [
      {"id": "plan", "kind": "tool.calc", "input": {"expr": "1"}}]}},
  {"match": "plan-kind-marker", "reply_json": {"steps": [
      {"id": "x", "kind": "exec.run", "input": {"lang": "sh", "code": "id"}}]}},
  {"path": "/a/", "match": "dim-marker", "dim": 5}
]
EOF2
"$FAKE" --port-file "$WORK/port" --key-file "$WORK/server.key" --dim 8 \
    --script "$WORK/rules.json" >/dev/null 2>"$WORK/fake.log" &
FAKE_PID=$!
T_PIDS+=("$FAKE_PID")
for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
FPORT=$(cat "$WORK/port")
cat >"$WORK/providers.json" <<EOF2
{"providers": [
  {"name": "a", "base_url": "http://127.0.0.1:$FPORT/a/v1", "model": "m-a", "embed_model": "e-a",
   "models": {"smart": "m-a-smart"}, "api_key_file": "$WORK/client.key", "embed_dim": 8,
   "max_tokens": 2000, "cost_per_1k_prompt": 0.5, "cost_per_1k_completion": 1.5},
  {"name": "b", "base_url": "http://127.0.0.1:$FPORT/b/v1", "model": "m-b", "embed_model": "e-b",
   "models": {"smart": "m-b-smart"}, "api_key_file": "$WORK/client.key", "embed_dim": 8}
]}
EOF2
export PHX_LLM_PROVIDERS=$WORK/providers.json PHX_LLM_BACKOFF_MS=20 PHX_LLM_BACKOFF_MAX_MS=200
export PHX_LLM_TIMEOUT_MS=2000 PHX_LLM_MAX_RETRIES=2 PHX_CONCURRENCY=4
export PHX_STACK_POOLS="planner tools llm"
# No phx-safety in this stack: safety gates (docs/safety.md) are tested in test_safety_gates.sh.
export PHX_SAFETY_GATES=false
T_DIRS+=("$WORK")
stack_up

# run_job ID STEPS [EXTRA]: publish a job, print its reply
run_job() { job "$1" "$2" "${3:-{\}}" | kafka_put phx.jobs "$1"; reply "$1" 30; }
chat_step() { # chat_step CONTENT [EXTRA_INPUT_JSON]
    jq -cn --arg c "$1" --argjson x "${2:-{\}}" \
        '[{id: "c", kind: "llm.chat", input: ({messages: [{role: "user", content: $c}]} + $x),
           retry: {max_attempts: 1}}]'
}
SCHEMA='{"type":"object","required":["n"],"properties":{"n":{"type":"integer"},"unit":{"type":"string"}}}'

# --- 1. llm.chat: table of cases ----------------------------------------------------------
# name | content | extra input JSON | status | jq check on the reply
while IFS='|' read -r name content extra want expr; do
    [ -z "$name" ] && continue
    extra=${extra//SCHEMA/$SCHEMA}
    id=$(uid chat)
    r=$(run_job "$id" "$(chat_step "$content" "${extra:-{\}}")")
    check "chat $name: status" "$want" "$(jq -r .status <<<"$r")"
    check "chat $name: $expr" true "$(jq -r "$expr" <<<"$r" 2>&1)"
done <<'EOF2'
echo|hello phoenix world||succeeded|.outputs.c.text == "echo: hello phoenix world" and .outputs.c.provider == "a" and .outputs.c.model == "m-a" and .outputs.c.usage.prompt_tokens == 3 and .outputs.c.usage.completion_tokens == 4 and .outputs.c.finish_reason == "stop"
model map|hi|{"model":"smart"}|succeeded|.outputs.c.model == "m-a-smart"
unknown model|hi|{"model":"gpt-9"}|failed|.steps.c.error.code == "model_unavailable"
503 twice then success|retry-marker||succeeded|.outputs.c.provider == "a"
fallback to the second provider|fallback-marker||succeeded|.outputs.c.provider == "b" and .outputs.c.model == "m-b"
429 with Retry-After|throttle-marker||succeeded|.outputs.c.provider == "a" and .duration_ms >= 950
every provider down|down-marker||failed|.steps.c.error.code == "provider_unavailable" and .steps.c.error.retryable == true
json_schema answer|schema-ok-marker|{"response_format":{"type":"json_schema","schema":SCHEMA}}|succeeded|.outputs.c.json == {"n":3,"unit":"apples"} and .outputs.c.attempts == 1
json_schema repaired once|schema-repair-marker|{"response_format":{"type":"json_schema","schema":SCHEMA}}|succeeded|.outputs.c.json.n == 4 and .outputs.c.attempts == 2
json_schema never valid|schema-bad-marker|{"response_format":{"type":"json_schema","schema":SCHEMA}}|failed|.steps.c.error.code == "invalid_output" and (.steps.c.error.message | test("/n"))
invalid schema given|hi|{"response_format":{"type":"json_schema","schema":{"type":"nope"}}}|failed|.steps.c.error.code == "invalid_input"
max_tokens over the model limit|hi|{"max_tokens":5000}|failed|.steps.c.error.code == "invalid_input" and (.steps.c.error.message | test("2000"))
temperature out of range|hi|{"temperature":3}|failed|.steps.c.error.code == "invalid_input"
unknown field|hi|{"tools":[]}|failed|.steps.c.error.code == "invalid_input"
unknown persona|hi|{"persona":"nobody"}|failed|.steps.c.error.code == "unknown_persona"
EOF2
id=$(uid chat)
r=$(run_job "$id" '[{"id":"c","kind":"llm.chat","input":{"messages":[{"role":"robot","content":"x"}]}}]')
check "chat bad role: invalid_input" "failed invalid_input 1" \
    "$(jq -r '"\(.status) \(.steps.c.error.code) \(.steps.c.attempts)"' <<<"$r")"

# --- 2. llm.embed ---------------------------------------------------------------------------
id=$(uid embed)
r=$(run_job "$id" '[{"id":"e","kind":"llm.embed","input":{"texts":["alpha beta","gamma"]}}]')
check "embed remote: provider a, dim 8, 2 vectors" "succeeded a 8 2 remote" \
    "$(jq -r '"\(.status) \(.outputs.e.provider) \(.outputs.e.dim) \(.outputs.e.vectors | length) \(.outputs.e.kind)"' <<<"$r")"
check "embed remote: unit length" true \
    "$(jq -r '[.outputs.e.vectors[] | (map(. * .) | add) - 1 | fabs < 1e-9] | all' <<<"$r")"
id=$(uid embed)
r=$(run_job "$id" '[{"id":"e","kind":"llm.embed","input":{"texts":["dim-marker text"]}}]')
check "embed wrong dimension on a: falls back to b" "succeeded b 8" \
    "$(jq -r '"\(.status) \(.outputs.e.provider) \(.outputs.e.dim)"' <<<"$r")"
id=$(uid embed)
r=$(run_job "$id" '[{"id":"e","kind":"llm.embed","input":{"texts":[""]}}]')
check "embed empty text: invalid_input" "failed invalid_input" \
    "$(jq -r '"\(.status) \(.steps.e.error.code)"' <<<"$r")"

# --- 3. personas change at run time, no restart -----------------------------------------------
redis hset phx:llm:personas pirate '{"system":"You are a pirate, version one.","temperature":0.2}' >/dev/null
id=$(uid persona)
r=$(run_job "$id" "$(chat_step persona-marker '{"persona":"pirate"}')")
check "persona: system prompt applied" "You are a pirate, version one." "$(jq -r .outputs.c.text <<<"$r")"
redis hset phx:llm:personas pirate '{"system":"You are a pirate, version two."}' >/dev/null
sleep 1
id=$(uid persona)
r=$(run_job "$id" "$(chat_step persona-marker '{"persona":"pirate"}')")
check "persona: update picked up within a second" "You are a pirate, version two." \
    "$(jq -r .outputs.c.text <<<"$r")"
redis hset phx:llm:personas broken '{"prompt":"no system"}' >/dev/null
id=$(uid persona)
r=$(run_job "$id" "$(chat_step persona-marker '{"persona":"broken"}')")
check "persona: invalid persona refused" invalid_persona "$(jq -r .steps.c.error.code <<<"$r")"

# --- 4. budgets -----------------------------------------------------------------------------
# Per job: the second call would go over budget.max_tokens.
id=$(uid jobbudget)
steps=$(jq -cn '[{id: "a", kind: "llm.chat", input: {messages: [{role: "user", content: "budget-marker a"}], max_tokens: 40}},
                 {id: "b", kind: "llm.chat", input: {messages: [{role: "user", content: "budget-marker b"}], max_tokens: 40}, needs: ["a"]}]')
r=$(run_job "$id" "$steps" '{"budget":{"max_tokens":70}}')
check "job budget: first call runs" succeeded "$(jq -r .steps.a.state <<<"$r")"
check "job budget: second is budget_exceeded, not retried" "budget_exceeded false 1" \
    "$(jq -r '"\(.steps.b.error.code) \(.steps.b.error.retryable) \(.steps.b.attempts)"' <<<"$r")"
check "job budget: usage recorded" 22 "$(redis hget "phx:job:{$id}:llm" used)"

# Per tenant, under concurrency: 12 steps at once against a limit that fits only a few
# reservations (each 53 tokens reserved: 15 bytes / 3 + 8 + max_tokens 40; 22 used). The sum used must never pass the limit.
LIMIT=150
redis set "phx:llm:budget:{tb}:limit" $LIMIT >/dev/null
ids=()
for i in $(seq 12); do
    id=$(uid tb)
    ids+=("$id")
    jq -cn --arg id "$id" '{schema: "job.v1", id: $id, tenant: "tb",
        steps: [{id: "c", kind: "llm.chat", retry: {max_attempts: 1},
                 input: {messages: [{role: "user", content: "budget-marker x"}], max_tokens: 40}}]}' |
        kafka_put phx.jobs "$id"
done
ok_n=0
over_n=0
for id in "${ids[@]}"; do
    case $(reply "$id" 40 | jq -r '"\(.status) \(.steps.c.error.code)"') in
    "succeeded null") ok_n=$((ok_n + 1)) ;;
    "failed budget_exceeded") over_n=$((over_n + 1)) ;;
    esac
done
used=$(redis get "phx:llm:budget:{tb}:$(date -u +%Y%m%d)")
check "tenant budget: every step succeeded or was budget_exceeded" 12 $((ok_n + over_n))
check "tenant budget: some ran, some were refused" true "$([ $ok_n -ge 1 ] && [ $over_n -ge 1 ] && echo true)"
check "tenant budget: no overspend ($used <= $LIMIT)" true "$([ "$used" -le $LIMIT ] && echo true)"
check "tenant budget: used = 22 per successful call" $((ok_n * 22)) "$used"

# --- 5. llm.plan ----------------------------------------------------------------------------
id=$(uid plan)
r=$(run_job "$id" '[{"id":"p","kind":"llm.plan","input":{"goal":"plan-ok-marker: compute 6*7+8"}}]')
check "plan: valid on the first attempt" "succeeded 1 2" \
    "$(jq -r '"\(.status) \(.outputs.p.attempts) \(.outputs.p.plan.steps | length)"' <<<"$r")"
# run the plan it returned, exactly as the planner will
plan=$(jq -c .outputs.p.plan.steps <<<"$r")
id=$(uid planrun)
r2=$(run_job "$id" "$plan")
check "plan: the returned plan runs as a DAG" "succeeded 50" "$(jq -r '"\(.status) \(.outputs.b.value)"' <<<"$r2")"
id=$(uid plan)
r=$(run_job "$id" '[{"id":"p","kind":"llm.plan","input":{"goal":"plan-cycle-marker"}}]')
check "plan: a cyclic plan is retried with the reasons" "succeeded 2 x" \
    "$(jq -r '"\(.status) \(.outputs.p.attempts) \(.outputs.p.plan.steps[0].id)"' <<<"$r")"
check_contains "plan: first attempt's reasons recorded" cycle "$(jq -c .outputs.p.rejected <<<"$r")"
id=$(uid plan)
r=$(run_job "$id" '[{"id":"p","kind":"llm.plan","input":{"goal":"plan-kind-marker"}}]')
check "plan: a kind the principal may not use fails after the retry" "failed invalid_plan false" \
    "$(jq -r '"\(.status) \(.steps.p.error.code) \(.steps.p.error.retryable)"' <<<"$r")"
check_contains "plan: error names the kind" "exec.run is not allowed" "$(jq -r .steps.p.error.message <<<"$r")"
id=$(uid plan)
r=$(run_job "$id" '[{"id":"p","kind":"llm.plan","input":{"goal":"plan-kind-marker","allowed_kinds":["exec.run"]}}]')
check "plan: allowed_kinds widens the set" "succeeded exec.run" \
    "$(jq -r '"\(.status) \(.outputs.p.plan.steps[0].kind)"' <<<"$r")"

# goal-only jobs: the planner dispatches llm.plan, then runs the plan it returns
id=$(uid goal)
jq -cn --arg id "$id" '{schema: "job.v1", id: $id, tenant: "default", goal: "plan-ok-marker: compute 6*7+8"}' |
    kafka_put phx.jobs "$id"
r=$(reply "$id" 40)
check "goal: planned by llm.plan and run as a DAG" "succeeded 50" "$(jq -r '"\(.status) \(.outputs.b.value)"' <<<"$r")"
check "goal: the reply records the plan" 2 "$(jq -r '.outputs.plan.plan.steps | length' <<<"$r")"
id=$(uid goal)
jq -cn --arg id "$id" '{schema: "job.v1", id: $id, tenant: "default", goal: "plan-never-marker"}' |
    kafka_put phx.jobs "$id"
r=$(reply "$id" 40)
check "goal: a plan invalid twice fails the job" "failed invalid_plan" \
    "$(jq -r '"\(.status) \(.steps.plan.error.code)"' <<<"$r")"

# --- 6. key rotation by SIGHUP ------------------------------------------------------------------
printf '%s\n' "$KEY2" >"$WORK/server.key"
id=$(uid key)
r=$(run_job "$id" "$(chat_step "after rotation")")
check "rotated server key: old key refused" "failed provider_unavailable" \
    "$(jq -r '"\(.status) \(.steps.c.error.code)"' <<<"$r")"
check_contains "rotated server key: error says 401" 401 "$(jq -r .steps.c.error.message <<<"$r")"
printf '%s\n' "$KEY2" >"$WORK/client.key"
kill -HUP "$(cat "$PHX_VAR/run/llm.pid")"
sleep 1
id=$(uid key)
r=$(run_job "$id" "$(chat_step "after reload")")
check "SIGHUP re-reads the key file" succeeded "$(jq -r .status <<<"$r")"

# --- 7. metrics and logs ------------------------------------------------------------------------
m=$(curl -s "http://127.0.0.1:$(cat "$PHX_VAR/run/llm.admin")/metrics")
check_contains "metrics: breaker state per provider" 'phx_llm_breaker_state{provider="a"}' "$m"
check_contains "metrics: requests by outcome" 'phx_llm_requests_total{outcome="throttled",provider="a"}' "$m"
check_contains "metrics: tokens per tenant and model" 'phx_llm_tokens_total{model="m-a",tenant="default",type="prompt"}' "$m"
check_contains "metrics: estimated cost" 'phx_llm_cost_usd_total{model="m-a",tenant="default"}' "$m"
check_contains "metrics: budget refusals" 'phx_llm_budget_rejections_total{scope="tenant"}' "$m"
leaks=$(grep -l -e "$KEY1" -e "$KEY2" "$PHX_VAR"/log/*.log 2>/dev/null)
check "no API key in any log line" "" "$leaks"
n=0
for t in phx.replies phx.events phx.results phx.dlq; do
    n=$((n + $(kcat -C -b "$KAFKA" -t $t -o beginning -e -q 2>/dev/null | grep -c -e "$KEY1" -e "$KEY2")))
done
check "no API key in any message" 0 "$n"
[ "$T_FAIL" -eq 0 ] || exit 1
