"""GenerationService: routes, Generate / StreamGenerate through a route's targets (canary split,
fallback on UNAVAILABLE), CountTokens and GetUsage, with limits and usage per caller."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from google.protobuf import json_format
from opentelemetry import trace
from prometheus_client import Counter

from llmops.api.generation.v1 import generation_pb2 as pb
from llmops.api.generation.v1 import generation_pb2_grpc
from llmops.core import auth, channels, names, pagination
from llmops.core.auth import Role
from llmops.core.errors import InvalidArgument, NotFound, PermissionDenied, ResourceExhausted, Unavailable
from llmops.core.model_files import ModelFiles, estimate_tokens
from llmops.core.openai_format import finish_code
from llmops.core.timeutil import duration, timestamp
from llmops.modeling.folder import context_window
from services.generation import requests, routing
from services.generation.accounting import Accounting, Reservation
from services.generation.backends import GenRequest, ModelServerTarget, Outcome, ProviderTarget, preload
from services.generation.config import GenerationConfig
from services.generation.credentials import Credentials
from services.generation.routing import RouteSpec, Target
from services.generation.store import GenerationStore, RouteRecord
from services.generation.upstream import Upstream

log = logging.getLogger(__name__)
SERVICE = pb.DESCRIPTOR.services_by_name["GenerationService"].full_name
POLICY = auth.Policy.for_service(SERVICE, {
    "CreateRoute": Role.ADMIN, "GetRoute": Role.READER, "ListRoutes": Role.READER, "Generate": Role.READER,
    "StreamGenerate": Role.READER, "CountTokens": Role.READER, "GetUsage": Role.READER,
})


TOKENS = Counter("llmops_generation_tokens_total", "Tokens generated and read, by route", ["route", "kind"])


def route_id(name: str) -> str:
    return names.resource_id("route", "routes", name)


def route_to_pb(r: RouteRecord) -> pb.Route:
    out = pb.Route(name=f"routes/{r.name}", create_time=timestamp(r.create_time_us))
    json_format.ParseDict(r.body, out, ignore_unknown_fields=True)
    return out


@dataclass
class Prepared:
    """A request bound to its first target: token counts and the admitted reservation."""

    route: RouteSpec
    plan: list[Target]
    request: GenRequest
    input_tokens: int
    count: object  # text -> tokens
    reservation: Reservation


class GenerationServicer(generation_pb2_grpc.GenerationServiceServicer):
    def __init__(self, store: GenerationStore, accounting: Accounting, models: ModelFiles, credentials: Credentials,
                 http: Upstream, config: GenerationConfig, rng: random.Random | None = None):
        self._store = store
        self._db = store.db
        self._accounting = accounting
        self._models = models
        self._credentials = credentials
        self._http = http
        self._config = config
        self._rng = rng or random.Random()
        self._provider_policy = routing.ProviderPolicy(config.credential_env_prefixes, config.provider_allowed_hosts)
        self._routes: dict[str, RouteSpec] = {}
        self.follower = None  # set when the service follows registry aliases
        self._background: set[asyncio.Task] = set()

    # -- routes --------------------------------------------------------------------------------

    async def CreateRoute(self, request, context) -> pb.Route:
        name = names.check_id("route", request.route_id)
        # resolves provider host names: off the event loop (a slow resolver must not stall it)
        route = request.route
        await asyncio.to_thread(routing.check_targets, route.targets, self._provider_policy)
        routing.check_limits(route.limits)
        body = json_format.MessageToDict(pb.Route(targets=route.targets, limits=route.limits))
        record = await self._db.run(self._store.create_route, name, body, auth.caller().name)
        spec = self._routes[name] = routing.spec_from_body(name, record.body)
        task = asyncio.get_running_loop().create_task(self._preload(spec))  # first requests find it loaded
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return route_to_pb(record)

    async def _preload(self, spec: RouteSpec) -> None:
        for target in spec.targets:
            if target.kind != "registry":
                continue
            try:
                version, _, _, _ = await self._model(target)
            except (NotFound, Unavailable) as exc:  # best effort: the first request reports it
                log.info("could not preload %s for route %s: %s", target.ref, spec.name, exc.message)
                continue
            if not await preload(self._http, self._config.model_server_for(target.model_id), version.name,
                                 self._config.model_server_token):
                log.info("model server did not preload %s for route %s", version.name, spec.name)

    async def GetRoute(self, request, context) -> pb.Route:
        return route_to_pb(await self._db.run_read(self._store.get_route, route_id(request.name)))

    async def ListRoutes(self, request, context) -> pb.ListRoutesResponse:
        page = pagination.start(request, {"list": "routes"}, str)
        rows, token = page.finish(await self._db.run_read(self._store.list_routes, page.position, page.limit),
                                  lambda r: r.name)
        return pb.ListRoutesResponse(routes=[route_to_pb(r) for r in rows], next_page_token=token)

    async def route(self, name: str) -> RouteSpec:
        """Routes are immutable, so each is read from SQL once."""
        rid = route_id(name)
        spec = self._routes.get(rid)
        if spec is None:
            record = await self._db.run_read(self._store.get_route, rid)
            spec = self._routes[rid] = routing.spec_from_body(rid, record.body)
        return spec

    def followed_models(self) -> set[str]:
        """Registry references (`name@alias`) that some known route sends traffic to."""
        return {t.ref for spec in self._routes.values() for t in spec.targets if t.kind == "registry"}

    # -- targets -------------------------------------------------------------------------------

    async def _model(self, target: Target):
        """(version, context window, token counter, request counter) of a registry target."""
        try:
            version = await self._models.resolve(target.ref)
            count = await self._models.count_function(version)
            window = context_window(await self._models.config(version))
            request_count = await self._models.prompt_counter(version)
        except grpc.aio.AioRpcError as exc:
            raise channels.downstream_error(exc, "registry") from None
        return version, window, count, request_count

    async def _backend(self, target: Target):
        if target.kind == "registry":
            version, _, _, _ = await self._model(target)
            return ModelServerTarget(self._http, self._config.model_server_for(target.model_id), version.name,
                                     self._config.model_server_token)
        key = self._credentials.resolve(target.credential_ref)
        return ProviderTarget(self._http, target.base_url, target.ref, key, self._credentials.redact)

    # -- requests ------------------------------------------------------------------------------

    def _request(self, request: pb.GenerateRequest | pb.StreamGenerateRequest) -> GenRequest:
        """The request checked field by field (INVALID_ARGUMENT names the field)."""
        return requests.check(request, self._config.capture_content)

    async def _prepare(self, request: pb.GenerateRequest | pb.StreamGenerateRequest) -> Prepared:
        spec = await self.route(request.route)
        req = self._request(request)
        plan = spec.plan(self._rng)
        needs = req.provider_only()
        if needs:  # a registry model cannot honour it: only providers are tried
            plan = [t for t in plan if t.kind == "provider"]
            if not plan:
                raise InvalidArgument(f"{needs} needs a provider target, and route {spec.name!r} sends requests to "
                                      "registry models only; use a route with a provider or leave it out", field=needs)
        first = plan[0]
        text = req.prompt or "\n".join(m.get("content") or "" for m in req.messages)
        if first.kind == "registry":
            _, window, count, request_count = await self._model(first)
            try:
                input_tokens = await asyncio.to_thread(request_count, req.messages, req.prompt)
            except Exception:  # noqa: BLE001 - a template we cannot render: the model server decides
                input_tokens = count(text) + 8 * len(req.messages)
        else:
            window, count = 0, estimate_tokens
            input_tokens = count(text)
        limit = spec.max_output_tokens or (window - input_tokens if window else 0)
        if req.max_tokens and spec.max_output_tokens and req.max_tokens > spec.max_output_tokens:
            raise InvalidArgument(f"max_tokens {req.max_tokens} is above route {spec.name!r}'s limit of "
                                  f"{spec.max_output_tokens}", field="max_tokens")
        if window and input_tokens >= window:
            raise InvalidArgument(f"the prompt has about {input_tokens} tokens; the context window of "
                                  f"{first.ref} is {window}", field="messages")
        if window and req.max_tokens and input_tokens + req.max_tokens > window:
            raise InvalidArgument(f"the prompt has about {input_tokens} tokens and max_tokens is {req.max_tokens}: "
                                  f"{input_tokens + req.max_tokens} exceeds the context window of {window} "
                                  f"({first.ref}); lower max_tokens to {window - input_tokens} or shorten the prompt",
                                  field="max_tokens")
        # A caller that leaves max_tokens unset leaves it to a provider (and to the route's limit,
        # which is always sent); accounting reserves the default meanwhile.
        send = bool(req.max_tokens or spec.max_output_tokens or first.kind == "registry")
        max_tokens = req.max_tokens or min(self._config.default_max_tokens, limit or self._config.default_max_tokens)
        reservation = await self._accounting.admit(auth.caller().name, spec.name, spec.limits, input_tokens,
                                                   max_tokens * req.n)
        req = dataclasses.replace(req, max_tokens=max(1, reservation.max_tokens // req.n), send_max_tokens=send)
        span = trace.get_current_span()
        span.set_attribute("llmops.route", spec.name)
        span.set_attribute("gen_ai.request.max_tokens", req.max_tokens)
        for name, value in req.sampling.items():
            span.set_attribute(f"gen_ai.request.{name}" if name != "stop" else "gen_ai.request.stop_sequences", value)
        if req.n > 1:
            span.set_attribute("gen_ai.request.choice.count", req.n)
        if req.user:
            span.set_attribute("enduser.pseudo.id", req.user[:256])
        if self._config.capture_content:
            span.set_attribute("gen_ai.prompt", text)
        return Prepared(spec, plan, req, input_tokens, count, reservation)

    def _settle(self, p: Prepared, outcome: Outcome | None, delivered: str = "") -> None:
        if outcome is None:  # failed or cancelled: what was delivered is what was used
            inp = p.input_tokens if delivered else 0
            out = p.count(delivered) if delivered else 0
        else:
            inp = outcome.input_tokens or p.input_tokens
            out = outcome.output_tokens or p.count(outcome.text or delivered)
            span = trace.get_current_span()
            span.set_attribute("gen_ai.usage.input_tokens", inp)
            span.set_attribute("gen_ai.usage.output_tokens", out)
            span.set_attribute("gen_ai.response.finish_reasons", [outcome.finish_reason])
            span.set_attribute("llmops.time_to_first_token_ms", outcome.ttft_s * 1e3)
            if self._config.capture_content:
                span.set_attribute("gen_ai.completion", outcome.text or delivered)
            outcome.input_tokens, outcome.output_tokens = inp, out
        self._accounting.settle(p.reservation, inp, out)
        TOKENS.labels(p.route.name, "input").inc(inp)
        TOKENS.labels(p.route.name, "output").inc(out)

    @staticmethod
    def _on_target(target: Target) -> None:
        span = trace.get_current_span()
        span.set_attribute("gen_ai.request.model", target.ref)
        span.set_attribute("gen_ai.system", "llmops" if target.kind == "registry" else "openai")

    @staticmethod
    def _passed_over(p, target: Target, exc: Unavailable | ResourceExhausted) -> Unavailable | ResourceExhausted:
        """A target that is down or full: noted, and the next one is tried."""
        busy = isinstance(exc, ResourceExhausted)
        trace.get_current_span().add_event("target busy" if busy else "target unavailable",
                                           {"llmops.target": target.label})
        log.warning("route %s: %s %s, trying the next target", p.route.name, target.label,
                    "at capacity" if busy else "unavailable")
        return exc

    @staticmethod
    def _no_answer(p, last: Unavailable | ResourceExhausted | None) -> Exception:
        """What the caller gets when no target answered: the last target's capacity refusal (with
        its retry delay) when it was full, else UNAVAILABLE."""
        if isinstance(last, ResourceExhausted):
            return ResourceExhausted(f"no target of route {p.route.name!r} has room: {last.message}",
                                     retry_after_s=last.retry_after_s, reason=last.reason)
        return Unavailable(f"no target of route {p.route.name!r} answered: {last.message if last else ''}",
                           service=last.service if last else "")

    def _usage(self, o: Outcome) -> pb.Usage:
        return pb.Usage(input_tokens=o.input_tokens, output_tokens=o.output_tokens, queue_time=duration(o.queue_s),
                        time_to_first_token=duration(o.ttft_s), total_time=duration(o.total_s))

    async def Generate(self, request, context) -> pb.GenerateResponse:
        p = await self._prepare(request)
        outcome = None
        try:
            last: Unavailable | ResourceExhausted | None = None
            for target in p.plan:
                try:
                    self._on_target(target)
                    outcome = await (await self._backend(target)).generate(p.request)
                    break
                except (Unavailable, ResourceExhausted) as exc:
                    last = self._passed_over(p, target, exc)
            if outcome is None:
                raise self._no_answer(p, last)
        finally:
            self._settle(p, outcome)
        trace.get_current_span().set_attribute("llmops.served_by", outcome.served_by)
        choices = outcome.choices or [pb.Choice(text=outcome.text, finish_reason=finish_code(outcome.finish_reason))]
        return pb.GenerateResponse(text=choices[0].text, finish_reason=choices[0].finish_reason,
                                   usage=self._usage(outcome), served_by=outcome.served_by, choices=choices)

    async def StreamGenerate(self, request, context) -> AsyncIterator[pb.StreamGenerateResponse]:
        p = await self._prepare(request)
        started = time.monotonic()
        delivered: list[str] = []
        outcome = None
        try:
            last: Unavailable | ResourceExhausted | None = None
            for target in p.plan:
                try:
                    self._on_target(target)
                    backend = await self._backend(target)
                    events = backend.stream(p.request)
                    try:  # closing the stream (also when our caller cancels) stops the target
                        async for event in events:
                            if event.outcome is not None:
                                outcome = event.outcome
                                break
                            if not delivered:
                                trace.get_current_span().set_attribute("llmops.served_by", backend.served_by)
                            yield pb.StreamGenerateResponse(
                                delta=event.delta, served_by="" if delivered else backend.served_by,
                                index=event.index, tool_calls=event.tool_calls, logprobs=event.logprobs,
                                finish_reason=finish_code(event.finish) if event.finish else 0)
                            delivered.append(event.delta or "".join(c.arguments for c in event.tool_calls))
                    finally:
                        await events.aclose()
                    break
                except (Unavailable, ResourceExhausted) as exc:
                    if delivered:  # text already reached the caller: no silent switch mid-answer
                        raise
                    last = self._passed_over(p, target, exc)
            if outcome is None:
                raise self._no_answer(p, last)
            outcome.ttft_s = outcome.ttft_s or (time.monotonic() - started)
        finally:
            self._settle(p, outcome, "".join(delivered))
        yield pb.StreamGenerateResponse(finish_reason=finish_code(outcome.finish_reason), usage=self._usage(outcome),
                                        served_by="" if delivered else outcome.served_by)

    async def CountTokens(self, request, context) -> pb.CountTokensResponse:
        spec = await self.route(request.route)
        if len(request.texts) > 1000:
            raise InvalidArgument("count at most 1000 texts per call")
        target = spec.targets[0]
        if target.kind == "registry":
            version, window, count, _ = await self._model(target)
            counts = await asyncio.to_thread(lambda: [count(t) for t in request.texts])
            return pb.CountTokensResponse(counts=counts, context_window=window, tokenizer_model=version.name)
        return pb.CountTokensResponse(counts=[estimate_tokens(t) for t in request.texts], context_window=0)

    async def GetUsage(self, request, context) -> pb.GetUsageResponse:
        me = auth.caller()
        caller = request.caller or me.name
        if caller != me.name and not me.has(Role.ADMIN):
            raise PermissionDenied("reading another caller's usage needs the admin role")
        end = request.end_time.seconds if request.HasField("end_time") else int(time.time())
        start = request.start_time.seconds if request.HasField("start_time") else 0
        if start > end:
            raise InvalidArgument("start_time is after end_time")
        route = route_id(request.route) if request.route else None
        rows = await self._accounting.usage(caller, route, start // 60, end // 60)
        return pb.GetUsageResponse(records=[pb.UsageRecord(caller=u.caller, route=u.route, requests=u.requests,
                                                           input_tokens=u.input_tokens, output_tokens=u.output_tokens)
                                            for u in rows])
