"""`make run`: start the stack, index the sample documents, and assemble a prompt for a question
with retrieved context under a token budget, traced.

Starts every implemented service; indexes the project's own docs folder (a progress bar);
trains a small byte-level BPE tokenizer on the same docs and walks it through the registry as
the target model's tokenizer (upload, approve, alias `production`); registers a prompt template
that retrieves from the index; assembles a prompt for a question, counting tokens with that
tokenizer; and prints the prompt, its sources and the trace waterfall.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry import trace
from tqdm import tqdm

from llmops.cli import stack, tracecmd
from llmops.client import CallError, Client
from llmops.client.prompt import variable
from llmops.client.retrieval import folder_documents
from llmops.core import telemetry

ROOT = Path(__file__).resolve().parents[2]
INDEX = "docs"
TOKENIZER_MODEL = "demo-tokenizer"
TEMPLATE = "support-qa"
QUESTION = "Who may move the production alias of a model?"
SYSTEM = ("You answer questions about llmops from the context below. Cite sources as [n].\n\n"
          "Context:\n{{ context }}")


def exists_ok(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except CallError as exc:
        if exc.code.name != "ALREADY_EXISTS":
            raise
        return None


def index_docs(client: Client) -> None:
    """Create the `docs` index if needed and (re-)ingest the docs folder; re-ingesting replaces."""
    exists_ok(client.retrieval.create_index, INDEX, chunk_size=128, chunk_overlap=16)
    docs = folder_documents(ROOT / "docs")
    with tqdm(total=len(docs), unit="doc", desc="index docs/") as bar:
        last = client.retrieval.ingest(INDEX, docs, lambda p: bar.update(p.documents_done - bar.n))
    print(f"== indexed {last.documents_done} documents as {last.chunks_done} chunks (index version {last.index_version})")


def train_tokenizer(folder: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train([str(p) for p in sorted((ROOT / "docs").glob("*.md"))],
              trainers.BpeTrainer(vocab_size=2048, show_progress=False))
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "config.json").write_text(json.dumps({"model_type": "demo", "vocab_size": tok.get_vocab_size()}))
    return folder


def register_tokenizer(client: Client, tmp: Path) -> None:
    reg = client.registry
    exists_ok(reg.create_model, TOKENIZER_MODEL, description="the demo's target tokenizer (byte-level BPE on docs/)")
    folder = train_tokenizer(tmp / "tokenizer")
    with tqdm(total=reg.folder_size(folder), unit="B", unit_scale=True, desc="upload tokenizer") as bar:
        version = reg.upload_folder(TOKENIZER_MODEL, folder, progress=bar.update)
    reg.approve(f"{TOKENIZER_MODEL}@{version.version}", "demo: trained on the project's docs")
    reg.set_alias(TOKENIZER_MODEL, "production", version.version)
    print(f"== {version.name} approved; {TOKENIZER_MODEL}@production -> version {version.version}")


def register_template(client: Client) -> None:
    p = client.prompt
    exists_ok(p.create_template, TEMPLATE, "answers questions about llmops from its docs")
    v = p.create_version(TEMPLATE, [("system", SYSTEM), ("user", "{{ question }}")], variables=[variable("question")],
                         index=INDEX, top_k=8, request_id="demo-support-qa-v1")
    p.set_alias(TEMPLATE, "production", v.version)
    print(f"== prompt template {v.name} aliased production")


def main() -> int:
    print("== starting services")
    stack.up()
    provider = telemetry.create_tracer_provider("llmops-demo")
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("llmops.demo")
    with Client.local() as client, tempfile.TemporaryDirectory() as tmp:
        index_docs(client)
        register_tokenizer(client, Path(tmp))
        register_template(client)
        with tracer.start_as_current_span("demo: assemble a prompt for a question") as span:
            out = client.prompt.assemble(f"{TEMPLATE}@production", {"question": QUESTION}, context_window_tokens=512,
                                         reserve_output_tokens=128, tokenizer_model=f"{TOKENIZER_MODEL}@production")
            trace_id = format(span.get_span_context().trace_id, "032x")
    print(f"\n== {out.template_version}: {out.prompt_tokens} tokens (budget 512 - 128 reserved for the answer)"
          + (", some chunks dropped to fit" if out.truncated else ""))
    for m in out.messages:
        print(f"--- {m.role and ['', 'system', 'user', 'assistant'][m.role]}\n{m.content}")
    print("\n== sources")
    for c in out.chunks:
        print(f"   {c.citation} {c.chunk_id} (score {c.score:.3f}, {c.tokens} tokens)")
    provider.force_flush()
    time.sleep(1.0)  # services export their spans in batches every 0.5 s
    print(f"\n== trace {trace_id}\n")
    print(tracecmd.render(trace_id))
    print("\nservices are still running: `llmops status`, `llmops down` (or `make down`) to stop them")
    provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
