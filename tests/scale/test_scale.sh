#!/usr/bin/env bash
# test_scale.sh -- scale-out under failure: three replicas of every pool (planner, tools, exec,
# safety, kb, llm) share one stack (real redis-server, phx-devbroker, tests/fake_llm as the
# model provider); jobs that touch every pool arrive at a steady rate; one replica of each pool
# is killed with SIGKILL mid-run. Checks, in order:
#   - every topic has enough partitions for the replicas (12 >= 3 consumers per group);
#   - the consumer groups: before the kill the three members' assignments (logged by each
#     member's rebalance callback, lib/kafka.c) cover every partition of the pool's topics once;
#     after it the two survivors' do -- the killed member's partitions were taken over;
#   - work is spread: each replica's share of its pool's work before the kill, and each
#     survivor's after it (pools: the `worker` of every result on phx.results; the planner:
#     its own phx_messages_total on /metrics), and every partition the killed replica held saw
#     work done by a survivor after the kill;
#   - delivery: every job exactly one reply, succeeded, every output right; in Redis every job
#     and step final, each step's attempt counter equal to the tasks dispatched for it, no
#     timer left; no step outcome applied twice (one step.succeeded event per step) although
#     results were delivered more than once where a replica died holding them.
# Run by `make test-scale` (and at the end of `make test`), on its own rather than beside
# tests/run.sh's parallel tests: 18 sanitizer-built workers fill two cores by themselves.
# SCALE_JOBS_BEFORE, SCALE_JOBS_AFTER and SCALE_RATE change the load.
. "$(dirname "$0")/../integration/lib.sh"

RATE=${SCALE_RATE:-3}     # jobs per second
N1=${SCALE_JOBS_BEFORE:-45} # jobs sent before the kill
N2=${SCALE_JOBS_AFTER:-60}  # jobs sent after it
N=$((N1 + N2))
# The kill comes once a third of the first jobs' worth of work is answered, and the second
# batch is only sent after it: "mid-run" by work done, not by the clock, so both sides of the
# kill have enough work to judge shares by, however slow the machine is.
KILL_AFTER=$((N1 * 2 / 3))
POOL_NAMES="planner tools exec safety kb llm"
FAKE=$PHX_BIN/../tests/fake_llm
[ -x "$FAKE" ] || { not_ok "fake_llm built" "$FAKE missing"; exit 1; }
WORK=$(mktemp -d /tmp/phx-scale-it.XXXXXX)
"$FAKE" --port-file "$WORK/port" --dim 8 >/dev/null 2>"$WORK/fake.log" &
FAKE_PID=$!
for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
cat >"$WORK/providers.json" <<EOF2
{"providers": [{"name": "a", "base_url": "http://127.0.0.1:$(cat "$WORK/port")/a/v1", "model": "m-a",
  "embed_model": "e-a", "embed_dim": 8}]}
EOF2
export PHX_LLM_PROVIDERS=$WORK/providers.json
# Each replica is one member of its pool's group (one consumer per process); one lane each
# keeps 18 sanitizer-built workers' threads down.
export PHX_CONCURRENCY=1
export PHX_STACK_POOLS="planner:3 tools:3 exec:3 safety:3 kb:3 llm:3"
# A task whose partition waits for its new owner (the session timeout, 6 s, then the
# rebalance) should not time out meanwhile (a retry is harmless, but noise); a dispatch the
# killed planner marked but never sent is only recovered by this timeout, so it bounds the run.
export PHX_STEP_TIMEOUT_MS=45000 PHX_RETRY_MAX_ATTEMPTS=5 PHX_JOB_DEADLINE_MS=900000
# 18 sanitizer-built workers on two shared cores: every consumer polls the dev broker (which
# does not long-poll) every fetch.wait.max.ms, so the default 20 ms costs more CPU than the load
# itself; 100 ms only adds latency, which this test does not measure. The safety pool gets its
# work from explicit safety.scan steps rather than the gates (four scans a job would be).
export PHX_KAFKA_CONF_fetch_wait_max_ms=100 PHX_SAFETY_GATES=false
cleanup_scale() { kill "$FAKE_PID" 2>/dev/null; wait "$FAKE_PID" 2>/dev/null; rm -rf "$WORK"; }
stack_up
trap 'rc=0; (stack_cleanup) || rc=1; cleanup_scale; exit $rc' EXIT
RUN=$PHX_VAR/run
echo "# t=${SECONDS}s: stack up"
now_ms() { date +%s%3N; }

