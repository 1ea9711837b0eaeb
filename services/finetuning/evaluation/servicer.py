"""EvaluationService: an evaluation is checked when created (target, baseline, dataset, judge),
its rows written to its folder, then queued; the EvaluationRunner answers and scores them."""

from __future__ import annotations

import asyncio
import functools
import secrets
import shutil
from collections.abc import AsyncIterator

from llmops.api.finetuning.v1 import evaluation_pb2 as pb
from llmops.api.finetuning.v1 import evaluation_pb2_grpc
from llmops.client.base import CallError
from llmops.core import auth, pagination, telemetry
from llmops.core.auth import Role
from llmops.core.errors import FailedPrecondition, InvalidArgument
from llmops.core.timeutil import timestamp
from services.finetuning.evaluation import targets
from services.finetuning.evaluation.runner import EvaluationRunner
from services.finetuning.evaluation.targets import Target
from services.finetuning.queue import follow_events
from services.finetuning.servicer import call_error, event_to_pb, read_dataset
from services.finetuning.store import QUEUED, EvaluationRecord, EvaluationStore, row_position

SERVICE = pb.DESCRIPTOR.services_by_name["EvaluationService"].full_name
POLICY = auth.Policy.for_service(SERVICE, {
    "CreateEvaluation": Role.EDITOR, "GetEvaluation": Role.READER, "ListEvaluations": Role.READER,
    "CancelEvaluation": Role.EDITOR, "WatchEvaluation": Role.READER, "ListEvaluationRows": Role.READER,
})
RANGES = {"concurrency": (1, 16, 4), "max_tokens": (1, 4096, 64), "limit": (0, 10_000, 0)}
PAYLOAD_FIELDS = ("question", "reference", "answer", "judge_reason", "error")


def judge_spec(client, judge: pb.JudgeSpec, field: str) -> dict | None:
    """A judge (route and rubric) as a run stores it, both checked to exist; None for no judge."""
    if not judge.route and not judge.rubric:
        return None
    if not judge.route or not judge.rubric:
        raise InvalidArgument("a judge needs both a route and a rubric (a prompt template `name@version` or "
                              "`name@alias`)", field=field)
    try:
        client.generation.get_route(judge.route)
    except CallError as exc:
        raise call_error(exc, f"judge route {judge.route[:100]!r}", "generation") from None
    try:
        client.prompt.get_version(judge.rubric)
    except CallError as exc:
        raise call_error(exc, f"judge rubric {judge.rubric[:100]!r}", "prompt") from None
    return {"route": judge.route, "rubric": judge.rubric}


def evaluation_to_pb(e: EvaluationRecord, payload: bool = True) -> pb.Evaluation:
    s = e.spec
    target, baseline = Target.from_dict(s["target"]), Target.from_dict(s.get("baseline"))
    result = e.result
    out = pb.Evaluation(
        name=f"evaluations/{e.id}", target=s["target_ref"], baseline=s.get("baseline_ref", ""),
        dataset_uri=s["dataset_uri"], dataset_version=str(s["dataset_version"]), concurrency=s["concurrency"],
        limit=s["limit"], max_tokens=s["max_tokens"], state=e.state, target_kind=target.kind,
        target_version=target.version, baseline_version=baseline.version if baseline else "",
        rows_done=e.steps_done, total_rows=e.total_steps, metrics=result.get("metrics", {}),
        baseline_metrics=result.get("baseline_metrics", {}), recorded=e.recorded,
        error=e.error if payload or not e.error else auth.REDACTED, created_by=e.created_by,
        create_time=timestamp(e.create_time_us))
    if s.get("judge"):
        out.judge.CopyFrom(pb.JudgeSpec(**s["judge"]))
    for c in result.get("comparisons", []):
        out.comparisons.add(**c)
    if e.end_time_us:
        out.end_time.CopyFrom(timestamp(e.end_time_us))
    return out


