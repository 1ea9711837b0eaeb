"""GPU check for fine-tuning (run on a machine with an NVIDIA GPU; CI never needs one): LoRA vs
full fine-tuning of a ~1B-parameter Llama-shaped model with random weights (no download), both
through the service's own training code (`services.finetuning.training.train`: DeepSpeed
`initialize`, ZeRO-2, bf16 on CUDA), each in its own process so peak memory is its own.

Reports peak GPU memory (`torch.cuda.max_memory_allocated`) and the median step time after the
first step. Target: LoRA peak memory <= 0.5x full.

    python -m bench.gpu_finetuning            # prints JSON, writes bench/results/gpu_finetuning.json
    python -m bench.gpu_finetuning --steps 8  # fewer steps
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import save

CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>{% endfor %}"
                 "{% if add_generation_prompt %}<s>assistant\n{% endif %}")


def one_run(base: str, method: str, steps: int, out: str) -> None:
    """In a child process: train `steps` steps and write the figures to `out`."""
    import torch

    from services.finetuning.training import RunSpec, train

    rows = [[{"role": "user", "content": f"Question {i}: " + "what does the registry keep? " * 20},
             {"role": "assistant", "content": f"Answer {i}: " + "models, versions and approvals. " * 20}]
            for i in range(steps * 4 + 8)]
    spec = RunSpec(base=base, method=method, epochs=1, batch_size=4, max_seq_length=512, learning_rate=1e-4,
                   checkpoint_interval_steps=10**6, zero_stage=2, eval_fraction=0.0, eval_questions=2,
                   merge_lora=False)
    times: list[float] = []
    torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as job:
        metrics = train(spec, rows, Path(job), lambda e: times.append(time.perf_counter())
                        if e["type"] == "progress" else None)
    steps_s = [b - a for a, b in zip(times, times[1:], strict=False)]
    Path(out).write_text(json.dumps({
        "method": method, "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "step_time_s_median": round(statistics.median(steps_s), 4) if steps_s else None, "steps": len(times),
        "device": torch.cuda.get_device_name(), "exact_match_questions": metrics.get("exact_match_questions")}))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--child", nargs=3, metavar=("BASE", "METHOD", "OUT"))
    args = parser.parse_args()
    if args.child:
        one_run(*args.child[:2], args.steps, args.child[2])
        return 0
    import torch

    from bench.gpu_generation import build_model

    if not torch.cuda.is_available():
        print("no CUDA device: this check needs an NVIDIA GPU", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "llama-1b"
        params = build_model(base)
        config = json.loads((base / "tokenizer_config.json").read_text())
        (base / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": CHAT_TEMPLATE}))
        runs = {}
        for method in ("lora", "full"):
            out = Path(tmp) / f"{method}.json"
            subprocess.run([sys.executable, "-m", "bench.gpu_finetuning", "--steps", str(args.steps), "--child",
                            str(base), method, str(out)], check=True, cwd=Path(__file__).resolve().parents[1])
            runs[method] = json.loads(out.read_text())
    ratio = runs["lora"]["peak_memory_gib"] / runs["full"]["peak_memory_gib"]
    report = {"benchmark": "gpu_finetuning", "parameters": params, "zero_stage": 2, "runs": runs,
              "lora_over_full_peak_memory": round(ratio, 3), "target": "<= 0.5", "met": ratio <= 0.5,
              "lora_over_full_step_time": round(runs["lora"]["step_time_s_median"]
                                                / runs["full"]["step_time_s_median"], 3)}
    save("gpu_finetuning", report, echo=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
