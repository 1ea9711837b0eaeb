"""Exact match after normalisation: case, punctuation and runs of whitespace do not count, so
"Only an approver." matches "only an approver" but not "An approver only."."""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


def exact_match(answer: str, reference: str) -> bool:
    return normalize(answer) == normalize(reference)


def rate(answers: list[str], references: list[str]) -> float:
    """Share of answers that match their reference (0 for none)."""
    if not references:
        return 0.0
    return sum(exact_match(a, r) for a, r in zip(answers, references, strict=True)) / len(references)
