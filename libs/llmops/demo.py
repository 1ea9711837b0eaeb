"""`make run`: start the stack and walk one model through the registry workflow, traced.

Starts every implemented service, registers a model built from the project's own docs folder,
uploads it with a progress bar, approves it, points `production` at it, resolves
`name@production`, downloads it back with digests checked, and prints the trace waterfall.
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
from llmops.core import telemetry

ROOT = Path(__file__).resolve().parents[2]
MODEL = "demo-notes"


def sample_folder(dest: Path) -> Path:
    """A model-shaped folder: a config and the project's documentation as text files."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.json").write_text(json.dumps({"model_type": "demo", "source": "docs"}))
    for doc in sorted((ROOT / "docs").glob("*.md")):
        shutil.copy(doc, dest / doc.name)
    return dest


def main() -> int:
    print("== starting services")
    stack.up()
    provider = telemetry.create_tracer_provider("llmops-demo")
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("llmops.demo")
    with Client.local() as client, tempfile.TemporaryDirectory() as tmp:
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
        with tracer.start_as_current_span("demo: resolve and download production") as span:
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
