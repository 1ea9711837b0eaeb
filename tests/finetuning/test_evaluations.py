"""Evaluation runs over the wire with the real stack: a bundle candidate answered beside its
production champion row for row, scored (retrieval, answers), compared, recorded against the
candidate in the registry and read by the approval gate; a model version through its pinned
evaluation route with an LLM judge; a route that errors measured as errors; a run that survives
a restart of the service without answering a row twice, and one that is cancelled."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from llmops.api.finetuning.v1 import evaluation_pb2 as epb
from llmops.api.finetuning.v1 import finetuning_pb2 as fpb
from llmops.api.registry.v1 import registry_pb2 as rpb
from llmops.client.generation import provider_target
from llmops.core import auth
from llmops.evaluation import datasets
from llmops.testing.services import code_of, until_ended

pytestmark = pytest.mark.slow  # the whole stack

ROWS = [{"question": "Who may move the production alias?", "reference_answer": "An approver.",
         "sources": ["approvals.md"]},
        {"question": "What do routes limit for each caller?", "reference_answer": "Requests and tokens.",
         "sources": ["limits.md"]},
        {"question": "What comes back to the caller with the answer?", "reference_answer": "The trace id.",
         "sources": ["tracing.md"]}]


def _dataset(rag, tmp_path, name: str, rows: list[dict]) -> str:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    datasets.upload(rag.client("admin").registry, name, path)
    return f"registry:{name}"


def _wait(client, name: str, timeout: float = 120.0) -> epb.Evaluation:
    return until_ended(lambda: client.evaluation.get(name), timeout)


def test_a_bundle_candidate_is_compared_with_production_recorded_and_read_by_the_gate(rag, tmp_path):
    dataset = _dataset(rag, tmp_path, "eval-kb", ROWS)
    rag.bundle("eval-qa", "demo", {"max_tokens": 24, "seed": 1})  # v1, approved, production
    admin, editor, approver = rag.client("admin"), rag.client("editor"), rag.client("approver")
    candidate = admin.registry.create_pipeline_version("eval-qa", prompt_template="qa@1", index="kb", route="demo",
                                                       parameters={"max_tokens": 16, "seed": 1})
    approver.registry.set_gate("eval-qa", rpb.ApprovalGate(dataset_uri=dataset, metric="hit_rate",
                                                           require_confidence=True))
    code, message = code_of(lambda: approver.registry.approve(candidate.name))
    assert code is grpc.StatusCode.FAILED_PRECONDITION and "no" in message and dataset in message

    e = editor.evaluation.create(f"eval-qa@{candidate.version}", dataset, concurrency=4, max_tokens=16)
    assert (e.target_kind, e.target_version, e.baseline_version, e.total_rows) == (
        epb.TARGET_KIND_PIPELINE, candidate.name, "models/eval-qa/versions/1", 6)
    events = list(editor.evaluation.watch(e.name))
    progress = [x for x in events if x.message.startswith("progress:")]
    assert [x.step for x in progress] == [1, 2, 3, 4, 5, 6]  # one event per row, counted once
    assert events[-1].state == fpb.JOB_STATE_SUCCEEDED and f"recorded against {candidate.name}" in events[-1].message
    e = editor.evaluation.get(e.name)
    assert e.state == fpb.JOB_STATE_SUCCEEDED and e.recorded and e.rows_done == 6
    assert e.metrics["hit_rate"] == 1.0 and e.metrics["recall"] == 1.0 and e.metrics["rows"] == 3
    assert e.baseline_metrics["hit_rate"] == 1.0 and e.metrics["error_rate"] == 0.0
    hit = next(c for c in e.comparisons if c.metric == "hit_rate")
    assert (hit.difference, hit.ci_low, hit.ci_high, hit.rows) == (0.0, 0.0, 0.0, 3) and hit.HasField("p_value")

    rows = rag.client("reviewer").evaluation.rows(e.name)
    assert [(r.index, r.side) for r in rows] == [(i, s) for i in range(3) for s in ("target", "baseline")]
    assert rows[0].question == ROWS[0]["question"] and rows[0].cited and rows[0].scores["hit"] == 1.0
    hidden = rag.client("reader").evaluation.rows(e.name)
    assert hidden[0].question == auth.REDACTED and hidden[0].scores == rows[0].scores

    [record] = rag.client("reader").registry.evaluation_records(candidate.name)
    assert record.evaluation == e.name and record.recorded_by == "service-finetuning"
    assert record.comparisons["hit_rate"].champion_version == "models/eval-qa/versions/1"
    assert approver.registry.approve(candidate.name).status == rpb.VERSION_STATUS_APPROVED
    assert [x.name for x in editor.evaluation.list(target_version=candidate.name)] == [e.name]


def test_a_model_version_is_answered_through_its_pinned_route_and_judged(rag, tmp_path):
    dataset = _dataset(rag, tmp_path, "eval-judge", ROWS[:2])
    rubric = rag.rubric("eval-rubric")
    editor = rag.client("editor")
    e = _wait(editor, editor.evaluation.create("demo@production", dataset, judge_route="ext",
                                               rubric=f"eval-rubric@{rubric.version}").name)
    assert e.state == fpb.JOB_STATE_SUCCEEDED and e.target_kind == epb.TARGET_KIND_MODEL
    assert e.target_version == "models/demo/versions/1" and not e.baseline_version  # production is the target
    assert e.metrics["judge_score"] == 1.0 and e.metrics["mean_output_tokens"] > 0
    route = rag.client().generation.get_route("eval-demo-1")  # created by the service's granted key
    assert [t.registry_model for t in route.targets] == ["demo@1"]
    rows = rag.client("reviewer").evaluation.rows(e.name)
    assert all(r.judge_score == 1.0 and r.judge_reason.startswith("Question: ") for r in rows)
    # a judge that does not exist, a baseline of another kind, and settings out of range
    for kwargs, want in (({"judge_route": "ext", "rubric": "no-such-rubric@1"}, grpc.StatusCode.NOT_FOUND),
                         ({"baseline": "route:ext"}, grpc.StatusCode.FAILED_PRECONDITION),
                         ({"concurrency": 99}, grpc.StatusCode.INVALID_ARGUMENT)):
        assert code_of(lambda k=kwargs: editor.evaluation.create("demo@1", dataset, **k))[0] is want
    assert code_of(lambda: editor.evaluation.create("demo@9", dataset))[0] is grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: rag.client().evaluation.create("demo@1", dataset))[0] is grpc.StatusCode.PERMISSION_DENIED


def test_a_route_that_errors_is_measured_as_errors(rag, tmp_path):
    dataset = _dataset(rag, tmp_path, "eval-errors", ROWS)
    rag.client("admin").generation.create_route("eval-stale", [provider_target(
        rag.fake.base_url, "echo-1", "env:LLMOPS_PROVIDER_STALE_KEY")])
    editor = rag.client("editor")
    e = _wait(editor, editor.evaluation.create("route:eval-stale", dataset, baseline="route:ext").name)
    assert e.state == fpb.JOB_STATE_SUCCEEDED and not e.recorded  # a route is no registry version
    assert e.metrics["error_rate"] == 1.0 and e.baseline_metrics["error_rate"] == 0.0
    assert e.metrics["token_f1"] == 0.0 and e.baseline_metrics["token_f1"] > 0
    errors = next(c for c in e.comparisons if c.metric == "error_rate")
    assert errors.difference == 1.0
    rows = rag.client("reviewer").evaluation.rows(e.name)
    assert all(r.error for r in rows if r.side == "target") and not any(r.error for r in rows if r.side == "baseline")


def test_a_run_resumes_after_a_restart_without_answering_a_row_twice_and_a_cancel_stops_it(rag, tmp_path):
    many = [{"question": f"Question {i}: what do routes limit?", "reference_answer": "echo"} for i in range(30)]
    dataset = _dataset(rag, tmp_path, "eval-long", many)
    editor = rag.client("editor")
    rag.fake.answer_delay_s = 0.1
    try:
        e = editor.evaluation.create("route:ext", dataset, concurrency=2)
        deadline = time.monotonic() + 60
        while editor.evaluation.get(e.name).rows_done < 4:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        rag.restart("finetuning")
        asked_before = len(rag.fake.requests)
        e = _wait(editor, e.name)
        assert e.state == fpb.JOB_STATE_SUCCEEDED and e.rows_done == 30 and e.metrics["rows"] == 30
        rows = rag.client("reviewer").evaluation.rows(e.name)
        assert sorted(r.index for r in rows) == list(range(30))
        assert len(rag.fake.requests) - asked_before < 30  # the rows stored before the restart were not asked again
        events = [x.message for x in editor.evaluation.watch(e.name)]
        assert any("the service restarted; the evaluation resumes" in m for m in events)

        c = editor.evaluation.create("route:ext", dataset, concurrency=1)
        while editor.evaluation.get(c.name).rows_done < 2:
            time.sleep(0.05)
        cancelled = editor.evaluation.cancel(c.name)
        assert cancelled.state in (fpb.JOB_STATE_CANCELLING, fpb.JOB_STATE_CANCELLED)
        c = _wait(editor, c.name, timeout=30)
        assert c.state == fpb.JOB_STATE_CANCELLED and c.rows_done < 30 and not c.recorded
        assert code_of(lambda: editor.evaluation.cancel(c.name))[0] is grpc.StatusCode.FAILED_PRECONDITION
    finally:
        rag.fake.answer_delay_s = 0.0
