#!/usr/bin/env bash
# test_exec_attacks.sh -- the exec.run sandbox under attack, through the real pipeline.
#
# Each case is a small hostile program submitted as an exec.run step of its own job (raw Kafka
# -> planner -> phx-exec -> phx.replies). The program prints what it managed to do; the case
# asserts the expected defence with a jq expression over the step's output. Python probes run
# each attempt in a forked child, so "killed SIGSYS" (the seccomp default action) is printed
# by the parent instead of ending the program. All jobs are submitted first and collected
# afterwards, so the pool works on several at once. After the suite the host must be
# unchanged: a canary file, the Redis and broker processes, the hostname, /proc/sys, and no
# process left running as the sandbox's host uid.
#
# Needs root (or the privileges in docs/security.md); skips otherwise.
. "$(dirname "$0")/../integration/lib.sh"
if [ "$(id -u)" != 0 ]; then
    echo "# SKIPPED: the exec sandbox needs root (see docs/security.md)"
    exit 0
fi
[ -x "$PHX_BIN/phx-exec" ] || { not_ok "phx-exec built" "$PHX_BIN/phx-exec missing"; exit 1; }
export PHX_STACK_POOLS="planner exec"
# No phx-safety in this stack: safety gates (docs/safety.md) are tested in test_safety_gates.sh.
export PHX_SAFETY_GATES=false
export PHX_CONCURRENCY=2
# The host uid sandboxes run as, this run's own: "no sandbox process left" below counts the
# processes of that uid, and other tests' exec workers (run alongside, tests/run.sh) have
# sandboxes running under the default one.
SANDBOX_UID=$((300000 + $$ % 100000))
export PHX_EXEC_HOST_UID=$SANDBOX_UID PHX_EXEC_HOST_GID=$SANDBOX_UID
stack_up
# lib.sh's EXIT trap reports failures but keeps the script's exit status: make them count.
trap 'stack_cleanup || exit 1' EXIT

# --- host state before --------------------------------------------------------------------
CANARY=$(mktemp /tmp/phx-canary.XXXXXX)
echo intact >"$CANARY"
REDIS_PID=$(cat "$PHX_VAR/run/redis.pid")
BROKER_PID=$(cat "$PHX_VAR/run/devbroker.pid")
HOSTNAME0=$(hostname)
PIDMAX0=$(cat /proc/sys/kernel/pid_max)
BROKER_PORT=${PHX_KAFKA_BROKERS##*:}
# A host service on an abstract unix socket: the sandbox must not reach it.
ABSTRACT="phx-test-$$-$RANDOM"
python3 -c "
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind('\0$ABSTRACT'); s.listen(1); s.settimeout(120)
try:
    c, _ = s.accept(); open('$CANARY.abstract', 'w').write('reached')
except Exception: pass
" &
ABSTRACT_PID=$!

# --- the probes ---------------------------------------------------------------------------
# The attack programs live in ops/redteam/exec/ (shared with `phx redteam`): each file's first
# lines say what this test asserts about the step's output (`# check:` a jq expression) and
# the limits it runs with (`# limits:`), lines that are not sent with the code; @NAME@
# placeholders are the host details it probes.
RT=$ROOT/ops/redteam
PRELUDE=$(cat "$RT/exec-prelude.py")
NAMES=()
declare -A JOB CHECK
for f in "$RT"/exec/*.py "$RT"/exec/*.sh; do
    name=$(basename "${f%.*}")
    case $f in *.py) lang=python ;; *) lang=sh ;; esac
    code=$(sed -e "s|@REDIS_PORT@|$PHX_REDIS_PORT|g" -e "s|@KAFKA_PORT@|$BROKER_PORT|g" \
        -e "s|@ABSTRACT@|$ABSTRACT|g" -e "s|@HOST_PATHS@|$PHX_VAR $CANARY|g" \
        -e '/^# \(check\|limits\): /d' "$f")
    [ "$lang" = python ] && code="$PRELUDE"$'\n'"$code"
    limits=$(sed -n 's/^# limits: //p' "$f")
    id=$(uid atk)
    NAMES+=("$name")
    JOB[$name]=$id
    CHECK[$name]=$(sed -n 's/^# check: //p' "$f")
    job "$id" "$(jq -cn --arg lang "$lang" --arg code "$code" --argjson limits "${limits:-{\}}" \
        '[{id: "x", kind: "exec.run", timeout_ms: 120000,
           input: {lang: $lang, code: $code, limits: $limits}}]')" | kafka_put phx.jobs "$id"
done
check "attack programs found" yes "$([ ${#NAMES[@]} -ge 39 ] && echo yes || echo no)"

# --- collect --------------------------------------------------------------------------------
for name in "${NAMES[@]}"; do
    r=$(reply "${JOB[$name]}" 180)
    st=$(jq -r .status <<<"$r" 2>/dev/null)
    if [ "$st" != succeeded ]; then
        not_ok "attack $name: step ran" "status [$st] $(jq -c '.steps.x.error // .error' <<<"$r" 2>/dev/null)"
        continue
    fi
    out=$(jq -c .outputs.x <<<"$r")
    got=$(jq -r "${CHECK[$name]}" <<<"$out" 2>&1)
    if [ "$got" = true ]; then ok "attack $name"; else
        not_ok "attack $name" "check ${CHECK[$name]} on ${out:0:1500}"
    fi
done

# --- the host is unchanged ------------------------------------------------------------------
sleep 1
check "host: canary file intact" intact "$(cat "$CANARY")"
check "host: abstract socket not reached" no "$([ -e "$CANARY.abstract" ] && echo yes || echo no)"
check "host: redis alive" yes "$(kill -0 "$REDIS_PID" 2>/dev/null && echo yes || echo no)"
check "host: broker alive" yes "$(kill -0 "$BROKER_PID" 2>/dev/null && echo yes || echo no)"
check "host: redis answers" PONG "$(redis ping)"
check "host: hostname unchanged" "$HOSTNAME0" "$(hostname)"
check "host: /proc/sys unchanged" "$PIDMAX0" "$(cat /proc/sys/kernel/pid_max)"
check "host: no sandbox process left" "" "$(pgrep -u "$SANDBOX_UID" | tr '\n' ' ')"
check "host: phx-exec still ready" ready "$(curl -s "http://127.0.0.1:$(cat "$PHX_VAR/run/exec.admin")/readyz" | jq -r '.status // empty' 2>/dev/null || true)"
kill "$ABSTRACT_PID" 2>/dev/null
rm -f "$CANARY" "$CANARY.abstract"
