#!/usr/bin/env python3
"""tests/chaos/report.py -- the chaos suite's verdict and figures, from what the run left behind:

  --jobs     id, type, i, submitted_ms per job (load.py)
  --replies  key, Kafka timestamp (ms), reply JSON per message on the reply topic
  --events   key, event JSON per message on phx.events
  --redis    JSON {job id: {state, steps: {...}, out: {...}}} dumped from Redis after the run
  --faults   name, start_ms, end_ms per injected fault (chaos.sh)

Checks: every job has one terminal outcome (lost = no reply; duplicated = the same reply more
than once, which the at-least-once reply contract allows after a crash between its produce and
its mark; conflicting = replies of one job that differ, which it never allows);
every reply and the Redis state of every step are right for the job's type and number (a
step applied twice or a stale result applied over a fresh one would break the chain's
arithmetic or the step's state); no step has more than one step.succeeded event (the planner
emits it only when its compare-and-set script applied a result, so two mean it was applied
twice); no job is still non-terminal in Redis (stuck).

Recovery time after a fault: the completion timeline is the reply timestamps. The baseline
rate is the completions per second in the 10 s before the fault started. The fault has
recovered at the first moment t after its end from which the next 2 s hold at least 80 % of
the baseline's completions; recovery time = t - end. Also printed: the first completion after
the end, and how deep the fault cut throughput (completions during the fault / baseline).
A kill -9 storm is one fault per kill; their recovery times are summarised (median, max).

Prints a table per fault and one final line of key=value counts for chaos.sh to check."""
import argparse
import bisect
import json
import statistics
import sys
from collections import defaultdict

TERMINAL = {"succeeded", "failed", "rejected", "cancelled"}


def expected(kind, i):
    """step id -> predicate over the step's output, for a job of this type and number."""
    if kind == "tools":
        return {"a": lambda o: o.get("value") == 3 * i,
                "b": lambda o: o.get("value") == 3 * i + 1,
                "c": lambda o: o.get("value") == (3 * i + 1) * 2}
    if kind == "exec":
        return {"x": lambda o: o.get("stdout") == f"{7 * i}\n" and o.get("exit_code") == 0,
                "y": lambda o: o.get("value") == i}
    if kind == "safety":
        return {"s": lambda o: o.get("verdict") == "allow",
                "t": lambda o: o.get("value") == i + 5}
    if kind == "kb":
        return {"u": lambda o: o.get("upserted") == 2,
                "q": lambda o: [h.get("id") for h in o.get("hits", [])] == [f"y-{i}"]}
    raise SystemExit(f"report.py: unknown job type {kind}")


