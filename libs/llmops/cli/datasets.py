"""`llmops datasets upload | show`: JSONL datasets kept as registry versions (`registry:NAME`),
for tuning jobs and `llmops models compare`."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from llmops.client import Client
from llmops.evaluation import datasets


def cmd_upload(client: Client, args) -> None:
    v = datasets.upload(client.registry, args.name, Path(args.file), args.description)
    print(f"{datasets.REGISTRY_SCHEME}{args.name}@{v.version}  ({v.artifact.size_bytes} bytes, sha256 "
          f"{v.artifact.digest[:12]})")


def cmd_show(client: Client, args) -> None:
    uri, version = datasets.parse_ref(args.dataset)
    with tempfile.TemporaryDirectory() as tmp:
        ds = datasets.load(uri, version, datasets.registry_fetch(client.registry), Path(tmp))
    print(f"{ds.uri}@{ds.version}: {len(ds.chat)} chat rows, {len(ds.evaluation)} evaluation questions")
    for prompt, reference in ds.evaluation[:args.head]:
        print(f"  Q: {prompt[-1]['content'][:100]}\n     A: {reference[:100]}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="JSONL datasets in the registry, and a look into any dataset")
    s = p.add_subparsers(dest="action", required=True)
    a = s.add_parser("upload", help="check a JSONL file ({\"messages\": [...]} per line) and register it")
    a.add_argument("name")
    a.add_argument("file")
    a.add_argument("--description", default="")
    a.set_defaults(run=cmd_upload)
    a = s.add_parser("show", help="rows and questions of a dataset (Delta URI@VERSION or registry:NAME@VERSION)")
    a.add_argument("dataset")
    a.add_argument("--head", type=int, default=5)
    a.set_defaults(run=cmd_show)
