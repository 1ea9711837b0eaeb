"""Generation benchmarks, every ratio against a baseline measured in the same run:

- tokens/s through gRPC -> generation gateway -> model server vs the same engine in-process
  (target >= 0.9x), and the time to first token that path adds (target <= 20 ms);
- 8 concurrent clients vs 1 through the service: aggregate tokens/s (target >= 2x) and p95
  latency (target <= 2x);
- the gateway in front of an OpenAI-compatible backend vs calling that backend directly: added
  p50 (target <= 3 ms) and throughput at 8 clients (target >= 0.5x), and the gateway's resident
  memory (target <= 200 MiB; it imports no torch).

The registry runs in this process; the model server and the gateway are their own processes, as
deployed. The model is the demo model's shape (trained for a few steps: speed, not answers).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.harness import Comparison, Stats, Throughput, compare, compare_throughput, write_report
from bench.serving import ServingStack, promote, serving_stack
from llmops.client import Client
from llmops.client.generation import provider_target, registry_target
from llmops.modeling import demo
from llmops.testing.fake_provider import FakeProvider
from services.modelserver.batcher import Batcher
from services.modelserver.engine import Engine, Job
from services.modelserver.sampling import Sampling

ROOT = Path(__file__).resolve().parent.parent
TOKENS = 64
PROMPT = "The registry keeps models, versions and aliases"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def in_process(batcher: Batcher, engine: Engine, ids: list[int]) -> tuple[float, int]:
    """(time to first token, output tokens) of one request straight to the engine."""
    done, first, out = threading.Event(), [0.0], [0]
    start = time.perf_counter()

    def emit(kind, payload):
        if kind == "delta" and not first[0]:
            first[0] = time.perf_counter() - start
        if kind == "done":
            out[0] = payload.output_tokens
            first[0] = first[0] or payload.ttft_s
            done.set()

    batcher.submit(Job(ids, Sampling(max_tokens=TOKENS), emit))
    done.wait()
    return first[0], out[0]


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="llmops-bench-demo-")) / "demo-llm"
    demo.build(ROOT / "docs", folder, demo.DemoSpec(steps=30))
    fake = FakeProvider("sk-bench").start()

    def register(c: Client) -> None:
        c.registry.create_model("demo")
        promote(c, c.registry.upload_folder("demo", folder))

    try:
        with serving_stack("gen", register, {"LLMOPS_PROVIDER_BENCH_KEY": "sk-bench",
                                             "LLMOPS_GENERATION_PROVIDER_ALLOWED_HOSTS": "127.0.0.1"}) as st:
            return measure(st, folder, fake)
    finally:
        fake.stop()


def measure(st: ServingStack, folder: Path, fake: FakeProvider) -> int:
    ms, gw = st.modelserver, st.gateway
    client = Client({"generation": gw.address}, st.admin_key)
    g = client.generation
    g.create_route("demo", [registry_target("demo@production")])
    g.create_route("provider", [provider_target(fake.base_url, "echo", "env:LLMOPS_PROVIDER_BENCH_KEY")])

    engine = Engine.load(folder, "in-process")
    batcher = Batcher(engine)
    ids = engine.encode(PROMPT)

    def service_generate():
        r = g.generate("demo", prompt=PROMPT, max_tokens=TOKENS)
        assert r.usage.output_tokens == TOKENS, r.usage
        return r

    def service_ttft() -> float:
        start = time.perf_counter()
        stream = g.stream("demo", prompt=PROMPT, max_tokens=TOKENS)
        next(stream)
        first = time.perf_counter() - start
        for _ in stream:
            pass
        return first

    service_generate()
    assert in_process(batcher, engine, ids)[1] == TOKENS
    tokens = compare("in_process", lambda: in_process(batcher, engine, ids), "via_grpc_gateway_modelserver",
                     service_generate, warmup=5, rounds=6, per_round=5)
    ttft_a, ttft_b = [], []
    for _ in range(30):
        ttft_a.append(in_process(batcher, engine, ids)[0])
        ttft_b.append(service_ttft())
    ttft = Comparison("in_process", "via_grpc_stream", Stats.of(ttft_a), Stats.of(ttft_b))

    def latencies(concurrency: int, seconds: float = 8.0) -> tuple[float, list[float]]:
        lat: list[float] = []
        stop = time.perf_counter() + seconds
        count = [0]

        def worker():
            while time.perf_counter() < stop:
                t = time.perf_counter()
                service_generate()
                lat.append(time.perf_counter() - t)
                count[0] += 1

        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return count[0] * TOKENS / (time.perf_counter() - start), lat

    latencies(8, 2.0)
    tps1, lat1 = latencies(1)
    tps8, lat8 = latencies(8)
    conc_tps = Throughput("one_client_tokens", "eight_clients_tokens", 8, tps1, tps8)
    conc_lat = Comparison("one_client", "eight_clients", Stats.of(lat1), Stats.of(lat8))
    batcher.close()

    http = httpx.Client(timeout=30)
    body = {"model": "echo", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 8}

    def direct():
        r = http.post(f"{fake.base_url}/chat/completions", json=body, headers={"authorization": "Bearer sk-bench"})
        assert r.status_code == 200

    def gateway():
        g.generate("provider", [("user", "hello there")], max_tokens=8)

    overhead = compare("provider_direct", direct, "via_gateway", gateway, warmup=50, rounds=10, per_round=30)
    provider8 = compare_throughput("provider_direct", direct, "via_gateway", gateway, concurrency=8, rounds=4)
    gateway_rss = rss_mib(gw.proc.pid)
    modelserver_status = httpx.post(f"http://{ms.address}/status", json={}).json()
    report = write_report(
        "generation",
        {"tokens": tokens, "ttft": ttft, "concurrency_tokens": conc_tps, "concurrency_latency": conc_lat,
         "gateway_overhead": overhead, "gateway_throughput_8": provider8},
        {"tokens_per_s_ge_0.9x": ("tokens", "throughput_ratio", ">=", 0.9),
         "ttft_added_le_20ms": ("ttft", "added_p50_ms", "<=", 20.0),
         "8_clients_tokens_ge_2x": ("concurrency_tokens", "ratio", ">=", 2.0),
         "gateway_added_p50_le_3ms": ("gateway_overhead", "added_p50_ms", "<=", 3.0),
         "gateway_throughput_8_ge_0.5x": ("gateway_throughput_8", "ratio", ">=", 0.5)},
        extra={"p95_8_clients_over_1": round(conc_lat.candidate.p95_ms / conc_lat.baseline.p95_ms, 3),
               "tokens_per_s": {"in_process": round(TOKENS / (tokens.baseline.p50_ms / 1e3), 1),
                                "service": round(TOKENS / (tokens.candidate.p50_ms / 1e3), 1),
                                "one_client": round(tps1, 1), "eight_clients": round(tps8, 1)},
               "gateway_rss_mib": round(gateway_rss, 1), "engine": engine.backend,
               "median_batches": statistics.median([m["batches"] for m in modelserver_status["models"]])})
    print(f"p95 latency 8 clients / 1 client: {report['p95_8_clients_over_1']}x (target <= 2x); "
          f"gateway RSS {gateway_rss:.0f} MiB (target <= 200)")
    print(json.dumps(report["tokens_per_s"]))
    client.close()
    http.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
