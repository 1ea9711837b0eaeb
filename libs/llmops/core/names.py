"""Resource names shared by the services that keep versioned resources with aliases:
`{collection}/{id}`, `{collection}/{id}/versions/{version|alias}` and the short forms `{id}` and
`{id}@{version|alias}`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmops.core.errors import InvalidArgument

RESOURCE_ID = re.compile(r"^[a-z][a-z0-9._-]{0,62}$")
ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def check_id(kind: str, value: str) -> str:
    if not RESOURCE_ID.match(value or ""):
        raise InvalidArgument(
            f"{kind} id {value[:80]!r} is invalid: use 1-63 lowercase letters, digits, '-', '_' or '.', "
            "starting with a letter"
        )
    return value


def check_alias(alias: str) -> str:
    if not ALIAS.match(alias or ""):
        raise InvalidArgument(
            f"alias {alias[:80]!r} is invalid: use 1-63 lowercase letters, digits, '-' or '_', starting with a letter"
        )
    return alias


def resource_id(kind: str, collection: str, name: str) -> str:
    """`{collection}/foo` or `foo` -> `foo`."""
    name = name.removeprefix(f"{collection}/")
    if not name:
        raise InvalidArgument(f"{kind} name is empty; pass `{collection}/{{{kind}}}` or the {kind} id")
    return check_id(kind, name)


@dataclass(frozen=True)
class VersionRef:
    id: str
    version: int | None  # exactly one of version / alias
    alias: str | None

    def __str__(self) -> str:
        return f"{self.id}@{self.version if self.version is not None else self.alias}"


def parse_version_ref(kind: str, collection: str, ref: str) -> VersionRef:
    """Any accepted form of a version reference; INVALID_ARGUMENT says which forms exist."""
    forms = f"use `{collection}/{{{kind}}}/versions/{{version|alias}}` or `{{{kind}}}@{{version|alias}}`"
    if not ref:
        raise InvalidArgument(f"{kind} version reference is empty; {forms}")
    if ref.startswith(f"{collection}/"):
        parts = ref.split("/")
        if len(parts) != 4 or parts[2] != "versions":
            raise InvalidArgument(f"malformed {kind} version name {ref[:100]!r}; {forms}")
        ident, selector = parts[1], parts[3]
    elif "@" in ref:
        ident, _, selector = ref.partition("@")
    else:
        raise InvalidArgument(f"{ref[:100]!r} names no version; {forms}")
    check_id(kind, ident)
    if selector.isdigit():
        version = int(selector)
        if version < 1:
            raise InvalidArgument(f"version numbers start at 1, got {selector}")
        return VersionRef(ident, version, None)
    return VersionRef(ident, None, check_alias(selector))
