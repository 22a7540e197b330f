#!/usr/bin/env bash
# test_kb.sh -- phx-kb end to end on a real Redis and phx-devbroker: collections through the
# CLI, upsert/search/delete round trips (vectors and texts), filters, every validation error,
# TTL and capacity pruning (explicit and periodic), a corrupt record quarantined and never
# served, and no loss across a worker restart and a Redis restart (AOF).
. "$(dirname "$0")/lib.sh"

# Steps get 2 minutes: under the sanitizers on a loaded 2-core machine a step can queue for long.
# PHX_KB_HNSW_MIN=150: collection "many" (200 items) is searched through its HNSW graph.
export PHX_STACK_POOLS="planner kb" PHX_KB_PRUNE_INTERVAL_MS=1000 PHX_KB_SYNC_MS=100 \
    PHX_STEP_TIMEOUT_MS=120000 PHX_KB_HNSW_MIN=150
stack_up

# The first job waits for the consumer groups to form (slow on a loaded machine).
"$PHX" kb create warm --dim 2 >/dev/null
w=$(uid warm)
job "$w" '[{"id":"s","kind":"kb.search","input":{"collection":"warm","vector":[1,0]}}]' | kafka_put phx.jobs "$w"
check "warm-up search answers" succeeded "$(reply "$w" 120 | jq -r .status)"

# kb ID KIND INPUT_JSON: run one step "s" of KIND as job ID; prints the reply.
kb() { job "$1" "[{\"id\":\"s\",\"kind\":\"$2\",\"input\":$3,\"retry\":{\"max_attempts\":1}}]" | kafka_put phx.jobs "$1"; reply "$1" 120; }
# kb_submit ID KIND INPUT_JSON: the same without waiting (collect with reply later).
kb_submit() { job "$1" "[{\"id\":\"s\",\"kind\":\"$2\",\"input\":$3,\"retry\":{\"max_attempts\":1}}]" | kafka_put phx.jobs "$1"; }
out() { jq -c "$1" <<<"$2"; }

echo "# t=$SECONDS"
# --- 1. collections --------------------------------------------------------------------------
check "create: ok" 0 "$("$PHX" kb create vec --dim 4 --metric cosine >/dev/null; echo $?)"
check "create: twice refused" 1 "$("$PHX" kb create vec --dim 4 2>/dev/null >/dev/null; echo $?)"
check "create: bad dim is usage" 2 "$("$PHX" kb create bad --dim 0 2>/dev/null >/dev/null; echo $?)"
check "create: bad metric is usage" 2 "$("$PHX" kb create bad --dim 4 --metric cos 2>/dev/null >/dev/null; echo $?)"
"$PHX" kb create txt --dim 64 >/dev/null
"$PHX" kb create cap --dim 2 --capacity 3 --policy lru >/dev/null
"$PHX" kb create imp --dim 2 --capacity 2 --policy score >/dev/null
"$PHX" kb create hard --dim 2 --capacity 2 --policy none >/dev/null
"$PHX" kb create ttl --dim 2 --ttl 1 >/dev/null
check "list: every collection" "cap hard imp ttl txt vec warm" "$("$PHX" kb list | jq -r .collection | sort | xargs)"

