#!/usr/bin/env python3
"""faiss_bench.py -- the faiss side of `make bench-kb`: IndexFlatIP and IndexHNSWFlat (M=16,
efConstruction=200, one thread, like phx-kb's one thread per search) on the files bench_kb
wrote (base.f32, queries.f32, and truth.i32 = phx-kb's exact top 10 as ground truth).
Times are this thread's CPU time (time.thread_time, like bench_kb.c): the machine is shared.
Memory per vector is the growth of the process's resident set (VmRSS) while an index is built,
divided by N (faiss allocates outside Python's heap, so RSS is what can be measured).
usage: faiss_bench.py N DIM Q DATA DIR [HNSW]  -> one JSON line per measurement
HNSW 0 skips IndexHNSWFlat (exact only); default 1. BENCH_KB_BUILD_THREADS (default 1): OpenMP
threads for the IndexHNSWFlat build only."""
import json
import os
import sys
import time

import faiss
import numpy as np

n, dim, nq, data, d = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
with_hnsw = len(sys.argv) < 7 or sys.argv[6] != "0"
faiss.omp_set_num_threads(1)
base = np.fromfile(f"{d}/base.f32", dtype=np.float32).reshape(n, dim)
qs = np.fromfile(f"{d}/queries.f32", dtype=np.float32).reshape(nq, dim)
truth = np.fromfile(f"{d}/truth.i32", dtype=np.int32).reshape(nq, 10)


def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def recall(ids):
    return sum(len(set(ids[i][:10]) & set(truth[i])) for i in range(nq)) / (nq * 10)


rss0 = rss()
flat = faiss.IndexFlatIP(dim)
flat.add(base)
flat_bytes = (rss() - rss0) / n
t0 = time.thread_time()
for i in range(nq):  # one query at a time, as phx-kb answers them
    flat.search(qs[i : i + 1], 10)
te = time.thread_time() - t0
print(json.dumps({"engine": "faiss", "index": "IndexFlatIP", "n": n, "dim": dim, "data": data,
                  "vectors_per_s": round(n * nq / te), "qps": round(nq / te, 1),
                  "bytes_per_vector": round(flat_bytes)}))
if not with_hnsw:
    sys.exit(0)
del flat

# The build with BENCH_KB_BUILD_THREADS OpenMP threads (default 1), timed by the process's
# CPU time (all threads) and the wall clock, as bench_kb.c does; searches stay on one thread.
threads = max(1, int(os.environ.get("BENCH_KB_BUILD_THREADS", "1") or 1))
faiss.omp_set_num_threads(threads)
rss0 = rss()
c0, w0 = time.process_time(), time.perf_counter()
h = faiss.IndexHNSWFlat(dim, 16, faiss.METRIC_INNER_PRODUCT)
h.hnsw.efConstruction = 200
h.add(base)
tb, tw = time.process_time() - c0, time.perf_counter() - w0
faiss.omp_set_num_threads(1)
print(json.dumps({"engine": "faiss", "index": "IndexHNSWFlat", "n": n, "dim": dim, "data": data,
                  "threads": threads, "build_s": round(tb, 2), "build_wall_s": round(tw, 2),
                  "bytes_per_vector": round((rss() - rss0) / n)}))
for ef in (16, 32, 64, 128, 256, 512):
    h.hnsw.efSearch = ef
    ids = np.zeros((nq, 10), dtype=np.int64)
    t0 = time.thread_time()
    for i in range(nq):
        _, ids[i : i + 1] = h.search(qs[i : i + 1], 10)
    ts = time.thread_time() - t0
    print(json.dumps({"engine": "faiss", "index": "IndexHNSWFlat", "n": n, "data": data, "ef": ef,
                      "qps": round(nq / ts, 1), "recall10": round(recall(ids), 4)}))
