"""Approval gates over the wire: a version is approved only with a recorded evaluation that passes
the model's gate (compared with the current champion), evidence is written by the evaluation
service's key alone, a gate is an approver's to change, and an admin's override is audited."""

from __future__ import annotations

import grpc
import pytest

from llmops.api.registry.v1 import registry_pb2 as pb
from llmops.cli.stack import SERVICE_KEYS
from llmops.client import Client
from llmops.core import auth
from llmops.testing.services import code_of
from services.registry.evidence import Comparison, Evidence, Gate, unmet

DATASET = "registry:docs-qa"


@pytest.fixture
def evaluator(registry, keys_file):
    role, grants = SERVICE_KEYS["finetuning"]
    key = auth.add_key(keys_file, "service-finetuning", role, grants=grants)
    client = Client({"registry": registry.thread.address}, key)
    yield client.registry
    client.close()


def _bundle(registry, name: str = "qa-bundle"):
    admin = registry.as_("admin")
    admin.create_model(name, kind="pipeline")
    return lambda: admin.create_pipeline_version(name, prompt_template="qa@1", index="kb", route="demo")


def _comparison(champion: str, difference: float, low: float, high: float, value: float = 0.7) -> dict:
    return {"champion_version": champion, "baseline_value": value, "difference": difference, "ci_low": low,
            "ci_high": high, "rows": 20, "p_value": 0.5}


def test_approval_needs_passing_evidence_against_the_current_champion(registry, evaluator):
    new_version = _bundle(registry)
    approver, editor, admin = registry.as_("approver"), registry.as_("editor"), registry.as_("admin")
    gate = pb.ApprovalGate(dataset_uri=DATASET, metric="exact_match", max_regression=0.02, min_value=0.5,
                           require_confidence=True)
    assert code_of(lambda: editor.set_gate("qa-bundle", gate))[0] is grpc.StatusCode.PERMISSION_DENIED
    m = approver.set_gate("qa-bundle", gate)
    assert m.gate.metric == "exact_match" and m.gate.champion_alias == "production"

    v1 = new_version()
    err_code, err_message = code_of(lambda: approver.approve(v1.name))
    assert err_code is grpc.StatusCode.FAILED_PRECONDITION
    assert "llmops eval create qa-bundle@1 --dataset registry:docs-qa" in err_message

    # evidence is the evaluation service's to write, not an editor's (nor an approver's)
    for who in (editor, approver):
        assert code_of(lambda w=who: w.record_evaluation("evaluations/abc", v1.name, DATASET, "1",
                                                        {"exact_match": 0.9}))[0] is grpc.StatusCode.PERMISSION_DENIED
    low = evaluator.record_evaluation("evaluations/e1", v1.name, DATASET, "1", {"exact_match": 0.4, "rows": 20})
    assert low.recorded_by == "service-finetuning" and low.rows == 20
    err_code, err_message = code_of(lambda: approver.approve(v1.name))
    assert err_code is grpc.StatusCode.FAILED_PRECONDITION and "below the floor 0.5" in err_message
    evaluator.record_evaluation("evaluations/e2", v1.name, DATASET, "1", {"exact_match": 0.7})
    assert approver.approve(v1.name).status == pb.VERSION_STATUS_APPROVED  # no champion yet: the floor alone
    approver.set_alias("qa-bundle", "production", 1)

    v2 = new_version()
    evaluator.record_evaluation("evaluations/e3", v2.name, DATASET, "1", {"exact_match": 0.6},
                                {"exact_match": _comparison(v1.name, -0.1, -0.25, 0.05)})
    err_code, err_message = code_of(lambda: approver.approve(v2.name))
    assert err_code is grpc.StatusCode.FAILED_PRECONDITION
    assert "past the allowed regression of 0.02" in err_message and "-0.25" in err_message
    # the mean is fine but the interval still reaches a regression past the margin
    evaluator.record_evaluation("evaluations/e4", v2.name, DATASET, "1", {"exact_match": 0.7},
                                {"exact_match": _comparison(v1.name, 0.0, -0.1, 0.1)})
    assert code_of(lambda: approver.approve(v2.name))[0] is grpc.StatusCode.FAILED_PRECONDITION
    # compared with another version than the champion: stale evidence
    evaluator.record_evaluation("evaluations/e5", v2.name, DATASET, "1", {"exact_match": 0.9},
                                {"exact_match": _comparison("models/qa-bundle/versions/7", 0.2, 0.1, 0.3)})
    err_code, err_message = code_of(lambda: approver.approve(v2.name))
    assert "not compared with the champion models/qa-bundle/versions/1" in err_message
    again = evaluator.record_evaluation("evaluations/e6", v2.name, DATASET, "1", {"exact_match": 0.9},
                                        {"exact_match": _comparison(v1.name, 0.2, 0.05, 0.35)})
    assert evaluator.record_evaluation("evaluations/e6", v2.name, DATASET, "1", {"exact_match": 0.1}) == again
    assert approver.approve(v2.name).status == pb.VERSION_STATUS_APPROVED
    records = approver.evaluation_records(v2.name)
    assert [r.evaluation for r in records] == [f"evaluations/e{i}" for i in (6, 5, 4, 3)]
    assert records[0].comparisons["exact_match"].ci_low == pytest.approx(0.05)
    approved = [e for e in admin.list_events("qa-bundle") if e.type == pb.EVENT_TYPE_VERSION_APPROVED]
    assert [e.details["gate"] for e in approved] == ["passed", "passed"]
    recorded = [e for e in admin.list_events("qa-bundle") if e.type == pb.EVENT_TYPE_EVALUATION_RECORDED]
    assert len(recorded) == 6 and recorded[0].actor == "service-finetuning"


