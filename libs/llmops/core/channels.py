"""Client channels: a default deadline on every unary call, retries for UNAVAILABLE only (the one
code that says the request did not run), and the API key and W3C trace context on every call.
Sync channels serve applications and the CLI; aio channels serve services calling services."""

from __future__ import annotations

import collections
import json

import grpc
from opentelemetry import propagate

DEFAULT_TIMEOUT_S = 30.0
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

RETRY_SERVICE_CONFIG = json.dumps({
    "methodConfig": [{
        "name": [{}],
        "retryPolicy": {
            "maxAttempts": 4,
            "initialBackoff": "0.1s",
            "maxBackoff": "2s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }]
})

CHANNEL_OPTIONS = [
    ("grpc.service_config", RETRY_SERVICE_CONFIG),
    ("grpc.enable_retries", 1),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


def outgoing_metadata(api_key: str | None, existing=None) -> list[tuple[str, str]]:
    """The caller's metadata plus the API key and the current trace context (traceparent)."""
    md = list(existing or ())
    if api_key:
        md.append(("authorization", f"Bearer {api_key}"))
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    md.extend(carrier.items())
    return md


class _Details(
    collections.namedtuple("_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


class _SyncInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def __init__(self, api_key: str | None, default_timeout_s: float):
        self._key = api_key
        self._timeout = default_timeout_s

    def _details(self, d, unary: bool) -> _Details:
        timeout = d.timeout if d.timeout is not None or not unary else self._timeout
        return _Details(d.method, timeout, outgoing_metadata(self._key, d.metadata), d.credentials,
                        getattr(d, "wait_for_ready", None), getattr(d, "compression", None))

    def intercept_unary_unary(self, continuation, d, request):
        return continuation(self._details(d, True), request)

    def intercept_unary_stream(self, continuation, d, request):
        return continuation(self._details(d, False), request)

    def intercept_stream_unary(self, continuation, d, request_iterator):
        return continuation(self._details(d, False), request_iterator)

    def intercept_stream_stream(self, continuation, d, request_iterator):
        return continuation(self._details(d, False), request_iterator)


def sync_channel(target: str, api_key: str | None, *, default_timeout_s: float = DEFAULT_TIMEOUT_S) -> grpc.Channel:
    channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    return grpc.intercept_channel(channel, _SyncInterceptor(api_key, default_timeout_s))


class _AioMixin:
    def __init__(self, api_key: str | None, default_timeout_s: float, unary: bool):
        self._key = api_key
        self._timeout = default_timeout_s
        self._unary = unary

    def _details(self, d) -> grpc.aio.ClientCallDetails:
        timeout = d.timeout if d.timeout is not None or not self._unary else self._timeout
        return grpc.aio.ClientCallDetails(d.method, timeout, outgoing_metadata(self._key, d.metadata),
                                          d.credentials, d.wait_for_ready)


class _AioUnaryUnary(_AioMixin, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, d, request):
        return await continuation(self._details(d), request)


class _AioUnaryStream(_AioMixin, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, d, request):
        return await continuation(self._details(d), request)


class _AioStreamUnary(_AioMixin, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, d, request_iterator):
        return await continuation(self._details(d), request_iterator)


class _AioStreamStream(_AioMixin, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, d, request_iterator):
        return await continuation(self._details(d), request_iterator)


def aio_channel(target: str, api_key: str | None, *, default_timeout_s: float = DEFAULT_TIMEOUT_S) -> grpc.aio.Channel:
    interceptors = [
        _AioUnaryUnary(api_key, default_timeout_s, True),
        _AioUnaryStream(api_key, default_timeout_s, False),
        _AioStreamUnary(api_key, default_timeout_s, False),
        _AioStreamStream(api_key, default_timeout_s, False),
    ]
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=interceptors)