# --- partitions ------------------------------------------------------------------------------
topics_of() { case $1 in planner) echo "phx.jobs phx.results" ;; *) echo "phx.tasks.$1" ;; esac; }
nparts() { kcat -L -b "$KAFKA" -t "$1" -J 2>/dev/null | jq '.topics[0].partitions | length'; }
for t in phx.jobs phx.results phx.tasks.tools phx.tasks.exec phx.tasks.safety phx.tasks.kb phx.tasks.llm; do
    n=$(nparts "$t")
    if [ "${n:-0}" -ge 3 ]; then ok "$t has $n partitions (>= 3 replicas)"; else not_ok "$t partitions" "got [$n]"; fi
done
# every "topic:partition" of a pool, one per line
all_parts() {
    local t p
    for t in $(topics_of "$1"); do
        for p in $(seq 0 $(($(nparts "$t") - 1))); do echo "$t:$p"; done
    done
}
for pool in $POOL_NAMES; do all_parts "$pool" | sort >"$WORK/parts.$pool"; done

# --- the consumer group's assignment, as its members logged it --------------------------------
# held NAME: the partitions replica NAME holds now ("topic:p" lines), as its consumer logged
# its last rebalance (ops/dev/stack assignment).
held() { "$ROOT/ops/dev/stack" assignment "$1" | cut -d' ' -f2; }
# covered POOL NAME...: the members NAME... hold every partition of POOL exactly once
covered() {
    local pool=$1 n
    shift
    for n in "$@"; do held "$n"; done | sort >"$WORK/held"
    cmp -s "$WORK/held" "$WORK/parts.$pool"
}
replica_names() { echo "$1 $1.2 $1.3"; }
survivor_names() { echo "$1 $1.3"; }
wait_covered() { # wait_covered SECONDS POOL NAME...: 0 once covered
    local end=$((SECONDS + $1))
    shift
    until covered "$@"; do
        [ $SECONDS -ge $end ] && return 1
        sleep 1
    done
}
for pool in $POOL_NAMES; do
    # shellcheck disable=SC2046
    if wait_covered 120 "$pool" $(replica_names "$pool"); then
        ok "$pool: 3 members hold every partition once ($(for n in $(replica_names "$pool"); do held "$n" | grep -c .; done | xargs | tr ' ' /))"
    else
        not_ok "$pool: group formed" "$(for n in $(replica_names "$pool"); do echo "$n: $(held "$n" | xargs)"; done)"
    fi
