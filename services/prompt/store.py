"""Templates, their immutable versions and aliases, in SQL. A version's body (messages, variables,
context and retrieval specs) is stored as one JSON document."""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from llmops.core.gates import AliasGate, Approval
from llmops.core.names import VersionRef
from llmops.core.storage import Database, Migration, add_column, freeze, steps
from llmops.core.timeutil import now_us
from llmops.core.versioned import Versioned, pointing

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
    sa.UniqueConstraint("template_id", "request_id", name="uq_template_version_request"),
)
aliases = sa.Table(
    "template_aliases", meta,
    sa.Column("template_id", sa.Integer, sa.ForeignKey("templates.id"), primary_key=True),
    sa.Column("alias", sa.String(63), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)
CREATE_TEMPLATES = freeze(meta)  # migration 1: the tables above, as they were

# Migration 2: reviews (versions that existed before start pending) and the audit log, written
# in the same transaction as what it records.
ADD_REVIEWS = steps(*(add_column(versions, c) for c in (
    sa.Column("approval", sa.String(32), nullable=False, server_default=Approval.PENDING_APPROVAL.value),
    sa.Column("reviewer", sa.String(200), nullable=False, server_default=""),
    sa.Column("review_comment", sa.Text, nullable=False, server_default=""),
    sa.Column("review_time_us", sa.BigInteger, nullable=False, server_default="0"),
)))
events = sa.Table(
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

MIGRATIONS = [Migration(1, "templates, versions, aliases", CREATE_TEMPLATES),
              Migration(2, "version reviews and the audit log", steps(ADD_REVIEWS, events.create))]


class EventType:
    VERSION_CREATED = "version_created"
    VERSION_APPROVED = "version_approved"
    VERSION_REJECTED = "version_rejected"
    ALIAS_SET = "alias_set"
    ALIAS_DELETED = "alias_deleted"


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


RESOURCES = Versioned("prompt template", templates, versions, aliases, fk="template_id", state="approval",
                      list_hint="llmops prompts list")


class TemplateStore:
    def __init__(self, db: Database):
        self.db = db

    def migrate(self) -> int:
        return self.db.migrate(MIGRATIONS)

    @staticmethod
    def _template(conn: Connection, row) -> TemplateRecord:
        return TemplateRecord(row.name, row.description, row.latest_version, RESOURCES.alias_map(conn, row.id),
                              row.create_time_us)

    @staticmethod
    def _version(name: str, row, alias_map: dict[str, int]) -> VersionRecord:
        return VersionRecord(name, row.version, json.loads(row.body), pointing(alias_map, row.version),
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
            return self._template(conn, RESOURCES.insert_parent(conn, name, description=description,
                                                                create_time_us=now_us()))

    def get(self, name: str) -> TemplateRecord:
        with self.db.read() as conn:
            return self._template(conn, RESOURCES.parent(conn, name))

    def list(self, after: str | None, limit: int) -> list[TemplateRecord]:
        with self.db.read() as conn:
            return [self._template(conn, r) for r in RESOURCES.list_parents(conn, after, limit)]

    def add_version(self, name: str, body: dict, created_by: str, request_id: str | None) -> VersionRecord:
        with self.db.write() as conn:
            parent = RESOURCES.parent(conn, name, lock=True)
            vrow = RESOURCES.prior(conn, parent, request_id)
            if vrow is None:
                vrow = RESOURCES.insert_version(conn, parent, request_id, body=json.dumps(body, sort_keys=True),
                                                created_by=created_by, create_time_us=now_us())
                self._emit(conn, name, EventType.VERSION_CREATED, created_by, vrow.version)
            return self._version(name, vrow, RESOURCES.alias_map(conn, parent.id))

    def get_version(self, ref: VersionRef) -> VersionRecord:
        with self.db.read() as conn:
            vrow, alias_map = RESOURCES.resolve(conn, RESOURCES.parent(conn, ref.id), ref.version, ref.alias)
            return self._version(ref.id, vrow, alias_map)

    def review_version(self, actor: str, ref: VersionRef, approve: bool, comment: str,
                       gate: AliasGate) -> VersionRecord:
        """Approve or reject a version (the gate's rules), with an audit event."""
        with self.db.write() as conn:
            parent = RESOURCES.parent(conn, ref.id, lock=True)
            vrow, alias_map = RESOURCES.resolve(conn, parent, ref.version, ref.alias)
            reviewed = RESOURCES.review(conn, parent, vrow, approve, actor, comment, gate)
            if reviewed is not None:
                self._emit(conn, ref.id, EventType.VERSION_APPROVED if approve else EventType.VERSION_REJECTED,
                           actor, vrow.version, comment=comment)
                vrow = reviewed
            return self._version(ref.id, vrow, alias_map)

    def list_events(self, template: str | None, after: int, limit: int) -> list[EventRecord]:
        with self.db.read() as conn:
            if template is not None:
                RESOURCES.parent(conn, template)  # NOT_FOUND for an unknown template
            q = sa.select(events).where(events.c.sequence > after).order_by(events.c.sequence).limit(limit)
            if template is not None:
                q = q.where(events.c.template == template)
            return [EventRecord(r.sequence, r.template, r.type, r.version, r.alias, r.previous_version, r.actor,
                                r.comment, r.time_us) for r in conn.execute(q).all()]

    def list_versions(self, name: str, before: int | None, limit: int) -> list[VersionRecord]:
        with self.db.read() as conn:
            parent = RESOURCES.parent(conn, name)
            alias_map = RESOURCES.alias_map(conn, parent.id)
            return [self._version(name, r, alias_map) for r in RESOURCES.list_versions(conn, parent, before, limit)]

    def set_alias(self, actor: str, name: str, alias: str, version: int, gate: AliasGate) -> TemplateRecord:
        """Point `alias` at `version` (the gate decides for protected aliases), with an audit event."""
        with self.db.write() as conn:
            parent = RESOURCES.parent(conn, name, lock=True)
            previous = RESOURCES.set_alias(conn, parent, alias, version, gate)
            self._emit(conn, name, EventType.ALIAS_SET, actor, version, alias, previous)
            return self._template(conn, parent)

    def delete_alias(self, actor: str, name: str, alias: str) -> TemplateRecord:
        """Remove `alias`, with an audit event (the caller has checked who may)."""
        with self.db.write() as conn:
            parent = RESOURCES.parent(conn, name, lock=True)
            previous = RESOURCES.delete_alias(conn, parent, alias)
            self._emit(conn, name, EventType.ALIAS_DELETED, actor, alias=alias, previous_version=previous)
            return self._template(conn, parent)
