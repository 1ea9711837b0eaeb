"""Progressive delivery end to end, with the real services and time compressed by configuration
(a release poll of 0.2 s, steps of a second or two): a good bundle version is promoted through
every canary step while traffic flows, across a restart of the service that runs the release; a
version whose route errors is rolled back automatically as soon as the signals show it, with the
reason in the release and in the registry's audit trail; an abort gives the traffic back."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from llmops.api.finetuning.v1 import finetuning_pb2 as fpb
from llmops.api.registry.v1 import registry_pb2 as rpb
from llmops.client import CallError
from llmops.client.generation import provider_target
from llmops.testing.services import code_of, until_ended

pytestmark = pytest.mark.slow  # the whole stack

MARGINS = {"max_error_rate_increase": 0.05, "max_thumbs_down_rate_increase": 0.1, "max_latency_p95_ratio": 5.0,
           "min_requests": 5}


class Traffic:
    """Readers asking `pipeline@production` in a loop until stopped: which version answered each
    request, and when each one failed."""

    def __init__(self, rag, pipeline: str, threads: int = 2):
        self.client, self.pipeline = rag.client(), pipeline
        self.served: list[str] = []
        self.failures: list[float] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                out = self.client.pipeline.run(f"{self.pipeline}@production", "What do routes limit?", timeout=10)
                self.served.append(out.versions.pipeline)
            except CallError:
                self.failures.append(time.time())
            time.sleep(0.02)

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)


def _ended(client, name: str, timeout: float = 120.0):
    return until_ended(lambda: client.release.get(name), timeout)


def _canary_events(admin, model: str) -> list:
    return [e for e in admin.registry.list_events(model) if e.type == rpb.EVENT_TYPE_CANARY_SET]


def test_a_good_candidate_is_promoted_through_every_step_across_a_restart(rag):
    admin, approver = rag.client("admin"), rag.client("approver")
    rag.bundle("rel-good", "ext", {"max_tokens": 40})
    candidate = admin.registry.create_pipeline_version("rel-good", prompt_template="qa@1", index="kb", route="ext",
                                                       parameters={"max_tokens": 30})
    assert code_of(lambda: approver.release.start(f"rel-good@{candidate.version}"))[0] is \
        grpc.StatusCode.FAILED_PRECONDITION  # not approved yet
    approver.registry.approve(candidate.name)
    assert code_of(lambda: rag.client("editor").release.start(f"rel-good@{candidate.version}"))[0] is \
        grpc.StatusCode.PERMISSION_DENIED
    rubric = rag.rubric("rel-rubric")
    with Traffic(rag, "rel-good") as traffic:
        r = approver.release.start(f"rel-good@{candidate.version}", steps=[25, 50, 100], interval_s=1.5,
                                   margins={**MARGINS, "min_judged": 2}, judge_route="ext",
                                   rubric=f"rel-rubric@{rubric.version}", judge_sample_percent=100)
        assert (r.stable_version, r.candidate_version) == ("models/rel-good/versions/1", candidate.name)
        assert code_of(lambda: approver.release.start(f"rel-good@{candidate.version}"))[0] is \
            grpc.StatusCode.FAILED_PRECONDITION  # one release of a bundle at a time
        deadline = time.monotonic() + 30
        while approver.release.get(r.name).percent != 25:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        rag.restart("finetuning")  # the release resumes its step
        r = _ended(approver, r.name)
    assert r.state == fpb.JOB_STATE_SUCCEEDED and r.steps_passed == 3 and r.percent == 100, r.outcome
    assert r.outcome == f"promoted: production points to {candidate.name}"
    assert admin.registry.get_model("rel-good").aliases["production"] == candidate.version
    assert "production" not in admin.registry.get_model("rel-good").canaries
    served = {v: traffic.served.count(v) for v in set(traffic.served)}
    assert served.get(candidate.name, 0) >= 10 and served.get("models/rel-good/versions/1", 0) >= 10, served
    assert not traffic.failures
    assert [e.details["percent"] for e in _canary_events(admin, "rel-good")] == ["25", "50"]
    messages = [e.message for e in approver.release.watch(r.name)]
    assert any("the service restarted; the release resumes" in m for m in messages), messages
    assert sum("passed at" in m for m in messages) == 2 and r.candidate_signals["requests"] >= 5
    # the judge scored live answers of both sides (the loopback provider's verdict is always 1)
    assert r.candidate_signals["judged"] >= 2 and r.stable_signals["judged"] >= 2
    assert r.candidate_signals["judge_score"] == r.stable_signals["judge_score"] == 1.0


def test_a_candidate_whose_route_errors_is_rolled_back_at_once_and_an_abort_gives_traffic_back(rag):
    admin, approver = rag.client("admin"), rag.client("approver")
    rag.bundle("rel-bad", "ext", {"max_tokens": 40})
    admin.generation.create_route("rel-broken", [provider_target(rag.fake.base_url, "echo-1",
                                                                 "env:LLMOPS_PROVIDER_STALE_KEY")])
    broken = admin.registry.create_pipeline_version("rel-bad", prompt_template="qa@1", index="kb",
                                                    route="rel-broken", parameters={"max_tokens": 30})
    approver.registry.approve(broken.name, "the evaluation set does not cover provider keys")
    with Traffic(rag, "rel-bad") as traffic:
        r = approver.release.start(f"rel-bad@{broken.version}", steps=[30, 100], interval_s=60, margins=MARGINS)
        r = _ended(approver, r.name, timeout=60)
    assert r.state == fpb.JOB_STATE_FAILED and r.steps_passed == 0 and r.percent == 0
    assert r.outcome.startswith("rolled back at 30%: error rate 100.0% vs 0.0%"), r.outcome
    assert r.candidate_signals["error_rate"] == 1.0 and r.candidate_signals["requests"] >= 5
    model = admin.registry.get_model("rel-bad")
    assert model.aliases["production"] == 1 and "production" not in model.canaries
    ended = _canary_events(admin, "rel-bad")[-1]
    assert ended.details["percent"] == "0" and ended.actor == "service-finetuning"
    assert ended.details["reason"].startswith(f"{r.name}: rolled back: error rate 100.0%")
    # from the request that made the breach visible (the 5th failure) to the rollback
    breach_to_rollback = r.end_time.ToMicroseconds() / 1e6 - traffic.failures[MARGINS["min_requests"] - 1]
    print(f"\nbreach to rollback: {breach_to_rollback:.2f} s ({len(traffic.failures)} failed requests in all)")
    assert breach_to_rollback < 10

    admin.generation.create_route("rel-slow-ok", [provider_target(rag.fake.base_url, "echo-1",
                                                                  "env:LLMOPS_PROVIDER_TEST_KEY")])
    fine = admin.registry.create_pipeline_version("rel-bad", prompt_template="qa@1", index="kb", route="rel-slow-ok",
                                                  parameters={"max_tokens": 30})
    approver.registry.approve(fine.name)
    r = approver.release.start(f"rel-bad@{fine.version}", steps=[50, 100], interval_s=60, margins=MARGINS)
    deadline = time.monotonic() + 30
    while admin.registry.get_model("rel-bad").canaries.get("production", rpb.Canary()).version != fine.version:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert rag.client("editor") and code_of(lambda: rag.client("editor").release.abort(r.name))[0] is \
        grpc.StatusCode.PERMISSION_DENIED
    approver.release.abort(r.name)
    r = _ended(approver, r.name, timeout=30)
    assert r.state == fpb.JOB_STATE_CANCELLED and "production" not in admin.registry.get_model("rel-bad").canaries
    assert code_of(lambda: approver.release.abort(r.name))[0] is grpc.StatusCode.FAILED_PRECONDITION
