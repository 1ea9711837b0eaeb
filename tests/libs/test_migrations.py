"""Every store's schema is its migrations: a new database and one created by the previous
release's migrations and then upgraded both end with exactly the tables and columns the store
declares (names, types, nullability, defaults for NOT NULL columns added later), on SQLite and
PostgreSQL, and rows written before the upgrade are still read. A column added to a table without
a migration fails here."""

from __future__ import annotations

import importlib

import pytest
import sqlalchemy as sa

from llmops.core.storage import Database

STORES = ("registry", "prompt", "feedback", "finetuning", "generation", "retrieval")


def _columns(db: Database) -> dict[str, dict[str, tuple[str, bool]]]:
    """table -> column -> (type affinity, nullable), as the database has them."""
    with db.read() as conn:
        inspector = sa.inspect(conn)
        return {t: {c["name"]: (_affinity(c["type"]), c["nullable"]) for c in inspector.get_columns(t)}
                for t in inspector.get_table_names() if t != "schema_migrations"}


def _affinity(type_: sa.types.TypeEngine) -> str:
    """The family a column type belongs to (dialects spell INTEGER, BIGINT, VARCHAR(63) apart)."""
    for family, types in (("int", (sa.Integer,)), ("float", (sa.Float, sa.Numeric)), ("bool", (sa.Boolean,)),
                          ("text", (sa.String, sa.Text))):
        if isinstance(type_, types):
            return family
    return type(type_).__name__.lower()


def _declared(meta: sa.MetaData, dialect) -> dict[str, dict[str, tuple[str, bool]]]:
    return {t.name: {c.name: (_affinity(c.type.dialect_impl(dialect)), bool(c.nullable)) for c in t.columns}
            for t in meta.sorted_tables}


def _normalise(schema: dict, sqlite: bool) -> dict:
    if not sqlite:
        return schema
    # SQLite has no BOOLEAN and reports an INTEGER PRIMARY KEY as nullable
    return {t: {c: ("int" if a == "bool" else a, None) for c, (a, _) in cols.items()} for t, cols in schema.items()}


def _drop_everything(db: Database) -> None:
    with db.write() as conn:
        reflected = sa.MetaData()
        reflected.reflect(conn)
        reflected.drop_all(conn)


@pytest.mark.parametrize("service", STORES)
def test_new_and_upgraded_databases_have_the_declared_schema(service, database_url):
    store = importlib.import_module(f"services.{service}.store")
    db = Database(database_url)
    assert db.migrate(store.MIGRATIONS) == store.MIGRATIONS[-1].version
    declared = _normalise(_declared(store.meta, db.engine.dialect), db.is_sqlite)
    assert _normalise(_columns(db), db.is_sqlite) == declared

    if len(store.MIGRATIONS) > 1:  # the previous release's database, upgraded
        _drop_everything(db)
        db.migrate(store.MIGRATIONS[:-1])
        assert _normalise(_columns(db), db.is_sqlite) != declared
        assert db.migrate(store.MIGRATIONS) == store.MIGRATIONS[-1].version
        assert _normalise(_columns(db), db.is_sqlite) == declared
    db.dispose()


def test_a_registry_written_by_the_previous_release_upgrades_and_keeps_its_versions(database_url):
    """Registry migrations 2 (import sources) and 3 (gates, evaluation records) over a database of
    migration 1 with a version in it."""
    from services.registry.domain import Actor, Kind, Lineage
    from services.registry.names import VersionRef
    from services.registry.store import MIGRATIONS, RegistryStore

    db = Database(database_url)
    db.migrate(MIGRATIONS[:1])
    with db.write() as conn:  # rows as the previous release wrote them
        conn.execute(sa.text("INSERT INTO models (name, kind, description, labels, latest_version, created_by, "
                             "create_time_us, update_time_us) VALUES ('m', 'model', '', '{}', 1, 'old', 1, 1)"))
        conn.execute(sa.text("INSERT INTO model_versions (model_id, version, files, artifact_digest, size_bytes, "
                             "format, base_version, dataset_uri, dataset_version, tuning_job_id, metrics, status, "
                             "description, created_by, create_time_us) VALUES (1, 1, '[]', 'd', 0, 'hf', '', '', '', "
                             "'', '{}', 'approved', '', 'old', 1)"))
    store = RegistryStore(db)
    assert store.migrate() == 3
    old = store.get_version(VersionRef("m", 1, None))
    assert old.lineage.source is None and old.status == "approved" and old.created_by == "old"
    new = store.create_version(Actor("new"), "m", kind=Kind.MODEL, files=(), artifact_digest="e", size_bytes=0,
                               format_="hf", pipeline_spec=None, lineage=Lineage(), metrics={}, description="",
                               request_id=None)
    assert new.version == 2
    assert store.migrate() == 3  # again: nothing to do
    db.dispose()
