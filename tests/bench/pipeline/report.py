"""report.py -- turn the JSON reports of one `make bench` run into docs.

Writes the pipeline section of docs/benchmarks.md (between the markers
<!-- bench:pipeline:begin --> and <!-- bench:pipeline:end -->, everything else in the file --
the index of the other benchmark pages -- is kept as it is) and the throughput-latency plot
docs/benchmarks-pipeline.svg, drawn by hand: no plotting library is needed on a fresh machine.
"""
import argparse
import datetime
import glob
import json
import math
import os
import re

BEGIN, END = "<!-- bench:pipeline:begin -->", "<!-- bench:pipeline:end -->"


def load(d):
    runs = {}
    for p in glob.glob(os.path.join(d, "*.json")):
        with open(p) as f:
            r = json.load(f)
        runs[r.get("label") or os.path.basename(p)] = r
    return runs


def total_cpu(r):
    return sum(p.get("cpu_s_per_1k_jobs", 0) for p in r.get("procs", {}).values())


def peak(r, skip=()):
    vals = [(p.get("peak_rss_kb", 0), n) for n, p in r.get("procs", {}).items() if n not in skip]
    return max(vals) if vals else (0, "-")


def ratio(a, b):
    return f"{a / b:.2f}x" if b else "-"


def curve(runs, prefix, maxlabel):
    pts = [runs[k] for k in (f"{prefix}-open-25", f"{prefix}-open-50", f"{prefix}-open-75", maxlabel)
           if k in runs]
    return [(r["jobs_per_s"], r["latency_ms"]["p50"], r["latency_ms"]["p99"]) for r in pts]


