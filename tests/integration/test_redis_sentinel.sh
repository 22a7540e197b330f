#!/usr/bin/env bash
# test_redis_sentinel.sh -- Phoenix on Redis Sentinel: a master, one replica and three
# sentinels (redis-server --sentinel) on free loopback ports, every process pointed at the
# sentinels (PHX_REDIS_SENTINELS, PHX_REDIS_MASTER_NAME) with PHX_REDIS_WAIT_REPLICAS=1. While
# two-step jobs flow, `SENTINEL FAILOVER` promotes the replica; the clients must find the new
# master by themselves, and every job must end succeeded with exactly one reply and the right
# output: with WAIT nothing acknowledged may be lost (docs/operations/redis.md says why).
. "$(dirname "$0")/lib.sh"
N=${SENTINEL_JOBS:-90}
RATE=${SENTINEL_RATE:-30}
S=$(mktemp -d /tmp/phx-rcluster-sentinel.XXXXXX)
mapfile -t P < <("$PHX_BIN/phx-freeport" 5)
MP=${P[0]} RP=${P[1]}
SENTINELS="127.0.0.1:${P[2]},127.0.0.1:${P[3]},127.0.0.1:${P[4]}"
PIDS=()
sentinel_down() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
}
trap 'sentinel_down; rm -rf "$S"' EXIT

srv() { # srv NAME PORT ARGS...: a redis-server with AOF (as in production) in $S/NAME
    local name=$1 port=$2
    shift 2
    mkdir -p "$S/$name"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$S/$name" --appendonly yes \
        --appendfsync everysec --save "" --repl-diskless-sync-delay 0 "$@" >"$S/$name.log" 2>&1 &
    PIDS+=($!)
}
srv master "$MP"
srv replica "$RP" --replicaof 127.0.0.1 "$MP"
for i in 2 3 4; do
    # A sentinel rewrites its config file: one per sentinel, in the temp dir.
    printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor phx 127.0.0.1 %s 2\nsentinel down-after-milliseconds phx 1000\nsentinel failover-timeout phx 5000\n' \
        "${P[i]}" "$S" "$MP" >"$S/sentinel$i.conf"
    redis-server "$S/sentinel$i.conf" --sentinel >"$S/sentinel$i.log" 2>&1 &
    PIDS+=($!)
done
# Ready: the replica is in sync, and the sentinel asked to fail over (the first one the clients
# ask) knows the replica and the two other sentinels, which learn the new master from it.
sentinel_field() { redis-cli -p "${P[2]}" sentinel master phx | grep -A1 -x "$1" | tail -1; }
all_ready() {
    redis-cli -p "$RP" info replication | grep -q 'master_link_status:up' &&
        [ "$(sentinel_field num-other-sentinels)" = 2 ] && [ "$(sentinel_field num-slaves)" = 1 ]
}
ready=0
for _ in $(seq 150); do
    if all_ready; then ready=1 && break; fi
    sleep 0.2
done
check "sentinels see the master, the replica and each other" 1 "$ready"

export PHX_STACK_REDIS_URL=redis://127.0.0.1:$MP/0
export PHX_REDIS_SENTINELS=$SENTINELS PHX_REDIS_MASTER_NAME=phx PHX_REDIS_WAIT_REPLICAS=${SENTINEL_WAIT_REPLICAS:-1}
export PHX_STACK_POOLS="planner tools" PHX_SAFETY_GATES=false
export PHX_STEP_TIMEOUT_MS=15000 PHX_RETRY_MAX_ATTEMPTS=5
stack_up
# stack_cleanup exits (1 on a failed check): in a subshell, so the servers always stop.
trap '(stack_cleanup); rc=$?; sentinel_down; rm -rf "$S"; exit $rc' EXIT

# --- load: N two-step jobs at RATE/s; the failover lands in the middle -----------------------
RUN=$(date +%s%N | tail -c 8)
publish() { # publish FIRST LAST: jobs FIRST..LAST of the run, paced at RATE/s
    local i=0
    chain_jobs "s$RUN-" "$N" | sed -n "$1,$2p" | while IFS= read -r line; do
        printf '%s\n' "$line"
        i=$((i + 1))
        if [ $((i % (RATE / 10))) -eq 0 ]; then sleep 0.1; fi
    done | kcat -P -b "$KAFKA" -t phx.jobs -K $'\t' -X queue.buffering.max.ms=5 2>/dev/null
}
# The first third, then wait until jobs come through (the consumer groups have formed); only
# then the rest, so the failover lands while jobs are still arriving, however fast the machine
# (with everything published at once, a quick run had answered all of them before the failover).
publish 1 $((N / 3))
for _ in $(seq 300); do
    kcat -C -b "$KAFKA" -t phx.replies -o beginning -e -q -f '%k\n' 2>/dev/null | grep -q "^s$RUN-" && break
    sleep 0.1
done
publish $((N / 3 + 1)) "$N" &
LOAD=$!
replies_before=$(kcat -C -b "$KAFKA" -t phx.replies -o beginning -e -q -f '%k\n' 2>/dev/null | grep -c "^s$RUN-")
check "failover: the sentinels accept it" OK "$(redis-cli -p "${P[2]}" sentinel failover phx)"
t_fo=$SECONDS
moved=""
for _ in $(seq 100); do
    moved=$(redis-cli -p "${P[2]}" sentinel get-master-addr-by-name phx | tail -1)
    [ "$moved" = "$RP" ] && break
    sleep 0.1
done
check "failover: the replica is the master now" "$RP" "$moved"
echo "# sentinel: failover after $replies_before of $N replies, master moved in $((SECONDS - t_fo))s"
wait "$LOAD" 2>/dev/null

# --- verdict: every job once, right ------------------------------------------------------------
chain_verdict "s$RUN-" "$N"
# Every job's state is on the new master (the old one is its replica now, or will be).
final=$(for i in $(seq "$N"); do echo "HGET phx:job:{s$RUN-$i} state"; done |
    redis-cli -p "$RP" | grep -cx succeeded)
check "every job final on the promoted master" "$N" "$final"
# The clients found the new master by themselves: scripts ran on it (a replica applies a
# master's scripts as their effects, so EVALSHA calls there were sent by our clients).
evals=$(redis-cli -p "$RP" info commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p')
check "clients sent their scripts to the promoted master" 1 "$([ "${evals:-0}" -gt 0 ] && echo 1 || echo 0)"
