"""Client channels: a default deadline on every unary call, retries for UNAVAILABLE only (the one
code that says the request did not run), and the API key and W3C trace context on every call.
Sync channels serve applications and the CLI; aio channels serve services calling services.

A target may name several replicas: `host:port,host:port` (IP addresses; `localhost` is read as
127.0.0.1) or `dns:///name:port` (every address the name resolves to). Such channels spread calls
round robin over the replicas that report SERVING on the standard health service, so a replica
that goes NOT_SERVING as it stops gracefully receives no new calls, and a call it refuses in the
meantime (UNAVAILABLE) is retried on another."""

from __future__ import annotations

import json
from collections.abc import Callable

import grpc
from opentelemetry import propagate

from llmops.core import errors, status
from llmops.core.tls import client_from_env

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

# For several replicas: round robin over the healthy ones (client-side health checking).
REPLICAS_SERVICE_CONFIG = json.dumps({
    **json.loads(RETRY_SERVICE_CONFIG),
    "loadBalancingConfig": [{"round_robin": {}}],
    "healthCheckConfig": {"serviceName": ""},
})

CHANNEL_OPTIONS = [
    ("grpc.service_config", RETRY_SERVICE_CONFIG),
    ("grpc.enable_retries", 1),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # A restarted service is reached again within a second, not after minutes of backoff.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5000),
]


ApiKey = str | Callable[[], str | None] | None  # a callable forwards a per-call key (e.g. the caller's)


def outgoing_metadata(api_key: ApiKey, existing=None) -> list[tuple[str, str]]:
    """The caller's metadata plus the API key and the current trace context (traceparent)."""
    md = list(existing or ())
    if callable(api_key):
        api_key = api_key()
    if api_key:
        md.append(("authorization", f"Bearer {api_key}"))
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    md.extend(carrier.items())
    return md


class _Callable:
    """Wraps one multi-callable: adds the metadata (and, for unary calls, the default deadline)
    per call. Cheaper than grpc.intercept_channel, which builds a new multi-callable per call."""

    def __init__(self, inner, api_key: str | None, default_timeout: float | None):
        self._inner = inner
        self._key = api_key
        self._timeout = default_timeout

    def _kwargs(self, kwargs: dict) -> dict:
        kwargs["metadata"] = outgoing_metadata(self._key, kwargs.get("metadata"))
        if kwargs.get("timeout") is None and self._timeout is not None:
            kwargs["timeout"] = self._timeout
        return kwargs

    def __call__(self, request, **kwargs):
        return self._inner(request, **self._kwargs(kwargs))

    def with_call(self, request, **kwargs):
        return self._inner.with_call(request, **self._kwargs(kwargs))

    def future(self, request, **kwargs):
        return self._inner.future(request, **self._kwargs(kwargs))


class _Channel(grpc.Channel):
    """A channel whose calls carry the API key, the trace context and default deadlines."""

    def __init__(self, channel: grpc.Channel, api_key: str | None, default_timeout_s: float):
        self._channel = channel
        self._key = api_key
        self._timeout = default_timeout_s

    def unary_unary(self, method, *args, **kwargs):
        return _Callable(self._channel.unary_unary(method, *args, **kwargs), self._key, self._timeout)

    def unary_stream(self, method, *args, **kwargs):
        return _Callable(self._channel.unary_stream(method, *args, **kwargs), self._key, None)

    def stream_unary(self, method, *args, **kwargs):
        return _Callable(self._channel.stream_unary(method, *args, **kwargs), self._key, None)

    def stream_stream(self, method, *args, **kwargs):
        return _Callable(self._channel.stream_stream(method, *args, **kwargs), self._key, None)

    def subscribe(self, callback, try_to_connect=False):
        self._channel.subscribe(callback, try_to_connect)

    def unsubscribe(self, callback):
        self._channel.unsubscribe(callback)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def resolve_target(target: str) -> tuple[str, list[tuple]]:
    """(gRPC target, channel options) for one address, several (`a:1,b:2`) or a `dns:` name."""
    if "," not in target and not target.startswith("dns:"):
        return target, CHANNEL_OPTIONS
    if not target.startswith("dns:"):
        target = "ipv4:" + ",".join(a.strip().replace("localhost:", "127.0.0.1:") for a in target.split(","))
    options = [(k, REPLICAS_SERVICE_CONFIG if k == "grpc.service_config" else v) for k, v in CHANNEL_OPTIONS]
    return target, options


def sync_channel(target: str, api_key: str | None, *, default_timeout_s: float = DEFAULT_TIMEOUT_S) -> grpc.Channel:
    """A channel to `target` (one address or several replicas), over TLS when LLMOPS_TLS_CA_FILE
    is set (llmops.core.tls)."""
    tls = client_from_env()
    target, options = resolve_target(target)
    raw = (grpc.secure_channel(target, tls.grpc_credentials(), options=options) if tls
           else grpc.insecure_channel(target, options=options))
    return _Channel(raw, api_key, default_timeout_s)


class _AioMixin:
    def __init__(self, api_key: ApiKey, default_timeout_s: float, unary: bool):
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


def aio_channel(target: str, api_key: ApiKey, *, default_timeout_s: float = DEFAULT_TIMEOUT_S) -> grpc.aio.Channel:
    interceptors = [
        _AioUnaryUnary(api_key, default_timeout_s, True),
        _AioUnaryStream(api_key, default_timeout_s, False),
        _AioStreamUnary(api_key, default_timeout_s, False),
        _AioStreamStream(api_key, default_timeout_s, False),
    ]
    tls = client_from_env()
    target, options = resolve_target(target)
    if tls:
        return grpc.aio.secure_channel(target, tls.grpc_credentials(), options=options, interceptors=interceptors)
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)


def downstream_error(exc: grpc.aio.AioRpcError, service: str) -> Exception:
    """A failed call to another service, as the calling service's own error: codes that are the
    caller's to act on pass through (prefixed with the service) with their details (retry hint,
    reason, field violations); a service down further along the chain is still named (not just
    the one called)."""
    code = exc.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        down = status.details_of(exc).metadata.get("service", "")
        if down and down != service:
            return errors.Unavailable(f"the {down} service is unavailable (reached through {service}); retry shortly",
                                      service=down)
        return errors.Unavailable(f"the {service} service is unavailable ({code.name}); retry shortly",
                                  service=service)
    if code in PASSING or status.details_of(exc).reason in errors.HTTP_STATUS_BY_REASON:
        return status.to_domain(exc, f"{service}: {exc.details()}")
    return errors.Unavailable(f"the {service} service failed ({code.name}): {exc.details()}", service=service)


# Codes a caller can act on: passed through from a downstream service as they are.
PASSING = frozenset({
    grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
})
