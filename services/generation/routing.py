"""Routes in memory: validated targets and limits, and the order a request tries them in (one
target drawn by weight, the canary split; then the others in the order listed, the fallbacks)."""

from __future__ import annotations

import ipaddress
import random
import socket
from dataclasses import dataclass
from urllib.parse import urlparse

from google.protobuf import json_format

from llmops.api.generation.v1 import generation_pb2 as pb
from llmops.core import names
from llmops.core.errors import InvalidArgument
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


@dataclass(frozen=True)
class ProviderPolicy:
    """What a route may point at: credential variables with these prefixes (or secret files), and
    provider hosts that are not loopback, link-local or cloud metadata endpoints unless allow-listed
    (an operator's setting, LLMOPS_GENERATION_PROVIDER_ALLOWED_HOSTS)."""

    env_prefixes: tuple[str, ...] = ("LLMOPS_PROVIDER_",)
    allowed_hosts: tuple[str, ...] = ()


METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                            "instance-data.ec2.internal", "100.100.100.200"})


def _internal_address(host: str) -> str:
    """Why `host` is one a gateway must not call for a caller ('' when it is fine): loopback,
    link-local (cloud metadata lives there), unspecified or a known metadata name; a name is
    judged by every address it resolves to here."""
    host = host.strip("[]").lower().rstrip(".")
    if host in METADATA_HOSTS:
        return "a cloud metadata endpoint"
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(info[4][0].split("%")[0])
                         for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)]
        except (OSError, UnicodeError):
            return ""  # not resolvable here: nothing to judge (calls to it fail alike)
    for a in addresses:
        if a.is_loopback:
            return "loopback"
        if a.is_link_local or (a.version == 6 and a in ipaddress.ip_network("fd00:ec2::/32")):
            return "link-local (where cloud metadata endpoints live)"
        if a.is_unspecified or a.is_multicast or a.is_reserved:
            return "not a routable address"
    return ""


def check_targets(targets, policy: ProviderPolicy = ProviderPolicy()) -> None:
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
            host = (url.hostname or "").lower()
            if host not in policy.allowed_hosts and f"{host}:{url.port}" not in policy.allowed_hosts:
                why = _internal_address(host)
                if why:
                    raise InvalidArgument(f"targets[{i}].provider.base_url points at {why}; an operator may allow "
                                          "the host with LLMOPS_GENERATION_PROVIDER_ALLOWED_HOSTS")
            if not p.model:
                raise InvalidArgument(f"targets[{i}].provider.model is empty")
            check_ref(p.credential_ref)
            name = p.credential_ref.removeprefix("env:")
            if p.credential_ref.startswith("env:") and not name.startswith(policy.env_prefixes):
                raise InvalidArgument(f"targets[{i}].provider.credential_ref may name environment variables starting "
                                      f"with {' or '.join(policy.env_prefixes)} only (or use `secret:name`)")
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