def test_an_admin_may_override_a_gate_with_a_reason_and_it_is_audited(registry):
    new_version = _bundle(registry, "gated")
    registry.as_("approver").set_gate("gated", pb.ApprovalGate(dataset_uri=DATASET, metric="token_f1"))
    v = new_version()
    approver, admin = registry.as_("approver"), registry.as_("admin")
    assert code_of(lambda: approver.approve(v.name, "trust me", override_gate=True))[0] is \
        grpc.StatusCode.PERMISSION_DENIED
    assert code_of(lambda: admin.approve(v.name, override_gate=True))[0] is grpc.StatusCode.INVALID_ARGUMENT
    assert admin.approve(v.name, "hotfix: the eval set is being rebuilt", override_gate=True).status == \
        pb.VERSION_STATUS_APPROVED
    event = [e for e in admin.list_events("gated") if e.type == pb.EVENT_TYPE_VERSION_APPROVED][-1]
    assert event.actor == "admin" and event.details["comment"] == "hotfix: the eval set is being rebuilt"
    assert event.details["gate"].startswith("overridden: the gate needs an evaluation")
    # removing the gate is an approver's decision and leaves approval to a person's word
    approver.set_gate("gated", None)
    assert not admin.get_model("gated").HasField("gate")
    assert approver.approve(new_version().name).status == pb.VERSION_STATUS_APPROVED


@pytest.mark.parametrize("gate", [pb.ApprovalGate(dataset_uri=DATASET, metric="vibes"),
                                  pb.ApprovalGate(metric="exact_match"),
                                  pb.ApprovalGate(dataset_uri=DATASET, metric="exact_match", max_regression=-1)])
def test_malformed_gates_are_invalid_argument(registry, gate):
    registry.as_("admin").create_model("m")
    assert code_of(lambda: registry.as_("approver").set_gate("m", gate))[0] is grpc.StatusCode.INVALID_ARGUMENT


def test_malformed_records_are_invalid_argument(registry, evaluator):
    _bundle(registry)()
    for args in (("evaluations/../x", "qa-bundle@1", DATASET, "1", {}),
                 ("evaluations/e1", "qa-bundle@1", "", "1", {}),
                 ("evaluations/e1", "qa-bundle@1", DATASET, "1", {"exact_match": float("nan")})):
        assert code_of(lambda a=args: evaluator.record_evaluation(*a))[0] is grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: evaluator.record_evaluation("evaluations/e1", "qa-bundle@9", DATASET, "1", {}))[0] is \
        grpc.StatusCode.NOT_FOUND


def test_lower_is_better_metrics_gate_the_other_way():
    gate = Gate(DATASET, "error_rate", max_regression=0.01, min_value=0.1, require_confidence=True)
    champion = "models/r/versions/1"

    def record(rate: float, diff: float, low: float, high: float) -> Evidence:
        return Evidence("evaluations/x", "r", 2, DATASET, "1", {"error_rate": rate},
                        {"error_rate": Comparison(champion, 0.05, diff, low, high, 20)})

    assert unmet(gate, "r@2", [record(0.05, 0.0, -0.005, 0.005)], champion) is None
    assert "above the ceiling 0.1" in unmet(gate, "r@2", [record(0.2, 0.15, 0.1, 0.2)], champion)
    assert "past the allowed regression" in unmet(gate, "r@2", [record(0.08, 0.03, 0.0, 0.06)], champion)
    assert unmet(gate, "r@2", [record(0.01, -0.04, -0.06, -0.02)], champion) is None


def test_a_canary_shares_an_alias_and_ends_when_the_alias_moves(registry, keys_file):
    new_version = _bundle(registry, "canaried")
    admin, editor = registry.as_("admin"), registry.as_("editor")
    v1, v2, _ = new_version(), new_version(), new_version()
    for v in (v1, v2):
        admin.approve(v.name)
    admin.set_alias("canaried", "production", 1)
    assert code_of(lambda: editor.set_canary("canaried", "production", 2, 10))[0] is grpc.StatusCode.PERMISSION_DENIED
    assert code_of(lambda: admin.set_canary("canaried", "production", 3, 10))[0] is \
        grpc.StatusCode.FAILED_PRECONDITION  # v3 is not approved
    for bad in ((2, 100), (1, 10), (2, -1)):
        assert code_of(lambda b=bad: admin.set_canary("canaried", "production", *b))[0] is \
            grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: admin.set_canary("canaried", "staging", 2, 10))[0] is grpc.StatusCode.NOT_FOUND
    m = admin.set_canary("canaried", "production", 2, 10, reason="release step 1 of 3")
    assert (m.canaries["production"].version, m.canaries["production"].percent) == (2, 10)
    # the release controller's key moves it as an approver would, by grant
    role, grants = SERVICE_KEYS["finetuning"]
    controller = Client({"registry": registry.thread.address},
                        auth.add_key(keys_file, "service-finetuning", role, grants=grants))
    try:
        assert controller.registry.set_canary("canaried", "production", 2, 50).canaries["production"].percent == 50
        m = controller.registry.set_alias("canaried", "production", 2)
    finally:
        controller.close()
    assert m.aliases["production"] == 2 and "production" not in m.canaries
    events = [e for e in admin.list_events("canaried") if e.type == pb.EVENT_TYPE_CANARY_SET]
    assert [(e.details["percent"], e.actor) for e in events] == [("10", "admin"), ("50", "service-finetuning")]
    assert events[0].details["reason"] == "release step 1 of 3"
    editor.set_alias("canaried", "staging", 1)  # an unprotected alias: an editor's
    assert editor.set_canary("canaried", "staging", 3, 25).canaries["staging"].version == 3
    assert "staging" not in editor.set_canary("canaried", "staging", 0, 0).canaries
