"""The OpenAI-compatible endpoint in front of a route to an OpenAI-compatible provider, against
calling that provider directly, at concurrency 1 (one keep-alive HTTP client each):

- `openai_endpoint`: `POST /v1/chat/completions` on the pipeline (model = the route) -> the
  generation gateway over gRPC -> the provider, vs `POST /chat/completions` on the provider;
  added p50 (target: no slower than the 9.5 ms the endpoint added before the parameter policy);
- `gateway_grpc`: the gateway's own `Generate` over gRPC vs the provider directly, which splits
  the added time between the HTTP edge and the gateway;
- `openai_endpoint_8`: throughput at 8 concurrent clients vs the provider directly (target
  >= 0.5x), and the CPU the pipeline and generation processes spend per request (target <= 4 ms)
  and their resident memory together (target <= 150 MiB).

The provider is the loopback test double in this process; the generation and pipeline services
are their own processes, as deployed. No model server is involved.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path

import httpx

from bench.harness import compare, compare_throughput, rss_mib, write_report
from llmops.client import Client
from llmops.client.generation import provider_target
from llmops.core import auth
from llmops.testing.fake_provider import FakeProvider
from llmops.testing.services import ServerThread, ServiceProcess
from services.registry.config import RegistryConfig
from services.registry.server import build as build_registry

KEY = "sk-bench-openai"
BODY = {"model": "echo", "messages": [{"role": "system", "content": "be brief"},
                                      {"role": "user", "content": "hello there"}], "max_tokens": 8}


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="llmops-bench-openai-"))
    keys_file = home / "keys.json"
    admin = auth.add_key(keys_file, "bench", "admin")
    reader = auth.add_key(keys_file, "bench-reader", "reader")
    fake = FakeProvider(KEY).start()
    registry = ServerThread(functools.partial(build_registry, config=RegistryConfig(
        database_url=f"sqlite:///{home / 'reg.db'}", artifact_root=str(home / "art"))),
        auth.KeyStore(keys_file)).start()
    env = {"LLMOPS_HOME": str(home), "LLMOPS_REGISTRY_ADDRESS": registry.address,
           "LLMOPS_PROVIDER_BENCH_KEY": KEY, "LLMOPS_GENERATION_PROVIDER_ALLOWED_HOSTS": "127.0.0.1"}
    procs: list[ServiceProcess] = []
    try:
        gw = ServiceProcess("generation", {**env, "LLMOPS_GENERATION_KEYS_FILE": str(keys_file)}, home).start()
        procs.append(gw)
        pipe = ServiceProcess("pipeline", {**env, "LLMOPS_PIPELINE_KEYS_FILE": str(keys_file),
                                           "LLMOPS_GENERATION_ADDRESS": gw.address,
                                           "LLMOPS_PIPELINE_HTTP_PORT": "0"}, home).start()
        procs.append(pipe)
        client = Client({"generation": gw.address}, admin)
        client.generation.create_route("ext", [provider_target(fake.base_url, "echo", "env:LLMOPS_PROVIDER_BENCH_KEY")])
        direct_http = httpx.Client(timeout=30)
        api_http = httpx.Client(base_url=f"http://{pipe.http_address}", timeout=30,
                                headers={"authorization": f"Bearer {reader}"})

        def direct():
            r = direct_http.post(f"{fake.base_url}/chat/completions", json=BODY,
                                 headers={"authorization": f"Bearer {KEY}"})
            assert r.status_code == 200, r.text

        def endpoint():
            r = api_http.post("/v1/chat/completions", json={**BODY, "model": "ext"})
            assert r.status_code == 200, r.text

        def grpc_gateway():
            client.generation.generate("ext", [("system", "be brief"), ("user", "hello there")], max_tokens=8)

        endpoint_cmp = compare("provider_direct", direct, "openai_endpoint", endpoint, warmup=50, rounds=10,
                               per_round=30)
        gateway_cmp = compare("provider_direct", direct, "gateway_grpc", grpc_gateway, warmup=50, rounds=10,
                              per_round=30)
        throughput = compare_throughput("provider_direct", direct, "openai_endpoint", endpoint, concurrency=8,
                                        rounds=4)
        pids = [gw.proc.pid, pipe.proc.pid]
        before, calls = sum(cpu_s(p) for p in pids), 300
        for _ in range(calls):
            endpoint()
        cpu_ms = (sum(cpu_s(p) for p in pids) - before) / calls * 1e3
        rss = sum(rss_mib(p) for p in pids)
        report = write_report(
            "openai_gateway", {"openai_endpoint": endpoint_cmp, "gateway_grpc": gateway_cmp,
                               "openai_endpoint_8": throughput},
            {"openai_endpoint_added_p50_le_3ms": ("openai_endpoint", "added_p50_ms", "<=", 3.0),
             "openai_endpoint_8_ge_0.5x": ("openai_endpoint_8", "ratio", ">=", 0.5)},
            extra={"cpu_ms_per_request": round(cpu_ms, 2), "rss_mib": round(rss, 1)})
        print(f"CPU per request (pipeline + generation): {report['cpu_ms_per_request']} ms (target <= 4); "
              f"RSS {report['rss_mib']} MiB (target <= 150)")
        client.close()
        direct_http.close()
        api_http.close()
    finally:
        for p in reversed(procs):
            if p.proc and p.proc.poll() is None:
                p.terminate()
        registry.stop()
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
