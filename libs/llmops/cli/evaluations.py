"""`llmops eval create | list | show | rows | watch | cancel`: evaluation runs (durable, in the
fine-tuning service), with a progress bar, the metrics and the comparison with the baseline side
by side."""

from __future__ import annotations

import argparse

from tqdm import tqdm

from llmops.api.finetuning.v1 import evaluation_pb2 as pb
from llmops.cli.tune import state_name
from llmops.client import Client
from llmops.evaluation.compare import columns
from llmops.evaluation.datasets import parse_ref
from llmops.evaluation.scoring import verdict

SHOWN = ("exact_match", "answer_match", "token_f1", "contains_reference", "hit_rate", "recall", "mrr",
         "citation_support", "judge_score", "error_rate", "latency_p50_ms", "latency_p95_ms", "mean_output_tokens")


def line(e: pb.Evaluation) -> str:
    baseline = f" vs {e.baseline_version}" if e.baseline_version else ""
    recorded = "  recorded" if e.recorded else ""
    error = f"  ({e.error})" if e.error else ""
    return (f"{e.name}  {state_name(e.state):<10} {e.target_version}{baseline} on {e.dataset_uri}@{e.dataset_version}  "
            f"rows {e.rows_done}/{e.total_rows}{recorded}{error}")


def report(e: pb.Evaluation) -> str:
    """The metrics side by side and, under them, how sure each difference is."""
    comparisons = {c.metric: c for c in e.comparisons}
    head = ("metric", "target", "baseline" if e.baseline_version else "", "difference" if comparisons else "")
    rows = []
    for m in SHOWN:
        if m not in e.metrics:
            continue
        c = comparisons.get(m)
        base = e.baseline_metrics.get(m)
        rows.append((m, f"{e.metrics[m]:.3g}", f"{base:.3g}" if base is not None else "",
                     f"{c.difference:+.3g}" if c is not None else ""))
    out = columns(head, rows, rule=False)
    for c in e.comparisons:
        p = f"; McNemar p = {c.p_value:.3g}" if c.HasField("p_value") else ""
        out.append(f"{c.metric}: {c.difference:+.3g}, 95% CI {c.ci_low:+.3g} to {c.ci_high:+.3g} "
                   f"({verdict(c.metric, c.ci_low, c.ci_high)}; "
                   f"{c.rows} rows){p}")
    return "\n".join(out)


def watch(client: Client, name: str) -> pb.Evaluation:
    e = client.evaluation.get(name)
    bar = tqdm(total=e.total_rows, initial=e.rows_done, unit="row", desc=name.split("/")[-1])
    try:
        for event in client.evaluation.watch(name):
            if event.message.startswith("progress:"):
                bar.update(max(0, event.step - bar.n))
                if "failed" in event.message:
                    bar.write(event.message.removeprefix("progress: "))
            elif event.message not in ("queued", "started"):
                bar.write(f"{state_name(event.state)}: {event.message}")
    finally:
        bar.close()
    return client.evaluation.get(name)


def cmd_create(client: Client, args) -> None:
    uri, version = parse_ref(args.dataset)
    e = client.evaluation.create(args.target, uri, dataset_version=version, baseline=args.baseline or "",
                                 concurrency=args.concurrency, limit=args.limit, max_tokens=args.max_tokens,
                                 judge_route=args.judge or "", rubric=args.rubric or "",
                                 idempotency_key=args.idempotency_key or "")
    print(line(e))
    if args.watch:
        e = watch(client, e.name)
        print(line(e))
        if e.metrics:
            print(report(e))


def cmd_list(client: Client, args) -> None:
    for e in client.evaluation.list(target_version=args.target_version or ""):
        print(line(e))


def cmd_show(client: Client, args) -> None:
    e = client.evaluation.get(args.name)
    print(line(e))
    if e.metrics:
        print(report(e))


def cmd_rows(client: Client, args) -> None:
    for r in client.evaluation.rows(args.name):
        scores = " ".join(f"{k}={v:.2g}" for k, v in sorted(r.scores.items()))
        judged = f" judge={r.judge_score:g}" if r.HasField("judge_score") else ""
        print(f"#{r.index + 1} {r.side:<8} {scores}{judged} {r.latency_ms:.0f} ms")
        print(f"   Q: {r.question}\n   A: {r.error or r.answer}\n   reference: {r.reference}")


def cmd_watch(client: Client, args) -> None:
    e = watch(client, args.name)
    print(line(e))
    if e.metrics:
        print(report(e))


def cmd_cancel(client: Client, args) -> None:
    print(line(client.evaluation.cancel(args.name)))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluation runs: a dataset through a model, route or bundle vs its champion; "
                                    "results recorded for approval gates")
    es = p.add_subparsers(dest="action", required=True)
    c = es.add_parser("create", help="start an evaluation")
    c.add_argument("target", help="NAME@VERSION or NAME@ALIAS (a model or a pipeline bundle), or route:NAME")
    c.add_argument("--dataset", required=True, help="registry:NAME or a Delta table URI, optionally @VERSION")
    c.add_argument("--baseline", help="what to compare with on the same rows (default: the target model's "
                                      "production version)")
    c.add_argument("--concurrency", type=int, default=0, help="rows answered at once (1-16, default 4)")
    c.add_argument("--limit", type=int, default=0, help="the first N rows only")
    c.add_argument("--max-tokens", type=int, default=0, help="per answer (default 64)")
    c.add_argument("--judge", metavar="ROUTE", help="an LLM judge: the route that scores answers 1-5")
    c.add_argument("--rubric", metavar="TEMPLATE@ALIAS", help="the judge's rubric, a prompt template")
    c.add_argument("--idempotency-key")
    c.add_argument("--watch", action="store_true", help="follow it with a progress bar and print the report")
    c.set_defaults(run=cmd_create)
    c = es.add_parser("list", help="evaluations, newest first")
    c.add_argument("--target-version", help="only those of models/NAME/versions/N")
    c.set_defaults(run=cmd_list)
    c = es.add_parser("show", help="one evaluation: metrics and the comparison with its baseline")
    c.add_argument("name")
    c.set_defaults(run=cmd_show)
    c = es.add_parser("rows", help="every answered row with its scores (payload: reviewer and up)")
    c.add_argument("name")
    c.set_defaults(run=cmd_rows)
    c = es.add_parser("watch", help="follow an evaluation with a progress bar")
    c.add_argument("name")
    c.set_defaults(run=cmd_watch)
    c = es.add_parser("cancel", help="stop an evaluation (nothing is recorded)")
    c.add_argument("name")
    c.set_defaults(run=cmd_cancel)
