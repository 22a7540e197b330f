#!/usr/bin/env python3
"""deploy_check.py -- check the deployment files (ops/k8s, ops/systemd) against the code.

kubeconform and a cluster are not available here, so this parses every manifest and checks
what matters to Phoenix, with the code as the reference so the files cannot drift from it:

  - every long-running binary (one whose --help has PHX_ADMIN_ADDR) has a Deployment and a
    systemd unit;
  - each Deployment: image, liveness /healthz and readiness /readyz on the admin port, requests
    and limits, non-root, read-only root, no privilege escalation, capabilities drop ALL,
    seccomp RuntimeDefault; the one exception (phx-exec) must declare the exact capabilities it
    adds in an annotation, and may add nothing else; labels matched by a PodDisruptionBudget and
    by a NetworkPolicy naming the pool; an autoscaler; terminationGracePeriodSeconds longer than
    PHX_SHUTDOWN_GRACE_MS;
  - every PHX_* name in env, envFrom ConfigMaps, config-file ConfigMaps and systemd environment
    files is an option of that binary (its --help), a process-wide variable the code reads with
    getenv (lib/*.c), or a PHX_KAFKA_CONF_* pass-through; integer values within the --help range;
  - *_FILE paths lie under a mounted Secret or ConfigMap (k8s) or a LoadCredential (systemd);
  - KEDA triggers name the pool's consumer group and topics as the code spells them
    (lib/msg.h, lib/pool.c, workers/planner/planner.c);
  - systemd units: the sandboxing options, TimeoutStopSec >= the grace period, and the exec unit's
    capabilities exactly the documented set.

usage: deploy_check.py ROOT BIN_DIR   (prints one line per problem; exit 1 if any). BIN_DIR
holds the binaries, or NAME.help files with their --help output.
"""
import glob
import json
import os
import re
import subprocess
import sys

import yaml

ROOT, BIN = sys.argv[1], sys.argv[2]
problems = []


def bad(where, msg):
    problems.append(f"{where}: {msg}")


def read(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return f.read()


# --- the reference: what the code knows --------------------------------------------------------

def help_options(binary):
    """{PHX_NAME: (min, max) or None} from the binary's --help (or docs/config-reference.md)."""
    text = None
    exe = os.path.join(BIN, binary)
    cached = exe + ".help"  # BIN may be a directory of captured --help texts (the test's)
    if os.path.exists(cached):
        with open(cached) as f:
            text = f.read()
    elif os.access(exe, os.X_OK):
        text = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30).stdout
    else:
        ref = read("docs/config-reference.md")
        m = re.search(r"^## " + re.escape(binary) + r"\n\n```\n(.*?)```", ref, re.S | re.M)
        text = m.group(1) if m else ""
    opts = {}
    for m in re.finditer(r"^  (PHX_[A-Z0-9_]+)( \(integer (-?\d+)\.\.(-?\d+)\))?( \(boolean\))?",
                         text, re.M):
        rng = (int(m.group(3)), int(m.group(4))) if m.group(2) else ("bool" if m.group(5) else None)
        opts[m.group(1)] = rng
    return opts


def binaries():
    """Every program of the Makefile (name -> source directory) whose main.c exists."""
    mk = read("Makefile")
    progs = re.search(r"^ALL_PROGS := (.*?)\n\S", mk, re.S | re.M).group(1)
    pairs = [p.split(":") for p in progs.replace("\\", " ").split()]
    return {n: d for n, d in pairs if os.path.exists(os.path.join(ROOT, d, "main.c"))}


PROCESS_WIDE = set(re.findall(r'getenv\("(PHX_[A-Z0-9_]+)"\)',
                              "".join(read(f) for f in glob.glob("lib/*.c", root_dir=ROOT))))
DIRS = binaries()
OPTIONS = {b: help_options(b) for b in DIRS}
SERVERS = sorted(b for b, o in OPTIONS.items() if "PHX_ADMIN_ADDR" in o)
if len(SERVERS) < 7:
    bad("reference", f"only {SERVERS} found with PHX_ADMIN_ADDR (binaries built? {BIN})")

msg_h = read("lib/msg.h")
TOPICS = dict(re.findall(r'#define (PHX_TOPIC_[A-Z]+|PHX_TASK_TOPIC_PREFIX)\s+"([^"]+)"', msg_h))
GROUP_FMT = re.search(r'snprintf\(def->group, sizeof\(def->group\), "([^"]+)"',
                      read("lib/pool.c")).group(1)


