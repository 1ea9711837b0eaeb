"""Tokenizers of target models, loaded from a registry model version's `tokenizer.json` (the
`tokenizers` library, no model code) and kept per artifact digest."""

from __future__ import annotations

from collections.abc import Callable

from llmops.core.errors import FailedPrecondition
from llmops.registry.v1 import registry_pb2 as rpb

TOKENIZER_FILE = "tokenizer.json"


class TokenizerCache:
    def __init__(self, registry_stub):
        self._stub = registry_stub
        self._by_digest: dict[str, Callable[[str], int]] = {}

    async def counter(self, model_ref: str) -> tuple[str, Callable[[str], int]]:
        """(resolved version name, token counting function) for a registry model reference."""
        version = await self._stub.GetModelVersion(rpb.GetModelVersionRequest(name=model_ref))
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
