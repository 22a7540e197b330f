#!/usr/bin/env bash
# test_topics_plan.sh -- `phx topics plan` creates every topic the code uses, sized and
# configured as documented. The topic list is read from the code (the PHX_TOPIC_* names in
# lib/msg.h and the pools of phx_kind_pools in lib/msg.c), not written down a second time, and
# phx-devbroker's built-in topics must be the same set. The Kubernetes autoscalers must fit the
# medium plan: maxReplicaCount x PHX_CONCURRENCY <= partitions of every topic a pool consumes.
. "$(dirname "$0")/lib.sh"
TMP=$(mktemp -d /tmp/phx-deploy-topics.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
for s in small medium large; do
    "$PHX" topics plan --scale "$s" --bootstrap b1:9093 --command-config /etc/kafka/client.properties >"$TMP/$s.txt" 2>&1
    check "plan --scale $s: exit 0" "0" "$?"
done
"$PHX" topics plan --jobs-per-s 2000 --threads 100 >"$TMP/explicit.txt" 2>&1
check "plan with explicit figures: exit 0" "0" "$?"
"$PHX" topics plan --scale huge >/dev/null 2>&1
check "unknown scale: exit 2" "2" "$?"
"$PHX" topics plan --min-insync 4 >/dev/null 2>&1
check "min.insync above the replication factor: exit 2" "2" "$?"

out=$(python3 - "$ROOT" "$TMP" <<'PY'
import glob, json, os, re, sys
root, tmp = sys.argv[1], sys.argv[2]
src = lambda p: open(os.path.join(root, p)).read()
fixed = dict(re.findall(r'#define (PHX_TOPIC_[A-Z]+)\s+"([^"]+)"', src("lib/msg.h")))
prefix = re.search(r'#define PHX_TASK_TOPIC_PREFIX\s+"([^"]+)"', src("lib/msg.h")).group(1)
table = re.search(r"phx_kind_pools\[\] = \{(.*?)\};", src("lib/msg.c"), re.S).group(1)
pools = re.findall(r'\{"[^"]+", "([^"]+)"\}', table)
code = set(fixed.values()) | {prefix + p for p in pools}
consumed = {fixed["PHX_TOPIC_JOBS"], fixed["PHX_TOPIC_RESULTS"]} | {prefix + p for p in pools}
problems = []
if len(pools) < 5 or len(fixed) < 5:
    problems.append(f"could not read the topics from the code: {fixed} {pools}")
dev = re.search(r"phx_devbroker_topics\[\] = \{(.*?)\};", src("ops/devbroker/main.c"), re.S)
if dev and set(re.findall(r'"([^"]+)"', dev.group(1))) != code:
    problems.append(f"phx-devbroker creates {sorted(set(re.findall(chr(34)+'([^'+chr(34)+']+)'+chr(34), dev.group(1))))}, the code uses {sorted(code)}")
threads = {"small": 12, "medium": 36, "large": 144, "explicit": 100}
plans = {}
for scale, m in threads.items():
    text = open(f"{tmp}/{scale}.txt").read()
    cmds = [l for l in text.splitlines() if l.startswith("kafka-topics.sh ")]
    got = {}
    for c in cmds:
        t = re.search(r"--topic (\S+)", c).group(1)
        if t in got:
            problems.append(f"{scale}: {t} created twice")
        parts = int(re.search(r"--partitions (\d+)", c).group(1))
        got[t] = parts
        for need in ("--create", "--if-not-exists", "--replication-factor 3",
                     "--config min.insync.replicas=2", "--config retention.ms="):
            if need not in c:
                problems.append(f"{scale}: {t}: no {need}")
        if scale != "explicit" and "--bootstrap-server b1:9093 --command-config /etc/kafka/client.properties" not in c:
            problems.append(f"{scale}: {t}: bootstrap/command-config not passed through")
        compact = "cleanup.policy=compact" in c
        if compact != (t == fixed["PHX_TOPIC_REPLIES"]):
            problems.append(f"{scale}: {t}: compaction {compact} (only the replies topic is compacted)")
        if t in consumed and parts < m:
            problems.append(f"{scale}: {t}: {parts} partitions < {m} consumer threads")
        if parts % 6:
            problems.append(f"{scale}: {t}: {parts} partitions, not a multiple of 6")
        if f"# {t}: " not in text:
            problems.append(f"{scale}: {t}: no explanation line")
    if set(got) != code:
        problems.append(f"{scale}: plans {sorted(got)}, the code uses {sorted(code)}")
    plans[scale] = got
# The autoscalers fit the medium plan.
import yaml
docs = [d for f in glob.glob(f"{root}/ops/k8s/base/*.yaml") for d in yaml.safe_load_all(open(f)) if d]
cms = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
for so in (d for d in docs if d["kind"] == "ScaledObject"):
    name = so["spec"]["scaleTargetRef"]["name"]
    conc = json.loads(cms[name + "-config"]["data"]["phoenix.json"]).get("PHX_CONCURRENCY", 2)
    for t in so["spec"]["triggers"]:
        topic = t["metadata"]["topic"]
        cap = so["spec"]["maxReplicaCount"] * conc
        if cap > plans["medium"].get(topic, 0):
            problems.append(f"{name}: up to {cap} consumer threads on {topic}, medium plan has {plans['medium'].get(topic)} partitions")
for p in problems:
    print("PROBLEM", p)
print(f"checked {len(code)} topics x {len(threads)} plans; {len(problems)} problems")
PY
)
check "plans match the code and the autoscalers" "0" "$?"
echo "$out"
check_contains "no problems" " 0 problems" "$out"
echo "# $T_NAME: $T_PASS passed, $T_FAIL failed"
[ "$T_FAIL" -eq 0 ]
