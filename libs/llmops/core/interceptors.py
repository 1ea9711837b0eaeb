"""Server interceptors: tracing, error mapping, authentication/authorization and deadlines.

Each concern is a small `Stage` (enter before the handler, exit after it). `StagedInterceptor`
wraps each method's handler once, running the stages around any of the four RPC shapes, and maps
errors to status codes. One wrapper instead of one per concern keeps the per-call cost low.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmops.core import auth, status
from llmops.core.errors import DeadlineExceeded, DomainError, Unavailable

log = logging.getLogger(__name__)

TRACE_ID_HEADER = "x-trace-id"
STREAM_AGED = "STREAM_MAX_AGE"  # ErrorInfo reason: a server stream ended at its maximum age, reopen it
# Codes that mean the server failed (the rest are the caller's to fix); they mark a span as error.
SERVER_FAULTS = frozenset({
    grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNIMPLEMENTED,
})


@dataclass
class Call:
    """What the stages know about the RPC being served."""

    method: str  # /pkg.Service/Method
    context: grpc.aio.ServicerContext
    metadata: dict[str, str]
    streaming_response: bool
    open: bool  # health / reflection: no auth, no tracing
    streaming_request: bool = False
    code: grpc.StatusCode = grpc.StatusCode.OK
    message: str = ""
    timeout_s: float | None = None
    trailing: list[tuple[str, str]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


class Stage:
    """One concern around every RPC. `enter` may raise a DomainError to refuse the call."""

    def enter(self, call: Call) -> None:  # pragma: no cover - interface
        pass

    def exit(self, call: Call) -> None:  # pragma: no cover - interface
        pass


class TracingStage(Stage):
    """A SERVER span per RPC, continuing the caller's W3C trace context; the trace id goes back
    to the caller in the `x-trace-id` trailing metadata."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None):
        self._tracer = trace.get_tracer("llmops.server", tracer_provider=tracer_provider)

    def enter(self, call: Call) -> None:
        if call.open:
            return
        parent = propagate.extract(call.metadata)
        service, _, method = call.method[1:].partition("/")
        span = self._tracer.start_span(
            call.method[1:],
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": method},
        )
        call.state["span"] = span
        call.state["otel_token"] = otel_context.attach(trace.set_span_in_context(span, parent))
        span_context = span.get_span_context()
        if span_context.is_valid:  # invalid when no tracer provider is configured
            call.trailing.append((TRACE_ID_HEADER, format(span_context.trace_id, "032x")))
            call.context.set_trailing_metadata(call.trailing)

    def exit(self, call: Call) -> None:
        span = call.state.pop("span", None)
        if span is None:
            return
        span.set_attribute("rpc.grpc.status_code", call.code.value[0])
        principal = auth.current_principal.get()
        if principal is not None:
            span.set_attribute("enduser.id", principal.name)
        if call.code in SERVER_FAULTS:
            span.set_status(Status(StatusCode.ERROR, call.code.name))
        elif call.code is not grpc.StatusCode.OK:
            span.set_attribute("rpc.grpc.status_message", call.message[:200])
        span.end()
        otel_context.detach(call.state.pop("otel_token"))


class AuthStage(Stage):
    """API key to principal, then the policy table; the principal is visible to the handler."""

    def __init__(self, policy: auth.Policy, keys: auth.KeyStore):
        self._policy = policy
        self._keys = keys

    def enter(self, call: Call) -> None:
        key = auth.bearer_key(call.metadata)
        principal = self._policy.authorize(call.method, key, self._keys)
        if principal is not None:
            call.state["auth_token"] = auth.current_principal.set(principal)
            call.state["key_token"] = auth.current_key.set(key)
            span = call.state.get("span")
            if span is not None:
                span.set_attribute("enduser.id", principal.name)
                span.set_attribute("enduser.role", principal.role.name.lower())

    def exit(self, call: Call) -> None:
        token = call.state.pop("auth_token", None)
        if token is not None:
            auth.current_principal.reset(token)
            auth.current_key.reset(call.state.pop("key_token"))


