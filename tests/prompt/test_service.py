"""Templates, versions and aliases, and assembly against an index built from docs/: the budget
holds exactly, the best chunks are kept, citations line up; every bad input has its code."""

from __future__ import annotations

import grpc
import pytest

from llmops.api.prompt.v1 import prompt_pb2 as pb
from llmops.client.prompt import variable
from llmops.testing.services import code_of

pytestmark = pytest.mark.slow  # each test indexes docs/ and trains a tokenizer

INVALID = grpc.StatusCode.INVALID_ARGUMENT
SYSTEM = "Answer from the context; cite sources like [1].\n{{ context }}"


def make_support_qa(p, index: str = "docs"):
    p.create_template("support-qa", "answers questions about llmops")
    p.create_version("support-qa", [("system", "v1: " + SYSTEM), ("user", "{{ question }}")],
                     variables=[variable("question")], index=index, top_k=8)
    p.create_version("support-qa", [("system", SYSTEM), ("user", "{{ tone }}: {{ question }}")],
                     variables=[variable("question"), variable("tone", default="Briefly")], index=index, top_k=8)


def test_versions_and_aliases(stack):
    p = stack.clients["editor"].prompt
    make_support_qa(p)
    approver = stack.clients["approver"].prompt
    approver.approve("support-qa@1", "first review")
    approver.set_alias("support-qa", "production", 1)
    assert p.get_version("support-qa@production").version == 1
    approver.approve("support-qa@2")
    approver.set_alias("support-qa", "production", 2)
    v = p.get_version("support-qa@production")
    assert v.version == 2 and list(v.aliases) == ["production"] and v.retrieval.index == "docs"
    assert v.approval == pb.APPROVAL_STATE_APPROVED and v.reviewer == "approver"
    assert [x.version for x in p.list_versions("support-qa")] == [2, 1]
    assert p.get_template("support-qa").aliases["production"] == 2
    p.set_alias("support-qa", "staging", 1)  # unprotected aliases are the editors'


def test_protected_prompt_aliases_behave_like_the_registry(stack):
    """Approver role, approved version, audit events: the registry's gate, not a second copy."""
    p = stack.clients["editor"].prompt
    p.create_template("gated")
    p.create_version("gated", [("user", "v1 {{ question }}")], variables=[variable("question")])
    p.create_version("gated", [("user", "v2 {{ question }}")], variables=[variable("question")])
    code, msg = code_of(p.set_alias, "gated", "production", 1)
    assert code is grpc.StatusCode.PERMISSION_DENIED and "approver" in msg  # editors cannot move it
    approver = stack.clients["approver"].prompt
    code, msg = code_of(approver.set_alias, "gated", "production", 1)
    assert code is grpc.StatusCode.FAILED_PRECONDITION and "pending approval" in msg and "llmops prompts approve" in msg
    code, _ = code_of(p.approve, "gated@1")
    assert code is grpc.StatusCode.PERMISSION_DENIED  # reviewing is the approvers'
    approver.approve("gated@1", "looks right")
    approver.set_alias("gated", "production", 1)
    approver.reject("gated@2", "wrong tone")
    code, msg = code_of(approver.set_alias, "gated", "production", 2)
    assert code is grpc.StatusCode.FAILED_PRECONDITION and "rejected" in msg
    code, msg = code_of(approver.approve, "gated@2")
    assert code is grpc.StatusCode.FAILED_PRECONDITION and "rejected" in msg
    code, msg = code_of(approver.reject, "gated@1")
    assert code is grpc.StatusCode.FAILED_PRECONDITION and "production" in msg  # still serving
    assert p.get_version("gated@production").version == 1
    events = [(pb.PromptEventType.Name(e.type), e.version, e.alias, e.actor) for e in p.events("gated")]
    assert events == [("PROMPT_EVENT_TYPE_VERSION_CREATED", 1, "", "editor"),
                      ("PROMPT_EVENT_TYPE_VERSION_CREATED", 2, "", "editor"),
                      ("PROMPT_EVENT_TYPE_VERSION_APPROVED", 1, "", "approver"),
                      ("PROMPT_EVENT_TYPE_ALIAS_SET", 1, "production", "approver"),
                      ("PROMPT_EVENT_TYPE_VERSION_REJECTED", 2, "", "approver")]
    assert code_of(p.events, "nope")[0] is grpc.StatusCode.NOT_FOUND
    assert code_of(approver.approve, "gated@9")[0] is grpc.StatusCode.NOT_FOUND
    assert code_of(approver.approve, "gated@x y")[0] is grpc.StatusCode.INVALID_ARGUMENT
    code, msg = code_of(approver.approve, "gated@1", "x" * 2001)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "2000" in msg
    assert code_of(approver.set_alias, "gated", "staging", 0)[0] is grpc.StatusCode.INVALID_ARGUMENT


