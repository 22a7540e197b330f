#!/usr/bin/env bash
# test_redis_cluster.sh -- Phoenix on a real Redis Cluster: three primaries (redis-server
# --cluster-enabled yes on free loopback ports, joined by `redis-cli --cluster create`), every
# process routing by key slot (PHX_REDIS_CLUSTER_NODES, lib/redis.c). Two-step chains through
# Kafka and a fan-out/fan-in DAG plus status reads through the ingress (API key, rate limits,
# idempotency key, tenant listing: the global keys) run while 300 slots move from the first
# primary to the second and the slot of the planner's retry timers to the third (MOVED, ASK).
# Every job must succeed once with the right output, the planner must have followed MOVED, and
# the jobs' keys must be spread over all three primaries.
. "$(dirname "$0")/lib.sh"
N=${CLUSTER_JOBS:-60}
S=$(mktemp -d /tmp/phx-rcluster-cluster.XXXXXX)
# Three client ports and three cluster-bus ports (by default the bus is port + 10000, which
# a free port above 55535 cannot have).
mapfile -t FP < <("$PHX_BIN/phx-freeport" 6)
P=("${FP[@]:0:3}")
BUS=("${FP[@]:3:3}")
PIDS=()
cluster_down() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
}
trap 'cluster_down; rm -rf "$S"' EXIT
for i in 0 1 2; do
    p=${P[i]}
    mkdir -p "$S/$p"
    redis-server --bind 127.0.0.1 --port "$p" --cluster-port "${BUS[i]}" --dir "$S/$p" \
        --cluster-enabled yes --cluster-config-file "$S/$p/nodes.conf" --appendonly yes \
        --appendfsync everysec --save "" >"$S/$p.log" 2>&1 &
    PIDS+=($!)
done
for p in "${P[@]}"; do
    for _ in $(seq 50); do redis-cli -p "$p" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
done
redis-cli --cluster create "127.0.0.1:${P[0]}" "127.0.0.1:${P[1]}" "127.0.0.1:${P[2]}" \
    --cluster-yes >"$S/create.log" 2>&1
cluster_ok() {
    local p
    for p in "${P[@]}"; do redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok' || return 1; done
}
ok_state=0
for _ in $(seq 100); do if cluster_ok; then ok_state=1 && break; fi; sleep 0.1; done
check "three primaries form a cluster" 1 "$ok_state"
check "each primary serves a third of the slots" 3 "$(redis-cli -p "${P[0]}" cluster nodes | grep -c master)"

export PHX_STACK_REDIS_URL=redis://127.0.0.1:${P[0]}/0
export PHX_REDIS_CLUSTER_NODES="127.0.0.1:${P[0]},127.0.0.1:${P[1]},127.0.0.1:${P[2]}"
export PHX_STACK_POOLS="planner tools" PHX_SAFETY_GATES=false
stack_up
# stack_cleanup exits (1 on a failed check): in a subshell, so the servers always stop.
trap '(stack_cleanup); rc=$?; cluster_down; rm -rf "$S"; exit $rc' EXIT
A="Authorization: Bearer $PHX_API_KEY"

# --- the load: chains through Kafka, the DAG and reads through the ingress -------------------
RUN=$(date +%s%N | tail -c 8)
chain_jobs "k$RUN-" "$N" | kcat -P -b "$KAFKA" -t phx.jobs -K $'\t' 2>/dev/null
# Slots move while the chains run: the clients meet MOVED (and ASK during the migration).
ID0=$(redis-cli -p "${P[0]}" cluster myid)
ID1=$(redis-cli -p "${P[1]}" cluster myid)
redis-cli --cluster reshard "127.0.0.1:${P[0]}" --cluster-from "$ID0" --cluster-to "$ID1" \
    --cluster-slots 300 --cluster-yes >"$S/reshard.log" 2>&1 &
