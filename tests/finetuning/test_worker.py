"""A tuning worker as its own process: LoRA with DeepSpeed on the CPU, checkpoints, a kill -9
mid-run and a restart that resumes from the last checkpoint with no step repeated or skipped,
a merged model folder that loads and generates, and SIGTERM as a cancel."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmops.testing.services import ROOT
from services.finetuning.training import RunSpec

pytestmark = pytest.mark.slow  # trains models

ROWS = [[{"role": "user", "content": f"What is {i} plus {i}?"}, {"role": "assistant", "content": f"It is {2 * i}."}]
        for i in range(40)]


def job(tmp_path: Path, demo_model: Path, rows: list = ROWS, **spec) -> Path:
    d = tmp_path / "job"
    d.mkdir()
    s = RunSpec(base=str(demo_model), method="lora", **{"epochs": 2, "batch_size": 4, "checkpoint_interval_steps": 4,
                                                        "learning_rate": 5e-3, **spec})
    (d / "spec.json").write_text(s.to_json())
    (d / "dataset.jsonl").write_text("".join(json.dumps({"messages": r}) + "\n" for r in rows))
    return d


def start(d: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "services.finetuning.worker", str(d)], cwd=ROOT,
                            stdout=open(d / "worker.log", "ab"), stderr=subprocess.STDOUT)


def events(d: Path) -> list[dict]:
    path = d / "events.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x] if path.exists() else []


def wait_for(d: Path, proc: subprocess.Popen, cond, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not cond(events(d)):
        assert proc.poll() is None, (d / "worker.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_killed_mid_run_resumes_from_its_checkpoint_without_gaps_or_repeats(tmp_path, demo_model):
    d = job(tmp_path, demo_model)
    proc = start(d)
    wait_for(d, proc, lambda ev: any(e["type"] == "progress" and e["step"] >= 6 for e in ev))
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert any(e["type"] == "checkpoint" and e["step"] == 4 for e in events(d))
    proc = start(d)
    assert proc.wait(300) == 0, (d / "worker.log").read_text()[-3000:]
    ev = events(d)
    assert [e["step"] for e in ev if e["type"] == "resumed"] == [4]
    steps = [e["step"] for e in ev if e["type"] == "progress"]
    assert steps == list(range(1, 19)), steps  # 2 epochs of 36 training rows in batches of 4
    finished = ev[-1]
    assert finished["type"] == "finished" and finished["metrics"]["eval_loss"] > 0
    losses = [e["loss"] for e in ev if e["type"] == "progress"]
    assert losses[-1] < losses[0]

    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = d / "output"
    assert (out / "model.safetensors").exists() and not (out / "adapter_config.json").exists()  # merged
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    ids = tok("<|user|>\nWhat is 2 plus 2?<|end|>\n<|assistant|>\n", return_tensors="pt", add_special_tokens=False)
    generated = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > ids["input_ids"].shape[1]


@pytest.mark.parametrize("zero_stage", [2])
def test_sigterm_cancels_at_a_step_boundary(tmp_path, demo_model, zero_stage):
    d = job(tmp_path, demo_model, zero_stage=zero_stage, merge_lora=False)
    proc = start(d)
    wait_for(d, proc, lambda ev: any(e["type"] == "progress" for e in ev))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 3
    ev = events(d)
    assert ev[-1]["type"] == "cancelled"
    assert not (d / "output").exists()


def test_lora_on_smollm2_trains_a_few_steps_and_merges_into_a_model_that_loads(tmp_path, smollm2_model):
    """The real pretrained model (imported from GGUF) tunes like the tiny one: LoRA on its
    attention, merged into a plain safetensors folder with its tokenizer and chat template."""
    d = job(tmp_path, smollm2_model, rows=ROWS[:10], epochs=1, batch_size=3, max_seq_length=48, eval_questions=1,
            checkpoint_interval_steps=100)
    proc = start(d)
    assert proc.wait(300) == 0, (d / "worker.log").read_text()[-3000:]
    ev = events(d)
    assert [e["step"] for e in ev if e["type"] == "progress"] == [1, 2, 3]  # 9 training rows in batches of 3
    assert ev[-1]["type"] == "finished" and ev[-1]["metrics"]["eval_loss"] > 0

    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = d / "output"
    assert (out / "model.safetensors").exists() and not (out / "adapter_config.json").exists()
    base, tuned = load_file(smollm2_model / "model.safetensors"), load_file(out / "model.safetensors")
    q = "model.layers.0.self_attn.q_proj.weight"
    assert tuned[q].shape == base[q].shape and not torch.equal(tuned[q], base[q])  # the adapter was merged in
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    model = AutoModelForCausalLM.from_pretrained(out)
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 2 plus 2?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    assert model.generate(**ids, max_new_tokens=4, do_sample=False).shape[1] > ids["input_ids"].shape[1]
