"""Typed configuration from environment variables.

A service declares a frozen dataclass; `from_env` fills each field from `PREFIX_FIELD_NAME`,
converting by the field's annotation, so a typo or a bad value fails at start-up with the
variable's name instead of deep inside a request.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """An environment variable holds a value its field cannot take."""


def _convert(raw: str, kind: Any, var: str) -> Any:
    origin = typing.get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if raw == "":
            return None
        return _convert(raw, args[0], var)
    if origin in (tuple, list, frozenset):
        (item,) = typing.get_args(kind)[:1] or (str,)
        items = [s.strip() for s in raw.split(",") if s.strip()]
        return origin(_convert(s, item, var) for s in items)
    if kind is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{var}={raw!r}: expected true or false")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            raise ConfigError(f"{var}={raw!r}: expected {kind.__name__}") from None
    if kind is str:
        return raw
    raise ConfigError(f"{var}: unsupported config type {kind!r}")


def from_env(cls: type[T], prefix: str, environ: Mapping[str, str] | None = None, **overrides: Any) -> T:
    """Build `cls` from `PREFIX_<FIELD>` variables; fields without a variable keep defaults."""
    env = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in overrides:
            values[field.name] = overrides[field.name]
            continue
        var = f"{prefix}_{field.name.upper()}"
        if var in env:
            values[field.name] = _convert(env[var], hints[field.name], var)
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from None


def describe(cls: type, prefix: str) -> list[tuple[str, str]]:
    """(variable, default) pairs, for `--help` output and docs."""
    rows = []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        default = field.default if field.default is not dataclasses.MISSING else ""
        if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = field.default_factory()  # type: ignore[misc]
        rows.append((f"{prefix}_{field.name.upper()}", str(default)))
    return rows
