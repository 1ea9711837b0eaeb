"""A one-method service on the full llmops server stack (tracing, auth, deadlines, error mapping),
so the cost of the hop itself can be measured apart from any handler's work."""

from __future__ import annotations

import grpc

from llmops.core import auth
from llmops.core.server import ServiceBinding, run

SERVICE = "llmops.bench.v1.Echo"
POLICY = auth.Policy.for_service(SERVICE, {"Echo": auth.Role.READER})


def _identity(b: bytes) -> bytes:
    return b


def echo(payload: bytes) -> bytes:
    """The function both sides of the benchmark call."""
    return payload


class EchoServicer:
    async def Echo(self, request: bytes, context) -> bytes:
        return echo(request)


def add_echo(servicer: EchoServicer, server) -> None:
    handler = grpc.unary_unary_rpc_method_handler(servicer.Echo, _identity, _identity)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Echo": handler}),))


async def build(config, keys, tracer_provider=None):
    from llmops.core.server import create_server

    return await create_server([ServiceBinding(SERVICE, add_echo, EchoServicer(), POLICY)], config, keys=keys,
                               tracer_provider=tracer_provider)


async def _bare() -> None:
    """The same handler on a plain grpc.aio server: no interceptors, no tracing, no auth. The
    floor a hop cannot go under on this machine."""
    import asyncio
    import os
    from pathlib import Path

    server = grpc.aio.server()
    add_echo(EchoServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    ready = Path(os.environ["LLMOPS_BENCH_ECHO_READY_FILE"])
    ready.with_suffix(".tmp").write_text(f"127.0.0.1:{port}\n")
    os.replace(ready.with_suffix(".tmp"), ready)
    await asyncio.Event().wait()


if __name__ == "__main__":
    import sys

    if "--bare" in sys.argv:
        import asyncio

        asyncio.run(_bare())
    else:
        run("bench_echo", build)
