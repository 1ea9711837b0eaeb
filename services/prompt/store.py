"""Templates, their immutable versions and aliases, in SQL. A version's body (messages, variables,
context and retrieval specs) is stored as one JSON document."""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from llmops.core.errors import AlreadyExists, NotFound
from llmops.core.gates import AliasGate, Approval
from llmops.core.names import VersionRef
from llmops.core.storage import Database, Migration, add_columns, fetch_one
from llmops.core.timeutil import now_us

meta = sa.MetaData()
templates = sa.Table(
    "templates", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(63), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("latest_version", sa.Integer, nullable=False, default=0),
    sa.Column("create_time_us", sa.BigInteger, nullable=False),
)
versions = sa.Table(
    "template_versions", meta,
    sa.Column("template_id", sa.Integer, sa.ForeignKey("templates.id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("create_time_us", sa.BigInteger, nullable=False),
    sa.Column("request_id", sa.String(128)),
    sa.Column("approval", sa.String(32), nullable=False, default=Approval.PENDING_APPROVAL.value),
    sa.Column("reviewer", sa.String(200), nullable=False, default=""),
    sa.Column("review_comment", sa.Text, nullable=False, default=""),
    sa.Column("review_time_us", sa.BigInteger, nullable=False, default=0),
    sa.UniqueConstraint("template_id", "request_id", name="uq_template_version_request"),
)
aliases = sa.Table(
    "template_aliases", meta,
    sa.Column("template_id", sa.Integer, sa.ForeignKey("templates.id"), primary_key=True),
    sa.Column("alias", sa.String(63), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)
events = sa.Table(  # the audit log: who created, reviewed and moved what, in the same transaction
    "template_events", meta,
    sa.Column("sequence", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("template", sa.String(63), nullable=False, index=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False, default=0),
    sa.Column("alias", sa.String(63), nullable=False, default=""),
    sa.Column("previous_version", sa.Integer, nullable=False, default=0),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.Column("time_us", sa.BigInteger, nullable=False),
)


def _add_reviews(conn) -> None:
    """Databases created before reviews existed get the columns (their versions start pending)
    and the audit log; new ones have both from migration 1."""
    add_columns(conn, "template_versions", {
        "approval": "VARCHAR(32) NOT NULL DEFAULT 'pending_approval'", "reviewer": "VARCHAR(200) NOT NULL DEFAULT ''",
        "review_comment": "TEXT NOT NULL DEFAULT ''", "review_time_us": "BIGINT NOT NULL DEFAULT 0"})
    events.create(conn, checkfirst=True)


MIGRATIONS = [Migration(1, "templates, versions, aliases", lambda conn: meta.create_all(conn)),
              Migration(2, "version reviews and the audit log", _add_reviews)]


class EventType:
    VERSION_CREATED = "version_created"
    VERSION_APPROVED = "version_approved"
    VERSION_REJECTED = "version_rejected"
    ALIAS_SET = "alias_set"


@dataclass(frozen=True)
class EventRecord:
    sequence: int
    template: str
    type: str
    version: int
    alias: str
    previous_version: int
    actor: str
    comment: str
    time_us: int


@dataclass(frozen=True)
class TemplateRecord:
    name: str
    description: str
    latest_version: int
    aliases: dict[str, int]
    create_time_us: int


@dataclass(frozen=True)
class VersionRecord:
    template: str
    version: int
    body: dict  # messages, variables, context, retrieval
    aliases: tuple[str, ...]
    created_by: str
    create_time_us: int
    approval: str = Approval.PENDING_APPROVAL.value
    reviewer: str = ""
    review_comment: str = ""
    review_time_us: int = 0


class TemplateStore:
    def __init__(self, db: Database):
        self.db = db

    def migrate(self) -> int:
        return self.db.migrate(MIGRATIONS)

    def _row(self, conn: Connection, name: str, lock: bool = False):
        return fetch_one(conn, sa.select(templates).where(templates.c.name == name), lock=lock,
                         missing=f"prompt template {name!r} does not exist; create it first or check "
                                 "`llmops prompts list`")

    def _aliases(self, conn: Connection, pk: int) -> dict[str, int]:
        return dict(conn.execute(sa.select(aliases.c.alias, aliases.c.version).where(aliases.c.template_id == pk)).all())

    def _template(self, conn: Connection, row) -> TemplateRecord:
        return TemplateRecord(row.name, row.description, row.latest_version, self._aliases(conn, row.id),
                              row.create_time_us)

    def _version(self, conn: Connection, name: str, row, alias_map: dict[str, int]) -> VersionRecord:
        return VersionRecord(name, row.version, json.loads(row.body),
                             tuple(sorted(a for a, v in alias_map.items() if v == row.version)),
                             row.created_by, row.create_time_us, row.approval, row.reviewer, row.review_comment,
                             row.review_time_us)

    @staticmethod
    def _emit(conn: Connection, template: str, type_: str, actor: str, version: int = 0, alias: str = "",
              previous_version: int = 0, comment: str = "") -> None:
        conn.execute(events.insert().values(template=template, type=type_, version=version, alias=alias,
                                            previous_version=previous_version, actor=actor, comment=comment[:2000],
                                            time_us=now_us()))

    def create(self, name: str, description: str) -> TemplateRecord:
        with self.db.write() as conn:
            if conn.execute(sa.select(templates.c.id).where(templates.c.name == name)).first():
                raise AlreadyExists(f"prompt template {name!r} already exists; add a version to it instead")
            conn.execute(templates.insert().values(name=name, description=description, latest_version=0,
                                                   create_time_us=now_us()))
            return self._template(conn, self._row(conn, name))

    def get(self, name: str) -> TemplateRecord:
        with self.db.read() as conn:
            return self._template(conn, self._row(conn, name))

    def list(self, after: str | None, limit: int) -> list[TemplateRecord]:
        with self.db.read() as conn:
            q = sa.select(templates).order_by(templates.c.name).limit(limit)
            if after is not None:
                q = q.where(templates.c.name > after)
            return [self._template(conn, r) for r in conn.execute(q).all()]

    def add_version(self, name: str, body: dict, created_by: str, request_id: str | None) -> VersionRecord:
        with self.db.write() as conn:
            row = self._row(conn, name, lock=True)
            if request_id:
                prior = conn.execute(sa.select(versions).where(
                    versions.c.template_id == row.id, versions.c.request_id == request_id)).first()
                if prior is not None:  # a retried create
                    return self._version(conn, name, prior, self._aliases(conn, row.id))
            number = row.latest_version + 1
            conn.execute(versions.insert().values(template_id=row.id, version=number, body=json.dumps(body, sort_keys=True),
                                                  created_by=created_by, create_time_us=now_us(), request_id=request_id))
            conn.execute(templates.update().where(templates.c.id == row.id).values(latest_version=number))
            self._emit(conn, name, EventType.VERSION_CREATED, created_by, number)
            vrow = conn.execute(sa.select(versions).where(versions.c.template_id == row.id,
                                                          versions.c.version == number)).one()
            return self._version(conn, name, vrow, self._aliases(conn, row.id))

    def _resolve(self, conn: Connection, row, ref: VersionRef):
        alias_map = self._aliases(conn, row.id)
        number = ref.version if ref.version is not None else alias_map.get(ref.alias or "")
        if number is None:
            raise NotFound(f"prompt template {ref.id!r} has no alias {ref.alias!r}")
        vrow = conn.execute(sa.select(versions).where(versions.c.template_id == row.id,
                                                      versions.c.version == number)).first()
        if vrow is None:
            raise NotFound(f"prompt template {ref.id!r} has no version {number}")
        return vrow, alias_map

    def get_version(self, ref: VersionRef) -> VersionRecord:
        with self.db.read() as conn:
            vrow, alias_map = self._resolve(conn, self._row(conn, ref.id), ref)
            return self._version(conn, ref.id, vrow, alias_map)

    def review_version(self, actor: str, ref: VersionRef, approve: bool, comment: str,
                       gate: AliasGate) -> VersionRecord:
        """Approve or reject a version (the gate's rules), with an audit event."""
        with self.db.write() as conn:
            row = self._row(conn, ref.id, lock=True)
            vrow, alias_map = self._resolve(conn, row, ref)
            name = f"{ref.id}@{vrow.version}"
            if gate.check_review(name, vrow.approval, approve, vrow.reviewer):
                if not approve:
                    gate.check_reject(name, [a for a, v in alias_map.items() if v == vrow.version])
                new = Approval.APPROVED if approve else Approval.REJECTED
                conn.execute(versions.update().where(versions.c.template_id == row.id,
                                                     versions.c.version == vrow.version)
                             .values(approval=new.value, reviewer=actor, review_comment=comment,
                                     review_time_us=now_us()))
                self._emit(conn, ref.id, EventType.VERSION_APPROVED if approve else EventType.VERSION_REJECTED,
                           actor, vrow.version, comment=comment)
                vrow, alias_map = self._resolve(conn, row, VersionRef(ref.id, vrow.version, None))
            return self._version(conn, ref.id, vrow, alias_map)

    def list_events(self, template: str | None, after: int, limit: int) -> list[EventRecord]:
        with self.db.read() as conn:
            if template is not None:
                self._row(conn, template)  # NOT_FOUND for an unknown template
            q = sa.select(events).where(events.c.sequence > after).order_by(events.c.sequence).limit(limit)
            if template is not None:
                q = q.where(events.c.template == template)
            return [EventRecord(r.sequence, r.template, r.type, r.version, r.alias, r.previous_version, r.actor,
                                r.comment, r.time_us) for r in conn.execute(q).all()]

    def list_versions(self, name: str, before: int | None, limit: int) -> list[VersionRecord]:
        with self.db.read() as conn:
            row = self._row(conn, name)
            alias_map = self._aliases(conn, row.id)
            q = (sa.select(versions).where(versions.c.template_id == row.id)
                 .order_by(versions.c.version.desc()).limit(limit))
            if before is not None:
                q = q.where(versions.c.version < before)
            return [self._version(conn, name, r, alias_map) for r in conn.execute(q).all()]

    def set_alias(self, actor: str, name: str, alias: str, version: int, gate: AliasGate) -> TemplateRecord:
        """Point `alias` at `version` (the gate decides for protected aliases), with an audit event."""
        with self.db.write() as conn:
            row = self._row(conn, name, lock=True)
            vrow = conn.execute(sa.select(versions.c.approval).where(
                versions.c.template_id == row.id, versions.c.version == version)).first()
            if vrow is None:
                raise NotFound(f"prompt template {name!r} has no version {version}")
            gate.check_target(alias, f"{name}@{version}", vrow.approval)
            previous = conn.execute(sa.select(aliases.c.version).where(
                aliases.c.template_id == row.id, aliases.c.alias == alias)).scalar()
            if previous is None:
                conn.execute(aliases.insert().values(template_id=row.id, alias=alias, version=version))
            else:
                conn.execute(aliases.update().where(aliases.c.template_id == row.id, aliases.c.alias == alias)
                             .values(version=version))
            self._emit(conn, name, EventType.ALIAS_SET, actor, version, alias, previous or 0)
            return self._template(conn, self._row(conn, name))
