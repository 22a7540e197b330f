#!/usr/bin/env bash
# tests/run.sh BUILD_DIR -- run every test: unit tests (cmocka binaries in BUILD_DIR/tests),
# integration and security tests (tests/{integration,security}/test_*.sh against BUILD_DIR/bin). Prints one line
# per test program and a summary; exits non-zero if anything failed.
#
# PHX_EVAL_DIR (default ../shared/eval) holds public evaluation data; tests that need it say
# plainly that they skip when it is absent. PHX_TEST_FILTER=REGEX runs only matching tests;
# PHX_TEST_JOBS=N runs N integration/security tests at once (default 3; 1 = one by one).
# PHX_TEST_KEEP=1 keeps every stack test's work dir (logs), not only a failing one's.
# A failing test prints its "not ok" lines, its "# " diagnostics (a reply that never came says
# where its job stood) and its stack processes' last warnings and errors: enough to read a CI
# failure whose machine, and kept work dir, are gone.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export PHX_BIN=$BUILD/bin
export PHX_EVAL_DIR=${PHX_EVAL_DIR:-$ROOT/../shared/eval}
case $PHX_EVAL_DIR in /*) ;; *) PHX_EVAL_DIR=$ROOT/$PHX_EVAL_DIR ;; esac
# Sanitizers: any report fails the program that made it.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=66}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
FILTER=${PHX_TEST_FILTER:-.}
LOGDIR=$BUILD/test-logs
mkdir -p "$LOGDIR"

[ -d "$PHX_EVAL_DIR" ] || echo "NOTE: $PHX_EVAL_DIR not found: tests that need evaluation data will SKIP"

pass=0
fail=0
failed=()
start=$SECONDS
run() { # run NAME COMMAND...
    local name=$1 t0=$SECONDS fail0=$fail
    shift
    grep -qE "$FILTER" <<<"$name" || return 0
    mkdir -p "$(dirname "$LOGDIR/$name.log")"
    if "$@" >"$LOGDIR/$name.log" 2>&1; then
        pass=$((pass + 1))
        printf 'PASS  %-32s %4ss\n' "$name" $((SECONDS - t0))
    else
        fail=$((fail + 1))
        failed+=("$name")
        printf 'FAIL  %-32s %4ss  (log: %s)\n' "$name" $((SECONDS - t0)) "$LOGDIR/$name.log"
        grep -E "not ok|FAILED|ERROR|Assert|runtime error" "$LOGDIR/$name.log" | head -20 | sed 's/^/      /'
        # The test's own diagnostics ("# ..." lines: figures, ids of the jobs that went
        # wrong), so a CI run whose logs are gone can still be read.
        grep -E "^# " "$LOGDIR/$name.log" | tail -15 | sed 's/^/      /'
        # And what the stack's processes warned about, in time order (log lines open with
        # their timestamp): a CI machine's kept work dir is gone with the machine.
        local kept
        for kept in $(sed -n 's/^# kept \(.*\) for inspection$/\1/p' "$LOGDIR/$name.log"); do
            grep -hE '"level":"(warn|error)"' "$kept"/log/*.log 2>/dev/null | sort | tail -n 25 |
                cut -c1-260 | sed 's/^/      | /'
        done
    fi
    grep -hE "SKIPPED|[1-9][0-9]* skipped" "$LOGDIR/$name.log" | head -5 | sed "s/^/      /"
    [ "$fail" -eq "$fail0" ] # the status: did this test pass?
}

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] && run "unit/$(basename "$t")" "$t"
done
# Integration and security tests each start their own stack on free ports in their own temp
# dir, so PHX_TEST_JOBS (default 3) of them run at once: most of their time is spent waiting
# (stack start-up, consumer-group joins, timeouts), not computing. Each test's lines are
# printed together when it ends; the tally is read back from per-test status files.
JOBS=${PHX_TEST_JOBS:-3}
STATUS=$(mktemp -d /tmp/phx-test-status.XXXXXX)
# The longest tests start first, so none of them is left running alone at the end (a full
# run on a quiet machine: test_lifecycle 135 s, test_llm 104 s, test_exec_attacks 95 s,
# test_pipeline 92 s, the others under 90 s); then the rest in name order.
SLOW="integration/test_lifecycle integration/test_llm security/test_exec_attacks integration/test_pipeline"
ORDER=$SLOW
for dir in integration security; do
    for t in "$ROOT"/tests/$dir/test_*.sh; do
        [ -f "$t" ] || continue
        name="$dir/$(basename "$t" .sh)"
        grep -qwF "$name" <<<"$SLOW" || ORDER+=" $name"
    done
done
for name in $ORDER; do
    t=$ROOT/tests/$name.sh
    [ -f "$t" ] || continue
    grep -qE "$FILTER" <<<"$name" || continue
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    (
        out=$(run "$name" bash "$t") && st=pass || st=fail
        printf '%s\n' "$out"
        echo "$st" >"$STATUS/${name//\//_}"
    ) &
done
wait
for f in "$STATUS"/*; do
    [ -f "$f" ] || continue
    if [ "$(cat "$f")" = pass ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        n=$(basename "$f")
        failed+=("${n/_//}")
    fi
done
rm -rf "$STATUS"

echo "----"
echo "tests: $pass passed, $fail failed in $((SECONDS - start))s"
[ "$fail" -eq 0 ] || { echo "failed: ${failed[*]}"; exit 1; }