def svg(series, path):
    W, H, L, R, T, B = 720, 420, 70, 170, 30, 50
    allx = [x for _, _, pts in series for x, _, _ in pts] or [1]
    ally = [y for _, _, pts in series for _, a, b in pts for y in (a, b) if y > 0] or [1]
    xmax = max(allx) * 1.1
    ylo = 10 ** math.floor(math.log10(min(ally)))
    yhi = 10 ** math.ceil(math.log10(max(ally)))
    if yhi <= ylo:
        yhi = ylo * 10

    def X(v):
        return L + (W - L - R) * v / xmax

    def Y(v):
        v = max(v, ylo)
        return T + (H - T - B) * (1 - (math.log10(v) - math.log10(ylo)) /
                                  (math.log10(yhi) - math.log10(ylo)))

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{L}" y="18" font-size="14">2-step chain: end-to-end latency vs throughput '
         f'(same machine, same run)</text>']
    d = ylo
    while d <= yhi * 1.0001:
        y = Y(d)
        o.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{d:g}</text>')
        d *= 10
    # About six ticks at 1, 2 or 5 times a power of ten.
    raw = xmax / 6
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    v = 0.0
    while v <= xmax:
        x = X(v)
        o.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{H - B}" stroke="#eee"/>')
        o.append(f'<text x="{x:.1f}" y="{H - B + 16}" text-anchor="middle">{v:g}</text>')
        v += step
    o.append(f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>')
    o.append(f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>')
    o.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">'
             f'throughput (jobs/s)</text>')
    o.append(f'<text x="16" y="{(T + H - B) / 2}" text-anchor="middle" '
             f'transform="rotate(-90 16 {(T + H - B) / 2})">latency (ms, log scale)</text>')
    ly = T + 10
    for name, color, pts in series:
        for idx, dash in ((2, ""), (1, ' stroke-dasharray="5,4"')):
            line = " ".join(f"{X(p[0]):.1f},{Y(p[idx]):.1f}" for p in pts)
            o.append(f'<polyline points="{line}" fill="none" stroke="{color}" '
                     f'stroke-width="2"{dash}/>')
            for p in pts:
                o.append(f'<circle cx="{X(p[0]):.1f}" cy="{Y(p[idx]):.1f}" r="3" fill="{color}"/>')
            o.append(f'<line x1="{W - R + 12}" y1="{ly}" x2="{W - R + 40}" y2="{ly}" '
                     f'stroke="{color}" stroke-width="2"{dash}/>')
            o.append(f'<text x="{W - R + 46}" y="{ly + 4}">{name} {"p99" if idx == 2 else "p50"}'
                     f'</text>')
            ly += 18
    o.append(f'<text x="{W - R + 12}" y="{ly + 10}" font-size="10">points: open loop at</text>')
    o.append(f'<text x="{W - R + 12}" y="{ly + 23}" font-size="10">25/50/75 % of max,</text>')
    o.append(f'<text x="{W - R + 12}" y="{ly + 36}" font-size="10">then closed-loop max</text>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--doc", required=True)
    ap.add_argument("--svg", required=True)
    ap.add_argument("--phx-c", required=True)
    ap.add_argument("--celery-c", required=True)
    ap.add_argument("--jobs", required=True)
    ap.add_argument("--seconds", default="?")
    a = ap.parse_args()
    runs = load(a.dir)
    pmax, cmax = runs[f"phoenix-max-c{a.phx_c}"], runs[f"celery-max-c{a.celery_c}"]
    p50r, c50r = runs.get("phoenix-open-50"), runs.get("celery-open-50")
    pidle, cidle = runs.get("phoenix-idle"), runs.get("celery-idle")
    load1 = os.getloadavg()
    now = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    md = [BEGIN, "## Pipeline against Celery", "",
          f"Command: `make bench` (tests/bench/pipeline/run.sh; BENCH_JOBS={a.jobs}). "
          f"Run {now} on {os.cpu_count()} vCPUs, load average at the end "
          f"{load1[0]:.1f} / {load1[1]:.1f} / {load1[2]:.1f} (other developers' work shares "
          f"the machine: compare the two columns, which ran minutes apart, rather than "
          f"absolute figures). The whole run took {a.seconds} s.", "",
          f"Job: the 2-step `tool.calc` chain (step b reads step a's value); {a.jobs} jobs per "
          f"maximum-throughput run, 64 in flight. Phoenix: planner + tools + exec pools on "
          f"phx-devbroker and Redis (AOF everysec), PHX_CONCURRENCY={a.phx_c} (best of 2 and 8), "
          f"PHX_KAFKA_CONF_fetch_wait_max_ms=2 (see run.sh: the dev broker's fetch wait). "
          f"Celery {cmax.get('celery_version', '5.2.6')} (Debian python3-celery): Redis broker "
          f"and result backend (AOF everysec), prefork concurrency {a.celery_c} (best of 2 and "
          f"4), gossip/mingle/heartbeat off. Latency is end to end, submit to reply; in open "
          f"loop from each job's intended send time. Each run starts on a fresh stack or worker "
          f"and broker (see run.sh: the dev broker's lookup cost grows with the log it holds); "
          f"open-loop points after 100 unmeasured jobs.", "",
          "| | Phoenix | Celery | Phoenix/Celery |", "|---|---|---|---|"]

    def row(name, pv, cv, fmt, better_high=True):
        r = ratio(pv, cv) if better_high else ratio(pv, cv)
        md.append(f"| {name} | {fmt.format(pv)} | {fmt.format(cv)} | {r} |")

    row("max throughput, jobs/s", pmax["jobs_per_s"], cmax["jobs_per_s"], "{:.1f}")
    row("steps/s at max", pmax["steps_per_s"], cmax["steps_per_s"], "{:.1f}")
    row("p99 at max, ms", pmax["latency_ms"]["p99"], cmax["latency_ms"]["p99"], "{:.1f}")
    if p50r and c50r:
        row("p99 at 50 % of own max, ms", p50r["latency_ms"]["p99"], c50r["latency_ms"]["p99"],
            "{:.1f}")
        row("p50 at 50 % of own max, ms", p50r["latency_ms"]["p50"], c50r["latency_ms"]["p50"],
            "{:.1f}")
    if pidle and cidle:
        row("p50 one job at a time, ms", pidle["latency_ms"]["p50"], cidle["latency_ms"]["p50"],
            "{:.1f}")
    row("CPU s per 1,000 jobs, all processes", total_cpu(pmax), total_cpu(cmax), "{:.2f}")
    pk, ck = peak(pmax), peak(cmax)
    md.append(f"| peak RSS of the largest process, MB | {pk[0] / 1024:.1f} ({pk[1]}) | "
              f"{ck[0] / 1024:.1f} ({ck[1]}) | |")
    row("Redis commands per job", pmax.get("redis_cmds_per_job", 0),
        cmax.get("redis_cmds_per_job", 0), "{:.1f}")
    md.append(f"| Kafka messages per job | {pmax.get('kafka_msgs_per_job', 0):.1f} | - | |")
    md += ["", "![throughput vs latency](benchmarks-pipeline.svg)", "",
           "Every run (lost = no reply by 30 s after the last send; wrong = a reply whose value "
           "is not the expected one):", "",
           "| run | mode | jobs | jobs/s | steps/s | p50 ms | p90 ms | p99 ms | p99.9 ms | "
           "lost | failed | wrong | dup |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in sorted(runs):
        r = runs[name]
        L = r["latency_ms"]
        mode = (f"open {r['rate']:.0f}/s" if r["mode"] == "open"
                else f"closed {r.get('concurrency', '?')}")
        md.append(f"| {name} | {mode} | {r['replied']}/{r['jobs']} | {r['jobs_per_s']:.1f} | "
                  f"{r['steps_per_s']:.1f} | {L['p50']:.1f} | {L['p90']:.1f} | {L['p99']:.1f} | "
                  f"{L['p99_9']:.1f} | {r['lost']} | {r['failed']} | {r['wrong']} | "
                  f"{r['duplicates']} |")
    md += ["", f"Per process at Phoenix's maximum (phoenix-max-c{a.phx_c}; peak RSS is this run's, "
           "the kernel's VmHWM reset at its start; Redis round trips are each client's "
           "`phx_redis_commands_total`):", "",
           "| process | CPU s / 1k jobs | peak RSS MB | Redis round trips / job |",
           "|---|---|---|---|"]
    for n, p in sorted(pmax.get("procs", {}).items()):
        rt = p.get("redis_round_trips")
        md.append(f"| {n} | {p['cpu_s_per_1k_jobs']:.2f} | {p['peak_rss_kb'] / 1024:.1f} | "
                  f"{rt / max(pmax['replied'], 1):.2f} |" if rt is not None else
                  f"| {n} | {p['cpu_s_per_1k_jobs']:.2f} | {p['peak_rss_kb'] / 1024:.1f} | - |")
    for n, p in sorted(cmax.get("procs", {}).items()):
        md.append(f"| celery: {n} | {p['cpu_s_per_1k_jobs']:.2f} | {p['peak_rss_kb'] / 1024:.1f} "
                  f"(largest process; {p['rss_kb'] / 1024:.1f} in all) | - |")
    if "redis_round_trips_per_step" in pmax:
        md += ["", f"Redis round trips (all Phoenix clients): "
               f"{pmax['redis_round_trips_per_job']:.1f} per job, "
               f"**{pmax['redis_round_trips_per_step']:.1f} per step** (target <= 3). Commands "
               f"per job by name (INFO commandstats, calls inside Lua scripts included): "
               + ", ".join(f"{k} {v:.1f}" for k, v in
                           sorted(pmax.get("redis_cmds_per_job_by_cmd", {}).items(),
                                  key=lambda kv: -kv[1])) + ".",
               "", "Kafka messages per job by topic: "
               + ", ".join(f"{k} {v:.1f}" for k, v in
                           sorted(pmax.get("kafka_msgs_per_job_by_topic", {}).items())) + "."]
    base = runs.get("phoenix-base-max")
    if base:
        md += ["", "Before and after a change (BENCH_BASE_BIN: the same maximum-throughput test "
               "against a stack of the earlier binaries, in the same run):", "",
               "| | before | after | after/before |", "|---|---|---|---|"]
        for name, key, fmt in (("jobs/s", "jobs_per_s", "{:.1f}"),
                               ("Redis round trips per step", "redis_round_trips_per_step",
                                "{:.2f}"),
                               ("Redis commands per job", "redis_cmds_per_job", "{:.1f}")):
            b, n = base.get(key, 0), pmax.get(key, 0)
            md.append(f"| {name} | {fmt.format(b)} | {fmt.format(n)} | {ratio(n, b)} |")
        for name, key in (("p50 ms", "p50"), ("p99 ms", "p99")):
            b, n = base["latency_ms"][key], pmax["latency_ms"][key]
            md.append(f"| {name} | {b:.1f} | {n:.1f} | {ratio(n, b)} |")
        b, n = total_cpu(base), total_cpu(pmax)
        md.append(f"| CPU s per 1,000 jobs | {b:.2f} | {n:.2f} | {ratio(n, b)} |")
    mix = runs.get("phoenix-mix")
    if mix:
        md += ["", f"Job mix (chain:6, dag:2, exec:2; closed loop, 64 in flight): "
               f"{mix['jobs_per_s']:.1f} jobs/s, {mix['steps_per_s']:.1f} steps/s, lost "
               f"{mix['lost']}, failed {mix['failed']}, wrong {mix['wrong']}.", "",
               "| kind | jobs | p50 ms | p90 ms | p99 ms | p99.9 ms |", "|---|---|---|---|---|---|"]
        for k, v in mix.get("by_kind", {}).items():
            md.append(f"| {k} | {v['jobs']} | {v['p50']:.1f} | {v['p90']:.1f} | {v['p99']:.1f} "
                      f"| {v['p99_9']:.1f} |")
    md.append(END)
    section = "\n".join(md)
    doc = open(a.doc).read() if os.path.exists(a.doc) else "# Benchmarks\n"
    if BEGIN in doc and END in doc:
        doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: section, doc,
                     flags=re.S)
    else:
        doc = doc.rstrip("\n") + "\n\n" + section + "\n"
    with open(a.doc, "w") as f:
        f.write(doc)
    svg([("Phoenix", "#c0392b", curve(runs, "phoenix", f"phoenix-max-c{a.phx_c}")),
         ("Celery", "#2c7fb8", curve(runs, "celery", f"celery-max-c{a.celery_c}"))], a.svg)
    print(f"Phoenix/Celery: throughput {ratio(pmax['jobs_per_s'], cmax['jobs_per_s'])}, "
          f"p99 at max {ratio(pmax['latency_ms']['p99'], cmax['latency_ms']['p99'])}"
          + (f", p99 at 50 % of own max "
             f"{ratio(p50r['latency_ms']['p99'], c50r['latency_ms']['p99'])}"
             if p50r and c50r else ""))
    print(f"wrote {a.doc} and {a.svg}")


if __name__ == "__main__":
    main()
