"""What every service wrapper shares: a client span per operation (so the caller's trace, or a new
one, reaches the server), errors as CallError, and the trace id the server returned."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format, struct_pb2
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from llmops.client.errors import CallError
from llmops.core.interceptors import STREAM_AGED, TRACE_ID_HEADER

F = TypeVar("F", bound=Callable[..., Any])
_tracer = trace.get_tracer("llmops.client")


def struct(values: dict | None) -> struct_pb2.Struct:
    """A dict as a protobuf Struct (JSON values)."""
    s = struct_pb2.Struct()
    json_format.ParseDict(values or {}, s)
    return s


def tracer() -> trace.Tracer:
    return _tracer


def reopening(open_call: Callable[[float | None], Any], timeout: float | None = None) -> Iterator[Any]:
    """The messages of a server stream (`open_call(timeout)` opens it), reopened whenever the
    server ends it at its maximum age; `open_call` resumes where the caller left off. Ends
    quietly when cancelled; other failures raise CallError."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        call = open_call(None if deadline is None else max(0.0, deadline - time.monotonic()))
        try:
            yield from call
            return
        except grpc.RpcError as err:
            if err.code() is grpc.StatusCode.CANCELLED:
                return
            error = CallError.from_rpc(err)
            if error.reason != STREAM_AGED:
                raise error from None
        finally:
            call.cancel()


class ServiceClient:
    """Base of the per-service wrappers."""

    service = "service"

    def __init__(self, channel: grpc.Channel):
        self._channel = channel
        self.last_trace_id = ""

    def _unary(self, method: Callable, request: Any, timeout: float | None = None) -> Any:
        try:
            response, call = method.with_call(request, timeout=timeout)
        except grpc.RpcError as err:
            error = CallError.from_rpc(err)
            self.last_trace_id = error.trace_id or self.last_trace_id
            raise error from None
        for key, value in call.trailing_metadata() or ():
            if key == TRACE_ID_HEADER:
                self.last_trace_id = value
        return response


    def _paged(self, method: Callable, make_request: Callable[[str], Any], field: str) -> list:
        """Every item of a paginated List call: `make_request(page_token)` builds each request and
        `field` names the repeated field of the response."""
        out, token = [], ""
        while True:
            resp = self._unary(method, make_request(token))
            out.extend(getattr(resp, field))
            token = resp.next_page_token
            if not token:
                return out


def operation(name: str) -> Callable[[F], F]:
    """Run the wrapped client method in a CLIENT span named `<service>.<name>`."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(self: ServiceClient, *args, **kwargs):
            with _tracer.start_as_current_span(f"{self.service}.{name}", kind=SpanKind.CLIENT):
                try:
                    return fn(self, *args, **kwargs)
                except grpc.RpcError as err:  # streaming calls raise here
                    raise CallError.from_rpc(err) from None

        return wrapper  # type: ignore[return-value]

    return decorate
