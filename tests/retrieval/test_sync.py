"""Incremental sync from Delta tables: exactly the changed rows are embedded, deletes remove
chunks, the index records the table version, and an interrupted pass resumes without repeats."""

from __future__ import annotations

import grpc
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from llmops.api.retrieval.v1 import retrieval_pb2 as pb
from llmops.client import CallError
from llmops.client.retrieval import condition as cond

TOPICS = ["registry", "retrieval", "prompts", "generation", "feedback"]


def rows(ids, version_tag="v1"):
    return pa.table({
        "doc_id": [f"doc-{i:04d}" for i in ids],
        "body": [f"Row {i} ({version_tag}) is a note about {TOPICS[i % 5]} number {i}." for i in ids],
        "topic": [TOPICS[i % 5] for i in ids],
        "year": [2020 + i % 5 for i in ids],
    })


def sync(r, index, uri, mode=pb.SYNC_MODE_TRIGGERED):
    req = pb.SyncIndexRequest(index=index, table_uri=uri, id_column="doc_id", text_column="body",
                              metadata_columns=["topic", "year"], mode=mode)
    return list(r.stub.SyncIndex(req, timeout=600))


@pytest.mark.parametrize("cdf", [True, False], ids=["change-data-feed", "version-diff"])
def test_incremental_sync_applies_exactly_the_changes(retrieval, tmp_path, cdf):
    r = retrieval.as_("editor")
    uri = str(tmp_path / "table")
    config = {"delta.enableChangeDataFeed": "true"} if cdf else None
    write_deltalake(uri, rows(range(1000)), configuration=config)
    r.create_index("kb", chunk_size=64, chunk_overlap=0)

    first = sync(r, "kb", uri)
    assert first[-1].pass_complete and first[-1].rows_upserted == 1000 and first[-1].table_version == 0
    assert r.get_index("kb").document_count == 1000 and r.get_index("kb").source_table_version == 0

    table = DeltaTable(uri)
    table.update(updates={"body": "'Row updated: this note now explains approvals and aliases.'"},
                 predicate="doc_id IN (" + ", ".join(f"'doc-{i:04d}'" for i in range(10)) + ")")
    table.delete("doc_id IN (" + ", ".join(f"'doc-{i:04d}'" for i in range(100, 105)) + ")")
    write_deltalake(uri, rows(range(1000, 1020), "new"), mode="append")
    latest = DeltaTable(uri).version()

    second = sync(r, "kb", uri)
    assert second[-1].pass_complete
    assert (second[-1].rows_upserted, second[-1].rows_deleted) == (30, 5)  # 10 updates + 20 appends, 5 deletes
    index = r.get_index("kb")
    assert index.source_table_version == latest and index.document_count == 1015
    updated = r.search("kb", "which note explains approvals and aliases", top_k=3)
    assert {h.document_id for h in updated.hits} <= {f"doc-{i:04d}" for i in range(10)}
    deleted = {f"doc-{i:04d}" for i in range(100, 105)}
    near_deleted = r.search("kb", "Row 101 (v1) is a note about retrieval number 101.", top_k=20,
                            filter=cond("topic", pb.FILTER_OPERATOR_EQ, "retrieval"))
    assert near_deleted.hits and not deleted & {h.document_id for h in near_deleted.hits}
    assert sync(r, "kb", uri)[-1].rows_upserted == 0  # nothing new: nothing embedded


def test_an_interrupted_pass_resumes_without_embedding_twice(retrieval, tmp_path):
    r = retrieval.as_("editor")
    uri = str(tmp_path / "table")
    write_deltalake(uri, rows(range(300)))
    r.create_index("kb", chunk_size=64, chunk_overlap=0)
    stream = r.stub.SyncIndex(pb.SyncIndexRequest(index="kb", table_uri=uri, id_column="doc_id", text_column="body",
                                                  metadata_columns=["topic", "year"], mode=pb.SYNC_MODE_TRIGGERED),
                              timeout=600)
    progressed = next(iter(stream))  # the first batch is stored, then the client goes away
    stream.cancel()
    assert 0 < progressed.rows_upserted < 300
    assert r.get_index("kb").source_table_version == -1  # the pass did not complete
    resumed = sync(r, "kb", uri)
    assert resumed[-1].pass_complete and resumed[-1].table_version == 0
    stored = r.get_index("kb")
    assert stored.document_count == 300 and stored.source_table_version == 0
    assert resumed[-1].rows_upserted <= 300 - progressed.rows_upserted  # what was stored is not embedded again