class DeadlineStage(Stage):
    """Refuses calls whose deadline already passed, and bounds every call that came without a
    deadline, so no call can hold a server slot forever:

    - unary calls by a default deadline (and any deadline by a maximum);
    - client streams (uploads) by progress: each message must come within `idle_timeout_s` of the
      last, so an upload may take as long as it keeps moving;
    - server streams (watches, downloads) by a maximum age, after which they end with UNAVAILABLE
      and a message saying to reopen them from the last item received.
    """

    def __init__(self, default_timeout_s: float, max_timeout_s: float | None = None, *,
                 idle_timeout_s: float = 30.0, max_stream_age_s: float | None = None):
        self._default = default_timeout_s
        self._max = max_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.max_stream_age_s = max_stream_age_s

    def enter(self, call: Call) -> None:
        remaining = call.context.time_remaining()
        if remaining is not None and remaining <= 0:
            raise DeadlineExceeded("the deadline passed before the call was served")
        if call.streaming_response:
            if self.max_stream_age_s and (remaining is None or remaining > self.max_stream_age_s):
                call.state["stream_deadline"] = asyncio.get_running_loop().time() + self.max_stream_age_s
            return
        if call.streaming_request:
            return  # bounded by progress (see `idle_bounded`); the client's own deadline applies too
        if remaining is None:
            call.timeout_s = self._default
        elif self._max is not None and remaining > self._max:
            call.timeout_s = self._max

    def exit(self, call: Call) -> None:
        pass

    async def idle_bounded(self, requests):
        """The request stream, failing with DEADLINE_EXCEEDED when no message comes for
        `idle_timeout_s`."""
        it = aiter(requests)
        while True:
            try:
                async with asyncio.timeout(self.idle_timeout_s):
                    item = await anext(it)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise DeadlineExceeded(f"no message arrived for {self.idle_timeout_s:g} s; the stream was "
                                       "closed (send the next chunk sooner)") from None
            yield item


class StreamAged(Unavailable):
    """A server stream reached its maximum age; the client reopens it from where it was."""

    def __init__(self, message: str, **details):
        super().__init__(message, reason=STREAM_AGED, **details)


async def _aged_call(call, deadline: float | None) -> None:
    """A streaming handler that writes its items itself, ended like `_aged` at `deadline`."""
    if deadline is None:
        await call
        return
    try:
        async with asyncio.timeout_at(deadline):
            await call
    except TimeoutError:
        raise StreamAged("the stream reached its maximum age and was closed; reopen it", retry_after_s=0) from None


async def _aged(items, deadline: float):
    """`items` until the loop's clock reaches `deadline`; then StreamAged. The timeout covers
    only the wait for the next item, never the yield, so it cancels the stream's own work."""
    it = aiter(items)
    try:
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    item = await anext(it)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise StreamAged("the stream reached its maximum age and was closed; reopen it from the last item "
                                 "you received", retry_after_s=0) from None
            yield item
    finally:
        close = getattr(it, "aclose", None)
        if close is not None:
            await close()


def _status_code(name: str) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, name, grpc.StatusCode.INTERNAL)


