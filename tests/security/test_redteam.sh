#!/usr/bin/env bash
# test_redteam.sh -- `phx redteam --quick` against a live test stack, and against a deliberately
# weakened one.
#
# The stack runs the planner (safety gates off), tools, safety (and exec, as root) pools and the
# ingress; phx-tools
# may reach 127.0.0.2 (PHX_FETCH_ALLOW_CIDRS), where the red team puts its redirect bait, so
# the redirect-to-loopback cases really run. Every suite must report its cases contained and
# the command must exit 0. Then phx-tools is restarted with loopback allowed -- an SSRF hole --
# and the ssrf suite must report escapes and exit 1: the scorecard can fail, and does when a
# defence is missing. The safety suite reads $PHX_EVAL_DIR/safety when present (8 records a
# file) and its generated variants always.
. "$(dirname "$0")/../integration/lib.sh"
export PHX_FETCH_ALLOW_CIDRS=127.0.0.2/32
# Without the planner's URL gate (safety_blocked before any fetch), so the ssrf suite tests
# tool.http_fetch's own address policy, the layer the weakened run below opens.
export PHX_SAFETY_GATES=false
SUITES=safety,ssrf,auth,payload
TOPICS=phx.jobs,phx.results,phx.tasks.tools,phx.tasks.safety
if [ "$(id -u)" = 0 ] && [ -x "$PHX_BIN/phx-exec" ]; then
    export PHX_STACK_POOLS="planner tools safety exec"
    SUITES=exec,$SUITES
    TOPICS=$TOPICS,phx.tasks.exec
else
    export PHX_STACK_POOLS="planner tools safety"
    echo "# exec suite SKIPPED: the exec sandbox needs root"
fi
stack_up
trap 'stack_cleanup || exit 1' EXIT

export PHX_REDTEAM_API_KEY PHX_REDTEAM_API_KEY_B
PHX_REDTEAM_API_KEY=$("$PHX" keys create --tenant rt-a --principal ops --roles admin 2>/dev/null)
PHX_REDTEAM_API_KEY_B=$("$PHX" keys create --tenant rt-b --principal ops --roles admin 2>/dev/null)
export PHX_REDTEAM_DIR=$ROOT/ops/redteam PHX_REDTEAM_TOPICS=$TOPICS
export PHX_REDTEAM_BAIT_ADDR=127.0.0.2:0 PHX_REDTEAM_SAFETY_PER_FILE=8
# test_exec_attacks.sh runs every attack program; here a few that use each host placeholder.
export PHX_REDTEAM_EXEC_ONLY=host-secrets,abstract-unix,host-redis-kafka,identity,namespaces,env-leak

# --- the stack as configured: everything contained ------------------------------------------
t0=$SECONDS
out=$("$PHX" redteam --suites "$SUITES" --quick --json --timeout 60 2>"$PHX_VAR/redteam.err")
rc=$?
echo "# first run: $((SECONDS - t0)) s; per suite (ms): $(jq -c "[.suites[] | {(.suite): .duration_ms}] | add" <<<"$out" 2>/dev/null)"
check "redteam exit code" 0 "$rc"
check "output is JSON" true "$(jq -e 'has("suites")' <<<"$out" 2>/dev/null || echo false)"
for s in ${SUITES//,/ }; do
    check "suite $s: nothing escaped" 0 "$(jq "[.suites[] | select(.suite == \"$s\") | .escaped] | add" <<<"$out")"
    check "suite $s: cases tried" yes "$(jq -r ".suites[] | select(.suite == \"$s\") | if .tried > 0 then \"yes\" else \"no\" end" <<<"$out")"
done
check "auth: cross-tenant cases ran" contained \
    "$(jq -r '.suites[] | select(.suite == "auth") | .cases[] | select(.name == "cross-tenant read") | .outcome' <<<"$out")"
check "auth: alg none refused" contained \
    "$(jq -r '.suites[] | select(.suite == "auth") | .cases[] | select(.name == "jwt alg none") | .outcome' <<<"$out")"
check "ssrf: redirect to loopback refused" contained \
    "$(jq -r '.suites[] | select(.suite == "ssrf") | .cases[] | select(.name == "redirect to loopback") | .outcome' <<<"$out")"
check "payload: oversized job dead-lettered" contained \
    "$(jq -r '.suites[] | select(.suite == "payload") | .cases[] | select(.name == "phx.jobs: oversized") | .outcome' <<<"$out")"
check "payload: every topic answered" 0 "$(jq '.suites[] | select(.suite == "payload") | .errors' <<<"$out")"
check "safety: variant rates reported" yes \
    "$(jq -r '.suites[] | select(.suite == "safety") | if (.rates | has("variant:base64")) then "yes" else "no" end' <<<"$out")"
[ "$rc" = 0 ] || jq -c '.suites[] | .cases[] | select(.outcome != "contained" and .outcome != "skipped")' <<<"$out" | head -20 >&2

# --- an SSRF hole: the tools pool allows loopback ------------------------------------------
t0=$SECONDS
kill "$(cat "$PHX_VAR/run/tools.pid")"
for _ in $(seq 50); do kill -0 "$(cat "$PHX_VAR/run/tools.pid")" 2>/dev/null || break; sleep 0.1; done
PHX_FETCH_ALLOW_CIDRS=127.0.0.0/8 "$ROOT/ops/dev/stack" up >/dev/null 2>&1
out=$("$PHX" redteam --suites ssrf --quick --json --timeout 60 2>>"$PHX_VAR/redteam.err")
rc=$?
echo "# weakened run (with the restart): $((SECONDS - t0)) s"
check "weakened: redteam exits 1" 1 "$rc"
check "weakened: loopback literal escaped" escaped \
    "$(jq -r '.suites[0].cases[] | select(.name == "loopback literal") | .outcome' <<<"$out")"
check "weakened: metadata still refused" contained \
    "$(jq -r '.suites[0].cases[] | select(.name == "cloud metadata") | .outcome' <<<"$out")"