echo "# t=$SECONDS"
# --- 2. round trips and filters: one job, steps ordered by needs ------------------------------
steps=$(jq -cn '[
 {id:"up", kind:"kb.upsert", input:{collection:"vec", items:[
   {id:"a",vector:[1,0,0,0],text:"alpha",metadata:{lang:"en",year:2020}},
   {id:"b",vector:[0.9,0.1,0,0],text:"beta",metadata:{lang:"de",year:2022}},
   {id:"c",vector:[0,1,0,0],text:"gamma",metadata:{lang:"en",year:2024}},
   {id:"d",vector:[0,0,1,0],text:"delta",metadata:{lang:"fr",year:2021}}]}},
 {id:"s1", kind:"kb.search", needs:["up"], input:{collection:"vec",vector:[1,0,0,0],k:2}},
 {id:"s2", kind:"kb.search", needs:["up"], input:{collection:"vec",vector:[1,0,0,0],filter:{lang:"en"}}},
 {id:"s3", kind:"kb.search", needs:["up"], input:{collection:"vec",vector:[1,0,0,0],filter:{year:{"$gte":2021,"$lt":2024}}}},
 {id:"s4", kind:"kb.search", needs:["up"], input:{collection:"vec",vector:[1,0,0,0],filter:{lang:{"$in":["fr","de"]}},min_score:0.5}},
 {id:"up2", kind:"kb.upsert", needs:["s1","s2","s3","s4"], input:{collection:"vec",items:[{id:"a",vector:[0,0,0,1],text:"alpha2"}]}},
 {id:"s5", kind:"kb.search", needs:["up2"], input:{collection:"vec",vector:[0,0,0,1],k:1}},
 {id:"d1", kind:"kb.delete", needs:["s5"], input:{collection:"vec",ids:["b","zz"]}},
 {id:"d2", kind:"kb.delete", needs:["d1"], input:{collection:"vec",filter:{lang:"fr"}}},
 {id:"s6", kind:"kb.search", needs:["d2"], input:{collection:"vec",vector:[1,1,1,1],k:10}},
 {id:"tu", kind:"kb.upsert", input:{collection:"txt", items:[
   {id:"bread",text:"how to bake sourdough bread at home"},
   {id:"tax",text:"quarterly earnings of the telecom sector"},
   {id:"cake",text:"baking a chocolate cake"}]}},
 {id:"ts", kind:"kb.search", needs:["tu"], input:{collection:"txt",query:"sourdough bread baking",k:1}}]')
id=$(uid rt)
job "$id" "$steps" | kafka_put phx.jobs "$id"
r=$(reply "$id" 120)
check "round trip job succeeded" succeeded "$(jq -r .status <<<"$r")"
o() { jq -c ".outputs | $1" <<<"$r"; }
check "upsert: 4 stored" '{"upserted":4,"count":4,"evicted":0,"embedded":0}' "$(o .up)"
check "search: nearest first, text and metadata back" '["a","b"] ["alpha",{"lang":"en","year":2020}]' \
    "$(o '[.s1.hits[].id]') $(o '.s1.hits[0] | [.text, .metadata]')"
check "search: cosine score of the same direction is 1" 1 "$(o '.s1.hits[0].score | . * 1000 | round / 1000')"
check "filter: equality" '["a","c"]' "$(o '[.s2.hits[].id]')"
check "filter: range" '["b","d"]' "$(o '[.s3.hits[].id]')"
check "filter: \$in with min_score" '["b"]' "$(o '[.s4.hits[].id]')"
check "upsert: replaces in place" '["a","alpha2",{}]' "$(o '.s5.hits[0] | [.id, .text, .metadata]')"
check "delete by ids: only existing ones count" 1 "$(o .d1.deleted)"
check "delete by filter" 1 "$(o .d2.deleted)"
check "delete: gone from search" '["a","c"]' "$(o '[.s6.hits[].id] | sort')"
check "metric: the replica's copy holds the 2 records left" 2 \
    "$(curl -s "http://127.0.0.1:$(cat "$PHX_VAR/run/kb.admin")/metrics" |
        sed -n 's/^phx_kb_records{collection="vec"} //p')"
check "texts: embedded by the lexical embedder" 3 "$(o .tu.embedded)"
check "texts: query finds the related text" '"bread"' "$(o '.ts.hits[0].id')"

