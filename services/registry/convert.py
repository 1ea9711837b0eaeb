"""Registry records to and from protobuf messages."""

from __future__ import annotations

import math
import re

from google.protobuf import json_format, struct_pb2

from llmops.api.registry.v1 import registry_pb2 as pb
from llmops.core.blobstore import check_digest
from llmops.core.errors import InvalidArgument
from llmops.core.timeutil import timestamp
from services.registry import names
from services.registry.domain import (
    EventRecord,
    EventType,
    ImportSource,
    Kind,
    Lineage,
    ModelRecord,
    Status,
    VersionRecord,
)
from services.registry.evidence import Comparison, Evidence, Gate, check_gate

KIND_TO_PB = {Kind.MODEL: pb.MODEL_KIND_MODEL, Kind.PIPELINE: pb.MODEL_KIND_PIPELINE}
KIND_FROM_PB = {v: k for k, v in KIND_TO_PB.items()}
STATUS_TO_PB = {
    Status.PENDING_APPROVAL: pb.VERSION_STATUS_PENDING_APPROVAL,
    Status.APPROVED: pb.VERSION_STATUS_APPROVED,
    Status.REJECTED: pb.VERSION_STATUS_REJECTED,
}
EVENT_TO_PB = {e: pb.EventType.Value(f"EVENT_TYPE_{e.name}") for e in EventType}
EVENT_FROM_PB = {v: k for k, v in EVENT_TO_PB.items()}


def model_to_pb(m: ModelRecord) -> pb.Model:
    return pb.Model(
        name=names.model_name(m.id), kind=KIND_TO_PB[m.kind], description=m.description, labels=m.labels,
        aliases=m.aliases, latest_version=m.latest_version, created_by=m.created_by,
        create_time=timestamp(m.create_time_us), update_time=timestamp(m.update_time_us),
        gate=gate_to_pb(Gate.from_dict(m.gate)) if m.gate else None,
        canaries={a: pb.Canary(version=v, percent=p) for a, (v, p) in m.canaries.items()},
    )


def gate_to_pb(g: Gate) -> pb.ApprovalGate:
    out = pb.ApprovalGate(dataset_uri=g.dataset_uri, metric=g.metric, max_regression=g.max_regression,
                          require_confidence=g.require_confidence, champion_alias=g.champion_alias)
    if g.min_value is not None:
        out.min_value = g.min_value
    return out


def gate_from_pb(g: pb.ApprovalGate) -> Gate:
    """INVALID_ARGUMENT for a gate that names no dataset or an unknown metric."""
    return check_gate(Gate(g.dataset_uri, g.metric, g.max_regression,
                           g.min_value if g.HasField("min_value") else None, g.require_confidence,
                           g.champion_alias or "production"))


_EVALUATION = re.compile(r"evaluations/[a-z0-9]{1,32}")
MAX_METRICS = 64


def _metrics(values, what: str) -> dict[str, float]:
    if len(values) > MAX_METRICS:
        raise InvalidArgument(f"{what}: at most {MAX_METRICS} metrics, got {len(values)}")
    out = {}
    for k, v in values.items():
        if not names.ALIAS.match(k) or not math.isfinite(v):
            raise InvalidArgument(f"{what}: {k[:60]!r} must be a lowercase name with a finite value")
        out[k] = float(v)
    return out


def evidence_from_pb(r: pb.EvaluationRecord) -> tuple[names.VersionRef, Evidence]:
    """INVALID_ARGUMENT for a malformed record."""
    if not _EVALUATION.fullmatch(r.evaluation):
        raise InvalidArgument(f"record.evaluation {r.evaluation[:80]!r} must be `evaluations/{{id}}`")
    ref = names.parse_version_ref(r.model_version)
    if not r.dataset_uri or len(r.dataset_uri) > 1024 or len(r.dataset_version) > 200:
        raise InvalidArgument("record.dataset_uri is required (up to 1024 characters, the version up to 200)")
    comparisons = {}
    for metric in _metrics(dict.fromkeys(r.comparisons, 0.0), "record.comparisons"):
        mc = r.comparisons[metric]
        names.parse_version_ref(mc.champion_version)
        numbers = [mc.champion_value, mc.difference, mc.ci_low, mc.ci_high]
        if not all(math.isfinite(x) for x in numbers) or mc.rows < 0:
            raise InvalidArgument(f"record.comparisons[{metric!r}] needs finite values and rows >= 0")
        comparisons[metric] = Comparison(mc.champion_version, *numbers, mc.rows,
                                         mc.p_value if mc.HasField("p_value") else None)
    return ref, Evidence(r.evaluation, ref.model, 0, r.dataset_uri, r.dataset_version,
                         _metrics(r.metrics, "record.metrics"), comparisons, max(0, r.rows))


