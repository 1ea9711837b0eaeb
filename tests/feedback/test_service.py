"""The feedback service on SQLite and PostgreSQL: the inference log, feedback and its bad input,
the review queue, summaries, the live watch, quarantine and Delta exports."""

from __future__ import annotations

import threading

import grpc
import pytest
from deltalake import DeltaTable

from llmops.api.feedback.v1 import feedback_pb2 as pb
from llmops.core.timeutil import now_us
from llmops.testing.services import code_of


def test_inference_log_is_idempotent_by_request_id(fb):
    first = fb.log("req-1", answer="first")
    again = fb.log("req-1", answer="second")
    assert not first.duplicate and again.duplicate
    assert again.record.answer == "first" and again.record.pipeline == "qa"
    code, msg = code_of(fb.log, "")
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "request_id" in msg
    code, _ = code_of(fb.client("reviewer")._unary, fb.client("reviewer").stub.LogInference,
                      pb.LogInferenceRequest(record=pb.InferenceRecord(request_id="x")))
    assert code is grpc.StatusCode.PERMISSION_DENIED  # services log (editor); reviewers do not


def test_the_prompt_the_model_got_is_kept_and_checked(fb):
    prompt = [("system", "Context:\n[1] the source text"), ("user", "q?")]
    stored = fb.log("req-prompt", prompt=prompt).record
    assert [(m.role, m.content) for m in stored.prompt_messages] == prompt
    listed = next(r for r in fb.client("reviewer").inferences(limit=100) if r.request_id == "req-prompt")
    assert [(m.role, m.content) for m in listed.prompt_messages] == prompt
    code, msg = code_of(fb.log, "req-bad-role", prompt=[("tool", "x")])
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "prompt_messages[0].role" in msg
    code, msg = code_of(fb.log, "req-long", prompt=[("user", "x")] * 257)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "at most 256" in msg
    assert not [r for r in fb.client("reviewer").inferences(limit=100)
                if r.request_id in ("req-bad-role", "req-long")]  # nothing half-stored


def test_feedback_attaches_to_a_request_or_trace_and_bad_input_is_refused(fb):
    fb.log("req-1", trace_id="ab" * 16)
    c = fb.client()
    f = c.give(request_id="req-1", thumb="down", rating=2, corrected_answer="better", labels=["wrong-fact"])
    assert f.name.startswith("feedback/") and f.pipeline_version == "models/qa/versions/1"
    assert f.reviewer == "reviewer" and f.created_by == "reviewer" and f.source == pb.FEEDBACK_SOURCE_REVIEWER
    by_trace = c.give(trace_id="ab" * 16, thumb="up")
    assert by_trace.request_id == "req-1"
    code, msg = code_of(c.give, request_id="nope", thumb="up")
    assert code is grpc.StatusCode.NOT_FOUND and "nope" in msg
    code, msg = code_of(c.give, request_id="req-1", rating=6)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "rating 6" in msg
    code, msg = code_of(c.give, request_id="req-1")
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "empty" in msg
    code, msg = code_of(c.give, thumb="up")
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "request_id or trace_id" in msg
    code, _ = code_of(fb.client("reader").give, request_id="req-1", thumb="up")
    assert code is grpc.StatusCode.PERMISSION_DENIED


def test_an_idempotency_key_makes_a_retry_return_the_same_feedback(fb):
    fb.log("req-1")
    c = fb.client()
    a = c.give(request_id="req-1", thumb="up", idempotency_key="click-77")
    b = c.give(request_id="req-1", thumb="up", idempotency_key="click-77")
    assert a.name == b.name
    assert len(c.list()) == 1
    other = fb.client("editor").give(request_id="req-1", thumb="up", idempotency_key="click-77")
    assert other.name != a.name  # keys are per caller


def test_a_caller_above_its_feedback_rate_is_resource_exhausted(fb):
    fb.log("req-1")
    c = fb.client()
    for i in range(40):
        c.give(request_id="req-1", rating=4, idempotency_key=f"k{i}")
    with pytest.raises(Exception) as info:
        c.give(request_id="req-1", rating=4)
    assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED and "slow down" in info.value.message
    assert c.give(request_id="req-1", rating=4, idempotency_key="k3").name  # a retry is not a new piece
    assert fb.client("editor").give(request_id="req-1", rating=5).name  # other callers are not held back


