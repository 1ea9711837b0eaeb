"""Templates, their immutable versions and aliases, in SQL. A version's body (messages, variables,
context and retrieval specs) is stored as one JSON document."""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from llmops.core.errors import AlreadyExists, NotFound
from llmops.core.names import VersionRef
from llmops.core.storage import Database, Migration, fetch_one
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
    sa.UniqueConstraint("template_id", "request_id", name="uq_template_version_request"),
)
aliases = sa.Table(
    "template_aliases", meta,
    sa.Column("template_id", sa.Integer, sa.ForeignKey("templates.id"), primary_key=True),
    sa.Column("alias", sa.String(63), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)
MIGRATIONS = [Migration(1, "templates, versions, aliases", lambda conn: meta.create_all(conn))]


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
                             row.created_by, row.create_time_us)

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
            vrow = conn.execute(sa.select(versions).where(versions.c.template_id == row.id,
                                                          versions.c.version == number)).one()
            return self._version(conn, name, vrow, self._aliases(conn, row.id))

    def get_version(self, ref: VersionRef) -> VersionRecord:
        with self.db.read() as conn:
            row = self._row(conn, ref.id)
            alias_map = self._aliases(conn, row.id)
            number = ref.version if ref.version is not None else alias_map.get(ref.alias or "")
            if number is None:
                raise NotFound(f"prompt template {ref.id!r} has no alias {ref.alias!r}")
            vrow = conn.execute(sa.select(versions).where(versions.c.template_id == row.id,
                                                          versions.c.version == number)).first()
            if vrow is None:
                raise NotFound(f"prompt template {ref.id!r} has no version {number}")
            return self._version(conn, ref.id, vrow, alias_map)

    def list_versions(self, name: str, before: int | None, limit: int) -> list[VersionRecord]:
        with self.db.read() as conn:
            row = self._row(conn, name)
            alias_map = self._aliases(conn, row.id)
            q = (sa.select(versions).where(versions.c.template_id == row.id)
                 .order_by(versions.c.version.desc()).limit(limit))
            if before is not None:
                q = q.where(versions.c.version < before)
            return [self._version(conn, name, r, alias_map) for r in conn.execute(q).all()]

    def set_alias(self, name: str, alias: str, version: int) -> TemplateRecord:
        with self.db.write() as conn:
            row = self._row(conn, name, lock=True)
            if version < 1 or version > row.latest_version:
                raise NotFound(f"prompt template {name!r} has no version {version}")
            updated = conn.execute(aliases.update().where(aliases.c.template_id == row.id, aliases.c.alias == alias)
                                   .values(version=version)).rowcount
            if not updated:
                conn.execute(aliases.insert().values(template_id=row.id, alias=alias, version=version))
            return self._template(conn, self._row(conn, name))
