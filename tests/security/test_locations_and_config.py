"""Black-box, against the running stack: callers cannot pick server-side locations (another
service's data folder, system paths, unlisted buckets, NUL bytes), configuration opens no side
channel (deepspeed.extra keys that write files or call out, credential references to arbitrary
variables, provider URLs at metadata or loopback addresses), and retrieval is exact for every
string."""

from __future__ import annotations

import grpc
import pytest

from llmops.api.retrieval.v1 import retrieval_pb2 as rpb
from llmops.client.generation import provider_target
from llmops.client.retrieval import condition as cond
from llmops.client.retrieval import document
from llmops.testing.services import code_of

pytestmark = pytest.mark.slow  # the whole stack

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _refused(fn, *args, field: str, **kwargs) -> None:
    code, message = code_of(fn, *args, **kwargs)
    assert code is INVALID, (args, code, message)
    assert field in message and "exist" not in message and "Traceback" not in message


@pytest.mark.parametrize("location", ["/etc", "../../data/registry", "s3://someone-elses-bucket/t",
                                      "file:///var/lib", "table\x00name"])
def test_server_side_locations_stay_inside_the_servers_roots(rag, location):
    editor = rag.client("editor")
    other = str(rag.home / "data" / "registry") if location.startswith("..") else location
    _refused(lambda: list(editor.retrieval.stub.SyncIndex(rpb.SyncIndexRequest(
        index="kb", table_uri=other, id_column="id", text_column="t", mode=rpb.SYNC_MODE_TRIGGERED), timeout=30)),
        field="table_uri")
    _refused(editor.feedback.export, other, field="table_uri")
    _refused(editor.finetuning.create, "demo@production", other, field="dataset_uri")
    _refused(editor.retrieval.create_index, "elsewhere", embedding_model=other, field="embedding_model")


def test_configuration_opens_no_side_channel(rag):
    editor = rag.client("editor").finetuning
    for extra in ({"flops_profiler": {"enabled": True, "output_file": "/tmp/p"}}, {"wandb": {"enabled": True}},
                  {"csv_monitor": {"enabled": True, "output_path": "/tmp"}}, {"checkpoint": {"tag_validation": "Ignore"}}):
        _refused(editor.create, "demo@production", "nope", deepspeed_extra=extra, field="deepspeed.extra")
    admin = rag.client("admin").generation
    for url in ("http://169.254.169.254/latest/meta-data", "http://metadata.google.internal/", "http://localhost:1/v1"):
        _refused(admin.create_route, "leak", [provider_target(url, "m")], field="base_url")
    _refused(admin.create_route, "leak", [provider_target("http://127.0.0.1:9/v1", "m", "env:LLMOPS_GENERATION_API_KEY")],
             field="credential_ref")


def test_retrieval_is_exact_for_every_string(rag):
    r = rag.client("editor").retrieval
    r.create_index("strings", chunk_size=64, chunk_overlap=0)
    r.upsert("strings", [document(n, f"A note on {n}.", {"author": n}) for n in ("Müller.pdf", "Zoë.md", "x")])
    assert r.delete_documents("strings", ["Müller.pdf"]).document_count == 1
    hits = r.search("strings", "note", top_k=10).hits
    assert "Müller.pdf" not in {h.document_id for h in hits} and {h.document_id for h in hits} == {"Zoë.md", "x"}
    only = r.search("strings", "note", top_k=10, filter=cond("author", rpb.FILTER_OPERATOR_EQ, "Zoë.md")).hits
    assert [h.document_id for h in only] == ["Zoë.md"]
    code, _ = code_of(r.search, "strings", "note", filter=cond("author", rpb.FILTER_OPERATOR_IN, ["a", 2]))
    assert code is INVALID
