"""API keys, roles and the per-RPC policy table.

Keys are stored hashed (sha256) in a JSON file; a caller sends `authorization: Bearer <key>`.
Roles are ordered: each role may do what the roles below it may. Every RPC names the role it
needs in its service's policy table; an RPC missing from the table is denied (deny by default),
except health and reflection, which are open so probes and tools work without a key.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import fcntl
import hashlib
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from llmops.core.errors import InvalidArgument, PermissionDenied, Unauthenticated

log = logging.getLogger(__name__)
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
    """A caller: its role, plus `grants`, methods (`Service/Method`, or full names) it may call
    beyond its role (least privilege for service keys: the pipeline logs answers as a reader)."""

    name: str
    role: Role
    grants: frozenset[str] = frozenset()

    def has(self, role: Role) -> bool:
        return self.role >= role

    def granted(self, method: str) -> bool:
        """Whether `method` (`/pkg.Service/Method`) is among this caller's grants."""
        if not self.grants:
            return False
        service, _, name = method[1:].partition("/")
        return method[1:] in self.grants or f"{service.rsplit('.', 1)[-1]}/{name}" in self.grants


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


class KeyFileError(ValueError):
    """The key file cannot be read as a key file (services refuse to start on it)."""


@dataclass(frozen=True)
class KeyEntry:
    """One key as the file stores it (only its hash)."""

    name: str
    role: Role
    sha256: str
    created: float = 0.0
    expires: float = 0.0  # unix time; 0: never
    grants: tuple[str, ...] = ()

    def expired(self, now: float | None = None) -> bool:
        return bool(self.expires) and (now or time.time()) >= self.expires

    def to_json(self) -> dict:
        out = {"name": self.name, "role": self.role.name.lower(), "sha256": self.sha256, "created": self.created}
        if self.expires:
            out["expires"] = self.expires
        if self.grants:
            out["grants"] = list(self.grants)
        return out


def read_key_file(path: Path) -> list[KeyEntry]:
    """The entries of a key file ([] when there is none); KeyFileError saying what is wrong."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    try:
        rows = json.loads(text or "{}").get("keys", [])
    except (ValueError, AttributeError) as exc:
        raise KeyFileError(f"{path} is not a key file ({exc}); restore it or create keys with `llmops keys create`"
                           ) from None
    entries = []
    for i, e in enumerate(rows):
        try:
            entries.append(KeyEntry(str(e["name"]), Role.parse(e["role"]), str(e["sha256"]),
                                    float(e.get("created", 0)), float(e.get("expires", 0)),
                                    tuple(str(g) for g in e.get("grants", ()))))
        except (KeyError, TypeError, ValueError, InvalidArgument) as exc:
            raise KeyFileError(f"{path}: keys[{i}] is malformed ({exc}); fix or remove it") from None
    return entries


class KeyStore:
    """Hashed API keys from a JSON file, re-read when the file changes (checked once a second).
    A malformed file fails construction (a service does not start on it); one that turns
    malformed later is logged and the keys read before stay in force."""

    def __init__(self, path: Path | None, *, static: Mapping[str, Principal] | None = None):
        self._path = path
        self._by_hash: dict[str, tuple[Principal, float]] = {hash_key(k): (p, 0.0) for k, p in (static or {}).items()}
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
        entries = read_key_file(self._path)
        table = dict(self._static)
        for e in entries:
            table[e.sha256] = (Principal(e.name, e.role, frozenset(e.grants)), e.expires)
        self._by_hash, self._mtime = table, mtime

    def lookup(self, key: str) -> Principal | None:
        """The key's principal; None for an unknown key. Expired keys raise Unauthenticated."""
        now = time.monotonic()
        digest = hash_key(key)
        # Known keys re-check the file once a second; an unknown key checks at once (one stat),
        # so a key created a moment ago works on its first call.
        if now - self._checked > 1.0 or digest not in self._by_hash:
            with self._lock:
                self._checked = now
                try:
                    self._reload()
                except KeyFileError as exc:
                    log.error("%s; keeping the keys read before", exc)
        hit = self._by_hash.get(digest)
        if hit is None:
            return None
        principal, expires = hit
        if expires and time.time() >= expires:
            raise Unauthenticated(f"the API key of {principal.name} expired; ask an admin for a new one")
        return principal

    def authenticate(self, key: str | None) -> Principal:
        """The key's principal; UNAUTHENTICATED for a missing, unknown or expired key."""
        if not key:
            raise Unauthenticated("no API key: send `authorization: Bearer <key>` (see `llmops keys create`)")
        principal = self.lookup(key)
        if principal is None:
            raise Unauthenticated("unknown API key")
        return principal

    @property
    def empty(self) -> bool:
        return not self._by_hash


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on the key file's companion lock file, for a read-modify-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _write_key_file(path: Path, entries: list[KeyEntry]) -> None:
    """Replace the file atomically (a reader sees the old or the new file, never a part)."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:  # mkstemp creates it 0600: it holds hashes of secrets
            json.dump({"keys": [e.to_json() for e in entries]}, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def add_key(path: Path, name: str, role: Role | str, *, expires_in_s: float = 0.0,
            grants: tuple[str, ...] = ()) -> str:
    """Create a key for `name` with `role` (replacing `name`'s key), store its hash in `path`
    under a lock, return the key. `expires_in_s`: 0 for a key that does not expire."""
    role = Role.parse(role) if isinstance(role, str) else role
    if expires_in_s < 0:
        raise InvalidArgument("a key's lifetime must be positive (or 0: no expiry)")
    key = generate_key()
    now = time.time()
    entry = KeyEntry(name, role, hash_key(key), now, now + expires_in_s if expires_in_s else 0.0, tuple(grants))
    with _locked(path):
        entries = [e for e in read_key_file(path) if e.name != name]
        _write_key_file(path, [*entries, entry])
    return key


def list_keys(path: Path) -> list[KeyEntry]:
    return read_key_file(path)


def revoke_key(path: Path, name: str) -> bool:
    """Remove `name`'s key; services refuse it within a second. False when there was none."""
    with _locked(path):
        entries = read_key_file(path)
        kept = [e for e in entries if e.name != name]
        if len(kept) == len(entries):
            return False
        _write_key_file(path, kept)
    return True


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
        if not principal.has(needed) and not principal.granted(method):
            raise PermissionDenied(
                f"{method.rsplit('/', 1)[-1]} needs role {needed.name.lower()}; "
                f"{principal.name} has {principal.role.name.lower()}"
            )
        return principal