RESHARD=$!
# And the slot of phx:delay (2585, on the first primary), which the planner's tick reads every
# 50 ms, moves to the third primary the way redis-cli does it: so the planner must follow a MOVED.
move_slot() { # move_slot SLOT FROM_PORT TO_PORT
    local fid tid keys p
    fid=$(redis-cli -p "$2" cluster myid)
    tid=$(redis-cli -p "$3" cluster myid)
    redis-cli -p "$3" cluster setslot "$1" importing "$fid" >/dev/null
    redis-cli -p "$2" cluster setslot "$1" migrating "$tid" >/dev/null
    while keys=$(redis-cli -p "$2" cluster getkeysinslot "$1" 100) && [ -n "$keys" ]; do
        # shellcheck disable=SC2086
        redis-cli -p "$2" migrate 127.0.0.1 "$3" "" 0 5000 keys $keys >/dev/null
    done
    for p in "${P[@]}"; do redis-cli -p "$p" cluster setslot "$1" node "$tid" >/dev/null; done
}
check "phx:delay lives in slot 2585" 2585 "$(redis-cli -p "${P[0]}" cluster keyslot phx:delay)"
move_slot 2585 "${P[0]}" "${P[2]}"
jq -cn '{steps: [
  {id:"x", kind:"tool.calc", input:{expr:"6*7"}},
  {id:"y", kind:"tool.calc", input:{expr:"10+1"}},
  {id:"z", kind:"tool.calc", input:{expr:"2*2"}},
  {id:"sum", kind:"tool.calc", needs:["x","y","z"],
   input:{expr:"{{steps.x.output.value}}+{{steps.y.output.value}}+{{steps.z.output.value}}"}}]}' >"$S/dag.json"
out=$(api POST /v1/jobs "$S/dag.json" -H "$A" -H "Idempotency-Key: dag-$RUN")
check "DAG accepted by the ingress" 202 "${out%% *}"
dag=$(jq -r .job_id <<<"${out#* }")
again=$(api POST /v1/jobs "$S/dag.json" -H "$A" -H "Idempotency-Key: dag-$RUN")
check "idempotency key: the same job again" "200 $dag" "${again%% *} $(jq -r .job_id <<<"${again#* }")"
r=$(reply "$dag" 60)
check "DAG succeeded: fan-in of three steps" "succeeded 57" "$(jq -r '"\(.status) \(.outputs.sum.value)"' <<<"$r")"
view=$(api GET "/v1/jobs/$dag" "" -H "$A")
check "job view read back through the ingress" "200 succeeded" "${view%% *} $(jq -r .state <<<"${view#* }")"
list=$(api GET "/v1/jobs?limit=5" "" -H "$A")
check_contains "tenant listing names the job" "$dag" "$list"
wait "$RESHARD"
check "300 slots moved to the second primary mid-run" 0 $?
metrics=$(curl -s "http://127.0.0.1:$(cat "$PHX_VAR/run/planner.admin")/metrics")
echo "# cluster: planner: $(grep '^phx_redis_redirects_total' <<<"$metrics" | tr '\n' ' ')"
moved=$(sed -n 's/^phx_redis_redirects_total{kind="moved"} \([0-9]*\).*/\1/p' <<<"$metrics")
check "the planner followed MOVED" 1 "$([ "${moved:-0}" -gt 0 ] && echo 1 || echo 0)"

# --- verdict ---------------------------------------------------------------------------------
chain_verdict "k$RUN-" "$N"
# Spread: each primary holds some of the jobs (a job's three keys share its slot).
spread=""
for p in "${P[@]}"; do
    spread="$spread $(redis-cli -p "$p" --scan --pattern "phx:job:{k$RUN-*}" | grep -c .)"
done
echo "# cluster: job keys per primary:$spread"
check "job keys on all three primaries" 3 "$(for c in $spread; do [ "$c" -gt 0 ] && echo x; done | grep -c x)"
ok_state=0
cluster_ok && ok_state=1
check "the cluster is healthy after the reshard" 1 "$ok_state"
