"""Splitting documents into chunks of at most N tokens (the embedding model's tokenizer), with
overlap, cutting at paragraph and then sentence boundaries where possible. HTML and Markdown are
reduced to their text first."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

_TAG = re.compile(r"<(script|style)[^>]*>.*?</\1>|<[^>]+>", re.S | re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_PARAGRAPH = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    tokens: int


def to_text(raw: str) -> str:
    """HTML tags and entities removed, Markdown markup kept as text, whitespace normalised."""
    if "<" in raw and ">" in raw:
        raw = html.unescape(_TAG.sub(" ", raw))
    raw = raw.replace("\r\n", "\n")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in raw.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _pieces(text: str) -> list[str]:
    """Paragraphs, each split into sentences: the units chunks are built from."""
    out = []
    for para in _PARAGRAPH.split(text):
        para = para.strip()
        if para:
            sentences = [s for s in _SENTENCE_END.split(para) if s.strip()]
            out.extend(sentences)
            out.append("\n\n")  # a paragraph break is a preferred cut
    return out[:-1] if out else out


def split(text: str, size: int, overlap: int, count: Callable[[str], int],
          offsets: Callable[[str], list[tuple[int, int]]]) -> list[Chunk]:
    """Greedy packing of sentences into chunks of <= `size` tokens; a sentence longer than `size`
    is cut at token boundaries. Each chunk after the first starts with the last `overlap` tokens
    of the one before it."""
    if not text.strip():
        return []
    units: list[str] = []
    for piece in _pieces(text):
        if piece != "\n\n" and count(piece) > size:
            spans = offsets(piece)
            for start in range(0, len(spans), size):
                window = spans[start:start + size]
                units.append(piece[window[0][0]:window[-1][1]])
        else:
            units.append(piece)
    chunks: list[str] = []
    current = ""
    for unit in units:
        candidate = (current + (" " if current and unit != "\n\n" and not current.endswith("\n\n") else "") + unit)
        if current and unit != "\n\n" and count(candidate.strip()) > size:
            chunks.append(current.strip())
            tail = _tail(current.strip(), overlap, offsets) if overlap else ""
            current = (tail + " " + unit) if tail and count(tail + " " + unit) <= size else unit
        else:
            current = candidate
    if current.strip():
        chunks.append(current.strip())
    return [Chunk(i, c, count(c)) for i, c in enumerate(chunks)]


def _tail(text: str, tokens: int, offsets: Callable[[str], list[tuple[int, int]]]) -> str:
    spans = offsets(text)
    if len(spans) <= tokens:
        return text
    return text[spans[-tokens][0]:]
