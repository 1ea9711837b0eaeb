"""Routes in memory: validated targets and limits, and the order a request tries them in (one
target drawn by weight, the canary split; then the others in the order listed, the fallbacks)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from urllib.parse import urlparse

from google.protobuf import json_format

from llmops.core import names
from llmops.core.errors import InvalidArgument
from llmops.generation.v1 import generation_pb2 as pb
from services.generation.accounting import LimitSpec
from services.generation.credentials import check_ref


@dataclass(frozen=True)
class Target:
    kind: str  # registry | provider
    ref: str  # `name@alias` for registry; model name for provider
    weight: int
    base_url: str = ""
    credential_ref: str = ""

    @property
    def model_id(self) -> str:
        return self.ref.partition("@")[0]

    @property
    def label(self) -> str:
        return f"registry:{self.ref}" if self.kind == "registry" else f"provider:{self.ref}"


@dataclass(frozen=True)
class RouteSpec:
    name: str
    targets: tuple[Target, ...]
    limits: LimitSpec
    max_output_tokens: int

    def plan(self, rng: random.Random) -> list[Target]:
        """The targets to try, in order."""
        weighted = [t for t in self.targets if t.weight > 0]
        first = rng.choices(weighted, weights=[t.weight for t in weighted])[0]
        return [first, *(t for t in self.targets if t is not first)]


def check_targets(targets) -> None:
    if not targets:
        raise InvalidArgument("a route needs at least one target")
    if len(targets) > 16:
        raise InvalidArgument("a route may have at most 16 targets")
    for i, t in enumerate(targets):
        kind = t.WhichOneof("kind")
        if kind is None:
            raise InvalidArgument(f"targets[{i}] names neither registry_model nor provider")
        if t.weight < 0:
            raise InvalidArgument(f"targets[{i}].weight must be >= 0")
        if kind == "registry_model":
            ref = names.parse_version_ref("model", "models", t.registry_model)
            if t.registry_model.startswith("models/"):
                raise InvalidArgument(f"targets[{i}].registry_model: use the short form `{ref}`")
        else:
            p = t.provider
            url = urlparse(p.base_url)
            if url.scheme not in ("http", "https") or not url.netloc or url.username or url.password:
                raise InvalidArgument(f"targets[{i}].provider.base_url must be an http(s) URL without credentials")
            if not p.model:
                raise InvalidArgument(f"targets[{i}].provider.model is empty")
            check_ref(p.credential_ref)
    if not any(t.weight > 0 for t in targets):
        raise InvalidArgument("at least one target needs a weight above 0 (weight 0 means fallback only)")


def check_limits(limits: pb.Limits) -> None:
    for field in ("requests_per_minute", "tokens_per_minute", "token_budget", "max_output_tokens"):
        if getattr(limits, field) < 0:
            raise InvalidArgument(f"limits.{field} must be >= 0 (0: no limit)")


def spec_from_body(name: str, body: dict) -> RouteSpec:
    route = pb.Route()
    json_format.ParseDict(body, route, ignore_unknown_fields=True)
    targets = []
    for t in route.targets:
        if t.WhichOneof("kind") == "registry_model":
            targets.append(Target("registry", t.registry_model, t.weight))
        else:
            targets.append(Target("provider", t.provider.model, t.weight, t.provider.base_url, t.provider.credential_ref))
    lim = route.limits
    return RouteSpec(name, tuple(targets), LimitSpec(lim.requests_per_minute, lim.tokens_per_minute, lim.token_budget),
                     lim.max_output_tokens)
