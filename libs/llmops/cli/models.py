"""`llmops models ...`: the registry from the command line."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from llmops.api.registry.v1 import registry_pb2 as pb
from llmops.cli import aliases, judging
from llmops.client import Client


def _when(ts) -> str:
    return datetime.fromtimestamp(ts.seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _status(v: pb.ModelVersion) -> str:
    return pb.VersionStatus.Name(v.status).removeprefix("VERSION_STATUS_").lower()


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _print_version(v: pb.ModelVersion) -> None:
    print(f"{v.name}  {_status(v)}  created {_when(v.create_time)} by {v.created_by}")
    if v.aliases:
        print(f"  aliases: {', '.join(v.aliases)}")
    if v.HasField("artifact"):
        print(f"  artifact: {v.artifact.format} {_size(v.artifact.size_bytes)} digest {v.artifact.digest}")
        for f in v.artifact.files:
            print(f"    {f.path:<40} {_size(f.size_bytes):>10}  {f.sha256[:16]}")
    if v.HasField("pipeline_spec"):
        s = v.pipeline_spec
        print(f"  pipeline: prompt {s.prompt_template}, index {s.index}, route {s.route}")
    lin = v.lineage
    if lin.HasField("source"):
        s = lin.source
        print(f"  imported from: {s.uri} ({s.format} {s.quantization or 'unquantized'}, {_size(s.size_bytes)}, "
              f"sha256 {s.sha256})")
    if lin.base_version or lin.dataset_uri or lin.tuning_job_id:
        print(f"  lineage: base {lin.base_version or '-'}, dataset {lin.dataset_uri or '-'}@{lin.dataset_version or '-'}, "
              f"job {lin.tuning_job_id or '-'}")
    if v.metrics:
        print("  metrics: " + ", ".join(f"{k}={val:g}" for k, val in sorted(v.metrics.items())))
    if v.HasField("review"):
        print(f"  reviewed by {v.review.reviewer} at {_when(v.review.review_time)}: {v.review.comment}")


def cmd_list(client: Client, args) -> None:
    models = client.registry.list_models(kind=args.kind)
    if not models:
        print("no models registered")
    for m in models:
        kind = pb.ModelKind.Name(m.kind).removeprefix("MODEL_KIND_").lower()
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items()))
        print(f"{m.name.removeprefix('models/'):<32} {kind:<9} latest {m.latest_version:<4} {aliases}")


def cmd_create(client: Client, args) -> None:
    labels = dict(kv.split("=", 1) for kv in args.label or [])
    m = client.registry.create_model(args.model, kind=args.kind, description=args.description, labels=labels)
    print(f"created {m.name}")


def cmd_versions(client: Client, args) -> None:
    for v in client.registry.list_versions(args.model):
        aliases = f" [{', '.join(v.aliases)}]" if v.aliases else ""
        print(f"{v.version:>4}  {_status(v):<17} {_size(v.artifact.size_bytes):>10}  {_when(v.create_time)}  {v.created_by}{aliases}")


def cmd_show(client: Client, args) -> None:
    _print_version(client.registry.get_version(args.ref))


def cmd_upload(client: Client, args) -> None:
    folder = Path(args.folder)
    registry = client.registry
    lineage = pb.Lineage(base_version=args.base_version or "", dataset_uri=args.dataset_uri or "",
                         dataset_version=args.dataset_version or "", tuning_job_id=args.tuning_job_id or "")
    metrics = {k: float(v) for k, v in (kv.split("=", 1) for kv in args.metric or [])}
    with tqdm(total=registry.folder_size(folder), unit="B", unit_scale=True, desc=f"upload {folder.name}") as bar:
        v = registry.upload_folder(args.model, folder, lineage=lineage, metrics=metrics,
                                   description=args.description, progress=bar.update)
    _print_version(v)


def cmd_download(client: Client, args) -> None:
    registry = client.registry
    v = registry.get_version(args.ref)
    with tqdm(total=v.artifact.size_bytes, unit="B", unit_scale=True, desc=f"download {v.name}") as bar:
        registry.download_version(v.name, args.dest, progress=bar.update)
    print(f"{v.name} -> {args.dest} ({len(v.artifact.files)} files, sha256 checked)")


def cmd_approve(client: Client, args) -> None:
    v = client.registry.approve(args.ref, args.comment, override_gate=args.override_gate)
    print(f"{v.name} approved by {v.review.reviewer}" + (" (gate overridden)" if args.override_gate else ""))


def cmd_gate(client: Client, args) -> None:
    """Show, set or remove a model's approval gate."""
    if args.remove:
        client.registry.set_gate(args.model, None)
        print(f"{args.model}: approval gate removed")
        return
    if args.dataset or args.metric:
        if not (args.dataset and args.metric):
            raise SystemExit("a gate needs both --dataset and --metric")
        gate = pb.ApprovalGate(dataset_uri=args.dataset, metric=args.metric, max_regression=args.max_regression,
                               require_confidence=args.require_confidence, champion_alias=args.champion_alias)
        if args.min_value is not None:
            gate.min_value = args.min_value
        client.registry.set_gate(args.model, gate)
    m = client.registry.get_model(args.model)
    if not m.HasField("gate"):
        print(f"{m.name}: no approval gate (a person's approval suffices)")
        return
    g = m.gate
    floor = f", floor {g.min_value:g}" if g.HasField("min_value") else ""
    print(f"{m.name}: {g.metric} on {g.dataset_uri}, at most {g.max_regression:g} below {g.champion_alias}"
          f"{' (the whole 95% interval)' if g.require_confidence else ''}{floor}")


