#!/usr/bin/env bash
# targets.sh [VAR_DIR] -- Prometheus file_sd targets for the local stack's processes: one entry
# per admin port recorded by ops/dev/stack (VAR_DIR/run/NAME.admin), labelled pool=NAME.
# Prints JSON on stdout; the default VAR_DIR is $PHX_VAR or ./var.
set -euo pipefail
run=${1:-${PHX_VAR:-var}}/run
first=1
printf '['
for f in "$run"/*.admin; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .admin)
    [ $first -eq 1 ] || printf ','
    first=0
    printf '{"targets":["127.0.0.1:%s"],"labels":{"pool":"%s"}}' "$(cat "$f")" "$name"
done
printf ']\n'
