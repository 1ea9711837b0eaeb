"""Client of the progressive releases in `llmops.finetuning.v1` (ReleaseService, served by the
fine-tuning service)."""

from __future__ import annotations

from collections.abc import Iterator

from llmops.api.finetuning.v1 import evaluation_pb2 as epb
from llmops.api.finetuning.v1 import release_pb2 as pb
from llmops.api.finetuning.v1 import release_pb2_grpc
from llmops.client.base import ServiceClient, operation
from llmops.client.finetuning import replayed_events


class ReleaseClient(ServiceClient):
    service = "release"

    def __init__(self, channel):
        super().__init__(channel)
        self.stub = release_pb2_grpc.ReleaseServiceStub(channel)

    @operation("start")
    def start(self, candidate: str, *, alias: str = "production", steps: list[int] | None = None,
              interval_s: float = 0.0, margins: dict | None = None, judge_route: str = "", rubric: str = "",
              judge_sample_percent: int = 0, idempotency_key: str = "") -> pb.Release:
        """`candidate`: the bundle version (`name@version`); `margins`: ReleaseMargins fields
        (max_error_rate_increase, max_thumbs_down_rate_increase, max_latency_p95_ratio, min_requests,
        max_judge_score_drop, min_judged); `judge_route` and `rubric`: an LLM judge scoring
        `judge_sample_percent` of both versions' live answers."""
        release = pb.Release(candidate=candidate, alias=alias, steps=steps or [], interval_s=interval_s,
                             judge=epb.JudgeSpec(route=judge_route, rubric=rubric),
                             judge_sample_percent=judge_sample_percent)
        if margins is not None:
            release.margins.CopyFrom(pb.ReleaseMargins(**margins))
        return self._unary(self.stub.CreateRelease, pb.CreateReleaseRequest(release=release,
                                                                            idempotency_key=idempotency_key))

    @operation("get")
    def get(self, name: str) -> pb.Release:
        return self._unary(self.stub.GetRelease, pb.GetReleaseRequest(name=name))

    @operation("list")
    def list(self, *, page_size: int = 100) -> list[pb.Release]:
        return self._paged(self.stub.ListReleases, lambda t: pb.ListReleasesRequest(page_size=page_size,
                                                                                    page_token=t), "releases")

    @operation("abort")
    def abort(self, name: str) -> pb.Release:
        return self._unary(self.stub.AbortRelease, pb.AbortReleaseRequest(name=name))

    def watch(self, name: str, *, timeout: float | None = None) -> Iterator:
        """The release's events (steps, judgements, the end) from the first, then live."""
        return replayed_events(lambda t: self.stub.WatchRelease(pb.WatchReleaseRequest(name=name), timeout=t),
                               timeout)