def pct(xs, p):
    if not xs:
        return 0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def tsv(path, n):
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t", n - 1)
            if len(parts) == n:
                yield parts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for opt in ("jobs", "replies", "events", "redis", "faults"):
        ap.add_argument("--" + opt, required=True)
    a = ap.parse_args()

    jobs = {jid: (kind, int(i), int(ms)) for jid, kind, i, ms in tsv(a.jobs, 4)}
    replies = defaultdict(list)
    for key, ts, body in tsv(a.replies, 3):
        if key in jobs:
            try:
                replies[key].append((int(ts), json.loads(body)))
            except ValueError:
                replies[key].append((int(ts), {}))
    succeeded_events = defaultdict(int)
    for key, body in tsv(a.events, 2):
        if key in jobs:
            try:
                e = json.loads(body)
            except ValueError:
                continue
            if e.get("type") == "step.succeeded":
                succeeded_events[(key, e.get("step_id"))] += 1
    with open(a.redis, encoding="utf-8") as f:
        state = json.load(f)
    faults = sorted(((name, int(s), int(e)) for name, s, e in tsv(a.faults, 3)),
                    key=lambda f: f[1])

    lost = [j for j in jobs if not replies.get(j)]
    dup = [j for j in jobs if len(replies.get(j, [])) > 1]

    def outcome(r):
        return (r.get("status"), r.get("finished_ms"), json.dumps(r.get("outputs"), sort_keys=True))
    conflicting = [j for j in dup if len({outcome(r) for _, r in replies[j]}) > 1]
    wrong, wrong_redis, stuck = [], [], []
    lat, e2e, done_ts = [], [], []
    lat_by_type = defaultdict(list)
    for jid, (kind, i, sub) in jobs.items():
        want = expected(kind, i)
        if replies.get(jid):
            ts, r = replies[jid][0]
            done_ts.append(ts)
            e2e.append(ts - sub)
            if isinstance(r.get("duration_ms"), int):
                lat.append(r["duration_ms"])
                lat_by_type[kind].append(r["duration_ms"])
            outs = r.get("outputs") or {}
            if r.get("status") != "succeeded" or not all(
                    isinstance(outs.get(s), dict) and ok(outs[s]) for s, ok in want.items()):
                wrong.append(jid)
        st = state.get(jid)
        if not st or st.get("state") not in TERMINAL:
            stuck.append(jid)
            continue
        steps, out = st.get("steps") or {}, st.get("out") or {}
        for s, ok in want.items():
            try:
                o = json.loads(out.get(s, "null"))
            except ValueError:
                o = None
            if steps.get(s) != "succeeded" or not isinstance(o, dict) or not ok(o):
                wrong_redis.append(jid)
                break
    double = sorted(k for k, n in succeeded_events.items() if n > 1)
    done_ts.sort()

    def count(lo, hi):  # completions in [lo, hi)
        return bisect.bisect_left(done_ts, hi) - bisect.bisect_left(done_ts, lo)

    def recovery(s, e):
        base = count(s - 10000, s) / 10.0
        during = count(s, max(e, s + 1)) / (max(e - s, 1) / 1000.0)
        after = [t for t in done_ts if t >= e]
        first = (after[0] - e) if after else None
        rec = None
        if base > 0 and done_ts:
            t = e
            while t <= done_ts[-1]:
                if count(t, t + 2000) >= 0.8 * base * 2:
                    rec = t - e
                    break
                t += 250
        return base, during, first, rec

    print("# chaos: per fault (recovery: from the fault's end until 2 s hold >= 80 % of the "
          "pre-fault completion rate)")
    print(f"# {'fault':<22} {'at_s':>6} {'len_s':>6} {'base/s':>7} {'during/s':>8} "
          f"{'first_ms':>8} {'recovery_ms':>11}")
    t_start = min((m[2] for m in jobs.values()), default=0)
    kills = []
    for name, s, e in faults:
        base, during, first, rec = recovery(s, e)
        if name.startswith("kill:"):
            kills.append(rec)
        print(f"# {name:<22} {(s - t_start) / 1000:6.1f} {(e - s) / 1000:6.1f} {base:7.1f} "
              f"{during:8.1f} {first if first is not None else '-':>8} "
              f"{rec if rec is not None else 'never':>11}")
    if kills:
        got = [k for k in kills if k is not None]
        print(f"# kill -9 storm: {len(kills)} kills, recovery median "
              f"{statistics.median(got) if got else '-'} ms, max {max(got) if got else '-'} ms, "
              f"{len(kills) - len(got)} never recovered before the next fault/end")
    for kind, xs in sorted(lat_by_type.items()):
        print(f"# latency {kind:<7} n={len(xs)} p50={pct(xs, .5)}ms p99={pct(xs, .99)}ms "
              f"max={max(xs)}ms")
    for name, xs in (("lost", lost), ("duplicated", dup), ("conflicting", conflicting),
                     ("wrong", wrong),
                     ("wrong_redis", wrong_redis), ("stuck", stuck), ("double_applied", double)):
        if xs:
            print(f"# {name}: {' '.join(map(str, xs[:10]))}{' ...' if len(xs) > 10 else ''}",
                  file=sys.stderr)
    # Why the first few wrong jobs went wrong: their reply's status and error, or the step
    # whose output was off.
    for jid in wrong[:5]:
        r = replies[jid][0][1]
        outs = r.get("outputs") or {}
        bad = [s for s, ok in expected(jobs[jid][0], jobs[jid][1]).items()
               if not (isinstance(outs.get(s), dict) and ok(outs[s]))]
        print(f"# wrong {jid} ({jobs[jid][0]}): status={r.get('status')} "
              f"error={json.dumps(r.get('error'))[:300]} steps off: {' '.join(bad)}")
    print(f"jobs={len(jobs)} lost={len(lost)} duplicated={len(dup)} "
          f"conflicting={len(conflicting)} wrong={len(wrong)} "
          f"wrong_redis={len(wrong_redis)} stuck={len(stuck)} double_applied={len(double)} "
          f"p50_ms={pct(lat, .5)} p99_ms={pct(lat, .99)} max_ms={max(lat, default=0)} "
          f"e2e_p50_ms={pct(e2e, .5)} e2e_p99_ms={pct(e2e, .99)}")


if __name__ == "__main__":
    main()
