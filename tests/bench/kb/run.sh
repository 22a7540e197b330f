#!/usr/bin/env bash
# tests/bench/kb/run.sh BUILD -- phx-kb's exact scan and HNSW against faiss (IndexFlatIP,
# IndexHNSWFlat) on the same synthetic data; prints Markdown tables (docs/benchmarks-kb.md).
# faiss runs under /usr/bin/python3: python3-faiss is a Debian package.
# BENCH_KB_N (default "100000"), BENCH_KB_DIM (384), BENCH_KB_Q (1000 queries),
# BENCH_KB_DATA ("uniform clustered"), BENCH_KB_HNSW_DATA (the data sets that also get the
# HNSW runs, default all of BENCH_KB_DATA; the others are exact scans only: uniform random data
# has no neighbourhood structure and its graph builds are the slow part),
# BENCH_KB_FAISS_HNSW_MAX_N (no faiss IndexHNSWFlat above this n; default no limit),
# BENCH_KB_BUILD_THREADS (threads for both engines' HNSW builds, default 1; searches always
# one thread),
# BENCH_KB_OUT (also keep the raw JSON lines in this file). Data stays in a temp dir,
# removed at the end.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
D=$(mktemp -d /tmp/phx-bench-kb.XXXXXX)
trap 'rm -rf "$D"' EXIT
: >"$D/results.jsonl"
DATA=${BENCH_KB_DATA:-uniform clustered}
for n in ${BENCH_KB_N:-100000}; do
    for data in $DATA; do
        hnsw=0
        case " ${BENCH_KB_HNSW_DATA:-$DATA} " in *" $data "*) hnsw=1 ;; esac
        fhnsw=$hnsw
        [ -n "${BENCH_KB_FAISS_HNSW_MAX_N:-}" ] && [ "$n" -gt "$BENCH_KB_FAISS_HNSW_MAX_N" ] && fhnsw=0
        echo "bench-kb: n=$n dim=${BENCH_KB_DIM:-384} data=$data hnsw phx=$hnsw faiss=$fhnsw $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
        "$ROOT/$BUILD/tests/bench_kb" "$n" "${BENCH_KB_DIM:-384}" "${BENCH_KB_Q:-1000}" "$data" "$D" "$hnsw" | tee -a "$D/results.jsonl" >&2
        /usr/bin/python3 "$ROOT/tests/bench/kb/faiss_bench.py" "$n" "${BENCH_KB_DIM:-384}" "${BENCH_KB_Q:-1000}" "$data" "$D" "$fhnsw" | tee -a "$D/results.jsonl" >&2
    done
done
echo "bench-kb: done $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
[ -z "${BENCH_KB_OUT:-}" ] || cp "$D/results.jsonl" "$BENCH_KB_OUT"
# The summary: exact vectors/s; build time; QPS at the smallest ef reaching recall@10 >= 0.95;
# memory per vector (phx: malloc heap growth; faiss: RSS growth); then every ef measured; then
# the int8 exact scan at each re-rank factor.
jq -rs '
  def best(e; i; n; d): [.[] | select(.engine == e and .index == i and .n == n and .data == d and .ef != null and .recall10 >= 0.95)] | min_by(.ef) // {};
  def one(e; i; n; d; f): [.[] | select(.engine == e and .index == i and .n == n and .data == d and has(f))][0][f] // "-";
  (map({n, data}) | unique) as $sets |
  "| n | data | exact vectors/s phx | exact vectors/s faiss | HNSW build s phx | faiss | HNSW QPS at recall@10 >= 0.95 phx (ef, recall) | faiss (ef, recall) | exact bytes/vector phx | faiss | HNSW bytes/vector phx | faiss |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ($sets[] as $s |
    best("phx"; "hnsw"; $s.n; $s.data) as $p | best("faiss"; "IndexHNSWFlat"; $s.n; $s.data) as $f |
    "| \($s.n) | \($s.data) | \(one("phx"; "exact"; $s.n; $s.data; "vectors_per_s")) | \(one("faiss"; "IndexFlatIP"; $s.n; $s.data; "vectors_per_s")) | \(one("phx"; "hnsw"; $s.n; $s.data; "build_s")) | \(one("faiss"; "IndexHNSWFlat"; $s.n; $s.data; "build_s")) | \($p.qps // "-") (\($p.ef // "-"), \($p.recall10 // "-")) | \($f.qps // "-") (\($f.ef // "-"), \($f.recall10 // "-")) | \(one("phx"; "exact"; $s.n; $s.data; "bytes_per_vector")) | \(one("faiss"; "IndexFlatIP"; $s.n; $s.data; "bytes_per_vector")) | \(one("phx"; "hnsw"; $s.n; $s.data; "heap_bytes_per_vector")) | \(one("faiss"; "IndexHNSWFlat"; $s.n; $s.data; "bytes_per_vector")) |"),
  "",
  "| n | data | ef | phx QPS | phx recall | faiss QPS | faiss recall |",
  "|---|---|---|---|---|---|---|",
  ($sets[] as $s | (map(select(.n == $s.n and .data == $s.data and .ef != null) | .ef) | unique)[] as $ef |
    ([.[] | select(.engine == "phx" and .n == $s.n and .data == $s.data and .ef == $ef)][0] // {}) as $p |
    ([.[] | select(.engine == "faiss" and .n == $s.n and .data == $s.data and .ef == $ef)][0] // {}) as $f |
    "| \($s.n) | \($s.data) | \($ef) | \($p.qps // "-") | \($p.recall10 // "-") | \($f.qps // "-") | \($f.recall10 // "-") |"),
  "",
  "| n | data | int8 re-rank factor | phx int8 exact vectors/s | recall@10 vs float32 | bytes/vector (float32 + int8 copy) |",
  "|---|---|---|---|---|---|",
  (.[] | select(.index == "exact_int8") | "| \(.n) | \(.data) | \(.rerank) | \(.vectors_per_s) | \(.recall10) | \(.bytes_per_vector) |")' "$D/results.jsonl"
