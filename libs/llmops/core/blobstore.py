"""A content-addressed blob store: a local folder by default, any fsspec URL (s3://, gs://, ...)
for scale-out. Content is staged in a local spool file while its sha256 and size are computed;
only content matching the declared digest is moved under `sha256/<ab>/<digest>` (renamed in a
folder; one PUT of the final key in an object store, which is atomic there), so a failed or lying
upload leaves nothing behind and a stored blob is never partial. For S3-compatible servers the
endpoint comes from the standard `AWS_ENDPOINT_URL` (and credentials from `AWS_*`)."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from llmops.core.errors import DataLoss, InvalidArgument, ResourceExhausted

DIGEST = re.compile(r"^[0-9a-f]{64}$")
READ_CHUNK = 1024 * 1024


def check_digest(digest: str) -> str:
    if not DIGEST.match(digest or ""):
        raise InvalidArgument(f"sha256 must be 64 lowercase hex characters, got {digest[:80]!r}")
    return digest


class BlobWriter:
    """Receives one blob's chunks; `commit` verifies and stores it, `abort` discards it."""

    def __init__(self, store: BlobStore, max_bytes: int):
        self._store = store
        self._max = max_bytes
        self._hash = hashlib.sha256()
        self.size = 0
        fd, name = tempfile.mkstemp(prefix="upload-", dir=store.spool_dir)
        self._path = Path(name)
        self._file: BinaryIO = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._max:
            self.abort()
            raise ResourceExhausted(f"upload exceeds the {self._max} byte limit; nothing was stored")
        self._hash.update(chunk)
        self._file.write(chunk)

    def commit(self, expected_sha256: str, expected_size: int) -> bool:
        """Store the blob if it matches; returns False when it was already stored."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        actual = self._hash.hexdigest()
        if actual != expected_sha256 or self.size != expected_size:
            self._discard()
            raise DataLoss(
                f"received {self.size} bytes with sha256 {actual}, but {expected_size} bytes with sha256 "
                f"{expected_sha256} were declared; nothing was stored, retry the upload"
            )
        return self._store._adopt(self._path, actual)

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._discard()

    def _discard(self) -> None:
        self._path.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, url: str, spool_dir: Path | None = None):
        self.url = url
        if "://" not in url or url.startswith("file://"):
            self._local: Path | None = Path(url.removeprefix("file://")).expanduser()
            self._local.mkdir(parents=True, exist_ok=True)
            self.spool_dir = spool_dir or self._local / ".spool"  # same filesystem: rename is atomic
            self._fs = None
        else:
            import fsspec

            self._local = None
            self._fs, self._root = fsspec.core.url_to_fs(url)
            self.spool_dir = spool_dir or Path(tempfile.gettempdir()) / "llmops-spool"
        self.spool_dir.mkdir(parents=True, exist_ok=True)

    def _key(self, digest: str) -> str:
        check_digest(digest)
        return f"sha256/{digest[:2]}/{digest}"

    def writer(self, max_bytes: int) -> BlobWriter:
        return BlobWriter(self, max_bytes)

    def _adopt(self, staged: Path, digest: str) -> bool:
        key = self._key(digest)
        if self.exists(digest):
            staged.unlink(missing_ok=True)
            return False
        if self._local is not None:
            target = self._local / key
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
            fd = os.open(target.parent, os.O_RDONLY)  # make the rename itself durable
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        else:  # an object store's PUT is atomic: the key shows the whole blob or nothing
            self._fs.put_file(str(staged), f"{self._root}/{key}")
            staged.unlink(missing_ok=True)
        return True

    def exists(self, digest: str) -> bool:
        key = self._key(digest)
        if self._local is not None:
            return (self._local / key).is_file()
        return self._fs.exists(f"{self._root}/{key}")

    def size(self, digest: str) -> int | None:
        if not self.exists(digest):
            return None
        key = self._key(digest)
        if self._local is not None:
            return (self._local / key).stat().st_size
        return int(self._fs.size(f"{self._root}/{key}"))

    def read(self, digest: str, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
        key = self._key(digest)
        opener = open(self._local / key, "rb") if self._local is not None else self._fs.open(f"{self._root}/{key}", "rb")
        with opener as f:
            while chunk := f.read(chunk_size):
                yield chunk
