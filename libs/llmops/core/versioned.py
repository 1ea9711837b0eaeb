"""Versioned resources with aliases: one mechanism for every service that keeps them (registry
models and pipeline bundles, prompt templates).

A parent row per name; immutable numbered versions (a retried create with the same request id
returns the version it made the first time); a review state per version; aliases that point at
versions, moved and deleted under one gate (`llmops.core.gates.AliasGate`). Every operation runs
inside the caller's transaction, so a store writes its own columns and its audit event in the same
commit. Changes to one resource lock its parent row (SQLite: the write lock), which serialises
version numbers and alias moves per resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from llmops.core.errors import AlreadyExists, NotFound
from llmops.core.gates import AliasGate, Approval
from llmops.core.storage import fetch_one
from llmops.core.timeutil import now_us


def pointing(alias_map: Mapping[str, int], version: int) -> tuple[str, ...]:
    """The aliases that point at `version`, sorted."""
    return tuple(sorted(a for a, v in alias_map.items() if v == version))


@dataclass(frozen=True)
class Versioned:
    """The tables of one kind of versioned resource and the rules they share.

    `parents` has `id`, `name`, `latest_version`; `versions` has the parent key column `fk`,
    `version`, `request_id`, the review-state column `state` and `reviewer`, `review_comment`,
    `review_time_us`; `aliases` has `fk`, `alias`, `version`. `noun` ("model", "prompt template")
    and `list_hint` (the command that lists them) make the messages."""

    noun: str
    parents: sa.Table
    versions: sa.Table
    aliases: sa.Table
    fk: str
    state: str = "approval"
    list_hint: str = ""

    # -- parents ----------------------------------------------------------------------------

    def parent(self, conn: Connection, name: str, *, lock: bool = False) -> Row:
        """The parent row, locked for the transaction when `lock`; NOT_FOUND when unknown."""
        hint = f"create it first or check `{self.list_hint}`" if self.list_hint else "create it first"
        return fetch_one(conn, sa.select(self.parents).where(self.parents.c.name == name), lock=lock,
                         missing=f"{self.noun} {name!r} does not exist; {hint}")

    def insert_parent(self, conn: Connection, name: str, **values) -> Row:
        """Create the parent row; ALREADY_EXISTS when the name is taken."""
        if conn.execute(sa.select(self.parents.c.id).where(self.parents.c.name == name)).first() is not None:
            raise AlreadyExists(f"{self.noun} {name!r} already exists; pick another name or add a version to it")
        conn.execute(self.parents.insert().values(name=name, latest_version=0, **values))
        return self.parent(conn, name)

    def list_parents(self, conn: Connection, after: str | None, limit: int, *where) -> list[Row]:
        """Parents by name after the keyset cursor `after`."""
        q = sa.select(self.parents).where(*where).order_by(self.parents.c.name).limit(limit)
        if after is not None:
            q = q.where(self.parents.c.name > after)
        return list(conn.execute(q).all())

    def alias_map(self, conn: Connection, parent_id: int) -> dict[str, int]:
        a = self.aliases.c
        return dict(conn.execute(sa.select(a.alias, a.version).where(a[self.fk] == parent_id)).all())

    # -- versions ---------------------------------------------------------------------------

    def _version_where(self, parent_id: int, number: int):
        return (self.versions.c[self.fk] == parent_id, self.versions.c.version == number)

    def version_row(self, conn: Connection, parent: Row, number: int) -> Row:
        row = conn.execute(sa.select(self.versions).where(*self._version_where(parent.id, number))).first()
        if row is None:
            raise NotFound(f"{self.noun} {parent.name!r} has no version {number}")
        return row

    def resolve(self, conn: Connection, parent: Row, version: int | None, alias: str | None) -> tuple[Row, dict[str, int]]:
        """The version row a number or alias names, and the parent's alias map."""
        alias_map = self.alias_map(conn, parent.id)
        number = version if version is not None else alias_map.get(alias or "")
        if number is None:
            raise NotFound(f"{self.noun} {parent.name!r} has no alias {alias!r}")
        return self.version_row(conn, parent, number), alias_map

    def list_versions(self, conn: Connection, parent: Row, before: int | None, limit: int) -> list[Row]:
        """Versions newest first, below the keyset cursor `before`."""
        v = self.versions.c
        q = sa.select(self.versions).where(v[self.fk] == parent.id).order_by(v.version.desc()).limit(limit)
        if before is not None:
            q = q.where(v.version < before)
        return list(conn.execute(q).all())

    def prior(self, conn: Connection, parent: Row, request_id: str | None) -> Row | None:
        """The version an earlier create with `request_id` made (the idempotency rule), if any."""
        if not request_id:
            return None
        v = self.versions.c
        return conn.execute(sa.select(self.versions).where(v[self.fk] == parent.id, v.request_id == request_id)).first()

    def insert_version(self, conn: Connection, parent: Row, request_id: str | None, **values) -> Row:
        """Add the next version (pending review) to a parent locked by the caller."""
        number = parent.latest_version + 1
        conn.execute(self.versions.insert().values(
            {self.fk: parent.id, "version": number, "request_id": request_id or None,
             self.state: Approval.PENDING_APPROVAL.value, **values}))
        conn.execute(self.parents.update().where(self.parents.c.id == parent.id).values(latest_version=number))
        return self.version_row(conn, parent, number)

    def review(self, conn: Connection, parent: Row, row: Row, approve: bool, reviewer: str, comment: str,
               gate: AliasGate) -> Row | None:
        """Approve or reject a version under the gate's rules; the updated row, or None when the
        review changes nothing (approving twice)."""
        ref = f"{parent.name}@{row.version}"
        if not gate.check_review(ref, row._mapping[self.state], approve, row.reviewer or ""):
            return None
        if not approve:
            gate.check_reject(ref, pointing(self.alias_map(conn, parent.id), row.version))
        conn.execute(self.versions.update().where(*self._version_where(parent.id, row.version)).values({
            self.state: (Approval.APPROVED if approve else Approval.REJECTED).value, "reviewer": reviewer,
            "review_comment": comment, "review_time_us": now_us()}))
        return self.version_row(conn, parent, row.version)

    # -- aliases ----------------------------------------------------------------------------

    def _alias_where(self, parent_id: int, alias: str):
        return (self.aliases.c[self.fk] == parent_id, self.aliases.c.alias == alias)

    def _current(self, conn: Connection, parent_id: int, alias: str) -> int | None:
        return conn.execute(sa.select(self.aliases.c.version).where(*self._alias_where(parent_id, alias))).scalar()

    def set_alias(self, conn: Connection, parent: Row, alias: str, version: int, gate: AliasGate) -> int:
        """Point `alias` at `version` (a protected alias only at an approved one); the version it
        pointed at before, 0 when new. The caller has checked who may move it (`gate.require_mover`)."""
        row = self.version_row(conn, parent, version)
        gate.check_target(alias, f"{parent.name}@{version}", row._mapping[self.state])
        previous = self._current(conn, parent.id, alias)
        if previous is None:
            conn.execute(self.aliases.insert().values({self.fk: parent.id, "alias": alias, "version": version}))
        else:
            conn.execute(self.aliases.update().where(*self._alias_where(parent.id, alias)).values(version=version))
        return previous or 0

    def delete_alias(self, conn: Connection, parent: Row, alias: str) -> int:
        """Remove `alias`; the version it pointed at. NOT_FOUND when it does not exist."""
        previous = self._current(conn, parent.id, alias)
        if previous is None:
            raise NotFound(f"{self.noun} {parent.name!r} has no alias {alias!r}")
        conn.execute(self.aliases.delete().where(*self._alias_where(parent.id, alias)))
        return previous