echo "# t=$SECONDS"
# --- 3. validation: each refused with a clear, non-retryable error (one job, one step each) -----
big=$(head -c 5000 /dev/zero | tr '\0' x)
cases='dim|kb.upsert|{"collection":"vec","items":[{"id":"x","vector":[1,2,3]}]}|invalid_input|dimension 3
inf|kb.upsert|{"collection":"vec","items":[{"id":"x","vector":[1,2,3,1e39]}]}|invalid_input|not a finite float32
zero|kb.upsert|{"collection":"vec","items":[{"id":"x","vector":[0,0,0,0]}]}|invalid_input|all zeros
empty|kb.upsert|{"collection":"vec","items":[{"id":"x","text":""}]}|invalid_input|neither a vector nor a non-empty text
meta|kb.upsert|{"collection":"vec","items":[{"id":"x","vector":[1,0,0,0],"metadata":{"m":"'$big'"}}]}|invalid_input|PHX_KB_MAX_META
dup|kb.upsert|{"collection":"vec","items":[{"id":"x","vector":[1,0,0,0]},{"id":"x","vector":[0,1,0,0]}]}|invalid_input|repeats id
badid|kb.upsert|{"collection":"vec","items":[{"id":"a b","vector":[1,0,0,0]}]}|invalid_input|id must be
imp|kb.upsert|{"collection":"vec","items":[{"id":"x","vector":[1,0,0,0],"importance":2}]}|invalid_input|importance
field|kb.upsert|{"collection":"vec","items":[{"id":"x","vector":[1,0,0,0],"vec":1}]}|invalid_input|unknown field vec
noitems|kb.upsert|{"collection":"vec","items":[]}|invalid_input|items must be
nocoll|kb.search|{"collection":"nope","vector":[1]}|no_collection|phx kb create nope
both|kb.search|{"collection":"vec","vector":[1,0,0,0],"query":"x"}|invalid_input|exactly one
op|kb.search|{"collection":"vec","vector":[1,0,0,0],"filter":{"y":{"$regex":"x"}}}|invalid_input|unknown operator
k|kb.search|{"collection":"vec","vector":[1,0,0,0],"k":0}|invalid_input|k must be
delall|kb.delete|{"collection":"vec","filter":{}}|invalid_input|at least one field
full|kb.upsert|{"collection":"hard","items":[{"id":"1","vector":[1,0]},{"id":"2","vector":[0,1]},{"id":"3","vector":[1,1]}]}|capacity_exceeded|pruning policy is none'
steps=$(while IFS='|' read -r name kind input _ _; do
    jq -cn --arg id "$name" --arg kind "$kind" --argjson input "$input" \
        '{id: $id, kind: $kind, input: $input, retry: {max_attempts: 1}}'
done <<<"$cases" | jq -cs .)
id=$(uid val)
job "$id" "$steps" | kafka_put phx.jobs "$id"
r=$(reply "$id" 120)
while IFS='|' read -r name _ _ code msg; do
    check "invalid $name: $code, not retryable, 1 attempt" "$code false 1" \
        "$(jq -r --arg s "$name" '.steps[$s] | "\(.error.code) \(.error.retryable) \(.attempts)"' <<<"$r")"
    check_contains "invalid $name: says why" "$msg" "$(jq -r --arg s "$name" '.steps[$s].error.message' <<<"$r")"
done <<<"$cases"
check "a refused upsert wrote nothing" 2 "$(redis HLEN 'phx:kb:{kb:vec}:rec')"

echo "# t=$SECONDS"
# --- 4. pruning -------------------------------------------------------------------------------
steps=$(jq -cn '[range(1; 6) as $i | {id: "c\($i)", kind: "kb.upsert",
    input: {collection: "cap", items: [{id: "c\($i)", vector: [1, $i]}]}} +
    (if $i > 1 then {needs: ["c\($i - 1)"]} else {} end)] +
  [{id: "s", kind: "kb.search", needs: ["c5"], input: {collection: "cap", vector: [1, 1], k: 10}},
   {id: "i1", kind: "kb.upsert", input: {collection: "imp", items: [{id: "keep1", vector: [1, 0], importance: 0.9},
                                                                   {id: "drop", vector: [0, 1], importance: 0.1}]}},
   {id: "i2", kind: "kb.upsert", needs: ["i1"], input: {collection: "imp", items: [{id: "keep2", vector: [1, 1], importance: 0.8}]}},
   {id: "t", kind: "kb.upsert", input: {collection: "ttl", items: [{id: "short", vector: [1, 0]},
      {id: "long", vector: [0, 1], ttl_s: 3600}, {id: "forever", vector: [1, 1], ttl_s: 0}]}}]')
