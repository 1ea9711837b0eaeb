"""`make run`: start the stack, index the sample documents, build the demo model, and answer a
question from the documents, traced end to end.

Starts every implemented service; indexes the project's own docs folder (a progress bar);
trains the demo model (a byte-level BPE tokenizer and a small Llama on the same docs) unless
`demo-llm@production` already exists, and walks it through the registry (upload, approve, alias
`production`); creates the generation route `demo` to it and a prompt template that retrieves
from the index; assembles the prompt under the model's context window, counting tokens with its
tokenizer; streams the answer through the generation service and the model server; and prints
the sources and the trace waterfall.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from opentelemetry import trace
from tqdm import tqdm

from llmops.cli import stack, tracecmd
from llmops.client import CallError, Client
from llmops.client.generation import registry_target
from llmops.client.prompt import variable
from llmops.client.retrieval import folder_documents
from llmops.core import telemetry

ROOT = Path(__file__).resolve().parents[2]
INDEX = "docs"
MODEL = "demo-llm"
ROUTE = "demo"
TEMPLATE = "support-qa"
QUESTION = "Who may move the production alias of a model?"
RESERVE = 128  # tokens of the 512-token context window kept for the answer
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


def ensure_model(client: Client) -> None:
    """Build and promote the demo model unless a production version exists."""
    try:
        v = client.registry.get_version(f"{MODEL}@production")
        print(f"== {MODEL}@production is {v.name} (delete it to rebuild)")
        return
    except CallError as exc:
        if exc.code.name != "NOT_FOUND":
            raise
    from argparse import Namespace

    from llmops.cli.models import cmd_build_demo

    print("== training the demo model on docs/ (a few minutes on two cores)")
    cmd_build_demo(client, Namespace(model=MODEL, steps=300, corpus=None, promote=True))


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
    with Client.local() as client:
        index_docs(client)
        ensure_model(client)
        exists_ok(client.generation.create_route, ROUTE, [registry_target(f"{MODEL}@production")])
        register_template(client)
        with tracer.start_as_current_span("demo: answer a question from the docs") as span:
            out = client.prompt.assemble(f"{TEMPLATE}@production", {"question": QUESTION}, context_window_tokens=512,
                                         reserve_output_tokens=RESERVE, tokenizer_model=f"{MODEL}@production")
            trace_id = format(span.get_span_context().trace_id, "032x")
            print(f"\n== {out.template_version}: {out.prompt_tokens} tokens (512 - {RESERVE} reserved for the answer)"
                  + (", some chunks dropped to fit" if out.truncated else ""))
            print(f"\n== question: {QUESTION}\n== answer (route {ROUTE}, streamed):")
            roles = ["", "system", "user", "assistant"]
            messages = [(roles[m.role], m.content) for m in out.messages]
            last = None
            for last in client.generation.stream(ROUTE, messages, max_tokens=RESERVE - 16, temperature=0.7,
                                                 top_p=0.9, seed=1):
                sys.stdout.write(last.delta)
                sys.stdout.flush()
    u = last.usage
    print(f"\n\n== {u.input_tokens} tokens in, {u.output_tokens} out, first token after "
          f"{u.time_to_first_token.ToMilliseconds()} ms")
    print("== sources")
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
