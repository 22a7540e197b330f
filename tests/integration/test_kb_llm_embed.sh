#!/usr/bin/env bash
# test_kb_llm_embed.sh -- phx-kb embedding texts through the LLM pool's providers
# (PHX_KB_EMBEDDER=llm): one provider request per upsert, search by query text, and the faults
# a real provider produces (503, 429 with Retry-After, malformed bodies, a dead provider), the
# dimension check against the collection, and the tenant's token budget, as llm.embed has them.
# tests/tools/fake_llm plays the provider (its vectors are a deterministic hash of the text:
# the same text always gets the same vector, which is all a search by exact text needs).
. "$(dirname "$0")/lib.sh"

FAKE=$PHX_BIN/../tests/fake_llm
[ -x "$FAKE" ] || { not_ok "fake_llm built" "$FAKE missing"; exit 1; }
WORK=$(mktemp -d /tmp/phx-kbllm-it.XXXXXX)
cat >"$WORK/rules.json" <<'EOF2'
[
  {"match": "retry-marker", "status": 503, "times": 1},
  {"match": "throttle-marker", "status": 429, "retry_after": "1", "times": 1},
  {"match": "garbled-marker", "raw": "{\"data\": [{\"embedding\": [1, 2", "times": 1},
  {"match": "down-marker", "status": 503},
  {"match": "wide-marker", "dim": 32}
]
EOF2
"$FAKE" --port-file "$WORK/port" --script "$WORK/rules.json" --dim 16 >"$WORK/fake.log" 2>&1 &
FAKE_PID=$!
T_PIDS+=("$FAKE_PID")
T_DIRS+=("$WORK")
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
FAKE_URL=http://127.0.0.1:$(cat "$WORK/port")
# Fast failures: no retry on the provider beyond one, and a step attempt each.
export PHX_STACK_POOLS="planner kb" PHX_STEP_TIMEOUT_MS=60000 PHX_KB_EMBEDDER=llm \
    PHX_LLM_BASE_URL=$FAKE_URL/v1 PHX_LLM_EMBED_MODEL=fake-embed PHX_LLM_MAX_RETRIES=1 \
    PHX_LLM_BACKOFF_MS=50
stack_up

embeds() { curl -s "$FAKE_URL/_stats" | jq -r '[.paths | to_entries[] | select(.key | endswith("/embeddings")) | .value] | add // 0'; }
# kb ID KIND INPUT_JSON: run one step "s" of KIND as job ID (one attempt); prints the reply.
kb() { job "$1" "[{\"id\":\"s\",\"kind\":\"$2\",\"input\":$3,\"retry\":{\"max_attempts\":1}}]" | kafka_put phx.jobs "$1"; reply "$1" 90; }

"$PHX" kb create docs --dim 16 >/dev/null
"$PHX" kb create narrow --dim 8 >/dev/null

# --- 1. texts embedded by the provider, in one request per upsert ----------------------------
n0=$(embeds)
r=$(kb "$(uid up)" kb.upsert '{"collection":"docs","items":[
  {"id":"bread","text":"how to bake sourdough bread at home"},
  {"id":"tax","text":"quarterly earnings of the telecom sector"},
  {"id":"cake","text":"baking a chocolate cake"},
  {"id":"v","vector":[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}]}')
check "upsert: succeeded" succeeded "$(jq -r .status <<<"$r")"
check "upsert: three texts embedded" 3 "$(jq -r .outputs.s.embedded <<<"$r")"
check "upsert: one provider request for the three" 1 "$(($(embeds) - n0))"
r=$(kb "$(uid q)" kb.search '{"collection":"docs","query":"quarterly earnings of the telecom sector","k":1}')
check "search by query: the provider's vector finds the same text" "tax" "$(jq -r '.outputs.s.hits[0].id' <<<"$r")"
check "search by query: score 1" 1 "$(jq -r '.outputs.s.hits[0].score | . * 1000 | round / 1000' <<<"$r")"

# --- 2. faults of a real provider -------------------------------------------------------------
for f in retry throttle garbled; do
    r=$(kb "$(uid "$f")" kb.upsert "{\"collection\":\"docs\",\"items\":[{\"id\":\"$f\",\"text\":\"$f-marker text\"}]}")
    check "fault $f: retried on the provider, step succeeded" succeeded "$(jq -r .status <<<"$r")"
done

# --- 3. dimension and budget ----------------------------------------------------------------
r=$(kb "$(uid dim)" kb.upsert '{"collection":"narrow","items":[{"id":"x","text":"sixteen dims do not fit eight"}]}')
check "dimension mismatch: embed_dim_mismatch, not retryable" "embed_dim_mismatch false" \
    "$(jq -r '[.steps.s.error.code, .steps.s.error.retryable] | map(tostring) | join(" ")' <<<"$r")"
check_contains "dimension mismatch: says both dimensions" "16-dimensional" "$(jq -r .steps.s.error.message <<<"$r")"
r=$(kb "$(uid wide)" kb.upsert '{"collection":"docs","items":[{"id":"w","text":"wide-marker text"}]}')
check "provider changes dimension: refused" embed_dim_mismatch "$(jq -r .steps.s.error.code <<<"$r")"
redis set 'phx:llm:budget:{default}:limit' 1 >/dev/null
n0=$(embeds)
r=$(kb "$(uid budget)" kb.upsert '{"collection":"docs","items":[{"id":"b","text":"a text over the tenant budget"}]}')
check "tenant budget: budget_exceeded" budget_exceeded "$(jq -r .steps.s.error.code <<<"$r")"
check "tenant budget: the provider was not called" 0 "$(($(embeds) - n0))"
redis del 'phx:llm:budget:{default}:limit' >/dev/null
check "tenant budget: embeddings were charged to the tenant" 1 \
    "$(redis keys 'phx:llm:budget:{default}:2*' | grep -c .)"
# Last: a provider that stays down opens its circuit breaker, as it should.
r=$(kb "$(uid down)" kb.upsert '{"collection":"docs","items":[{"id":"down","text":"down-marker text"}]}')
check "provider down: step failed" failed "$(jq -r .status <<<"$r")"
check "provider down: provider_unavailable (retryable)" "provider_unavailable true" \
    "$(jq -r '[.steps.s.error.code, .steps.s.error.retryable] | map(tostring) | join(" ")' <<<"$r")"
r=$(kb "$(uid downq)" kb.search '{"collection":"docs","query":"down-marker query"}')
check "provider down: a search by query fails the same way" provider_unavailable "$(jq -r .steps.s.error.code <<<"$r")"
r=$(kb "$(uid downv)" kb.search '{"collection":"docs","vector":[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"k":1}')
check "provider down: a search by vector needs no provider" "v" "$(jq -r '.outputs.s.hits[0].id' <<<"$r")"
r=$(kb "$(uid count)" kb.search '{"collection":"docs","vector":[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"k":100}')
check "nothing half-written: the stored ids" "bread cake garbled retry tax throttle v" \
    "$(jq -r '.outputs.s.hits[].id' <<<"$r" | sort | xargs)"

# --- 4. configuration ------------------------------------------------------------------------
out=$(PHX_KB_EMBEDDER=llm PHX_LLM_BASE_URL= PHX_LLM_EMBED_MODEL= "$PHX_BIN/phx-kb" 2>&1)
check "config: llm embedder without a provider refused at start" 2 "$?"
check_contains "config: says what to set" "PHX_LLM_EMBED_MODEL" "$out"
exit 0
