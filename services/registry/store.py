"""The registry's SQL store: models, versions, aliases and the event log (also the audit trail).

Every change and its event are written in one transaction, so the audit trail and WatchEvents
never miss or invent a change. Changes to one model lock its row (SQLite: the write lock), so
concurrent alias moves and version numbers are serialised per model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from llmops.core.errors import FailedPrecondition, InvalidArgument, NotFound
from llmops.core.gates import AliasGate
from llmops.core.storage import Database, Migration, add_column, freeze, steps
from llmops.core.timeutil import now_us
from llmops.core.versioned import Versioned, pointing
from services.registry.domain import (
    Actor,
    EventRecord,
    EventType,
    FileEntry,
    ImportSource,
    Kind,
    Lineage,
    ModelRecord,
    Review,
    Status,
    VersionRecord,
)
from services.registry.evidence import Comparison, Evidence, Gate, unmet
from services.registry.names import VersionRef, parse_version_ref, version_name

meta = sa.MetaData()

models = sa.Table(
    "models", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(63), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("labels", sa.Text, nullable=False, default="{}"),
    sa.Column("latest_version", sa.Integer, nullable=False, default=0),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("create_time_us", sa.BigInteger, nullable=False),
    sa.Column("update_time_us", sa.BigInteger, nullable=False),
)

versions = sa.Table(
    "model_versions", meta,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("files", sa.Text, nullable=False),
    sa.Column("artifact_digest", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("format", sa.String(64), nullable=False),
    sa.Column("pipeline_spec", sa.Text),
    sa.Column("base_version", sa.String(200), nullable=False, default=""),
    sa.Column("dataset_uri", sa.Text, nullable=False, default=""),
    sa.Column("dataset_version", sa.String(200), nullable=False, default=""),
    sa.Column("tuning_job_id", sa.String(200), nullable=False, default=""),
    sa.Column("metrics", sa.Text, nullable=False, default="{}"),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("reviewer", sa.String(200)),
    sa.Column("review_comment", sa.Text),
    sa.Column("review_time_us", sa.BigInteger),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("create_time_us", sa.BigInteger, nullable=False),
    sa.Column("request_id", sa.String(128)),
    sa.UniqueConstraint("model_id", "request_id", name="uq_version_request"),
)

aliases = sa.Table(
    "aliases", meta,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("alias", sa.String(63), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

events = sa.Table(
    "events", meta,
    sa.Column("sequence", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("model", sa.String(63), nullable=False),
    sa.Column("version", sa.Integer, nullable=False, default=0),
    sa.Column("alias", sa.String(63), nullable=False, default=""),
    sa.Column("previous_version", sa.Integer, nullable=False, default=0),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("time_us", sa.BigInteger, nullable=False),
    sa.Column("details", sa.Text, nullable=False, default="{}"),
    sa.Column("trace_id", sa.String(32), nullable=False, default=""),
    sa.Index("events_by_model", "model", "sequence"),
)

MIGRATIONS = [
    Migration(1, "models, versions, aliases, events", freeze(meta)),  # the tables above, as they were
    Migration(2, "the file an imported version was converted from",  # JSON of an ImportSource
              add_column(versions, sa.Column("import_source", sa.Text))),
    Migration(3, "approval gates, the evaluation records they read, canaries",  # gate: JSON of an evidence.Gate
              steps(add_column(models, sa.Column("gate", sa.Text)), lambda conn: evaluation_records.create(conn),
                    lambda conn: canaries.create(conn))),
]
# declared after migration 1 froze the first schema; migration 3 creates it
evaluation_records = sa.Table(
    "evaluation_records", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("evaluation", sa.String(64), nullable=False),
    sa.Column("dataset_uri", sa.Text, nullable=False),
    sa.Column("dataset_version", sa.String(200), nullable=False),
    sa.Column("metrics", sa.Text, nullable=False),
    sa.Column("comparisons", sa.Text, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("recorded_by", sa.String(200), nullable=False),
    sa.Column("time_us", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("model_id", "version", "evaluation", name="uq_evaluation_record"),
)
canaries = sa.Table(
    "canaries", meta,
    sa.Column("model_id", sa.Integer, primary_key=True),
    sa.Column("alias", sa.String(63), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("percent", sa.Integer, nullable=False),
)


RESOURCES = Versioned("model", models, versions, aliases, fk="model_id", state="status",
                      list_hint="llmops models list")


class RegistryStore:
    """Blocking store operations; the servicer runs them through `Database.run`."""

    def __init__(self, db: Database):
        self.db = db

    def migrate(self) -> int:
        return self.db.migrate(MIGRATIONS)

    # -- reads ---------------------------------------------------------------------------------

    @staticmethod
    def _model(conn: Connection, row) -> ModelRecord:
        return ModelRecord(
            id=row.name, kind=Kind(row.kind), description=row.description, labels=json.loads(row.labels),
            aliases=RESOURCES.alias_map(conn, row.id), latest_version=row.latest_version, created_by=row.created_by,
            create_time_us=row.create_time_us, update_time_us=row.update_time_us,
            gate=json.loads(row.gate) if row.gate else None,
            canaries={r.alias: (r.version, r.percent)
                      for r in conn.execute(sa.select(canaries).where(canaries.c.model_id == row.id))},
        )

    @staticmethod
    def _version(model_id: str, row, alias_map: dict[str, int]) -> VersionRecord:
        review = Review(row.reviewer, row.review_comment or "", row.review_time_us) if row.reviewer else None
        return VersionRecord(
            model=model_id, version=row.version,
            files=tuple(FileEntry(*f) for f in json.loads(row.files)),
            artifact_digest=row.artifact_digest, size_bytes=row.size_bytes, format=row.format,
            pipeline_spec=json.loads(row.pipeline_spec) if row.pipeline_spec else None,
            lineage=Lineage(row.base_version, row.dataset_uri, row.dataset_version, row.tuning_job_id,
                            ImportSource(**json.loads(row.import_source)) if row.import_source else None),
            metrics=json.loads(row.metrics), status=Status(row.status), review=review,
            description=row.description, aliases=pointing(alias_map, row.version),
            created_by=row.created_by, create_time_us=row.create_time_us,
        )

    def get_model(self, model_id: str) -> ModelRecord:
        with self.db.read() as conn:
            return self._model(conn, RESOURCES.parent(conn, model_id))

    def list_models(self, after: str | None, limit: int, kind: Kind | None) -> list[ModelRecord]:
        with self.db.read() as conn:
            where = [models.c.kind == kind.value] if kind is not None else []
            return [self._model(conn, r) for r in RESOURCES.list_parents(conn, after, limit, *where)]

    @staticmethod
    def _resolve(conn: Connection, ref: VersionRef, *, lock: bool = False):
        mrow = RESOURCES.parent(conn, ref.model, lock=lock)
        return (mrow, *RESOURCES.resolve(conn, mrow, ref.version, ref.alias))

    def get_version(self, ref: VersionRef) -> VersionRecord:
        with self.db.read() as conn:
            _, vrow, alias_map = self._resolve(conn, ref)
            return self._version(ref.model, vrow, alias_map)

    def list_versions(self, model_id: str, before: int | None, limit: int) -> list[VersionRecord]:
        with self.db.read() as conn:
            mrow = RESOURCES.parent(conn, model_id)
            alias_map = RESOURCES.alias_map(conn, mrow.id)
            return [self._version(model_id, r, alias_map) for r in RESOURCES.list_versions(conn, mrow, before, limit)]

    def list_events(self, model_id: str | None, after: int, limit: int) -> list[EventRecord]:
        with self.db.read() as conn:
            q = sa.select(events).where(events.c.sequence > after).order_by(events.c.sequence).limit(limit)
            if model_id:
                q = q.where(events.c.model == model_id)
            return [_event(r) for r in conn.execute(q).all()]

    def last_sequence(self) -> int:
        with self.db.read() as conn:
            return conn.execute(sa.select(sa.func.max(events.c.sequence))).scalar() or 0

    # -- writes --------------------------------------------------------------------------------

    @staticmethod
    def _emit(conn: Connection, actor: Actor, type_: EventType, model: str, *, version: int = 0,
              alias: str = "", previous_version: int = 0, details: dict[str, str] | None = None) -> None:
        conn.execute(events.insert().values(
            type=type_.value, model=model, version=version, alias=alias, previous_version=previous_version,
            actor=actor.name, time_us=now_us(), details=json.dumps(details or {}), trace_id=actor.trace_id,
        ))

    @staticmethod
    def _touch(conn: Connection, mrow) -> None:
        conn.execute(models.update().where(models.c.id == mrow.id).values(update_time_us=now_us()))

    def create_model(self, actor: Actor, model_id: str, kind: Kind, description: str, labels: dict[str, str],
                     gate: Gate | None = None) -> ModelRecord:
        with self.db.write() as conn:
            t = now_us()
            row = RESOURCES.insert_parent(conn, model_id, kind=kind.value, description=description,
                                          labels=json.dumps(labels, sort_keys=True), created_by=actor.name,
                                          create_time_us=t, update_time_us=t,
                                          **({"gate": json.dumps(gate.to_dict())} if gate else {}))
            details = {"kind": kind.value} | ({"gate": gate.describe()[:500]} if gate else {})
            self._emit(conn, actor, EventType.MODEL_CREATED, model_id, details=details)
            return self._model(conn, row)

    def update_model(self, actor: Actor, model_id: str, description: str | None, labels: dict[str, str] | None,
                     gate: tuple[Gate | None] = ()) -> ModelRecord:
        """`gate`: empty to leave it, (None,) to remove it, (Gate,) to set it."""
        with self.db.write() as conn:
            row = RESOURCES.parent(conn, model_id, lock=True)
            values: dict = {"update_time_us": now_us()}
            if description is not None:
                values["description"] = description
            if labels is not None:
                values["labels"] = json.dumps(labels, sort_keys=True)
            details = {k: "changed" for k in values if k != "update_time_us"}
            if gate:
                values["gate"] = json.dumps(gate[0].to_dict()) if gate[0] else None
                details["gate"] = gate[0].describe()[:500] if gate[0] else "removed"
            conn.execute(models.update().where(models.c.id == row.id).values(**values))
            self._emit(conn, actor, EventType.MODEL_UPDATED, model_id, details=details)
            return self._model(conn, RESOURCES.parent(conn, model_id))

    def create_version(
        self, actor: Actor, model_id: str, *, kind: Kind, files: Sequence[FileEntry], artifact_digest: str,
        size_bytes: int, format_: str, pipeline_spec: dict | None, lineage: Lineage, metrics: dict[str, float],
        description: str, request_id: str | None,
    ) -> VersionRecord:
        with self.db.write() as conn:
            mrow = RESOURCES.parent(conn, model_id, lock=True)
            prior = RESOURCES.prior(conn, mrow, request_id)
            if prior is not None:  # a retry of a create that already succeeded
                return self._version(model_id, prior, RESOURCES.alias_map(conn, mrow.id))
            if Kind(mrow.kind) is not kind:
                raise FailedPrecondition(
                    f"model {model_id!r} is a {mrow.kind}; its versions need "
                    + ("a pipeline_spec" if mrow.kind == Kind.PIPELINE.value else "artifact files")
                )
            if lineage.base_version:
                self._check_base(conn, lineage.base_version)
            t = now_us()
            vrow = RESOURCES.insert_version(
                conn, mrow, request_id, files=json.dumps([[f.path, f.sha256, f.size_bytes] for f in files]),
                artifact_digest=artifact_digest, size_bytes=size_bytes, format=format_,
                pipeline_spec=json.dumps(pipeline_spec, sort_keys=True) if pipeline_spec is not None else None,
                base_version=lineage.base_version, dataset_uri=lineage.dataset_uri,
                dataset_version=lineage.dataset_version, tuning_job_id=lineage.tuning_job_id,
                import_source=json.dumps(asdict(lineage.source), sort_keys=True) if lineage.source else None,
                metrics=json.dumps(metrics, sort_keys=True), description=description, created_by=actor.name,
                create_time_us=t)
            self._touch(conn, mrow)
            self._emit(conn, actor, EventType.VERSION_CREATED, model_id, version=vrow.version,
                       details={"digest": artifact_digest} if artifact_digest else {})
            return self._version(model_id, vrow, RESOURCES.alias_map(conn, mrow.id))

    def _check_base(self, conn: Connection, base: str) -> None:
        try:
            self._resolve(conn, parse_version_ref(base))
        except NotFound as exc:
            raise NotFound(f"lineage base_version {base!r} does not exist: {exc.message}") from None

    def review_version(self, actor: Actor, ref: VersionRef, approve: bool, comment: str,
                       gate: AliasGate, override_gate: bool = False) -> VersionRecord:
        """With an approval gate on the model, approving needs a recorded evaluation that passes
        it (FAILED_PRECONDITION saying what is missing) unless `override_gate` (the servicer
        checked the caller is an admin); an override is audited with what it overrode."""
        with self.db.write() as conn:
            mrow, vrow, alias_map = self._resolve(conn, ref, lock=True)
            details = {"comment": comment[:500]}
            evidence_gate = Gate.from_dict(json.loads(mrow.gate)) if mrow.gate else None
            if approve and evidence_gate is not None and vrow.status == Status.PENDING_APPROVAL:
                name = version_name(ref.model, vrow.version)
                champion = alias_map.get(evidence_gate.champion_alias)
                why = unmet(evidence_gate, f"{ref.model}@{vrow.version}", self._evidence(conn, mrow, vrow.version),
                            version_name(ref.model, champion) if champion and champion != vrow.version else None)
                if why and not override_gate:
                    raise FailedPrecondition(f"{name} does not pass the approval gate ({evidence_gate.describe()}): "
                                             f"{why}. An admin may approve anyway with --override-gate and a comment")
                details["gate"] = "overridden: " + why[:400] if why else "passed"
            reviewed = RESOURCES.review(conn, mrow, vrow, approve, actor.name, comment, gate)
            if reviewed is None:
                return self._version(ref.model, vrow, alias_map)  # approving twice changes nothing
            self._emit(conn, actor, EventType.VERSION_APPROVED if approve else EventType.VERSION_REJECTED,
                       ref.model, version=vrow.version, details=details)
            return self._version(ref.model, reviewed, alias_map)

    # -- evaluation records --------------------------------------------------------------------

    @staticmethod
    def _evidence(conn: Connection, mrow, version: int, before: int | None = None, limit: int = 0,
                  evaluation: str | None = None) -> list[Evidence]:
        e = evaluation_records.c
        q = sa.select(evaluation_records).where(e.model_id == mrow.id, e.version == version).order_by(e.id.desc())
        if before is not None:
            q = q.where(e.id < before)
        if evaluation is not None:
            q = q.where(e.evaluation == evaluation)
        rows = conn.execute(q.limit(limit) if limit else q).all()
        return [Evidence(r.evaluation, mrow.name, r.version, r.dataset_uri, r.dataset_version, json.loads(r.metrics),
                         {k: Comparison(**v) for k, v in json.loads(r.comparisons).items()}, r.rows, r.recorded_by,
                         r.time_us, r.id) for r in rows]

    def record_evaluation(self, actor: Actor, ref: VersionRef, record: Evidence) -> Evidence:
        """Store `record` against the version (once per evaluation: a retry returns the stored one)."""
        with self.db.write() as conn:
            mrow, vrow, _ = self._resolve(conn, ref, lock=True)
            stored = self._evidence(conn, mrow, vrow.version, evaluation=record.evaluation)
            if stored:
                return stored[0]
            conn.execute(evaluation_records.insert().values(
                model_id=mrow.id, version=vrow.version, evaluation=record.evaluation, dataset_uri=record.dataset_uri,
                dataset_version=record.dataset_version, metrics=json.dumps(record.metrics),
                comparisons=json.dumps({k: asdict(v) for k, v in record.comparisons.items()}), rows=record.rows,
                recorded_by=actor.name, time_us=now_us()))
            self._emit(conn, actor, EventType.EVALUATION_RECORDED, ref.model, version=vrow.version, details={
                "evaluation": record.evaluation, "dataset": f"{record.dataset_uri}@{record.dataset_version}"[:500],
                **{k: f"{v:.4g}" for k, v in sorted(record.metrics.items())[:20]}})
            return self._evidence(conn, mrow, vrow.version, evaluation=record.evaluation)[0]

    def evaluation_records(self, ref: VersionRef, before: int | None = None, limit: int = 0) -> list[Evidence]:
        with self.db.read() as conn:
            mrow, vrow, _ = self._resolve(conn, ref)
            return self._evidence(conn, mrow, vrow.version, before, limit)

    def set_alias(self, actor: Actor, model_id: str, alias: str, version: int, gate: AliasGate) -> ModelRecord:
        with self.db.write() as conn:
            mrow = RESOURCES.parent(conn, model_id, lock=True)
            previous = RESOURCES.set_alias(conn, mrow, alias, version, gate)
            ended = self._end_canary(conn, mrow, alias)
            self._touch(conn, mrow)
            self._emit(conn, actor, EventType.ALIAS_SET, model_id, version=version, alias=alias,
                       previous_version=previous, details={"canary_ended": str(ended)} if ended else None)
            return self._model(conn, RESOURCES.parent(conn, model_id))

    @staticmethod
    def _end_canary(conn: Connection, mrow, alias: str) -> int:
        """End `alias`'s canary (the alias moved or went); the canary's version, 0 when none."""
        where = (canaries.c.model_id == mrow.id, canaries.c.alias == alias)
        found = conn.execute(sa.select(canaries.c.version).where(*where)).scalar()
        if found:
            conn.execute(canaries.delete().where(*where))
        return found or 0

    def set_canary(self, actor: Actor, model_id: str, alias: str, version: int, percent: int, reason: str,
                   gate: AliasGate) -> ModelRecord:
        """Send `percent` of `alias`'s traffic to `version` (0 ends the canary). A protected alias's
        canary must be an approved version, as the alias itself."""
        with self.db.write() as conn:
            mrow = RESOURCES.parent(conn, model_id, lock=True)
            current = RESOURCES.alias_map(conn, mrow.id).get(alias)
            if current is None:
                raise NotFound(f"model {model_id!r} has no alias {alias!r}; a canary shares an alias's traffic")
            if percent == 0:
                version = self._end_canary(conn, mrow, alias)
            else:
                if version == current:
                    raise InvalidArgument(f"{alias!r} already points to version {version}; a canary is another version")
                row = RESOURCES.version_row(conn, mrow, version)
                gate.check_target(alias, f"{model_id}@{version}", row.status)
                where = (canaries.c.model_id == mrow.id, canaries.c.alias == alias)
                if conn.execute(sa.select(canaries.c.version).where(*where)).first() is None:
                    conn.execute(canaries.insert().values(model_id=mrow.id, alias=alias, version=version,
                                                          percent=percent))
                else:
                    conn.execute(canaries.update().where(*where).values(version=version, percent=percent))
            self._touch(conn, mrow)
            self._emit(conn, actor, EventType.CANARY_SET, model_id, version=version, alias=alias,
                       previous_version=current, details={"percent": str(percent), "reason": reason[:500]})
            return self._model(conn, RESOURCES.parent(conn, model_id))

    def delete_alias(self, actor: Actor, model_id: str, alias: str) -> ModelRecord:
        with self.db.write() as conn:
            mrow = RESOURCES.parent(conn, model_id, lock=True)
            previous = RESOURCES.delete_alias(conn, mrow, alias)
            self._end_canary(conn, mrow, alias)
            self._touch(conn, mrow)
            self._emit(conn, actor, EventType.ALIAS_DELETED, model_id, alias=alias, previous_version=previous)
            return self._model(conn, RESOURCES.parent(conn, model_id))

    def record_upload(self, actor: Actor, model_id: str, entry: FileEntry, deduplicated: bool) -> None:
        with self.db.write() as conn:
            RESOURCES.parent(conn, model_id)
            self._emit(conn, actor, EventType.ARTIFACT_UPLOADED, model_id, details={
                "path": entry.path, "sha256": entry.sha256, "size_bytes": str(entry.size_bytes),
                "deduplicated": str(deduplicated).lower(),
            })


def _event(row) -> EventRecord:
    return EventRecord(
        sequence=row.sequence, type=EventType(row.type), model=row.model, version=row.version, alias=row.alias,
        previous_version=row.previous_version, actor=row.actor, time_us=row.time_us,
        details=json.loads(row.details), trace_id=row.trace_id,
    )