def row_to_pb(side: str, index: int, body: dict, payload: bool) -> pb.EvaluationRow:
    out = pb.EvaluationRow(index=index, side=side, scores=body["scores"], latency_ms=body["latency_ms"],
                           output_tokens=body["output_tokens"], cited=body.get("cited", ()),
                           **{f: body[f] if payload or not body[f] else auth.REDACTED for f in PAYLOAD_FIELDS})
    if body.get("judge_score") is not None:
        out.judge_score = body["judge_score"]
    return out


class EvaluationServicer(evaluation_pb2_grpc.EvaluationServiceServicer):
    def __init__(self, store: EvaluationStore, runner: EvaluationRunner, client, config):
        self._store = store
        self._db = store.db
        self._runner = runner
        self._client = client  # registry, generation, pipeline and prompt, with the service's key
        self._config = config
        self._datasets = config.dataset_locations()

    def _resolve(self, ref: str, what: str) -> Target:
        if len(ref) > 300:
            raise InvalidArgument(f"{what} is {len(ref)} characters; a reference is at most 300")
        try:
            return targets.resolve(self._client, ref)
        except CallError as exc:
            service = "generation" if ref.startswith(targets.ROUTE_PREFIX) else "registry"
            raise call_error(exc, f"{what} {ref[:100]!r}", service) from None

    def _champion(self, target: Target) -> tuple[str, Target | None]:
        """The version the target model's `production` alias points to, when it is another one."""
        model = target.version.split("/")[1]
        try:
            aliases = self._client.registry.get_model(model).aliases
        except CallError as exc:
            raise call_error(exc, f"model {model!r}", "registry") from None
        number = aliases.get("production")
        if not number or f"models/{model}/versions/{number}" == target.version:
            return "", None
        ref = f"{model}@{number}"
        return ref, self._resolve(ref, "baseline")

    def _check(self, e: pb.Evaluation) -> dict:
        """Everything about the request that needs no other service."""
        settings = {}
        for name, (low, high, default) in RANGES.items():
            value = getattr(e, name) or default
            if not low <= value <= high:
                raise InvalidArgument(f"evaluation.{name} = {value} is out of range [{low}, {high}]",
                                      field=f"evaluation.{name}")
            settings[name] = value
        if not e.target:
            raise InvalidArgument("evaluation.target is required: `name@version`, `name@alias` (a model or a "
                                  "pipeline bundle) or `route:NAME`", field="evaluation.target")
        if not e.dataset_uri:
            raise InvalidArgument("evaluation.dataset_uri is required: `registry:NAME` or a Delta table",
                                  field="evaluation.dataset_uri")
        return settings

    def _prepare(self, e: pb.Evaluation) -> tuple[dict, list[dict]]:
        """The run's spec and rows, resolved against the other services (in a thread)."""
        settings = self._check(e)
        target = self._resolve(e.target, "target")
        baseline_ref, baseline = e.baseline, None
        if e.baseline:
            baseline = self._resolve(e.baseline, "baseline")
        elif target.kind != targets.ROUTE:
            baseline_ref, baseline = self._champion(target)
        if baseline is not None and baseline.kind != target.kind:
            raise FailedPrecondition(f"the baseline {baseline_ref!r} is a {targets.KIND_NAMES[baseline.kind]} and the "
                                     f"target a {targets.KIND_NAMES[target.kind]}; compare like with like")
        judge = judge_spec(self._client, e.judge, "evaluation.judge")
        data = read_dataset(self._client.registry, self._datasets, e.dataset_uri, e.dataset_version,
                            "evaluation.dataset_uri")
        uri = data.uri
        rows = data.evaluation[:settings["limit"]] if settings["limit"] else data.evaluation
        if not rows:
            raise InvalidArgument(f"{uri}@{data.version} has no evaluation rows (chat rows, or question and "
                                  "reference_answer)", field="evaluation.dataset_uri")
        items = [{"messages": messages, "reference": reference,
                  "key_phrases": list(data.expectation(i).key_phrases), "sources": list(data.expectation(i).sources)}
                 for i, (messages, reference) in enumerate(rows)]
        spec = {"target_ref": e.target, "target": target.to_dict(), "baseline_ref": baseline_ref,
                "baseline": baseline.to_dict() if baseline else None, "dataset_uri": uri,
                "dataset_version": data.version, "judge": judge, **settings}
        return spec, items

    async def CreateEvaluation(self, request: pb.CreateEvaluationRequest, context) -> pb.Evaluation:
        key = request.idempotency_key
        if len(key) > 128:
            raise InvalidArgument("idempotency_key is limited to 128 characters", field="idempotency_key")
        spec, items = await asyncio.to_thread(self._prepare, request.evaluation)
        ident = secrets.token_hex(8)
        sides = 2 if spec["baseline"] else 1
        # The folder first, then the row: a committed evaluation always has its rows to answer.
        await asyncio.to_thread(self._runner.write_items, ident, items)
        validated = (f"target {spec['target']['version']}"
                     + (f", baseline {spec['baseline']['version']}" if spec["baseline"] else ", no baseline")
                     + f", dataset {spec['dataset_uri']}@{spec['dataset_version']} ({len(items)} rows)")
        try:
            record, replayed = await self._db.run(self._store.create, EvaluationRecord(
                ident, spec, QUEUED, total_steps=len(items) * sides, target_version=spec["target"]["version"],
                created_by=auth.caller().name, idempotency_key=key or None), validated)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, self._runner.run_dir(ident), True)
            raise
        if replayed:
            await asyncio.to_thread(shutil.rmtree, self._runner.run_dir(ident), True)
        else:
            self._runner.wake()
        telemetry.annotate(evaluation=f"evaluations/{record.id}", replayed=replayed, rows=len(items))
        return evaluation_to_pb(record)

    async def GetEvaluation(self, request, context) -> pb.Evaluation:
        return evaluation_to_pb(await self._db.run_read(self._store.get, self._store.ident(request.name)),
                                auth.sees_payload())

    async def ListEvaluations(self, request, context) -> pb.ListEvaluationsResponse:
        page = pagination.start(request, {"list": "evaluations", "target": request.target_version}, int)
        rows, token = page.finish(await self._db.run_read(functools.partial(
            self._store.list, page.position, page.limit, target_version=request.target_version)),
                                  lambda e: e.create_time_us)
        payload = auth.sees_payload()
        return pb.ListEvaluationsResponse(evaluations=[evaluation_to_pb(e, payload) for e in rows],
                                          next_page_token=token)

    async def CancelEvaluation(self, request, context) -> pb.Evaluation:
        ev = await self._db.run_read(self._store.get, self._store.ident(request.name))
        return evaluation_to_pb(await self._runner.cancel(ev))

    async def ListEvaluationRows(self, request, context) -> pb.ListEvaluationRowsResponse:
        ident = self._store.ident(request.name)
        await self._db.run_read(self._store.get, ident)  # NOT_FOUND first
        page = pagination.start(request, {"rows": ident}, int)
        rows, token = page.finish(await self._db.run_read(self._store.rows, ident, page.position, page.limit),
                                  lambda r: row_position(r[0], r[1]))
        payload = auth.sees_payload()
        return pb.ListEvaluationRowsResponse(rows=[row_to_pb(side, i, body, payload) for side, i, body in rows],
                                             next_page_token=token)

    async def WatchEvaluation(self, request, context) -> AsyncIterator[pb.WatchEvaluationResponse]:
        ident = self._store.ident(request.name)
        payload = auth.sees_payload()
        await self._db.run_read(self._store.get, ident)
        async for event in follow_events(self._store, self._runner.signal, ident, self._config.watch_poll_s):
            yield pb.WatchEvaluationResponse(event=event_to_pb(event, payload))
