"""The Python client: typed wrappers over each service, configured like the CLI.

    from llmops.client import Client, NotFoundError
    with Client.local() as client:           # addresses and key written by `llmops up`
        client.registry.get_version("support-bot@production")

Every failed call raises a `CallError` subclass named for its status (`NotFoundError`,
`ResourceExhaustedError`, ...) with `message`, `trace_id`, `retry_after_s`, `reason`,
`metadata` and `field_violations`.
"""

from llmops.client.client import Client
from llmops.client.errors import (
    AbortedError,
    AlreadyExistsError,
    CallError,
    CancelledError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
)

__all__ = ["AbortedError", "AlreadyExistsError", "CallError", "CancelledError", "Client", "DataLossError",
           "DeadlineExceededError", "FailedPreconditionError", "InternalError", "InvalidArgumentError",
           "NotFoundError", "PermissionDeniedError", "ResourceExhaustedError", "UnauthenticatedError",
           "UnavailableError", "UnimplementedError"]
