"""The inference log's outbox: every answered request is written to the pipeline's own SQL store
before the answer's last message goes out, and a background task delivers it to the feedback
service. Logging never blocks on, or fails because of, the feedback service: when it is down or
restarting, records wait here (across pipeline restarts too) and go out when it is back.
LogInference is idempotent by request id, so a record delivered twice (its acknowledgement lost)
is still stored once.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
import sqlalchemy as sa

from llmops.api.feedback.v1 import feedback_pb2 as fpb
from llmops.core.storage import Database, Migration
from llmops.core.timeutil import now_us

log = logging.getLogger(__name__)
meta = sa.MetaData()
outbox = sa.Table(
    "inference_outbox", meta,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False, unique=True),
    sa.Column("record", sa.LargeBinary, nullable=False),  # a serialized InferenceRecord
    sa.Column("create_time_us", sa.BigInteger, nullable=False),
)
MIGRATIONS = [Migration(1, "inference outbox", lambda conn: meta.create_all(conn))]
RETRY = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAUTHENTICATED,
         grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL,
         grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED}


class InferenceOutbox:
    def __init__(self, db: Database, feedback_stub, *, batch: int = 64, linger_s: float = 0.25,
                 max_backoff_s: float = 10.0):
        self._db = db
        self._stub = feedback_stub
        self._batch = batch
        self._linger = linger_s  # after a wake-up, gather what else arrives: one call per batch
        self._max_backoff = max_backoff_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.delivered = 0

    def migrate(self) -> None:
        self._db.migrate(MIGRATIONS)

    def _insert(self, record: fpb.InferenceRecord) -> None:
        with self._db.write() as conn:
            conn.execute(outbox.insert().values(request_id=record.request_id, record=record.SerializeToString(),
                                                create_time_us=now_us()))

    async def add(self, record: fpb.InferenceRecord) -> None:
        """Durably queue one record (returns once it is written), then wake the deliverer."""
        await self._db.run(self._insert, record)
        self._wake.set()

    def pending(self) -> int:
        with self._db.read() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar() or 0

    def _due(self) -> list[tuple[int, bytes]]:
        with self._db.read() as conn:
            return [(r.seq, r.record) for r in conn.execute(
                sa.select(outbox.c.seq, outbox.c.record).order_by(outbox.c.seq).limit(self._batch))]

    def _delete(self, seqs: list[int]) -> None:
        with self._db.write() as conn:
            conn.execute(outbox.delete().where(outbox.c.seq.in_(seqs)))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            self._wake.clear()  # before reading: a record added from now on wakes the wait below
            try:
                delivered, blocked = await self._deliver_batch()
            except Exception:  # the deliverer must outlive any one failure
                log.exception("inference outbox: delivery failed; retrying")
                delivered, blocked = 0, True
            if blocked:  # the feedback service is away: back off (new records do not hurry it)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = 0.2
            if delivered < self._batch:  # caught up: wait for the next record (or look again in a while)
                try:
                    await asyncio.wait_for(self._wake.wait(), 5.0)
                except TimeoutError:
                    continue
                await asyncio.sleep(self._linger)

    async def _deliver_batch(self) -> tuple[int, bool]:
        """(records delivered, whether delivery is blocked and should back off). A batch goes in
        one call; a batch the service refuses as malformed is retried one record at a time, so
        one bad record is dropped (and logged) without holding up the rest."""
        rows = await self._db.run(self._due)
        if not rows:
            return 0, False
        records = [fpb.InferenceRecord.FromString(data) for _, data in rows]
        try:
            await self._stub.LogInferences(fpb.LogInferencesRequest(records=records), timeout=10.0)
            done = [seq for seq, _ in rows]
        except grpc.aio.AioRpcError as exc:
            if exc.code() in RETRY:
                self._refused(exc, f"{len(records)} records")
                return 0, True
            done, blocked = [], False
            for (seq, _), record in zip(rows, records, strict=True):
                try:
                    await self._stub.LogInferences(fpb.LogInferencesRequest(records=[record]), timeout=10.0)
                except grpc.aio.AioRpcError as one:
                    if one.code() in RETRY:
                        self._refused(one, record.request_id)
                        blocked = True
                        break
                    log.error("inference outbox: dropping %s, which the feedback service cannot accept (%s: %s)",
                              record.request_id, one.code().name, one.details())
                done.append(seq)
            if not done:
                return 0, blocked
        await self._db.run(self._delete, done)
        self.delivered += len(done)
        return len(done), False

    @staticmethod
    def _refused(exc: grpc.aio.AioRpcError, what: str) -> None:
        if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            log.warning("inference outbox: the feedback service refused %s (%s: %s); will retry", what,
                        exc.code().name, exc.details())
