"""Contract rules for every proto in protos/, and generated code that matches them."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from tools import gen_protos

PROTO_FILES = gen_protos.proto_files()


def _descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        rc = protoc.main(["protoc", *gen_protos.includes(), "--include_source_info",
                          f"--descriptor_set_out={out}",
                          *[str(p.relative_to(gen_protos.PROTO_ROOT)) for p in PROTO_FILES]])
        assert rc == 0
        fds = descriptor_pb2.FileDescriptorSet()
        fds.ParseFromString(out.read_bytes())
        return fds


FDS = _descriptor_set()
FILES = [f for f in FDS.file if f.package.startswith("llmops.")]


def test_generated_code_is_fresh():
    assert gen_protos.stale_files() == [], "generated code is stale: run `make protos`"


SHARED = "llmops.common.v1"  # types every service shares (the chat message), no service of its own


def test_all_seven_services_have_a_package_matching_their_directory():
    services = {f.package.split(".")[1] for f in FILES if f.package != SHARED}
    assert services == {"registry", "retrieval", "prompt", "generation", "pipeline", "feedback", "finetuning"}
    for f in FILES:
        assert f.name.startswith(f.package.replace(".", "/") + "/"), f.name
        assert len(f.service) == (0 if f.package == SHARED else 1)


def test_one_chat_message_type():
    """Generation's messages, a pipeline's history and the logged prompt are one shared type (a
    prompt template's Message, with a typed role and Jinja content, is not yet)."""
    chat = [(f.package, m.name) for f in FILES for m in f.message_type
            if {"role", "content"} <= {x.name for x in m.field} and m.field[0].type == m.field[0].TYPE_STRING]
    assert chat == [(SHARED, "ChatMessage")]
    sampling = [(f.package, m.name) for f in FILES for m in f.message_type
                if {"temperature", "top_p", "max_tokens"} <= {x.name for x in m.field}]
    assert sampling == [(SHARED, "SamplingParams")]  # generation and pipelines share one


def test_unary_and_streamed_generate_requests_are_the_same_fields():
    """The OpenAI endpoint re-reads a StreamGenerateRequest as a GenerateRequest for answers
    that are not streamed: the two must keep the same fields under the same numbers."""
    from llmops.api.generation.v1 import generation_pb2 as gpb

    def fields(message):
        return [(f.number, f.name, f.type, f.is_repeated, f.message_type.full_name if f.message_type else "")
                for f in message.DESCRIPTOR.fields]

    assert fields(gpb.GenerateRequest) == fields(gpb.StreamGenerateRequest)


def _documented_paths(f: descriptor_pb2.FileDescriptorProto) -> set[tuple[int, ...]]:
    return {tuple(loc.path) for loc in f.source_code_info.location if loc.leading_comments.strip()}


def _element_paths(f):
    """(path, label) of every service, rpc, message, field, enum and enum value."""
    for si, s in enumerate(f.service):
        yield (6, si), s.name
        for mi, m in enumerate(s.method):
            yield (6, si, 2, mi), f"{s.name}.{m.name}"

    def walk_message(prefix, m):
        yield prefix, m.name
        for fi, field in enumerate(m.field):
            yield (*prefix, 2, fi), f"{m.name}.{field.name}"
        for ni, nested in enumerate(m.nested_type):
            if not nested.options.map_entry:
                yield from walk_message((*prefix, 3, ni), nested)
        for ei, e in enumerate(m.enum_type):
            yield from walk_enum((*prefix, 4, ei), e)

    def walk_enum(prefix, e):
        yield prefix, e.name
        for vi, v in enumerate(e.value):
            yield (*prefix, 2, vi), f"{e.name}.{v.name}"

    for mi, m in enumerate(f.message_type):
        yield from walk_message((4, mi), m)
    for ei, e in enumerate(f.enum_type):
        yield from walk_enum((5, ei), e)


@pytest.mark.parametrize("f", FILES, ids=lambda f: f.package)
def test_every_element_has_a_comment(f):
    documented = _documented_paths(f)
    missing = [label for path, label in _element_paths(f) if path not in documented]
    assert missing == [], f"undocumented in {f.name}: {missing}"


@pytest.mark.parametrize("f", FILES, ids=lambda f: f.package)
def test_rpc_comments_name_their_errors_and_role(f):
    locations = {tuple(loc.path): loc.leading_comments for loc in f.source_code_info.location}
    codes = ("INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED",
             "UNAVAILABLE", "PERMISSION_DENIED", "DATA_LOSS", "same errors as")
    for si, s in enumerate(f.service):
        assert "UNAUTHENTICATED" in locations[(6, si)], f"{s.name} comment must list the errors every RPC may return"
        for mi, m in enumerate(s.method):
            comment = locations[(6, si, 2, mi)]
            assert "Role:" in comment, f"{s.name}.{m.name} comment must name the role it needs"
            assert any(c in comment for c in codes), f"{s.name}.{m.name} comment names no error it returns"


@pytest.mark.parametrize("f", FILES, ids=lambda f: f.package)
def test_enums_start_with_a_prefixed_unspecified_zero(f):
    import re

    def enums(f):
        yield from f.enum_type
        stack = list(f.message_type)
        while stack:
            m = stack.pop()
            yield from m.enum_type
            stack.extend(m.nested_type)

    for e in enums(f):
        prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", e.name).upper() + "_"
        assert e.value[0].number == 0 and e.value[0].name == prefix + "UNSPECIFIED", e.name
        assert all(v.name.startswith(prefix) for v in e.value), e.name


@pytest.mark.parametrize("f", FILES, ids=lambda f: f.package)
def test_each_rpc_has_its_own_request_and_response(f):
    messages = {m.name: m for m in f.message_type}
    for s in f.service:
        for m in s.method:
            req = m.input_type.rsplit(".", 1)[-1]
            resp = m.output_type.rsplit(".", 1)[-1]
            assert req == f"{m.name}Request", f"{m.name} takes {req}"
            resource = "name" in {fl.name for fl in messages[resp].field}
            assert resp == f"{m.name}Response" or resource, f"{m.name} returns {resp}"


@pytest.mark.parametrize("f", FILES, ids=lambda f: f.package)
def test_lists_paginate(f):
    messages = {m.name: m for m in f.message_type}
    for s in f.service:
        for m in s.method:
            if m.name.startswith("List"):
                req = {x.name for x in messages[f"{m.name}Request"].field}
                resp = {x.name for x in messages[f"{m.name}Response"].field}
                assert {"page_size", "page_token"} <= req and "next_page_token" in resp, m.name


@pytest.mark.parametrize("f", FILES, ids=lambda f: f.package)
def test_imports_only_google_types_and_the_shared_types_across_packages(f):
    for dep in f.dependency:
        assert dep.startswith(("google/protobuf/", "google/rpc/", "google/api/", "llmops/common/v1/")) or \
            dep.startswith(f.package.replace(".", "/")), dep


@pytest.mark.parametrize("f", FILES, ids=lambda f: f.package)
def test_create_requests_name_their_idempotency_key_alike(f):
    messages = {m.name: m for m in f.message_type}
    for s in f.service:
        for m in s.method:
            fields = {x.name for x in messages[f"{m.name}Request"].field}
            assert "request_id" not in fields or not m.name.startswith("Create"), m.name
            if m.name in ("CreateModelVersion", "CreatePromptVersion", "CreateFeedback", "CreateTuningJob"):
                assert "idempotency_key" in fields, m.name


@pytest.mark.parametrize("f", [f for f in FILES if f.service], ids=lambda f: f.package)
def test_every_create_takes_the_resource_it_creates(f):
    """One Create shape (AIP-133): the resource as a message field, beside its id or parent and
    the idempotency key; never the resource's fields spread over the request."""
    messages = {m.name: m for m in f.message_type}
    for s in f.service:
        for rpc in s.method:
            if rpc.name.startswith("Create"):
                request = messages[f"{rpc.name}Request"]
                resource = rpc.output_type
                embedded = [x for x in request.field if x.type_name == resource]
                assert len(embedded) == 1, f"{rpc.name}Request does not take a {resource.rsplit('.', 1)[-1]}"
                others = {x.name for x in request.field} - {embedded[0].name, "parent", "idempotency_key",
                                                             "enable_hybrid"}
                assert all(n.endswith("_id") for n in others), f"{rpc.name}Request spreads {others}"


def test_staleness_check_detects_missing_generated_code(monkeypatch, tmp_path):
    monkeypatch.setattr(gen_protos, "OUT_ROOT", tmp_path)
    assert "llmops/api/registry/v1/registry_pb2.py" in gen_protos.stale_files()


def _options(msg: descriptor_pb2.DescriptorProto | descriptor_pb2.FieldDescriptorProto, extension):
    """An extension's value on a descriptor proto's options (parsed from the raw options)."""
    from google.protobuf import message_factory

    cls = message_factory.GetMessageClass(msg.options.DESCRIPTOR)
    opts = cls.FromString(msg.options.SerializeToString())
    return opts.Extensions[extension]


@pytest.mark.parametrize("f", [f for f in FILES if f.service], ids=lambda f: f.package)
def test_resources_and_field_behaviour_are_annotated(f):
    """Resources carry google.api.resource (type and name pattern) and an IDENTIFIER name with
    OUTPUT_ONLY times; requests mark the names and ids they cannot do without REQUIRED."""
    from google.api import field_behavior_pb2, resource_pb2

    behavior = field_behavior_pb2.field_behavior
    resources = [m for m in f.message_type if _options(m, resource_pb2.resource).type]
    assert resources or f.package == "llmops.pipeline.v1", f"{f.package} declares no resource"  # pipelines keep none
    for m in resources:
        resource = _options(m, resource_pb2.resource)
        assert resource.type == f"llmops.dev/{m.name}" and resource.pattern[0].split("/")[0], m.name
        fields = {x.name: x for x in m.field}
        assert list(_options(fields["name"], behavior)) == [field_behavior_pb2.IDENTIFIER], m.name
        for t in ("create_time", "update_time"):
            if t in fields:
                assert field_behavior_pb2.OUTPUT_ONLY in _options(fields[t], behavior), f"{m.name}.{t}"
    messages = {m.name: m for m in f.message_type}
    for s in f.service:
        for rpc in s.method:
            if rpc.name.startswith(("Get", "Create")):
                for x in messages[f"{rpc.name}Request"].field:
                    if x.name in ("name", "parent") or (rpc.name.startswith("Create") and x.name.endswith("_id")):
                        assert field_behavior_pb2.REQUIRED in _options(x, behavior), f"{rpc.name}Request.{x.name}"
