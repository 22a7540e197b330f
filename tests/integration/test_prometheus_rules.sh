#!/usr/bin/env bash
# test_prometheus_rules.sh -- ops/prometheus: the rules pass `promtool check rules`, their unit
# tests (phoenix.rules.test.yml) pass `promtool test rules`, and the local-stack scrape config
# passes `promtool check config`. (prometheus-k8s.yml is not checked: Debian's promtool is built
# without Kubernetes service discovery.)
. "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || {
    echo "# SKIPPED: promtool not installed (make deps)"
    exit 0
}
cd "$ROOT/ops/prometheus" || exit 1
out=$(promtool check rules phoenix.rules.yml 2>&1)
check "promtool check rules" "0" "$?"
check_contains "rules found" "SUCCESS" "$out"
out=$(promtool test rules phoenix.rules.test.yml 2>&1)
check "promtool test rules" "0" "$?"
[ "$T_FAIL" -eq 0 ] || echo "$out" | head -40
out=$(promtool check config --syntax-only prometheus.yml 2>&1)
check "promtool check config (local stack)" "0" "$?"
# Every alert names a runbook that exists in docs/observability.md.
for a in $(grep -o 'alert: [A-Za-z]*' phoenix.rules.yml | cut -d' ' -f2); do
    anchor=$(echo "$a" | tr 'A-Z' 'a-z')
    check "runbook for $a" "$anchor" "$(grep -c "^### $a\$" "$ROOT/docs/observability.md" | sed "s/^1\$/$anchor/")"
done
echo "# $T_NAME: $T_PASS passed, $T_FAIL failed"
[ "$T_FAIL" -eq 0 ]
