"""The retrieval service through its client: indexes, ingestion, filtered search, replacement and
deletion of documents, and bad input with exact status codes."""

from __future__ import annotations

from pathlib import Path

import grpc

from llmops.api.retrieval.v1 import retrieval_pb2 as pb
from llmops.client.retrieval import condition as cond
from llmops.client.retrieval import document, folder_documents
from llmops.testing.services import code_of

DOCS = Path(__file__).resolve().parents[2] / "docs"
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def test_index_docs_search_filter_replace_delete(retrieval):
    r = retrieval.as_("editor")
    index = r.create_index("docs", chunk_size=128, chunk_overlap=16)
    assert index.dimension == 384 and index.version == 0
    docs = folder_documents(DOCS)
    assert len(docs) >= 5
    last = r.ingest("docs", docs)
    assert last.documents_done == len(docs) and last.chunks_done >= len(docs)
    info = r.get_index("docs")
    assert info.document_count == len(docs) and info.chunk_count == last.chunks_done and info.version >= 1

    hits = r.search("docs", "which role may approve a model version for production?", top_k=5)
    assert hits.index_version == info.version
    assert hits.hits[0].document_id in {"security.md", "registry.md"}
    assert all(h.chunk_id.startswith(h.document_id + "#") for h in hits.hits)
    assert hits.hits[0].score >= hits.hits[-1].score

    only_tracing = r.search("docs", "which role may approve a model version?", top_k=5,
                            filter=cond("source", pb.FILTER_OPERATOR_EQ, "tracing.md"))
    assert only_tracing.hits and {h.document_id for h in only_tracing.hits} == {"tracing.md"}
    assert only_tracing.hits[0].metadata["type"] == "md"

    r.upsert("docs", [document("security.md", "Bananas are yellow and grow in bunches.", {"source": "security.md"})])
    fruit = r.search("docs", "what colour are bananas", top_k=3,
                     filter=cond("source", pb.FILTER_OPERATOR_EQ, "security.md"))
    assert [h.chunk_id for h in fruit.hits] == ["security.md#0"]  # the old chunks are gone
    assert r.get_index("docs").document_count == len(docs)

    gone = r.delete_documents("docs", ["tracing.md"])
    assert gone.document_count == 1
    assert not r.search("docs", "trace", top_k=5, filter=cond("source", pb.FILTER_OPERATOR_EQ, "tracing.md")).hits
    by_filter = r.delete_documents("docs", filter=cond("source", pb.FILTER_OPERATOR_IN, ["contracts.md", "registry.md"]))
    assert by_filter.document_count == 2
    assert r.get_index("docs").document_count == len(docs) - 3


def test_search_by_vector_and_top_k(retrieval):
    r = retrieval.as_("editor")
    r.create_index("v")
    r.upsert("v", [document(f"d{i}", f"document number {i} talks about topic {i % 3}") for i in range(12)])
    from services.retrieval import embedding

    vec = embedding.load("all-MiniLM-L6-v2").encode(["document number 4 talks about topic 1"])[0]
    hits = r.search("v", vector=vec.tolist(), top_k=3)
    assert len(hits.hits) == 3 and hits.hits[0].document_id == "d4"


def test_bad_input(retrieval):
    r = retrieval.as_("editor")
    r.create_index("x")
    assert code_of(r.get_index, "nope")[0] is grpc.StatusCode.NOT_FOUND
    assert code_of(r.search, "nope", "q")[0] is grpc.StatusCode.NOT_FOUND
    assert code_of(r.create_index, "x")[0] is grpc.StatusCode.ALREADY_EXISTS
    assert code_of(r.create_index, "Bad Name")[0] is INVALID
    assert code_of(r.create_index, "y", chunk_size=8)[0] is INVALID
    assert code_of(r.create_index, "z", embedding_model="/no/such/model")[0] is INVALID
    code, msg = code_of(r.create_index, "z", embedding_model="/etc")
    assert code is INVALID and "outside the folders" in msg  # the model roots only, exists or not
    code, msg = code_of(r.search, "x", vector=[0.1] * 10)
    assert code is INVALID and "384" in msg
    code, msg = code_of(r.search, "x", "q", top_k=0)
    assert code is INVALID and "top_k" in msg
    code, msg = code_of(r.search, "x", "q", top_k=101)
    assert code is INVALID and "top_k" in msg
    code, msg = code_of(r.search, "x", "q", filter=cond("a b", pb.FILTER_OPERATOR_EQ, 1))
    assert code is INVALID and "identifier" in msg
    assert code_of(r.upsert, "x", [document("", "text")])[0] is INVALID
    assert code_of(r.upsert, "x", [document("a", "   ")])[0] is INVALID
    assert code_of(r.delete_documents, "x")[0] is INVALID
    code, msg = code_of(retrieval.as_("reader").upsert, "x", [document("a", "text")])
    assert code is grpc.StatusCode.PERMISSION_DENIED


