"""Opaque page tokens for keyset pagination. A token carries the last position and a
fingerprint of the query it belongs to, so a token reused with other filters is refused."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from llmops.core.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
T = TypeVar("T")


def page_size(requested: int, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    if requested < 0:
        raise InvalidArgument(f"page_size must be 0 (default {default}) or positive, got {requested}", field="page_size")
    if requested == 0:
        return default
    return min(requested, maximum)  # AIP-158: values above the maximum are coerced down


def _fingerprint(query: Any) -> str:
    return hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode(position: Any, query: Any) -> str:
    raw = json.dumps({"p": position, "q": _fingerprint(query)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, query: Any, expect: type | None = None) -> Any | None:
    """The position in `token`, or None for the first page; INVALID_ARGUMENT when it is not a
    token this query issued (or its position is not of type `expect`)."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        position, fingerprint = data["p"], data["q"]
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("page_token is malformed; pass the next_page_token of the previous response", field="page_token") from None
    if fingerprint != _fingerprint(query):
        raise InvalidArgument("page_token belongs to a different query; restart the listing without it", field="page_token")
    if expect is not None and (not isinstance(position, expect) or isinstance(position, bool)):
        raise InvalidArgument("page_token is malformed; pass the next_page_token of the previous response", field="page_token")
    return position


@dataclass(frozen=True)
class Page:
    """One page of a keyset listing: fetch `limit` rows (one more than the page) after
    `position`, then `finish` them into the page and the next token."""

    size: int
    position: Any  # None on the first page
    query: Any

    @property
    def limit(self) -> int:
        return self.size + 1

    def finish(self, rows: list[T], key: Callable[[T], Any]) -> tuple[list[T], str]:
        """(the page's rows, next_page_token: empty on the last page)."""
        more = len(rows) > self.size
        return rows[:self.size], encode(key(rows[self.size - 1]), self.query) if more else ""


def start(request: Any, query: Any, expect: type) -> Page:
    """The page a List request asks for (its `page_size` and `page_token`); INVALID_ARGUMENT for
    a bad size or a token from another query."""
    return Page(page_size(request.page_size), decode(request.page_token, query, expect), query)