def test_list_filters_and_pages(fb):
    fb.log("a", pipeline_version="models/qa/versions/1", model_version="models/llm/versions/1")
    fb.log("b", pipeline_version="models/other/versions/2", model_version="models/llm/versions/2")
    c = fb.client()
    c.give(request_id="a", thumb="up", labels=["tone"])
    c.give(request_id="b", thumb="down", labels=["wrong-fact", "tone:x"])
    fb.client("editor").give(request_id="a", rating=3, source="judge")
    assert len(c.list()) == 3
    assert {f.request_id for f in c.list(pipeline="other")} == {"b"}
    assert {f.request_id for f in c.list(model_version="models/llm/versions/1")} == {"a"}
    assert [f.rating for f in c.list(source="judge")] == [3]
    assert [f.request_id for f in c.list(label="tone")] == ["a"]  # not "tone:x"
    assert len(c.list(page_size=1)) == 3  # pages through
    assert c.list(start_us=now_us() + 10**9) == []


def test_review_queue_lists_answers_with_their_sources_until_reviewed(fb):
    fb.log("a")
    fb.log("b")
    c = fb.client()
    queue = c.inferences(awaiting_review=True)
    assert [r.request_id for r in queue] == ["b", "a"]  # newest first
    assert queue[0].sources[0].text == "the source text" and queue[0].question == "q?"
    c.give(request_id="a", thumb="up")
    assert [r.request_id for r in c.inferences(awaiting_review=True)] == ["b"]
    assert {r.request_id: r.feedback_count for r in c.inferences()} == {"a": 1, "b": 0}


def test_summary_per_pipeline_and_model_version(fb):
    for i, latency in enumerate([100, 200, 300, 400]):
        fb.log(f"v1-{i}", latency_ms=latency, tokens=(10, 5))
    fb.log("v2-0", model_version="models/llm/versions/2", latency_ms=50)
    c = fb.client()
    c.give(request_id="v1-0", thumb="up", rating=5)
    c.give(request_id="v1-1", thumb="up", rating=3)
    c.give(request_id="v1-2", thumb="down", corrected_answer="fixed")
    flood = fb.client("editor").give(request_id="v1-3", thumb="down", rating=1)
    fb.client("editor").quarantine(names=[flood.name])
    by_model = {s.model_version: s for s in c.summary("qa")}
    s = by_model["models/llm/versions/1"]
    assert (s.requests, s.feedback_count, s.corrections, s.total_tokens) == (4, 3, 1, 60)
    assert s.approval_rate == pytest.approx(2 / 3) and s.mean_rating == pytest.approx(4.0)
    assert (s.latency_p50_ms, s.latency_p95_ms) == (200, 400)
    assert by_model["models/llm/versions/2"].requests == 1
    assert (s.errors, s.error_rate, s.thumbs_down) == (0, 0.0, 1)  # the quarantined thumb does not count
    assert s.thumbs_down_rate == pytest.approx(1 / 4)
    code, msg = code_of(c.summary, "qa", start_us=now_us(), end_us=now_us() - 10**6)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "window" in msg


def test_watch_streams_new_inferences_and_feedback(fb):
    got: list[pb.WatchFeedbackResponse] = []
    stream = fb.client("reader").stub.WatchFeedback(pb.WatchFeedbackRequest(pipeline="qa"), timeout=30)
    stream.initial_metadata()  # the watch has begun: it starts from "now"

    def consume():
        for item in stream:
            got.append(item)
            if len(got) == 2:
                return

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    fb.log("other", pipeline_version="models/other/versions/1")  # filtered out
    fb.log("w-1")
    fb.client().give(request_id="w-1", thumb="up")
    t.join(10)
    stream.cancel()
    assert [i.WhichOneof("item") for i in got] == ["inference", "feedback"]
    assert got[0].inference.request_id == "w-1" and got[1].feedback.request_id == "w-1"


def test_quarantine_by_name_or_caller(fb):
    fb.log("a")
    e = fb.client("editor")
    f = fb.client().give(request_id="a", thumb="up")
    e.give(request_id="a", thumb="down")
    e.give(request_id="a", rating=1)
    assert e.quarantine(created_by="editor") == 2
    assert sorted(x.quarantined for x in e.list()) == [False, True, True]
    assert e.quarantine(names=[f.name]) == 1
    assert e.quarantine(names=[f.name], release=True) == 1
    code, _ = code_of(e.quarantine, names=["feedback/999999"])
    assert code is grpc.StatusCode.NOT_FOUND
    code, _ = code_of(e.quarantine)
    assert code is grpc.StatusCode.INVALID_ARGUMENT


