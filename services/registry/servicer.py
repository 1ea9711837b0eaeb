"""RegistryService: request validation, proto <-> domain, and the finer authorization checks.
Storage logic lives in store.py, file policy in artifacts.py."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from llmops.api.registry.v1 import registry_pb2 as pb
from llmops.api.registry.v1 import registry_pb2_grpc
from llmops.core import auth, pagination, telemetry
from llmops.core.auth import Role
from llmops.core.blobstore import BlobStore, check_digest
from llmops.core.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from llmops.core.gates import AliasGate
from services.registry import artifacts, convert, names
from services.registry.config import RegistryConfig
from services.registry.domain import Actor, FileEntry, Kind
from services.registry.feed import EventFeed
from services.registry.store import RegistryStore

log = logging.getLogger(__name__)
SERVICE = pb.DESCRIPTOR.services_by_name["RegistryService"].full_name
POLICY = auth.Policy.for_service(SERVICE, {
    "CreateModel": Role.EDITOR,
    "GetModel": Role.READER,
    "ListModels": Role.READER,
    "UpdateModel": Role.EDITOR,
    "UploadArtifact": Role.EDITOR,
    "DownloadArtifact": Role.READER,
    "CreateModelVersion": Role.EDITOR,
    "GetModelVersion": Role.READER,
    "ListModelVersions": Role.READER,
    "ApproveModelVersion": Role.APPROVER,
    "RejectModelVersion": Role.APPROVER,
    "SetAlias": Role.EDITOR,  # approver for protected aliases, checked in the handler
    "SetCanary": Role.EDITOR,  # approver for protected aliases, checked in the handler
    "DeleteAlias": Role.EDITOR,
    "ListEvents": Role.READER,
    "WatchEvents": Role.READER,
    # evidence for approval gates: written by the evaluation service's key alone (granted this method)
    "RecordEvaluation": Role.ADMIN,
    "ListEvaluationRecords": Role.READER,
})
MAX_FILES = 10_000
MAX_LABELS = 64
MAX_TEXT = 10_000


def _actor() -> Actor:
    return Actor(auth.caller().name, telemetry.current_trace_id())


def _check_labels(labels) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"at most {MAX_LABELS} labels, got {len(labels)}")
    for k, v in labels.items():
        if not names.ALIAS.match(k) or len(v) > 63:
            raise InvalidArgument(f"label {k!r}: keys are like aliases (lowercase, starting with a letter), values up to 63 chars")
    return dict(labels)


def _check_text(field: str, value: str) -> str:
    if len(value) > MAX_TEXT:
        raise InvalidArgument(f"{field} is {len(value)} characters; the limit is {MAX_TEXT}")
    return value


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(self, store: RegistryStore, blobs: BlobStore, feed: EventFeed, config: RegistryConfig):
        self._store = store
        self._db = store.db
        self._blobs = blobs
        self._feed = feed
        self._config = config
        self._gate = AliasGate(frozenset(config.protected_aliases), "`llmops models approve {ref}`")

    # -- models --------------------------------------------------------------------------------

    async def CreateModel(self, request: pb.CreateModelRequest, context) -> pb.Model:
        model_id = names.check_model_id(request.model_id)
        model = request.model
        kind = convert.KIND_FROM_PB.get(model.kind, Kind.MODEL)
        gate = convert.gate_from_pb(model.gate) if model.HasField("gate") else None
        telemetry.annotate(model=model_id)
        record = await self._db.run(self._store.create_model, _actor(), model_id, kind,
                                    _check_text("description", model.description), _check_labels(model.labels), gate)
        self._feed.notify()
        return convert.model_to_pb(record)

    async def GetModel(self, request: pb.GetModelRequest, context) -> pb.Model:
        model_id = names.model_id(request.name)
        telemetry.annotate(model=model_id)
        return convert.model_to_pb(await self._db.run_read(self._store.get_model, model_id))

    async def ListModels(self, request: pb.ListModelsRequest, context) -> pb.ListModelsResponse:
        page = pagination.start(request, {"kind": request.kind}, str)
        kind = convert.KIND_FROM_PB.get(request.kind)
        rows, token = page.finish(await self._db.run_read(self._store.list_models, page.position, page.limit, kind),
                                  lambda m: m.id)
        return pb.ListModelsResponse(models=[convert.model_to_pb(m) for m in rows], next_page_token=token)

    async def UpdateModel(self, request: pb.UpdateModelRequest, context) -> pb.Model:
        model_id = names.model_id(request.name)
        mask = set(request.update_mask) or {"description", "labels"}
        unknown = mask - {"description", "labels", "gate"}
        if unknown:
            raise InvalidArgument(f"update_mask has unknown fields {sorted(unknown)}; use description, labels, gate")
        description = _check_text("description", request.description) if "description" in mask else None
        labels = _check_labels(request.labels) if "labels" in mask else None
        gate = ()
        if "gate" in mask:  # a weaker gate lets more reach production: an approver's decision
            auth.require(Role.APPROVER, "changing a model's approval gate")
            gate = (convert.gate_from_pb(request.gate) if request.HasField("gate") else None,)
        record = await self._db.run(self._store.update_model, _actor(), model_id, description, labels, gate)
        self._feed.notify()
        return convert.model_to_pb(record)

    # -- artifacts -----------------------------------------------------------------------------

    async def UploadArtifact(self, request_iterator, context) -> pb.UploadArtifactResponse:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidArgument("an upload starts with a header message (model, path, sha256, size_bytes)")
        h = first.header
        model_id = names.model_id(h.model)
        path = artifacts.check_file_name(h.path)
        digest = check_digest(h.sha256)
        if h.size_bytes < 0:
            raise InvalidArgument(f"size_bytes must be >= 0, got {h.size_bytes}")
        if h.size_bytes > self._config.max_artifact_bytes:
            raise ResourceExhausted(
                f"{path!r} is {h.size_bytes} bytes; the registry stores files up to "
                f"{self._config.max_artifact_bytes} bytes (LLMOPS_REGISTRY_MAX_ARTIFACT_BYTES)"
            )
        telemetry.annotate(model=model_id, path=path, size_bytes=h.size_bytes)
        await self._db.run_read(self._store.get_model, model_id)  # NOT_FOUND before reading content
        if await asyncio.to_thread(self._blobs.size, digest) == h.size_bytes:
            await asyncio.to_thread(artifacts.check_stored, path, self._blobs.read(digest), h.size_bytes)
            entry = FileEntry(path, digest, h.size_bytes)
            await self._db.run(self._store.record_upload, _actor(), model_id, entry, True)
            return pb.UploadArtifactResponse(file=pb.ArtifactFile(path=path, sha256=digest, size_bytes=h.size_bytes),
                                             deduplicated=True)
        writer = await asyncio.to_thread(self._blobs.writer, self._config.max_artifact_bytes)
        head = b""
        kept = bytearray() if path.endswith(".json") else None
        try:
            async for msg in request_iterator:
                if msg.WhichOneof("part") != "chunk":
                    raise InvalidArgument("only chunk messages may follow the header")
                chunk = msg.chunk
                if len(head) < artifacts.SNIFF_BYTES:
                    head += chunk[: artifacts.SNIFF_BYTES - len(head)]
                    if len(head) >= artifacts.SNIFF_BYTES:
                        artifacts.check_leading_bytes(path, head, h.size_bytes)
                if writer.size + len(chunk) > h.size_bytes:
                    raise InvalidArgument(f"{path!r}: more bytes arrived than the declared {h.size_bytes}; nothing was stored")
                writer.write(chunk)
                if kept is not None:
                    kept += chunk
            if len(head) < artifacts.SNIFF_BYTES:  # a file shorter than the sniffed prefix
                artifacts.check_leading_bytes(path, head, h.size_bytes)
            if kept is not None:
                artifacts.check_json(path, bytes(kept))
            stored = await asyncio.to_thread(writer.commit, digest, h.size_bytes)
        except BaseException:
            writer.abort()
            raise
        entry = FileEntry(path, digest, h.size_bytes)
        await self._db.run(self._store.record_upload, _actor(), model_id, entry, not stored)
        self._feed.notify()
        return pb.UploadArtifactResponse(file=pb.ArtifactFile(path=path, sha256=digest, size_bytes=h.size_bytes),
                                         deduplicated=not stored)

    async def DownloadArtifact(self, request: pb.DownloadArtifactRequest, context):
        ref = names.parse_version_ref(request.model_version)
        path = artifacts.check_file_name(request.path)
        if Path(path).suffix.lower() in artifacts.DATA_SUFFIXES:
            auth.require(auth.PAYLOAD_ROLE, f"downloading the data rows in {path!r}")
        version = await self._db.run_read(self._store.get_version, ref)
        entry = next((f for f in version.files if f.path == path), None)
        if entry is None:
            raise NotFound(f"{names.version_name(ref.model, version.version)} has no file {path!r}")
        telemetry.annotate(model=ref.model, version=version.version, path=path)
        yield pb.DownloadArtifactResponse(file=pb.ArtifactFile(path=entry.path, sha256=entry.sha256, size_bytes=entry.size_bytes))
        chunks = self._blobs.read(entry.sha256)
        while True:
            chunk = await asyncio.to_thread(next, chunks, None)
            if chunk is None:
                break
            yield pb.DownloadArtifactResponse(chunk=chunk)

    # -- versions ------------------------------------------------------------------------------

    async def CreateModelVersion(self, request: pb.CreateModelVersionRequest, context) -> pb.ModelVersion:
        model_id = names.model_id(request.parent)
        if request.idempotency_key and not names.REQUEST_ID.match(request.idempotency_key):
            raise InvalidArgument("idempotency_key must be 1-128 characters of letters, digits, '.', '_', ':' or '-'",
                                  field="idempotency_key")
        telemetry.annotate(model=model_id)
        version = request.version
        has_spec = version.HasField("pipeline_spec")
        kind = Kind.PIPELINE if has_spec else Kind.MODEL
        files, spec, digest, size, fmt = [], None, "", 0, ""
        if has_spec:
            if version.artifact.files:
                raise InvalidArgument("a version holds either artifact files (a model) or a pipeline_spec (a pipeline), "
                                      "not both", field="version.artifact.files")
            spec = self._check_spec(version.pipeline_spec)
        else:
            files = await self._check_files(version.artifact.files)
            digest = artifacts.manifest_digest((f.path, f.sha256, f.size_bytes) for f in files)
            size = sum(f.size_bytes for f in files)
            fmt = version.artifact.format or artifacts.guess_format(f.path for f in files)
        lineage = convert.lineage_from_pb(version.lineage)
        if lineage.base_version:
            names.parse_version_ref(lineage.base_version)
        record = await self._db.run(lambda: self._store.create_version(
            _actor(), model_id, kind=kind, files=files, artifact_digest=digest, size_bytes=size, format_=fmt,
            pipeline_spec=spec, lineage=lineage, metrics=dict(version.metrics),
            description=_check_text("description", version.description), request_id=request.idempotency_key or None,
        ))
        self._feed.notify()
        telemetry.annotate(version=record.version)
        return convert.version_to_pb(record)

    async def _check_files(self, files) -> list[FileEntry]:
        if not files:
            raise InvalidArgument("a model version needs at least one file; upload the folder first (UploadArtifact)")
        if len(files) > MAX_FILES:
            raise InvalidArgument(f"a version holds at most {MAX_FILES} files, got {len(files)}")
        seen: set[str] = set()
        out = []
        for f in files:
            path = artifacts.check_file_name(f.path)
            if path in seen:
                raise InvalidArgument(f"file {path!r} is listed twice")
            seen.add(path)
            out.append(FileEntry(path, check_digest(f.sha256), f.size_bytes))
        await asyncio.to_thread(self._check_stored_files, out)
        return sorted(out, key=lambda f: f.path)

    def _check_stored_files(self, files: list[FileEntry]) -> None:
        for f in files:
            stored = self._blobs.size(f.sha256)
            if stored is None:
                raise FailedPrecondition(f"file {f.path!r} (sha256 {f.sha256[:12]}…) was not uploaded; upload it first")
            if stored != f.size_bytes:
                raise InvalidArgument(f"file {f.path!r} is listed with {f.size_bytes} bytes but its content has {stored}")
            artifacts.check_stored(f.path, self._blobs.read(f.sha256), f.size_bytes)

    @staticmethod
    def _check_spec(spec: pb.PipelineSpec) -> dict:
        missing = [f for f in ("prompt_template", "index", "route") if not getattr(spec, f)]
        if missing:
            raise InvalidArgument(f"pipeline_spec needs {', '.join(missing)}")
        template, _, version = spec.prompt_template.partition("@")
        if not template or not version.isdigit() or int(version) < 1:
            # an alias could move under an approved bundle; a version number cannot
            raise InvalidArgument(
                f"pipeline_spec.prompt_template {spec.prompt_template[:100]!r} must name an immutable version, e.g. "
                "`support-qa@3`: a bundle pins what it serves, and promoting the bundle promotes it"
            )
        return convert.pipeline_spec_to_dict(spec)

    async def GetModelVersion(self, request: pb.GetModelVersionRequest, context) -> pb.ModelVersion:
        ref = names.parse_version_ref(request.name)
        record = await self._db.run_read(self._store.get_version, ref)
        telemetry.annotate(model=ref.model, version=record.version, reference=str(ref))
        return convert.version_to_pb(record)

    async def ListModelVersions(self, request: pb.ListModelVersionsRequest, context) -> pb.ListModelVersionsResponse:
        model_id = names.model_id(request.parent)
        page = pagination.start(request, {"model": model_id}, int)
        rows, token = page.finish(await self._db.run_read(self._store.list_versions, model_id, page.position,
                                                          page.limit), lambda v: v.version)
        return pb.ListModelVersionsResponse(versions=[convert.version_to_pb(v) for v in rows], next_page_token=token)

    async def _review(self, name: str, comment: str, approve: bool, override_gate: bool = False) -> pb.ModelVersion:
        ref = names.parse_version_ref(name)
        telemetry.annotate(model=ref.model, reference=str(ref), override_gate=override_gate)
        record = await self._db.run(self._store.review_version, _actor(), ref, approve,
                                    _check_text("comment", comment), self._gate, override_gate)
        self._feed.notify()
        return convert.version_to_pb(record)

    async def ApproveModelVersion(self, request: pb.ApproveModelVersionRequest, context) -> pb.ModelVersion:
        if request.override_gate:
            auth.require(Role.ADMIN, "approving past the approval gate (override_gate)")
            if not request.comment.strip():
                raise InvalidArgument("override_gate needs a comment saying why the gate is overridden (it is the "
                                      "audit trail's reason)", field="comment")
        return await self._review(request.name, request.comment, True, request.override_gate)

    async def RejectModelVersion(self, request: pb.RejectModelVersionRequest, context) -> pb.ModelVersion:
        return await self._review(request.name, request.comment, False)

    # -- aliases -------------------------------------------------------------------------------

    async def SetAlias(self, request: pb.SetAliasRequest, context) -> pb.Model:
        model_id = names.model_id(request.model)
        alias = names.check_alias(request.alias)
        if request.version < 1:
            raise InvalidArgument(f"version must be a version number (>= 1), got {request.version}")
        self._gate.require_mover(alias, granted=f"/{SERVICE}/SetAlias")
        telemetry.annotate(model=model_id, alias=alias, version=request.version)
        record = await self._db.run(self._store.set_alias, _actor(), model_id, alias, request.version, self._gate)
        self._feed.notify()
        return convert.model_to_pb(record)

    async def SetCanary(self, request: pb.SetCanaryRequest, context) -> pb.Model:
        model_id = names.model_id(request.model)
        alias = names.check_alias(request.alias)
        if not 0 <= request.percent <= 99:
            raise InvalidArgument(f"percent must be 0-99 (0 ends the canary; all traffic is `llmops models alias`), "
                                  f"got {request.percent}", field="percent")
        if request.percent and request.version < 1:
            raise InvalidArgument(f"version must be a version number (>= 1), got {request.version}", field="version")
        self._gate.require_mover(alias, "sharing the traffic of", granted=f"/{SERVICE}/SetCanary")
        telemetry.annotate(model=model_id, alias=alias, version=request.version, percent=request.percent)
        record = await self._db.run(self._store.set_canary, _actor(), model_id, alias, request.version,
                                    request.percent, _check_text("reason", request.reason), self._gate)
        self._feed.notify()
        return convert.model_to_pb(record)

    async def DeleteAlias(self, request: pb.DeleteAliasRequest, context) -> pb.Model:
        model_id = names.model_id(request.model)
        alias = names.check_alias(request.alias)
        self._gate.require_mover(alias, "deleting")
        telemetry.annotate(model=model_id, alias=alias)
        record = await self._db.run(self._store.delete_alias, _actor(), model_id, alias)
        self._feed.notify()
        return convert.model_to_pb(record)

    # -- evaluation records --------------------------------------------------------------------

    async def RecordEvaluation(self, request: pb.RecordEvaluationRequest, context) -> pb.RecordEvaluationResponse:
        ref, evidence = convert.evidence_from_pb(request.record)
        telemetry.annotate(model=ref.model, reference=str(ref), evaluation=evidence.evaluation)
        stored = await self._db.run(self._store.record_evaluation, _actor(), ref, evidence)
        self._feed.notify()
        return pb.RecordEvaluationResponse(record=convert.evidence_to_pb(stored))

    async def ListEvaluationRecords(self, request: pb.ListEvaluationRecordsRequest,
                                    context) -> pb.ListEvaluationRecordsResponse:
        ref = names.parse_version_ref(request.model_version)
        page = pagination.start(request, {"records": str(ref)}, int)
        rows, token = page.finish(await self._db.run_read(self._store.evaluation_records, ref, page.position,
                                                          page.limit), lambda r: r.id)
        return pb.ListEvaluationRecordsResponse(records=[convert.evidence_to_pb(r) for r in rows],
                                                next_page_token=token)

    # -- events --------------------------------------------------------------------------------

    async def ListEvents(self, request: pb.ListEventsRequest, context) -> pb.ListEventsResponse:
        model_id = names.model_id(request.model) if request.model else None
        page = pagination.start(request, {"model": model_id}, int)
        rows, token = page.finish(await self._db.run_read(self._store.list_events, model_id, page.position or 0,
                                                          page.limit), lambda e: e.sequence)
        return pb.ListEventsResponse(events=[convert.event_to_pb(e) for e in rows], next_page_token=token)

    async def WatchEvents(self, request: pb.WatchEventsRequest, context):
        if request.after_sequence < 0:
            raise InvalidArgument(f"after_sequence must be >= 0, got {request.after_sequence}")
        models = {names.model_id(m) for m in request.models}
        types = {convert.EVENT_FROM_PB[t] for t in request.types if t in convert.EVENT_FROM_PB}

        def accept(e) -> bool:
            return (not models or e.model in models) and (not types or e.type in types)

        async for event in self._feed.follow(request.after_sequence, accept):
            yield pb.WatchEventsResponse(event=convert.event_to_pb(event))
