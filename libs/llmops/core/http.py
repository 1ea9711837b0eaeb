"""HTTP beside gRPC in one service process: an ASGI app served by uvicorn on the service's own
event loop, API keys and roles checked the same way as over gRPC, a SERVER span per request
continuing the caller's W3C trace, and domain errors as HTTP statuses.

The OpenAI-compatible API of the pipeline and the review app of the feedback service use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import uvicorn
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmops.core import auth
from llmops.core.config import ConfigError
from llmops.core.errors import DomainError
from llmops.core.interceptors import TRACE_ID_HEADER

# gRPC status code name -> HTTP status
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "INTERNAL": 500, "DATA_LOSS": 500, "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}


def http_status(error: DomainError) -> int:
    return HTTP_STATUS.get(error.code, 500)


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the service's own signal handlers stop it (gRPC and HTTP together)


async def send_json(send, status: int, payload: dict, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """A whole JSON response from raw ASGI middleware (which answers before any app runs)."""
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class Shed:
    """ASGI middleware: past `limit` requests in flight, answer 429 with Retry-After at once
    instead of queuing without bound (the HTTP twin of the gRPC admission stage); `/healthz` is
    never refused."""

    def __init__(self, app, limit: int, retry_after_s: int = 1):
        self.app = app
        self._limit = limit
        self._retry = str(retry_after_s).encode()
        self.in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] == "/healthz":
            return await self.app(scope, receive, send)
        if self.in_flight >= self._limit:
            await send_json(send, 429, {"error": {
                "message": f"the server is at capacity ({self._limit} requests in flight); retry after the delay",
                "type": "rate_limit_error", "code": "server_busy"}}, ((b"retry-after", self._retry),))
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class HttpServer:
    """Serves `app` on `host:port` (port 0: a free one) on the running event loop, shedding load
    past `max_in_flight` requests."""

    def __init__(self, app, host: str, port: int, tls=None, max_in_flight: int = 256):
        app = Shed(app, max_in_flight)
        self._app = app
        self._host = host
        self._port = port
        self._tls = tls  # an llmops.core.tls.ServerTLS: HTTPS with the service's certificate
        self._server: _Uvicorn | None = None
        self._task: asyncio.Task | None = None
        self.port = 0

    async def start(self) -> int:
        # proto IPPROTO_TCP (not 0) so asyncio sets TCP_NODELAY on each accepted connection;
        # without it, headers and body written apart wait out the client's 40 ms delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=5, **(self._tls.uvicorn_options() if self._tls else {}))
        self._server = _Uvicorn(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError(f"the HTTP server on {self._host}:{self.port} stopped while starting")
            await asyncio.sleep(0.01)
        return self.port

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 10)


async def start_beside(server, web: HttpServer, host: str, port: int) -> None:
    """Start `web` next to a started gRPC `server` (its port becomes `server.http_port`); if it
    cannot bind, stop the gRPC server too and say which address was taken."""
    try:
        server.http_port = await web.start()
    except OSError as exc:
        await server.stop(0)
        raise ConfigError(f"cannot bind the HTTP server on {host}:{port}: {exc.strerror}") from None


@dataclass
class RequestContext:
    """What a handler knows about its caller: who, with which key, in which trace."""

    principal: auth.Principal
    key: str
    otel: otel_context.Context
    span: trace.Span

    @property
    def trace_id(self) -> str:
        ctx = self.span.get_span_context()
        return format(ctx.trace_id, "032x") if ctx.is_valid else ""

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Run code as this caller, in this trace (for work done outside the handler's task, e.g.
        a streamed response body)."""
        token = otel_context.attach(self.otel)
        p_token = auth.current_principal.set(self.principal)
        k_token = auth.current_key.set(self.key)
        try:
            yield
        finally:
            auth.current_key.reset(k_token)
            auth.current_principal.reset(p_token)
            otel_context.detach(token)


def authenticate(headers: Mapping[str, str], keys: auth.KeyStore, role: auth.Role, action: str
                 ) -> tuple[auth.Principal, str]:
    """The caller's principal and key from `authorization: Bearer` (or `x-api-key`)."""
    key = auth.bearer_key(headers)
    principal = keys.authenticate(key)
    auth.require(role, action, principal)
    return principal, key


class ServerSpans:
    """A SERVER span per HTTP request, continuing the caller's `traceparent`."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None, scope: str = "llmops.http"):
        self._tracer = trace.get_tracer(scope, tracer_provider=tracer_provider)

    def start(self, method: str, route: str, headers: Mapping[str, str]) -> tuple[trace.Span, otel_context.Context]:
        parent = propagate.extract(dict(headers))
        span = self._tracer.start_span(f"{method} {route}", context=parent, kind=SpanKind.SERVER,
                                       attributes={"http.request.method": method, "http.route": route})
        return span, trace.set_span_in_context(span, parent)

    @staticmethod
    def finish(span: trace.Span, status: int, error: str = "") -> None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR, error[:200] or str(status)))
        elif error:
            span.set_attribute("llmops.error", error[:200])
        span.end()


def trace_headers(span: trace.Span) -> dict[str, str]:
    ctx = span.get_span_context()
    return {TRACE_ID_HEADER: format(ctx.trace_id, "032x")} if ctx.is_valid else {}