def test_deleting_aliases_follows_the_registry_contract(stack):
    """DeletePromptAlias: editors remove unprotected aliases, only approvers the protected one,
    an unknown alias is NOT_FOUND, and each removal is an audit event."""
    p = stack.clients["editor"].prompt
    approver = stack.clients["approver"].prompt
    p.create_template("retiring")
    p.create_version("retiring", [("user", "{{ question }}")], variables=[variable("question")])
    p.set_alias("retiring", "staging", 1)
    approver.approve("retiring@1")
    approver.set_alias("retiring", "production", 1)
    assert dict(p.delete_alias("retiring", "staging").aliases) == {"production": 1}
    code, msg = code_of(p.delete_alias, "retiring", "production")
    assert code is grpc.StatusCode.PERMISSION_DENIED and "approver" in msg
    assert code_of(p.delete_alias, "retiring", "staging")[0] is grpc.StatusCode.NOT_FOUND
    assert code_of(p.delete_alias, "nope", "staging")[0] is grpc.StatusCode.NOT_FOUND
    assert code_of(p.delete_alias, "retiring", "Bad Alias")[0] is INVALID
    assert dict(approver.delete_alias("retiring", "production").aliases) == {}
    assert code_of(p.get_version, "retiring@production")[0] is grpc.StatusCode.NOT_FOUND
    deleted = [(e.alias, e.previous_version, e.actor) for e in p.events("retiring")
               if e.type == pb.PROMPT_EVENT_TYPE_ALIAS_DELETED]
    assert deleted == [("staging", 1, "editor"), ("production", 1, "approver")]


def test_assembly_fits_the_budget_exactly_and_keeps_the_best_chunks(stack):
    p = stack.clients["editor"].prompt
    make_support_qa(p)
    question = "Who may move the production alias of a model?"
    full = p.assemble("support-qa@2", {"question": question}, tokenizer_model="target@production")
    assert not full.truncated and len(full.chunks) == 8
    assert full.prompt_tokens == stack.count(full.rendered_text)

    budget = full.prompt_tokens - 40  # too small for everything
    packed = p.assemble("support-qa@2", {"question": question}, context_window_tokens=budget + 50,
                        reserve_output_tokens=50, tokenizer_model="target@production")
    assert packed.truncated and 0 < len(packed.chunks) < 8
    assert packed.prompt_tokens == stack.count(packed.rendered_text) <= budget
    scores = [c.score for c in full.chunks]
    assert scores == sorted(scores, reverse=True)
    assert packed.chunks[0].chunk_id == full.chunks[0].chunk_id  # the best chunk is kept
    for i, chunk in enumerate(packed.chunks, 1):  # citations line up with the chunks, in order
        assert chunk.citation == f"[{i}]" and f"[{i}] " in packed.messages[0].content
    assert packed.messages[1].content == f"Briefly: {question}"
    assert packed.template_version == "prompts/support-qa/versions/2" and packed.index_version >= 1


