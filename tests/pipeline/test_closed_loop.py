"""The closed loop on the CPU, every service its own process: answers through the pipeline,
corrected through the feedback service, exported to a Delta table, a LoRA job on it, the candidate
registered with lineage, `llmops models compare` showing it beats the base, a durable evaluation
recorded against it that passes the model's approval gate, approval and the alias moved, and the same questions through the pipeline answered with the corrections."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from llmops.api.finetuning.v1 import finetuning_pb2 as fpb
from llmops.client.generation import registry_target
from llmops.evaluation import exact

pytestmark = pytest.mark.slow  # trains a base model and fine-tunes it

CORRECTIONS = {
    "Who may move the production alias?": "Only a person with the approver role.",
    "What comes back to the caller with the answer?": "The trace id.",
    "What do routes limit for each caller?": "Requests and tokens per minute.",
    "What caps what a caller may spend?": "A token budget.",
    "What must a new version wait for?": "Approval by a person.",
    "How far does the trace id travel?": "Through every service.",
    "Who approves a new version?": "A person, before deployment.",
    "What is counted per minute?": "Requests and tokens.",
    "When can a new version be deployed?": "After it is approved.",
    "What does every request carry?": "One trace id.",
}


def cli(rag, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **rag.env, "LLMOPS_API_KEY": rag.keys["admin"]}
    result = subprocess.run([sys.executable, "-m", "llmops.cli.main", *args], capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.timeout(900)  # the fixture trains the 300-step base first: about 100 s, three times that on a busy machine
def test_corrections_flow_into_a_tuned_candidate_that_serves_them_once_approved(rag, trained_demo_model):
    started = time.monotonic()
    admin, editor = rag.client("admin"), rag.client("editor")
    admin.registry.create_model("loop-llm")
    base = admin.registry.upload_folder("loop-llm", trained_demo_model)
    admin.registry.approve(base.name)
    admin.registry.set_alias("loop-llm", "production", base.version)
    admin.generation.create_route("loop", [registry_target("loop-llm@production")])
    bundle = rag.bundle("loop-qa", "loop", {"max_tokens": 24, "temperature": 0.0})

    # 1. the base answers; a reviewer corrects every answer
    reader = rag.client()
    before = {q: reader.pipeline.run("loop-qa@production", q) for q in CORRECTIONS}
    assert {a.versions.model for a in before.values()} == {base.name}
    assert sum(exact.exact_match(a.answer, CORRECTIONS[q]) for q, a in before.items()) == 0
    reviewer = rag.client("reviewer").feedback
    deadline = time.monotonic() + 30
    while len(reviewer.inferences(pipeline="loop-qa", limit=100)) < len(CORRECTIONS):
        assert time.monotonic() < deadline, "every answer reaches the inference log"
        time.sleep(0.2)
    for q, a in before.items():
        reviewer.give(request_id=a.request_id, corrected_answer=CORRECTIONS[q], thumb="down")

    # 2. export: the rows are the prompts the model was given, with the corrections as answers
    exported = editor.feedback.export("loop-corrections", corrected_only=True, pipeline_version=bundle.name)
    assert exported.row_count == len(CORRECTIONS)

    # 3. a LoRA job on it registers a candidate with lineage, awaiting approval
    job = editor.finetuning.create("loop-llm@production", exported.table_uri,
                                   dataset_version=str(exported.table_version), method="lora", epochs=60,
                                   learning_rate=3e-3, batch_size=4, lora_rank=8, lora_alpha=16,
                                   checkpoint_interval_steps=100)
    for _ in editor.finetuning.watch(job.name, timeout=900):
        pass
    job = editor.finetuning.get(job.name)
    assert job.state == fpb.JOB_STATE_SUCCEEDED, job.error
    candidate = admin.registry.get_version(job.result_model_version)
    assert candidate.version == base.version + 1 and candidate.status == 1  # PENDING_APPROVAL
    assert (candidate.lineage.base_version, candidate.lineage.dataset_uri, candidate.lineage.dataset_version,
            candidate.lineage.tuning_job_id) == (base.name, exported.table_uri, str(exported.table_version), job.name)
    assert candidate.metrics["exact_match"] >= 0.5 and candidate.metrics["exact_match_questions"] == len(CORRECTIONS)
    assert candidate.metrics["eval_loss"] > 0

    # 4. compare through generation routes: the candidate beats the champion by 30 points or more
    compared = cli(rag, "models", "compare", f"loop-llm@{candidate.version}", "loop-llm@production",
                   "--dataset", f"{exported.table_uri}@{exported.table_version}", "--details").stdout
    row = re.search(r"^exact match\s+(\d+)%\s+(\d+)%\s+([+-]\d+) pts$", compared, re.M)
    assert row, compared
    print(compared)
    cand_em, champ_em, gain = map(int, row.groups())
    assert champ_em == 0 and gain >= 30 and cand_em == round(candidate.metrics["exact_match"] * 100), compared
    assert f"served by: registry:{candidate.name} vs registry:{base.name}" in compared, compared

    # 5. the gate: approval needs an evaluation on the corrections that does not lose to production
    approver = rag.client("approver").registry
    dataset = f"{exported.table_uri}@{exported.table_version}"
    cli(rag, "models", "gate", "loop-llm", "--dataset", exported.table_uri, "--metric", "exact_match",
        "--require-confidence")
    refused = subprocess.run([sys.executable, "-m", "llmops.cli.main", "models", "approve", candidate.name],
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, **rag.env, "LLMOPS_API_KEY": rag.keys["approver"]})
    assert refused.returncode != 0 and "does not pass the approval gate" in refused.stderr, refused.stderr
    evaluated = cli(rag, "eval", "create", f"loop-llm@{candidate.version}", "--dataset", dataset,
                    "--concurrency", "4", "--watch").stdout
    print(evaluated)
    assert re.search(rf"succeeded\s+{candidate.name} vs {base.name} .* rows 20/20 +recorded", evaluated), evaluated
    assert re.search(r"^exact_match: \+0\.[3-9]\d*|^exact_match: \+1, ", evaluated, re.M), evaluated
    [record] = approver.evaluation_records(candidate.name)
    assert record.comparisons["exact_match"].ci_low > 0 and record.comparisons["exact_match"].champion_version == \
        base.name

    # 6. approve, move production: generation reloads, and the pipeline answers with the corrections
    approver.approve(candidate.name, "beats production on the corrected questions")
    admin.registry.set_alias("loop-llm", "production", candidate.version)
    deadline = time.monotonic() + 120
    while reader.pipeline.run("loop-qa@production", next(iter(CORRECTIONS))).versions.model != candidate.name:
        assert time.monotonic() < deadline, "generation serves the new production version"
        time.sleep(0.5)
    after = {q: reader.pipeline.run("loop-qa@production", q) for q in CORRECTIONS}
    corrected = sum(exact.exact_match(a.answer, CORRECTIONS[q]) for q, a in after.items())
    assert corrected * 100 // len(CORRECTIONS) >= 30, {q: a.answer for q, a in after.items()}
    assert corrected == round(candidate.metrics["exact_match"] * len(CORRECTIONS))
    print(f"\nclosed loop: {time.monotonic() - started:.0f} s; exact match {champ_em}% -> {cand_em}%; "
          f"pipeline corrected {corrected}/{len(CORRECTIONS)}")