def consumer_of(binary):
    """(group, [topics]) of a binary, as its code names them; None when it consumes nothing.
    A worker-loop binary names its group and topics (`group = "..."`, `topics[] = {...}`);
    a pool built on lib/pool.c gets GROUP_FMT and the pool's task topic."""
    src = "".join(read(f) for f in glob.glob(DIRS[binary] + "/*.c", root_dir=ROOT))
    g = re.search(r'group\s*=\s*"([^"]+)"', src)
    t = re.search(r"topics\[\] = \{([^}]*)\}", src)
    if g and t:
        return g.group(1), [TOPICS[x.strip()] for x in t.group(1).split(",") if x.strip()]
    if "phx_pool_ops" in src:
        pool = binary[len("phx-"):]
        return GROUP_FMT.replace("%s", pool), [TOPICS["PHX_TASK_TOPIC_PREFIX"] + pool]
    return None


def check_var(where, binary, name, value=None):
    opts = OPTIONS.get(binary)
    if opts is None:
        bad(where, f"unknown binary {binary}")
        return
    if name.startswith("PHX_KAFKA_CONF_"):
        return
    if name not in opts and name not in PROCESS_WIDE:
        bad(where, f"{name} is not an option of {binary} (--help) nor read by lib/")
        return
    rng = opts.get(name)
    if value is None or rng is None:
        return
    v = str(value).lower()
    if rng == "bool":
        if v not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            bad(where, f"{name}={value}: not a boolean")
    elif not re.fullmatch(r"-?\d+", v) or not rng[0] <= int(v) <= rng[1]:
        bad(where, f"{name}={value}: not an integer in {rng[0]}..{rng[1]}")


# --- Kubernetes --------------------------------------------------------------------------------

def load_k8s():
    docs = []
    for f in sorted(glob.glob("ops/k8s/**/*.yaml", root_dir=ROOT, recursive=True)):
        for d in yaml.safe_load_all(read(f)):
            if d:
                if "kind" not in d or "metadata" not in d and d.get("kind") not in (
                        "Kustomization", "Component"):
                    bad(f, "a document without kind/metadata")
                    continue
                d["_file"] = f
                docs.append(d)
    return docs


