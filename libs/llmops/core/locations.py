"""Server-side locations a caller may name (tables to sync or export, datasets to train on,
embedding model folders): they resolve only inside the service's configured roots or under
allow-listed URL prefixes, so a caller can never make a service read or overwrite another
service's data, a system file or an arbitrary bucket.

Every refusal is INVALID_ARGUMENT, and never says whether the location exists: the check runs on the name alone (after
resolving links for local paths) before anything is opened.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llmops.core.errors import InvalidArgument

REMOTE_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_LENGTH = 1024


def is_url(value: str) -> bool:
    """An object-store URL (`s3://...` and the like)."""
    scheme, sep, _ = value.partition("://")
    return bool(sep) and scheme.lower() in REMOTE_SCHEMES


def check_text(value: str, field: str) -> str:
    """INVALID_ARGUMENT for control characters (NUL included) or an over-long location."""
    if len(value) > MAX_LENGTH:
        raise InvalidArgument(f"{field} is longer than {MAX_LENGTH} characters")
    if _CONTROL.search(value):
        raise InvalidArgument(f"{field} contains a control character; give a plain path or URL")
    return value


@dataclass(frozen=True)
class Locations:
    """Local `roots` (a relative name resolves under the first) and URL `prefixes` (e.g.
    `s3://bucket/datasets/`); `setting` names the variable that configures them, for messages."""

    roots: tuple[Path, ...]
    prefixes: tuple[str, ...] = ()
    setting: str = ""
    base_url: str = ""  # when the first root is an object-store URL: relative names resolve under it

    @classmethod
    def of(cls, roots: Sequence[str | Path], prefixes: Sequence[str] = (), setting: str = "") -> Locations:
        """`roots` may hold object-store URLs (`s3://bucket/datasets`): they are allowed like
        prefixes, and the first root, local or not, is where relative names go."""
        urls = [str(r).rstrip("/") for r in roots if is_url(str(r))]
        local = tuple(Path(r).expanduser().resolve() for r in roots if str(r) and not is_url(str(r)))
        first = str(roots[0]) if roots else ""
        return cls(local, tuple(p for p in (*prefixes, *urls) if p), setting,
                   first.rstrip("/") if is_url(first) else "")

    def _refuse(self, field: str, what: str) -> InvalidArgument:
        hint = f" (an administrator can allow more with {self.setting})" if self.setting else ""
        return InvalidArgument(f"{field} is {what}{hint}")

    def resolve(self, value: str, field: str) -> str:
        """The location as the service will open it: an absolute local path or an allowed URL."""
        check_text(value, field)
        if not value.strip():
            raise InvalidArgument(f"{field} is required")
        scheme, sep, rest = value.partition("://")
        scheme = scheme.lower()
        if sep and scheme in REMOTE_SCHEMES:
            normal = f"{scheme}://{posixpath.normpath(rest)}"
            if ".." in rest.split("/") or not any(normal.startswith(p.rstrip("/") + "/") or normal == p.rstrip("/")
                                                  for p in self.prefixes):
                raise self._refuse(field, "not under an allow-listed URL prefix")
            return normal
        if sep and scheme != "file":
            raise InvalidArgument(f"{field}: scheme {scheme!r} is not supported; use a path or "
                                  f"{', '.join(s + '://' for s in REMOTE_SCHEMES)}")
        if self.base_url and not sep and not value.startswith(("/", "~")):
            name = posixpath.normpath(value)
            if name.startswith("..") or name == ".":
                raise self._refuse(field, "outside the folders this service may use")
            return f"{self.base_url}/{name}"
        if not self.roots:
            raise self._refuse(field, "a local path, and this service has no local roots configured")
        path = Path(rest if sep else value).expanduser()
        target = (path if path.is_absolute() else self.roots[0] / path).resolve()
        if not any(target == root or target.is_relative_to(root) for root in self.roots):
            raise self._refuse(field, "outside the folders this service may use")
        return str(target)
