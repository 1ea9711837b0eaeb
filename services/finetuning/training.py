"""One tuning run, in the process that calls it: a causal LM from a Hugging Face folder, full or
LoRA (PEFT) training with DeepSpeed (`deepspeed.initialize`, ZeRO stage from the job; on CPU one
rank with `torch_adam`, so no C++ op is built), checkpoints every N steps, and resumption from
the last complete checkpoint without repeating or skipping a step.

Examples are chat rows (`messages`); the loss is on the assistant's last turn only (the prompt
tokens are masked), rendered with the model's own chat template. The order of examples is a
function of (seed, epoch), so a resumed run sees exactly the batches the first one would have.

On several GPUs (the DeepSpeed launcher starts one process per GPU) every rank runs this same
loop: a step takes `batch_size` examples per rank from the same shuffled window, and rank 0
alone writes events and the output.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.core import localenv

Emit = Callable[[dict[str, Any]], None]
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "generation_config.json")


@dataclass(frozen=True)
class RunSpec:
    base: str  # a Hugging Face model folder
    method: str = "lora"  # lora | full
    epochs: int = 3
    learning_rate: float = 1e-3
    batch_size: int = 4
    max_seq_length: int = 256
    lora_rank: int = 8
    lora_alpha: int = 16
    merge_lora: bool = True
    checkpoint_interval_steps: int = 10
    zero_stage: int = 0
    offload_optimizer: bool = False
    seed: int = 0
    eval_fraction: float = 0.1
    eval_questions: int = 200  # at most this many of the dataset's questions are answered for exact match
    deepspeed_extra: dict = field(default_factory=dict)  # merged into the DeepSpeed configuration

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]  # -100 where the loss is not taken


class Stopped(Exception):
    """The run was asked to stop (cancelled) at a step boundary."""


def encode(tokenizer, rows: list[list[dict]], max_len: int) -> list[Example]:
    """Each chat row as token ids with the loss on its last (assistant) turn; rows whose prompt
    alone fills `max_len` are skipped."""
    out = []
    for messages in rows:
        prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        if not full.startswith(prompt):  # a template that rewrites earlier turns: train on all of it
            prompt = ""
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else []
        f_ids = tokenizer(full, add_special_tokens=False)["input_ids"][:max_len]
        if len(p_ids) >= len(f_ids):
            continue
        out.append(Example(f_ids, [-100] * len(p_ids) + f_ids[len(p_ids):]))
    return out


def split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """(train, eval): a held-out share, fixed by the seed (at least one example each when possible)."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_eval = min(len(examples) - 1, max(1, round(len(examples) * fraction))) if len(examples) > 1 else 0
    held = set(order[:n_eval])
    return [e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held]


def batch_of(examples: list[Example], pad_id: int):
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return ids, labels, mask


def deepspeed_config(spec: RunSpec, cuda: bool = False) -> dict:
    zero: dict[str, Any] = {"stage": spec.zero_stage}
    if spec.offload_optimizer and spec.zero_stage >= 1:
        zero["offload_optimizer"] = {"device": "cpu"}
    if spec.zero_stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return _merge({
        "train_micro_batch_size_per_gpu": spec.batch_size, "gradient_accumulation_steps": 1,
        "zero_optimization": zero, "gradient_clipping": 1.0,
        # torch's AdamW: DeepSpeed's own CPU Adam would build a C++ op first (a minute or more)
        "optimizer": {"type": "AdamW", "params": {"lr": spec.learning_rate, "weight_decay": 0.0, "torch_adam": True}},
        "steps_per_print": 10**9, "wall_clock_breakdown": False,
        "bf16": {"enabled": cuda},  # fp32 on the CPU; on GPUs bf16 weights with fp32 optimizer state
    }, spec.deepspeed_extra)


