#!/usr/bin/env python3
"""tests/chaos/load.py -- the chaos suite's load: N mixed jobs at a steady rate, as
"key<TAB>job-json" lines on stdout (for kcat -P -K '\\t'), and one "id<TAB>type<TAB>i<TAB>
submitted_ms" line per job in the --jobs file, so the report knows what was sent and what each
job's right answer is.

The mix cycles through the job types given (--types), each job carrying its number i so its
outputs can be checked exactly:
  tools   a calc chain a -> b -> c: c = (3i + 1) * 2
  exec    exec.run `echo $((i*7))` in the sandbox, then a calc on its exit code: stdout 7i,
          y = i
  safety  safety.scan of a harmless user text, then a calc after it: verdict allow, t = i + 5
  kb      kb.upsert of two vectors (tagged with i) into the run's collection, then an exact
          kb.search filtered on i: the nearest hit is "y-i"
Pacing is by absolute time (job i leaves at start + i / rate), so a slow moment does not lower
the rate for the rest of the run."""
import argparse
import json
import sys
import time


def steps(kind, i, run):
    if kind == "tools":
        return [
            {"id": "a", "kind": "tool.calc", "input": {"expr": f"{i}*3"}},
            {"id": "b", "kind": "tool.calc", "needs": ["a"],
             "input": {"expr": "{{steps.a.output.value}}+1"}},
            {"id": "c", "kind": "tool.calc", "needs": ["b"],
             "input": {"expr": "{{steps.b.output.value}}*2"}},
        ]
    if kind == "exec":
        return [
            {"id": "x", "kind": "exec.run", "input": {"lang": "sh", "code": f"echo $(({i}*7))"}},
            {"id": "y", "kind": "tool.calc", "needs": ["x"],
             "input": {"expr": "{{steps.x.output.exit_code}}+" + str(i)}},
        ]
    if kind == "safety":
        return [
            {"id": "s", "kind": "safety.scan",
             "input": {"text": f"please add {i} and 5 for my report", "role": "user_prompt"}},
            {"id": "t", "kind": "tool.calc", "needs": ["s"], "input": {"expr": f"{i}+5"}},
        ]
    if kind == "kb":
        coll = f"chaos-{run}"  # created by chaos.sh (dim 3); the job's items carry its number
        return [
            {"id": "u", "kind": "kb.upsert", "input": {"collection": coll, "items": [
                {"id": f"x-{i}", "vector": [1, 0, 0], "metadata": {"job": i}},
                {"id": f"y-{i}", "vector": [0, 1, 0], "metadata": {"job": i}}]}},
            {"id": "q", "kind": "kb.search", "needs": ["u"],
             "input": {"collection": coll, "vector": [0.1, 1, 0], "k": 1,
                       "filter": {"job": i}, "exact": True}},
        ]
    raise SystemExit(f"load.py: unknown job type {kind}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--run", required=True, help="run id, the prefix of every job id")
    ap.add_argument("--types", default="tools", help="comma-separated job types")
    ap.add_argument("--jobs", required=True, help="where to write id, type, i, submitted_ms")
    a = ap.parse_args()
    types = [t for t in a.types.split(",") if t]
    for t in types:
        steps(t, 0, a.run)  # unknown types fail before anything is sent
    t0 = time.monotonic()
    with open(a.jobs, "w") as jobs:
        for i in range(1, a.n + 1):
            due = t0 + (i - 1) / a.rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            kind = types[(i - 1) % len(types)]
            jid = f"{a.run}-{i}"
            ms = int(time.time() * 1000)
            job = {"schema": "job.v1", "id": jid, "tenant": "default", "submitted_ms": ms,
                   "steps": steps(kind, i, a.run)}
            sys.stdout.write(jid + "\t" + json.dumps(job, separators=(",", ":")) + "\n")
            sys.stdout.flush()
            jobs.write(f"{jid}\t{kind}\t{i}\t{ms}\n")
            jobs.flush()


if __name__ == "__main__":
    main()
