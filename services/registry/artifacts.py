"""Which files a model folder may contain, and checks on their content.

Weights are accepted as safetensors only: pickled formats (.bin, .pt, .pkl, ...) can run code
when loaded, so they are refused by name and, whatever the name, by content (pickle and torch
zip signatures), and a `.safetensors` file must start with a safetensors header.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable
from pathlib import PurePosixPath

from llmops.core.errors import InvalidArgument
from llmops.core.paths import safe_relative_path

ALLOWED_SUFFIXES = frozenset({".safetensors", ".json", ".jsonl", ".txt", ".model", ".tiktoken", ".jinja", ".md", ".yaml", ".yml"})
ALLOWED_BARE_NAMES = frozenset({"LICENSE", "NOTICE", "README", "USE_POLICY"})
# Files that hold rows of data (training sets, evaluation sets): user payload, so downloading one
# needs the payload role (docs/security.md).
DATA_SUFFIXES = frozenset({".jsonl"})
PICKLED_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz", ".h5", ".msgpack"})
SNIFF_BYTES = 16
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024


def check_file_name(path: str) -> str:
    """The normalised path, or INVALID_ARGUMENT for unsafe names and disallowed types."""
    path = safe_relative_path(path)
    p = PurePosixPath(path)
    suffix = p.suffix.lower()
    if suffix in PICKLED_SUFFIXES:
        raise InvalidArgument(
            f"{path!r} is a pickled format ({suffix}), which can execute code when loaded; "
            "convert the weights to safetensors (e.g. `save_pretrained(..., safe_serialization=True)`)"
        )
    if suffix not in ALLOWED_SUFFIXES and p.name not in ALLOWED_BARE_NAMES:
        allowed = ", ".join(sorted(ALLOWED_SUFFIXES))
        raise InvalidArgument(f"{path!r} has a file type the registry does not store; allowed: {allowed}")
    return path


def check_leading_bytes(path: str, head: bytes, declared_size: int) -> None:
    """Refuse content that is a pickle or torch archive whatever its name, and safetensors files
    whose header is not one. `head` holds the first SNIFF_BYTES bytes (fewer for small files)."""
    if len(head) >= 2 and head[0] == 0x80 and 1 <= head[1] <= 5:
        raise InvalidArgument(f"{path!r} is a Python pickle; pickled files are refused, use safetensors")
    if head.startswith(b"PK\x03\x04"):
        raise InvalidArgument(f"{path!r} is a zip archive (as torch.save writes); refused, use safetensors")
    if path.endswith(".safetensors"):
        if len(head) < 9:
            raise InvalidArgument(f"{path!r} is too short to be a safetensors file")
        (header_len,) = struct.unpack("<Q", head[:8])
        if header_len > min(MAX_SAFETENSORS_HEADER, declared_size - 8) or head[8:9] != b"{":
            raise InvalidArgument(f"{path!r} does not start with a safetensors header")


def check_json(path: str, data: bytes) -> None:
    try:
        json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{path!r} is not valid JSON: {exc}") from None


def check_stored(path: str, chunks: Iterable[bytes], size: int) -> None:
    """Apply the content rules for `path` to content already in the store: a blob stored under
    one name can be listed under another (deduplicated uploads, version manifests)."""
    if path.endswith(".json"):
        check_json(path, b"".join(chunks))
        return
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= SNIFF_BYTES:
            break
    check_leading_bytes(path, head[:SNIFF_BYTES], size)


def manifest_digest(files: Iterable[tuple[str, str, int]]) -> str:
    """sha256 over `path\\tsha256\\tsize\\n` lines sorted by path: one id for a whole folder."""
    h = hashlib.sha256()
    for path, sha, size in sorted(files):
        h.update(f"{path}\t{sha}\t{size}\n".encode())
    return h.hexdigest()


def guess_format(paths: Iterable[str]) -> str:
    names = set(paths)
    if any(n.endswith(".safetensors") for n in names) and "config.json" in names:
        return "hf-safetensors"
    return "files"