def _merge(base: dict, extra: dict) -> dict:
    """`extra` over `base`, nested dictionaries merged key by key."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def train(spec: RunSpec, rows: list[list[dict]], job_dir: Path, emit: Emit,
          should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """Train, checkpointing into `job_dir/checkpoints`, and write the result model to
    `job_dir/output`. Resumes from the last complete checkpoint there. Returns the metrics."""
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(localenv.free_port()))
    import deepspeed
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if rank != 0:  # one rank speaks for the job: events, pruning, the output folder
        emit = _silent
    torch.manual_seed(spec.seed)
    tokenizer = AutoTokenizer.from_pretrained(spec.base)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    examples = encode(tokenizer, rows, spec.max_seq_length)
    train_set, eval_set = split(examples, spec.eval_fraction, spec.seed)
    if not train_set:
        raise ValueError("no training examples fit max_seq_length")
    model = AutoModelForCausalLM.from_pretrained(spec.base, dtype=torch.float32)
    if spec.method == "lora":
        from peft import LoraConfig, get_peft_model

        targets = [t for t in LORA_TARGETS if any(n.endswith(t) for n, _ in model.named_modules())]
        model = get_peft_model(model, LoraConfig(r=spec.lora_rank, lora_alpha=spec.lora_alpha, lora_dropout=0.0,
                                                 target_modules=targets or None, task_type="CAUSAL_LM"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=trainable,
                                           config=deepspeed_config(spec, torch.cuda.is_available()))
    step_examples = spec.batch_size * world  # a step is one micro-batch per rank (data parallel)
    steps_per_epoch = math.ceil(len(train_set) / step_examples)
    total = spec.epochs * steps_per_epoch
    ckpt_dir = job_dir / "checkpoints"
    start = 0
    if (ckpt_dir / "latest").exists():  # DeepSpeed writes `latest` only once a checkpoint is whole
        _, state = engine.load_checkpoint(str(ckpt_dir))
        start = int((state or {}).get("step", 0))
        emit({"type": "resumed", "step": start, "total": total})
    emit({"type": "started", "step": start, "total": total, "train_examples": len(train_set),
          "eval_examples": len(eval_set),
          "trainable_parameters": sum(p.numel() for p in trainable),
          "parameters": sum(p.numel() for p in engine.module.parameters())})
    engine.train()
    tokens = 0
    for step in range(start, total):
        if should_stop():
            raise Stopped(f"stopped before step {step + 1}")
        epoch, i = divmod(step, steps_per_epoch)
        order = list(range(len(train_set)))
        random.Random(spec.seed * 1_000_003 + epoch).shuffle(order)
        window = order[i * step_examples:(i + 1) * step_examples]
        chosen = [train_set[j] for j in (window[rank::world] or window[:1])]  # this rank's share
        ids, labels, mask = (t.to(engine.device) for t in batch_of(chosen, pad_id))
        out = engine(input_ids=ids, attention_mask=mask, labels=labels)
        engine.backward(out.loss)
        engine.step()
        tokens += int(mask.sum())
        emit({"type": "progress", "step": step + 1, "total": total, "loss": out.loss.item(), "epoch": epoch + 1,
              "tokens": int(mask.sum())})
        if (step + 1) % max(1, spec.checkpoint_interval_steps) == 0 and step + 1 < total:
            engine.save_checkpoint(str(ckpt_dir), tag=f"step-{step + 1}", client_state={"step": step + 1})
            if rank == 0:
                _prune(ckpt_dir, keep=f"step-{step + 1}")
            emit({"type": "checkpoint", "step": step + 1, "checkpoint": f"step-{step + 1}"})
    metrics = {"eval_loss": evaluate(engine, eval_set, pad_id, spec.batch_size), "train_steps": float(total),
               "train_examples": float(len(train_set))}
    if rank != 0:
        return metrics
    save_output(engine.module, spec, job_dir / "output")
    del engine, model
    metrics.update(check_output(spec, rows, job_dir / "output"))
    emit({"type": "evaluated", "step": total, "eval_loss": metrics["eval_loss"],
          "exact_match": metrics["exact_match"], "questions": metrics["exact_match_questions"]})
    return metrics


def check_output(spec: RunSpec, rows: list[list[dict]], out: Path) -> dict[str, float]:
    """Load the saved folder the way serving will (a fresh process state, merged weights or base +
    adapter) and answer the dataset's evaluation questions greedily: a model that does not load
    or generate fails the job here, not after someone approved it. Returns the exact-match rate."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmops.evaluation import exact
    from llmops.evaluation.datasets import question_of

    tokenizer = AutoTokenizer.from_pretrained(out)
    if (out / "adapter_config.json").exists():
        from peft import PeftModel

        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(spec.base), str(out))
    else:
        model = AutoModelForCausalLM.from_pretrained(out)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()
    items = [question_of(r) for r in rows[:spec.eval_questions]]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    answers = []
    with torch.no_grad():
        for prompt, reference in items:
            enc = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True).to(device)
            budget = min(256, len(tokenizer(reference, add_special_tokens=False)["input_ids"]) + 16)
            ids = model.generate(**enc, max_new_tokens=budget, do_sample=False, pad_token_id=pad_id)
            answers.append(tokenizer.decode(ids[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    return {"exact_match": exact.rate(answers, [r for _, r in items]), "exact_match_questions": float(len(items))}


def evaluate(engine, examples: list[Example], pad_id: int, batch_size: int) -> float:
    """Mean loss per target token on held-out examples (0 when there are none)."""
    import torch

    if not examples:
        return 0.0
    engine.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            ids, labels, mask = (t.to(engine.device) for t in batch_of(examples[i:i + batch_size], pad_id))
            n = int((labels[:, 1:] != -100).sum())
            if n:
                total += float(engine(input_ids=ids, attention_mask=mask, labels=labels).loss) * n
                count += n
    engine.train()
    return total / count if count else 0.0


def _silent(event: dict[str, Any]) -> None:
    pass


def _prune(ckpt_dir: Path, keep: str) -> None:
    """Only the newest checkpoint is needed to resume."""
    for d in ckpt_dir.iterdir():
        if d.is_dir() and d.name.startswith("step-") and d.name != keep:
            shutil.rmtree(d, ignore_errors=True)


def save_output(module, spec: RunSpec, out: Path) -> None:
    """A Hugging Face folder (safetensors): LoRA merged into the base, or the adapter alone."""
    if out.exists():
        shutil.rmtree(out)
    if spec.method == "lora" and spec.merge_lora:
        module = module.merge_and_unload()
    module.save_pretrained(str(out), safe_serialization=True)
    for name in TOKENIZER_FILES:
        src = Path(spec.base) / name
        if src.exists() and not (out / name).exists():
            shutil.copy2(src, out / name)
