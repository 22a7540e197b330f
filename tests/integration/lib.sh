# tests/integration/lib.sh -- shared helpers for integration tests (sourced, not run).
#
# Every test file starts its own stack (real redis-server and phx-devbroker on free loopback
# ports, state in a temp dir) through ops/dev/stack, talks to it only through its public
# interfaces (HTTP, Kafka topics via kcat, the phx CLI, Redis for inspection), and stops it.
# Results are TAP-like lines; the file exits non-zero if any check failed. Processes run from
# $PHX_BIN (the sanitizer build under `make test`); their logs are scanned for sanitizer
# reports when the stack stops.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PHX_BIN=${PHX_BIN:-$ROOT/build/bin}
PHX=$PHX_BIN/phx
T_FAIL=0
T_PASS=0
T_NAME=$(basename "$0" .sh)

ok() { T_PASS=$((T_PASS + 1)); echo "ok - $T_NAME: $1"; }
not_ok() { T_FAIL=$((T_FAIL + 1)); echo "not ok - $T_NAME: $1${2:+ -- $2}"; }

# check NAME EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "want [$2] got [$3]"; fi
}

# check_contains NAME NEEDLE HAYSTACK
check_contains() {
    case "$3" in *"$2"*) ok "$1" ;; *) not_ok "$1" "[$2] not in [${3:0:400}]" ;; esac
}

# Processes and directories a test starts beside its stack (test doubles, work dirs):
# stack_cleanup stops and removes them after the stack -- also when stack_up fails and exits,
# which a test's own trap, set after stack_up, would miss (a fake LLM server outlived a
# failed test that way).
T_PIDS=()
T_DIRS=()

