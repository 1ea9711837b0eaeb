"""A prompt database created by the schema before reviews existed upgrades in place, on SQLite and
PostgreSQL: its versions start pending approval, its aliases stay, and the audit log begins."""

from __future__ import annotations

import sqlalchemy as sa

from llmops.core.gates import AliasGate, Approval
from llmops.core.names import VersionRef
from llmops.core.storage import Database, Migration
from services.prompt.store import TemplateStore

OLD = sa.MetaData()  # the schema of migration 1 as the previous release created it
sa.Table("templates", OLD, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
         sa.Column("name", sa.String(63), nullable=False, unique=True), sa.Column("description", sa.Text),
         sa.Column("latest_version", sa.Integer), sa.Column("create_time_us", sa.BigInteger))
sa.Table("template_versions", OLD, sa.Column("template_id", sa.Integer, sa.ForeignKey("templates.id"), primary_key=True),
         sa.Column("version", sa.Integer, primary_key=True), sa.Column("body", sa.Text, nullable=False),
         sa.Column("created_by", sa.String(200), nullable=False), sa.Column("create_time_us", sa.BigInteger),
         sa.Column("request_id", sa.String(128)))
sa.Table("template_aliases", OLD, sa.Column("template_id", sa.Integer, primary_key=True),
         sa.Column("alias", sa.String(63), primary_key=True), sa.Column("version", sa.Integer, nullable=False))


def test_the_previous_schema_upgrades(database_url):
    db = Database(database_url)
    db.migrate([Migration(1, "templates, versions, aliases", lambda conn: OLD.create_all(conn))])
    with db.write() as conn:
        conn.execute(sa.text("INSERT INTO templates (name, description, latest_version, create_time_us) "
                             "VALUES ('qa', '', 1, 1)"))
        conn.execute(sa.text("INSERT INTO template_versions (template_id, version, body, created_by, create_time_us) "
                             "VALUES (1, 1, '{\"messages\": []}', 'old', 1)"))
        conn.execute(sa.text("INSERT INTO template_aliases (template_id, alias, version) VALUES (1, 'production', 1)"))
    store = TemplateStore(db)
    assert store.migrate() == 2
    v = store.get_version(VersionRef("qa", None, "production"))
    assert v.version == 1 and v.approval == Approval.PENDING_APPROVAL and v.aliases == ("production",)
    gate = AliasGate(frozenset({"production"}))
    store.review_version("alice", VersionRef("qa", 1, None), True, "grandfathered", gate)
    store.set_alias("alice", "qa", "production", 1, gate)
    assert [e.type for e in store.list_events("qa", 0, 10)] == ["version_approved", "alias_set"]
    assert store.migrate() == 2  # again: nothing to do
    db.dispose()
