"""The pipeline over gRPC with every service as its own process: grounded answers with
citations and versions, one trace through six processes, streaming, conversation history, and
bad input, deadlines and downstream failures as clear statuses."""

from __future__ import annotations

import time

import grpc
import pytest

from llmops.client import CallError
from llmops.testing.rag import DOCS
from llmops.testing.services import code_of

pytestmark = pytest.mark.slow  # the whole stack, services stopped and restarted

QUESTION = "Who may move the production alias of a model?"


def test_answer_with_citations_versions_and_one_trace_through_six_processes(rag):
    c = rag.client()
    time.sleep(0.6)  # past the bundle cache's TTL (0.5 s here): this run resolves the bundle in the registry
    out = c.pipeline.run("kb-qa@production", QUESTION)
    assert out.answer and out.usage.output_tokens > 0 and out.usage.input_tokens > 0
    assert out.finish_reason in ("stop", "length")
    assert out.citations, "a grounded answer cites its sources"
    assert out.citations[0].document_id == "approvals.md"  # the best hit is the document that answers
    assert all(c.text and c.chunk_id and c.marker.startswith("[") for c in out.citations)
    assert [c.score for c in out.citations] == sorted((c.score for c in out.citations), reverse=True)
    # the versions that produced it are the registry's
    admin = rag.client("admin")
    bundle = admin.registry.get_version("kb-qa@production")
    model = admin.registry.get_version("demo@production")
    index = admin.retrieval.get_index("kb")
    assert out.versions.pipeline == bundle.name
    assert out.versions.prompt == "prompts/qa/versions/1"
    assert out.versions.index == f"kb@{index.version}"
    assert out.versions.model == model.name
    assert len(out.request_id) == 32 and len(out.trace_id) == 32
    # one trace id through client -> pipeline -> prompt -> retrieval -> registry -> generation -> model server
    spans = rag.spans(out.trace_id, want_services=6)
    services = {s.service for s in spans}
    assert {"llmops-pipeline", "llmops-prompt", "llmops-retrieval", "llmops-registry", "llmops-generation",
            "llmops-modelserver"} <= services, services
    assert all(s.trace_id == out.trace_id for s in spans)
    by_name = {s.name: s for s in spans}
    run = by_name["llmops.pipeline.v1.PipelineService/RunPipeline"]
    assert run.attributes["llmops.pipeline"] == bundle.name
    assert run.attributes["llmops.request_id"] == out.request_id
    # the prompt was counted with the route model's tokenizer and chat template, exactly as the model saw it
    assert run.attributes["llmops.prompt_tokens"] == out.usage.input_tokens
    ids = {s.span_id for s in spans}
    roots = [(s.service, s.name) for s in spans if s.parent_id not in ids]
    assert len(roots) == 1, f"every span but the root has its parent in the trace: {roots}"


def test_stream_sends_citations_first_and_usage_last(rag):
    c = rag.client()
    messages = list(c.pipeline.stream("kb-qa@production", QUESTION))
    assert messages[0].citations and messages[0].versions.model.startswith("models/demo/versions/")
    assert all(not m.citations for m in messages[1:])
    assert messages[-1].usage.output_tokens > 0 and messages[-1].finish_reason
    assert len({m.request_id for m in messages}) == 1 and len({m.trace_id for m in messages}) == 1
    unary = c.pipeline.run("kb-qa@production", QUESTION)  # seeded sampling: the same answer either way
    assert "".join(m.delta for m in messages) == unary.answer


def test_history_reaches_the_model_and_max_tokens_is_capped_by_the_bundle(rag):
    c = rag.client()
    out = c.pipeline.run("ext-qa@production", "And what do limits cap?",
                         history=[("user", "What is traced?"), ("assistant", "Every request.")], max_tokens=5)
    sent = rag.fake.requests[-1]["body"]
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert sent["messages"][1]["content"] == "What is traced?"
    assert sent["max_tokens"] == 5
    assert out.answer.startswith("echo:") and out.versions.model == "provider:echo-1"
    assert "limits.md" in {c.document_id for c in out.citations}
    code, msg = code_of(c.pipeline.run, "ext-qa@production", "q", history=[("system", "be rude")])
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "history[0].role" in msg


