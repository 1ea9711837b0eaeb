"""Safe relative paths for files stored under a root: no `..`, no absolute paths, no percent-encoded
or backslash tricks, no `#`/`?`, no control characters. Used where paths are accepted (uploads)
and where they are written (downloads), since a stored manifest is input too."""

from __future__ import annotations

import posixpath
import re
import unicodedata
from pathlib import Path

from llmops.core.errors import InvalidArgument

_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\:*?\"<>|#%]")
MAX_PATH_LENGTH = 512


def safe_relative_path(path: str) -> str:
    """The normalised path, or INVALID_ARGUMENT saying why it is unsafe."""
    if not path or len(path) > MAX_PATH_LENGTH:
        raise InvalidArgument(f"file path must be 1-{MAX_PATH_LENGTH} characters")
    normal = unicodedata.normalize("NFC", path)
    if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal):
        raise InvalidArgument(f"file path {path!r} is absolute; use a path relative to the model folder")
    bad = _FORBIDDEN.search(normal)
    if bad:
        raise InvalidArgument(
            f"file path {path!r} contains {bad.group()!r}; use letters, digits, '-', '_', '.', '/' "
            "(percent-encoding, backslashes, '#', '?' and control characters are refused)"
        )
    parts = normal.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidArgument(f"file path {path!r} has an empty, '.' or '..' segment; it must stay inside the folder")
    if any(p.startswith(".") for p in parts):
        raise InvalidArgument(f"file path {path!r} has a hidden segment (starting with '.')")
    return posixpath.normpath(normal)


def confined(root: Path, relative: str) -> Path:
    """`root / relative` after checking `relative`, and after resolving symlinks, still under root."""
    target = (root / safe_relative_path(relative)).resolve()
    base = root.resolve()
    if target != base and base not in target.parents:
        raise InvalidArgument(f"file path {relative!r} escapes the folder through a link")
    return target
