"""`llmops tune create | list | show | watch | cancel`: fine-tuning jobs, with a progress bar."""

from __future__ import annotations

import argparse
import json

from tqdm import tqdm

from llmops.api.finetuning.v1 import finetuning_pb2 as pb
from llmops.client import Client


def state_name(s: int) -> str:
    """A run's state as the CLI prints it (tuning jobs, evaluations, releases share JobState)."""
    return pb.JobState.Name(s).removeprefix("JOB_STATE_").lower()


def _line(j: pb.TuningJob) -> str:
    result = f"  -> {j.result_model_version}" if j.result_model_version else ""
    error = f"  ({j.error})" if j.error else ""
    return (f"{j.name}  {state_name(j.state):<10} {pb.Method.Name(j.method).removeprefix('METHOD_').lower():<5} "
            f"{j.base_model} on {j.dataset_uri}@{j.dataset_version}  step {j.steps_done}/{j.total_steps}"
            f"{result}{error}")


def watch(client: Client, name: str) -> pb.TuningJob:
    """Follow a job to its end with a progress bar (loss in the postfix)."""
    bar = tqdm(total=0, unit="step", desc=name.split("/")[-1])
    try:
        for e in client.finetuning.watch(name):
            kind = e.message.split(":", 1)[0]
            if kind == "progress":
                job = client.finetuning.get(name) if not bar.total else None
                if job is not None:
                    bar.total = job.total_steps
                bar.update(max(0, e.step - bar.n))
                bar.set_postfix(loss=f"{e.loss:.3f}")
            elif kind not in ("progress", "started"):
                bar.write(f"{state_name(e.state)}: {e.message}" + (f" (step {e.step})" if e.step else ""))
    finally:
        bar.close()
    return client.finetuning.get(name)


def cmd_create(client: Client, args) -> None:
    hp = {k: v for k, v in {"epochs": args.epochs, "learning_rate": args.learning_rate,
                            "batch_size": args.batch_size, "max_seq_length": args.max_seq_length,
                            "lora_rank": args.lora_rank, "lora_alpha": args.lora_alpha,
                            "checkpoint_interval_steps": args.checkpoint_interval}.items() if v}
    from llmops.evaluation.datasets import parse_ref

    uri, version = (args.dataset, args.dataset_version) if args.dataset_version else parse_ref(args.dataset)
    job = client.finetuning.create(args.base, uri, dataset_version=version or "",
                                   method=args.method, output_model=args.output_model or "",
                                   zero_stage=args.zero_stage, offload_optimizer=args.offload,
                                   merge_lora=not args.keep_adapter, idempotency_key=args.idempotency_key or "",
                                   deepspeed_extra=json.loads(args.deepspeed_extra) if args.deepspeed_extra else None,
                                   **hp)
    print(_line(job))
    if args.watch:
        print(_line(watch(client, job.name)))


def cmd_list(client: Client, args) -> None:
    for j in client.finetuning.list():
        print(_line(j))


def cmd_show(client: Client, args) -> None:
    j = client.finetuning.get(args.name)
    print(_line(j))
    for k, v in sorted(j.metrics.items()):
        print(f"  {k} = {v:g}")


def cmd_watch(client: Client, args) -> None:
    print(_line(watch(client, args.name)))


def cmd_cancel(client: Client, args) -> None:
    print(_line(client.finetuning.cancel(args.name)))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="fine-tuning jobs (DeepSpeed, full or LoRA) that register candidate versions")
    ts = p.add_subparsers(dest="action", required=True)
    c = ts.add_parser("create", help="start a job on a base model and a chat dataset")
    c.add_argument("base", help="base model NAME@ALIAS or NAME@VERSION")
    c.add_argument("dataset", help="a Delta table URI (from `llmops feedback export`) or registry:NAME (from "
                                   "`llmops datasets upload`), optionally @VERSION")
    c.add_argument("--dataset-version", help="table version (default: the latest)")
    c.add_argument("--method", choices=["lora", "full"], default="lora")
    c.add_argument("--output-model", help="registry model for the result (default: the base's)")
    c.add_argument("--epochs", type=int)
    c.add_argument("--learning-rate", type=float)
    c.add_argument("--batch-size", type=int)
    c.add_argument("--max-seq-length", type=int)
    c.add_argument("--lora-rank", type=int)
    c.add_argument("--lora-alpha", type=int)
    c.add_argument("--checkpoint-interval", type=int, help="steps between checkpoints")
    c.add_argument("--keep-adapter", action="store_true", help="register the LoRA adapter, not merged weights")
    c.add_argument("--zero-stage", type=int, default=0, choices=[0, 1, 2, 3])
    c.add_argument("--offload", action="store_true", help="offload optimizer state to CPU (ZeRO 1+)")
    c.add_argument("--deepspeed-extra", metavar="JSON", help='more DeepSpeed configuration, e.g. \'{"gradient_clipping": 0.5}\'')
    c.add_argument("--idempotency-key")
    c.add_argument("--watch", action="store_true", help="follow it with a progress bar")
    c.set_defaults(run=cmd_create)
    c = ts.add_parser("list", help="jobs, newest first")
    c.set_defaults(run=cmd_list)
    c = ts.add_parser("show", help="one job and its metrics")
    c.add_argument("name")
    c.set_defaults(run=cmd_show)
    c = ts.add_parser("watch", help="follow a job with a progress bar")
    c.add_argument("name")
    c.set_defaults(run=cmd_watch)
    c = ts.add_parser("cancel", help="stop a queued or running job (no version is registered)")
    c.add_argument("name")
    c.set_defaults(run=cmd_cancel)
