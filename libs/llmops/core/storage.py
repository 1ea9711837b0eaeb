"""SQL storage over SQLAlchemy: SQLite (WAL, busy timeout) by default, PostgreSQL by URL, and
versioned schema migrations.

SQLite write transactions start with BEGIN IMMEDIATE: a deferred transaction that later needs the
write lock fails at once with "database is locked" (the busy timeout cannot help a lock upgrade),
while an immediate one waits its turn. Blocking calls run in a thread (`Database.run`) so the
event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from llmops.core.errors import NotFound, Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
BUSY_TIMEOUT_MS = 30_000


def sqlite_url(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_size=8, max_overflow=8,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # an acknowledged write survives power loss too
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return sa.create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)


def fetch_one(conn: Connection, query, *, missing: str, lock: bool = False):
    """The one row `query` selects (locked for the transaction when `lock`), or NOT_FOUND saying
    `missing`."""
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(missing)
    return row


@dataclass(frozen=True)
class Migration:
    """One schema step; `apply` runs inside the migration transaction."""

    version: int
    description: str
    apply: Callable[[Connection], None]


# Schemas are written as their history: a store declares its tables as migration 1 created them,
# freezes that schema for migration 1 (`freeze`), then declares each later change where its
# migration is (`add_column`, `create_table`). The tables the store queries are today's schema;
# what each migration creates never changes as the tables grow.


def freeze(meta: sa.MetaData) -> Callable[[Connection], None]:
    """The migration step that creates `meta`'s tables as they are now (a copy, unchanged by
    columns the tables gain later)."""
    frozen = sa.MetaData()
    for table in meta.sorted_tables:
        table.to_metadata(frozen)
    return frozen.create_all


def add_column(table: sa.Table, column: sa.Column) -> Callable[[Connection], None]:
    """Declare `column` on `table` (today's schema) and return the migration step that adds it to
    an existing database. A NOT NULL column needs a `server_default` for the rows already there."""
    table.append_column(column)

    def apply(conn: Connection) -> None:
        ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {ddl}"))

    return apply


def steps(*apply: Callable[[Connection], None]) -> Callable[[Connection], None]:
    """Several migration steps as one migration."""
    def run(conn: Connection) -> None:
        for step in apply:
            step(conn)

    return run


_migrations_table = sa.Table(
    "schema_migrations", sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)


class Database:
    """An engine plus transaction helpers; `write()` for changes, `read()` for queries."""

    def __init__(self, url: str):
        self.url = url
        self.engine = create_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(write=True) as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    async def run(self, fn: Callable[..., T], *args) -> T:
        """Run blocking store code in a worker thread; connection failures become UNAVAILABLE."""
        try:
            return await asyncio.to_thread(fn, *args)
        except sa.exc.OperationalError as exc:
            raise self._unavailable(exc) from None

    async def run_read(self, fn: Callable[..., T], *args) -> T:
        """Run a short indexed read. On SQLite in WAL mode a reader never waits for a lock, so it
        runs inline on the event loop (a thread hop would cost more than the query); on a server
        database it goes to a worker thread like any other call."""
        if not self.is_sqlite:
            return await self.run(fn, *args)
        try:
            return fn(*args)
        except sa.exc.OperationalError as exc:
            raise self._unavailable(exc) from None

    @staticmethod
    def _unavailable(exc: sa.exc.OperationalError) -> Unavailable:
        if "locked" in str(exc.orig):
            log.error("database still locked after %d ms", BUSY_TIMEOUT_MS)
        log.warning("database error: %s", exc.orig)
        return Unavailable("the service's database is not reachable; retry shortly")

    def migrate(self, migrations: Sequence[Migration]) -> int:
        """Apply pending migrations in order, each in its own transaction; returns the version."""
        versions = [m.version for m in migrations]
        if versions != sorted(set(versions)):
            raise ValueError("migration versions must be unique and increasing")
        with self.write() as conn:
            _migrations_table.create(conn, checkfirst=True)
        current = 0
        for m in migrations:
            with self.write() as conn:
                if not self.is_sqlite:  # one migrator at a time across replicas
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(727274)"))
                done = conn.execute(sa.select(_migrations_table.c.version).where(
                    _migrations_table.c.version == m.version)).first()
                if done is None:
                    log.info("applying migration %d: %s", m.version, m.description)
                    m.apply(conn)
                    conn.execute(_migrations_table.insert().values(version=m.version, description=m.description))
            current = m.version
        return current

    def schema_version(self) -> int:
        with self.read() as conn:
            if not sa.inspect(conn).has_table("schema_migrations"):
                return 0
            return conn.execute(sa.select(sa.func.max(_migrations_table.c.version))).scalar() or 0

    def dispose(self) -> None:
        self.engine.dispose()
