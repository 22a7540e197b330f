#!/usr/bin/env bash
# test_lifecycle.sh -- process lifecycle: bad configuration exits 2 naming the variable,
# --help documents every option, and SIGTERM in the middle of a burst drains without losing
# or repeating work (the restarted processes finish every job, one reply each).
. "$(dirname "$0")/lib.sh"

# --- 1. bad configuration: exit 2 and the message names the variable ----------------------
# binary | VAR=value | text the error must contain
while IFS='|' read -r bin assign want; do
    [ -z "$bin" ] && continue
    out=$(env "$assign" "$PHX_BIN/$bin" 2>&1 </dev/null)
    rc=$?
    check "bad config $bin $assign: exit 2" 2 "$rc"
    check_contains "bad config $bin $assign: names it" "$want" "$out"
done <<'EOF'
phx-planner|PHX_CONCURRENCY=0|PHX_CONCURRENCY=0
phx-planner|PHX_STEP_TIMEOUT_MS=soon|PHX_STEP_TIMEOUT_MS=soon
phx-planner|PHX_SHUTDOWN_GRACE_MS=0|PHX_SHUTDOWN_GRACE_MS=0
phx-planner|PHX_LOG_LEVEL=loud|PHX_LOG_LEVEL=loud
phx-planner|PHX_REDIS_URL=http://x|PHX_REDIS_URL
phx-planner|PHX_CONFIG_FILE=/nonexistent/phx.json|PHX_CONFIG_FILE
phx-tools|PHX_FETCH_ALLOW_CIDRS=10.0.0.0/99|CIDR
phx-tools|PHX_FETCH_MAX_BODY=-1|PHX_FETCH_MAX_BODY
phx-ingress|PHX_INGRESS_MAX_BODY=12x|PHX_INGRESS_MAX_BODY
phx-ingress|PHX_KAFKA_CONF_no_such_property=1|PHX_KAFKA_CONF_no_such_property
EOF
for bin in phx-planner phx-tools phx-ingress; do
    out=$("$PHX_BIN/$bin" --help)
    check "$bin --help: exit 0" 0 $?
    check_contains "$bin --help: documents options" PHX_REDIS_URL "$out"
    "$PHX_BIN/$bin" --frobnicate >/dev/null 2>&1
    check "$bin unknown argument: exit 2" 2 $?
done
out=$("$PHX_BIN/phx-devbroker" --help)
check_contains "phx-devbroker --help: says dev only" "not" "$out"
"$PHX_BIN/phx-devbroker" --brokers zero >/dev/null 2>&1
check "phx-devbroker bad option: exit 2" 2 $?

# --- 2. SIGTERM drains: nothing lost, nothing done twice -----------------------------------
# Step timeouts far beyond the restart, so any second attempt would come from the drain itself
# (on a loaded machine the group rejoin alone can outlast the 30 s default).
export PHX_STEP_TIMEOUT_MS=180000
stack_up
N=250
ids=()
: >"$PHX_VAR/burst"
for i in $(seq $N); do
    id=$(uid drain$i)
    ids+=("$id")
    printf '%s\t%s\n' "$id" "$(job "$id" '[{"id":"a","kind":"tool.calc","input":{"expr":"'"$i"'*2"}},
                {"id":"b","kind":"tool.calc","input":{"expr":"{{steps.a.output.value}}+1"},"needs":["a"]}]')" \
        >>"$PHX_VAR/burst"
done
kcat -P -b "$KAFKA" -t phx.jobs -K $'\t' -l "$PHX_VAR/burst" 2>/dev/null
# Stop in the thick of it: as soon as the first replies appear, while jobs are in flight.
timeout 60 kcat -C -b "$KAFKA" -t phx.replies -o beginning -c 1 -q >/dev/null 2>&1
for name in planner tools; do
    kill -TERM "$(cat "$PHX_VAR/run/$name.pid")"
done
for name in planner tools; do
    pid=$(cat "$PHX_VAR/run/$name.pid")
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    check "SIGTERM: $name stopped" gone "$(kill -0 "$pid" 2>/dev/null && echo running || echo gone)"
    check_contains "SIGTERM: $name drained and exited 0" '"stopped (exit 0)"' "$(tail -n 3 "$PHX_VAR/log/$name.log")"
done
done_before=$(kcat -C -b "$KAFKA" -t phx.replies -o beginning -e -q 2>/dev/null | grep -c . || true)
echo "# replies before restart: $done_before of $N"
"$ROOT/ops/dev/stack" up >/dev/null 2>&1
check "restart: stack up again" 0 $?
# Wait for the replies of all N jobs, then check each against one dump of the topic.
for _ in $(seq 1200); do
    [ "$(kcat -C -b "$KAFKA" -t phx.replies -o beginning -e -q -f '%k\n' 2>/dev/null | sort -u | grep -c .)" -ge $N ] && break
    sleep 0.1
done
kcat -C -b "$KAFKA" -t phx.replies -o beginning -e -q -f '%k\t%s\n' 2>/dev/null >"$PHX_VAR/replies"
missing=0
twice=0
wrong=0
for i in $(seq $N); do
    id=${ids[$((i - 1))]}
    r=$(awk -F'\t' -v k="$id" '$1 == k { sub(/^[^\t]*\t/, ""); print; exit }' "$PHX_VAR/replies")
    [ -z "$r" ] && { missing=$((missing + 1)); continue; }
    [ "$(jq -r .outputs.b.value <<<"$r")" = "$((i * 2 + 1))" ] || wrong=$((wrong + 1))
done
# Attempt counters of every step, in one Redis round trip per job.
for id in "${ids[@]}"; do
    [ "$(redis hmget "phx:job:{$id}:steps" a:attempt b:attempt | tr '\n' ' ')" = "1 1 " ] || twice=$((twice + 1))
done
check "drain: every job finished" 0 "$missing"
check "drain: every output right" 0 "$wrong"
check "drain: no step ran twice" 0 "$twice"
check "drain: one reply per job" "$N" "$(cut -f1 "$PHX_VAR/replies" | grep -c .)"

# --- 3. Redis restart: state survives (AOF), the pipeline resumes --------------------------
id=$(uid aof)
job "$id" '[{"id":"a","kind":"tool.calc","input":{"expr":"3*3"}}]' | kafka_put phx.jobs "$id"
reply "$id" >/dev/null
rpid=$(cat "$PHX_VAR/run/redis.pid")
redis shutdown >/dev/null 2>&1 || true
for _ in $(seq 100); do kill -0 "$rpid" 2>/dev/null || break; sleep 0.1; done
"$ROOT/ops/dev/stack" up >/dev/null 2>&1
check "redis restart: job state kept" succeeded "$(redis hget "phx:job:{$id}" state)"
id=$(uid after-redis)
job "$id" '[{"id":"a","kind":"tool.calc","input":{"expr":"4*4"}}]' | kafka_put phx.jobs "$id"
check "redis restart: pipeline resumes" 16 "$(reply "$id" 60 | jq -r .outputs.a.value)"
