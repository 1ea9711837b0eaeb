"""Domain errors: raised by domain and store code (which never imports grpc) and turned into
gRPC status codes by the error interceptor. The message is shown to the caller as is, so it
must say what was wrong and what to do, and never carry internals."""

from __future__ import annotations


class DomainError(Exception):
    """Base of errors a caller can act on; `code` names the gRPC status code."""

    code = "INTERNAL"

    def __init__(self, message: str, *, retry_after_s: float | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class InvalidArgument(DomainError):
    code = "INVALID_ARGUMENT"


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
    """`service` names the service that is down (sent to the caller in trailing metadata, so a
    service further up the chain still names the right one)."""

    code = "UNAVAILABLE"

    def __init__(self, message: str, *, service: str = "", retry_after_s: float | None = None):
        super().__init__(message, retry_after_s=retry_after_s)
        self.service = service


class Aborted(DomainError):
    code = "ABORTED"


class DeadlineExceeded(DomainError):
    code = "DEADLINE_EXCEEDED"
