"""Registry records, independent of gRPC and SQL."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from llmops.core.gates import Approval


class Kind(enum.StrEnum):
    MODEL = "model"
    PIPELINE = "pipeline"


Status = Approval  # one approval vocabulary for every gated resource (llmops.core.gates)


class EventType(enum.StrEnum):
    MODEL_CREATED = "model_created"
    MODEL_UPDATED = "model_updated"
    VERSION_CREATED = "version_created"
    VERSION_APPROVED = "version_approved"
    VERSION_REJECTED = "version_rejected"
    ALIAS_SET = "alias_set"
    ALIAS_DELETED = "alias_deleted"
    ARTIFACT_UPLOADED = "artifact_uploaded"
    EVALUATION_RECORDED = "evaluation_recorded"
    CANARY_SET = "canary_set"


@dataclass(frozen=True)
class FileEntry:
    path: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class ImportSource:
    """The file an imported version was converted from (e.g. a GGUF file)."""

    uri: str
    sha256: str
    size_bytes: int
    format: str
    quantization: str = ""


@dataclass(frozen=True)
class Lineage:
    base_version: str = ""
    dataset_uri: str = ""
    dataset_version: str = ""
    tuning_job_id: str = ""
    source: ImportSource | None = None


@dataclass(frozen=True)
class Review:
    reviewer: str
    comment: str
    time_us: int


@dataclass(frozen=True)
class ModelRecord:
    id: str
    kind: Kind
    description: str
    labels: dict[str, str]
    aliases: dict[str, int]
    latest_version: int
    created_by: str
    create_time_us: int
    update_time_us: int
    gate: dict | None = None  # evidence.Gate as a dict
    canaries: dict[str, tuple[int, int]] = field(default_factory=dict)  # alias -> (version, percent)


@dataclass(frozen=True)
class VersionRecord:
    model: str
    version: int
    files: tuple[FileEntry, ...]
    artifact_digest: str
    size_bytes: int
    format: str
    pipeline_spec: dict | None
    lineage: Lineage
    metrics: dict[str, float]
    status: Status
    review: Review | None
    description: str
    aliases: tuple[str, ...]
    created_by: str
    create_time_us: int


@dataclass(frozen=True)
class EventRecord:
    sequence: int
    type: EventType
    model: str
    version: int
    alias: str
    previous_version: int
    actor: str
    time_us: int
    details: dict[str, str] = field(default_factory=dict)
    trace_id: str = ""


@dataclass(frozen=True)
class Actor:
    """Who does a change, and under which trace (recorded in the audit trail)."""

    name: str
    trace_id: str = ""
