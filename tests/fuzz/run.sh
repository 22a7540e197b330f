#!/usr/bin/env bash
# tests/fuzz/run.sh FUZZ_BUILD SECONDS [TARGET...] -- run libFuzzer targets: what `make fuzz`
# (long runs) and tests/security/test_fuzz.sh (a short pass in `make test`) do.
#
# For each target (default: every FUZZ_BUILD/fuzz/fuzz_*): first every input saved under
# tests/fuzz/regress/TARGET/ (crashes found before, now fixed) once, then SECONDS of fuzzing
# from the seeds in tests/fuzz/corpus/TARGET. What the fuzzer learns is kept in
# FUZZ_BUILD/corpus/TARGET (not in the repository), so later runs start from it. Prints one
# line per target (executions, coverage, corpus size) and exits non-zero on any crash, leak,
# timeout or sanitizer report, leaving the reproducer in FUZZ_BUILD/crashes/.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:?usage: run.sh FUZZ_BUILD SECONDS [TARGET...]}
SECS=${2:?usage: run.sh FUZZ_BUILD SECONDS [TARGET...]}
shift 2
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
targets=("$@")
[ ${#targets[@]} -gt 0 ] || for t in "$BUILD"/fuzz/fuzz_*; do [ -x "$t" ] && targets+=("$(basename "$t")"); done
[ ${#targets[@]} -gt 0 ] || { echo "run.sh: no fuzz targets in $BUILD/fuzz" >&2; exit 2; }
mkdir -p "$BUILD/crashes"
fail=0
printf '%-16s %12s %8s %8s %8s  %s\n' target executions cov features corpus result
for name in "${targets[@]}"; do
    bin=$BUILD/fuzz/$name
    corpus=$BUILD/corpus/$name
    log=$BUILD/crashes/$name.log
    mkdir -p "$corpus"
    regress=("$ROOT"/tests/fuzz/regress/"$name"/*)
    if [ -e "${regress[0]}" ] && ! "$bin" -runs=0 -timeout=10 "${regress[@]}" >"$log" 2>&1; then
        printf '%-16s %12s %8s %8s %8s  %s\n' "$name" - - - - "REGRESSION (see $log)"
        fail=1
        continue
    fi
    "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$BUILD/crashes/$name-" \
        "$corpus" "$ROOT/tests/fuzz/corpus/$name" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    n=$(find "$corpus" -type f | wc -l)
    if [ $rc -eq 0 ]; then
        res=ok
    else
        res="FAILED rc=$rc: $(grep -m1 -E 'ERROR: |runtime error|Timeout|out-of-memory' "$log" | cut -c1-120) (see $log)"
        fail=1
    fi
    printf '%-16s %12s %8s %8s %8s  %s\n' "$name" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$n" "$res"
done
exit $fail
