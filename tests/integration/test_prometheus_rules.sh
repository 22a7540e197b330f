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
# Every alert's runbook_url names a page that exists (and its heading, for an #anchor), and
# every page of docs/operations/runbooks/ belongs to an alert.
for a in $(grep -o 'alert: [A-Za-z]*' phoenix.rules.yml | cut -d' ' -f2); do
    url=$(awk -v a="$a" '$0 ~ "alert: "a"$" {f=1} f && /runbook_url:/ {gsub(/.*runbook_url: *"|".*/, ""); print; exit}' phoenix.rules.yml)
    page=${url%%#*} anchor=${url#*#}
    [ "$anchor" = "$url" ] && anchor=
    ok_page=missing
    if [ -n "$url" ] && [ -f "$ROOT/$page" ]; then
        ok_page=$page
        if [ -n "$anchor" ]; then
            grep -qi "^#\+ $anchor\$" "$ROOT/$page" || ok_page="$page (no heading #$anchor)"
        else
            grep -q "^# $a\$" "$ROOT/$page" || ok_page="$page (not titled $a)"
        fi
    fi
    check "runbook for $a" "$page" "$ok_page"
done
for p in "$ROOT"/docs/operations/runbooks/Phx*.md; do
    n=$(basename "$p" .md)
    check "runbook page $n has an alert" "1" "$(grep -c "alert: $n\$" phoenix.rules.yml)"
done
echo "# $T_NAME: $T_PASS passed, $T_FAIL failed"
[ "$T_FAIL" -eq 0 ]
