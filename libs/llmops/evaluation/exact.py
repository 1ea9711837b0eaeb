"""Exact match after normalisation: case, punctuation and runs of whitespace do not count, so
"Only an approver." matches "only an approver" but not "An approver only.". Free-form answers
are scored by key phrases instead: an answer is right when it matches exactly or contains one of
the row's key phrases (normalised the same way)."""

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


def answer_match(answer: str, reference: str, key_phrases: tuple[str, ...] | list[str] = ()) -> bool:
    if exact_match(answer, reference):
        return True
    text = f" {normalize(answer)} "
    return any(f" {normalize(p)}" in text for p in key_phrases if normalize(p))


def rate(answers: list[str], references: list[str]) -> float:
    """Share of answers that match their reference (0 for none)."""
    if not references:
        return 0.0
    return sum(exact_match(a, r) for a, r in zip(answers, references, strict=True)) / len(references)
