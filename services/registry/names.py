"""Resource names of the registry: `models/{model}`, `models/{model}/versions/{version|alias}`
and the short forms `{model}` and `{model}@{version|alias}` (the shared rules in llmops.core.names)."""

from __future__ import annotations

from llmops.core import names as core
from llmops.core.names import ALIAS, REQUEST_ID, check_alias

__all__ = ["ALIAS", "REQUEST_ID", "VersionRef", "check_alias", "check_model_id", "model_id", "model_name",
           "parse_version_ref", "version_name"]


class VersionRef(core.VersionRef):
    @property
    def model(self) -> str:
        return self.id


def check_model_id(model_id_: str) -> str:
    return core.check_id("model", model_id_)


def model_id(name: str) -> str:
    """`models/foo` or `foo` -> `foo`."""
    return core.resource_id("model", "models", name)


def model_name(model_id_: str) -> str:
    return f"models/{model_id_}"


def version_name(model_id_: str, version: int) -> str:
    return f"models/{model_id_}/versions/{version}"


def parse_version_ref(ref: str) -> VersionRef:
    parsed = core.parse_version_ref("model", "models", ref)
    return VersionRef(parsed.id, parsed.version, parsed.alias)
