"""HTTP beside gRPC in one service process: an ASGI app served by uvicorn on the service's own
event loop, API keys and roles checked the same way as over gRPC, a SERVER span per request
continuing the caller's W3C trace, and domain errors as HTTP statuses.

The OpenAI-compatible API of the pipeline and the review app of the feedback service use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass

import pydantic
import uvicorn
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from llmops.core import auth
from llmops.core.config import ConfigError
from llmops.core.errors import DomainError, FieldViolation, InvalidArgument, NotFound, ResourceExhausted
from llmops.core.interceptors import TRACE_ID_HEADER

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1 << 20
# The error `type` an HTTP status maps to (OpenAI's error shape, which its clients parse).
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 405: "invalid_request_error", 409: "conflict_error",
               413: "invalid_request_error", 415: "invalid_request_error", 429: "rate_limit_error"}


def error_body(error: DomainError, status: int = 0) -> dict:
    """One JSON error shape for every HTTP API: `message`, `type` (by HTTP status), `code` (the
    gRPC status, lowercase), `param` (the first request field at fault) and `reason`."""
    param = error.field_violations[0].field if error.field_violations else None
    return {"error": {"message": error.message, "type": ERROR_TYPES.get(status or error.http_status, "api_error"),
                      "param": param, "code": error.code.lower(), "reason": error.reason}}


def error_headers(error: DomainError) -> dict[str, str]:
    """`Retry-After` (seconds, RFC 9110) and `retry-after-ms` (read by OpenAI's clients)."""
    if error.retry_after_s is None:
        return {}
    return {"retry-after": str(max(1, round(error.retry_after_s))),
            "retry-after-ms": str(int(error.retry_after_s * 1000))}


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
        self._retry_s = retry_after_s
        self.in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] == "/healthz":
            return await self.app(scope, receive, send)
        if self.in_flight >= self._limit:
            busy = ResourceExhausted(f"the server is at capacity ({self._limit} requests in flight); retry after "
                                     "the delay", reason="SERVER_BUSY", retry_after_s=self._retry_s)
            await send_json(send, 429, error_body(busy),
                            tuple((k.encode(), v.encode()) for k, v in error_headers(busy).items()))
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


_UNION_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


def field_path(loc: tuple) -> str:
    """A pydantic error location as a field path: `messages[2].content` (the tags pydantic adds
    for the branches of a union, `str` or `list[TextPart]`, are left out)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in _UNION_TAGS and "[" not in part and "-" not in part:
            out += f".{part}" if out else part
    return out


def too_large(limit: int) -> InvalidArgument:
    return InvalidArgument(f"the body is larger than the limit of {limit} bytes", reason="PAYLOAD_TOO_LARGE")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused (413) as soon as it passes `limit` (never read whole first), and refused
    (415) when it says it is not JSON."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise InvalidArgument(f"the body must be JSON (content-type application/json), not {kind[:60]!r}",
                              reason="UNSUPPORTED_MEDIA_TYPE")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    parts, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise too_large(limit)
        parts.append(part)
    return b"".join(parts)


def _describe(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field: this API refuses what it would otherwise ignore"
    return error["msg"]


def parse_body(raw: bytes, model: type[pydantic.BaseModel]) -> pydantic.BaseModel:
    """A request body checked against its declared model: INVALID_ARGUMENT naming each field at
    fault (BadRequest field violations; the message names the first three)."""
    try:
        return model.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors and errors[0]["type"] == "json_invalid":
            raise InvalidArgument("the body is not valid JSON") from None
        if errors and not errors[0]["loc"]:
            raise InvalidArgument("the body must be a JSON object") from None
        violations = list({field_path(e["loc"]): FieldViolation(field_path(e["loc"]), _describe(e))
                           for e in reversed(errors)}.values())[::-1]  # the first error per field
        text = "; ".join(f"{v.field}: {v.description}" for v in violations[:3])
        raise InvalidArgument(text, field_violations=violations) from None


@dataclass
class HttpCall:
    """One request as a handler sees it: the request, who calls (`rc`), and the checked body."""

    request: Request
    rc: RequestContext
    body: pydantic.BaseModel | None = None
    detached: bool = False

    def detach(self) -> None:
        """The handler's response (a stream) ends the span itself."""
        self.detached = True


Handler = Callable[[HttpCall], Awaitable["dict | Response"]]


class HttpEdge:
    """The one HTTP edge every HTTP API uses: per request a SERVER span continuing `traceparent`,
    the caller authenticated against `policy` (method, route) -> role, its identity and trace
    made current, the body checked against a declared pydantic model, and any DomainError turned
    into its HTTP status, the shared JSON error shape and Retry-After. Every response carries
    the trace id (and `headers`)."""

    def __init__(self, keys: auth.KeyStore, spans: ServerSpans, policy: Mapping[tuple[str, str], auth.Role],
                 *, headers: Mapping[str, str] | None = None):
        self._keys = keys
        self._spans = spans
        self._policy = policy
        self._headers = dict(headers or {})

    def route(self, method: str, path: str, handler: Handler, *, body: type[pydantic.BaseModel] | None = None,
              action: str = "", max_body: int = MAX_BODY_BYTES) -> Route:
        role = self._policy[method, path]  # every endpoint is in the policy table (KeyError otherwise)

        async def endpoint(request: Request) -> Response:
            span, ctx = self._spans.start(method, path, request.headers)
            try:
                principal, key = authenticate(request.headers, self._keys, role, action or path)
                span.set_attribute("enduser.id", principal.name)
                call = HttpCall(request, RequestContext(principal, key, ctx, span))
                with call.rc.active():
                    if body is not None:
                        call.body = parse_body(await read_body(request, max_body), body)
                    result = await handler(call)
            except DomainError as exc:
                return self.error(span, exc)
            except Exception:  # a bug: logged here, the caller gets the trace id and no internals
                log.exception("%s %s failed", method, path)
                ctx = span.get_span_context()
                return self.error(span, DomainError(f"internal error; report trace id {ctx.trace_id:032x}"))
            if isinstance(result, Response):
                if not call.detached:
                    ServerSpans.finish(span, result.status_code)
                result.headers.update({**self._headers, **trace_headers(span)})
                return result
            ServerSpans.finish(span, 200)
            return JSONResponse(result, headers={**self._headers, **trace_headers(span)})

        return Route(path, endpoint, methods=[method])

    def error(self, span: trace.Span, exc: DomainError) -> JSONResponse:
        """The response for a failed request (and the span's end)."""
        ServerSpans.finish(span, exc.http_status, exc.message)
        return JSONResponse(error_body(exc), status_code=exc.http_status,
                            headers={**self._headers, **trace_headers(span), **error_headers(exc)})

    def exception_handlers(self) -> dict:
        """Starlette's own refusals (no such path 404, wrong method 405) in the JSON error shape."""
        async def refused(request: Request, exc: HTTPException) -> Response:
            if exc.status_code == 404:
                error: DomainError = NotFound(f"no endpoint {request.method} {request.url.path[:200]}",
                                              reason="NO_SUCH_ENDPOINT")
            else:
                error = InvalidArgument(f"{request.method} is not allowed on {request.url.path[:200]}",
                                        reason="METHOD_NOT_ALLOWED")
            return JSONResponse(error_body(error, exc.status_code), status_code=exc.status_code,
                                headers={**self._headers, **dict(exc.headers or {})})

        return {HTTPException: refused}

    @staticmethod
    def healthz() -> Route:
        """`GET /healthz`: open, never shed."""
        async def ok(request: Request) -> Response:
            return Response("ok", media_type="text/plain")

        return Route("/healthz", ok, methods=["GET"])
