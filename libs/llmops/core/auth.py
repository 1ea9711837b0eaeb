"""API keys, roles and the per-RPC policy table.

Keys are stored hashed (sha256) in a JSON file; a caller sends `authorization: Bearer <key>`.
Roles are ordered: each role may do what the roles below it may. Every RPC names the role it
needs in its service's policy table; an RPC missing from the table is denied (deny by default),
except health and reflection, which are open so probes and tools work without a key.
"""

from __future__ import annotations

import contextvars
import enum
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from llmops.core.errors import InvalidArgument, PermissionDenied, Unauthenticated

OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
KEY_PREFIX = "llm_"


class Role(enum.IntEnum):
    READER = 1
    REVIEWER = 2  # may give feedback
    EDITOR = 3
    APPROVER = 4
    ADMIN = 5

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(r.name.lower() for r in cls)
            raise InvalidArgument(f"unknown role {text!r}; use one of: {names}") from None


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role

    def has(self, role: Role) -> bool:
        return self.role >= role


ANONYMOUS = Principal("anonymous", Role.READER)

# The authenticated caller of the RPC being served; set by the auth interceptor.
current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "llmops_principal", default=None
)


# The caller's own key, so a service can call another on the caller's behalf (same permissions).
current_key: contextvars.ContextVar[str | None] = contextvars.ContextVar("llmops_key", default=None)


def caller() -> Principal:
    """The principal of the current RPC (servicers use it for created_by and finer checks)."""
    return current_principal.get() or ANONYMOUS


def require(role: Role, action: str, who: Principal | None = None) -> None:
    """Finer check inside an RPC, e.g. moving a protected alias needs approver (`who`: the
    current caller unless given)."""
    who = who or caller()
    if not who.has(role):
        raise PermissionDenied(f"{action} needs role {role.name.lower()}; {who.name} has {who.role.name.lower()}")


# User payload (questions, answers, prompt messages, retrieved text, corrections, training rows,
# and error texts that may quote them) is shown to this role and above; below it, responses keep
# their metadata and lose the payload (see docs/security.md, "Data by role").
PAYLOAD_ROLE = Role.REVIEWER
REDACTED = "[redacted: needs role reviewer]"


def sees_payload(who: Principal | None = None) -> bool:
    """Whether the current caller (or `who`) may read stored user payload."""
    return (who or caller()).has(PAYLOAD_ROLE)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyStore:
    """Hashed API keys from a JSON file, re-read when the file changes (checked once a second)."""

    def __init__(self, path: Path | None, *, static: Mapping[str, Principal] | None = None):
        self._path = path
        self._by_hash: dict[str, Principal] = {hash_key(k): p for k, p in (static or {}).items()}
        self._static = dict(self._by_hash)
        self._mtime: tuple | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._reload()

    def _reload(self) -> None:
        if self._path is None:
            return
        try:
            st = self._path.stat()
            mtime = (st.st_mtime_ns, st.st_size, st.st_ino)  # a rewrite within one clock tick still differs
        except FileNotFoundError:
            self._by_hash = dict(self._static)
            self._mtime = None
            return
        if mtime == self._mtime:
            return
        entries = json.loads(self._path.read_text() or "{}").get("keys", [])
        table = dict(self._static)
        for e in entries:
            table[e["sha256"]] = Principal(e["name"], Role.parse(e["role"]))
        self._by_hash, self._mtime = table, mtime

    def lookup(self, key: str) -> Principal | None:
        now = time.monotonic()
        digest = hash_key(key)
        # Known keys re-check the file once a second; an unknown key checks at once (one stat),
        # so a key created a moment ago works on its first call.
        if now - self._checked > 1.0 or digest not in self._by_hash:
            with self._lock:
                self._checked = now
                self._reload()
        return self._by_hash.get(digest)

    def authenticate(self, key: str | None) -> Principal:
        """The key's principal; UNAUTHENTICATED for a missing or unknown key."""
        if not key:
            raise Unauthenticated("no API key: send `authorization: Bearer <key>` (see `llmops keys create`)")
        principal = self.lookup(key)
        if principal is None:
            raise Unauthenticated("unknown API key")
        return principal

    @property
    def empty(self) -> bool:
        return not self._by_hash


def add_key(path: Path, name: str, role: Role | str) -> str:
    """Create a key for `name` with `role`, store its hash in `path` (mode 0600), return the key."""
    role = Role.parse(role) if isinstance(role, str) else role
    key = generate_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {"keys": []}
    data["keys"] = [e for e in data["keys"] if e["name"] != name]
    data["keys"].append({"name": name, "role": role.name.lower(), "sha256": hash_key(key)})
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)
    return key


def bearer_key(metadata: Mapping[str, str]) -> str | None:
    value = metadata.get("authorization")
    if value and value[:7].lower() == "bearer ":
        return value[7:].strip()
    return metadata.get("x-api-key")


@dataclass(frozen=True)
class Policy:
    """Full method name (`/pkg.Service/Method`) to the role it needs."""

    rules: Mapping[str, Role]

    @classmethod
    def for_service(cls, service_full_name: str, rules: Mapping[str, Role]) -> Policy:
        return cls({f"/{service_full_name}/{m}": r for m, r in rules.items()})

    def __or__(self, other: Policy) -> Policy:
        return Policy({**self.rules, **other.rules})

    def authorize(self, method: str, key: str | None, keys: KeyStore) -> Principal | None:
        """The caller's principal; raises Unauthenticated / PermissionDenied. None for open RPCs."""
        if method.startswith(OPEN_SERVICES):
            return None
        principal = keys.authenticate(key)
        needed = self.rules.get(method)
        if needed is None:
            raise PermissionDenied(f"{method} is not in this service's policy table; denied by default")
        if not principal.has(needed):
            raise PermissionDenied(
                f"{method.rsplit('/', 1)[-1]} needs role {needed.name.lower()}; "
                f"{principal.name} has {principal.role.name.lower()}"
            )
        return principal
