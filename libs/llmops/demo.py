"""`make run`: start the stack, index the sample documents, and walk a model through the
registry workflow, traced.

Starts every implemented service; indexes the project's own docs folder in the retrieval service
(a progress bar) and searches it; registers a model built from the same folder, uploads it,
approves it, points `production` at it, resolves `name@production` and downloads it back with
digests checked; and prints the trace waterfall of the search and the resolution.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry import trace
from tqdm import tqdm

from llmops.cli import stack, tracecmd
from llmops.client import CallError, Client
from llmops.client.retrieval import folder_documents
from llmops.core import telemetry

ROOT = Path(__file__).resolve().parents[2]
MODEL = "demo-notes"
INDEX = "docs"
QUESTION = "Who may move the production alias of a model?"


def sample_folder(dest: Path) -> Path:
    """A model-shaped folder: a config and the project's documentation as text files."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.json").write_text(json.dumps({"model_type": "demo", "source": "docs"}))
    for doc in sorted((ROOT / "docs").glob("*.md")):
        shutil.copy(doc, dest / doc.name)
    return dest


def index_docs(client: Client) -> None:
    """Create the `docs` index if needed and (re-)ingest the docs folder; re-ingesting replaces."""
    try:
        client.retrieval.create_index(INDEX, chunk_size=128, chunk_overlap=16)
        print(f"== created index {INDEX!r}")
    except CallError as exc:
        if exc.code.name != "ALREADY_EXISTS":
            raise
    docs = folder_documents(ROOT / "docs")
    with tqdm(total=len(docs), unit="doc", desc="index docs/") as bar:
        last = client.retrieval.ingest(INDEX, docs, lambda p: bar.update(p.documents_done - bar.n))
    print(f"== indexed {last.documents_done} documents as {last.chunks_done} chunks (index version {last.index_version})")


def main() -> int:
    print("== starting services")
    stack.up()
    provider = telemetry.create_tracer_provider("llmops-demo")
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("llmops.demo")
    with Client.local() as client, tempfile.TemporaryDirectory() as tmp:
        index_docs(client)
        reg = client.registry
        try:
            reg.create_model(MODEL, description="the project's docs, packaged like a model")
            print(f"== registered {MODEL}")
        except CallError as exc:
            if exc.code.name != "ALREADY_EXISTS":
                raise
        folder = sample_folder(Path(tmp) / "model")
        with tqdm(total=reg.folder_size(folder), unit="B", unit_scale=True, desc="upload") as bar:
            version = reg.upload_folder(MODEL, folder, progress=bar.update, metrics={"files": len(list(folder.iterdir()))})
        print(f"== created {version.name} (digest {version.artifact.digest[:16]}…), awaiting approval")
        ref = f"{MODEL}@{version.version}"
        reg.approve(ref, "demo: contents checked")
        reg.set_alias(MODEL, "production", version.version)
        print(f"== approved and aliased: {MODEL}@production -> version {version.version}")
        with tracer.start_as_current_span("demo: search the docs, resolve and download production") as span:
            hits = client.retrieval.search(INDEX, QUESTION, top_k=3)
            print(f"\n== search {INDEX!r} (index version {hits.index_version}): {QUESTION}")
            for rank, h in enumerate(hits.hits, 1):
                print(f"   {rank}. {h.score:.3f} {h.chunk_id}: {' '.join(h.text.split())[:100]}")
            resolved = reg.get_version(f"{MODEL}@production")
            reg.download_version(resolved.name, Path(tmp) / "download")
            trace_id = format(span.get_span_context().trace_id, "032x")
        print(f"== downloaded {resolved.name}: {len(resolved.artifact.files)} files, sha256 checked")
    provider.force_flush()
    time.sleep(1.0)  # services export their spans in batches every 0.5 s
    print(f"\n== trace {trace_id}\n")
    print(tracecmd.render(trace_id))
    print("\nservices are still running: `llmops status`, `llmops down` (or `make down`) to stop them")
    provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
