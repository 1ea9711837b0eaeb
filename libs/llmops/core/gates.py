"""The gate on production-facing pointers, one rule for every versioned resource (registry models
and pipeline bundles, prompt templates): a *protected* alias (by default `production`) may be
moved or deleted only by an approver, only onto a version a person approved, and a version a
protected alias points to cannot be rejected. Every move is recorded as an audit event by the
store that calls the gate, in the same transaction as the move.

Stores and servicers of each service call these checks; the rule itself lives only here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from llmops.core import auth
from llmops.core.auth import Role
from llmops.core.errors import FailedPrecondition


class Approval(enum.StrEnum):
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True)
class AliasGate:
    """`protected`: the alias names this service guards; `approve_hint`: the command that approves
    a version (`{ref}` is replaced), for messages a person can act on."""

    protected: frozenset[str]
    approve_hint: str = ""

    def is_protected(self, alias: str) -> bool:
        return alias in self.protected

    def require_mover(self, alias: str, action: str = "moving", granted: str = "") -> bool:
        """PERMISSION_DENIED unless the caller may move `alias`; whether it is protected. A caller
        granted the method `granted` (`/pkg.Service/Method`: a service key, such as the release
        controller's) may, as an approver would."""
        if alias in self.protected:
            if not (granted and auth.caller().granted(granted)):
                auth.require(Role.APPROVER, f"{action} protected alias {alias!r}")
            return True
        return False

    def check_target(self, alias: str, ref: str, approval: str) -> None:
        """FAILED_PRECONDITION when protected `alias` would point at a version (`ref`) that is
        not approved."""
        if alias in self.protected and approval != Approval.APPROVED:
            hint = f" ({self.approve_hint.format(ref=ref)})" if self.approve_hint else ""
            raise FailedPrecondition(f"alias {alias!r} is protected and {ref} is {approval.replace('_', ' ')}; "
                                     f"approve it first{hint}")

    def check_reject(self, ref: str, pointing: Iterable[str]) -> None:
        """FAILED_PRECONDITION when a protected alias points at the version being rejected."""
        guarded = sorted(a for a in pointing if a in self.protected)
        if guarded:
            raise FailedPrecondition(f"protected alias {', '.join(guarded)} points to {ref}; move it to another "
                                     "approved version before rejecting this one")

    @staticmethod
    def check_review(ref: str, approval: str, approve: bool, reviewer: str) -> bool:
        """Whether the review changes anything: approving twice is a no-op; approving a rejected
        version is FAILED_PRECONDITION (a new version is the way back)."""
        if approve and approval == Approval.APPROVED:
            return False
        if approve and approval == Approval.REJECTED:
            raise FailedPrecondition(f"{ref} was rejected by {reviewer}; create a new version instead of approving "
                                     "a rejected one")
        return True