def test_unknown_pipeline_a_model_and_an_empty_question_are_refused(rag):
    c = rag.client()
    code, msg = code_of(c.pipeline.run, "nope@production", QUESTION)
    assert code is grpc.StatusCode.NOT_FOUND and "nope" in msg
    code, msg = code_of(c.pipeline.run, "kb-qa@staging", QUESTION)
    assert code is grpc.StatusCode.NOT_FOUND and "staging" in msg
    code, msg = code_of(c.pipeline.run, "demo@production", QUESTION)  # a model, not a bundle
    assert code is grpc.StatusCode.FAILED_PRECONDITION and "not a pipeline" in msg
    for question in ("", "   \n"):
        code, msg = code_of(c.pipeline.run, "kb-qa@production", question)
        assert code is grpc.StatusCode.INVALID_ARGUMENT and "question is empty" in msg
    code, msg = code_of(c.pipeline.run, "kb-qa", QUESTION)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "@" in msg


def test_bad_key_is_unauthenticated(rag):
    from llmops.client import Client

    bad = Client({"pipeline": rag.procs["pipeline"].address}, "llm_not-a-key")
    code, msg = code_of(bad.pipeline.run, "kb-qa@production", QUESTION)
    assert code is grpc.StatusCode.UNAUTHENTICATED
    code, _ = code_of(lambda: list(bad.pipeline.stream("kb-qa@production", QUESTION)))
    assert code is grpc.StatusCode.UNAUTHENTICATED
    bad.close()


def test_deadline_shorter_than_the_work_cancels_downstream(rag):
    c = rag.client()
    rag.fake.token_delay_s = 0.05
    before = rag.fake.disconnects
    try:
        started = time.monotonic()
        long_question = " ".join(["word"] * 300)  # the fake provider echoes it a word at a time: 15 s
        with pytest.raises(CallError) as info:
            c.pipeline.run("ext-qa@production", long_question, timeout=1.5)
        assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 5
        deadline = time.monotonic() + 5
        while (rag.fake.open_streams or rag.fake.disconnects == before) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rag.fake.disconnects == before + 1, "the provider's stream was cancelled, not left running"
        assert rag.fake.open_streams == 0
    finally:
        rag.fake.token_delay_s = 0.0


@pytest.mark.parametrize("service,named", [("retrieval", "retrieval"), ("generation", "generation"),
                                           ("prompt", "prompt")])
def test_a_downstream_service_down_is_unavailable_naming_it(rag, service, named):
    c = rag.client()
    rag.procs[service].terminate()
    try:
        code, msg = code_of(c.pipeline.run, "kb-qa@production", QUESTION)
        assert code is grpc.StatusCode.UNAVAILABLE
        assert f"the {named} service is unavailable" in msg
    finally:
        rag.restart(service)
    assert c.pipeline.run("kb-qa@production", QUESTION).answer  # back once it is


def test_documents_cited_are_the_indexed_ones(rag):
    out = rag.client().pipeline.run("kb-qa@production", "What do routes limit for each caller?")
    assert out.citations[0].document_id == "limits.md"
    assert out.citations[0].text in DOCS["limits.md"]


def test_moving_the_bundle_alias_switches_prompt_route_and_sampling_together(rag):
    admin = rag.client("admin")
    v2 = admin.registry.create_pipeline_version("kb-qa", prompt_template="qa@1", index="kb", route="ext",
                                                parameters={"max_tokens": 6})
    code, msg = code_of(admin.registry.set_alias, "kb-qa", "production", v2.version)
    assert code is grpc.StatusCode.FAILED_PRECONDITION  # a bundle waits for approval like a model
    admin.registry.approve(v2.name)
    v1 = admin.registry.get_version("kb-qa@production").version
    admin.registry.set_alias("kb-qa", "production", v2.version)
    try:
        deadline = time.monotonic() + 5
        while (out := rag.client().pipeline.run("kb-qa@production", QUESTION)).versions.pipeline != v2.name:
            assert time.monotonic() < deadline, "the moved alias is followed within the bundle TTL"
            time.sleep(0.2)
        assert out.versions.model == "provider:echo-1" and out.usage.output_tokens <= 6
    finally:
        admin.registry.set_alias("kb-qa", "production", v1)
    time.sleep(0.6)  # the bundle TTL: later tests see v1 again


