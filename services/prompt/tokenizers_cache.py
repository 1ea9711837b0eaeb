"""Tokenizers of target models, loaded from a registry model version's `tokenizer.json` (the
`tokenizers` library, no model code) and kept per artifact digest."""

from __future__ import annotations

import time
from collections.abc import Callable

from llmops.core.errors import FailedPrecondition
from llmops.registry.v1 import registry_pb2 as rpb

TOKENIZER_FILE = "tokenizer.json"


class TokenizerCache:
    """Tokenizers by artifact digest (content never changes), and model references resolved for
    `resolve_ttl_s` (an alias that moves is followed within that time)."""

    def __init__(self, registry_stub, resolve_ttl_s: float = 5.0):
        self._stub = registry_stub
        self._ttl = resolve_ttl_s
        self._by_digest: dict[str, Callable[[str], int]] = {}
        self._resolved: dict[str, tuple[float, rpb.ModelVersion]] = {}

    async def _resolve(self, model_ref: str) -> rpb.ModelVersion:
        hit = self._resolved.get(model_ref)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        version = await self._stub.GetModelVersion(rpb.GetModelVersionRequest(name=model_ref))
        self._resolved[model_ref] = (time.monotonic(), version)
        return version

    async def counter(self, model_ref: str) -> tuple[str, Callable[[str], int]]:
        """(resolved version name, token counting function) for a registry model reference."""
        version = await self._resolve(model_ref)
        entry = next((f for f in version.artifact.files if f.path == TOKENIZER_FILE), None)
        if entry is None:
            raise FailedPrecondition(f"{version.name} has no {TOKENIZER_FILE}; name a model version that has one")
        if entry.sha256 not in self._by_digest:
            data = bytearray()
            async for msg in self._stub.DownloadArtifact(rpb.DownloadArtifactRequest(
                    model_version=version.name, path=TOKENIZER_FILE)):
                if msg.WhichOneof("part") == "chunk":
                    data += msg.chunk
            from tokenizers import Tokenizer

            tok = Tokenizer.from_str(data.decode())
            self._by_digest[entry.sha256] = lambda text: len(tok.encode(text, add_special_tokens=False).ids)
        return version.name, self._by_digest[entry.sha256]
