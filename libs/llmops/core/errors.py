"""Domain errors: raised by domain and store code (which never imports grpc) and turned into a
gRPC status with `google.rpc` details by the error interceptor (`llmops.core.status`), or into an
HTTP status by the HTTP edge, both from the one table here. The message is shown to the caller as
is, so it must say what was wrong and what to do, and never carry internals.

What a caller's code can act on travels as data beside the message: `retry_after_s`
(`google.rpc.RetryInfo`, HTTP `Retry-After`), `reason` and `metadata` (`google.rpc.ErrorInfo`),
and the request fields at fault (`google.rpc.BadRequest`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# gRPC status code name -> HTTP status: the one mapping (AIP-193 / google.rpc.Code).
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "UNKNOWN": 500, "INTERNAL": 500, "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}
# Reasons whose HTTP status is not their code's: a target that refuses the gateway's own credential
# is the gateway's fault (502), not the caller's.
HTTP_STATUS_BY_REASON = {"UPSTREAM_CREDENTIAL_REJECTED": 502, "UPSTREAM_CREDENTIAL_MISSING": 502, "UPSTREAM_NOT_FOUND": 502, "PAYLOAD_TOO_LARGE": 413,
                         "UNSUPPORTED_MEDIA_TYPE": 415, "METHOD_NOT_ALLOWED": 405}
DOMAIN = "llmops"  # google.rpc.ErrorInfo.domain of every error this platform raises


@dataclass(frozen=True)
class FieldViolation:
    """A request field at fault (`messages[2].role`, `page_token`) and what is wrong with it."""

    field: str
    description: str


class DomainError(Exception):
    """Base of errors a caller can act on; `code` names the gRPC status code. `reason` is a
    stable UPPER_SNAKE identifier for code to branch on (default: the code)."""

    code = "INTERNAL"
    _by_code: dict[str, type[DomainError]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("canonical", True):  # the class `error_for` returns for its code
            DomainError._by_code.setdefault(cls.code, cls)

    def __init__(self, message: str, *, retry_after_s: float | None = None, reason: str = "",
                 metadata: Mapping[str, str] | None = None, field_violations: Sequence[FieldViolation] = ()):
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s
        self.reason = reason or self.code
        self.metadata = dict(metadata or {})
        self.field_violations = tuple(field_violations)

    @property
    def http_status(self) -> int:
        return HTTP_STATUS_BY_REASON.get(self.reason) or HTTP_STATUS.get(self.code, 500)


def error_for(code: str, message: str, **details) -> DomainError:
    """The DomainError for a status code name (INTERNAL's base class for unknown ones)."""
    return DomainError._by_code.get(code, DomainError)(message, **details)


class InvalidArgument(DomainError):
    """`field` names the request field at fault (it becomes a BadRequest field violation)."""

    code = "INVALID_ARGUMENT"

    def __init__(self, message: str, *, field: str = "", **details):
        if field:
            details.setdefault("field_violations", (FieldViolation(field, message),))
        super().__init__(message, **details)


class NotFound(DomainError):
    code = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    code = "FAILED_PRECONDITION"


class PermissionDenied(DomainError):
    code = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class ResourceExhausted(DomainError):
    code = "RESOURCE_EXHAUSTED"


class DataLoss(DomainError):
    code = "DATA_LOSS"


class Unavailable(DomainError):
    """`service` names the service that is down (ErrorInfo metadata, so a service further up the
    chain still names the right one)."""

    code = "UNAVAILABLE"

    def __init__(self, message: str, *, service: str = "", **details):
        if service:
            details["metadata"] = {**details.get("metadata", {}), "service": service}
        super().__init__(message, **details)

    @property
    def service(self) -> str:
        return self.metadata.get("service", "")


class BadGateway(DomainError):
    """A target behind a gateway refused the gateway itself (its credential, its model name): the
    caller can do nothing but report it. gRPC INTERNAL; HTTP 502 by its reason."""

    code = "INTERNAL"
    canonical = False

    def __init__(self, message: str, *, reason: str = "UPSTREAM_CREDENTIAL_REJECTED", **details):
        super().__init__(message, reason=reason, **details)


class Aborted(DomainError):
    code = "ABORTED"


class DeadlineExceeded(DomainError):
    code = "DEADLINE_EXCEEDED"
