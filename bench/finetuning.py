"""Fine-tuning benchmark (`python -m bench.finetuning`): training tokens/s of a LoRA job through
the service (its own worker process, DeepSpeed, checkpoints on) vs a raw Hugging Face Trainer
loop on the same model, examples, batch size and LoRA settings, in this process. Both are timed
in steady state (from the end of the first step to the end of the last), counting the tokens
that are not padding. Target: the service >= 0.9x.
"""

from __future__ import annotations

import functools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from bench.harness import save
from llmops.client import Client
from llmops.core import auth
from llmops.modeling import demo
from llmops.testing.services import ServerThread, ServiceProcess, make_keys
from services.feedback.export import CHAT_SCHEMA
from services.finetuning.training import LORA_TARGETS, batch_of, encode
from services.registry.config import RegistryConfig
from services.registry.server import build as build_registry

DOCS = Path(__file__).resolve().parents[1] / "docs"
BATCH, SEQ, RANK, ALPHA, LR = 8, 128, 8, 16, 1e-3


def rows(n: int = 960) -> list[list[dict]]:
    return [[{"role": "user", "content": f"Who may move the production alias of model number {i}?"},
             {"role": "assistant", "content": f"Only a person with the approver role may move it (case {i})."}]
            for i in range(n)]


def through_service(home: Path, model: Path, data: list[list[dict]], checkpoint_every: int) -> tuple[float, int]:
    keys = make_keys(home / "keys.json")
    service_key = auth.add_key(home / "keys.json", "service-finetuning", "editor")
    registry = ServerThread(functools.partial(build_registry, config=RegistryConfig(
        database_url=f"sqlite:///{home / 'reg.db'}", artifact_root=str(home / "art"))),
        auth.KeyStore(home / "keys.json")).start()
    admin = Client({"registry": registry.address}, keys["admin"])
    admin.registry.create_model("base")
    admin.registry.upload_folder("base", model)
    table = str(home / "train")
    write_deltalake(table, pa.Table.from_pylist([{"request_id": str(i), "messages": m, "reference": "corrected",
                                                  "context_ids": [], "pipeline_version": "", "model_version": ""}
                                                 for i, m in enumerate(data)], schema=CHAT_SCHEMA))
    proc = ServiceProcess("finetuning", {"LLMOPS_HOME": str(home), "LLMOPS_REGISTRY_ADDRESS": registry.address,
                                         "LLMOPS_FINETUNING_API_KEY": service_key}, home).start()
    try:
        c = Client({"finetuning": proc.address}, keys["editor"])
        job = c.finetuning.create("base@1", table, epochs=1, batch_size=BATCH, max_seq_length=SEQ, lora_rank=RANK,
                                  lora_alpha=ALPHA, learning_rate=LR, checkpoint_interval_steps=checkpoint_every)
        while c.finetuning.get(job.name).state not in (4, 5, 7):
            time.sleep(0.5)
        assert c.finetuning.get(job.name).state == 4, c.finetuning.get(job.name).error
        log = home / "data" / "finetuning" / "jobs" / job.name.split("/")[1] / "events.jsonl"
        progress = [e for e in map(json.loads, log.read_text().splitlines()) if e["type"] == "progress"]
        c.close()
    finally:
        proc.terminate()
        admin.close()
        registry.stop()
    seconds = progress[-1]["time"] - progress[0]["time"]
    return seconds, sum(e["tokens"] for e in progress[1:])


def raw_trainer(model_dir: Path, data: list[list[dict]], out: Path) -> tuple[float, int]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pad = tokenizer.pad_token_id or 0
    held = round(len(data) * 0.1)  # the service holds out 10 % for eval; train on as many rows
    examples = encode(tokenizer, data[held:], SEQ)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32),
                           LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=LORA_TARGETS,
                                      task_type="CAUSAL_LM"))
    tokens: list[int] = []
    times: list[float] = []

    def collate(batch):
        ids, labels, mask = batch_of(batch, pad)
        tokens.append(int(mask.sum()))
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter())

    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=BATCH, num_train_epochs=1,
                             learning_rate=LR, use_cpu=True, save_strategy="no", report_to=[], logging_strategy="no",
                             remove_unused_columns=False, dataloader_num_workers=0, max_grad_norm=1.0)
    Trainer(model=model, args=args, train_dataset=examples, data_collator=collate, callbacks=[Clock()]).train()
    return times[-1] - times[0], sum(tokens[1:len(times)])


def main(rounds: int = 3) -> int:
    """`rounds` interleaved rounds (Trainer, service, service with checkpoints), so a slow spell of
    the machine hits every contender alike; the ratios are taken within a round."""
    data = rows()
    per_round = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = root / "demo-llm"
        demo.build(DOCS, model, demo.DemoSpec(steps=30))
        for r in range(rounds):
            home = root / f"round-{r}"
            for sub in ("svc", "svc-ckpt"):
                (home / sub).mkdir(parents=True)
            raw_s, raw_tokens = raw_trainer(model, data, home / "trainer")
            svc_s, svc_tokens = through_service(home / "svc", model, data, checkpoint_every=10_000)
            ck_s, ck_tokens = through_service(home / "svc-ckpt", model, data, checkpoint_every=25)
            raw, svc, ck = raw_tokens / raw_s, svc_tokens / svc_s, ck_tokens / ck_s
            per_round.append({"raw_trainer_tokens_per_s": round(raw, 1), "service_tokens_per_s": round(svc, 1),
                              "service_checkpoint_every_25_tokens_per_s": round(ck, 1),
                              "ratio": round(svc / raw, 3), "ratio_with_checkpoints": round(ck / raw, 3)})
            print(f"round {r + 1}: Trainer {raw:.0f} tok/s | service {svc:.0f} ({svc / raw:.2f}x) | with a "
                  f"checkpoint every 25 steps {ck:.0f} ({ck / raw:.2f}x)", flush=True)
    ratio = statistics.median(x["ratio"] for x in per_round)
    ratio_ck = statistics.median(x["ratio_with_checkpoints"] for x in per_round)
    report = {"benchmark": "finetuning", "rounds": per_round, "median_ratio": ratio,
              "median_ratio_with_checkpoints": ratio_ck, "target": ">= 0.9", "met": ratio >= 0.9, "batch": BATCH,
              "max_seq_length": SEQ, "lora_rank": RANK}
    save("finetuning", report)
    print(f"median over {rounds} rounds: service {ratio:.2f}x, with checkpoints {ratio_ck:.2f}x of the raw HF "
          f"Trainer (target >= 0.9) {'MET' if ratio >= 0.9 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
