"""A failed call to another service becomes the calling service's own status: codes the caller
can act on pass through (with retry-after), and UNAVAILABLE names the service that is down even
when it is two hops away."""

from __future__ import annotations

import grpc
import pytest

from llmops.core import channels, errors
from llmops.core.interceptors import RETRY_AFTER_HEADER, UNAVAILABLE_SERVICE_HEADER


def rpc_error(code: grpc.StatusCode, details: str, trailing=()) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details)


def test_unavailable_names_the_service_called_or_the_one_down_behind_it():
    direct = channels.downstream_error(rpc_error(grpc.StatusCode.UNAVAILABLE, "failed to connect"), "prompt")
    assert isinstance(direct, errors.Unavailable) and direct.service == "prompt"
    assert "the prompt service is unavailable" in direct.message
    nested = channels.downstream_error(rpc_error(grpc.StatusCode.UNAVAILABLE, "the retrieval service is unavailable",
                                                 [(UNAVAILABLE_SERVICE_HEADER, "retrieval")]), "prompt")
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
    err = channels.downstream_error(rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "route 'demo': 60 requests/min",
                                              [(RETRY_AFTER_HEADER, "7000")]), "generation")
    assert isinstance(err, errors.ResourceExhausted) and err.retry_after_s == 7.0


def test_a_failure_of_the_service_itself_is_unavailable_not_unknown():
    err = channels.downstream_error(rpc_error(grpc.StatusCode.INTERNAL, "internal error; report trace id 1"),
                                    "generation")
    assert isinstance(err, errors.Unavailable) and "INTERNAL" in err.message and err.service == "generation"