def test_delete_index_drops_everything(retrieval):
    r = retrieval.as_("editor")
    r.create_index("tmp")
    r.upsert("tmp", [document("a", "hello world")])
    r.delete_index("tmp")
    assert code_of(r.get_index, "tmp")[0] is grpc.StatusCode.NOT_FOUND
    r.create_index("tmp")
    assert not r.search("tmp", "hello").hits


def test_milvus_unreachable_is_unavailable_and_not_serving(keys, key_store, tmp_path):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from llmops.client import Client
    from llmops.core.server import ServerConfig
    from llmops.testing.services import ServerThread, free_port
    from services.retrieval.config import RetrievalConfig
    from services.retrieval.server import build

    config = RetrievalConfig(database_url=f"sqlite:///{tmp_path / 'r.db'}",
                             milvus_uri=f"http://127.0.0.1:{free_port()}", health_interval_s=0.2)
    thread = ServerThread(lambda sc, ks: build(sc, ks, config=config), key_store, ServerConfig(port=0)).start()
    try:
        with grpc.insecure_channel(thread.address) as ch:
            status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        with Client({"retrieval": thread.address}, keys["editor"]) as client:
            code, msg = code_of(client.retrieval.create_index, "x")
            assert code is grpc.StatusCode.UNAVAILABLE and "Milvus" in msg
    finally:
        thread.stop()


def test_search_spans_carry_index_version_top_k_filter_and_hits(retrieval, spans):
    import time

    _, exporter = spans
    r = retrieval.as_("editor")
    r.create_index("t")
    r.upsert("t", [document("a", "alpha text", {"lang": "en"}), document("b", "beta text", {"lang": "en"})])
    resp = r.search("t", "alpha", top_k=2, filter=cond("lang", pb.FILTER_OPERATOR_EQ, "en"))
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        found = [s for s in exporter.get_finished_spans() if s.name.endswith("/Search")]
        if found:
            break
        time.sleep(0.02)
    attrs = found[0].attributes
    assert attrs["llmops.index"] == "t" and attrs["llmops.index_version"] == resp.index_version
    assert attrs["llmops.top_k"] == 2 and attrs["llmops.filter"] == 'metadata["lang"] == "en"'
    assert list(attrs["llmops.hit_ids"]) == [h.chunk_id for h in resp.hits]
    assert len(attrs["llmops.hit_scores"]) == 2


def test_every_string_filters_deletes_and_reupserts_exactly(retrieval):
    """Non-ASCII, quotes and backslashes in ids and metadata match exactly (they once never
    matched, so a delete reported success while the chunks stayed searchable)."""
    r = retrieval.as_("editor")
    r.create_index("intl", chunk_size=64, chunk_overlap=0)
    names = ["Müller.pdf", "日本語.md", 'quote"d.md', "back\\slash.md", "emoji😀.txt"]
    r.upsert("intl", [document(n, f"A note about {n} and bananas.", {"author": n, "lang": "ü"}) for n in names])
    for n in names:
        hits = r.search("intl", "bananas", top_k=10, filter=cond("author", pb.FILTER_OPERATOR_EQ, n)).hits
        assert {h.document_id for h in hits} == {n}, n
    assert len(r.search("intl", "bananas", top_k=20, filter=cond("lang", pb.FILTER_OPERATOR_EQ, "ü")).hits) == len(names)
    gone = r.delete_documents("intl", ["Müller.pdf"])
    assert gone.document_count == 1
    assert not r.search("intl", "bananas", top_k=10, filter=cond("author", pb.FILTER_OPERATOR_EQ, "Müller.pdf")).hits
    assert "Müller.pdf" not in {h.document_id for h in r.search("intl", "bananas", top_k=20).hits}
    r.upsert("intl", [document("日本語.md", "Now about apples.", {"author": "日本語.md"})])
    hits = r.search("intl", "apples", top_k=10, filter=cond("author", pb.FILTER_OPERATOR_EQ, "日本語.md")).hits
    assert [h.text for h in hits] == ["Now about apples."]  # replaced, not added
    by_filter = r.delete_documents("intl", filter=cond("author", pb.FILTER_OPERATOR_IN, ['quote"d.md', "back\\slash.md"]))
    assert by_filter.document_count == 2
    assert r.get_index("intl").document_count == len(names) - 3
    code, msg = code_of(r.search, "intl", "x", filter=cond("author", pb.FILTER_OPERATOR_IN, ["a", 1]))
    assert code is INVALID and "must all be strings" in msg
    code, msg = code_of(r.delete_documents, "intl", ["bad\nid"])
    assert code is INVALID and "document_ids[0]" in msg