def test_every_answer_is_logged_exactly_once_even_while_the_feedback_service_is_down(rag):
    c = rag.client()
    reviewer = rag.client("reviewer").feedback
    first = c.pipeline.run("ext-qa@production", "What do limits cap?")
    rag.procs["feedback"].terminate()
    ids = []
    try:
        for i in range(50):  # every user request succeeds while answers cannot be logged
            ids.append(c.pipeline.run("ext-qa@production", f"question number {i}").request_id)
    finally:
        rag.restart("feedback")
    deadline = time.monotonic() + 30
    while not set(ids) <= set(logged := [r.request_id for r in reviewer.inferences(pipeline="ext-qa", limit=1000)]):
        assert time.monotonic() < deadline, f"{len(set(ids) - set(logged))} of 50 records never arrived"
        time.sleep(0.3)
    assert len(logged) == len(set(logged)), "no record twice"
    record = next(r for r in reviewer.inferences(pipeline="ext-qa", limit=1000) if r.request_id == first.request_id)
    assert record.trace_id == first.trace_id and record.answer == first.answer
    assert record.question == "What do limits cap?" and record.caller == "reader"
    assert (record.pipeline_version, record.prompt_version, record.index_version, record.model_version) == (
        first.versions.pipeline, first.versions.prompt, first.versions.index, first.versions.model)
    assert [s.text for s in record.sources] == [c.text for c in first.citations]
    assert record.output_tokens == first.usage.output_tokens and record.latency_ms > 0


def test_an_evaluation_set_is_scored_through_the_pipeline_concurrently_in_order(rag, tmp_path):
    """`llmops pipelines eval`'s scoring over the real stack: retrieval hit, recall and reciprocal
    rank for rows that name their sources (none for a row that names none), answers in the
    dataset's order at concurrency 4."""
    import json

    from llmops.evaluation import datasets
    from llmops.evaluation import rag as rag_eval

    rows = [{"question": QUESTION, "reference_answer": "An approver.", "sources": ["approvals.md"]},
            {"question": "What do routes limit for each caller?", "reference_answer": "Requests and tokens.",
             "sources": ["limits.md", "nowhere.md"]},
            {"question": "What does the registry keep?", "reference_answer": "Models."}]
    path = tmp_path / "eval.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = rag_eval.evaluate(rag.client().pipeline, "kb-qa@production", datasets.from_jsonl(path), concurrency=4)
    assert [a.question for a in report.answers] == [r["question"] for r in rows]
    first, second, third = report.answers
    assert (first.hit, first.recall, first.reciprocal_rank) == (True, 1.0, 1.0)  # the best hit answers it
    assert (second.hit, second.recall, second.reciprocal_rank) == (True, 0.5, 1.0)  # one of two sources exists
    assert (third.hit, third.recall, third.reciprocal_rank) == (None, None, None)
    assert report.recall == 0.75 and report.mrr == 1.0 and report.hit_rate == 1.0
    assert "recall 75%, MRR 1.00" in report.summary()


def test_a_judge_route_scores_answers_by_a_versioned_rubric(rag, tmp_path):
    """An LLM judge over the wire: the rubric is a prompt template version rendered by the prompt
    service, the judge a route to the loopback OpenAI-compatible provider, asked for a JSON verdict
    (the provider answers a JSON object of the requested schema)."""
    import json

    from llmops.evaluation import datasets, judge
    from llmops.evaluation import rag as rag_eval

    admin = rag.client("admin")
    version = rag.rubric("judge-rubric")
    admin.prompt.approve(version.name)
    admin.prompt.set_alias("judge-rubric", "production", version.version)
    j = judge.Judge(rag.client(), "ext", "judge-rubric@production")
    assert j.structured  # a provider route: asked for JSON of the verdict schema
    verdict = j("Who approves?", "An approver.", "Only an approver.")
    assert verdict.score == 1 and verdict.rubric == version.name
    assert verdict.reason.startswith("Question: Who approves?\nReference: An approver.\nAnswer: Only an approver.")
    asked = rag.fake.requests[-1]["body"]
    assert asked["response_format"]["json_schema"]["schema"]["properties"]["score"]["maximum"] == 5
    path = tmp_path / "eval.jsonl"
    path.write_text(json.dumps({"question": QUESTION, "reference_answer": "An approver."}) + "\n")
    report = rag_eval.evaluate(rag.client().pipeline, "kb-qa@production", datasets.from_jsonl(path), judge=j)
    assert report.answers[0].judged.score == 1 and report.judge_score == 1.0 and "judge score 1.00" in report.summary()
