"""The added latency of one traced gRPC hop, in two comparisons measured in one run:

- `hop`: a function called in-process vs through a client channel (API key, trace context,
  a client span) to a separate server process on the full llmops stack (all interceptors, a
  server span): the cost of the hop itself. Target: added p50 <= 1 ms.
- `floor`: the same function through a plain grpc channel and a plain grpc.aio server (no
  interceptors, no tracing, no auth): the round trip no stack can go under on this machine.
- `traced_over_plain`: the traced hop against the plain one, interleaved (target: <= 0.2 ms);
- `hop_busy`: the traced hop again while one CPU-bound process competes for the cores (target:
  added p50 <= 1 ms; spans are exported by a background thread, off the caller's path);
- `get_model_version`: the registry's GetModelVersion servicer method in-process vs through the
  Python client and a registry process: what a real read pays.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

import grpc
from opentelemetry import trace

from bench.busy_machine import busy
from bench.echo_server import SERVICE as ECHO_SERVICE
from bench.echo_server import echo
from bench.harness import compare, write_report
from llmops.api.registry.v1 import registry_pb2 as pb
from llmops.client import Client
from llmops.core import auth, channels, telemetry
from llmops.core.blobstore import BlobStore
from llmops.core.storage import Database
from llmops.testing.services import ServiceProcess
from services.registry.config import RegistryConfig
from services.registry.feed import EventFeed
from services.registry.servicer import RegistryServicer
from services.registry.store import RegistryStore


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="llmops-bench-"))
    os.environ["LLMOPS_HOME"] = str(tmp)
    admin = auth.add_key(tmp / "keys.json", "bench", "admin")
    db_url = f"sqlite:///{tmp / 'registry.db'}"
    env = {"LLMOPS_REGISTRY_KEYS_FILE": str(tmp / "keys.json"), "LLMOPS_REGISTRY_DATABASE_URL": db_url,
           "LLMOPS_REGISTRY_ARTIFACT_ROOT": str(tmp / "artifacts"), "LLMOPS_LOG_LEVEL": "WARNING"}
    proc = ServiceProcess("registry", env, tmp).start()
    echo_env = {"LLMOPS_BENCH_ECHO_KEYS_FILE": str(tmp / "keys.json"), "LLMOPS_LOG_LEVEL": "WARNING"}
    echo_proc = ServiceProcess("bench_echo", echo_env, tmp, module="bench.echo_server").start()
    bare_proc = ServiceProcess("bench_echo_bare", echo_env, tmp, module="bench.echo_server", args=("--bare",),
                               prefix="LLMOPS_BENCH_ECHO").start()
    provider = telemetry.setup_tracing("llmops-bench")
    try:
        with Client({"registry": proc.address}, admin) as client:
            reg = client.registry
            reg.create_model("bench")
            f = tmp / "config.json"
            f.write_text(json.dumps({"hidden_size": 64}))
            uploaded = reg.upload_file("bench", "config.json", f).file
            reg.create_version("bench", [uploaded])
            reg.approve("bench@1")
            reg.set_alias("bench", "production", 1)

            config = RegistryConfig(database_url=db_url, artifact_root=str(tmp / "artifacts"))
            store = RegistryStore(Database(db_url))
            loop = asyncio.new_event_loop()
            servicer = RegistryServicer(store, BlobStore(config.artifact_root), EventFeed(store, 1.0), config)
            request = pb.GetModelVersionRequest(name="bench@production")

            def in_process():
                return loop.run_until_complete(servicer.GetModelVersion(request, None))

            def traced_hop():
                return reg.get_version("bench@production")

            assert in_process().name == traced_hop().name
            payload = b"x" * 64
            tracer = trace.get_tracer("bench")
            with channels.sync_channel(echo_proc.address, admin) as ch:
                remote = ch.unary_unary(f"/{ECHO_SERVICE}/Echo", request_serializer=bytes, response_deserializer=bytes)

                def echo_hop():
                    with tracer.start_as_current_span("echo", kind=trace.SpanKind.CLIENT):
                        return remote(payload)

                assert echo_hop() == echo(payload)
                with grpc.insecure_channel(bare_proc.address) as bare_ch:
                    bare = bare_ch.unary_unary(f"/{ECHO_SERVICE}/Echo", request_serializer=bytes,
                                               response_deserializer=bytes)
                    hop = compare("in_process", lambda: echo(payload), "grpc_traced", echo_hop)
                    floor = compare("in_process", lambda: echo(payload), "grpc_plain", lambda: bare(payload))
                    above = compare("grpc_plain", lambda: bare(payload), "grpc_traced", echo_hop)
                    spinner = busy()  # one CPU-bound process competing for the two cores
                    try:
                        hop_busy = compare("in_process", lambda: echo(payload), "grpc_traced", echo_hop,
                                           warmup=100, rounds=10)
                    finally:
                        spinner.kill()
            rpc = compare("in_process", in_process, "grpc_traced", traced_hop)
            report = write_report("grpc_hop", {"hop": hop, "floor": floor, "traced_over_plain": above,
                                               "hop_busy": hop_busy, "get_model_version": rpc},
                                  {"added_p50_le_1ms": ("hop", "added_p50_ms", "<=", 1.0),
                                   "busy_added_p50_le_1ms": ("hop_busy", "added_p50_ms", "<=", 1.0),
                                   "above_plain_le_0.2ms": ("traced_over_plain", "added_p50_ms", "<=", 0.2)})
            loop.close()
    finally:
        proc.terminate()
        echo_proc.terminate()
        bare_proc.terminate()
        provider.shutdown()
    return 0 if all(t["met"] for t in report["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
