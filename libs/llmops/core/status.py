"""Domain errors on the gRPC wire as the standard `google.rpc.Status` (grpcio-status): the code,
the message, and details any gRPC client can read: `ErrorInfo` (reason, domain `llmops`,
metadata such as the service that is down), `RetryInfo` (when to retry) and `BadRequest` (the
request fields at fault). The server encodes with `to_grpc`; a service calling another, and the
Python client, decode with `details_of`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from llmops.core.errors import DOMAIN, DomainError, FieldViolation, error_for

DETAILS_KEY = "grpc-status-details-bin"  # where gRPC carries a google.rpc.Status


def to_grpc(error: DomainError, code: grpc.StatusCode) -> grpc.Status:
    """The status to abort with: code, message and the rich details as trailing metadata."""
    details = [error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)]
    if error.retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(int(error.retry_after_s * 1000))
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    if error.field_violations:
        details.append(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in error.field_violations]))
    packed = []
    for d in details:
        a = any_pb2.Any()
        a.Pack(d)
        packed.append(a)
    return rpc_status.to_status(status_pb2.Status(code=code.value[0], message=error.message, details=packed))


@dataclass(frozen=True)
class Details:
    """What a failed call's status says beyond its code and message."""

    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    retry_after_s: float | None = None
    field_violations: tuple[FieldViolation, ...] = ()


def details_of(err: grpc.RpcError) -> Details:
    """The rich details of a failed call (sync or asyncio); empty when it has none (a status made
    by the client library itself, or a server that sends none)."""
    return details_from(err.trailing_metadata() if hasattr(err, "trailing_metadata") else None)


def details_from(trailing_metadata) -> Details:
    """The rich details in a call's trailing metadata (pairs of key and value)."""
    raw = next((v for k, v in trailing_metadata or () if k == DETAILS_KEY), None)
    if raw is None:
        return Details()
    status = status_pb2.Status.FromString(raw)
    reason, domain, metadata, retry, violations = "", "", {}, None, ()
    for a in status.details:
        if a.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            a.Unpack(info)
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif a.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            a.Unpack(info)
            retry = info.retry_delay.ToMilliseconds() / 1000
        elif a.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            info = error_details_pb2.BadRequest()
            a.Unpack(info)
            violations = tuple(FieldViolation(v.field, v.description) for v in info.field_violations)
    return Details(reason, domain, metadata, retry, violations)


def to_domain(err: grpc.RpcError, message: str) -> DomainError:
    """A failed call as the DomainError of the same code with `message`, its details kept (the
    reason, retry hint, metadata and field violations pass through a chain of services)."""
    d = details_of(err)
    return error_for(err.code().name, message, retry_after_s=d.retry_after_s, reason=d.reason,
                     metadata=d.metadata, field_violations=d.field_violations)
