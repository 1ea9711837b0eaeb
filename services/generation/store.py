"""Routes and usage in SQL. A route's targets and limits are one JSON document (routes are
immutable once created, so the servicer caches them). Usage is kept per caller, route and
minute, which is what both GetUsage windows and token budgets read."""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa

from llmops.core.errors import AlreadyExists
from llmops.core.storage import Database, Migration, fetch_one, freeze
from llmops.core.timeutil import now_us

meta = sa.MetaData()
routes = sa.Table(
    "routes", meta,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("create_time_us", sa.BigInteger, nullable=False),
)
usage = sa.Table(
    "usage_minutes", meta,
    sa.Column("caller", sa.String(200), primary_key=True),
    sa.Column("route", sa.String(63), primary_key=True),
    sa.Column("minute", sa.BigInteger, primary_key=True),  # unix time // 60
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
)
MIGRATIONS = [Migration(1, "routes, usage per minute", freeze(meta))]


@dataclass(frozen=True)
class RouteRecord:
    name: str
    body: dict  # {"targets": [...], "limits": {...}} as proto JSON
    created_by: str
    create_time_us: int


@dataclass(frozen=True)
class UsageDelta:
    caller: str
    route: str
    minute: int
    requests: int
    input_tokens: int
    output_tokens: int


class GenerationStore:
    def __init__(self, db: Database):
        self.db = db

    def migrate(self) -> int:
        return self.db.migrate(MIGRATIONS)

    def create_route(self, name: str, body: dict, created_by: str) -> RouteRecord:
        with self.db.write() as conn:
            if conn.execute(sa.select(routes.c.name).where(routes.c.name == name)).first():
                raise AlreadyExists(f"route {name!r} already exists; routes are immutable, create one with a new name")
            conn.execute(routes.insert().values(name=name, body=json.dumps(body, sort_keys=True),
                                                created_by=created_by, create_time_us=now_us()))
        return self.get_route(name)

    def get_route(self, name: str) -> RouteRecord:
        with self.db.read() as conn:
            row = fetch_one(conn, sa.select(routes).where(routes.c.name == name),
                            missing=f"route {name!r} does not exist; see `llmops routes list`")
            return RouteRecord(row.name, json.loads(row.body), row.created_by, row.create_time_us)

    def list_routes(self, after: str | None, limit: int) -> list[RouteRecord]:
        with self.db.read() as conn:
            q = sa.select(routes).order_by(routes.c.name).limit(limit)
            if after is not None:
                q = q.where(routes.c.name > after)
            return [RouteRecord(r.name, json.loads(r.body), r.created_by, r.create_time_us) for r in conn.execute(q)]

    def add_usage(self, deltas: list[UsageDelta]) -> None:
        """Add per-minute deltas in one transaction (update, or insert the minute's first row)."""
        with self.db.write() as conn:
            for d in deltas:
                key = (usage.c.caller == d.caller) & (usage.c.route == d.route) & (usage.c.minute == d.minute)
                updated = conn.execute(usage.update().where(key).values(
                    requests=usage.c.requests + d.requests, input_tokens=usage.c.input_tokens + d.input_tokens,
                    output_tokens=usage.c.output_tokens + d.output_tokens)).rowcount
                if not updated:
                    conn.execute(usage.insert().values(caller=d.caller, route=d.route, minute=d.minute,
                                                       requests=d.requests, input_tokens=d.input_tokens,
                                                       output_tokens=d.output_tokens))

    def usage(self, caller: str | None, route: str | None, start_minute: int, end_minute: int) -> list[UsageDelta]:
        """Totals per (caller, route) over [start_minute, end_minute]."""
        with self.db.read() as conn:
            q = (sa.select(usage.c.caller, usage.c.route, sa.func.sum(usage.c.requests),
                           sa.func.sum(usage.c.input_tokens), sa.func.sum(usage.c.output_tokens))
                 .where(usage.c.minute >= start_minute, usage.c.minute <= end_minute)
                 .group_by(usage.c.caller, usage.c.route).order_by(usage.c.caller, usage.c.route))
            if caller:
                q = q.where(usage.c.caller == caller)
            if route:
                q = q.where(usage.c.route == route)
            return [UsageDelta(c, r, 0, int(n), int(i), int(o)) for c, r, n, i, o in conn.execute(q)]
