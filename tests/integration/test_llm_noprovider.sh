#!/usr/bin/env bash
# test_llm_noprovider.sh -- phx-llm with no provider configured (the default `make up`): it
# starts and is ready; llm.chat and llm.plan fail at once, not retryable, naming the variables
# to set; llm.embed answers with the local lexical embedder (never zeros), under which related
# texts score a higher cosine similarity than unrelated ones. Also: bad LLM configuration
# exits 2 naming the variable, and --help documents the options.
. "$(dirname "$0")/lib.sh"

# --- 1. configuration errors -----------------------------------------------------------------
while IFS='|' read -r assign want; do
    [ -z "$assign" ] && continue
    out=$(env $assign "$PHX_BIN/phx-llm" 2>&1 </dev/null)
    check "bad config $assign: exit 2" 2 $?
    check_contains "bad config $assign: says why" "$want" "$out"
done <<'EOF2'
PHX_LLM_MODEL=m|PHX_LLM_BASE_URL
PHX_LLM_BASE_URL=ftp://x/v1 PHX_LLM_MODEL=m|base_url
PHX_LLM_BASE_URL=http://x/v1|PHX_LLM_MODEL
PHX_LLM_BASE_URL=http://x/v1 PHX_LLM_MODEL=m PHX_LLM_API_KEY_FILE=/nonexistent/key|/nonexistent/key
PHX_LLM_PROVIDERS=/nonexistent/providers.json|PHX_LLM_PROVIDERS
PHX_LLM_TIMEOUT_MS=0|PHX_LLM_TIMEOUT_MS
PHX_LLM_BREAKER_FAILURE_PCT=101|PHX_LLM_BREAKER_FAILURE_PCT
EOF2
out=$("$PHX_BIN/phx-llm" --help)
check_contains "phx-llm --help: documents the provider variables" PHX_LLM_API_KEY_FILE "$out"
check_contains "phx-llm --help: documents budgets" PHX_LLM_TENANT_DAILY_TOKENS "$out"

# --- 2. the pool without a provider ----------------------------------------------------------
unset PHX_LLM_BASE_URL PHX_LLM_MODEL PHX_LLM_API_KEY_FILE PHX_LLM_PROVIDERS PHX_LLM_EMBED_MODEL
export PHX_STACK_POOLS="planner llm"
# No phx-safety in this stack: safety gates (docs/safety.md) are tested in test_safety_gates.sh.
export PHX_SAFETY_GATES=false
stack_up
run_job() { job "$1" "$2" | kafka_put phx.jobs "$1"; reply "$1" 30; }

id=$(uid nochat)
r=$(run_job "$id" '[{"id":"c","kind":"llm.chat","input":{"messages":[{"role":"user","content":"hi"}]}}]')
check "no provider: chat fails once, not retryable" "failed no_provider false 1" \
    "$(jq -r '"\(.status) \(.steps.c.error.code) \(.steps.c.error.retryable) \(.steps.c.attempts)"' <<<"$r")"
check_contains "no provider: says which variable to set" PHX_LLM_BASE_URL "$(jq -r .steps.c.error.message <<<"$r")"
id=$(uid noplan)
r=$(run_job "$id" '[{"id":"p","kind":"llm.plan","input":{"goal":"add two numbers"}}]')
check "no provider: plan fails the same way" "failed no_provider" \
    "$(jq -r '"\(.status) \(.steps.p.error.code)"' <<<"$r")"

id=$(uid lexical)
r=$(run_job "$id" '[{"id":"e","kind":"llm.embed","input":{"texts":[
    "how to bake sourdough bread at home",
    "baking bread with a sourdough starter",
    "quarterly earnings of the telecom sector",
    "!!!"]}}]')
check "local embedder: honest about what it is" "succeeded local lexical 384" \
    "$(jq -r '"\(.status) \(.outputs.e.provider) \(.outputs.e.kind) \(.outputs.e.dim)"' <<<"$r")"
check "local embedder: unit vectors, never zeros" true \
    "$(jq -r '[.outputs.e.vectors[] | (map(. * .) | add) - 1 | fabs < 1e-9] | all' <<<"$r")"
cos='def dot(a; b): [a, b] | transpose | map(.[0] * .[1]) | add;
     .outputs.e.vectors as $v | (dot($v[0]; $v[1]) > dot($v[0]; $v[2]) + 0.1)'
check "local embedder: related texts closer than unrelated" true "$(jq -r "$cos" <<<"$r")"
id=$(uid lexical)
r=$(run_job "$id" '[{"id":"e","kind":"llm.embed","input":{"texts":["x"],"model":"text-embedding-3-small"}}]')
check "local embedder: a remote model name is refused, not faked" "failed model_unavailable" \
    "$(jq -r '"\(.status) \(.steps.e.error.code)"' <<<"$r")"
port=$(cat "$PHX_VAR/run/llm.admin")
check "no provider: ready anyway" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")"
[ "$T_FAIL" -eq 0 ] || exit 1
