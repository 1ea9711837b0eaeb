"""Exact match after normalisation: case, punctuation and runs of whitespace do not count, so
"Only an approver." matches "only an approver" but not "An approver only.". Free-form answers
are scored by key phrases instead: an answer is right when it matches exactly or contains one of
the row's key phrases (normalised the same way). Token F1 (SQuAD's: the overlap of normalised
words, as a bag) and contains-reference give partial and lenient credit."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

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


def token_f1(answer: str, reference: str) -> float:
    """Harmonic mean of word precision and recall between answer and reference (1 when both are
    empty)."""
    got, want = normalize(answer).split(), normalize(reference).split()
    if not got or not want:
        return float(got == want)
    common = sum((Counter(got) & Counter(want)).values())
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def contains_reference(answer: str, reference: str) -> bool:
    """The whole reference appears in the answer, on word boundaries."""
    ref = normalize(reference)
    return bool(ref) and f" {ref} " in f" {normalize(answer)} "


def rate(answers: list[str], references: list[str]) -> float:
    """Share of answers that match their reference (0 for none)."""
    if not references:
        return 0.0
    return sum(exact_match(a, r) for a, r in zip(answers, references, strict=True)) / len(references)
