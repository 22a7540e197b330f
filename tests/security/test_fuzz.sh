#!/usr/bin/env bash
# test_fuzz.sh -- a short libFuzzer pass over every parser that reads hostile input (message
# envelope, JSON Schema compiler and validator with fuzzed schemas, step templates, the
# ingress's request handling, JWT, safety normaliser/decoders/scan, calc, config file, KB backup
# files): the saved regression inputs once, then PHX_FUZZ_TEST_SECONDS (default 3) of fuzzing
# each from the seed corpus (9 targets: about 55 s here, most of it start-up and corpus
# loading). `make test` builds the targets (build/fuzz, clang + ASan/UBSan); `make fuzz` is
# the long run. Any crash, leak, timeout or sanitizer report fails.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FUZZ_BUILD=${PHX_FUZZ_BUILD:-$ROOT/build/fuzz}
if ! ls "$FUZZ_BUILD"/fuzz/fuzz_* >/dev/null 2>&1; then
    echo "# SKIPPED: no fuzz targets in $FUZZ_BUILD/fuzz (make fuzz-build BUILD=build/fuzz SAN=1 FUZZ=1)"
    exit 0
fi
exec "$ROOT/tests/fuzz/run.sh" "$FUZZ_BUILD" "${PHX_FUZZ_TEST_SECONDS:-3}"
