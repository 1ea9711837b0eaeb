"""Data by role, over the wire: stored user payload (questions, answers, prompt messages,
retrieved text, corrections, dataset rows) reaches reviewers and above only. A reader watching
the traffic sees its metadata, never its content."""

from __future__ import annotations

import threading
import time
import uuid

import grpc
import pytest

from llmops.api.registry.v1 import registry_pb2 as rpb
from llmops.testing.services import code_of

pytestmark = pytest.mark.slow  # the whole stack


def _collect(client, seen: list, wanted: dict) -> None:
    """Events into `seen` until the feedback on `wanted["request_id"]` came (or the watch's time)."""
    for event in client.feedback.watch(timeout=40):
        seen.append(event)
        if event.WhichOneof("item") == "feedback" and event.feedback.request_id == wanted.get("request_id"):
            return


def test_a_reader_watching_feedback_sees_metadata_and_no_payload(rag):
    secret = f"secret-{uuid.uuid4().hex[:8]}"
    wanted: dict = {}
    seen = {"reader": [], "reviewer": []}
    threads = [threading.Thread(target=_collect, args=(rag.client(role), seen[role], wanted), daemon=True)
               for role in seen]
    # The watch starts at the newest record, so the watchers open before the question is asked.
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    answer = rag.client("reader").pipeline.run("ext-qa@production", f"what is {secret}?")
    wanted["request_id"] = answer.request_id
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            rag.client("reviewer").feedback.give(request_id=answer.request_id, thumb="down",
                                                 corrected_answer=f"the fix for {secret}", comment=secret)
            break
        except Exception:  # noqa: BLE001 - the inference log is written through an outbox, shortly
            time.sleep(0.3)
    for thread in threads:
        thread.join(40)
    reader = [e for e in seen["reader"] if answer.request_id in (e.inference.request_id, e.feedback.request_id)]
    reviewer = [e for e in seen["reviewer"] if answer.request_id in (e.inference.request_id, e.feedback.request_id)]
    assert {e.WhichOneof("item") for e in reviewer} == {"inference", "feedback"}
    assert {e.WhichOneof("item") for e in reader} == {"inference", "feedback"}
    full = next(e.inference for e in reviewer if e.WhichOneof("item") == "inference")
    assert secret in full.question and full.answer and full.prompt_messages
    assert any(s.text for s in full.sources)
    meta = next(e.inference for e in reader if e.WhichOneof("item") == "inference")
    assert meta.request_id == answer.request_id and meta.pipeline_version and meta.output_tokens
    assert not meta.question and not meta.answer and not meta.prompt_messages
    assert not any(s.text for s in meta.sources) and [s.chunk_id for s in meta.sources]
    assert secret not in str(reader)
    assert next(e.feedback for e in reviewer if e.WhichOneof("item") == "feedback").corrected_answer
    listed = rag.client("reader").feedback.list()
    assert listed and not any(f.corrected_answer or f.comment for f in listed)
    assert any(f.corrected_answer for f in rag.client("reviewer").feedback.list())
    code, _ = code_of(rag.client("reader").feedback.inferences)
    assert code is grpc.StatusCode.PERMISSION_DENIED


def test_dataset_rows_in_the_registry_are_for_reviewers(rag, tmp_path):
    from llmops.evaluation import datasets

    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"messages": [{"role": "user", "content": "private question"}, '
                    '{"role": "assistant", "content": "private answer"}]}\n')
    v = datasets.upload(rag.client("editor").registry, f"rows-{uuid.uuid4().hex[:6]}", rows)
    reader = rag.client("reader").registry
    assert reader.get_version(v.name).artifact.files  # the version itself is metadata: readable
    request = rpb.DownloadArtifactRequest(model_version=v.name, path="data.jsonl")
    code, message = code_of(lambda: list(reader.stub.DownloadArtifact(request, timeout=10)))
    assert code is grpc.StatusCode.PERMISSION_DENIED and "reviewer" in message
    chunks = list(rag.client("reviewer").registry.stub.DownloadArtifact(request, timeout=10))
    assert b"private answer" in b"".join(c.chunk for c in chunks)