def cmd_evidence(client: Client, args) -> None:
    """The evaluations recorded against a version (what its gate reads)."""
    for r in client.registry.evaluation_records(args.ref):
        print(f"{r.evaluation}  {r.dataset_uri}@{r.dataset_version}  {r.rows} rows  by {r.recorded_by}")
        for metric, value in sorted(r.metrics.items()):
            c = r.comparisons.get(metric)
            vs = (f"  vs {c.champion_version} {c.champion_value:.3g}: {c.difference:+.3g} "
                  f"(95% CI {c.ci_low:+.3g} to {c.ci_high:+.3g})") if metric in r.comparisons else ""
            print(f"  {metric:<20} {value:.3g}{vs}")


def cmd_reject(client: Client, args) -> None:
    v = client.registry.reject(args.ref, args.comment)
    print(f"{v.name} rejected by {v.review.reviewer}")


def cmd_events(client: Client, args) -> None:
    for e in client.registry.list_events(args.model or ""):
        kind = pb.EventType.Name(e.type).removeprefix("EVENT_TYPE_").lower()
        what = f" v{e.version}" if e.version else ""
        what += f" alias {e.alias}" if e.alias else ""
        print(f"{e.sequence:>6}  {_when(e.event_time)}  {e.actor:<12} {kind:<18} {e.model}{what}")


def register_folder(client: Client, model: str, folder: Path, *, description: str = "",
                    metrics: dict[str, float] | None = None, promote: bool = False) -> pb.ModelVersion:
    """Upload a checked causal-LM folder as a new version of `model` (created if new); with
    `promote`, approve it and point `production` at it (needs the approver role)."""
    registry = client.registry
    with tqdm(total=registry.folder_size(folder), unit="B", unit_scale=True, desc=f"upload {folder.name}") as bar:
        v = registry.upload_model(model, folder, description=description, metrics=metrics, progress=bar.update)
    if promote:
        registry.approve(f"{model}@{v.version}", "demo model built from the repository's docs")
        registry.set_alias(model, "production", v.version)
        v = registry.get_version(v.name)
    return v


