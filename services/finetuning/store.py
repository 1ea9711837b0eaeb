"""Tuning jobs, evaluation runs, releases and their events in SQL. A run's request is one JSON
document; its state, progress and result are columns. Every kind shares one state machine
(`RunStore`: a compare-and-set on the state, a terminal state never left) and one event log with
an increasing sequence per run, which the Watch RPCs follow."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import sqlalchemy as sa

from llmops.core.errors import InvalidArgument, NotFound
from llmops.core.storage import Database, Migration, freeze
from llmops.core.timeutil import now_us

VALIDATING, QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLING, CANCELLED = 1, 2, 3, 4, 5, 6, 7
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
STATE_NAMES = {VALIDATING: "VALIDATING", QUEUED: "QUEUED", RUNNING: "RUNNING", SUCCEEDED: "SUCCEEDED", FAILED: "FAILED",
               CANCELLING: "CANCELLING", CANCELLED: "CANCELLED"}

meta = sa.MetaData()


def _runs(name: str, *columns: sa.Column) -> sa.Table:
    """A table of runs: the columns every kind has (request, state, progress, error, restarts,
    who, idempotency, times) around the kind's own."""
    return sa.Table(
        name, meta,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("state", sa.SmallInteger, nullable=False, index=True),
        sa.Column("steps_done", sa.BigInteger, nullable=False, default=0),
        sa.Column("total_steps", sa.BigInteger, nullable=False, default=0),
        *columns,
        sa.Column("error", sa.Text, nullable=False, default=""),
        sa.Column("restarts", sa.Integer, nullable=False, default=0),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("create_time_us", sa.BigInteger, nullable=False),
        sa.Column("end_time_us", sa.BigInteger, nullable=False, default=0),
        sa.UniqueConstraint("created_by", "idempotency_key", name=f"uq_{name}_idempotency"),
    )


