"""The retrieval service as its own process: everything is still there after SIGTERM and after
kill -9 (embedded Milvus and the index store both persist acknowledged writes)."""

from __future__ import annotations

import pytest

from llmops.client import Client
from llmops.client.retrieval import document
from llmops.testing.services import ServiceProcess

pytestmark = pytest.mark.slow  # kills and restarts the service


@pytest.fixture
def retrieval_process(tmp_path, keys, keys_file):
    env = {"LLMOPS_RETRIEVAL_KEYS_FILE": str(keys_file),
           "LLMOPS_RETRIEVAL_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
           "LLMOPS_RETRIEVAL_MILVUS_DATA_DIR": str(tmp_path / "milvus"), "LLMOPS_TRACE_DB": str(tmp_path / "t.db")}
    proc = ServiceProcess("retrieval", env, tmp_path).start(timeout=120)
    yield proc
    if proc.proc and proc.proc.poll() is None:
        proc.kill()


def test_index_survives_sigterm_and_kill_9(retrieval_process, keys):
    with Client({"retrieval": retrieval_process.address}, keys["editor"]) as client:
        r = client.retrieval
        r.create_index("kb")
        r.upsert("kb", [document("a", "The registry keeps model versions and aliases."),
                        document("b", "Milvus stores the vectors of every chunk.")])
    assert retrieval_process.terminate() == 0

    retrieval_process.start(timeout=120)
    with Client({"retrieval": retrieval_process.address}, keys["editor"]) as client:
        r = client.retrieval
        assert r.search("kb", "where are vectors stored", top_k=1).hits[0].document_id == "b"
        r.upsert("kb", [document("c", "Delta tables are synced incrementally.")])  # acknowledged, then killed
    retrieval_process.kill()

    retrieval_process.start(timeout=120)
    with Client({"retrieval": retrieval_process.address}, keys["reader"]) as client:
        r = client.retrieval
        assert r.get_index("kb").document_count == 3
        assert r.search("kb", "incremental sync of delta tables", top_k=1).hits[0].document_id == "c"
