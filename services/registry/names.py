"""Resource names of the registry: `models/{model}`, `models/{model}/versions/{version|alias}`
and the short forms `{model}` and `{model}@{version|alias}`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmops.core.errors import InvalidArgument

MODEL_ID = re.compile(r"^[a-z][a-z0-9._-]{0,62}$")
ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def check_model_id(model_id: str) -> str:
    if not MODEL_ID.match(model_id or ""):
        raise InvalidArgument(
            f"model id {model_id[:80]!r} is invalid: use 1-63 lowercase letters, digits, '-', '_' or '.', "
            "starting with a letter"
        )
    return model_id


def check_alias(alias: str) -> str:
    if not ALIAS.match(alias or ""):
        raise InvalidArgument(
            f"alias {alias[:80]!r} is invalid: use 1-63 lowercase letters, digits, '-' or '_', starting with a letter"
        )
    return alias


def model_id(name: str) -> str:
    """`models/foo` or `foo` -> `foo`."""
    if name.startswith("models/"):
        name = name[len("models/"):]
    if not name:
        raise InvalidArgument("model name is empty; pass `models/{model}` or the model id")
    return check_model_id(name)


def model_name(model_id_: str) -> str:
    return f"models/{model_id_}"


def version_name(model_id_: str, version: int) -> str:
    return f"models/{model_id_}/versions/{version}"


@dataclass(frozen=True)
class VersionRef:
    model: str
    version: int | None  # exactly one of version / alias
    alias: str | None

    def __str__(self) -> str:
        return f"{self.model}@{self.version if self.version is not None else self.alias}"


def parse_version_ref(ref: str) -> VersionRef:
    """Parse any accepted form of a version reference; INVALID_ARGUMENT says which forms exist."""
    forms = "use `models/{model}/versions/{version|alias}` or `{model}@{version|alias}`"
    if not ref:
        raise InvalidArgument(f"model version reference is empty; {forms}")
    if ref.startswith("models/"):
        parts = ref.split("/")
        if len(parts) != 4 or parts[2] != "versions":
            raise InvalidArgument(f"malformed model version name {ref[:100]!r}; {forms}")
        model, selector = parts[1], parts[3]
    elif "@" in ref:
        model, _, selector = ref.partition("@")
    else:
        raise InvalidArgument(f"{ref[:100]!r} names no version; {forms}")
    check_model_id(model)
    if selector.isdigit():
        version = int(selector)
        if version < 1:
            raise InvalidArgument(f"version numbers start at 1, got {selector}")
        return VersionRef(model, version, None)
    return VersionRef(model, None, check_alias(selector))