def test_sync_bad_input(retrieval, tmp_path):
    r = retrieval.as_("editor")
    r.create_index("kb")
    uri = str(tmp_path / "table")
    write_deltalake(uri, rows(range(3)))

    def code(**kw):
        req = pb.SyncIndexRequest(**{"index": "kb", "table_uri": uri, "id_column": "doc_id", "text_column": "body",
                                     "mode": pb.SYNC_MODE_TRIGGERED, **kw})
        with pytest.raises((grpc.RpcError, CallError)) as info:
            list(r.stub.SyncIndex(req, timeout=60))
        return info.value.code(), info.value.details()

    assert code(table_uri=str(tmp_path / "missing"))[0] is grpc.StatusCode.INVALID_ARGUMENT
    # locations outside the service's table roots are refused without saying whether they exist
    for outside in ("/etc", str(tmp_path / ".." / ".." / "x"), "s3://any-bucket/t", "file:///var/lib"):
        status, msg = code(table_uri=outside)
        assert status is grpc.StatusCode.INVALID_ARGUMENT and "table_uri" in msg and "exist" not in msg
    status, msg = code(table_uri=uri + "\x00")
    assert status is grpc.StatusCode.INVALID_ARGUMENT and "control character" in msg
    status, msg = code(text_column="content")
    assert status is grpc.StatusCode.FAILED_PRECONDITION and "'content'" in msg
    assert code(mode=pb.SYNC_MODE_UNSPECIFIED)[0] is grpc.StatusCode.INVALID_ARGUMENT
    assert code(index="nope")[0] is grpc.StatusCode.NOT_FOUND


def test_continuous_sync_follows_new_table_versions(retrieval, tmp_path):
    r = retrieval.as_("editor")
    uri = str(tmp_path / "table")
    write_deltalake(uri, rows(range(5)), configuration={"delta.enableChangeDataFeed": "true"})
    r.create_index("live", chunk_size=64, chunk_overlap=0)
    stream = r.stub.SyncIndex(pb.SyncIndexRequest(index="live", table_uri=uri, id_column="doc_id", text_column="body",
                                                  mode=pb.SYNC_MODE_CONTINUOUS), timeout=120)
    passes = []
    for msg in stream:
        if msg.pass_complete:
            passes.append(msg)
            if len(passes) == 1:
                write_deltalake(uri, rows(range(5, 8), "later"), mode="append")  # a new table version
            else:
                stream.cancel()
                break
    assert [p.table_version for p in passes] == [0, 1]
    assert passes[1].rows_upserted == 3
    assert r.get_index("live").document_count == 8 and r.get_index("live").source_table_version == 1


def test_sync_from_a_table_in_s3(retrieval, s3_location):
    """The same incremental sync from a Delta table in an S3-compatible store (a loopback server)."""
    r = retrieval.as_("editor")
    uri = f"{s3_location}/tables/notes"
    write_deltalake(uri, rows(range(50)))
    r.create_index("kb", chunk_size=64, chunk_overlap=0)
    assert sync(r, "kb", uri)[-1].rows_upserted == 50
    table = DeltaTable(uri)
    table.update(updates={"body": "'Row updated: approvals and aliases.'"}, predicate="doc_id = 'doc-0001'")
    table.delete("doc_id IN ('doc-0002', 'doc-0003')")
    last = sync(r, "kb", uri)[-1]
    assert (last.rows_upserted, last.rows_deleted, last.table_version) == (1, 2, DeltaTable(uri).version())
    assert r.get_index("kb").document_count == 48