def cmd_build_demo(client: Client, args) -> None:
    import tempfile

    from llmops.modeling import demo

    spec = demo.DemoSpec(steps=args.steps)
    root = Path(args.corpus) if args.corpus else Path(__file__).resolve().parents[3] / "docs"
    with tempfile.TemporaryDirectory() as tmp, tqdm(total=spec.steps, desc="train demo model", unit="step") as bar:
        result = demo.build(root, Path(tmp) / args.model, spec,
                            progress=lambda step, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.2f}")))
        bar.close()
        print(f"{result.parameters / 1e6:.1f} M parameters, loss {result.first_loss:.2f} -> {result.final_loss:.2f} "
              f"in {result.train_seconds:.0f} s")
        v = register_folder(client, args.model, result.folder, description="demo model trained on the project's docs",
                            metrics={"train_loss": result.final_loss, "train_seconds": result.train_seconds,
                                     "parameters": float(result.parameters)}, promote=args.promote)
    _print_version(v)


def cmd_import(client: Client, args) -> None:
    _print_version(register_folder(client, args.model, Path(args.folder), description=args.description,
                                   promote=False))


def import_gguf_with_progress(client: Client, model: str, file: str | Path, **kwargs) -> pb.ModelVersion:
    """`RegistryClient.import_gguf` with bars for hashing and uploading (transformers shows its own
    while it dequantizes)."""
    bars: dict[str, tqdm] = {}
    labels = {"sha256": f"sha256 {Path(file).name}", "upload": f"upload {model}"}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars[stage] = tqdm(total=total, unit="B", unit_scale=True, desc=labels.get(stage, stage))
        bars[stage].update(done - bars[stage].n)

    try:
        return client.registry.import_gguf(model, file, progress=progress, **kwargs)
    finally:
        for bar in bars.values():
            bar.close()


def cmd_import_gguf(client: Client, args) -> None:
    _print_version(import_gguf_with_progress(client, args.model, args.file, description=args.description,
                                             source_uri=args.source_uri, dtype=args.dtype))


