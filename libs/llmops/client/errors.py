"""The Python client's exceptions: one class per gRPC status, all `CallError`, each carrying the
server's message, the trace id to look the call up with (`llmops trace ID`), and the standard
details: `retry_after_s` (RetryInfo), `reason` and `metadata` (ErrorInfo) and the request fields
at fault (BadRequest).

    try:
        client.registry.get_model("nope")
    except NotFoundError as exc:
        ...
    except CallError as exc:          # any other failure
        time.sleep(exc.retry_after_s or 1)
"""

from __future__ import annotations

import grpc

from llmops.core.errors import FieldViolation
from llmops.core.interceptors import TRACE_ID_HEADER
from llmops.core.status import details_of


class CallError(Exception):
    """A call failed: `code` is the gRPC status code, `message` says what to do about it."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, code: grpc.StatusCode | None = None, message: str = "", trace_id: str = "", *,
                 retry_after_s: float | None = None, reason: str = "", metadata: dict[str, str] | None = None,
                 field_violations: tuple[FieldViolation, ...] = ()):
        code = code or type(self).code
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.trace_id = trace_id
        self.retry_after_s = retry_after_s
        self.reason = reason or code.name
        self.metadata = dict(metadata or {})
        self.field_violations = field_violations

    def __new__(cls, code: grpc.StatusCode | None = None, *args, **kwargs):
        if cls is CallError and code is not None:  # CallError(NOT_FOUND, ...) is a NotFoundError
            cls = _BY_CODE.get(code, CallError)
        return super().__new__(cls)

    @classmethod
    def from_rpc(cls, err: grpc.RpcError) -> CallError:
        trace_id = ""
        for key, value in (err.trailing_metadata() if hasattr(err, "trailing_metadata") else None) or ():
            if key == TRACE_ID_HEADER:
                trace_id = value
        d = details_of(err)
        return CallError(err.code(), err.details() or "", trace_id, retry_after_s=d.retry_after_s,
                         reason=d.reason, metadata=d.metadata, field_violations=d.field_violations)


class CancelledError(CallError):
    code = grpc.StatusCode.CANCELLED


class InvalidArgumentError(CallError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceededError(CallError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFoundError(CallError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(CallError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDeniedError(CallError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhaustedError(CallError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPreconditionError(CallError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class AbortedError(CallError):
    code = grpc.StatusCode.ABORTED


class UnimplementedError(CallError):
    code = grpc.StatusCode.UNIMPLEMENTED


class InternalError(CallError):
    code = grpc.StatusCode.INTERNAL


class UnavailableError(CallError):
    code = grpc.StatusCode.UNAVAILABLE


class DataLossError(CallError):
    code = grpc.StatusCode.DATA_LOSS


class UnauthenticatedError(CallError):
    code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE = {c.code: c for c in CallError.__subclasses__()}
