"""The inference log and feedback in SQL.

Inferences are keyed by request id (logging is idempotent: a repeat changes nothing). Feedback
rows carry the request's pipeline and model versions (copied when given, so filters and
summaries need no join) and a unique (created_by, idempotency_key), so a retried CreateFeedback
returns the first row. Both tables have an increasing `seq`, which WatchFeedback follows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import sqlalchemy as sa

from llmops.core.errors import NotFound
from llmops.core.storage import Database, Migration, add_column, freeze
from llmops.core.timeutil import now_us

meta = sa.MetaData()
inferences = sa.Table(
    "inferences", meta,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False, unique=True),
    sa.Column("trace_id", sa.String(32), nullable=False, index=True),
    sa.Column("pipeline", sa.String(63), nullable=False, index=True),
    sa.Column("pipeline_version", sa.String(200), nullable=False),
    sa.Column("prompt_version", sa.String(200), nullable=False),
    sa.Column("index_version", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(200), nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("sources", sa.Text, nullable=False),  # JSON list of {document_id, chunk_id, score, text}
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("caller", sa.String(200), nullable=False),
    sa.Column("create_time_us", sa.BigInteger, nullable=False, index=True),
)
feedback = sa.Table(
    "feedback", meta,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("trace_id", sa.String(32), nullable=False),
    sa.Column("pipeline", sa.String(63), nullable=False),
    sa.Column("pipeline_version", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(200), nullable=False),
    sa.Column("thumb", sa.SmallInteger, nullable=False),  # 0 none, 1 up, 2 down
    sa.Column("rating", sa.SmallInteger, nullable=False),  # 0 none, 1-5
    sa.Column("corrected_answer", sa.Text, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("labels", sa.Text, nullable=False),  # JSON list
    sa.Column("reviewer", sa.String(200), nullable=False),
    sa.Column("source", sa.SmallInteger, nullable=False),
    sa.Column("quarantined", sa.Boolean, nullable=False, default=False),
    sa.Column("created_by", sa.String(200), nullable=False, index=True),
    sa.Column("idempotency_key", sa.String(128), nullable=True),
    sa.Column("create_time_us", sa.BigInteger, nullable=False, index=True),
    sa.UniqueConstraint("created_by", "idempotency_key", name="uq_feedback_idempotency"),
)


MIGRATIONS = [
    Migration(1, "inferences, feedback", freeze(meta)),  # the tables above, as they were
    Migration(2, "inferences.prompt_messages",  # JSON list of {role, content}: the prompt as the model got it
              add_column(inferences, sa.Column("prompt_messages", sa.Text, nullable=False, server_default="[]"))),
    Migration(3, "inferences.error",  # the status of a request that failed: monitoring's error rate
              add_column(inferences, sa.Column("error", sa.String(200), nullable=False, server_default=""))),
]


@dataclass
class InferenceRow:
    request_id: str
    trace_id: str
    pipeline: str
    pipeline_version: str
    prompt_version: str
    index_version: str
    model_version: str
    question: str
    answer: str
    sources: list[dict]
    latency_ms: float
    input_tokens: int
    output_tokens: int
    caller: str
    create_time_us: int = 0
    seq: int = 0
    feedback_count: int = 0
    prompt_messages: list[dict] = field(default_factory=list)
    error: str = ""

    @property
    def chunk_ids(self) -> list[str]:
        return [s["chunk_id"] for s in self.sources]


@dataclass
class FeedbackRow:
    request_id: str
    trace_id: str
    pipeline: str
    pipeline_version: str
    model_version: str
    thumb: int
    rating: int
    corrected_answer: str
    comment: str
    labels: list[str]
    reviewer: str
    source: int
    created_by: str
    quarantined: bool = False
    idempotency_key: str | None = None
    create_time_us: int = 0
    seq: int = 0


@dataclass(frozen=True)
class FeedbackFilter:
    pipeline: str = ""
    pipeline_version: str = ""
    model_version: str = ""
    source: int = 0
    label: str = ""
    start_us: int = 0
    end_us: int = 0
    include_quarantined: bool = True


def _inference(r) -> InferenceRow:
    return InferenceRow(r.request_id, r.trace_id, r.pipeline, r.pipeline_version, r.prompt_version, r.index_version,
                        r.model_version, r.question, r.answer, json.loads(r.sources), r.latency_ms, r.input_tokens,
                        r.output_tokens, r.caller, r.create_time_us, r.seq,
                        prompt_messages=json.loads(r.prompt_messages), error=r.error)


def _feedback(r) -> FeedbackRow:
    return FeedbackRow(r.request_id, r.trace_id, r.pipeline, r.pipeline_version, r.model_version, r.thumb, r.rating,
                       r.corrected_answer, r.comment, json.loads(r.labels), r.reviewer, r.source, r.created_by,
                       r.quarantined, r.idempotency_key, r.create_time_us, r.seq)


def _window(q, column, start_us: int, end_us: int):
    if start_us:
        q = q.where(column >= start_us)
    if end_us:
        q = q.where(column < end_us)
    return q


class FeedbackStore:
    def __init__(self, db: Database):
        self.db = db

    def migrate(self) -> int:
        return self.db.migrate(MIGRATIONS)

    # -- inferences ----------------------------------------------------------------------------

    @staticmethod
    def _values(row: InferenceRow) -> dict:
        values = {k: v for k, v in row.__dict__.items() if k not in ("seq", "feedback_count")}
        values["sources"] = json.dumps(row.sources)
        values["prompt_messages"] = json.dumps(row.prompt_messages)
        values["create_time_us"] = row.create_time_us or now_us()
        return values

    def log_inference(self, row: InferenceRow) -> tuple[InferenceRow, bool]:
        """(stored row, duplicate): the first record of a request id wins."""
        with self.db.write() as conn:
            existing = conn.execute(sa.select(inferences).where(inferences.c.request_id == row.request_id)).first()
            if existing is not None:
                return _inference(existing), True
            conn.execute(inferences.insert().values(**self._values(row)))
            stored = conn.execute(sa.select(inferences).where(inferences.c.request_id == row.request_id)).one()
            return _inference(stored), False

    def log_inferences(self, rows: list[InferenceRow]) -> tuple[int, int]:
        """(stored, duplicates) for a batch, in one transaction; the first record of an id wins."""
        with self.db.write() as conn:
            ids = [r.request_id for r in rows]
            known = set(conn.execute(sa.select(inferences.c.request_id).where(inferences.c.request_id.in_(ids))).scalars())
            new, seen = [], set()
            for r in rows:
                if r.request_id not in known and r.request_id not in seen:
                    seen.add(r.request_id)
                    new.append(self._values(r))
            if new:
                conn.execute(inferences.insert(), new)
            return len(new), len(rows) - len(new)

    def find_inference(self, request_id: str = "", trace_id: str = "") -> InferenceRow:
        with self.db.read() as conn:
            q = sa.select(inferences)
            q = q.where(inferences.c.request_id == request_id) if request_id else q.where(
                inferences.c.trace_id == trace_id).order_by(inferences.c.seq)
            row = conn.execute(q.limit(1)).first()
        if row is None:
            what = f"request {request_id!r}" if request_id else f"trace {trace_id!r}"
            raise NotFound(f"{what} is not in the inference log (answers are logged within seconds of being "
                           "given; check the id)")
        return _inference(row)

    def list_inferences(self, pipeline: str, awaiting_review: bool, before_seq: int | None, limit: int
                        ) -> list[InferenceRow]:
        counts = (sa.select(feedback.c.request_id, sa.func.count().label("n"))
                  .group_by(feedback.c.request_id).subquery())
        reviewed = sa.select(feedback.c.request_id).where(feedback.c.source == 2)  # FEEDBACK_SOURCE_REVIEWER
        q = (sa.select(inferences, sa.func.coalesce(counts.c.n, 0).label("n"))
             .outerjoin(counts, counts.c.request_id == inferences.c.request_id)
             .where(inferences.c.error == "")  # failed requests have nothing to review
             .order_by(inferences.c.seq.desc()).limit(limit))
        if pipeline:
            q = q.where(inferences.c.pipeline == pipeline)
        if awaiting_review:
            q = q.where(inferences.c.request_id.not_in(reviewed))
        if before_seq is not None:
            q = q.where(inferences.c.seq < before_seq)
        with self.db.read() as conn:
            out = []
            for r in conn.execute(q):
                row = _inference(r)
                row.feedback_count = r.n
                out.append(row)
            return out

    def inferences_after(self, seq: int, pipeline: str, limit: int = 500) -> list[InferenceRow]:
        q = sa.select(inferences).where(inferences.c.seq > seq).order_by(inferences.c.seq).limit(limit)
        if pipeline:
            q = q.where(inferences.c.pipeline == pipeline)
        with self.db.read() as conn:
            return [_inference(r) for r in conn.execute(q)]

    def inferences_in(self, pipeline: str, start_us: int, end_us: int) -> list[InferenceRow]:
        q = _window(sa.select(inferences), inferences.c.create_time_us, start_us, end_us)
        if pipeline:
            q = q.where(inferences.c.pipeline == pipeline)
        with self.db.read() as conn:
            return [_inference(r) for r in conn.execute(q)]

    # -- feedback ------------------------------------------------------------------------------

    def add_feedback(self, row: FeedbackRow) -> tuple[FeedbackRow, bool]:
        """(stored row, replayed): a known (created_by, idempotency_key) returns the first row."""
        with self.db.write() as conn:
            if row.idempotency_key:
                existing = conn.execute(sa.select(feedback).where(
                    feedback.c.created_by == row.created_by,
                    feedback.c.idempotency_key == row.idempotency_key)).first()
                if existing is not None:
                    return _feedback(existing), True
            values = {k: v for k, v in row.__dict__.items() if k != "seq"}
            values["labels"] = json.dumps(row.labels)
            values["create_time_us"] = row.create_time_us or now_us()
            seq = conn.execute(feedback.insert().values(**values)).inserted_primary_key[0]
            return _feedback(conn.execute(sa.select(feedback).where(feedback.c.seq == seq)).one()), False

    def list_feedback(self, f: FeedbackFilter, before_seq: int | None, limit: int) -> list[FeedbackRow]:
        q = _window(sa.select(feedback), feedback.c.create_time_us, f.start_us, f.end_us)
        for column, value in ((feedback.c.pipeline, f.pipeline), (feedback.c.pipeline_version, f.pipeline_version),
                              (feedback.c.model_version, f.model_version), (feedback.c.source, f.source)):
            if value:
                q = q.where(column == value)
        if not f.include_quarantined:
            q = q.where(feedback.c.quarantined.is_(False))
        if f.label:  # labels are a JSON list: match the quoted label, then check exactly
            q = q.where(feedback.c.labels.contains(json.dumps(f.label)))
        if before_seq is not None:
            q = q.where(feedback.c.seq < before_seq)
        with self.db.read() as conn:
            rows = [_feedback(r) for r in conn.execute(q.order_by(feedback.c.seq.desc()).limit(limit))]
        return [r for r in rows if not f.label or f.label in r.labels]

    def feedback_after(self, seq: int, pipeline: str, limit: int = 500) -> list[FeedbackRow]:
        q = sa.select(feedback).where(feedback.c.seq > seq).order_by(feedback.c.seq).limit(limit)
        if pipeline:
            q = q.where(feedback.c.pipeline == pipeline)
        with self.db.read() as conn:
            return [_feedback(r) for r in conn.execute(q)]

    def last_seqs(self) -> tuple[int, int]:
        with self.db.read() as conn:
            return (conn.execute(sa.select(sa.func.max(inferences.c.seq))).scalar() or 0,
                    conn.execute(sa.select(sa.func.max(feedback.c.seq))).scalar() or 0)

    def set_quarantine(self, seqs: list[int], created_by: str, quarantined: bool) -> int:
        with self.db.write() as conn:
            if seqs:
                found = {r.seq for r in conn.execute(sa.select(feedback.c.seq).where(feedback.c.seq.in_(seqs)))}
                missing = sorted(set(seqs) - found)
                if missing:
                    raise NotFound(f"no feedback named {', '.join(f'feedback/{s}' for s in missing)}")
                q = feedback.update().where(feedback.c.seq.in_(seqs))
            else:
                q = feedback.update().where(feedback.c.created_by == created_by)
            return conn.execute(q.values(quarantined=quarantined)).rowcount

    def find_by_key(self, created_by: str, key: str) -> FeedbackRow | None:
        with self.db.read() as conn:
            r = conn.execute(sa.select(feedback).where(feedback.c.created_by == created_by,
                                                       feedback.c.idempotency_key == key)).first()
        return None if r is None else _feedback(r)

    def joined(self, pipeline: str, pipeline_version: str, start_us: int, end_us: int
               ) -> list[tuple[InferenceRow, list[FeedbackRow]]]:
        """Each inference in the window with its feedback that is not quarantined, oldest first."""
        q = _window(sa.select(inferences), inferences.c.create_time_us, start_us, end_us).order_by(inferences.c.seq)
        if pipeline:
            q = q.where(inferences.c.pipeline == pipeline)
        if pipeline_version:
            q = q.where(inferences.c.pipeline_version == pipeline_version)
        with self.db.read() as conn:
            rows = [_inference(r) for r in conn.execute(q)]
            by_request: dict[str, list[FeedbackRow]] = {}
            fq = (sa.select(feedback).where(feedback.c.quarantined.is_(False))
                  .where(feedback.c.request_id.in_(sa.select(q.subquery().c.request_id)))
                  .order_by(feedback.c.seq))
            for r in conn.execute(fq):
                by_request.setdefault(r.request_id, []).append(_feedback(r))
        return [(row, by_request.get(row.request_id, [])) for row in rows]
