"""Tuning jobs and their events in SQL. A job's request (base, dataset, method, hyperparameters,
DeepSpeed settings) is one JSON document; its state, progress and result are columns. Events
have an increasing sequence per job, which WatchTuningJob follows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import sqlalchemy as sa

from llmops.core.errors import NotFound
from llmops.core.storage import Database, Migration, freeze
from llmops.core.timeutil import now_us

VALIDATING, QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLING, CANCELLED = 1, 2, 3, 4, 5, 6, 7
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
STATE_NAMES = {VALIDATING: "VALIDATING", QUEUED: "QUEUED", RUNNING: "RUNNING", SUCCEEDED: "SUCCEEDED", FAILED: "FAILED",
               CANCELLING: "CANCELLING", CANCELLED: "CANCELLED"}

meta = sa.MetaData()
jobs = sa.Table(
    "jobs", meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("state", sa.SmallInteger, nullable=False, index=True),
    sa.Column("steps_done", sa.BigInteger, nullable=False, default=0),
    sa.Column("total_steps", sa.BigInteger, nullable=False, default=0),
    sa.Column("result_model_version", sa.String(200), nullable=False, default=""),
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Column("metrics", sa.Text, nullable=False, default="{}"),
    sa.Column("restarts", sa.Integer, nullable=False, default=0),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("idempotency_key", sa.String(128), nullable=True),
    sa.Column("create_time_us", sa.BigInteger, nullable=False),
    sa.Column("end_time_us", sa.BigInteger, nullable=False, default=0),
    sa.UniqueConstraint("created_by", "idempotency_key", name="uq_jobs_idempotency"),
)
events = sa.Table(
    "job_events", meta,
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
MIGRATIONS = [Migration(1, "jobs, events", freeze(meta))]


@dataclass
class JobRecord:
    id: str
    spec: dict
    state: int
    steps_done: int = 0
    total_steps: int = 0
    result_model_version: str = ""
    error: str = ""
    metrics: dict = field(default_factory=dict)
    restarts: int = 0
    created_by: str = ""
    idempotency_key: str | None = None
    create_time_us: int = 0
    end_time_us: int = 0


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


def _job(r) -> JobRecord:
    return JobRecord(r.id, json.loads(r.spec), r.state, r.steps_done, r.total_steps, r.result_model_version, r.error,
                     json.loads(r.metrics), r.restarts, r.created_by, r.idempotency_key, r.create_time_us,
                     r.end_time_us)


class JobStore:
    def __init__(self, db: Database):
        self.db = db

    def migrate(self) -> int:
        return self.db.migrate(MIGRATIONS)

    def create(self, job: JobRecord, validated: str = "") -> tuple[JobRecord, bool]:
        """(stored job, replayed): a known (created_by, idempotency_key) returns the first job.
        The job's checks ran before it was stored; `validated` says what they found (an event in
        state VALIDATING precedes the QUEUED one)."""
        with self.db.write() as conn:
            if job.idempotency_key:
                r = conn.execute(sa.select(jobs).where(jobs.c.created_by == job.created_by,
                                                       jobs.c.idempotency_key == job.idempotency_key)).first()
                if r is not None:
                    return _job(r), True
            conn.execute(jobs.insert().values(
                id=job.id, spec=json.dumps(job.spec, sort_keys=True), state=job.state, steps_done=0, total_steps=0,
                result_model_version="", error="", metrics="{}", restarts=0, created_by=job.created_by,
                idempotency_key=job.idempotency_key, create_time_us=now_us(), end_time_us=0))
            if validated:
                self._event(conn, EventRecord(job.id, 0, VALIDATING, message=f"validated: {validated}"))
            self._event(conn, EventRecord(job.id, 0, job.state, message="queued"))
        return self.get(job.id), False

    def get(self, job_id: str) -> JobRecord:
        with self.db.read() as conn:
            r = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        if r is None:
            raise NotFound(f"tuning job {job_id!r} does not exist; see `llmops tune list`")
        return _job(r)

    def list(self, before: int | None, limit: int) -> list[JobRecord]:
        q = sa.select(jobs).order_by(jobs.c.create_time_us.desc(), jobs.c.id.desc()).limit(limit)
        if before is not None:
            q = q.where(jobs.c.create_time_us < before)
        with self.db.read() as conn:
            return [_job(r) for r in conn.execute(q)]

    def in_states(self, *states: int) -> list[JobRecord]:
        with self.db.read() as conn:
            return [_job(r) for r in conn.execute(sa.select(jobs).where(jobs.c.state.in_(states))
                                                  .order_by(jobs.c.create_time_us))]

    def update(self, job_id: str, *, event: EventRecord | None = None, events: list[EventRecord] = (),
               expect: tuple[int, ...] = (), **values) -> JobRecord | None:
        """Change a job's columns and record events about it, in one transaction. With `expect`,
        a compare-and-set: only while the job is in one of those states (None, and nothing
        written, when it is not). A terminal state is never left, whatever the caller expects."""
        with self.db.write() as conn:
            if "metrics" in values:
                values["metrics"] = json.dumps(values["metrics"])
            if values.get("state") in TERMINAL:
                values.setdefault("end_time_us", now_us())
            if values or expect:
                where = [jobs.c.id == job_id, jobs.c.state.not_in(TERMINAL)] if "state" in values else [
                    jobs.c.id == job_id]
                if expect:
                    where.append(jobs.c.state.in_(expect))
                changed = conn.execute(jobs.update().where(*where).values(**values or {"state": jobs.c.state}))
                if changed.rowcount == 0 and (expect or "state" in values):
                    return None
            for e in ([event] if event is not None else []) + list(events):
                self._event(conn, e)
        return self.get(job_id)

    @staticmethod
    def _event(conn, e: EventRecord) -> None:
        last = conn.execute(sa.select(sa.func.max(events.c.sequence)).where(events.c.job_id == e.job_id)).scalar()
        conn.execute(events.insert().values(job_id=e.job_id, sequence=(last or 0) + 1, state=e.state, step=e.step,
                                            loss=e.loss, eval_loss=e.eval_loss, checkpoint=e.checkpoint,
                                            message=e.message[:2000], time_us=e.time_us or now_us()))

    def events_after(self, job_id: str, sequence: int) -> list[EventRecord]:
        with self.db.read() as conn:
            return [EventRecord(r.job_id, r.sequence, r.state, r.step, r.loss, r.eval_loss, r.checkpoint, r.message,
                                r.time_us)
                    for r in conn.execute(sa.select(events).where(events.c.job_id == job_id,
                                                                  events.c.sequence > sequence)
                                          .order_by(events.c.sequence))]
