"""ReleaseService: a release is checked when created (a pipeline bundle, an approved candidate
that is not the stable version, no other release of the bundle running), then queued; the
ReleaseRunner moves its traffic step by step."""

from __future__ import annotations

import asyncio
import functools
import math
import secrets

from llmops.api.finetuning.v1 import evaluation_pb2 as epb
from llmops.api.finetuning.v1 import release_pb2 as pb
from llmops.api.finetuning.v1 import release_pb2_grpc
from llmops.api.registry.v1 import registry_pb2 as rpb
from llmops.client.base import CallError
from llmops.core import auth, names, pagination, telemetry
from llmops.core.auth import Role
from llmops.core.errors import FailedPrecondition, InvalidArgument
from llmops.core.timeutil import timestamp
from services.finetuning.evaluation.servicer import judge_spec
from services.finetuning.queue import follow_events
from services.finetuning.release.runner import ReleaseRunner
from services.finetuning.release.signals import Margins
from services.finetuning.servicer import call_error, event_to_pb
from services.finetuning.store import QUEUED, ReleaseRecord, ReleaseStore

SERVICE = pb.DESCRIPTOR.services_by_name["ReleaseService"].full_name
POLICY = auth.Policy.for_service(SERVICE, {
    "CreateRelease": Role.APPROVER, "GetRelease": Role.READER, "ListReleases": Role.READER,
    "AbortRelease": Role.APPROVER, "WatchRelease": Role.READER,
})
DEFAULT_STEPS = (10, 50, 100)
MAX_STEPS = 20
INTERVAL_S = (0.1, 7 * 86400.0, 300.0)


def release_to_pb(r: ReleaseRecord) -> pb.Release:
    s, result = r.spec, r.result
    out = pb.Release(
        name=f"releases/{r.id}", candidate=s["candidate"], alias=s["alias"], steps=s["steps"],
        interval_s=s["interval_s"], margins=pb.ReleaseMargins(**s["margins"]), stable_version=s["stable_version"],
        candidate_version=s["candidate_version"], state=r.state, steps_passed=r.steps_done,
        percent=result.get("percent", 0), outcome=result.get("outcome", ""),
        candidate_signals=result.get("candidate_signals", {}), stable_signals=result.get("stable_signals", {}),
        created_by=r.created_by, create_time=timestamp(r.create_time_us),
        judge_sample_percent=s.get("judge_sample_percent", 0))
    if s.get("judge"):
        out.judge.CopyFrom(epb.JudgeSpec(**s["judge"]))
    if r.end_time_us:
        out.end_time.CopyFrom(timestamp(r.end_time_us))
    return out


def check_steps(steps) -> list[int]:
    steps = list(steps) or list(DEFAULT_STEPS)
    if len(steps) > MAX_STEPS or steps[-1] != 100 or any(not 1 <= x <= 100 for x in steps) or \
            any(a >= b for a, b in zip(steps, steps[1:], strict=False)):
        raise InvalidArgument(f"steps {steps[:30]} must be increasing percentages of 1-100 ending at 100 (at most "
                              f"{MAX_STEPS}), e.g. 10,50,100", field="release.steps")
    return steps


def check_margins(r: pb.Release) -> dict:
    if not r.HasField("margins"):
        return Margins().to_dict()
    m = r.margins
    drop = m.max_judge_score_drop if m.HasField("max_judge_score_drop") else Margins.max_judge_score_drop
    values = [m.max_error_rate_increase, m.max_thumbs_down_rate_increase, m.max_latency_p95_ratio, drop]
    if not all(math.isfinite(v) for v in values) or not 0 <= m.min_requests <= 1_000_000 or \
            not 0 <= m.min_judged <= 10_000:
        raise InvalidArgument("release.margins must be finite numbers (negative: not checked), min_requests "
                              "0-1000000 and min_judged 0-10000", field="release.margins")
    return Margins(*values[:3], m.min_requests or Margins.min_requests, drop,
                   m.min_judged or Margins.min_judged).to_dict()