def test_export_writes_versioned_delta_tables_in_chat_and_evaluation_format(fb):
    for rid in ("a", "b", "c", "d"):
        fb.log(rid, question=f"question {rid}", answer=f"answer {rid}")
    c = fb.client()
    c.give(request_id="a", thumb="down", corrected_answer="corrected a")
    c.give(request_id="b", thumb="up")
    c.give(request_id="c", thumb="down")  # no reference answer: never exported
    flood = c.give(request_id="d", thumb="down", corrected_answer="spam")
    e = fb.client("editor")
    e.quarantine(names=[flood.name])
    first = e.export("qa-train", corrected_only=True)
    assert first.row_count == 1 and first.table_uri == str(fb.export_root / "qa-train")
    rows = DeltaTable(first.table_uri).to_pyarrow_table().to_pylist()
    assert rows[0]["messages"] == [{"role": "user", "content": "question a"},
                                   {"role": "assistant", "content": "corrected a"}]
    assert rows[0]["context_ids"] == ["d.md#0"] and rows[0]["reference"] == "corrected"
    c.give(request_id="c", corrected_answer="corrected c")  # more feedback: a new table version
    second = e.export("qa-train", corrected_only=True)
    assert second.table_version == first.table_version + 1 and second.row_count == 2
    assert DeltaTable(second.table_uri, version=first.table_version).to_pyarrow_table().num_rows == 1
    evaluation = e.export("qa-eval", format="evaluation")
    table = DeltaTable(evaluation.table_uri).to_pyarrow_table().to_pylist()
    assert {(r["question"], r["reference_answer"]) for r in table} == {
        ("question a", "corrected a"), ("question b", "answer b"), ("question c", "corrected c")}
    code, msg = code_of(e.export, "empty", thumbs_up_only=True, pipeline_version="models/none/versions/1")
    assert code is grpc.StatusCode.FAILED_PRECONDITION and "nothing to export" in msg
    for uri in ("/etc/evil", "../outside", "ftp://host/t", "s3://any-bucket/t", "bad\x00name", "line\nbreak"):
        code, msg = code_of(e.export, uri)
        assert code is grpc.StatusCode.INVALID_ARGUMENT, uri
        assert "table_uri" in msg and "exist" not in msg
    code, _ = code_of(c.export, "qa-train")
    assert code is grpc.StatusCode.PERMISSION_DENIED  # exports need editor


def test_batches_are_logged_in_one_call_and_idempotent(fb):
    editor = fb.client("editor")
    fb.log("b-1")

    def batch(*ids):
        return editor._unary(editor.stub.LogInferences, pb.LogInferencesRequest(
            records=[pb.InferenceRecord(request_id=i, pipeline_version="models/qa/versions/1") for i in ids]))

    out = batch("b-1", "b-2", "b-3", "b-3")
    assert (out.stored, out.duplicates) == (2, 2)
    assert (batch("b-2", "b-4").stored, batch("b-4").duplicates) == (1, 1)
    assert {r.request_id for r in editor.inferences()} == {"b-1", "b-2", "b-3", "b-4"}
    code, msg = code_of(batch, "ok-1", "")
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "records[1].request_id" in msg
    assert "ok-1" not in {r.request_id for r in editor.inferences()}  # all or nothing


def test_failed_requests_count_as_errors_and_stay_out_of_review_and_latency(fb):
    fb.log("ok-1", latency_ms=100)
    fb.log("ok-2", latency_ms=200)
    fb.log("failed", latency_ms=30_000, answer="", error="UNAVAILABLE: the generation service is unavailable")
    c = fb.client()
    [s] = c.summary("qa")
    assert (s.requests, s.errors, s.error_rate) == (3, 1, pytest.approx(1 / 3))
    assert s.latency_p95_ms == 200  # of answered requests
    assert [r.request_id for r in c.inferences()] == ["ok-2", "ok-1"]  # nothing to review in a failure


def test_exports_go_to_an_object_store_and_read_back_as_datasets(tmp_path, s3_location):
    """An S3 export root (a loopback S3 server): names resolve under it, every export is a new
    Delta table version there, fine-tuning reads it back, and other buckets stay refused."""
    from llmops.evaluation import datasets
    from tests.feedback.conftest import FeedbackStack

    stack = FeedbackStack(tmp_path, f"sqlite:///{tmp_path / 'fb.db'}", export_root=f"{s3_location}/datasets")
    try:
        for rid in ("a", "b"):
            stack.log(rid, question=f"question {rid}", answer=f"answer {rid}")
        stack.client().give(request_id="a", corrected_answer="corrected a")
        editor = stack.client("editor")
        first = editor.export("qa-train", corrected_only=True)
        assert first.table_uri == f"{s3_location}/datasets/qa-train" and first.row_count == 1
        stack.client().give(request_id="b", corrected_answer="corrected b")
        second = editor.export("qa-train", corrected_only=True)
        assert second.table_version == first.table_version + 1
        assert DeltaTable(second.table_uri).to_pyarrow_table().num_rows == 2
        ds = datasets.load(second.table_uri, str(first.table_version))  # as a tuning job or evaluation reads it
        assert ds.version == str(first.table_version) and ds.chat[0][-1]["content"] == "corrected a"
        for outside in ("s3://another-bucket/t", f"{s3_location}/elsewhere/t", "../up"):
            assert code_of(editor.export, outside)[0] is grpc.StatusCode.INVALID_ARGUMENT
    finally:
        stack.close()