done
echo "# t=${SECONDS}s: groups formed"
# pid -> replica name, for the `worker` field of results ("tools/HOST:PID")
for f in "$RUN"/*.pid; do echo "$(cat "$f") $(basename "$f" .pid)"; done >"$WORK/pids"

# --- the load ----------------------------------------------------------------------------------
"$PHX" kb create scale --dim 2 >/dev/null
RUN_ID=s$(date +%s%N | tail -c 7)
# Job i: a calc, an exec.run, a safety scan, a kb upsert and an llm.chat side by side, then a
# calc needing all of them.
gen_jobs() { # gen_jobs FROM TO
    local i
    for i in $(seq "$1" "$2"); do
        printf '%s-%d\t{"schema":"job.v1","id":"%s-%d","tenant":"default","steps":[' "$RUN_ID" "$i" "$RUN_ID" "$i"
        printf '{"id":"a","kind":"tool.calc","input":{"expr":"%d*3"}},' "$i"
        printf '{"id":"e","kind":"exec.run","input":{"lang":"sh","code":"echo $((%d+1))"}},' "$i"
        printf '{"id":"s","kind":"safety.scan","input":{"role":"user_prompt","text":"job %d"}},' "$i"
        printf '{"id":"k","kind":"kb.upsert","input":{"collection":"scale","items":[{"id":"%s-%d","vector":[1,%d]}]}},' "$RUN_ID" "$i" "$i"
        printf '{"id":"l","kind":"llm.chat","input":{"messages":[{"role":"user","content":"job %d"}]}},' "$i"
        printf '{"id":"f","kind":"tool.calc","needs":["a","e","s","k","l"],"input":{"expr":"{{steps.a.output.value}}+1"}}]}\n'
        if [ $((i % RATE)) -eq 0 ]; then sleep 1; fi
    done
}
send_jobs() { gen_jobs "$1" "$2" | kcat -P -b "$KAFKA" -t phx.jobs -K $'\t' -X queue.buffering.max.ms=5 2>/dev/null; }
send_jobs 1 "$N1" &
LOAD=$!
T_LOAD=$(now_ms)
echo "# scale: $N1 jobs at $RATE/s; killing one replica of each pool after $KILL_AFTER replies; then $N2 more"
answered() {
    kcat -C -b "$KAFKA" -t phx.replies -o beginning -e -q -f '%k\n' 2>/dev/null | grep -c "^$RUN_ID-"
}
end=$((SECONDS + 300))
while [ "$(answered)" -lt "$KILL_AFTER" ] && [ $SECONDS -lt $end ]; do sleep 0.5; done

# --- kill -9 one replica of each pool ----------------------------------------------------------
metric_of() { # metric_of NAME REGEX: sum of the matching samples on NAME's /metrics
    curl -s -m 5 "http://127.0.0.1:$(cat "$RUN/$1.admin")/metrics" |
        awk -v re="$2" '$0 ~ re { s += $NF } END { print s + 0 }'
}
jobs_re='^phx_messages_total[{]outcome="ok",topic="phx[.]jobs"[}]'
# The planners' job counts just before the kill (in parallel: the kill should land on time).
# A kill in the middle of a rebalance would say little about takeover: each group is whole first.
for pool in $POOL_NAMES; do
    # shellcheck disable=SC2046
    wait_covered 60 "$pool" $(replica_names "$pool") || not_ok "$pool: group whole before the kill"
done
scrapes=()
for n in $(replica_names planner); do
    (echo "$n $(metric_of "$n" "$jobs_re")" >"$WORK/prekill.$n") &
    scrapes+=($!)
done
wait "${scrapes[@]}"
for pool in $POOL_NAMES; do held "$pool.2" >"$WORK/victim.$pool"; done
T_KILL=$(now_ms)
for pool in $POOL_NAMES; do kill -9 "$(cat "$RUN/$pool.2.pid")"; done
cat "$WORK"/prekill.* >"$WORK/planner.prekill"
wait "$LOAD" 2>/dev/null
send_jobs $((N1 + 1)) "$N" &
LOAD=$!
echo "# t=${SECONDS}s: killed $(for p in $POOL_NAMES; do printf '%s.2 ' "$p"; done)$(((T_KILL - T_LOAD) / 1000))s into the load"

# --- the group rebalances onto the survivors ---------------------------------------------------
# All pools at once, each pool's takeover time noted when it is first seen.
pending=$POOL_NAMES
: >"$WORK/rebalanced"
# The deadline is checked after a full round, so every pool is looked at once more after it.
end=$((SECONDS + 180))
while [ -n "$pending" ]; do
    still=""
    for pool in $pending; do
        # shellcheck disable=SC2046
        if covered "$pool" $(survivor_names "$pool"); then
            echo "$pool $((($(now_ms) - T_KILL) / 1000)) $(for n in $(survivor_names "$pool"); do held "$n" | grep -c .; done | xargs | tr ' ' /)" >>"$WORK/rebalanced"
        else
            still="$still $pool"
        fi
    done
    pending=$still
    [ -n "$pending" ] && [ $SECONDS -lt $end ] || break
    sleep 1
done
for pool in $POOL_NAMES; do
    read -r _ t h < <(awk -v p="$pool" '$1 == p' "$WORK/rebalanced" 2>/dev/null)
    if [ -n "${t:-}" ]; then
        ok "$pool: survivors took over every partition (seen ${t}s after the kill; held $h)"
    else
        not_ok "$pool: rebalanced after the kill" "$(for n in $(survivor_names "$pool"); do echo "$n: $(held "$n" | xargs)"; done)"
    fi
done
echo "# t=${SECONDS}s: rebalanced"
wait "$LOAD" 2>/dev/null

# --- wait for every reply ----------------------------------------------------------------------
last=-1 still=0
while :; do
    kcat -C -b "$KAFKA" -t phx.replies -o beginning -e -q -f '%k\t%s\n' 2>/dev/null |
        awk -F'\t' -v r="$RUN_ID-" 'index($1, r) == 1' >"$WORK/replies"
    have=$(cut -f1 "$WORK/replies" | sort -u | grep -c .)
    [ "$have" -ge "$N" ] && break
    if [ "$have" = "$last" ]; then still=$((still + 1)); else still=0; fi
    [ $still -ge 40 ] && break # nothing moved for 20 s
    last=$have
    sleep 0.5
done
echo "# t=${SECONDS}s: $have of $N jobs answered $((($(now_ms) - T_LOAD) / 1000))s after the load began"

# --- replies: exactly one each, succeeded, right --------------------------------------------------
check "every job answered" "$N" "$have"
check "no job answered twice" "$have" "$(grep -c . "$WORK/replies")"
wrong=$(cut -f2- "$WORK/replies" | jq -r '[.job_id, .status, .outputs.a.value, .outputs.f.value,
        .outputs.e.stdout, .outputs.k.upserted, .outputs.l.text, .outputs.s.verdict] | @tsv' |
    awk -F'\t' '{ split($1, p, "-"); i = p[2] + 0
        if ($2 != "succeeded" || $3 != 3 * i || $4 != 3 * i + 1 || $5 != (i + 1) "\\n" || $6 != 1 ||
            $7 != "echo: job " i || $8 != "allow") { bad++; if (bad < 4) print "# wrong: " $0 > "/dev/stderr" } }
        END { print bad + 0 }')
check "every reply succeeded with the right outputs" 0 "$wrong"

# --- Redis: every job and step final, attempts = tasks dispatched, no timer left -----------------
for t in tools exec safety kb llm; do
    kcat -C -b "$KAFKA" -t "phx.tasks.$t" -o beginning -e -q -f '%p\t%T\t%s\n' 2>/dev/null |
        awk -F'\t' -v r="\"job_id\":\"$RUN_ID-" 'index($3, r)' | sed "s/^/$t\t/"
done >"$WORK/tasks"
# tasks on the topics per "job step": how many, the highest attempt, and attempts sent twice
cut -f4- "$WORK/tasks" | jq -r '"\(.job_id) \(.step_id) \(.attempt)"' | sort | uniq -c |
    awk '{ k = $2 " " $3; n[k]++; if ($4 > m[k]) m[k] = $4; if ($1 > 1) d[k] += $1 - 1 }
         END { for (k in n) print k, n[k], m[k], d[k] + 0 }' >"$WORK/dispatched"
redis --eval /dev/stdin >"$WORK/redis" <<EOF
local out = {}
for _, k in ipairs(redis.call('KEYS', 'phx:job:{$RUN_ID-*}')) do
  local id = string.match(k, '^phx:job:{([^}]*)}$')
  if id then
    local job = redis.call('HMGET', k, 'state', 'reply_sent')
    local steps = redis.call('HGETALL', k .. ':steps')
    for i = 1, #steps, 2 do
      local s = steps[i]
      if not string.find(s, ':') or string.match(s, '^safety:[^:]*$') then
        local att = redis.call('HGET', k .. ':steps', s .. ':attempt') or '0'
        table.insert(out, id .. ' ' .. s .. ' ' .. steps[i + 1] .. ' ' .. att .. ' ' .. (job[1] or '-') .. ' ' .. (job[2] or '-'))
      end
    end
  end
end
return out
EOF
jobs_final=$(awk '$5 == "succeeded" && $6 == 1 { print $1 }' "$WORK/redis" | sort -u | grep -c .)
check "Redis: every job succeeded, its reply confirmed" "$N" "$jobs_final"
steps_bad=$(awk '$3 != "succeeded"' "$WORK/redis" | grep -c .)
check "Redis: every step succeeded" 0 "$steps_bad"
# Redis's attempt counter against the tasks on the topics: the last attempt Redis counts is the
# last one sent, and no attempt was sent twice. An attempt counted with no task is the
# documented crash window (dispatch marked, the planner died before producing it), closed by
# the step timeout: counted and reported, not a failure.
att_bad=$(awk 'NR == FNR { m[$1 " " $2] = $4; next }
    { if (m[$1 " " $2] != $4) { bad++; if (bad < 4) print "# attempts: " $0 " last task " m[$1 " " $2] > "/dev/stderr" } }
    END { print bad + 0 }' "$WORK/dispatched" "$WORK/redis")
check "Redis: each step's attempt counter = its last task's attempt" 0 "$att_bad"
check "no attempt of a step dispatched twice" 0 "$(awk '{ s += $5 } END { print s + 0 }' "$WORK/dispatched")"
unsent=$(awk '{ s += $4 - $3 } END { print s + 0 }' "$WORK/dispatched")
timers=$(redis eval "local n = 0 for _, z in ipairs({'phx:timeouts', 'phx:delay', 'phx:deadlines'}) do for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do if string.find(m, '$RUN_ID-', 1, true) == 1 then n = n + 1 end end end return n" 0)
check "Redis: no timer left for a finished job (none stuck)" 0 "$timers"
[ "$timers" = 0 ] || redis eval "local o = {} for _, z in ipairs({'phx:timeouts', 'phx:delay', 'phx:deadlines'}) do for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do if string.find(m, '$RUN_ID-', 1, true) == 1 then o[#o + 1] = z .. ' ' .. m end end end return o" 0 | sed 's/^/#   timer left: /'

retried=$(awk '$4 > 1' "$WORK/redis" | grep -c .)

# --- applied once: one step outcome event per step, whatever was delivered twice ----------------
kcat -C -b "$KAFKA" -t phx.events -o beginning -e -q 2>/dev/null | grep -F "\"$RUN_ID-" |
    jq -r 'select(.type == "step.succeeded" or .type == "step.failed") | "\(.job_id) \(.step_id) \(.attempt)"' |
    sort | uniq -c | awk '$1 > 1' >"$WORK/twice"
check "no step outcome applied twice (step.succeeded events per step)" 0 "$(grep -c . "$WORK/twice")"
kcat -C -b "$KAFKA" -t phx.results -o beginning -e -q -f '%T\t%s\n' 2>/dev/null | grep -F "\"job_id\":\"$RUN_ID-" >"$WORK/results"
redelivered=$(cut -f2- "$WORK/results" | jq -r '"\(.job_id) \(.step_id) \(.attempt)"' | sort | uniq -d | grep -c .)
# Partitioned, not copied: a task is handled by one replica of its pool; only what a killed
# replica held (uncommitted: at most 200 ms of work, plus the message in hand) is done again.
tasks_n=$(grep -c . "$WORK/tasks")
check "each task handled once, not by every replica (results delivered twice <= 5 % of $tasks_n tasks)" \
    1 "$(awk -v d="$redelivered" -v t="$tasks_n" 'BEGIN { print (t > 0 && d * 20 <= t) ? 1 : 0 }')"
# Where the repeats came from, when there are any: per delivery, the pool, the replica and the
# time relative to the kill (s), so a failing run says whether the killed replica's uncommitted
# work, a survivor's revoked lane or something else did the work twice.
if [ "$redelivered" -gt 0 ]; then
    cut -f2- "$WORK/results" | jq -r '"\(.job_id)/\(.step_id)/\(.attempt) \(.worker)"' |
        sed 's|/[^ /]*:\([0-9]*\)$| \1|' | paste -d' ' - <(cut -f1 "$WORK/results") |
        awk -v tk="$T_KILL" 'NR == FNR { name[$1] = $2; next }
            { k = $1; n[k]++; d[k] = d[k] " " (($3 in name) ? name[$3] : "?" $3) "@" sprintf("%+.1f", ($4 - tk) / 1000) }
            END { for (k in n) if (n[k] > 1) print "#   repeat " k ":" d[k] }' "$WORK/pids" - | sort | head -60
fi
stale=0
for n in $(survivor_names planner); do
    stale=$((stale + $(metric_of "$n" '^phx_step_outcomes_total[{].*outcome="stale"')))
done
echo "# scale: results delivered more than once: $redelivered (stale at the surviving planners: $stale); steps retried: $retried; attempts marked but never sent (planner killed in between): $unsent"

# --- spread: per-replica work before and after the kill ------------------------------------------
# replica<TAB>phase (pre/post) per result, phase by the result's Kafka timestamp
cut -f2- "$WORK/results" | jq -r .worker | paste -d' ' - <(cut -f1 "$WORK/results") |
    sed 's|^\([^/]*\)/[^ ]*:\([0-9]*\) |\1 \2 |' |
    awk -v tk="$T_KILL" 'NR == FNR { name[$1] = $2; next }
    { ph = ($3 < tk) ? "pre" : "post"; print $1, ($2 in name) ? name[$2] : "?" $2, ph }' "$WORK/pids" - |
    sort | uniq -c >"$WORK/spread"
echo "# per-replica results (pool replica phase count):"
awk '{ print "#   " $2, $3, $4, $1 }' "$WORK/spread"
# share POOL NAME PHASE: NAME's percent of POOL's results in PHASE
share() { awk -v p="$1" -v n="$2" -v ph="$3" '$2 == p && $4 == ph { t += $1; if ($3 == n) m += $1 } END { print (t ? int(100 * m / t) : 0) }' "$WORK/spread"; }
for pool in tools exec safety kb llm; do
    for n in $(replica_names "$pool"); do
        s=$(share "$pool" "$n" pre)
        if [ "$s" -ge 10 ]; then ok "$pool: $n did $s % before the kill"; else not_ok "$pool: $n share before the kill" "$s % (< 10)"; fi
    done
    for n in $(survivor_names "$pool"); do
        s=$(share "$pool" "$n" post)
        if [ "$s" -ge 10 ]; then ok "$pool: $n did $s % after the kill"; else not_ok "$pool: $n share after the kill" "$s % (< 10)"; fi
    done
    # every partition the killed replica held saw a result from a survivor after the kill
    orphan=0
    while IFS=: read -r t p; do
        got=$(awk -F'\t' -v pool="$pool" -v p="$p" -v tk="$T_KILL" '$1 == pool && $2 == p && $3 > tk' "$WORK/tasks" |
            cut -f4- | jq -r '"\(.job_id) \(.step_id) \(.attempt)"' | sort -u >"$WORK/pt"
            cut -f2- "$WORK/results" | jq -r 'select(.worker | startswith("'"$pool"'/")) | "\(.job_id) \(.step_id) \(.attempt) \(.worker)"' |
            awk 'NR == FNR { want[$1 " " $2 " " $3] = 1; next } ($1 " " $2 " " $3) in want { print $4 }' "$WORK/pt" - |
            grep -vc ":$(cat "$RUN/$pool.2.pid")$")
        [ "${got:-0}" -ge 1 ] || orphan=$((orphan + 1))
    done <"$WORK/victim.$pool"
        [ -s "$WORK/victim.$pool" ] || not_ok "$pool: the killed replica held partitions"
    check "$pool: every partition of the killed replica ($(xargs <"$WORK/victim.$pool")) done by survivors after the kill" 0 "$orphan"
done
# The planner: messages from its own /metrics (the killed one's as scraped just before the kill).
pre_total=$(awk '{ s += $2 } END { print s }' "$WORK/planner.prekill")
echo "# planner phx.jobs messages before the kill: $(xargs <"$WORK/planner.prekill")"
while read -r n c; do
    s=$((pre_total ? 100 * c / pre_total : 0))
    if [ "$s" -ge 10 ]; then ok "planner: $n took $s % of the jobs before the kill"; else not_ok "planner: $n share before the kill" "$s % (< 10)"; fi
done <"$WORK/planner.prekill"
post=""
for n in $(survivor_names planner); do
    c=$(metric_of "$n" "$jobs_re")
    p=$(awk -v n="$n" '$1 == n { print $2 }' "$WORK/planner.prekill")
    post="$post $n:$((c - p))"
    if [ $((c - p)) -ge 1 ]; then ok "planner: $n took $((c - p)) jobs after the kill"; else not_ok "planner: $n after the kill" "$((c - p))"; fi
done
echo "# planner phx.jobs messages after the kill:$post"