class StagedInterceptor(grpc.aio.ServerInterceptor):
    """Runs `stages` around every RPC and maps errors to status codes:
    DomainError -> its code and message; anything unexpected -> INTERNAL with only the trace id
    (the exception is logged here with that trace id, never sent)."""

    def __init__(self, stages: Sequence[Stage]):
        self._stages = list(stages)
        self._cache: dict[str, grpc.RpcMethodHandler] = {}
        self._deadlines = next((s for s in self._stages if isinstance(s, DeadlineStage)), None)

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        cached = self._cache.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        wrapped = self._wrap(method, handler)
        self._cache[method] = wrapped
        return wrapped

    def _begin(self, method: str, context, streaming_response: bool, streaming_request: bool
               ) -> tuple[Call, list[Stage]]:
        md = {}
        for item in context.invocation_metadata() or ():
            md[item.key] = item.value
        call = Call(method, context, md, streaming_response, method.startswith(auth.OPEN_SERVICES), streaming_request)
        return call, []

    def _enter(self, call: Call, entered: list[Stage]) -> None:
        for stage in self._stages:
            stage.enter(call)
            entered.append(stage)

    def _finish(self, call: Call, entered: list[Stage]) -> None:
        for stage in reversed(entered):
            try:
                stage.exit(call)
            except Exception:  # a stage failing must not turn a good answer into an error
                log.exception("interceptor stage %s failed on exit", type(stage).__name__)

    async def _fail(self, call: Call, exc: BaseException) -> None:
        """Record the outcome of `exc` on `call` and abort the RPC with the mapped status."""
        if isinstance(exc, asyncio.CancelledError):
            call.code = grpc.StatusCode.CANCELLED
            raise exc
        if isinstance(exc, grpc.aio.AbortError):  # the handler aborted itself
            call.code = call.context.code() or grpc.StatusCode.UNKNOWN
            raise exc
        details: tuple = ()
        if isinstance(exc, DomainError):
            call.code, call.message = _status_code(exc.code), exc.message
            details = status.to_grpc(exc, call.code).trailing_metadata
        elif isinstance(exc, TimeoutError):
            call.code = grpc.StatusCode.DEADLINE_EXCEEDED
            call.message = f"the call took longer than its {call.timeout_s:g} s deadline"
        else:
            trace_id = dict(call.trailing).get(TRACE_ID_HEADER, "none")
            log.error("unexpected error in %s (trace id %s)", call.method, trace_id, exc_info=exc)
            call.code = grpc.StatusCode.INTERNAL
            call.message = f"internal error; report trace id {trace_id}"
        await call.context.abort(call.code, call.message, trailing_metadata=(*call.trailing, *details))

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if handler.unary_unary or handler.stream_unary:
            inner = handler.unary_unary or handler.stream_unary
            client_stream = handler.stream_unary is not None

            async def unary_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
                call, entered = self._begin(method, context, False, client_stream)
                try:
                    self._enter(call, entered)
                    if client_stream and self._deadlines is not None and not call.open:
                        request = self._deadlines.idle_bounded(request)
                    if call.timeout_s is None:
                        return await inner(request, context)
                    async with asyncio.timeout(call.timeout_s):
                        return await inner(request, context)
                except BaseException as exc:  # noqa: BLE001 - mapped, logged or re-raised
                    await self._fail(call, exc)
                finally:
                    self._finish(call, entered)

            make = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
            return make(unary_response, handler.request_deserializer, handler.response_serializer)

        inner_stream: Callable = handler.unary_stream or handler.stream_stream
        bidi = handler.stream_stream is not None

        async def streaming_response(request: Any, context: grpc.aio.ServicerContext):
            call, entered = self._begin(method, context, True, bidi)
            try:
                self._enter(call, entered)
                if bidi and self._deadlines is not None and not call.open:
                    request = self._deadlines.idle_bounded(request)
                stream_deadline = call.state.get("stream_deadline")
                stream = inner_stream(request, context)
                if inspect.isawaitable(stream):  # a handler that writes with context.write (health Watch)
                    await _aged_call(stream, stream_deadline)
                elif stream_deadline is None:
                    async for item in stream:
                        yield item
                else:
                    async for item in _aged(stream, stream_deadline):
                        yield item
            except GeneratorExit:
                call.code = grpc.StatusCode.CANCELLED
                raise
            except BaseException as exc:  # noqa: BLE001 - mapped, logged or re-raised
                await self._fail(call, exc)
            finally:
                self._finish(call, entered)

        make = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
        return make(streaming_response, handler.request_deserializer, handler.response_serializer)


