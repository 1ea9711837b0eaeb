"""A failed call to another service becomes the calling service's own status: codes the caller
can act on pass through with their google.rpc details (retry delay, reason, fields at fault), and
UNAVAILABLE names the service that is down even when it is two hops away."""

from __future__ import annotations

import grpc
import pytest

from llmops.core import channels, errors, status


def rpc_error(code: grpc.StatusCode, details: str, error: errors.DomainError | None = None) -> grpc.aio.AioRpcError:
    """A failed call as a downstream service's interceptor would end it."""
    trailing = status.to_grpc(error, code).trailing_metadata if error is not None else ()
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details)


def test_unavailable_names_the_service_called_or_the_one_down_behind_it():
    direct = channels.downstream_error(rpc_error(grpc.StatusCode.UNAVAILABLE, "failed to connect"), "prompt")
    assert isinstance(direct, errors.Unavailable) and direct.service == "prompt"
    assert "the prompt service is unavailable" in direct.message
    message = "the retrieval service is unavailable"
    nested = channels.downstream_error(rpc_error(grpc.StatusCode.UNAVAILABLE, message,
                                                 errors.Unavailable(message, service="retrieval")), "prompt")
    assert nested.service == "retrieval"
    assert "the retrieval service is unavailable (reached through prompt)" in nested.message


@pytest.mark.parametrize("code,cls", [
    (grpc.StatusCode.NOT_FOUND, errors.NotFound), (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgument),
    (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPrecondition),
    (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDenied),
    (grpc.StatusCode.UNAUTHENTICATED, errors.Unauthenticated),
])
def test_codes_the_caller_can_act_on_pass_through(code, cls):
    err = channels.downstream_error(rpc_error(code, "template 'x' not found"), "prompt")
    assert type(err) is cls and err.message == "prompt: template 'x' not found"


def test_rate_limits_keep_their_retry_after():
    message = "route 'demo': 60 requests/min"
    err = channels.downstream_error(rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, message,
                                              errors.ResourceExhausted(message, retry_after_s=7)), "generation")
    assert isinstance(err, errors.ResourceExhausted) and err.retry_after_s == 7.0


def test_fields_at_fault_and_the_reason_pass_through():
    message = "variable 'tone' must be a string"
    err = channels.downstream_error(rpc_error(grpc.StatusCode.INVALID_ARGUMENT, message, errors.InvalidArgument(
        message, field="variables.tone", reason="VARIABLE_TYPE")), "prompt")
    assert isinstance(err, errors.InvalidArgument) and err.reason == "VARIABLE_TYPE"
    assert err.field_violations == (errors.FieldViolation("variables.tone", message),)


def test_a_failure_of_the_service_itself_is_unavailable_not_unknown():
    err = channels.downstream_error(rpc_error(grpc.StatusCode.INTERNAL, "internal error; report trace id 1"),
                                    "generation")
    assert isinstance(err, errors.Unavailable) and "INTERNAL" in err.message and err.service == "generation"
