"""celery_bench.py -- drive Celery workers with N 2-step calc chains; report like phx-bench.

Usage: celery_bench.py --redis-port P --jobs N [--concurrency C | --rate R] [--warmup N]
                       [--worker-pids PID,...] [--label L] [--json FILE]

Latency is measured the way phx-bench measures it: from the intended send time in open loop
(--rate: job i is due at t0 + i/R), from the actual send in closed loop (--concurrency jobs in
flight). Completion is seen the way Celery's own AsyncResult.get() sees it with the Redis
backend: the worker PUBLISHes every result on celery-task-meta-<id>, and this driver
PSUBSCRIBEs to them, so measuring adds no work on the workers' side. The chain's final task
id is chosen before sending, so no result can arrive before it is known.

CPU seconds and peak RSS are read from /proc for the worker processes given (the main
process and its prefork children) and for the Redis server; Redis commands from INFO
commandstats. Percentiles are exact (sorted samples), with phx-bench's rank rule.
"""
import argparse
import json
import math
import os
import sys
import threading
import time
import uuid

import celery
import redis
from celery import chain

import celery_tasks


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_mem(pid):
    hwm = rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return hwm, rss


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def tree(pids):
    seen = []
    for p in pids:
        seen.append(p)
        seen += tree(children(p))
    return seen


def snapshot(groups):
    snap = {}
    for name, pids in groups.items():
        cpu = hwm = rss = 0.0
        for p in tree(pids):
            try:
                cpu += proc_cpu(p)
                h, r = proc_mem(p)
                hwm, rss = max(hwm, h), rss + r
            except OSError:
                continue
        snap[name] = {"cpu_s": cpu, "peak_rss_kb": hwm, "rss_kb": rss}
    return snap


