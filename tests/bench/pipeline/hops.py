#!/usr/bin/env python3
"""tests/bench/pipeline/hops.py LOG_DIR [JOB_ID_PREFIX [FROM [TO]]] -- where one job's time goes.

Reads the span lines every stack process writes to LOG_DIR/*.log (lib/trace.c: one "span" JSON
line per hop and per Redis/Kafka call inside it) and prints, over the jobs whose id starts with
JOB_ID_PREFIX (default "bench-", i.e. phx-bench's) and whose hops ended between FROM and TO (UTC
times as the logs write them, e.g. 2026-11-30T23:01:02.000Z; default: all), the median of: the hops inside the stack
from the first message in hand to the last one's outputs confirmed, the time in handlers (of
which producing until acked, and Redis), and the time between hops (a message waiting for its
consumer's fetch and thread). docs/benchmarks.md ("Latency per hop") records its output next to
phx-bench's end-to-end figures; the difference is the client's own publish and reply read plus
the first and last fetch.

A span line's "ts" is when it ended, to the millisecond; its start is ts - duration_ms, so a
single gap is only good to +-1 ms, while medians over hundreds of jobs are not biased by it.
"""
import collections
import datetime
import glob
import json
import os
import statistics
import sys


def when(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000.0


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    prefix = sys.argv[2] if len(sys.argv) > 2 else "bench-"
    since = sys.argv[3] if len(sys.argv) > 3 else ""
    until = sys.argv[4] if len(sys.argv) > 4 else "9"
    hops = collections.defaultdict(list)      # trace -> [(start, end, name, span_id)]
    children = collections.defaultdict(list)  # parent span id -> [(name, duration)]
    for path in glob.glob(os.path.join(sys.argv[1], "*.log")):
        with open(path, errors="replace") as f:
            for line in f:
                if '"span"' not in line:
                    continue
                try:
                    o = json.loads(line)
                except ValueError:
                    continue
                name, dur = o.get("span"), o.get("duration_ms")
                if not name or dur is None:
                    continue
                if " process " in name:
                    if not str(o.get("job_id", "")).startswith(prefix) or \
                            not since <= o["ts"] <= until:
                        continue
                    end = when(o["ts"])
                    hops[o["trace_id"]].append((end - dur, end, name, o["span_id"]))
                elif o.get("parent_id"):
                    children[o["parent_id"]].append((name, dur))
    rows = collections.defaultdict(list)
    for spans in hops.values():
        spans.sort()
        inside = spans[-1][1] - spans[0][0]
        handlers = sum(e - s for s, e, _, _ in spans)
        produce = sum(d for _, _, _, sid in spans for n, d in children[sid]
                      if n.startswith("kafka produce"))
        redis = sum(d for _, _, _, sid in spans for n, d in children[sid]
                    if n.startswith("redis"))
        rows["hops per job"].append(len(spans))
        rows["first in hand to last confirmed, ms"].append(inside)
        rows["in handlers, ms"].append(handlers)
        rows["  of which producing until acked, ms"].append(produce)
        rows["  of which Redis, ms"].append(redis)
        rows["between hops, ms"].append(inside - handlers)
        for i, (s, e, n, _) in enumerate(spans):
            rows["hop %d %s, ms" % (i + 1, n)].append(e - s)
            if i:
                rows["gap before hop %d, ms" % (i + 1)].append(s - spans[i - 1][1])
    if not hops:
        sys.exit("no hop spans of jobs starting with %r under %s" % (prefix, sys.argv[1]))
    print("%d jobs; medians (p90 in brackets)" % len(hops))
    for k, v in rows.items():
        v = sorted(v)
        print("%-60s %8.2f  (%.2f)" % (k, statistics.median(v), v[int(0.9 * (len(v) - 1))]))


if __name__ == "__main__":
    main()
