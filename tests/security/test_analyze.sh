#!/usr/bin/env bash
# test_analyze.sh -- `make analyze` (cppcheck over the whole tree) is clean: a new finding
# fails the suite until it is fixed or, for a false positive, suppressed inline with a reason
# (docs/security.md, "Static analysis").
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
command -v cppcheck >/dev/null || { echo "not ok - cppcheck missing (make deps)"; exit 1; }
make -s -C "$ROOT" analyze