def reset_peaks(groups):
    for pids in groups.values():
        for p in tree(pids):
            try:
                with open(f"/proc/{p}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass


def commandstats(r):
    out = {}
    for k, v in r.info("commandstats").items():
        name = k[len("cmdstat_"):]
        if name != "info":
            out[name] = v["calls"]
    return out


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0.0
    rank = max(1, min(len(sorted_vals), math.ceil(p / 100.0 * len(sorted_vals) - 1e-9)))
    return sorted_vals[rank - 1]


class Run:
    def __init__(self, r, jobs, concurrency, rate, timeout):
        self.r, self.jobs, self.conc, self.rate, self.timeout = r, jobs, concurrency, rate, timeout
        self.ids = {}
        self.due = [0.0] * jobs
        self.lat = []
        self.replied = self.succeeded = self.failed = self.wrong = self.dups = 0
        self.done = set()
        self.lock = threading.Lock()
        self.slots = threading.Semaphore(concurrency) if not rate else None
        self.last_reply = 0.0
        self.stop = False

    def reader(self, ps):
        while not self.stop:
            m = ps.get_message(timeout=0.1)
            if not m or m["type"] != "pmessage":
                continue
            now = time.monotonic()
            body = json.loads(m["data"])
            with self.lock:
                i = self.ids.get(body.get("task_id"))
                if i is None:
                    continue
                if i in self.done:
                    self.dups += 1
                    continue
                self.done.add(i)
                self.replied += 1
                self.lat.append((now - self.due[i]) * 1000.0)
                self.last_reply = now
                if body.get("status") == "SUCCESS":
                    self.succeeded += 1
                    v = (body.get("result") or {}).get("value")
                    if not isinstance(v, (int, float)) or abs(v - (7 * i + 1)) > 1e-6:
                        self.wrong += 1
                else:
                    self.failed += 1
            if self.slots:
                self.slots.release()

    def run(self):
        ps = self.r.pubsub(ignore_subscribe_messages=True)
        ps.psubscribe("celery-task-meta-*")
        t = threading.Thread(target=self.reader, args=(ps,), daemon=True)
        t.start()
        time.sleep(0.2)  # the subscription is live before the first job leaves
        self.t0 = time.monotonic()
        sent = 0
        for i in range(self.jobs):
            if self.rate:
                due = self.t0 + i / self.rate
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            else:
                self.slots.acquire()
                due = time.monotonic()
            tid = str(uuid.uuid4())
            with self.lock:
                self.ids[tid] = i
                self.due[i] = due
            chain(
                celery_tasks.calc.s(f"{i}*(3+4)"),
                celery_tasks.calc_next.s("{{a}} + 1").set(task_id=tid),
            ).apply_async()
            sent += 1
        self.sent = sent
        last_send = time.monotonic()
        while time.monotonic() - last_send < self.timeout:
            with self.lock:
                if self.replied >= self.jobs:
                    break
            time.sleep(0.05)
        self.stop = True
        t.join()
        ps.close()
        self.elapsed = (self.last_reply or time.monotonic()) - self.t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--worker-pids", default="")
    ap.add_argument("--workers", type=int, default=0, help="prefork concurrency (reported)")
    ap.add_argument("--label", default="celery")
    ap.add_argument("--json")
    a = ap.parse_args()
    r = redis.Redis(port=a.redis_port)
    groups = {}
    if a.worker_pids:
        groups["celery-worker"] = [int(p) for p in a.worker_pids.split(",")]
    rpid = r.info("server")["process_id"]
    groups["redis"] = [rpid]
    if a.warmup:
        Run(r, a.warmup, a.concurrency, 0, a.timeout).run()
    before, cs0 = snapshot(groups), commandstats(r)
    reset_peaks(groups)
    run = Run(r, a.jobs, a.concurrency, a.rate, a.timeout)
    run.run()
    time.sleep(0.3)
    after, cs1 = snapshot(groups), commandstats(r)
    lat = sorted(run.lat)
    n = max(run.replied, 1)
    rep = {
        "label": a.label,
        "system": "celery",
        "celery_version": celery.__version__,
        "mode": "open" if a.rate else "closed",
        "mix": "chain:1",
        "jobs": a.jobs,
        "sent": run.sent,
        "replied": run.replied,
        "succeeded": run.succeeded,
        "failed": run.failed,
        "wrong": run.wrong,
        "duplicates": run.dups,
        "lost": run.sent - run.replied,
        "elapsed_s": run.elapsed,
        "jobs_per_s": run.replied / run.elapsed if run.elapsed > 0 else 0,
        "steps_per_s": 2 * run.succeeded / run.elapsed if run.elapsed > 0 else 0,
        "latency_ms": {
            "p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99),
            "p99_9": pct(lat, 99.9), "max": lat[-1] if lat else 0,
            "min": lat[0] if lat else 0, "mean": sum(lat) / len(lat) if lat else 0,
        },
        "redis_cmds_per_job": sum(cs1.get(k, 0) - v for k, v in cs0.items()) / n
        + sum(v for k, v in cs1.items() if k not in cs0) / n,
        "redis_cmds_per_job_by_cmd": {
            k: (v - cs0.get(k, 0)) / n for k, v in cs1.items() if v - cs0.get(k, 0) > 0
        },
        "procs": {
            name: {
                "cpu_s": after[name]["cpu_s"] - before[name]["cpu_s"],
                "cpu_s_per_1k_jobs": (after[name]["cpu_s"] - before[name]["cpu_s"]) * 1000 / n,
                "peak_rss_kb": after[name]["peak_rss_kb"],
                "rss_kb": after[name]["rss_kb"],
            }
            for name in groups
        },
    }
    if a.rate:
        rep["rate"] = a.rate
    else:
        rep["concurrency"] = a.concurrency
    if a.workers:
        rep["workers"] = a.workers
    L = rep["latency_ms"]
    print(f"celery {a.label}: {rep['mode']} loop, {a.jobs} chains, prefork {a.workers}")
    print(f"jobs        {run.sent} sent, {run.replied} replied, {run.succeeded} succeeded, "
          f"{run.failed} failed, {run.wrong} wrong, {run.dups} duplicate, {rep['lost']} lost")
    print(f"throughput  {rep['jobs_per_s']:.1f} jobs/s, {rep['steps_per_s']:.1f} steps/s "
          f"over {run.elapsed:.2f} s")
    print(f"latency ms  p50 {L['p50']:.2f}  p90 {L['p90']:.2f}  p99 {L['p99']:.2f}  "
          f"p99.9 {L['p99_9']:.2f}  max {L['max']:.2f}  mean {L['mean']:.2f}")
    print(f"redis       {rep['redis_cmds_per_job']:.2f} commands/job")
    for name, p in rep["procs"].items():
        print(f"{name:<14} cpu s/1k jobs {p['cpu_s_per_1k_jobs']:.3f}  peak RSS "
              f"{p['peak_rss_kb'] / 1024:.1f} MB  RSS {p['rss_kb'] / 1024:.1f} MB")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rep, f, indent=2)
    return 0 if rep["lost"] == 0 and run.failed == 0 and run.wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
