"""Typed wrapper over llmops.registry.v1.RegistryService."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
from google.protobuf import json_format, struct_pb2

from llmops.api.registry.v1 import registry_pb2 as pb
from llmops.api.registry.v1 import registry_pb2_grpc
from llmops.client.base import CallError, ServiceClient, operation, reopening
from llmops.core.paths import confined

CHUNK = 1024 * 1024
Progress = Callable[[int], None]  # called with the number of bytes just transferred
KINDS = {"model": pb.MODEL_KIND_MODEL, "pipeline": pb.MODEL_KIND_PIPELINE}


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            if progress:
                progress(len(chunk))
    return h.hexdigest()


def folder_files(folder: Path) -> list[tuple[str, Path]]:
    """(relative posix path, file) for every regular file under `folder`, hidden ones skipped."""
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in rel.split("/")):
            out.append((rel, path))
    return out


class RegistryClient(ServiceClient):
    service = "registry"

    def __init__(self, channel):
        super().__init__(channel)
        self.stub = registry_pb2_grpc.RegistryServiceStub(channel)

    # -- models --------------------------------------------------------------------------------

    @operation("create_model")
    def create_model(self, model_id: str, *, kind: str = "model", description: str = "",
                     labels: dict[str, str] | None = None) -> pb.Model:
        return self._unary(self.stub.CreateModel, pb.CreateModelRequest(
            model_id=model_id, model=pb.Model(kind=KINDS[kind], description=description, labels=labels or {})))

    def ensure_model(self, model_id: str, *, kind: str = "model", description: str = "") -> None:
        """Create the model unless it exists (then it is left as it is)."""
        try:
            self.create_model(model_id, kind=kind, description=description)
        except CallError as exc:
            if exc.code.name != "ALREADY_EXISTS":
                raise

    @operation("get_model")
    def get_model(self, name: str) -> pb.Model:
        return self._unary(self.stub.GetModel, pb.GetModelRequest(name=name))

    @operation("update_model")
    def update_model(self, name: str, *, description: str | None = None,
                     labels: dict[str, str] | None = None) -> pb.Model:
        mask = [f for f, v in (("description", description), ("labels", labels)) if v is not None]
        return self._unary(self.stub.UpdateModel, pb.UpdateModelRequest(
            name=name, description=description or "", labels=labels or {}, update_mask=mask))

    @operation("set_gate")
    def set_gate(self, name: str, gate: pb.ApprovalGate | None) -> pb.Model:
        """Declare (or, with None, remove) the evidence a version needs before approval."""
        return self._unary(self.stub.UpdateModel, pb.UpdateModelRequest(name=name, gate=gate, update_mask=["gate"]))

    @operation("list_models")
    def list_models(self, *, kind: str | None = None, page_size: int = 100) -> list[pb.Model]:
        return self._paged(self.stub.ListModels, lambda token: pb.ListModelsRequest(
            page_size=page_size, page_token=token, kind=KINDS[kind] if kind else 0), "models")

    # -- versions ------------------------------------------------------------------------------

    @operation("create_version")
    def create_version(self, model: str, files: list[pb.ArtifactFile], *, format: str = "",
                       lineage: pb.Lineage | None = None, metrics: dict[str, float] | None = None,
                       description: str = "", idempotency_key: str | None = None) -> pb.ModelVersion:
        return self._unary(self.stub.CreateModelVersion, pb.CreateModelVersionRequest(
            parent=model, version=pb.ModelVersion(artifact=pb.Artifact(files=files, format=format), lineage=lineage,
                                                  metrics=metrics or {}, description=description),
            idempotency_key=idempotency_key or uuid.uuid4().hex))

    @operation("create_pipeline_version")
    def create_pipeline_version(self, pipeline: str, *, prompt_template: str, index: str, route: str,
                                parameters: dict | None = None, description: str = "",
                                idempotency_key: str | None = None) -> pb.ModelVersion:
        params = struct_pb2.Struct()
        json_format.ParseDict(parameters or {}, params)
        spec = pb.PipelineSpec(prompt_template=prompt_template, index=index, route=route, parameters=params)
        return self._unary(self.stub.CreateModelVersion, pb.CreateModelVersionRequest(
            parent=pipeline, version=pb.ModelVersion(pipeline_spec=spec, description=description),
            idempotency_key=idempotency_key or uuid.uuid4().hex))

    @operation("get_version")
    def get_version(self, ref: str) -> pb.ModelVersion:
        return self._unary(self.stub.GetModelVersion, pb.GetModelVersionRequest(name=ref))

    @operation("list_versions")
    def list_versions(self, model: str, *, page_size: int = 100) -> list[pb.ModelVersion]:
        return self._paged(self.stub.ListModelVersions, lambda token: pb.ListModelVersionsRequest(
            parent=model, page_size=page_size, page_token=token), "versions")

    @operation("approve")
    def approve(self, ref: str, comment: str = "", *, override_gate: bool = False) -> pb.ModelVersion:
        return self._unary(self.stub.ApproveModelVersion, pb.ApproveModelVersionRequest(
            name=ref, comment=comment, override_gate=override_gate))

    @operation("record_evaluation")
    def record_evaluation(self, evaluation: str, model_version: str, dataset_uri: str, dataset_version: str,
                          metrics: dict[str, float], comparisons: dict[str, dict] | None = None) -> pb.EvaluationRecord:
        """`comparisons`: metric -> MetricComparison fields as a dict (p_value None when n/a)."""
        record = pb.EvaluationRecord(evaluation=evaluation, model_version=model_version, dataset_uri=dataset_uri,
                                     dataset_version=dataset_version, metrics=metrics,
                                     rows=int(metrics.get("rows", 0)))
        for metric, c in (comparisons or {}).items():
            mc = record.comparisons[metric]
            mc.champion_version, mc.champion_value = c["champion_version"], c["baseline_value"]
            mc.difference, mc.ci_low, mc.ci_high, mc.rows = c["difference"], c["ci_low"], c["ci_high"], c["rows"]
            if c.get("p_value") is not None:
                mc.p_value = c["p_value"]
        return self._unary(self.stub.RecordEvaluation, pb.RecordEvaluationRequest(record=record)).record

    @operation("evaluation_records")
    def evaluation_records(self, ref: str, *, page_size: int = 100) -> list[pb.EvaluationRecord]:
        return self._paged(self.stub.ListEvaluationRecords, lambda token: pb.ListEvaluationRecordsRequest(
            model_version=ref, page_size=page_size, page_token=token), "records")

    @operation("reject")
    def reject(self, ref: str, comment: str = "") -> pb.ModelVersion:
        return self._unary(self.stub.RejectModelVersion, pb.RejectModelVersionRequest(name=ref, comment=comment))

    @operation("set_alias")
    def set_alias(self, model: str, alias: str, version: int) -> pb.Model:
        return self._unary(self.stub.SetAlias, pb.SetAliasRequest(model=model, alias=alias, version=version))

    @operation("set_canary")
    def set_canary(self, model: str, alias: str, version: int, percent: int, reason: str = "") -> pb.Model:
        """Send `percent` (1-99) of `alias`'s traffic to `version`; 0 ends the canary."""
        return self._unary(self.stub.SetCanary, pb.SetCanaryRequest(model=model, alias=alias, version=version,
                                                                    percent=percent, reason=reason))

    @operation("delete_alias")
    def delete_alias(self, model: str, alias: str) -> pb.Model:
        return self._unary(self.stub.DeleteAlias, pb.DeleteAliasRequest(model=model, alias=alias))

    # -- artifacts -----------------------------------------------------------------------------

    def _upload_requests(self, model: str, rel: str, path: Path, digest: str, size: int,
                         progress: Progress | None) -> Iterator[pb.UploadArtifactRequest]:
        yield pb.UploadArtifactRequest(header=pb.UploadArtifactHeader(model=model, path=rel, sha256=digest, size_bytes=size))
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield pb.UploadArtifactRequest(chunk=chunk)
                if progress:
                    progress(len(chunk))

    @operation("upload_file")
    def upload_file(self, model: str, rel: str, path: Path, progress: Progress | None = None,
                    timeout: float | None = None) -> pb.UploadArtifactResponse:
        size = path.stat().st_size
        digest = sha256_file(path)
        resp = self._unary(self.stub.UploadArtifact,
                           self._upload_requests(model, rel, path, digest, size, progress), timeout=timeout)
        if resp.deduplicated and progress:
            progress(size)  # already stored: nothing more will be sent, count it as done
        return resp

    @operation("upload_folder")
    def upload_folder(self, model: str, folder: Path | str, *, format: str = "", lineage: pb.Lineage | None = None,
                      metrics: dict[str, float] | None = None, description: str = "",
                      progress: Progress | None = None) -> pb.ModelVersion:
        """Upload every file of `folder`, then create a version from them (one request id, so a
        retried create cannot make two versions)."""
        folder = Path(folder)
        files = folder_files(folder)
        if not files:
            raise CallError(grpc.StatusCode.INVALID_ARGUMENT, f"{folder} has no files to upload")
        uploaded = [self.upload_file(model, rel, path, progress).file for rel, path in files]
        return self.create_version(model, uploaded, format=format, lineage=lineage, metrics=metrics,
                                   description=description)

    def upload_model(self, model: str, folder: Path | str, *, description: str = "",
                     metrics: dict[str, float] | None = None, lineage: pb.Lineage | None = None,
                     progress: Progress | None = None) -> pb.ModelVersion:
        """Check that `folder` is a servable causal-LM folder (INVALID_ARGUMENT naming what is
        missing), then upload it as a new version of `model` (created when new), its context window
        recorded as a metric."""
        from llmops.modeling.folder import inspect_folder

        info = inspect_folder(folder)
        self.ensure_model(model, description=description or f"{info.architecture} causal language model")
        return self.upload_folder(model, folder, format="hf-causal-lm", lineage=lineage, description=description,
                                  metrics={**(metrics or {}), "context_window": float(info.context_window)},
                                  progress=progress)

    def import_gguf(self, model: str, path: Path | str, *, description: str = "", source_uri: str = "",
                    dtype: str = "float32", progress: Callable[[str, int, int], None] | None = None) -> pb.ModelVersion:
        """Convert a GGUF file (llama.cpp, Ollama) into a Hugging Face folder and upload it as a new
        version of `model`, its sha256 and quantization recorded as lineage; see
        llmops.modeling.gguf (needs torch, transformers and gguf on this side)."""
        from llmops.modeling.gguf import import_gguf

        return import_gguf(self, model, path, description=description, source_uri=source_uri, dtype=dtype,
                           progress=progress)

    @staticmethod
    def folder_size(folder: Path | str) -> int:
        return sum(p.stat().st_size for _, p in folder_files(Path(folder)))

    @operation("download_version")
    def download_version(self, ref: str, dest: Path | str, progress: Progress | None = None) -> pb.ModelVersion:
        """Download a version's folder into `dest`, checking each file's sha256 and size."""
        version = self.get_version(ref)
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for f in version.artifact.files:
            target = confined(dest, f.path)  # a manifest is input too: never write outside dest
            target.parent.mkdir(parents=True, exist_ok=True)
            h, size = hashlib.sha256(), 0
            tmp = target.with_name(target.name + ".part")
            with open(tmp, "wb") as out:
                for msg in self.stub.DownloadArtifact(pb.DownloadArtifactRequest(model_version=version.name, path=f.path)):
                    if msg.WhichOneof("part") == "chunk":
                        out.write(msg.chunk)
                        h.update(msg.chunk)
                        size += len(msg.chunk)
                        if progress:
                            progress(len(msg.chunk))
            if h.hexdigest() != f.sha256 or size != f.size_bytes:
                tmp.unlink(missing_ok=True)
                raise CallError(grpc.StatusCode.DATA_LOSS, f"{f.path}: downloaded content does not match its sha256; retry")
            os.replace(tmp, target)
        return version

    # -- events --------------------------------------------------------------------------------

    @operation("list_events")
    def list_events(self, model: str = "", *, page_size: int = 100) -> list[pb.Event]:
        return self._paged(self.stub.ListEvents, lambda token: pb.ListEventsRequest(
            model=model, page_size=page_size, page_token=token), "events")

    def watch_events(self, *, after_sequence: int = 0, models: list[str] | None = None,
                     timeout: float | None = None) -> Iterator[pb.Event]:
        """Events as they happen (cancel by closing the iterator or with `timeout`); a stream the
        server ends at its maximum age is reopened after the last event seen."""
        last = [after_sequence]  # read when the stream is reopened
        for msg in reopening(lambda t: self.stub.WatchEvents(pb.WatchEventsRequest(
                after_sequence=last[0], models=models or []), timeout=t), timeout):
            last[0] = max(last[0], msg.event.sequence)
            yield msg.event
