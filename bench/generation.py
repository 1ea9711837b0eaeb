"""Generation benchmarks, every ratio against a baseline measured in the same run:

- tokens/s through gRPC -> generation gateway -> model server vs the same engine alone in its
  own process (`bench.engine_worker`, interleaved round by round; target >= 0.9x), and the time
  to first token that path adds (target <= 20 ms);
- continuous batching: 8 concurrent clients vs 1 through the service, aggregate tokens/s
  (target >= 3x) and p95 latency (target <= 2x);
- overload: requests arriving at twice the measured capacity (open loop); the excess is refused
  with RESOURCE_EXHAUSTED and a retry delay (target: within 50 ms at p99) and the admitted keep
  a p99 within 2x of the unloaded p99 (one client);
- the gateway in front of an OpenAI-compatible backend vs calling that backend directly: added
  p50 (target <= 3 ms) and throughput at 8 clients (target >= 0.5x), and the gateway's resident
  memory (target <= 200 MiB; it imports no torch).

The registry runs in this process; the model server and the gateway are their own processes, as
deployed. The model is the demo model's shape (trained for a few steps: speed, not answers).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import httpx

from bench.harness import Comparison, Stats, Throughput, compare, compare_throughput, rss_mib, write_report
from bench.serving import ServingStack, promote, serving_stack
from llmops.api.generation.v1 import generation_pb2_grpc as gen_grpc
from llmops.client import Client
from llmops.client.generation import provider_target, registry_target
from llmops.core import channels, status
from llmops.modeling import demo
from llmops.testing.fake_provider import FakeProvider

ROOT = Path(__file__).resolve().parent.parent
TOKENS = 64
PROMPT = "The registry keeps models, versions and aliases"


def p99_ms(seconds: list[float]) -> float:
    ms = sorted(s * 1e3 for s in seconds)
    return ms[min(len(ms) - 1, int(0.99 * len(ms)))] if ms else 0.0


class RawEngine:
    """`bench.engine_worker` in its own process; `request()` runs one request there."""

    def __init__(self, folder: Path):
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.engine_worker", str(folder), PROMPT, str(TOKENS)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                                     env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        while (line := self.proc.stdout.readline()) and line.strip() != "ready":
            pass
        if self.proc.poll() is not None:
            raise RuntimeError("the raw engine worker did not start")

    def request(self) -> tuple[float, int]:
        """(time to first token, output tokens)."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        out = json.loads(self.proc.stdout.readline())
        return out["ttft_s"], out["tokens"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


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


class Load:
    """Load on the gateway from one asyncio thread (grpc.aio): the clients cost the machine
    little and contend for no GIL with each other."""

    def __init__(self, address: str, key: str, request):
        self._address, self._key, self._request = address, key, request

    async def _call(self, stub) -> None:
        reply = await stub.Generate(self._request)
        assert reply.usage.output_tokens == TOKENS, reply.usage

    def closed(self, concurrency: int, seconds: float = 8.0) -> tuple[float, list[float]]:
        """(requests per second, latencies) of `concurrency` clients calling in a loop."""

        async def run():
            channel = channels.aio_channel(self._address, self._key)
            stub = gen_grpc.GenerationServiceStub(channel)
            lat: list[float] = []
            stop = time.perf_counter() + seconds

            async def client():
                while time.perf_counter() < stop:
                    t = time.perf_counter()
                    await self._call(stub)
                    lat.append(time.perf_counter() - t)

            start = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            elapsed = time.perf_counter() - start
            await channel.close()
            return len(lat) / elapsed, lat

        return asyncio.run(run())

    def open(self, rate: float, seconds: float) -> tuple[list[float], list[float], list[float]]:
        """Calls started at `rate` per second whatever happens to them: (admitted latencies,
        refused latencies, retry delays given)."""

        async def run():
            channel = channels.aio_channel(self._address, self._key)
            stub = gen_grpc.GenerationServiceStub(channel)
            admitted: list[float] = []
            refused: list[float] = []
            delays: list[float] = []

            async def one():
                t = time.perf_counter()
                try:
                    await self._call(stub)
                    admitted.append(time.perf_counter() - t)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() is not grpc.StatusCode.RESOURCE_EXHAUSTED:
                        raise
                    refused.append(time.perf_counter() - t)
                    delays.append(status.details_of(exc).retry_after_s or 0.0)

            start = time.perf_counter()
            tasks, i = [], 0
            while (due := start + i / rate) < start + seconds:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                tasks.append(asyncio.create_task(one()))
                i += 1
            await asyncio.gather(*tasks)
            await channel.close()
            return admitted, refused, delays

        return asyncio.run(run())


def measure(st: ServingStack, folder: Path, fake: FakeProvider) -> int:
    ms, gw = st.modelserver, st.gateway
    client = Client({"generation": gw.address}, st.admin_key)
    g = client.generation
    g.create_route("demo", [registry_target("demo@production")])
    g.create_route("provider", [provider_target(fake.base_url, "echo", "env:LLMOPS_PROVIDER_BENCH_KEY")])
    raw = RawEngine(folder)

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
    assert raw.request()[1] == TOKENS
    tokens = compare("raw_engine_process", raw.request, "via_grpc_gateway_modelserver", service_generate,
                     warmup=5, rounds=6, per_round=5)
    ttft_a, ttft_b = [], []
    for _ in range(30):
        ttft_a.append(raw.request()[0])
        ttft_b.append(service_ttft())
    ttft = Comparison("raw_engine_process", "via_grpc_stream", Stats.of(ttft_a), Stats.of(ttft_b))
    raw.close()

    load = Load(gw.address, st.admin_key, g.request("demo", prompt=PROMPT, max_tokens=TOKENS))
    load.closed(8, 2.0)
    rps1, lat1 = load.closed(1)
    rps8, lat8 = load.closed(8)
    conc_tps = Throughput("one_client_tokens", "eight_clients_tokens", 8, rps1 * TOKENS, rps8 * TOKENS)
    conc_lat = Comparison("one_client", "eight_clients", Stats.of(lat1), Stats.of(lat8))

    admitted, refused, delays = load.open(2 * rps8, 8.0)
    overload = {"capacity_rps": round(rps8, 2), "offered_rps": round(2 * rps8, 2), "admitted": len(admitted),
                "refused": len(refused), "refusal_p50_ms": round(statistics.median(refused) * 1e3, 2) if refused else None,
                "refusal_p99_ms": round(p99_ms(refused), 2),
                "retry_after_s_median": round(statistics.median(delays), 3) if delays else None,
                "unloaded_p99_ms": round(p99_ms(lat1), 1), "at_capacity_p99_ms": round(p99_ms(lat8), 1),
                "admitted_p99_ms": round(p99_ms(admitted), 1),
                "admitted_p99_over_unloaded": round(p99_ms(admitted) / p99_ms(lat1), 3),
                "admitted_p99_over_capacity": round(p99_ms(admitted) / p99_ms(lat8), 3)}
    print("overload:", json.dumps(overload))

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
         "8_clients_tokens_ge_3x": ("concurrency_tokens", "ratio", ">=", 3.0),
         "gateway_added_p50_le_3ms": ("gateway_overhead", "added_p50_ms", "<=", 3.0),
         "gateway_throughput_8_ge_0.5x": ("gateway_throughput_8", "ratio", ">=", 0.5)},
        extra={"p95_8_clients_over_1": round(conc_lat.candidate.p95_ms / conc_lat.baseline.p95_ms, 3),
               "tokens_per_s": {"raw_engine_process": round(TOKENS / (tokens.baseline.p50_ms / 1e3), 1),
                                "service": round(TOKENS / (tokens.candidate.p50_ms / 1e3), 1),
                                "one_client": round(rps1 * TOKENS, 1), "eight_clients": round(rps8 * TOKENS, 1)},
               "overload": overload, "gateway_rss_mib": round(gateway_rss, 1),
               "model_server": modelserver_status["models"]})
    print(f"p95 latency 8 clients / 1 client: {report['p95_8_clients_over_1']}x (target <= 2x); "
          f"overload: refusals p99 {overload['refusal_p99_ms']} ms (target <= 50), admitted p99 "
          f"{overload['admitted_p99_over_unloaded']}x unloaded (target <= 2x); "
          f"gateway RSS {gateway_rss:.0f} MiB (target <= 200)")
    print(json.dumps(report["tokens_per_s"]))
    client.close()
    http.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
