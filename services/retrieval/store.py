"""Index metadata in SQL (the vectors live in Milvus): each index's settings, its version (bumped
by every change to its contents), counts, its sync cursor, and one row per document so that
counts stay exact and re-upserts are recognised."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from llmops.core.errors import AlreadyExists
from llmops.core.storage import Database, Migration, fetch_one, freeze
from llmops.core.timeutil import now_us

meta = sa.MetaData()

indexes = sa.Table(
    "indexes", meta,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("embedding_model", sa.Text, nullable=False),
    sa.Column("dimension", sa.Integer, nullable=False),
    sa.Column("chunk_size", sa.Integer, nullable=False),
    sa.Column("chunk_overlap", sa.Integer, nullable=False),
    sa.Column("metric", sa.String(16), nullable=False),
    sa.Column("collection", sa.String(255), nullable=False, unique=True),
    sa.Column("hybrid", sa.Boolean, nullable=False, default=False),
    sa.Column("version", sa.BigInteger, nullable=False, default=0),
    sa.Column("document_count", sa.BigInteger, nullable=False, default=0),
    sa.Column("chunk_count", sa.BigInteger, nullable=False, default=0),
    sa.Column("source_table_uri", sa.Text, nullable=False, default=""),
    sa.Column("source_table_version", sa.BigInteger, nullable=False, default=-1),
    sa.Column("create_time_us", sa.BigInteger, nullable=False),
    sa.Column("update_time_us", sa.BigInteger, nullable=False),
)

documents = sa.Table(
    "documents", meta,
    sa.Column("index_name", sa.String(63), sa.ForeignKey("indexes.name", ondelete="CASCADE"), primary_key=True),
    sa.Column("document_id", sa.String(256), primary_key=True),
    sa.Column("chunk_count", sa.Integer, nullable=False),
    sa.Column("content_sha256", sa.String(64), nullable=False),
)

MIGRATIONS = [Migration(1, "indexes and documents", freeze(meta))]


@dataclass(frozen=True)
class IndexRecord:
    name: str
    embedding_model: str
    dimension: int
    chunk_size: int
    chunk_overlap: int
    metric: str
    collection: str
    hybrid: bool
    version: int
    document_count: int
    chunk_count: int
    source_table_uri: str
    source_table_version: int
    create_time_us: int
    update_time_us: int


def _record(row) -> IndexRecord:
    return IndexRecord(**{c: getattr(row, c) for c in IndexRecord.__dataclass_fields__})


class IndexStore:
    def __init__(self, db: Database):
        self.db = db

    def migrate(self) -> int:
        return self.db.migrate(MIGRATIONS)

    def _row(self, conn: Connection, name: str, lock: bool = False):
        return fetch_one(conn, sa.select(indexes).where(indexes.c.name == name), lock=lock,
                         missing=f"index {name!r} does not exist; create it first or check `llmops index list`")

    def create(self, record: IndexRecord) -> IndexRecord:
        with self.db.write() as conn:
            if conn.execute(sa.select(indexes.c.name).where(indexes.c.name == record.name)).first():
                raise AlreadyExists(f"index {record.name!r} already exists")
            if conn.execute(sa.select(indexes.c.name).where(indexes.c.collection == record.collection)).first():
                raise AlreadyExists(f"index {record.name!r} would share Milvus collection {record.collection!r} "
                                    "with another index; pick another name")
            conn.execute(indexes.insert().values(**record.__dict__))
            return _record(self._row(conn, record.name))

    def get(self, name: str) -> IndexRecord:
        with self.db.read() as conn:
            return _record(self._row(conn, name))

    def list(self, after: str | None, limit: int) -> list[IndexRecord]:
        with self.db.read() as conn:
            q = sa.select(indexes).order_by(indexes.c.name).limit(limit)
            if after is not None:
                q = q.where(indexes.c.name > after)
            return [_record(r) for r in conn.execute(q).all()]

    def delete(self, name: str) -> IndexRecord:
        with self.db.write() as conn:
            row = _record(self._row(conn, name, lock=True))
            conn.execute(documents.delete().where(documents.c.index_name == name))
            conn.execute(indexes.delete().where(indexes.c.name == name))
            return row

    def known_hashes(self, name: str, ids: Sequence[str]) -> dict[str, str]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(documents.c.document_id, documents.c.content_sha256).where(
                documents.c.index_name == name, documents.c.document_id.in_(list(ids))))
            return dict(rows.all())

    def record_upsert(self, name: str, docs: Sequence[tuple[str, int, str]]) -> IndexRecord:
        """Store (document id, chunk count, content hash) rows and bump the index version."""
        with self.db.write() as conn:
            self._row(conn, name, lock=True)
            ids = [d[0] for d in docs]
            conn.execute(documents.delete().where(documents.c.index_name == name, documents.c.document_id.in_(ids)))
            if docs:
                conn.execute(documents.insert(), [
                    {"index_name": name, "document_id": d, "chunk_count": n, "content_sha256": h} for d, n, h in docs])
            return self._bump(conn, name)

    def record_delete(self, name: str, ids: Sequence[str]) -> tuple[int, IndexRecord]:
        with self.db.write() as conn:
            self._row(conn, name, lock=True)
            gone = conn.execute(documents.delete().where(
                documents.c.index_name == name, documents.c.document_id.in_(list(ids)))).rowcount
            return gone, self._bump(conn, name)

    def set_source(self, name: str, uri: str, version: int) -> IndexRecord:
        """Record that the index now reflects `version` of the table at `uri` (a completed pass)."""
        with self.db.write() as conn:
            self._row(conn, name, lock=True)
            conn.execute(indexes.update().where(indexes.c.name == name).values(
                source_table_uri=uri, source_table_version=version, update_time_us=now_us()))
            return _record(self._row(conn, name))

    def _bump(self, conn: Connection, name: str) -> IndexRecord:
        counts = conn.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(documents.c.chunk_count), 0))
                              .where(documents.c.index_name == name)).one()
        conn.execute(indexes.update().where(indexes.c.name == name).values(
            version=indexes.c.version + 1, document_count=counts[0], chunk_count=counts[1], update_time_us=now_us()))
        return _record(self._row(conn, name))
