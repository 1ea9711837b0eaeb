"""Client of `llmops.feedback.v1`: feedback on answers, the review queue, summaries, the live
watch, quarantine and dataset export."""

from __future__ import annotations

from collections.abc import Iterator

from llmops.api.feedback.v1 import feedback_pb2 as pb
from llmops.api.feedback.v1 import feedback_pb2_grpc
from llmops.client.base import ServiceClient, operation, reopening
from llmops.core.timeutil import timestamp

THUMBS = {None: pb.THUMB_UNSPECIFIED, "up": pb.THUMB_UP, "down": pb.THUMB_DOWN}
SOURCES = {"end_user": pb.FEEDBACK_SOURCE_END_USER, "reviewer": pb.FEEDBACK_SOURCE_REVIEWER,
           "judge": pb.FEEDBACK_SOURCE_AUTOMATED_JUDGE}
FORMATS = {"chat": pb.DATASET_FORMAT_CHAT, "evaluation": pb.DATASET_FORMAT_EVALUATION}


def _ts(us: int | None):
    return timestamp(us) if us else None


class FeedbackClient(ServiceClient):
    service = "feedback"

    def __init__(self, channel):
        super().__init__(channel)
        self.stub = feedback_pb2_grpc.FeedbackServiceStub(channel)

    @operation("create")
    def give(self, *, request_id: str = "", trace_id: str = "", thumb: str | None = None, rating: int = 0,
             corrected_answer: str = "", comment: str = "", labels: list[str] | None = None,
             source: str = "reviewer", idempotency_key: str = "") -> pb.Feedback:
        """Feedback on one answer; `thumb` is "up", "down" or None."""
        f = pb.Feedback(request_id=request_id, trace_id=trace_id, thumb=THUMBS[thumb], rating=rating,
                        corrected_answer=corrected_answer, comment=comment, labels=labels or [],
                        source=SOURCES[source])
        return self._unary(self.stub.CreateFeedback, pb.CreateFeedbackRequest(feedback=f,
                                                                             idempotency_key=idempotency_key))

    @operation("list")
    def list(self, *, pipeline: str = "", model_version: str = "", source: str = "", label: str = "",
             start_us: int = 0, end_us: int = 0, page_size: int = 100) -> list[pb.Feedback]:
        return self._paged(self.stub.ListFeedback, lambda token: pb.ListFeedbackRequest(
            pipeline=pipeline, model_version=model_version, source=SOURCES.get(source, 0), label=label,
            start_time=_ts(start_us), end_time=_ts(end_us), page_size=page_size, page_token=token), "feedback")

    @operation("list_inferences")
    def inferences(self, *, pipeline: str = "", awaiting_review: bool = False, limit: int = 50
                   ) -> list[pb.InferenceRecord]:
        resp = self._unary(self.stub.ListInferences, pb.ListInferencesRequest(
            pipeline=pipeline, awaiting_review=awaiting_review, page_size=limit))
        return list(resp.inferences)

    @operation("summary")
    def summary(self, pipeline: str = "", *, start_us: int = 0, end_us: int = 0) -> list[pb.FeedbackSummary]:
        return list(self._unary(self.stub.GetFeedbackSummary, pb.GetFeedbackSummaryRequest(
            pipeline=pipeline, start_time=_ts(start_us), end_time=_ts(end_us))).summaries)

    @operation("export")
    def export(self, table_uri: str, *, format: str = "chat", corrected_only: bool = False,
               thumbs_up_only: bool = False, pipeline_version: str = "", start_us: int = 0,
               end_us: int = 0) -> pb.ExportDatasetResponse:
        return self._unary(self.stub.ExportDataset, pb.ExportDatasetRequest(
            table_uri=table_uri, format=FORMATS[format], corrected_only=corrected_only,
            thumbs_up_only=thumbs_up_only, pipeline_version=pipeline_version, start_time=_ts(start_us),
            end_time=_ts(end_us)), timeout=300)

    @operation("quarantine")
    def quarantine(self, *, names: list[str] | None = None, created_by: str = "", release: bool = False) -> int:
        return self._unary(self.stub.SetQuarantine, pb.SetQuarantineRequest(
            names=names or [], created_by=created_by, quarantined=not release)).updated

    def watch(self, pipeline: str = "", *, timeout: float | None = None) -> Iterator[pb.WatchFeedbackResponse]:
        """New inference records and feedback as they arrive; closing the iterator ends the watch
        (a stream the server ends at its maximum age is reopened)."""
        yield from reopening(lambda t: self.stub.WatchFeedback(pb.WatchFeedbackRequest(pipeline=pipeline), timeout=t),
                             timeout)
