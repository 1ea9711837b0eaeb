"""Documents to chunk rows: text extraction, chunking and batched embedding (CPU-bound, run in a
worker thread by the servicer)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from services.retrieval import chunking
from services.retrieval.embedding import Embedder
from services.retrieval.vectors import ChunkRow


@dataclass(frozen=True)
class Doc:
    id: str
    text: str
    metadata: dict

    def content_sha256(self) -> str:
        body = json.dumps([self.text, self.metadata], sort_keys=True, default=str).encode()
        return hashlib.sha256(body).hexdigest()


def chunk_documents(docs: Sequence[Doc], embedder: Embedder, size: int, overlap: int,
                    batch_size: int) -> tuple[list[ChunkRow], dict[str, int]]:
    """Every chunk of every document with its vector, and the chunk count per document."""
    pieces: list[tuple[Doc, chunking.Chunk]] = []
    counts: dict[str, int] = {}
    for doc in docs:
        chunks = chunking.split(chunking.to_text(doc.text), size, overlap, embedder.count_tokens, embedder.token_offsets)
        counts[doc.id] = len(chunks)
        pieces.extend((doc, c) for c in chunks)
    if not pieces:
        return [], counts
    vectors = embedder.encode([c.text for _, c in pieces], batch_size=batch_size)
    rows = [ChunkRow(f"{doc.id}#{c.index}", doc.id, c.text, {**doc.metadata}, vec)
            for (doc, c), vec in zip(pieces, vectors, strict=True)]
    return rows, counts