class ReleaseServicer(release_pb2_grpc.ReleaseServiceServicer):
    def __init__(self, store: ReleaseStore, runner: ReleaseRunner, client, config):
        self._store = store
        self._db = store.db
        self._runner = runner
        self._client = client
        self._config = config

    def _resolve(self, candidate: str, alias: str) -> tuple[str, str, str]:
        """(model, candidate version, stable version) from the registry, checked."""
        ref = names.parse_version_ref("candidate", "models", candidate)
        try:
            version = self._client.registry.get_version(candidate)
            model = self._client.registry.get_model(ref.id)
        except CallError as exc:
            raise call_error(exc, f"candidate {candidate[:100]!r}", "registry") from None
        if not version.HasField("pipeline_spec"):
            raise FailedPrecondition(f"{version.name} is a model; a release moves a pipeline bundle's traffic "
                                     "(release a bundle version that routes to it)")
        if version.status != rpb.VERSION_STATUS_APPROVED:
            raise FailedPrecondition(f"{version.name} is not approved; approve it first (it must pass the bundle's "
                                     f"gate): `llmops models approve {ref.id}@{version.version}`")
        stable = model.aliases.get(alias)
        if not stable:
            raise FailedPrecondition(f"{ref.id} has no alias {alias!r} to release into; point it at the stable "
                                     "version first")
        if stable == version.version:
            raise FailedPrecondition(f"{alias!r} already points to {version.name}; nothing to release")
        return ref.id, version.name, f"models/{ref.id}/versions/{stable}"

    async def CreateRelease(self, request: pb.CreateReleaseRequest, context) -> pb.Release:
        r, key = request.release, request.idempotency_key
        if len(key) > 128:
            raise InvalidArgument("idempotency_key is limited to 128 characters", field="idempotency_key")
        if not r.candidate:
            raise InvalidArgument("release.candidate is required: the bundle version, `name@version`",
                                  field="release.candidate")
        alias = names.check_alias(r.alias or "production")
        steps = check_steps(r.steps)
        low, high, default = INTERVAL_S
        interval = r.interval_s or default
        if not low <= interval <= high:
            raise InvalidArgument(f"release.interval_s {interval:g} is out of range [{low:g}, {high:g}]",
                                  field="release.interval_s")
        margins = check_margins(r)
        judge = await asyncio.to_thread(judge_spec, self._client, r.judge, "release.judge")
        sample = r.judge_sample_percent or 10
        if not 1 <= sample <= 100:
            raise InvalidArgument(f"release.judge_sample_percent {sample} must be 1-100",
                                  field="release.judge_sample_percent")
        model, candidate, stable = await asyncio.to_thread(self._resolve, r.candidate, alias)
        running = await self._db.run_read(self._store.active, model)
        if running:
            raise FailedPrecondition(f"releases/{running[0].id} of {model} is still running; abort it first "
                                     f"(`llmops release abort releases/{running[0].id}`)")
        spec = {"candidate": r.candidate, "model": model, "alias": alias, "steps": steps, "interval_s": interval,
                "margins": margins, "candidate_version": candidate, "stable_version": stable, "judge": judge,
                "judge_sample_percent": sample}
        record, replayed = await self._db.run(self._store.create, ReleaseRecord(
            secrets.token_hex(8), spec, QUEUED, model=model, total_steps=len(steps), created_by=auth.caller().name,
            idempotency_key=key or None), f"{candidate} replaces {stable} on {alias}, steps {steps}")
        if not replayed:
            self._runner.wake()
        telemetry.annotate(release=f"releases/{record.id}", replayed=replayed, candidate=candidate)
        return release_to_pb(record)

    async def GetRelease(self, request, context) -> pb.Release:
        return release_to_pb(await self._db.run_read(self._store.get, self._store.ident(request.name)))

    async def ListReleases(self, request, context) -> pb.ListReleasesResponse:
        page = pagination.start(request, {"list": "releases"}, int)
        rows, token = page.finish(await self._db.run_read(functools.partial(self._store.list, page.position,
                                                                            page.limit)),
                                  lambda r: r.create_time_us)
        return pb.ListReleasesResponse(releases=[release_to_pb(r) for r in rows], next_page_token=token)

    async def AbortRelease(self, request, context) -> pb.Release:
        rel = await self._db.run_read(self._store.get, self._store.ident(request.name))
        return release_to_pb(await self._runner.cancel(rel))

    async def WatchRelease(self, request, context):
        ident = self._store.ident(request.name)
        await self._db.run_read(self._store.get, ident)
        async for event in follow_events(self._store, self._runner.signal, ident, self._config.watch_poll_s):
            yield pb.WatchReleaseResponse(event=event_to_pb(event))
