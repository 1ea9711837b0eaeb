"""The feedback service in a thread, on its own database and export root, with one key per role
and a low feedback rate for the rate-limit test."""

from __future__ import annotations

import functools

import pytest

from llmops.api.common.v1.chat_pb2 import ChatMessage
from llmops.api.feedback.v1 import feedback_pb2 as pb
from llmops.client import Client
from llmops.core import auth
from llmops.testing.services import ServerThread, make_keys
from services.feedback.config import FeedbackConfig
from services.feedback.server import build


class FeedbackStack:
    def __init__(self, home, database_url: str, export_root: str = ""):
        self.home = home
        self.keys = make_keys(home / "keys.json")
        self.export_root = export_root or home / "datasets"
        config = FeedbackConfig(database_url=database_url, export_root=str(self.export_root), feedback_per_minute=40,
                                http_port=0, watch_poll_s=0.2)
        self.server = ServerThread(functools.partial(build, config=config), auth.KeyStore(home / "keys.json")).start()
        self.clients = {role: Client({"feedback": self.server.address}, key) for role, key in self.keys.items()}

    def client(self, role: str = "reviewer"):
        return self.clients[role].feedback

    def log(self, request_id: str, *, pipeline_version: str = "models/qa/versions/1",
            model_version: str = "models/llm/versions/1", latency_ms: float = 100.0, question: str = "q?",
            answer: str = "a.", tokens: tuple[int, int] = (10, 5), trace_id: str = "", create_us: int = 0,
            prompt: list[tuple[str, str]] = (), error: str = ""):
        record = pb.InferenceRecord(
            request_id=request_id, trace_id=trace_id or request_id.ljust(32, "0")[:32], question=question,
            answer=answer, pipeline_version=pipeline_version, model_version=model_version, latency_ms=latency_ms,
            prompt_version="prompts/qa/versions/1", index_version="kb@1", input_tokens=tokens[0],
            output_tokens=tokens[1], sources=[pb.Source(document_id="d.md", chunk_id="d.md#0", score=0.9,
                                                        text="the source text")],
            prompt_messages=[ChatMessage(role=r, content=c) for r, c in prompt], error=error)
        if create_us:
            record.create_time.FromMicroseconds(create_us)
        return self.clients["editor"].feedback._unary(self.clients["editor"].feedback.stub.LogInference,
                                                      pb.LogInferenceRequest(record=record))

    def close(self):
        for c in self.clients.values():
            c.close()
        self.server.stop()


@pytest.fixture
def fb(tmp_path, database_url):
    stack = FeedbackStack(tmp_path, database_url)
    yield stack
    stack.close()
