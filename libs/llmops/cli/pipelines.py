"""`llmops pipelines create|list|show` (bundles in the registry) and `llmops ask` (a question
through a pipeline, streamed, with its sources, versions and trace)."""

from __future__ import annotations

import argparse
import json
import sys

from llmops.api.registry.v1 import registry_pb2 as rpb
from llmops.cli import judging, tracecmd
from llmops.client import Client
from llmops.client.pipeline import BundleParameters
from llmops.core import telemetry
from llmops.core.openai_format import sampling_to_json

DEFAULT_PIPELINE = "docs-qa@production"


def _params(pairs: list[str]) -> dict:
    """`key=value` pairs; values are JSON when they parse (numbers, lists), else strings."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"bad --param {pair!r}: use KEY=VALUE, e.g. max_tokens=256")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    BundleParameters.parse(out)  # refuse a bad bundle before it is registered
    return out


def _print_bundle(v: rpb.ModelVersion) -> None:
    s = v.pipeline_spec
    values = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in s.parameters.items()}
    params = json.dumps(values, default=list)
    status = rpb.VersionStatus.Name(v.status).removeprefix("VERSION_STATUS_").lower()
    print(f"{v.name}  {status}  aliases: {', '.join(v.aliases) or '-'}")
    print(f"  prompt {s.prompt_template}  index {s.index}  route {s.route}  parameters {params}")


def cmd_create(client: Client, args) -> None:
    reg = client.registry
    reg.ensure_model(args.name, kind="pipeline", description=args.description)
    v = reg.create_pipeline_version(args.name, prompt_template=args.prompt, index=args.index, route=args.route,
                                    parameters=_params(args.param), description=args.description)
    if args.promote:  # approve and move the alias: all parts of the bundle go live together
        reg.approve(v.name, "promoted with `llmops pipelines create --promote`")
        reg.set_alias(args.name, args.alias, v.version)
        v = reg.get_version(v.name)
    _print_bundle(v)


def cmd_list(client: Client, args) -> None:
    for m in client.registry.list_models(kind="pipeline"):
        aliases = ", ".join(f"{a}->{n}" for a, n in sorted(m.aliases.items())) or "-"
        print(f"{m.name.removeprefix('models/'):<24} versions {m.latest_version:<4} aliases {aliases}")


def cmd_show(client: Client, args) -> None:
    ref = args.ref
    versions = [client.registry.get_version(ref)] if "@" in ref else client.registry.list_versions(ref)
    for v in versions:
        _print_bundle(v)


def cmd_ask(client: Client, args) -> None:
    first = last = None
    sampling = {"temperature": args.temperature, "seed": args.seed}
    for msg in client.pipeline.stream(args.pipeline, args.question, max_tokens=args.max_tokens,
                                      instructions=args.system, sampling=sampling):
        if first is None:
            first = msg
        last = msg
        sys.stdout.write(msg.delta)
        sys.stdout.flush()
    print()
    if first is None or last is None:
        return
    print_answer_details(first, last)
    if args.trace:
        print()
        print(tracecmd.render_complete(last.trace_id, before=telemetry.flush))


def cmd_eval(client: Client, args) -> None:
    """Retrieval hit rate and answer match of a pipeline on an evaluation set."""
    from tqdm import tqdm

    from llmops.evaluation import datasets, rag

    judge = judging.judge_of(client, args)
    ds = datasets.load_for_client(args.dataset, client.registry)
    total = min(args.limit, len(ds.evaluation)) if args.limit else len(ds.evaluation)
    with tqdm(total=total, desc=f"ask {args.pipeline}", unit="question") as bar:
        report = rag.evaluate(client.pipeline, args.pipeline, ds, limit=args.limit, max_tokens=args.max_tokens,
                              concurrency=args.concurrency, judge=judge, progress=lambda: bar.update(1))
    if args.details:
        for a in report.answers:
            mark = "right" if a.right else "wrong"
            hit = {True: "hit", False: "miss", None: "-"}[a.hit]
            support = {True: "supported by its citations", False: "NOT supported by its citations",
                       None: "no citation marker"}[a.supported]
            print(f"\nQ: {a.question}\n  reference: {a.reference}\n  answer ({mark}, retrieval {hit}, {support}): "
                  f"{a.answer.strip()}\n  cited: {', '.join(dict.fromkeys(a.cited))}")
            if a.judged is not None:
                print(f"  judge ({a.judged.rubric}): {a.judged.score if a.judged.score is not None else 'no score'}"
                      f" - {a.judged.reason}")
    print(f"dataset {ds.uri}@{ds.version}")
    print(report.summary())


def print_answer_details(first, last) -> None:
    v = first.versions
    print("\nsources:")
    for c in first.citations:
        print(f"  {c.marker} {c.document_id} ({c.chunk_id}, score {c.score:.3f})")
    print(f"versions: pipeline {v.pipeline}, prompt {v.prompt}, index {v.index}, model {v.model}")
    if first.HasField("sampling"):
        used = {"max_tokens": first.sampling.max_tokens, **sampling_to_json(first.sampling)}
        print("sampling: " + ", ".join(f"{k} {v}" for k, v in used.items()))
    print(f"usage: {last.usage.input_tokens} tokens in, {last.usage.output_tokens} out ({last.finish_reason})")
    print(f"request {last.request_id}  trace {last.trace_id}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pipelines", help="pipeline bundles: prompt + index + route + parameters, promoted together")
    ps = p.add_subparsers(dest="action", required=True)
    c = ps.add_parser("create", help="register a bundle version (and the pipeline, if new)")
    c.add_argument("name")
    c.add_argument("--prompt", required=True, help="prompt template, TEMPLATE@VERSION (or @ALIAS)")
    c.add_argument("--index", required=True, help="retrieval index")
    c.add_argument("--route", required=True, help="generation route")
    c.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help=f"bundle parameter ({', '.join(BundleParameters.__dataclass_fields__)})")
    c.add_argument("--description", default="")
    c.add_argument("--promote", action="store_true", help="approve it and point --alias at it")
    c.add_argument("--alias", default="production")
    c.set_defaults(run=cmd_create)
    c = ps.add_parser("list", help="pipelines and their aliases")
    c.set_defaults(run=cmd_list)
    c = ps.add_parser("show", help="a bundle version (NAME@ALIAS) or every version of NAME")
    c.add_argument("ref")
    c.set_defaults(run=cmd_show)
    c = ps.add_parser("eval", help="retrieval hit rate and answer match on an evaluation set "
                                   "(question, reference_answer, key_phrases, sources)")
    c.add_argument("pipeline", help="NAME@ALIAS or NAME@VERSION")
    c.add_argument("--dataset", required=True, metavar="FILE.jsonl|URI@VERSION",
                   help="a local .jsonl file, registry:NAME@VERSION or a Delta table")
    c.add_argument("--limit", type=int, default=0, help="at most this many questions")
    c.add_argument("--max-tokens", type=int, default=0, help="answer length, up to the bundle's")
    c.add_argument("--concurrency", type=int, default=1, choices=range(1, 33), metavar="1-32",
                   help="questions asked at once (default 1: latencies unaffected by each other)")
    judging.add_arguments(c, "every answer")
    c.add_argument("--details", action="store_true", help="print every question, answer and citation")
    c.set_defaults(run=cmd_eval)
    p = sub.add_parser("ask", help="ask a question through a pipeline: streamed answer, sources, trace id")
    p.add_argument("question")
    p.add_argument("--pipeline", default=DEFAULT_PIPELINE, help=f"NAME@ALIAS (default {DEFAULT_PIPELINE})")
    p.add_argument("--max-tokens", type=int, default=0, help="answer length, up to the bundle's")
    p.add_argument("--system", default="", help="your instructions, added to the template's system message")
    p.add_argument("--temperature", type=float, default=None, help="within the bundle's bounds")
    p.add_argument("--seed", type=int, default=None, help="unless the bundle pins it")
    p.add_argument("--trace", action="store_true", help="print the trace waterfall after the answer")
    p.set_defaults(run=cmd_ask)