id=$(uid prune)
job "$id" "$steps" | kafka_put phx.jobs "$id"
r=$(reply "$id" 120)
check "pruning job succeeded" succeeded "$(jq -r .status <<<"$r")"
check "capacity (lru): the 2 oldest evicted at once" "c3 c4 c5" "$(redis HKEYS 'phx:kb:{kb:cap}:rec' | sort | xargs)"
check "capacity: evicted ids gone from search" '["c3","c4","c5"]' "$(jq -c '[.outputs.s.hits[].id] | sort' <<<"$r")"
check "capacity (score): the least important evicted" "keep1 keep2" "$(redis HKEYS 'phx:kb:{kb:imp}:rec' | sort | xargs)"
sleep 1.2
r=$(kb "$(uid se)" kb.search '{"collection":"ttl","vector":[1,0],"k":10}')
check "ttl: an expired record is never served" '["forever","long"]' "$(jq -c '[.outputs.s.hits[].id] | sort' <<<"$r")"
# The periodic pruner (PHX_KB_PRUNE_INTERVAL_MS=1000) deletes it from Redis by itself.
for _ in $(seq 200); do [ "$(redis HEXISTS 'phx:kb:{kb:ttl}:rec' short)" = 0 ] && break; sleep 0.1; done
check "ttl: the periodic pruner deleted it from Redis" "0 1" "$(redis HEXISTS 'phx:kb:{kb:ttl}:rec' short) $(redis ZCARD 'phx:kb:{kb:ttl}:ttl')"
steps='[{"id":"u","kind":"kb.upsert","input":{"collection":"ttl","items":[{"id":"short2","vector":[1,0],"ttl_s":1}]}}]'
id=$(uid ttl2); job "$id" "$steps" | kafka_put phx.jobs "$id"; reply "$id" 120 >/dev/null
sleep 1.1
r=$(kb "$(uid pr)" kb.prune '{"collection":"ttl"}')
check "kb.prune: expired deleted (by it or the periodic pruner), 2 left" "0 2" \
    "$(redis HEXISTS 'phx:kb:{kb:ttl}:rec' short2) $(jq .outputs.s.count <<<"$r")"

echo "# t=$SECONDS"
# --- 5. corruption, worker kill -9, Redis restart: nothing acknowledged is lost, nothing corrupt
# is served. A byte of record c is flipped behind phx-kb's back; the restarted worker's rebuild
# must find it.
redis EVAL "local v = redis.call('HGET', KEYS[1], 'c'); redis.call('HSET', KEYS[1], 'c', string.sub(v, 1, -2) .. string.char((string.byte(v, -1) + 1) % 256))" 1 'phx:kb:{kb:vec}:rec' >/dev/null
"$PHX" kb create many --dim 2 >/dev/null
items=$(jq -cn '[range(0; 200) | {id: "n\(.)", vector: [(. + 1), (200 - .)], metadata: {i: .}}]')
r=$(kb "$(uid up)" kb.upsert "{\"collection\":\"many\",\"items\":$items}")
check "bulk upsert acknowledged" 200 "$(jq .outputs.s.count <<<"$r")"
redis_pid=$(cat "$PHX_VAR/run/redis.pid")
kill -KILL "$(cat "$PHX_VAR/run/kb.pid")"
kill -TERM "$redis_pid"
for _ in $(seq 100); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
"$ROOT/ops/dev/stack" up >/dev/null 2>&1
check "redis restart (AOF): every record back" 200 "$(redis HLEN 'phx:kb:{kb:many}:rec')"
steps='[{"id":"m","kind":"kb.search","input":{"collection":"many","vector":[1,0],"k":1000}},
        {"id":"x","kind":"kb.search","input":{"collection":"many","vector":[1,0],"k":5,"exact":true}},
        {"id":"h","kind":"kb.search","input":{"collection":"many","vector":[1,0],"k":5,"ef":50}},
        {"id":"v","kind":"kb.search","input":{"collection":"vec","vector":[0,1,0,0],"k":10}}]'
