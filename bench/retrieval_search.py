"""Retrieval through the service vs the engine underneath, in one run:

- search QPS through the service (gRPC, tracing, auth, validation) vs direct pymilvus on the same
  collection of N chunks, at concurrency 1 and 8, with identical hits (target >= 0.8x);
- the service with tracing on vs off (target >= 0.9x);
- ingestion through the service vs the raw encoder (chunk + embed) on the same corpus (>= 0.8x);
- recall@10 of the index vs exact search on clustered data (target >= 0.95).

    python -m bench.retrieval_search --chunks 100000
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness import Comparison, Stats, compare_throughput, write_report
from bench.milvus_engines import clustered
from llmops.client import Client
from llmops.client.retrieval import document
from llmops.core import auth, telemetry
from llmops.core.server import ServerConfig
from llmops.testing.services import ServerThread
from services.retrieval import chunking, embedding
from services.retrieval.config import RetrievalConfig
from services.retrieval.server import build, milvus_uri
from services.retrieval.vectors import ChunkRow, VectorStore

TOPICS = ["models", "indexes", "prompts", "routes", "feedback", "tuning", "traces", "keys"]


def corpus(n: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(3)
    words = "the registry keeps versions aliases approvals while retrieval chunks embeds searches documents".split()
    return [(f"doc-{i}", f"{TOPICS[i % 8]}: " + " ".join(rng.choice(words, size=180))) for i in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ingest-docs", type=int, default=200)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="llmops-bench-retrieval-"))
    os.environ["LLMOPS_HOME"] = str(tmp)
    key = auth.add_key(tmp / "keys.json", "bench", "admin")
    keys = auth.KeyStore(tmp / "keys.json")
    config = RetrievalConfig(database_url=f"sqlite:///{tmp / 'r.db'}", milvus_data_dir=str(tmp / "milvus"))
    traced = ServerThread(functools.partial(build, tracer_provider=telemetry.create_tracer_provider("bench-retrieval"),
                                            config=config), keys, ServerConfig(port=0)).start()
    untraced = ServerThread(functools.partial(build, tracer_provider=None, config=config), keys,
                            ServerConfig(port=0)).start()
    on = Client({"retrieval": traced.address}, key)
    off = Client({"retrieval": untraced.address}, key)
    try:
        index = on.retrieval.create_index("bench")
        direct = VectorStore(milvus_uri(config))
        vecs, _ = clustered(args.chunks, index.dimension)
        t0 = time.perf_counter()
        for start in range(0, args.chunks, 5000):
            rows = [ChunkRow(f"d{j}#0", f"d{j}", f"chunk {j}", {"n": j % 100}, vecs[j])
                    for j in range(start, min(args.chunks, start + 5000))]
            direct.replace_documents(index.collection, [], rows)
        load_s = time.perf_counter() - t0
        rng = np.random.default_rng(5)
        qs = vecs[rng.integers(0, args.chunks, size=args.queries)]
        qs = qs + 0.05 * rng.normal(size=qs.shape).astype("float32")
        qs /= np.linalg.norm(qs, axis=1, keepdims=True)

        exact = np.argsort(-(qs @ vecs.T), axis=1)[:, :10]
        recall = np.mean([len({int(h.document_id[1:]) for h in direct.search(index.collection, q, 10, "")}
                              & set(e.tolist())) / 10 for q, e in zip(qs[:50], exact[:50], strict=True)])
        for q in qs[:20]:
            a = [h.chunk_id for h in direct.search(index.collection, q, 10, "")]
            b = [h.chunk_id for h in on.retrieval.search("bench", vector=q.tolist(), top_k=10).hits]
            assert a == b, "the service must return the engine's hits"

        def cycling(fn):
            it = itertools.cycle(list(qs))
            return lambda: fn(next(it))

        d = cycling(lambda q: direct.search(index.collection, q, 10, ""))
        s_on = cycling(lambda q: on.retrieval.search("bench", vector=q.tolist(), top_k=10))
        s_off = cycling(lambda q: off.retrieval.search("bench", vector=q.tolist(), top_k=10))
        c1 = compare_throughput("direct_pymilvus", d, "service", s_on, concurrency=1)
        c8 = compare_throughput("direct_pymilvus", d, "service", s_on, concurrency=8)
        tracing = compare_throughput("tracing_off", s_off, "tracing_on", s_on, concurrency=1)

        docs = corpus(args.ingest_docs)
        embedder = embedding.load(index.embedding_model)
        on.retrieval.create_index("ingest", chunk_overlap=32)
        size = embedder.max_chunk_tokens

        def raw_encoder() -> None:
            texts = [c.text for _, body in docs for c in chunking.split(
                chunking.to_text(body), size, 32, embedder.count_tokens, embedder.token_offsets)]
            embedder.encode(texts)

        def through_service() -> None:
            on.retrieval.upsert("ingest", [document(i, body) for i, body in docs])

        raw_t, svc_t = [], []
        for r in range(3):
            for fn, out in ((raw_encoder, raw_t), (through_service, svc_t))[:: 1 if r % 2 == 0 else -1]:
                t = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t)
        ingest = Comparison("raw_encoder", "service", Stats.of(raw_t), Stats.of(svc_t))
        report = write_report(
            "retrieval_search",
            {"search_c1": c1, "search_c8": c8, "tracing": tracing, "ingest": ingest},
            {
                "service_qps_c1_ge_0.8x": ("search_c1", "ratio", ">=", 0.8),
                "service_qps_c8_ge_0.8x": ("search_c8", "ratio", ">=", 0.8),
                "tracing_on_ge_0.9x": ("tracing", "ratio", ">=", 0.9),
                "ingest_ge_0.8x": ("ingest", "throughput_ratio", ">=", 0.8),
            },
            extra={"chunks": args.chunks, "load_s": round(load_s, 1), "recall_at_10": round(float(recall), 4),
                   "engine": "milvus-lite (FLAT)", "ingest_docs": len(docs)},
        )
        print(f"recall@10 {recall:.4f} (target >= 0.95); {args.chunks} chunks loaded in {load_s:.1f} s")
        return 0 if all(t["met"] for t in report["targets"].values()) and recall >= 0.95 else 1
    finally:
        on.close()
        off.close()
        traced.stop()
        untraced.stop()


if __name__ == "__main__":
    sys.exit(main())
