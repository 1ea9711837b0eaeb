"""Client of the evaluation runs in `llmops.finetuning.v1` (EvaluationService, served by the
fine-tuning service)."""

from __future__ import annotations

from collections.abc import Iterator

from llmops.api.finetuning.v1 import evaluation_pb2 as pb
from llmops.api.finetuning.v1 import evaluation_pb2_grpc
from llmops.client.base import ServiceClient, operation
from llmops.client.finetuning import replayed_events


class EvaluationClient(ServiceClient):
    service = "evaluation"

    def __init__(self, channel):
        super().__init__(channel)
        self.stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)

    @operation("create")
    def create(self, target: str, dataset_uri: str, *, dataset_version: str = "", baseline: str = "",
               concurrency: int = 0, limit: int = 0, max_tokens: int = 0, judge_route: str = "",
               rubric: str = "", idempotency_key: str = "") -> pb.Evaluation:
        """`target` and `baseline`: `name@version`, `name@alias` (a model or a pipeline bundle) or
        `route:NAME`; no baseline: the target model's `production` version when it is another."""
        evaluation = pb.Evaluation(target=target, baseline=baseline, dataset_uri=dataset_uri,
                                   dataset_version=dataset_version, concurrency=concurrency, limit=limit,
                                   max_tokens=max_tokens, judge=pb.JudgeSpec(route=judge_route, rubric=rubric))
        return self._unary(self.stub.CreateEvaluation, pb.CreateEvaluationRequest(
            evaluation=evaluation, idempotency_key=idempotency_key), timeout=300)

    @operation("get")
    def get(self, name: str) -> pb.Evaluation:
        return self._unary(self.stub.GetEvaluation, pb.GetEvaluationRequest(name=name))

    @operation("list")
    def list(self, *, target_version: str = "", page_size: int = 100) -> list[pb.Evaluation]:
        return self._paged(self.stub.ListEvaluations, lambda t: pb.ListEvaluationsRequest(
            page_size=page_size, page_token=t, target_version=target_version), "evaluations")

    @operation("rows")
    def rows(self, name: str, *, page_size: int = 500) -> list[pb.EvaluationRow]:
        return self._paged(self.stub.ListEvaluationRows, lambda t: pb.ListEvaluationRowsRequest(
            name=name, page_size=page_size, page_token=t), "rows")

    @operation("cancel")
    def cancel(self, name: str) -> pb.Evaluation:
        return self._unary(self.stub.CancelEvaluation, pb.CancelEvaluationRequest(name=name))

    def watch(self, name: str, *, timeout: float | None = None) -> Iterator:
        """The evaluation's events (one per row answered) from the first, then live, until it ends."""
        return replayed_events(lambda t: self.stub.WatchEvaluation(pb.WatchEvaluationRequest(name=name), timeout=t),
                               timeout)
