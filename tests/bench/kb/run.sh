#!/usr/bin/env bash
# tests/bench/kb/run.sh BUILD -- phx-kb's exact scan and HNSW against faiss (IndexFlatIP,
# IndexHNSWFlat) on the same synthetic data; prints a Markdown table (docs/benchmarks-kb.md).
# faiss runs under /usr/bin/python3: python3-faiss is a Debian package.
# BENCH_KB_N (default "100000"), BENCH_KB_DIM (384), BENCH_KB_Q (1000 queries),
# BENCH_KB_DATA ("uniform clustered"). Data and results stay in a temp dir, removed at the end.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
D=$(mktemp -d /tmp/phx-bench-kb.XXXXXX)
trap 'rm -rf "$D"' EXIT
: >"$D/results.jsonl"
for n in ${BENCH_KB_N:-100000}; do
    for data in ${BENCH_KB_DATA:-uniform clustered}; do
        echo "bench-kb: n=$n dim=${BENCH_KB_DIM:-384} data=$data" >&2
        "$ROOT/$BUILD/tests/bench_kb" "$n" "${BENCH_KB_DIM:-384}" "${BENCH_KB_Q:-1000}" "$data" "$D" | tee -a "$D/results.jsonl" >&2
        /usr/bin/python3 "$ROOT/tests/bench/kb/faiss_bench.py" "$n" "${BENCH_KB_DIM:-384}" "${BENCH_KB_Q:-1000}" "$data" "$D" | tee -a "$D/results.jsonl" >&2
    done
done
# The table: exact vectors/s; build time; QPS at the smallest ef reaching recall@10 >= 0.95.
jq -rs '
  def best(e; i; n; d): [.[] | select(.engine == e and .index == i and .n == n and .data == d and .ef != null and .recall10 >= 0.95)] | min_by(.ef) // {};
  def one(e; i; n; d; f): [.[] | select(.engine == e and .index == i and .n == n and .data == d and has(f))][0][f] // "-";
  (map({n, data}) | unique) as $sets |
  "| n | data | exact vectors/s phx | exact vectors/s faiss | HNSW build s phx | faiss | HNSW QPS at recall@10 >= 0.95 phx (ef, recall) | faiss (ef, recall) | phx HNSW bytes/vector |",
  "|---|---|---|---|---|---|---|---|---|",
  ($sets[] as $s |
    best("phx"; "hnsw"; $s.n; $s.data) as $p | best("faiss"; "IndexHNSWFlat"; $s.n; $s.data) as $f |
    "| \($s.n) | \($s.data) | \(one("phx"; "exact"; $s.n; $s.data; "vectors_per_s")) | \(one("faiss"; "IndexFlatIP"; $s.n; $s.data; "vectors_per_s")) | \(one("phx"; "hnsw"; $s.n; $s.data; "build_s")) | \(one("faiss"; "IndexHNSWFlat"; $s.n; $s.data; "build_s")) | \($p.qps // "-") (\($p.ef // "-"), \($p.recall10 // "-")) | \($f.qps // "-") (\($f.ef // "-"), \($f.recall10 // "-")) | \(one("phx"; "hnsw"; $s.n; $s.data; "bytes_per_vector")) |")' "$D/results.jsonl"
