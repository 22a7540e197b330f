#!/usr/bin/env bash
# test_deploy_manifests.sh -- ops/k8s and ops/systemd hold what the code needs
# (tests/integration/deploy_check.py: probes, resources, security contexts, selectors, every
# PHX_* name an option of its binary, consumer groups and topics as the code spells them,
# systemd sandboxing). Then the same check on broken copies must fail, naming the problem, so
# the check itself is known to bite. kubectl kustomize renders the overlay when kubectl exists;
# systemd-analyze verifies the units when it is installed.
. "$(dirname "$0")/lib.sh"
CHECK="$ROOT/tests/integration/deploy_check.py"
python3 -c 'import yaml' 2>/dev/null || {
    echo "# SKIPPED: python3-yaml not installed (make deps)"
    exit 0
}
TMP=$(mktemp -d /tmp/phx-deploy-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# Every binary's --help, captured once and in parallel: the reference for all the runs below.
HELP=$TMP/help
mkdir -p "$HELP"
for b in "$PHX_BIN"/phx-*; do
    [ -x "$b" ] && "$b" --help >"$HELP/$(basename "$b").help" 2>/dev/null &
done
wait
out=$(python3 "$CHECK" "$ROOT" "$HELP" 2>&1)
check "deploy_check on the tree" "0" "$?"
echo "$out" | tail -20
check_contains "every server checked" "phx-exec phx-ingress phx-kb phx-llm phx-planner phx-safety" "$out"
nservers=$(sed -n 's/.*; servers //p' <<<"$out" | wc -w)

# A copy of the tree's inputs with one thing broken; the check must fail and say what. The
# broken copies are checked in parallel (the machine running make test is busy), then judged.
MUTANTS=()
mutate() { # mutate NAME FILE PYTHON-EXPR-ON-s EXPECTED-TEXT
    local name=$1 file=$2 expr=$3 want=$4 root=$TMP/$1
    mkdir -p "$root"
    for d in lib workers docs Makefile producers; do ln -s "$ROOT/$d" "$root/$d"; done
    cp -r "$ROOT/ops" "$root/ops"
    python3 - "$root/$file" "$expr" <<'EOF2' || { not_ok "$name: mutation did not apply"; return; }
import sys
p, expr = sys.argv[1], sys.argv[2]
s = open(p).read()
t = eval(expr)
assert t != s, "no change"
open(p, "w").write(t)
EOF2
    echo "$want" >"$root.want"
    (python3 "$CHECK" "$root" "$HELP" >"$root.out" 2>&1; echo $? >"$root.rc") &
    MUTANTS+=("$name")
}
mutate no-readiness ops/k8s/base/tools.yaml 's.replace("readinessProbe:", "xreadinessProbe:", 1)' \
    "readinessProbe must be GET /readyz"
mutate typo-env ops/k8s/base/planner.yaml 's.replace("\"PHX_JOB_TTL_S\"", "\"PHX_JOB_TTL_SECONDS\"", 1)' \
    "PHX_JOB_TTL_SECONDS is not an option of phx-planner"
mutate out-of-range ops/k8s/base/kb.yaml 's.replace("\"PHX_CONCURRENCY\": 4", "\"PHX_CONCURRENCY\": 999", 1)' \
    "PHX_CONCURRENCY=999: not an integer in 1..256"
mutate caps ops/k8s/base/exec.yaml 's.replace("\"NET_ADMIN\"]", "\"NET_ADMIN\", \"SYS_PTRACE\"]", 1)' \
    "but declares"
mutate group ops/k8s/base/llm.yaml 's.replace("consumerGroup: phx-llm", "consumerGroup: phx-llm-v2")' \
    "the code uses phx-llm"
mutate pdb-root ops/k8s/base/safety.yaml 's.replace("kind: PodDisruptionBudget", "kind: PodDisruptionBudgetX").replace("runAsNonRoot: true", "runAsNonRoot: false")' \
    "no PodDisruptionBudget selects"
mutate secret-path ops/k8s/base/llm.yaml 's.replace("value: /etc/phoenix/secrets/llm/api-key", "value: /var/run/api-key")' \
    "is not under a mounted Secret"
if [ -d "$ROOT/ops/systemd" ]; then
    mutate unit-nnp ops/systemd/phx-tools.service 's.replace("NoNewPrivileges=yes", "NoNewPrivileges=no")' \
        "NoNewPrivileges=no, expected yes"
    mutate unit-env ops/systemd/env/phx-llm.env 's + "PHX_LLM_MODLE=x\n"' \
        "PHX_LLM_MODLE is not an option of phx-llm"
    mutate unit-secret ops/systemd/phx-tools.service 's.replace("=%d/webhook-secret", "=/etc/phoenix/webhook-secret")' \
        "secrets come from LoadCredential"
    mutate unit-stop ops/systemd/phx-exec.service 's.replace("TimeoutStopSec=75", "TimeoutStopSec=60")' \
        "must exceed PHX_SHUTDOWN_GRACE_MS"
fi
wait
for name in "${MUTANTS[@]}"; do
    check "$name: check fails" "1" "$(cat "$TMP/$name.rc")"
    check_contains "$name: names the problem" "$(cat "$TMP/$name.want")" "$(cat "$TMP/$name.out")"
done
check_contains "pdb-root: both problems named" "runAsNonRoot must be true" "$(cat "$TMP/pdb-root.out")"

if command -v kubectl >/dev/null; then
    r=$(kubectl kustomize "$ROOT/ops/k8s/overlays/production" 2>&1)
    check "kubectl kustomize renders the production overlay" "0" "$?"
    check "rendered Deployments (every server + the canary)" "$((nservers + 1))" "$(grep -c '^kind: Deployment' <<<"$r")"
else
    echo "# kubectl not installed: kustomize rendering not checked"
fi
if command -v systemd-analyze >/dev/null && [ -d "$ROOT/ops/systemd" ]; then
    # verify needs the ExecStart binaries at their paths; point them at this build's.
    mkdir -p "$TMP/units"
    for u in "$ROOT"/ops/systemd/*.service "$ROOT"/ops/systemd/*.target; do
        sed "s#/usr/local/bin/#$PHX_BIN/#" "$u" >"$TMP/units/$(basename "$u")"
    done
    v=$(cd "$TMP/units" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no ./*.service ./*.target 2>&1 |
        grep -v -e 'Failed to \(connect\|open\)' -e 'Cannot open.*dbus' -e 'not found, proceeding anyway' \
            -e 'bus' -e 'Unit .* not found' -e '^$')
    check "systemd-analyze verify: no complaints" "" "$v"
fi
echo "# $T_NAME: $T_PASS passed, $T_FAIL failed"
[ "$T_FAIL" -eq 0 ]