def selects(match, labels):
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def check_k8s(docs):
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    cms = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    deps = by_kind.get("Deployment", [])
    deployed = set()
    for d in deps:
        name, f = d["metadata"]["name"], d["_file"]
        where = f"{f}: Deployment {name}"
        spec = d["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"].get("labels", {})
        if not selects(spec["selector"]["matchLabels"], labels):
            bad(where, "selector does not match the pod labels")
        for k in ("app.kubernetes.io/name", "app.kubernetes.io/component",
                  "app.kubernetes.io/part-of"):
            if k not in labels:
                bad(where, f"pod label {k} missing (Prometheus and the policies select on it)")
        exception = d["metadata"].get("annotations", {}).get("phoenix.dev/privileged-exception")
        podsc = pod.get("securityContext", {})
        containers = pod.get("containers", [])
        if len(containers) != 1:
            bad(where, "expected one container")
            continue
        c = containers[0]
        binary = os.path.basename((c.get("command") or [""])[0])
        if binary not in OPTIONS:
            bad(where, f"command {c.get('command')} is not a Phoenix binary")
            continue
        deployed.add(binary)
        if not c.get("image"):
            bad(where, "no image")
        ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
        if "admin" not in ports:
            bad(where, "no container port named admin (probes and Prometheus use it)")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            h = (c.get(probe) or {}).get("httpGet", {})
            if h.get("path") != path or h.get("port") not in ("admin", ports.get("admin")):
                bad(where, f"{probe} must be GET {path} on the admin port")
        res = c.get("resources", {})
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if not res.get(part, {}).get(r):
                    bad(where, f"resources.{part}.{r} missing")
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            bad(where, "readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad(where, "allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            bad(where, "capabilities must drop ALL")
        seccomp = (sc.get("seccompProfile") or podsc.get("seccompProfile") or {}).get("type")
        nonroot = sc.get("runAsNonRoot", podsc.get("runAsNonRoot"))
        if exception is None:
            if nonroot is not True:
                bad(where, "runAsNonRoot must be true")
            if caps.get("add"):
                bad(where, f"adds capabilities {caps['add']} without a declared exception")
            if seccomp != "RuntimeDefault":
                bad(where, f"seccomp profile {seccomp}, expected RuntimeDefault")
        else:
            declared = sorted(exception.split(","))
            if sorted(caps.get("add", [])) != declared:
                bad(where, f"adds {caps.get('add')} but declares {declared}")
            if binary != "phx-exec":
                bad(where, "only phx-exec may have a privileged exception")
        # Configuration: env, envFrom ConfigMaps, the PHX_CONFIG_FILE ConfigMap.
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        for n, v in env.items():
            check_var(where, binary, n, v)
        for ef in c.get("envFrom", []):
            ref = (ef.get("configMapRef") or {}).get("name")
            if ref not in cms:
                bad(where, f"envFrom ConfigMap {ref} not found")
                continue
            for n, v in cms[ref].get("data", {}).items():
                check_var(f"{where} (ConfigMap {ref})", binary, n, v)
        mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        for m in mounts:
            if m not in vols:
                bad(where, f"volumeMount {m} has no volume")
        filecfg = {}
        if "PHX_CONFIG_FILE" in env:
            path = env["PHX_CONFIG_FILE"]
            for vn, mp in mounts.items():
                cmref = (vols.get(vn, {}).get("configMap") or {}).get("name")
                if cmref and path.startswith(mp + "/"):
                    key = path[len(mp) + 1:]
                    data = cms.get(cmref, {}).get("data", {})
                    if key not in data:
                        bad(where, f"PHX_CONFIG_FILE {path}: ConfigMap {cmref} has no {key}")
                        break
                    try:
                        filecfg = json.loads(data[key])
                    except ValueError as e:
                        bad(where, f"ConfigMap {cmref} {key}: not JSON: {e}")
                    break
            else:
                bad(where, f"PHX_CONFIG_FILE {path} is not in a mounted ConfigMap")
            for n, v in filecfg.items():
                check_var(f"{where} (config file)", binary, n, v)
        for n, v in env.items():
            if n.endswith("_FILE") and n != "PHX_CONFIG_FILE":
                ok = any(v.startswith(mp + "/") and ("secret" in vols.get(vn, {}) or
                                                      "configMap" in vols.get(vn, {}))
                         for vn, mp in mounts.items())
                if not ok:
                    bad(where, f"{n}={v} is not under a mounted Secret or ConfigMap")
        grace = int(env.get("PHX_SHUTDOWN_GRACE_MS") or filecfg.get("PHX_SHUTDOWN_GRACE_MS")
                    or 30000)
        if pod.get("terminationGracePeriodSeconds", 30) * 1000 <= grace:
            bad(where, f"terminationGracePeriodSeconds must exceed PHX_SHUTDOWN_GRACE_MS {grace}")
        # Labels selected by a PDB and by a NetworkPolicy naming this pool.
        if not any(selects(p["spec"]["selector"].get("matchLabels"), labels)
                   for p in by_kind.get("PodDisruptionBudget", [])):
            bad(where, "no PodDisruptionBudget selects its pods")
        if not any(selects(n["spec"]["podSelector"].get("matchLabels"), labels) and
                   "app.kubernetes.io/name" in n["spec"]["podSelector"].get("matchLabels", {})
                   for n in by_kind.get("NetworkPolicy", [])):
            bad(where, "no NetworkPolicy names its pods")
        # Autoscaling (stable track only: a canary keeps its fixed size).
        if labels.get("app.kubernetes.io/track") != "canary":
            scalers = [s for s in by_kind.get("ScaledObject", []) + by_kind.get(
                "HorizontalPodAutoscaler", []) if s["spec"]["scaleTargetRef"]["name"] == name]
            if not scalers:
                bad(where, "no ScaledObject or HorizontalPodAutoscaler")
            cons = consumer_of(binary)
            for s in scalers:
                if s["kind"] != "ScaledObject":
                    continue
                if cons is None:
                    bad(where, "a lag-based ScaledObject on a binary that consumes nothing")
                    continue
                seen = set()
                for t in s["spec"].get("triggers", []):
                    md = t.get("metadata", {})
                    if t.get("type") != "kafka":
                        continue
                    if md.get("consumerGroup") != cons[0]:
                        bad(where, f"KEDA consumerGroup {md.get('consumerGroup')}, the code "
                                   f"uses {cons[0]}")
                    seen.add(md.get("topic"))
                if seen != set(cons[1]):
                    bad(where, f"KEDA topics {sorted(seen)}, the code consumes {cons[1]}")
            if binary != "phx-ingress" and cons and not any(
                    s["kind"] == "ScaledObject" for s in scalers):
                bad(where, "a consumer pool must scale on lag (ScaledObject)")
    for b in SERVERS:
        if b not in deployed:
            bad("ops/k8s", f"no Deployment runs {b}")
    for s in by_kind.get("ScaledObject", []):
        if s["spec"]["scaleTargetRef"]["name"] not in {d["metadata"]["name"] for d in deps}:
            bad(s["_file"], f"ScaledObject {s['metadata']['name']} targets no Deployment")


# --- systemd -----------------------------------------------------------------------------------

EXEC_CAPS = None  # the exception's capabilities, from the k8s annotation (one list, not two)
REQUIRED_UNIT = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
    "ProtectHome": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
    "ProtectControlGroups": None, "RestrictAddressFamilies": None, "SystemCallFilter": None,
    "SystemCallArchitectures": "native", "MemoryMax": None, "Restart": None,
    "TimeoutStopSec": None, "CapabilityBoundingSet": None, "EnvironmentFile": None,
    "LockPersonality": "yes", "RestrictSUIDSGID": "yes", "UMask": None,
}