def evidence_to_pb(e: Evidence) -> pb.EvaluationRecord:
    out = pb.EvaluationRecord(evaluation=e.evaluation, model_version=names.version_name(e.model, e.version),
                              dataset_uri=e.dataset_uri, dataset_version=e.dataset_version, metrics=e.metrics,
                              rows=e.rows, recorded_by=e.recorded_by, record_time=timestamp(e.time_us))
    for metric, c in e.comparisons.items():
        mc = out.comparisons[metric]
        mc.champion_version, mc.champion_value, mc.difference = c.champion_version, c.champion_value, c.difference
        mc.ci_low, mc.ci_high, mc.rows = c.ci_low, c.ci_high, c.rows
        if c.p_value is not None:
            mc.p_value = c.p_value
    return out


def lineage_to_pb(lin: Lineage) -> pb.Lineage:
    out = pb.Lineage(base_version=lin.base_version, dataset_uri=lin.dataset_uri,
                     dataset_version=lin.dataset_version, tuning_job_id=lin.tuning_job_id)
    if lin.source is not None:
        s = lin.source
        out.source.CopyFrom(pb.ImportSource(uri=s.uri, sha256=s.sha256, size_bytes=s.size_bytes, format=s.format,
                                            quantization=s.quantization))
    return out


def lineage_from_pb(lin: pb.Lineage) -> Lineage:
    """INVALID_ARGUMENT for a malformed import source; the base version is checked by the store."""
    source = None
    if lin.HasField("source"):
        s = lin.source
        if not s.uri or len(s.uri) > 1024:
            raise InvalidArgument("lineage.source.uri is required, up to 1024 characters")
        try:
            check_digest(s.sha256)
        except InvalidArgument as exc:
            raise InvalidArgument(f"lineage.source.{exc.message}") from None
        if s.size_bytes < 0 or not s.format or len(s.format) > 32 or len(s.quantization) > 32:
            raise InvalidArgument("lineage.source needs size_bytes >= 0, a format and a quantization of up to "
                                  "32 characters each")
        source = ImportSource(s.uri, s.sha256, s.size_bytes, s.format, s.quantization)
    return Lineage(lin.base_version, lin.dataset_uri, lin.dataset_version, lin.tuning_job_id, source)


def version_to_pb(v: VersionRecord) -> pb.ModelVersion:
    out = pb.ModelVersion(
        name=names.version_name(v.model, v.version), version=v.version,
        lineage=lineage_to_pb(v.lineage),
        metrics=v.metrics, status=STATUS_TO_PB[v.status], description=v.description, aliases=list(v.aliases),
        created_by=v.created_by, create_time=timestamp(v.create_time_us),
    )
    if v.files or v.artifact_digest:
        out.artifact.CopyFrom(pb.Artifact(
            files=[pb.ArtifactFile(path=f.path, sha256=f.sha256, size_bytes=f.size_bytes) for f in v.files],
            digest=v.artifact_digest, size_bytes=v.size_bytes, format=v.format,
        ))
    if v.pipeline_spec is not None:
        json_format.ParseDict(v.pipeline_spec, out.pipeline_spec)
    if v.review is not None:
        out.review.CopyFrom(pb.Review(reviewer=v.review.reviewer, comment=v.review.comment,
                                      review_time=timestamp(v.review.time_us)))
    return out


def event_to_pb(e: EventRecord) -> pb.Event:
    return pb.Event(
        sequence=e.sequence, type=EVENT_TO_PB[e.type], model=names.model_name(e.model), version=e.version,
        alias=e.alias, previous_version=e.previous_version, actor=e.actor, event_time=timestamp(e.time_us),
        details=e.details, trace_id=e.trace_id,
    )


def pipeline_spec_to_dict(spec: pb.PipelineSpec) -> dict:
    return json_format.MessageToDict(spec, preserving_proto_field_name=True)


def struct_to_dict(s: struct_pb2.Struct) -> dict:
    return json_format.MessageToDict(s)
