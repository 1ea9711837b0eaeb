"""Server bootstrap shared by every service.

`create_server` builds a grpc.aio server with health, reflection and the interceptor stages, and
binds it (tests bind port 0); `run` is the process main: config from the environment, tracing,
SIGTERM handling and graceful stop (health NOT_SERVING first, then in-flight calls get a grace
period).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace

from llmops.core import admission, auth, heap, localenv, metrics, telemetry
from llmops.core import tls as tls_
from llmops.core.config import ConfigError, from_env
from llmops.core.interceptors import AuthStage, DeadlineStage, StagedInterceptor, TracingStage
from llmops.core.metrics import MetricsStage

log = logging.getLogger(__name__)


HEALTH_HEADROOM = 64  # slots only health and reflection can use


@dataclass(frozen=True)
class ServerConfig:
    """Settings every service shares, from `LLMOPS_<SERVICE>_*` variables."""

    host: str = "127.0.0.1"
    port: int = 0
    max_concurrent_rpcs: int = 256  # unary calls in flight; past it they are shed (RESOURCE_EXHAUSTED)
    max_streams: int = 128  # open streams of all callers together
    max_streams_per_principal: int = 16
    max_stream_age_s: float = 900.0  # then a server stream ends with UNAVAILABLE; the client reopens it
    idle_timeout_s: float = 30.0  # the longest wait for the next message of a client stream (uploads)
    max_message_bytes: int = 4 * 1024 * 1024  # large payloads are streamed, never one message
    grace_period_s: float = 10.0
    # On a graceful stop, how long NOT_SERVING is reported before new calls are refused, so
    # health-checking clients of several replicas move away first (0 for one replica).
    drain_s: float = 0.0
    default_timeout_s: float = 30.0
    max_timeout_s: float = 600.0
    keys_file: str = ""  # default: $LLMOPS_HOME/keys.json
    # Prometheus /metrics: None is the gRPC port + 1000 (a free port when that is 0), 0 a free
    # port, -1 off.
    metrics_port: int | None = None
    ready_file: str = ""  # written with host:port once serving, then `http host:port` if it serves HTTP
    # TLS for every listener of the service (PEM files; llmops.core.tls). The client CA asks for
    # client certificates (mutual TLS).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""

    def tls(self) -> tls_.ServerTLS | None:
        return tls_.ServerTLS.of(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file)


@dataclass(frozen=True)
class ServiceBinding:
    """One gRPC service to host: its full name, stub registration function, servicer, policy."""

    full_name: str
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    servicer: Any
    policy: auth.Policy


class Server:
    """A started server: its port, its health, and a graceful stop."""

    def __init__(self, server: grpc.aio.Server, health: health_async.HealthServicer, port: int,
                 names: Sequence[str], on_stop: Sequence[Callable[[], Awaitable[None]]] = ()):
        self.grpc_server = server
        self.health = health
        self.port = port
        self._names = list(names)
        self._on_stop = list(on_stop)
        self._watchers: list[asyncio.Task] = []
        self.http_port: int | None = None  # a service that also serves HTTP (e.g. an OpenAI-compatible API)
        self.metrics_port: int | None = None
        self.tls: tls_.ServerTLS | None = None  # the HTTP listeners beside it use the same
        self.drain_s = 0.0  # ServerConfig.drain_s

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *self._names]:
            await self.health.set(name, status)

    async def watch_dependency(self, name: str, check: Callable[[], Awaitable[bool]], interval_s: float = 5.0) -> None:
        """Report NOT_SERVING while `check` fails (a database or vector store the service cannot
        work without), SERVING again once it passes. Checks once now, then every `interval_s`."""

        async def probe() -> bool:
            try:
                return await check()
            except Exception:  # noqa: BLE001 - a failing check means unhealthy, whatever it raised
                return False

        healthy = await probe()
        if not healthy:
            log.warning("%s is unreachable: health NOT_SERVING", name)
            await self.set_serving(False)

        async def loop() -> None:
            nonlocal healthy
            while True:
                await asyncio.sleep(interval_s)
                ok = await probe()
                if ok != healthy:
                    healthy = ok
                    log.warning("%s is %s: health %s", name, "back" if ok else "unreachable",
                                "SERVING" if ok else "NOT_SERVING")
                    await self.set_serving(ok)

        self._watchers.append(asyncio.get_running_loop().create_task(loop()))

    async def stop(self, grace_s: float | None) -> None:
        """NOT_SERVING first, and a moment (`drain_s`) for load balancers and health-checking
        clients to stop sending, then let in-flight calls finish."""
        for task in self._watchers:
            task.cancel()
        await self.set_serving(False)
        if self.drain_s:
            await asyncio.sleep(self.drain_s)
        await self.grpc_server.stop(grace_s)
        for hook in self._on_stop:
            await hook()

    async def wait(self) -> None:
        await self.grpc_server.wait_for_termination()


def load_keys(config: ServerConfig) -> auth.KeyStore:
    path = Path(config.keys_file) if config.keys_file else localenv.keys_path()
    return auth.KeyStore(path)


async def create_server(
    bindings: Sequence[ServiceBinding],
    config: ServerConfig,
    *,
    keys: auth.KeyStore,
    tracer_provider: trace.TracerProvider | None = None,
    on_stop: Sequence[Callable[[], Awaitable[None]]] = (),
) -> Server:
    """Build, bind and start a server hosting `bindings` (port 0 picks a free port)."""
    policy = auth.Policy({})
    for b in bindings:
        policy = policy | b.policy
    interceptor = StagedInterceptor([
        TracingStage(tracer_provider),
        MetricsStage(),
        AuthStage(policy, keys),
        admission.AdmissionStage(admission.Limits(config.max_concurrent_rpcs, config.max_streams,
                                                  config.max_streams_per_principal)),
        DeadlineStage(config.default_timeout_s, config.max_timeout_s, idle_timeout_s=config.idle_timeout_s,
                      max_stream_age_s=config.max_stream_age_s or None),
    ])
    server = grpc.aio.server(
        interceptors=[interceptor],
        # gRPC's own limit counts health checks too, so it sits above both admission pools: the
        # admission stage sheds first, and probes always find a slot.
        maximum_concurrent_rpcs=config.max_concurrent_rpcs + config.max_streams + HEALTH_HEADROOM,
        options=[
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    for b in bindings:
        b.add_to_server(b.servicer, server)
    health = health_async.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    names = [b.full_name for b in bindings]
    reflection.enable_server_reflection([*names, reflection.SERVICE_NAME, "grpc.health.v1.Health"], server)
    tls = config.tls()
    address = f"{config.host}:{config.port}"
    port = server.add_secure_port(address, tls.grpc_credentials()) if tls else server.add_insecure_port(address)
    if port == 0:
        raise ConfigError(f"cannot bind {config.host}:{config.port}")
    await server.start()
    started = Server(server, health, port, names, on_stop)
    started.drain_s = config.drain_s
    started.tls = tls
    await started.set_serving(True)
    return started


def setup_logging(service: str) -> None:
    level = os.environ.get("LLMOPS_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level, stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
    )
    # Clients that log every request at INFO: a line per call on the hot path (spans record them)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


Factory = Callable[[ServerConfig, auth.KeyStore, trace.TracerProvider], Awaitable[Server]]


def run(service: str, factory: Factory) -> None:
    """Process main for `python -m services.<service>`."""
    setup_logging(service)
    try:
        prefix = f"LLMOPS_{service.upper()}"
        port = {} if f"{prefix}_PORT" in os.environ else {"port": localenv.DEFAULT_PORTS.get(service, 0)}
        config = from_env(ServerConfig, prefix, **port)
    except ConfigError as exc:
        log.error("bad configuration: %s", exc)
        raise SystemExit(2) from None
    provider = telemetry.setup_tracing(f"llmops-{service}")
    try:
        asyncio.run(_serve(service, config, factory, provider))
    except (ConfigError, auth.KeyFileError) as exc:
        log.error("cannot start: %s", exc)
        raise SystemExit(2) from None
    finally:
        provider.shutdown()


async def _serve(service: str, config: ServerConfig, factory: Factory, provider: trace.TracerProvider) -> None:
    keys = load_keys(config)
    if keys.empty:
        log.warning("no API keys configured: every call except health and reflection will be refused; "
                    "create one with `llmops keys create NAME --role admin`")
    server = await factory(config, keys, provider)
    heap.freeze_long_lived()  # what start-up made lives as long as the process: no GC walks it again
    if config.metrics_port != -1:
        wanted = config.metrics_port if config.metrics_port is not None else (config.port + 1000 if config.port else 0)
        try:
            server.metrics_port = metrics.serve(config.host, wanted, server.tls)
        except OSError as exc:
            log.warning("no /metrics: cannot bind %s:%d (%s); set LLMOPS_%s_METRICS_PORT", config.host, wanted,
                        exc.strerror, service.upper())
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    if config.ready_file:
        tmp = Path(config.ready_file + ".tmp")
        extra = "".join(f"{kind} {config.host}:{port}\n" for kind, port in
                        (("http", server.http_port), ("metrics", server.metrics_port)) if port)
        tmp.write_text(f"{config.host}:{server.port}\n{extra}")
        os.replace(tmp, config.ready_file)
    warning = tls_.exposure_warning(service, config.host, server.tls)
    if warning:
        log.warning("!" * 8 + " %s", warning)
    log.info("%s serving on %s:%d%s", service, config.host, server.port, " (TLS)" if server.tls else "")
    if server.http_port:
        log.info("%s HTTP API on %s:%d", service, config.host, server.http_port)
    if server.metrics_port:
        log.info("%s metrics on http://%s:%d/metrics", service, config.host, server.metrics_port)
    await stopping.wait()
    log.info("stopping: health NOT_SERVING, %.0f s grace for in-flight calls", config.grace_period_s)
    await server.stop(config.grace_period_s)
    log.info("stopped")
