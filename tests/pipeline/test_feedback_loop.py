"""Human feedback on real answers: 20 questions through the pipeline, reviewed in the web app in
headless chromium (thumbs, two corrections), the summary counts them, and exports produce Delta
table versions whose rows match."""

from __future__ import annotations

import time

import pytest
from deltalake import DeltaTable
from playwright.sync_api import expect

from tests.browser import browser_page

pytestmark = pytest.mark.slow  # the whole stack and a browser

CORRECTIONS = {3: "Only an approver may move the production alias.", 11: "Every request carries one trace id."}


def test_answers_reviewed_in_the_browser_are_summarized_and_exported(rag):
    b = rag.bundle("review-qa", "demo", {"max_tokens": 12, "seed": 5})
    c = rag.client()
    asked = [c.pipeline.run("review-qa@production", f"Question {i}: who may move the production alias?")
             for i in range(20)]
    reviewer = rag.client("reviewer").feedback
    deadline = time.monotonic() + 20
    while len(reviewer.inferences(pipeline="review-qa", awaiting_review=True, limit=100)) < 20:
        assert time.monotonic() < deadline, "every answer reaches the review queue"
        time.sleep(0.2)

    with browser_page() as page:
        page.goto(f"http://{rag.procs['feedback'].http_address}/?pipeline=review-qa")
        page.fill("#api-key", rag.keys["reviewer"])
        page.click("#sign-in")
        expect(page.locator("#queue li")).to_have_count(20)
        for i in range(20):  # newest first: item i is question 19 - i
            question = 19 - i
            expect(page.locator("#question")).to_have_text(f"Question {question}: who may move the production alias?")
            if question in CORRECTIONS:
                page.keyboard.press("d")
                page.keyboard.press("e")
                page.keyboard.type(CORRECTIONS[question])
                page.keyboard.press("Control+Enter")
            else:
                page.keyboard.press("u")
                page.keyboard.press("Enter")
            expect(page.locator("#status")).to_contain_text(f"for {asked[question].request_id}")
        expect(page.locator("#queue li.done")).to_have_count(20)

    summary = next(s for s in reviewer.summary("review-qa"))
    assert (summary.pipeline_version, summary.model_version) == (b.name, asked[0].versions.model)
    assert (summary.requests, summary.feedback_count, summary.corrections) == (20, 20, 2)
    assert summary.approval_rate == 18 / 20
    assert summary.total_tokens == sum(a.usage.input_tokens + a.usage.output_tokens for a in asked)
    assert 0 < summary.latency_p50_ms <= summary.latency_p95_ms

    editor = rag.client("editor").feedback
    first = editor.export("review-corrections", corrected_only=True, pipeline_version=b.name)
    assert first.row_count == 2
    rows = DeltaTable(first.table_uri).to_pyarrow_table().to_pylist()
    assert {r["request_id"]: r["messages"][-1]["content"] for r in rows} == {
        asked[q].request_id: text for q, text in CORRECTIONS.items()}
    assert all(r["messages"][-2]["content"].startswith("Question ") for r in rows)
    assert all(r["messages"][0]["role"] == "system" and "Context:" in r["messages"][0]["content"] for r in rows)
    by_id = {a.request_id: a for a in asked}
    assert all(r["context_ids"] == [x.chunk_id for x in by_id[r["request_id"]].citations] for r in rows)
    reviewer.give(request_id=asked[7].request_id, corrected_answer="A person with the approver role.")
    second = editor.export("review-corrections", corrected_only=True, pipeline_version=b.name)
    assert (second.table_version, second.row_count) == (first.table_version + 1, 3)
    assert DeltaTable(first.table_uri, version=first.table_version).to_pyarrow_table().num_rows == 2