id=$(uid restart); job "$id" "$steps" | kafka_put phx.jobs "$id"; r=$(reply "$id" 120)
check "worker kill -9 + redis restart: search sees all 200" 200 "$(jq '.outputs.m.hits | length' <<<"$r")"
check "hnsw: a large collection is searched through its graph" "hnsw exact" "$(jq -r '"\(.outputs.m.method) \(.outputs.x.method)"' <<<"$r")"
check "hnsw: same top 5 as the exact scan" "$(jq -c '[.outputs.x.hits[].id]' <<<"$r")" "$(jq -c '[.outputs.h.hits[].id]' <<<"$r")"
check "corrupt: not served after the rebuild" '["a"]' "$(jq -c '[.outputs.v.hits[].id]' <<<"$r")"
check "corrupt: quarantined, the good ones not" "1 0 0" "$(redis HLEN 'phx:kb:{kb:vec}:quarantine') $(redis HEXISTS 'phx:kb:{kb:vec}:rec' c) $(redis HLEN 'phx:kb:{kb:many}:quarantine')"
check_contains "corrupt: reported with the reason" "crc mismatch" "$(redis HGET 'phx:kb:{kb:vec}:quarantine:why' c)"
check "corrupt: stats count it" 1 "$("$PHX" kb stats vec | jq .quarantined)"
check_contains "corrupt: logged" "record c is corrupt" "$(cat "$PHX_VAR/log/kb.log")"

echo "# t=$SECONDS"
# --- 6. two replicas: a delete made through either is invisible on both ------------------------
# The second replica has no embedder: section 7 uses it alone.
PHX_ADMIN_ADDR=127.0.0.1:0 PHX_KB_EMBEDDER=none "$PHX_BIN/phx-kb" >>"$PHX_VAR/log/kb2.log" 2>&1 &
kb2=$!
# The consumer group rebalances onto both: wait until the new replica has partitions.
for _ in $(seq 600); do grep -q "assigned" "$PHX_VAR/log/kb2.log" 2>/dev/null && break; sleep 0.1; done
r=$(kb "$(uid de)" kb.delete '{"collection":"many","filter":{"i":{"$lt":100}}}')
check "two replicas: delete by filter" 100 "$(jq .outputs.s.deleted <<<"$r")"
declare -a sj
for i in $(seq 16); do sj[i]=$(uid rs); kb_submit "${sj[i]}" kb.search '{"collection":"many","vector":[1,0],"k":1000}'; done
all=$(for _ in $(seq 240); do
    got=$(kcat -C -b "$KAFKA" -t phx.replies -o beginning -e -q -f '%k\t%s\n' 2>/dev/null)
    n=0; for i in $(seq 16); do grep -q "^${sj[i]}"$'\t' <<<"$got" && n=$((n + 1)); done
    [ "$n" = 16 ] && break; sleep 0.5; done; echo "$got")
res=$(kcat -C -b "$KAFKA" -t phx.results -o beginning -e -q -f '%k\t%s\n' 2>/dev/null)
bad=0
for i in $(seq 16); do
    r=$(awk -F'\t' -v k="${sj[i]}" '$1 == k { sub(/^[^\t]*\t/, ""); print; exit }' <<<"$all")
    [ "$(jq '[.outputs.s.hits[] | select(.metadata.i < 100)] | length' <<<"$r")" = 0 ] &&
        [ "$(jq '.outputs.s.hits | length' <<<"$r")" = 100 ] || bad=$((bad + 1))
done
check "two replicas: no search on either serves a deleted id" 0 "$bad"
workers=$(for i in $(seq 16); do awk -F'\t' -v k="${sj[i]}" '$1 == k { sub(/^[^\t]*\t/, ""); print }' <<<"$res" | jq -r .worker; done | sort -u | wc -l)
check "two replicas: the searches ran on both" 2 "$workers"

echo "# t=$SECONDS"
# --- 7. no embedder configured: a clear, non-retryable error -----------------------------------
check "bad PHX_KB_EMBEDDER: exit 2" 2 "$(PHX_KB_EMBEDDER=magic "$PHX_BIN/phx-kb" >/dev/null 2>&1 </dev/null; echo $?)"
# Stop the stack's replica (it leaves the group at once): the one without an embedder remains.
pid=$(cat "$PHX_VAR/run/kb.pid")
kill -TERM "$pid"
for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
r=$(kb "$(uid ne)" kb.upsert '{"collection":"txt","items":[{"id":"t","text":"some words"}]}')
check "no embedder: no_embedder, not retryable" "no_embedder false" "$(jq -r '"\(.steps.s.error.code) \(.steps.s.error.retryable)"' <<<"$r")"
check_contains "no embedder: says what to set" PHX_KB_EMBEDDER "$(jq -r .steps.s.error.message <<<"$r")"
kill -TERM "$kb2"; wait "$kb2" 2>/dev/null
echo "# t=$SECONDS"