def parse_unit(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        k, _, v = line.partition("=")
        out.setdefault(k.strip(), []).append(v.strip())
    return out


def parse_envfile(where, text):
    out = {}
    for i, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        k, eq, v = s.partition("=")
        if not eq:
            bad(f"{where}:{i}", "not KEY=VALUE")
            continue
        out[k.strip()] = v.strip().strip('"')
    return out


def check_systemd(exec_caps):
    units = sorted(glob.glob("ops/systemd/phx-*.service", root_dir=ROOT))
    if not units:
        bad("ops/systemd", "no units")
        return
    envs = {os.path.basename(f): parse_envfile(f, read(f))
            for f in glob.glob("ops/systemd/env/*.env", root_dir=ROOT)}
    target = read("ops/systemd/phoenix.target") if os.path.exists(
        os.path.join(ROOT, "ops/systemd/phoenix.target")) else ""
    seen = set()
    for f in units:
        u = parse_unit(read(f))
        name = os.path.basename(f)[:-len(".service")]
        binary = os.path.basename((u.get("ExecStart") or [""])[0].split()[0] if u.get(
            "ExecStart") else "")
        if binary not in OPTIONS:
            bad(f, f"ExecStart runs {binary}, not a Phoenix binary")
            continue
        seen.add(binary)
        if name != binary:
            bad(f, f"unit name {name} should be the binary's, {binary}")
        for k, want in REQUIRED_UNIT.items():
            vals = u.get(k)
            if not vals:
                bad(f, f"{k}= missing")
            elif want is not None and vals[-1] != want:
                bad(f, f"{k}={vals[-1]}, expected {want}")
        if f"{name}.service" not in target:
            bad(f, "not wanted by phoenix.target")
        # Configuration: each EnvironmentFile's names must be this binary's.
        environ = {}
        for ef in u.get("EnvironmentFile", []):
            base = os.path.basename(ef.lstrip("-"))
            if base not in envs:
                bad(f, f"EnvironmentFile {ef}: no ops/systemd/env/{base}")
                continue
            environ.update(envs[base])
        for e in u.get("Environment", []):
            for kv in e.split():
                k, _, v = kv.partition("=")
                environ[k] = v
        for n, v in environ.items():
            check_var(f"{f} (environment)", binary, n, v)
        creds = [c.split(":", 1)[0] for c in u.get("LoadCredential", [])]
        for n, v in environ.items():
            if n.endswith("_FILE") and n != "PHX_CONFIG_FILE":
                m = re.fullmatch(r"%d/(.+)|\$\{CREDENTIALS_DIRECTORY\}/(.+)", v)
                if not m or (m.group(1) or m.group(2)) not in creds:
                    bad(f, f"{n}={v}: secrets come from LoadCredential= (%d/NAME)")
        grace = int(environ.get("PHX_SHUTDOWN_GRACE_MS", 30000))
        stop = u.get("TimeoutStopSec", ["0"])[-1]
        if not re.fullmatch(r"\d+", stop) or int(stop) * 1000 <= grace:
            bad(f, f"TimeoutStopSec={stop} must exceed PHX_SHUTDOWN_GRACE_MS {grace} ms")
        cbs = u.get("CapabilityBoundingSet", [""])[-1].split()
        amb = u.get("AmbientCapabilities", [""])[-1].split()
        if binary == "phx-exec":
            want = sorted("CAP_" + c for c in exec_caps)
            if sorted(cbs) != want or sorted(amb) != want:
                bad(f, f"exec capabilities {cbs} / ambient {amb}, expected {want} "
                       "(the same set as the k8s exception)")
            if u.get("Delegate", [""])[-1] != "yes":
                bad(f, "phx-exec needs Delegate=yes (per-run cgroups)")
        elif cbs or amb:
            bad(f, f"{binary} must have no capabilities (CapabilityBoundingSet= empty)")
        if binary != "phx-exec" and u.get("User", ["root"])[-1] == "root" and not u.get(
                "DynamicUser"):
            bad(f, "runs as root")
    for b in SERVERS:
        if b not in seen:
            bad("ops/systemd", f"no unit runs {b}")


docs = load_k8s()
check_k8s(docs)
exec_dep = [d for d in docs if d["kind"] == "Deployment" and
            d["metadata"].get("annotations", {}).get("phoenix.dev/privileged-exception")]
caps = exec_dep[0]["metadata"]["annotations"]["phoenix.dev/privileged-exception"].split(",") \
    if exec_dep else []
if os.path.isdir(os.path.join(ROOT, "ops/systemd")):
    check_systemd(caps)
for p in problems:
    print("PROBLEM", p)
print(f"deploy_check: {len(problems)} problems; servers {' '.join(SERVERS)}")
sys.exit(1 if problems else 0)
