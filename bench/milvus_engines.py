"""Which embedded Milvus to ship: insert rate, search latency (plain and with a selective
filter) and recall@10 against exact search, on the same clustered vectors, for one engine per
run. `bench/milvus_engines.sh` runs it for each candidate in its own virtualenv (the candidates
cannot be installed together) and prints the table recorded in docs/retrieval-engine.md.

    python -m bench.milvus_engines --engine lite   --n 20000   # milvus-lite (whatever version is installed)
    python -m bench.milvus_engines --engine server --n 20000   # the PyPI `milvus` standalone server
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIM = 384


def clustered(n: int, dim: int, clusters: int = 50, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim)).astype("float32")
    labels = rng.integers(0, clusters, size=n)
    vecs = centers[labels] + 0.35 * rng.normal(size=(n, dim)).astype("float32")
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs, labels


def p50_ms(xs: list[float]) -> float:
    return round(statistics.median(xs) * 1000, 2)


def run(engine: str, n: int, queries: int, index_type: str) -> dict:
    from pymilvus import DataType, MilvusClient

    tmp = Path(tempfile.mkdtemp(prefix="milvus-bench-"))
    server = None
    t0 = time.perf_counter()
    if engine == "server":
        from milvus import default_server

        default_server.set_base_dir(str(tmp / "server"))
        default_server.start()
        client = MilvusClient(uri=f"http://127.0.0.1:{default_server.listen_port}")
        server = default_server
    else:
        client = MilvusClient(str(tmp / "lite.db"))
    start_s = time.perf_counter() - t0
    try:
        version = client.get_server_version()
    except Exception:  # noqa: BLE001 - milvus-lite 2.5 does not implement GetVersion
        version = "unknown"
    vecs, labels = clustered(n, DIM)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("tag", DataType.INT64)
    idx = client.prepare_index_params()
    params = {"M": 16, "efConstruction": 200} if index_type == "HNSW" else {}
    idx.add_index("vec", index_type=index_type, metric_type="COSINE", params=params)
    client.create_collection("bench", schema=schema, index_params=idx)
    t0 = time.perf_counter()
    for i in range(0, n, 1000):
        client.insert("bench", [{"id": j, "vec": vecs[j].tolist(), "tag": j % 1000} for j in range(i, min(n, i + 1000))])
    insert_rps = n / (time.perf_counter() - t0)
    client.load_collection("bench")
    rng = np.random.default_rng(1)
    qidx = rng.integers(0, n, size=queries)
    qs = vecs[qidx] + 0.05 * rng.normal(size=(queries, DIM)).astype("float32")
    exact = np.argsort(-(qs @ vecs.T), axis=1)[:, :10]
    client.search("bench", [qs[0].tolist()], limit=10, search_params={"params": {"ef": 64}})  # warm
    lat, recall = [], []
    for q, truth in zip(qs, exact, strict=True):
        t = time.perf_counter()
        hits = client.search("bench", [q.tolist()], limit=10, search_params={"params": {"ef": 64}})[0]
        lat.append(time.perf_counter() - t)
        recall.append(len({h["id"] for h in hits} & set(truth.tolist())) / 10)
    flat, filtered_ok = [], 0
    for q in qs[:50]:
        tag = int(rng.integers(0, 1000))  # ~n/1000 rows match: a very selective filter
        expected = {j for j in range(n) if j % 1000 == tag}
        t = time.perf_counter()
        hits = client.search("bench", [q.tolist()], limit=3, filter=f"tag == {tag}", search_params={"params": {"ef": 64}})[0]
        flat.append(time.perf_counter() - t)
        ok = len(hits) == min(3, len(expected)) and all(h["id"] in expected for h in hits)
        filtered_ok += ok
        if not ok and os.environ.get("DEBUG"):
            print("filter miss", tag, [h["id"] for h in hits], sorted(expected)[:5], file=sys.stderr)
    if server is not None:
        server.stop()
    return {
        "engine": engine, "version": version, "index": index_type, "n": n, "start_s": round(start_s, 2),
        "insert_rows_per_s": round(insert_rps), "search_p50_ms": p50_ms(lat),
        "recall_at_10": round(float(np.mean(recall)), 4),
        "selective_filter_p50_ms": p50_ms(flat), "selective_filter_correct": f"{filtered_ok}/{len(flat)}",
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", choices=["lite", "server"], required=True)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--index", default="HNSW", help="HNSW, FLAT, IVF_FLAT or AUTOINDEX")
    args = parser.parse_args()
    print(json.dumps(run(args.engine, args.n, args.queries, args.index)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
