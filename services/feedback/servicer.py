"""FeedbackService: the inference log (written by the pipeline's outbox), feedback with
idempotency keys and a per-caller rate, the review queue, monitoring summaries, a live watch,
quarantine, and Delta dataset export."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from opentelemetry import trace

from llmops.api.common.v1.chat_pb2 import ChatMessage
from llmops.api.feedback.v1 import feedback_pb2 as pb
from llmops.api.feedback.v1 import feedback_pb2_grpc
from llmops.core import auth, feeds, names, pagination, telemetry
from llmops.core.auth import Role
from llmops.core.errors import InvalidArgument, ResourceExhausted
from llmops.core.feeds import ChangeSignal
from llmops.core.ratelimit import RateLimiter
from llmops.core.timeutil import now_us, timestamp
from services.feedback import export
from services.feedback.config import FeedbackConfig
from services.feedback.store import FeedbackFilter, FeedbackRow, FeedbackStore, InferenceRow
from services.feedback.summary import summarize

SERVICE = pb.DESCRIPTOR.services_by_name["FeedbackService"].full_name
POLICY = auth.Policy.for_service(SERVICE, {
    "LogInference": Role.EDITOR, "LogInferences": Role.EDITOR, "CreateFeedback": Role.REVIEWER, "ListFeedback": Role.READER,
    "GetFeedbackSummary": Role.READER, "WatchFeedback": Role.READER, "ExportDataset": Role.EDITOR,
    "ListInferences": Role.REVIEWER, "SetQuarantine": Role.EDITOR,
})
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")
LABEL = re.compile(r"^[A-Za-z0-9._:/-]{1,64}$")
PIPELINE_VERSION = re.compile(r"^models/([^/]+)/versions/\d+$")
MAX_TEXT = 100_000
WATCH_PAGE = 500  # rows of each log read per step (the store's default page); a full page is read again at once
MAX_PROMPT_MESSAGES = 256
MAX_BATCH = 500
DAY_US = 86_400 * 1_000_000


def _us(ts) -> int:
    return ts.seconds * 1_000_000 + ts.nanos // 1000 if ts.seconds or ts.nanos else 0


def inference_to_pb(r: InferenceRow, payload: bool = True) -> pb.InferenceRecord:
    """The record; without `payload` (a caller below reviewer) its metadata only: no question,
    answer, retrieved text or prompt messages."""
    out = pb.InferenceRecord(
        request_id=r.request_id, trace_id=r.trace_id, pipeline_version=r.pipeline_version,
        prompt_version=r.prompt_version, index_version=r.index_version, model_version=r.model_version,
        chunk_ids=r.chunk_ids, latency_ms=r.latency_ms,
        input_tokens=r.input_tokens, output_tokens=r.output_tokens, caller=r.caller,
        create_time=timestamp(r.create_time_us), pipeline=r.pipeline, feedback_count=r.feedback_count, error=r.error,
        sources=[pb.Source(**{**s, "text": s["text"] if payload else ""}) for s in r.sources])
    if payload:
        out.question, out.answer = r.question, r.answer
        out.prompt_messages.extend(ChatMessage(**m) for m in r.prompt_messages)
    return out


def feedback_to_pb(f: FeedbackRow, payload: bool = True) -> pb.Feedback:
    """The feedback; without `payload` no corrected answer or comment (thumbs, ratings and labels
    stay: they are what monitoring counts)."""
    return pb.Feedback(
        name=f"feedback/{f.seq}", request_id=f.request_id, trace_id=f.trace_id, thumb=f.thumb, rating=f.rating,
        corrected_answer=f.corrected_answer if payload else "", comment=f.comment if payload else "",
        labels=f.labels, reviewer=f.reviewer,
        source=f.source, quarantined=f.quarantined, create_time=timestamp(f.create_time_us),
        created_by=f.created_by, pipeline_version=f.pipeline_version, model_version=f.model_version)


def _prompt(messages, where: str) -> list[dict]:
    if len(messages) > MAX_PROMPT_MESSAGES:
        raise InvalidArgument(f"{where}.prompt_messages has {len(messages)} messages; at most {MAX_PROMPT_MESSAGES}")
    for i, m in enumerate(messages):
        if m.role not in ("system", "user", "assistant"):
            raise InvalidArgument(f"{where}.prompt_messages[{i}].role must be system, user or assistant")
    return [{"role": m.role, "content": m.content[:MAX_TEXT]} for m in messages]


class FeedbackServicer(feedback_pb2_grpc.FeedbackServiceServicer):
    def __init__(self, store: FeedbackStore, config: FeedbackConfig):
        self._store = store
        self._db = store.db
        self._config = config
        self._limiter = RateLimiter(config.feedback_per_minute)
        self._signal = ChangeSignal()  # wakes WatchFeedback after a commit
        self._exports = config.export_locations()

    # -- the inference log ---------------------------------------------------------------------

    @staticmethod
    def _row(r: pb.InferenceRecord, where: str = "record") -> InferenceRow:
        if not REQUEST_ID.match(r.request_id):
            raise InvalidArgument(f"{where}.request_id must be 1-64 characters of letters, digits, '.', '_', ':' or '-'")
        pipeline = r.pipeline or (m.group(1) if (m := PIPELINE_VERSION.match(r.pipeline_version)) else "")
        return InferenceRow(
            r.request_id, r.trace_id[:32], pipeline[:63], r.pipeline_version[:200], r.prompt_version[:200],
            r.index_version[:200], r.model_version[:200], r.question[:MAX_TEXT], r.answer[:MAX_TEXT],
            [{"document_id": s.document_id, "chunk_id": s.chunk_id, "score": s.score, "text": s.text[:MAX_TEXT]}
             for s in r.sources] or [{"document_id": "", "chunk_id": c, "score": 0.0, "text": ""} for c in r.chunk_ids],
            r.latency_ms, r.input_tokens, r.output_tokens, (r.caller or auth.caller().name)[:200],
            _us(r.create_time), prompt_messages=_prompt(r.prompt_messages, where), error=r.error[:200])

    async def LogInference(self, request, context) -> pb.LogInferenceResponse:
        row = self._row(request.record)
        stored, duplicate = await self._db.run(self._store.log_inference, row)
        telemetry.annotate(request_id=row.request_id, duplicate=duplicate, pipeline=row.pipeline)
        if not duplicate:
            self._signal.notify()
        return pb.LogInferenceResponse(record=inference_to_pb(stored), duplicate=duplicate)

    async def LogInferences(self, request, context) -> pb.LogInferencesResponse:
        if not 1 <= len(request.records) <= MAX_BATCH:
            raise InvalidArgument(f"send 1-{MAX_BATCH} records per call")
        rows = [self._row(r, f"records[{i}]") for i, r in enumerate(request.records)]
        stored, duplicates = await self._db.run(self._store.log_inferences, rows)
        telemetry.annotate(records=len(rows), stored=stored, duplicates=duplicates)
        if stored:
            self._signal.notify()
        return pb.LogInferencesResponse(stored=stored, duplicates=duplicates)

    async def ListInferences(self, request, context) -> pb.ListInferencesResponse:
        if request.pipeline:
            names.check_id("pipeline", request.pipeline)
        page = pagination.start(request, {"list": "inferences", "pipeline": request.pipeline,
                                          "awaiting": request.awaiting_review}, int)
        rows, token = page.finish(await self._db.run_read(self._store.list_inferences, request.pipeline,
                                                          request.awaiting_review, page.position, page.limit),
                                  lambda r: r.seq)
        return pb.ListInferencesResponse(inferences=[inference_to_pb(r) for r in rows], next_page_token=token)

    # -- feedback ------------------------------------------------------------------------------

    def _check_feedback(self, f: pb.Feedback, key: str) -> None:
        if not f.request_id and not f.trace_id:
            raise InvalidArgument("feedback needs request_id or trace_id (both come back with every answer)")
        if f.request_id and not REQUEST_ID.match(f.request_id):
            raise InvalidArgument("request_id is malformed")
        if f.trace_id and not TRACE_ID.match(f.trace_id):
            raise InvalidArgument("trace_id must be 32 lowercase hex characters")
        if not 0 <= f.rating <= 5:
            raise InvalidArgument(f"rating {f.rating} is out of range: give 1-5 (0: no rating)")
        if not (f.thumb or f.rating or f.corrected_answer.strip() or f.comment.strip() or f.labels):
            raise InvalidArgument("feedback is empty: give a thumb, a rating, a corrected answer, a comment or labels")
        if len(f.corrected_answer) > MAX_TEXT or len(f.comment) > MAX_TEXT:
            raise InvalidArgument(f"corrected_answer and comment are limited to {MAX_TEXT} characters")
        if len(f.labels) > 20 or any(not LABEL.match(x) for x in f.labels):
            raise InvalidArgument("labels: up to 20, each 1-64 characters of letters, digits, '.', '_', ':', '/' or '-'")
        if key and not IDEMPOTENCY_KEY.match(key):
            raise InvalidArgument("idempotency_key must be up to 128 characters of letters, digits and '.', '_', "
                                  "':', '-' or '/'")

    async def CreateFeedback(self, request, context) -> pb.Feedback:
        f, key = request.feedback, request.idempotency_key
        self._check_feedback(f, key)
        me = auth.caller().name
        if key:
            replay = await self._db.run_read(self._store.find_by_key, me, key)
            if replay is not None:  # a retry: the same result, no second row
                trace.get_current_span().set_attribute("llmops.replayed", True)
                return feedback_to_pb(replay)
        wait = self._limiter.admit(me)
        if wait is not None:
            raise ResourceExhausted(f"{me} gave more than {self._limiter.limit} pieces of feedback in the last "
                                    "minute; slow down", retry_after_s=wait)
        inference = await self._db.run_read(self._store.find_inference, f.request_id, f.trace_id)
        row = FeedbackRow(
            inference.request_id, inference.trace_id, inference.pipeline, inference.pipeline_version,
            inference.model_version, f.thumb, f.rating, f.corrected_answer, f.comment, list(f.labels),
            (f.reviewer or me)[:200], f.source or pb.FEEDBACK_SOURCE_REVIEWER, me, idempotency_key=key or None)
        stored, _ = await self._db.run(self._store.add_feedback, row)
        telemetry.annotate(request_id=inference.request_id, feedback=f"feedback/{stored.seq}")
        self._signal.notify()
        return feedback_to_pb(stored)

    async def ListFeedback(self, request, context) -> pb.ListFeedbackResponse:
        if request.pipeline:
            names.check_id("pipeline", request.pipeline)
        filt = FeedbackFilter(pipeline=request.pipeline, model_version=request.model_version, source=request.source,
                              label=request.label, start_us=_us(request.start_time), end_us=_us(request.end_time))
        page = pagination.start(request, {"list": "feedback", **filt.__dict__}, int)
        rows, token = page.finish(await self._db.run_read(self._store.list_feedback, filt, page.position, page.limit),
                                  lambda r: r.seq)
        payload = auth.sees_payload()
        return pb.ListFeedbackResponse(feedback=[feedback_to_pb(r, payload) for r in rows], next_page_token=token)

    async def SetQuarantine(self, request, context) -> pb.SetQuarantineResponse:
        if bool(request.names) == bool(request.created_by):
            raise InvalidArgument("give feedback names or created_by (exactly one)")
        seqs = []
        for n in request.names:
            ident = n.removeprefix("feedback/")
            if not ident.isdigit():
                raise InvalidArgument(f"malformed feedback name {n[:80]!r}; use `feedback/{{id}}`")
            seqs.append(int(ident))
        updated = await self._db.run(self._store.set_quarantine, seqs, request.created_by, request.quarantined)
        telemetry.annotate(quarantined=request.quarantined, updated=updated)
        return pb.SetQuarantineResponse(updated=updated)

    # -- monitoring ----------------------------------------------------------------------------

    @staticmethod
    def _window(start, end) -> tuple[int, int]:
        end_us = _us(end) or now_us()
        start_us = _us(start) or end_us - DAY_US
        if start_us >= end_us:
            raise InvalidArgument("the window is empty: start_time must be before end_time")
        return start_us, end_us

    async def GetFeedbackSummary(self, request, context) -> pb.GetFeedbackSummaryResponse:
        if request.pipeline:
            names.check_id("pipeline", request.pipeline)
        start_us, end_us = self._window(request.start_time, request.end_time)
        rows = await self._db.run(self._store.joined, request.pipeline, "", start_us, end_us)
        return pb.GetFeedbackSummaryResponse(summaries=[pb.FeedbackSummary(**s.__dict__) for s in summarize(rows)])

    async def WatchFeedback(self, request, context) -> AsyncIterator[pb.WatchFeedbackResponse]:
        if request.pipeline:
            names.check_id("pipeline", request.pipeline)
        payload = auth.sees_payload()  # readers watch the metadata of the traffic, not its content
        inference_seq, feedback_seq = await self._db.run_read(self._store.last_seqs)
        # The headers say the watch has begun: everything committed from now on will be sent
        # (a caller that must not miss a record waits for them before writing).
        await context.send_initial_metadata(())

        async def read() -> list[pb.WatchFeedbackResponse]:
            nonlocal inference_seq, feedback_seq
            records = await self._db.run_read(self._store.inferences_after, inference_seq, request.pipeline)
            given = await self._db.run_read(self._store.feedback_after, feedback_seq, request.pipeline)
            inference_seq = records[-1].seq if records else inference_seq
            feedback_seq = given[-1].seq if given else feedback_seq
            return ([pb.WatchFeedbackResponse(inference=inference_to_pb(r, payload)) for r in records]
                    + [pb.WatchFeedbackResponse(feedback=feedback_to_pb(f, payload)) for f in given])

        async for message in feeds.follow(self._signal, self._config.watch_poll_s, read, page=WATCH_PAGE):
            yield message

    # -- datasets ------------------------------------------------------------------------------

    async def ExportDataset(self, request, context) -> pb.ExportDatasetResponse:
        if request.format not in (pb.DATASET_FORMAT_CHAT, pb.DATASET_FORMAT_EVALUATION):
            raise InvalidArgument("format must be DATASET_FORMAT_CHAT or DATASET_FORMAT_EVALUATION")
        uri = self._exports.resolve(request.table_uri, "table_uri")
        start_us, end_us = _us(request.start_time), _us(request.end_time)
        if start_us and end_us and start_us >= end_us:
            raise InvalidArgument("the window is empty: start_time must be before end_time")
        rows = await self._db.run(self._store.joined, "", request.pipeline_version, start_us, end_us)
        selected = export.select(rows, export.Selection(request.corrected_only, request.thumbs_up_only))
        table = export.arrow_table(selected, request.format)
        version = await asyncio.to_thread(export.write, uri, table)
        telemetry.annotate(table_uri=uri, table_version=version, rows=table.num_rows)
        return pb.ExportDatasetResponse(table_uri=uri, table_version=version, row_count=table.num_rows)