jobs = _runs(
    "jobs",
    sa.Column("result_model_version", sa.String(200), nullable=False, default=""),
    sa.Column("metrics", sa.Text, nullable=False, default="{}"),
)
events = sa.Table(
    "job_events", meta,  # the events of every kind of run (ids are unique across kinds)
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("sequence", sa.BigInteger, primary_key=True),
    sa.Column("state", sa.SmallInteger, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("loss", sa.Float, nullable=False),
    sa.Column("eval_loss", sa.Float, nullable=False),
    sa.Column("checkpoint", sa.String(200), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("time_us", sa.BigInteger, nullable=False),
)
evaluations = _runs(  # steps: rows answered, both sides
    "evaluations",
    sa.Column("target_version", sa.String(200), nullable=False, default=""),
    sa.Column("result", sa.Text, nullable=False, default="{}"),  # metrics, baseline metrics, comparisons
    sa.Column("recorded", sa.Boolean, nullable=False, default=False),
)
evaluation_rows = sa.Table(
    "evaluation_rows", meta,
    sa.Column("evaluation_id", sa.String(32), primary_key=True),
    sa.Column("side", sa.String(16), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
)
releases = _runs(  # steps: canary steps passed
    "releases",
    sa.Column("model", sa.String(63), nullable=False, index=True),
    sa.Column("result", sa.Text, nullable=False, default="{}"),  # percent, step start, signals, outcome
)
_JOBS_ONLY = sa.MetaData()
for _t in (jobs, events):
    _t.to_metadata(_JOBS_ONLY)
_EVALUATIONS_ONLY = sa.MetaData()
for _t in (evaluations, evaluation_rows, releases):
    _t.to_metadata(_EVALUATIONS_ONLY)
MIGRATIONS = [Migration(1, "jobs, events", freeze(_JOBS_ONLY)),
              Migration(2, "evaluations and their rows, releases", freeze(_EVALUATIONS_ONLY))]


@dataclass
class RunRecord:
    """What every kind of run has (the columns `_runs` declares)."""

    id: str
    spec: dict
    state: int
    steps_done: int = 0
    total_steps: int = 0
    error: str = ""
    restarts: int = 0
    created_by: str = ""
    idempotency_key: str | None = None
    create_time_us: int = 0
    end_time_us: int = 0


@dataclass
class JobRecord(RunRecord):
    result_model_version: str = ""
    metrics: dict = field(default_factory=dict)


@dataclass
class EvaluationRecord(RunRecord):
    target_version: str = ""
    result: dict = field(default_factory=dict)
    recorded: bool = False


@dataclass
class ReleaseRecord(RunRecord):
    model: str = ""
    result: dict = field(default_factory=dict)


@dataclass
class EventRecord:
    job_id: str
    sequence: int
    state: int
    step: int = 0
    loss: float = 0.0
    eval_loss: float = 0.0
    checkpoint: str = ""
    message: str = ""
    time_us: int = 0


class RunStore:
    """Runs of one kind (`table`, read into `record` dataclasses) with the shared event log."""

    table: sa.Table
    record: type
    JSON_COLUMNS: tuple[str, ...] = ()
    what = "run"
    collection = "runs"  # resource names are `{collection}/{id}`
    hint = ""

    def __init__(self, db: Database):
        self.db = db

    def migrate(self) -> int:
        return self.db.migrate(MIGRATIONS)

    def ident(self, name: str) -> str:
        """The id in `{collection}/{id}` (or a bare id); INVALID_ARGUMENT when malformed."""
        ident = name.removeprefix(f"{self.collection}/")
        if not ident or not ident.isalnum() or len(ident) > 32:
            raise InvalidArgument(f"malformed {self.what} name {name[:80]!r}; use `{self.collection}/{{id}}`")
        return ident

    def _read(self, r):
        values = {c: getattr(r, c) for c in r._fields}
        for c in self.JSON_COLUMNS:
            values[c] = json.loads(values[c])
        values["spec"] = json.loads(values["spec"])
        return self.record(**values)

    def create(self, run, validated: str = "", message: str = "queued"):
        """(stored run, replayed): a known (created_by, idempotency_key) returns the first run.
        The run's checks ran before it was stored; `validated` says what they found (an event in
        state VALIDATING precedes the QUEUED one)."""
        t = self.table
        with self.db.write() as conn:
            if run.idempotency_key:
                r = conn.execute(sa.select(t).where(t.c.created_by == run.created_by,
                                                    t.c.idempotency_key == run.idempotency_key)).first()
                if r is not None:
                    return self._read(r), True
            values = {c.name: getattr(run, c.name) for c in t.columns if hasattr(run, c.name)}
            for c in self.JSON_COLUMNS + ("spec",):
                values[c] = json.dumps(values[c], sort_keys=True)
            values.update(create_time_us=now_us(), end_time_us=0)
            conn.execute(t.insert().values(**values))
            if validated:
                append_event(conn, EventRecord(run.id, 0, VALIDATING, message=f"validated: {validated}"))
            append_event(conn, EventRecord(run.id, 0, run.state, message=message))
        return self.get(run.id), False

    def get(self, run_id: str):
        with self.db.read() as conn:
            r = conn.execute(sa.select(self.table).where(self.table.c.id == run_id)).first()
        if r is None:
            raise NotFound(f"{self.what} {run_id!r} does not exist; see {self.hint}")
        return self._read(r)

    def list(self, before: int | None, limit: int, **where):
        t = self.table
        q = sa.select(t).order_by(t.c.create_time_us.desc(), t.c.id.desc()).limit(limit)
        if before is not None:
            q = q.where(t.c.create_time_us < before)
        for column, value in where.items():
            if value:
                q = q.where(t.c[column] == value)
        with self.db.read() as conn:
            return [self._read(r) for r in conn.execute(q)]

    def in_states(self, *states: int):
        t = self.table
        with self.db.read() as conn:
            return [self._read(r) for r in conn.execute(sa.select(t).where(t.c.state.in_(states))
                                                        .order_by(t.c.create_time_us))]

    def update(self, run_id: str, *, event: EventRecord | None = None, events: list[EventRecord] = (),
               expect: tuple[int, ...] = (), **values):
        """Change a run's columns and record events about it, in one transaction. With `expect`,
        a compare-and-set: only while the run is in one of those states (None, and nothing
        written, when it is not). A terminal state is never left, whatever the caller expects."""
        t = self.table
        with self.db.write() as conn:
            for c in self.JSON_COLUMNS:
                if c in values:
                    values[c] = json.dumps(values[c])
            if values.get("state") in TERMINAL:
                values.setdefault("end_time_us", now_us())
            if values or expect:
                where = [t.c.id == run_id, t.c.state.not_in(TERMINAL)] if "state" in values else [t.c.id == run_id]
                if expect:
                    where.append(t.c.state.in_(expect))
                changed = conn.execute(t.update().where(*where).values(**values or {"state": t.c.state}))
                if changed.rowcount == 0 and (expect or "state" in values):
                    return None
            for e in ([event] if event is not None else []) + list(events):
                append_event(conn, e)
        return self.get(run_id)

    def events_after(self, run_id: str, sequence: int) -> list[EventRecord]:
        with self.db.read() as conn:
            return [EventRecord(r.job_id, r.sequence, r.state, r.step, r.loss, r.eval_loss, r.checkpoint, r.message,
                                r.time_us)
                    for r in conn.execute(sa.select(events).where(events.c.job_id == run_id,
                                                                  events.c.sequence > sequence)
                                          .order_by(events.c.sequence))]


def append_event(conn, e: EventRecord) -> None:
    last = conn.execute(sa.select(sa.func.max(events.c.sequence)).where(events.c.job_id == e.job_id)).scalar()
    conn.execute(events.insert().values(job_id=e.job_id, sequence=(last or 0) + 1, state=e.state, step=e.step,
                                        loss=e.loss, eval_loss=e.eval_loss, checkpoint=e.checkpoint,
                                        message=e.message[:2000], time_us=e.time_us or now_us()))


class JobStore(RunStore):
    table = jobs
    record = JobRecord
    JSON_COLUMNS = ("metrics",)
    what = "tuning job"
    collection = "tuningJobs"
    hint = "`llmops tune list`"


class EvaluationStore(RunStore):
    table = evaluations
    record = EvaluationRecord
    JSON_COLUMNS = ("result",)
    what = "evaluation"
    collection = "evaluations"
    hint = "`llmops eval list`"

    def add_row(self, evaluation_id: str, side: str, index: int, body: dict, event: EventRecord) -> bool:
        """Store one answered row and count it, once (a row already stored is not counted again:
        a resumed run may answer a row twice); whether it was new."""
        with self.db.write() as conn:
            key = (evaluation_rows.c.evaluation_id == evaluation_id, evaluation_rows.c.side == side,
                   evaluation_rows.c.idx == index)
            if conn.execute(sa.select(evaluation_rows.c.idx).where(*key)).first() is not None:
                return False
            conn.execute(evaluation_rows.insert().values(evaluation_id=evaluation_id, side=side, idx=index,
                                                         body=json.dumps(body)))
            done = conn.execute(sa.select(sa.func.count()).select_from(evaluation_rows)
                                .where(evaluation_rows.c.evaluation_id == evaluation_id)).scalar()
            conn.execute(evaluations.update().where(evaluations.c.id == evaluation_id).values(steps_done=done))
            event.step = done
            append_event(conn, event)
        return True

    def rows(self, evaluation_id: str, after: int | None = None, limit: int = 0) -> list[tuple[str, int, dict]]:
        """(side, index, body) in dataset order, target before baseline at each index; `after`:
        a `row_position` to continue from."""
        r = evaluation_rows.c
        order = sa.case((r.side == "target", 0), else_=1)
        q = sa.select(r.side, r.idx, r.body).where(r.evaluation_id == evaluation_id).order_by(r.idx, order)
        if after is not None:
            index, side_rank = divmod(after, 2)
            q = q.where(sa.or_(r.idx > index, sa.and_(r.idx == index, order > side_rank)))
        if limit:
            q = q.limit(limit)
        with self.db.read() as conn:
            return [(x.side, x.idx, json.loads(x.body)) for x in conn.execute(q)]


def row_position(side: str, index: int) -> int:
    """A row's place in listing order, as one number (a page token's position)."""
    return index * 2 + (side != "target")


class ReleaseStore(RunStore):
    table = releases
    record = ReleaseRecord
    JSON_COLUMNS = ("result",)
    what = "release"
    collection = "releases"
    hint = "`llmops release list`"

    def active(self, model: str) -> list[ReleaseRecord]:
        """The model's releases that have not ended."""
        with self.db.read() as conn:
            return [self._read(r) for r in conn.execute(sa.select(releases).where(
                releases.c.model == model, releases.c.state.not_in(TERMINAL)))]