def test_values_stay_data_and_filters_apply(stack):
    p = stack.clients["editor"].prompt
    make_support_qa(p)
    out = p.assemble("support-qa@2", {"question": "{{ 7 * 7 }} about tracing", "tone": "Precisely"},
                     filter={"condition": {"field": "source", "op": "FILTER_OPERATOR_EQ", "value": "tracing.md"}})
    assert out.messages[1].content == "Precisely: {{ 7 * 7 }} about tracing"
    assert out.chunks and {c.document_id for c in out.chunks} == {"tracing.md"}


def test_bad_input(stack):
    p = stack.clients["editor"].prompt
    make_support_qa(p)
    code, msg = code_of(p.assemble, "support-qa@2", {})
    assert code is INVALID and "'question'" in msg
    code, msg = code_of(p.assemble, "support-qa@2", {"question": 42})
    assert code is INVALID and "string" in msg
    code, msg = code_of(p.assemble, "support-qa@2", {"question": "q", "extra": 1})
    assert code is INVALID and "'extra'" in msg
    code, msg = code_of(p.create_version, "support-qa", [("user", "line one\n{% if %}")], variables=[variable("question")])
    assert code is INVALID and "line 2" in msg
    p.create_version("support-qa", [("user", "{{ ''.__class__.__mro__ }} {{ question }}")], variables=[variable("question")])
    code, msg = code_of(p.assemble, "support-qa@3", {"question": "q"})
    assert code is INVALID and "sandbox" in msg
    p.create_version("support-qa", [("user", "{{ 'x'|attr('format') }}")], variables=[])
    assert code_of(p.assemble, "support-qa@4", {})[0] is INVALID
    p.create_version("support-qa", [("user", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                                             "{% endfor %}")], variables=[])
    code, msg = code_of(p.assemble, "support-qa@5", {})
    assert code is INVALID and "stopped" in msg
    assert code_of(p.assemble, "nope@1", {})[0] is grpc.StatusCode.NOT_FOUND
    assert code_of(p.assemble, "support-qa@staging", {})[0] is grpc.StatusCode.NOT_FOUND
    assert code_of(p.create_template, "support-qa")[0] is grpc.StatusCode.ALREADY_EXISTS
    assert code_of(p.assemble, "support-qa@2", {"question": "q"}, context_window_tokens=100)[0] is INVALID
    assert code_of(p.assemble, "support-qa@2", {"question": "q"}, tokenizer_model="nope@1")[0] is grpc.StatusCode.NOT_FOUND
    assert code_of(stack.clients["reader"].prompt.create_template, "x")[0] is grpc.StatusCode.PERMISSION_DENIED


def test_retrieval_down_is_unavailable(stack):
    p = stack.clients["editor"].prompt
    make_support_qa(p)
    stack.retrieval.stop()
    stack.retrieval.server = None
    code, msg = code_of(p.assemble, "support-qa@2", {"question": "anything"})
    assert code is grpc.StatusCode.UNAVAILABLE and "retrieval" in msg


def test_assembly_spans_carry_template_version_tokens_and_chunks(stack, spans):
    import time

    _, exporter = spans
    p = stack.clients["editor"].prompt
    make_support_qa(p)
    out = p.assemble("support-qa@2", {"question": "what is traced?"}, tokenizer_model="target@production")
    deadline = time.monotonic() + 3
    found = []
    while not found and time.monotonic() < deadline:
        found = [s for s in exporter.get_finished_spans() if s.name.endswith("/AssemblePrompt")]
        time.sleep(0.02)
    attrs = found[0].attributes
    assert attrs["llmops.template"] == "support-qa" and attrs["llmops.version"] == 2
    assert attrs["llmops.prompt_tokens"] == out.prompt_tokens
    assert list(attrs["llmops.chunk_ids"]) == [c.chunk_id for c in out.chunks]