def cmd_compare(client: Client, args) -> None:
    """Candidate vs champion on a dataset's evaluation questions, through generation routes."""

    from llmops.evaluation import compare, datasets

    judge = judging.judge_of(client, args)
    ds = datasets.load_for_client(args.dataset, client.registry)
    items = ds.evaluation[:args.limit] if args.limit else ds.evaluation
    phrases = [ds.expectation(i).key_phrases for i in range(len(items))]
    routes = {side: compare.route_for(client.generation, side) for side in (args.candidate, args.champion)}
    results = []
    with tqdm(total=2 * len(items), desc="compare", unit="question") as bar:
        for side in (args.candidate, args.champion):
            results.append(compare.evaluate(client.generation, side, routes[side], items, max_tokens=args.max_tokens,
                                            progress=lambda: bar.update(1), key_phrases=phrases, judge=judge))
    print(f"dataset {ds.uri}@{ds.version}")
    print(compare.table(*results))
    if args.details:
        for (prompt, reference), a, b in zip(items, results[0].answers, results[1].answers, strict=True):
            print(f"\nQ: {prompt[-1]['content']}\n  reference: {reference}\n  candidate: {a}\n  champion:  {b}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="the model registry")
    s = p.add_subparsers(dest="action", required=True)
    a = s.add_parser("list", help="registered models")
    a.add_argument("--kind", choices=["model", "pipeline"])
    a.set_defaults(run=cmd_list)
    a = s.add_parser("create", help="register a model or pipeline")
    a.add_argument("model")
    a.add_argument("--kind", choices=["model", "pipeline"], default="model")
    a.add_argument("--description", default="")
    a.add_argument("--label", action="append", metavar="KEY=VALUE")
    a.set_defaults(run=cmd_create)
    a = s.add_parser("versions", help="a model's versions")
    a.add_argument("model")
    a.set_defaults(run=cmd_versions)
    a = s.add_parser("show", help="one version (name@version or name@alias)")
    a.add_argument("ref")
    a.set_defaults(run=cmd_show)
    a = s.add_parser("upload", help="upload a folder as a new version")
    a.add_argument("model")
    a.add_argument("folder")
    a.add_argument("--description", default="")
    a.add_argument("--base-version")
    a.add_argument("--dataset-uri")
    a.add_argument("--dataset-version")
    a.add_argument("--tuning-job-id")
    a.add_argument("--metric", action="append", metavar="NAME=VALUE")
    a.set_defaults(run=cmd_upload)
    a = s.add_parser("download", help="download a version's folder")
    a.add_argument("ref")
    a.add_argument("dest")
    a.set_defaults(run=cmd_download)
    a = s.add_parser("approve", help="approve a version for protected aliases (it must pass the model's gate)")
    a.add_argument("ref")
    a.add_argument("--comment", default="")
    a.add_argument("--override-gate", action="store_true",
                   help="approve although no evaluation passes the gate (admin; --comment says why, audited)")
    a.set_defaults(run=cmd_approve)
    a = s.add_parser("gate", help="show, set (approver) or remove a model's approval gate")
    a.add_argument("model")
    a.add_argument("--dataset", help="the dataset the evaluation must run (registry:NAME or a table URI)")
    a.add_argument("--metric", help="exact_match, answer_match, token_f1, contains_reference, judge_score, hit_rate, "
                                    "recall, mrr, citation_support or error_rate")
    a.add_argument("--max-regression", type=float, default=0.0,
                   help="how far below the champion the candidate may be (0.02: 2 points of a rate)")
    a.add_argument("--min-value", type=float, help="an absolute floor (a ceiling for error_rate)")
    a.add_argument("--require-confidence", action="store_true",
                   help="the 95%% interval, not just the mean, must clear the allowed regression")
    a.add_argument("--champion-alias", default="production")
    a.add_argument("--remove", action="store_true")
    a.set_defaults(run=cmd_gate)
    a = s.add_parser("evidence", help="the evaluations recorded against a version")
    a.add_argument("ref")
    a.set_defaults(run=cmd_evidence)
    a = s.add_parser("reject", help="reject a version")
    a.add_argument("ref")
    a.add_argument("--comment", default="")
    a.set_defaults(run=cmd_reject)
    aliases.add_command(s, "registry", "model")
    a = s.add_parser("build-demo", help="train the demo tokenizer and model on docs/ and register them")
    a.add_argument("--model", default="demo-llm")
    a.add_argument("--steps", type=int, default=300)
    a.add_argument("--corpus", help="folder of markdown to train on (default: the project's docs/)")
    a.add_argument("--promote", action="store_true", help="approve it and move `production` to it")
    a.set_defaults(run=cmd_build_demo)
    a = s.add_parser("import", help="register a Hugging Face causal-LM folder (safetensors) as a new version")
    a.add_argument("model")
    a.add_argument("folder")
    a.add_argument("--description", default="")
    a.set_defaults(run=cmd_import)
    a = s.add_parser("import-gguf", help="convert a GGUF file (llama.cpp, Ollama) and register it as a new version")
    a.add_argument("model")
    a.add_argument("file", help="the .gguf file")
    a.add_argument("--description", default="")
    a.add_argument("--source-uri", default="", help="where the file came from, recorded as lineage "
                                                     "(default: its package or its name)")
    a.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32",
                   help="weights of the converted folder (float32 keeps the dequantized values exactly)")
    a.set_defaults(run=cmd_import_gguf)
    a = s.add_parser("compare", help="candidate vs champion on a dataset's evaluation questions (exact match, "
                                     "answer length, latency)")
    a.add_argument("candidate", help="NAME@VERSION, NAME@ALIAS or a generation route")
    a.add_argument("champion", help="NAME@VERSION, NAME@ALIAS or a generation route")
    a.add_argument("--dataset", required=True, metavar="URI@VERSION",
                   help="a Delta table (chat or evaluation format) or registry:NAME, at a version; or a local "
                        ".jsonl file")
    a.add_argument("--max-tokens", type=int, default=64)
    a.add_argument("--limit", type=int, default=0, help="at most this many questions")
    judging.add_arguments(a, "both sides' answers")
    a.add_argument("--details", action="store_true", help="print every question with both answers")
    a.set_defaults(run=cmd_compare)
    a = s.add_parser("events", help="the audit trail")
    a.add_argument("--model")
    a.set_defaults(run=cmd_events)
