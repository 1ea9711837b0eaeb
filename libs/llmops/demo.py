"""`make run`: start the stack, index the sample documents, build the demo model, and answer a
question from the documents, traced end to end.

Starts every implemented service; indexes the project's own docs folder (a progress bar);
trains the demo model (a byte-level BPE tokenizer and a small Llama on the same docs) unless
`demo-llm@production` already exists, and walks it through the registry (upload, approve, alias
`production`); creates the generation route `demo` to it, a prompt template that retrieves from
the index, and the pipeline bundle `docs-qa` (template version, index, route, sampling) aliased
`production`; asks the question through the pipeline service, which assembles the prompt under
the model's context window and streams the answer from the model server; and prints the answer,
its sources, the versions that produced it and the trace waterfall.
"""

from __future__ import annotations

import sys
from pathlib import Path

from opentelemetry import trace
from tqdm import tqdm

from llmops.cli import stack, tracecmd
from llmops.cli.pipelines import print_answer_details
from llmops.client import CallError, Client
from llmops.client.generation import registry_target
from llmops.client.prompt import variable
from llmops.client.retrieval import folder_documents
from llmops.core import telemetry
from llmops.registry.v1 import registry_pb2 as rpb

ROOT = Path(__file__).resolve().parents[2]
INDEX = "docs"
MODEL = "demo-llm"
ROUTE = "demo"
TEMPLATE = "support-qa"
PIPELINE = "docs-qa"
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


def register_template(client: Client) -> int:
    p = client.prompt
    exists_ok(p.create_template, TEMPLATE, "answers questions about llmops from its docs")
    v = p.create_version(TEMPLATE, [("system", SYSTEM), ("user", "{{ question }}")], variables=[variable("question")],
                         index=INDEX, top_k=8, request_id="demo-support-qa-v1")
    p.approve(f"{TEMPLATE}@{v.version}", "the demo's reviewed template")
    p.set_alias(TEMPLATE, "production", v.version)
    print(f"== prompt template {v.name} approved and aliased production")
    return v.version


def register_pipeline(client: Client, prompt_version: int) -> None:
    """The bundle pins the prompt version, so promoting the bundle promotes prompt, index, route
    and sampling together."""
    reg = client.registry
    exists_ok(reg.create_model, PIPELINE, kind="pipeline", description="answers questions about llmops")
    v = reg.create_pipeline_version(PIPELINE, prompt_template=f"{TEMPLATE}@{prompt_version}", index=INDEX, route=ROUTE,
                                    parameters={"max_tokens": RESERVE - 16, "temperature": 0.7, "top_p": 0.9,
                                                "seed": 1}, request_id=f"demo-{PIPELINE}-v{prompt_version}")
    if v.status != rpb.VERSION_STATUS_APPROVED:
        reg.approve(v.name, "the demo bundle")
    reg.set_alias(PIPELINE, "production", v.version)
    print(f"== pipeline bundle {v.name} (prompt {TEMPLATE}@{prompt_version}, index {INDEX}, route {ROUTE}) "
          "aliased production")


def main() -> int:
    print("== starting services")
    config = stack.up()
    provider = telemetry.create_tracer_provider("llmops-demo")
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("llmops.demo")
    with Client.local() as client:
        index_docs(client)
        ensure_model(client)
        exists_ok(client.generation.create_route, ROUTE, [registry_target(f"{MODEL}@production")])
        register_pipeline(client, register_template(client))
        print(f"\n== question: {QUESTION}\n== answer ({PIPELINE}@production, streamed):")
        first = last = None
        with tracer.start_as_current_span("demo: ask the docs a question"):
            for last in client.pipeline.stream(f"{PIPELINE}@production", QUESTION):
                first = first or last
                sys.stdout.write(last.delta)
                sys.stdout.flush()
    print()
    print_answer_details(first, last)
    print(f"\n== trace {last.trace_id}\n")
    print(tracecmd.render_complete(last.trace_id, before=provider.force_flush))
    http = config.services.get("pipeline_http", "")
    print(f"\nOpenAI-compatible API: http://{http}/v1 (model {PIPELINE}@production, your API key as bearer token)")
    print(f"review answers: http://{config.services.get('feedback_http', '')}/?pipeline={PIPELINE} "
          "(a key from `llmops keys create me --role reviewer`)")
    print("services are still running: `llmops ask \"...\"`, `llmops status`, `llmops down` (or `make down`) to stop them")
    provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
