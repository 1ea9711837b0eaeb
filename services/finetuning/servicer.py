"""FineTuningService: jobs are checked when created (base model, dataset, hyperparameters), then
queued; the JobRunner trains them in worker processes and registers the result."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from google.protobuf import json_format

from llmops.api.finetuning.v1 import finetuning_pb2 as pb
from llmops.api.finetuning.v1 import finetuning_pb2_grpc
from llmops.client.base import CallError
from llmops.core import auth, pagination, telemetry
from llmops.core.auth import Role
from llmops.core.errors import InvalidArgument, NotFound, Unavailable
from llmops.core.locations import Locations
from llmops.core.timeutil import timestamp
from llmops.evaluation import datasets
from services.finetuning.jobs import JobRunner
from services.finetuning.queue import follow_events
from services.finetuning.store import QUEUED, EventRecord, JobRecord, JobStore
from services.finetuning.training import RunSpec

SERVICE = pb.DESCRIPTOR.services_by_name["FineTuningService"].full_name
POLICY = auth.Policy.for_service(SERVICE, {
    "CreateTuningJob": Role.EDITOR, "GetTuningJob": Role.READER, "ListTuningJobs": Role.READER,
    "CancelTuningJob": Role.EDITOR, "WatchTuningJob": Role.READER,
})
DEFAULTS = {"epochs": 3, "learning_rate": 1e-3, "batch_size": 8, "max_seq_length": 512, "lora_rank": 8,
            "lora_alpha": 16, "checkpoint_interval_steps": 50}
# set from the job's fields; anything else in deepspeed.extra is merged into DeepSpeed's configuration
OWNED_DEEPSPEED_KEYS = {"train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
                        "zero_optimization", "optimizer"}
# What deepspeed.extra may set: numeric behaviour of training only. Everything else is refused,
# above all what writes files (flops_profiler, checkpoint, aio/nvme paths), opens connections
# (wandb, comet, tensorboard and csv monitors) or builds C++ ops on the service's machine.
ALLOWED_DEEPSPEED_KEYS = {"gradient_clipping", "steps_per_print", "wall_clock_breakdown", "memory_breakdown",
                          "prescale_gradients", "gradient_predivide_factor", "communication_data_type",
                          "activation_checkpointing", "bf16", "fp16", "scheduler", "sparse_gradients"}
RANGES = {"epochs": (1, 100), "learning_rate": (1e-7, 1.0), "batch_size": (1, 256), "max_seq_length": (16, 8192),
          "lora_rank": (1, 256), "lora_alpha": (1, 4096), "checkpoint_interval_steps": (1, 1_000_000)}


def call_error(exc: CallError, what: str, service: str) -> Exception:
    """Another service's answer about something the caller named, as this service's status."""
    if exc.code.name == "NOT_FOUND":
        return NotFound(f"{what}: {exc.message}")
    if exc.code.name in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"):
        return InvalidArgument(f"{what}: {exc.message}")
    return Unavailable(f"the {service} service is unavailable ({exc.code.name}); retry shortly", service=service)


def read_dataset(registry, locations: Locations, uri: str, version: str, field: str) -> datasets.Dataset:
    """A dataset a caller named: `registry:NAME` (fetched with the service's key) or a Delta table
    the service's locations allow (its `uri` is the location as resolved)."""
    if not datasets.is_registry(uri):
        uri = locations.resolve(uri, field)

    def fetch(name: str, number: str, dest: Path) -> str:
        try:
            return datasets.registry_fetch(registry)(name, number, dest)
        except CallError as exc:
            raise call_error(exc, f"dataset registry:{name}", "registry") from None

    with tempfile.TemporaryDirectory(prefix="dataset-") as scratch:
        return datasets.load(uri, version, fetch, Path(scratch) / "data")


def hyperparameters(h: pb.Hyperparameters, method: int) -> dict:
    out = {}
    for name, default in DEFAULTS.items():
        value = getattr(h, name) or default
        low, high = RANGES[name]
        if not low <= value <= high:
            raise InvalidArgument(f"hyperparameters.{name} = {value:g} is out of range [{low:g}, {high:g}]")
        out[name] = value
    out["merge_lora"] = bool(h.merge_lora) if method == pb.METHOD_LORA else False
    return out


def job_to_pb(j: JobRecord, payload: bool = True) -> pb.TuningJob:
    """The job; without `payload` (below reviewer) its error text, which may quote training rows, is
    replaced by a notice."""
    s = j.spec
    out = pb.TuningJob(
        name=f"tuningJobs/{j.id}", base_model=s["base_model"], dataset_uri=s["dataset_uri"],
        dataset_version=str(s["dataset_version"]), method=s["method_pb"], state=j.state, steps_done=j.steps_done,
        total_steps=j.total_steps, result_model_version=j.result_model_version, metrics=j.metrics,
        error=j.error if payload or not j.error else auth.REDACTED,
        create_time=timestamp(j.create_time_us), output_model=s["output_model"])
    json_format.ParseDict(s["hyperparameters"], out.hyperparameters)
    json_format.ParseDict(s["deepspeed"], out.deepspeed)
    if j.end_time_us:
        out.end_time.CopyFrom(timestamp(j.end_time_us))
    return out


def event_to_pb(e: EventRecord, payload: bool = True) -> pb.TuningJobEvent:
    """The event; without `payload` a failure's message (it may quote training rows) is a notice."""
    message = e.message if payload or e.state != pb.JOB_STATE_FAILED else auth.REDACTED
    return pb.TuningJobEvent(sequence=e.sequence, state=e.state, step=e.step, loss=e.loss, eval_loss=e.eval_loss,
                             checkpoint=e.checkpoint, message=message, event_time=timestamp(e.time_us))


class FineTuningServicer(finetuning_pb2_grpc.FineTuningServiceServicer):
    def __init__(self, store: JobStore, runner: JobRunner, registry, config):
        self._store = store
        self._db = store.db
        self._runner = runner
        self._registry = registry
        self._config = config
        self._datasets = config.dataset_locations()

    def _base_version(self, ref: str) -> str:
        try:
            v = self._registry.get_version(ref)
        except CallError as exc:
            raise call_error(exc, f"base model {ref!r}", "registry") from None
        if v.HasField("pipeline_spec"):
            raise InvalidArgument(f"{v.name} is a pipeline bundle; name a model version")
        return v.name

    async def CreateTuningJob(self, request, context) -> pb.TuningJob:
        j, key = request.job, request.idempotency_key
        if len(key) > 128:
            raise InvalidArgument("idempotency_key is limited to 128 characters")
        me = auth.caller().name
        if j.method not in (pb.METHOD_FULL, pb.METHOD_LORA):
            raise InvalidArgument("method must be METHOD_FULL or METHOD_LORA")
        hp = hyperparameters(j.hyperparameters, j.method)
        ds = j.deepspeed
        if not 0 <= ds.zero_stage <= 3:
            raise InvalidArgument(f"deepspeed.zero_stage {ds.zero_stage} must be 0-3")
        if ds.offload_optimizer and ds.zero_stage == 0:
            raise InvalidArgument("deepspeed.offload_optimizer needs zero_stage 1 or more")
        extra = json_format.MessageToDict(ds.extra)
        owned = sorted(OWNED_DEEPSPEED_KEYS & extra.keys())
        if owned:
            raise InvalidArgument(f"deepspeed.extra may not set {', '.join(owned)}: the job's hyperparameters and "
                                  "zero_stage decide them")
        refused = sorted(extra.keys() - ALLOWED_DEEPSPEED_KEYS)
        if refused:
            raise InvalidArgument(f"deepspeed.extra may not set {', '.join(refused)[:300]}; it takes "
                                  f"{', '.join(sorted(ALLOWED_DEEPSPEED_KEYS))}")
        if not j.base_model:
            raise InvalidArgument("base_model is required: `name@alias` or `name@version`")
        base_version = await asyncio.to_thread(self._base_version, j.base_model)
        data = await asyncio.to_thread(read_dataset, self._registry, self._datasets, j.dataset_uri, j.dataset_version,
                                       "dataset_uri")
        dataset_uri = data.uri
        rows, table_version = datasets.require_chat(data), data.version
        output_model = j.output_model or base_version.split("/")[1]
        spec = {"base_model": j.base_model, "base_version": base_version, "dataset_uri": dataset_uri,
                "dataset_version": table_version, "method": "lora" if j.method == pb.METHOD_LORA else "full",
                "method_pb": j.method, "hyperparameters": hp, "output_model": output_model,
                "deepspeed": {"zero_stage": ds.zero_stage, "offload_optimizer": ds.offload_optimizer, "extra": extra}}
        ident = secrets.token_hex(8)
        validated = (f"base {base_version}, dataset {dataset_uri}@{table_version} ({len(rows)} rows), "
                     f"{spec['method']}")
        # The folder first, then the row: a committed job always has what its worker needs.
        await asyncio.to_thread(self._prepare, ident, spec, rows)
        try:
            record, replayed = await self._db.run(self._store.create, JobRecord(
                ident, spec, QUEUED, created_by=me, idempotency_key=key or None), validated)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, self._runner.job_dir(ident), True)
            raise
        if replayed:  # the first job with this key stands; this folder was never used
            await asyncio.to_thread(shutil.rmtree, self._runner.job_dir(ident), True)
        else:
            self._runner.wake()
        telemetry.annotate(job=f"tuningJobs/{record.id}", replayed=replayed, base=base_version, rows=len(rows))
        return job_to_pb(record)

    def _prepare(self, ident: str, spec: dict, rows: list[list[dict]]) -> None:
        d = self._runner.job_dir(ident)
        d.mkdir(parents=True, exist_ok=True)
        hp = spec["hyperparameters"]
        run = RunSpec(base=str(d / "base"), method=spec["method"], epochs=hp["epochs"],
                      learning_rate=hp["learning_rate"], batch_size=hp["batch_size"],
                      max_seq_length=hp["max_seq_length"], lora_rank=hp["lora_rank"], lora_alpha=hp["lora_alpha"],
                      merge_lora=hp["merge_lora"], checkpoint_interval_steps=hp["checkpoint_interval_steps"],
                      zero_stage=spec["deepspeed"]["zero_stage"],
                      offload_optimizer=spec["deepspeed"]["offload_optimizer"],
                      deepspeed_extra=spec["deepspeed"]["extra"])
        (d / "dataset.jsonl").write_text("".join(json.dumps({"messages": r}) + "\n" for r in rows))
        (d / "spec.json").write_text(run.to_json())

    async def GetTuningJob(self, request, context) -> pb.TuningJob:
        return job_to_pb(await self._db.run_read(self._store.get, self._store.ident(request.name)), auth.sees_payload())

    async def ListTuningJobs(self, request, context) -> pb.ListTuningJobsResponse:
        page = pagination.start(request, {"list": "jobs"}, int)
        rows, token = page.finish(await self._db.run_read(self._store.list, page.position, page.limit),
                                  lambda j: j.create_time_us)
        payload = auth.sees_payload()
        return pb.ListTuningJobsResponse(jobs=[job_to_pb(j, payload) for j in rows], next_page_token=token)

    async def CancelTuningJob(self, request, context) -> pb.TuningJob:
        job = await self._db.run_read(self._store.get, self._store.ident(request.name))
        return job_to_pb(await self._runner.cancel(job))

    async def WatchTuningJob(self, request, context) -> AsyncIterator[pb.WatchTuningJobResponse]:
        ident = self._store.ident(request.name)
        payload = auth.sees_payload()
        await self._db.run_read(self._store.get, ident)  # NOT_FOUND first
        async for event in follow_events(self._store, self._runner.signal, ident, self._config.watch_poll_s):
            yield pb.WatchTuningJobResponse(event=event_to_pb(event, payload))
