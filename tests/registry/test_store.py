"""The registry store on SQLite and PostgreSQL: the same behaviour on both engines."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from llmops.core.errors import AlreadyExists, FailedPrecondition, NotFound
from llmops.core.gates import AliasGate
from llmops.core.storage import Database
from services.registry.domain import Actor, EventType, FileEntry, ImportSource, Kind, Lineage, Status
from services.registry.names import parse_version_ref
from services.registry.store import RegistryStore

ALICE = Actor("alice", "0" * 32)

GATE = AliasGate(frozenset({"production"}))


@pytest.fixture
def store(database_url):
    s = RegistryStore(Database(database_url))
    s.migrate()
    yield s
    s.db.dispose()


def add_version(store: RegistryStore, model: str, request_id: str | None = None):
    files = [FileEntry("model.safetensors", "a" * 64, 10)]
    return store.create_version(ALICE, model, kind=Kind.MODEL, files=files, artifact_digest="b" * 64, size_bytes=10,
                                format_="hf-safetensors", pipeline_spec=None, lineage=Lineage(), metrics={"loss": 1.0},
                                description="", request_id=request_id)


def test_migrations_are_recorded_and_idempotent(store):
    assert store.db.schema_version() == 3
    assert store.migrate() == 3


def test_a_database_from_before_imports_gains_the_source_column(database_url):
    import sqlalchemy as sa

    from services.registry.store import MIGRATIONS, models

    old = RegistryStore(Database(database_url))
    old.db.migrate(MIGRATIONS[:1])  # the schema before imports existed (migration 1 is frozen)
    with old.db.read() as conn:
        assert "import_source" not in {c["name"] for c in sa.inspect(conn).get_columns("model_versions")}
    with old.db.write() as conn:  # a model as the first schema held it (today's columns would not insert)
        conn.execute(models.insert().values(name="m", kind="model", description="", labels="{}", latest_version=0,
                                            created_by="alice", create_time_us=1, update_time_us=1))
    assert old.db.migrate(MIGRATIONS) == 3
    assert old.get_model("m").gate is None  # models from before gates have none
    source = ImportSource("pypi:x==1/m.gguf", "c" * 64, 123, "gguf", "Q4_1")
    v = old.create_version(ALICE, "m", kind=Kind.MODEL, files=[FileEntry("model.safetensors", "a" * 64, 10)],
                           artifact_digest="b" * 64, size_bytes=10, format_="hf-causal-lm", pipeline_spec=None,
                           lineage=Lineage(source=source), metrics={}, description="", request_id=None)
    assert old.get_version(parse_version_ref(f"m@{v.version}")).lineage.source == source
    old.db.dispose()


def test_models_versions_and_aliases_round_trip(store):
    store.create_model(ALICE, "m", Kind.MODEL, "desc", {"team": "a"})
    with pytest.raises(AlreadyExists):
        store.create_model(ALICE, "m", Kind.MODEL, "", {})
    v1 = add_version(store, "m")
    v2 = add_version(store, "m")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.files[0].path == "model.safetensors" and v1.metrics == {"loss": 1.0}
    assert add_version(store, "m", request_id="r").version == 3
    assert add_version(store, "m", request_id="r").version == 3
    with pytest.raises(FailedPrecondition):
        store.set_alias(ALICE, "m", "production", 1, GATE)
    store.review_version(ALICE, parse_version_ref("m@1"), True, "ok", GATE)
    model = store.set_alias(ALICE, "m", "production", 1, GATE)
    assert model.aliases == {"production": 1}
    got = store.get_version(parse_version_ref("m@production"))
    assert got.status is Status.APPROVED and got.review.reviewer == "alice" and got.aliases == ("production",)
    store.delete_alias(ALICE, "m", "production")
    with pytest.raises(NotFound):
        store.get_version(parse_version_ref("m@production"))
    assert [v.version for v in store.list_versions("m", None, 10)] == [3, 2, 1]
    assert [v.version for v in store.list_versions("m", 3, 1)] == [2]
    types = [e.type for e in store.list_events("m", 0, 100)]
    assert types[0] is EventType.MODEL_CREATED and types[-1] is EventType.ALIAS_DELETED
    assert all(e.actor == "alice" for e in store.list_events(None, 0, 100))


def test_kind_mismatch_is_a_failed_precondition(store):
    store.create_model(ALICE, "p", Kind.PIPELINE, "", {})
    with pytest.raises(FailedPrecondition):
        add_version(store, "p")


def test_lineage_base_must_exist(store):
    store.create_model(ALICE, "m", Kind.MODEL, "", {})
    with pytest.raises(NotFound):
        store.create_version(ALICE, "m", kind=Kind.MODEL, files=[], artifact_digest="", size_bytes=0, format_="",
                             pipeline_spec=None, lineage=Lineage(base_version="m@9"), metrics={}, description="",
                             request_id=None)


def test_concurrent_alias_moves_serialise(store):
    store.create_model(ALICE, "m", Kind.MODEL, "", {})
    for _ in range(5):
        add_version(store, "m")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda v: store.set_alias(ALICE, "m", "canary", 1 + v % 5, GATE), range(50)))
    moves = [e for e in store.list_events("m", 0, 1000) if e.type is EventType.ALIAS_SET]
    assert len(moves) == 50
    for before, after in zip(moves[:-1], moves[1:], strict=True):
        assert after.previous_version == before.version
    assert store.get_model("m").aliases["canary"] == moves[-1].version


def test_concurrent_version_creation_never_reuses_a_number(store):
    store.create_model(ALICE, "m", Kind.MODEL, "", {})
    with ThreadPoolExecutor(8) as pool:
        numbers = list(pool.map(lambda _: add_version(store, "m").version, range(30)))
    assert sorted(numbers) == list(range(1, 31))