stack_up() {
    PHX_VAR=$(mktemp -d /tmp/phx-it.XXXXXX)
    export PHX_VAR
    trap stack_cleanup EXIT
    if ! "$ROOT/ops/dev/stack" up >"$PHX_VAR/stack-up.out" 2>&1; then
        cat "$PHX_VAR/stack-up.out" >&2
        tail -n 20 "$PHX_VAR"/log/*.log >&2
        not_ok "stack up"
        exit 1
    fi
    # shellcheck disable=SC1091
    . "$PHX_VAR/stack.env"
    KAFKA=$PHX_KAFKA_BROKERS
}

# Scan logs for sanitizer reports: a leak or UB in any process fails the test file.
stack_cleanup() {
    "$ROOT/ops/dev/stack" down >/dev/null 2>&1 || true
    # After the stack: its keep-alive connections would otherwise hold a double's shutdown.
    [ ${#T_PIDS[@]} -eq 0 ] || stop_procs "${T_PIDS[@]}"
    [ ${#T_DIRS[@]} -eq 0 ] || rm -rf "${T_DIRS[@]}"
    local bad
    bad=$(grep -l -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$PHX_VAR"/log/*.log 2>/dev/null || true)
    if [ -n "$bad" ]; then
        not_ok "sanitizer reports" "$bad"
        grep -h -A30 -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" $bad | head -80 >&2
    fi
    # PHX_TEST_KEEP=1 keeps the stack's logs of a passing run too (for timing questions).
    if [ "$T_FAIL" -eq 0 ] && [ "${PHX_TEST_KEEP:-0}" != 1 ]; then
        rm -rf "$PHX_VAR"
    else
        echo "# kept $PHX_VAR for inspection" >&2
    fi
    echo "# $T_NAME: $T_PASS passed, $T_FAIL failed"
    # The status of an EXIT trap is not the script's: exit explicitly.
    [ "$T_FAIL" -eq 0 ] || exit 1
}

# stop_procs PID...: SIGTERM, then SIGKILL after 10 s, and reap. For the test doubles a test
# starts itself: one stuck on its way out (a sanitizer-built fake_llm once hung 15 min in
# libmicrohttpd's shutdown) must not hold the suite.
stop_procs() {
    local p
    for p in "$@"; do kill "$p" 2>/dev/null; done
    for p in "$@"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    return 0
}

# kafka_put TOPIC KEY < value. A failed delivery says so as a "# " line (kcat's own words).
kafka_put() {
    local err
    err=$(kcat -P -b "$KAFKA" -t "$1" -k "$2" 2>&1 >/dev/null) ||
        { echo "# kafka_put $1 $2 failed: ${err:0:300}" >&2; return 1; }
}

# kafka_get TOPIC KEY [TIMEOUT_S]: the values keyed KEY on TOPIC (from the start), one per
# line, waiting up to TIMEOUT_S (default 20) for at least one.
kafka_get() {
    local out end=$((SECONDS + ${3:-20}))
    while :; do
        out=$(kcat -C -b "$KAFKA" -t "$1" -o beginning -e -q -f '%k\t%s\n' 2>/dev/null |
            awk -F'\t' -v k="$2" '$1 == k { sub(/^[^\t]*\t/, ""); print }')
        if [ -n "$out" ] || [ $SECONDS -ge $end ]; then break; fi
        sleep 0.2
    done
    printf '%s' "$out"
}

# reply ID [TIMEOUT_S]: the (first) reply for job ID on phx.replies. With none in time it says,
# on stderr as a "# " line (tests/run.sh shows those of a failed test), where the job stands:
# its partition on phx.jobs, its state and its steps' in Redis.
reply() {
    local r
    r=$(kafka_get phx.replies "$1" "${2:-20}" | head -n1)
    [ -n "$r" ] || reply_whereabouts "$1" "${2:-20}" >&2
    printf '%s\n' "$r"
}
reply_whereabouts() {
    local part state steps
    part=$(kcat -C -b "$KAFKA" -t phx.jobs -o beginning -e -q -f '%k %p\n' 2>/dev/null |
        awk -v k="$1" '$1 == k { print $2; exit }')
    state=$(redis hget "phx:job:{$1}" state 2>/dev/null)
    steps=$(redis hgetall "phx:job:{$1}:steps" 2>/dev/null | paste -sd' ' | cut -c1-300)
    echo "# no reply for $1 within $2 s: phx.jobs partition ${part:-none}, state ${state:-none}, steps: ${steps:-none} (at $(date +%T))"
}

# api METHOD PATH [BODY_FILE] [extra curl args...]: prints "CODE BODY"
api() {
    local method=$1 path=$2 body=${3:-}
    shift 3 2>/dev/null || shift $#
    local args=(-s -X "$method" "$PHX_INGRESS_URL$path" -w '\n%{http_code}')
    [ -n "$body" ] && args+=(--data-binary "@$body" -H 'Content-Type: application/json')
    local out
    out=$(curl "${args[@]}" "$@")
    echo "$(tail -n1 <<<"$out") $(head -n -1 <<<"$out")"
}

# job ID STEPS_JSON [EXTRA_FIELDS_JSON]: a job.v1 document
job() { jq -cn --arg id "$1" --argjson steps "$2" --argjson extra "${3:-{\}}" \
    '{schema: "job.v1", id: $id, tenant: "default", steps: $steps} + $extra'; }

# unique ID with a prefix
uid() { echo "$1-$(date +%s%N | tail -c 10)-$RANDOM"; }

redis() { redis-cli -p "$PHX_REDIS_PORT" "$@"; }

# chain_jobs PREFIX N: N two-step job.v1 lines "PREFIXi\tJSON" for kcat -K '\t' (a = 3i, then
# b = a + 1), the load of the failover tests; chain_verdict checks their replies.
chain_jobs() {
    local i
    for i in $(seq "$2"); do
        printf '%s%d\t{"schema":"job.v1","id":"%s%d","tenant":"default","steps":[{"id":"a","kind":"tool.calc","input":{"expr":"%d*3"}},{"id":"b","kind":"tool.calc","input":{"expr":"{{steps.a.output.value}}+1"},"needs":["a"]}]}\n' \
            "$1" "$i" "$1" "$i" "$i"
    done
}

# chain_verdict PREFIX N: wait until the N chain_jobs replied (or nothing new came for 30 s),
# then check every one replied exactly once, succeeded, with b = 3i + 1.
chain_verdict() {
    local p=$1 n=$2 have last=-1 still=0 got dups wrong f=$PHX_VAR/replies-$1
    while :; do
        kcat -C -b "$KAFKA" -t phx.replies -o beginning -e -q -f '%k\t%s\n' 2>/dev/null |
            awk -F'\t' -v p="$p" 'index($1, p) == 1' >"$f"
        have=$(cut -f1 "$f" | sort -u | grep -c .)
        [ "$have" -ge "$n" ] && break
        if [ "$have" = "$last" ]; then still=$((still + 1)); else still=0; fi
        [ $still -ge 30 ] && break
        last=$have
        sleep 1
    done
    sleep 1 # a duplicate would come right behind
    kcat -C -b "$KAFKA" -t phx.replies -o beginning -e -q -f '%k\t%s\n' 2>/dev/null |
        awk -F'\t' -v p="$p" 'index($1, p) == 1' >"$f"
    got=$(cut -f1 "$f" | sort -u | grep -c .)
    dups=$(($(grep -c . "$f") - got))
    wrong=$(cut -f2- "$f" | jq -r --arg p "$p" '"\(.job_id | ltrimstr($p)) \(.status) \(.outputs.b.value)"' |
        awk '{ if ($2 != "succeeded" || $3 != 3 * $1 + 1) bad++ } END { print bad + 0 }')
    echo "# $T_NAME: $got of $n jobs replied, $dups duplicate replies, $wrong wrong"
    check "every job replied (none lost)" "$n" "$got"
    check "exactly one reply per job" 0 "$dups"
    check "every reply succeeded with the right output" 0 "$wrong"
}
