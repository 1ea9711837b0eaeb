"""The whole RAG stack for tests, every service its own process (registry, retrieval, prompt,
model server, generation, feedback, pipeline, finetuning), started side by side on free loopback ports, sharing one
LLMOPS_HOME (keys, data, span store). Content: an index of three small documents, the demo model
(trained for a few steps) behind route `demo`, a fake OpenAI-compatible provider behind route
`ext`, a prompt template, and two pipeline bundles aliased `production`."""

from __future__ import annotations

import time

from llmops.cli.stack import SERVICE_KEYS
from llmops.client import Client
from llmops.client.generation import provider_target, registry_target
from llmops.client.prompt import variable
from llmops.client.retrieval import document
from llmops.core import auth, spanstore
from llmops.testing.fake_provider import FakeProvider
from llmops.testing.services import ServiceProcess, free_port, make_keys

CANARY = "sk-canary-pipeline-5e1d"
DOCS = {
    "approvals.md": "Only a person with the approver role may move the production alias of a model. A new "
                    "version waits for approval before it can be deployed.",
    "tracing.md": "Every request carries one trace id from the client through every service, and the trace id "
                  "comes back to the caller with the answer.",
    "limits.md": "Routes limit requests per minute and tokens per minute for each caller, and a token budget "
                 "caps what a caller may spend.",
}
SYSTEM = "Answer from the context and cite sources as [n].\n\nContext:\n{{ context }}"
SERVICES = ("registry", "retrieval", "prompt", "modelserver", "generation", "feedback", "pipeline", "finetuning")


class RagStack:
    def __init__(self, home, demo_model):
        self.home = home
        self.keys = make_keys(home / "keys.json")
        service_keys = {s: auth.add_key(home / "keys.json", f"service-{s}", role, grants=grants)
                        for s, (role, grants) in SERVICE_KEYS.items()}  # as `llmops up` gives them
        self.ports = {s: free_port() for s in SERVICES}
        self.fake = FakeProvider(CANARY).start()
        common = {"LLMOPS_HOME": str(home), "LLMOPS_TRACE_DB": str(home / "traces.db"),
                  "LLMOPS_PROVIDER_TEST_KEY": CANARY, "LLMOPS_PROVIDER_STALE_KEY": "sk-stale-revoked", "LLMOPS_GENERATION_PROVIDER_ALLOWED_HOSTS": "127.0.0.1",
                  "LLMOPS_PIPELINE_HTTP_PORT": "0", "LLMOPS_FEEDBACK_HTTP_PORT": "0",
                  "LLMOPS_PIPELINE_BUNDLE_TTL_S": "0.5", "LLMOPS_MODELSERVER_CACHE_DIR": str(home / "model-cache"),
                  "LLMOPS_FINETUNING_RELEASE_POLL_S": "0.2",
                  **{f"LLMOPS_{s.upper()}_ADDRESS": f"127.0.0.1:{p}" for s, p in self.ports.items()},
                  **{f"LLMOPS_{s.upper()}_API_KEY": k for s, k in service_keys.items()}}
        self.env = common
        self.procs = {s: ServiceProcess(s, common, home, port=self.ports[s]) for s in SERVICES}
        for p in self.procs.values():
            p.launch()
        for s, p in self.procs.items():
            p.wait(timeout=180 if s in ("modelserver", "retrieval") else 60)
        self.http_address = self.procs["pipeline"].http_address
        addresses = {s: p.address for s, p in self.procs.items()}
        self.clients = {role: Client(addresses, key) for role, key in self.keys.items()}
        self._seed(demo_model)

    def _seed(self, demo_model) -> None:
        admin = self.clients["admin"]
        admin.retrieval.create_index("kb", chunk_size=64, chunk_overlap=8)
        admin.retrieval.ingest("kb", [document(k, v) for k, v in DOCS.items()])
        admin.registry.create_model("demo")
        v = admin.registry.upload_folder("demo", demo_model)
        admin.registry.approve(v.name)
        admin.registry.set_alias("demo", "production", v.version)
        admin.generation.create_route("demo", [registry_target("demo@production")])
        admin.generation.create_route("ext", [provider_target(self.fake.base_url, "echo-1",
                                                              "env:LLMOPS_PROVIDER_TEST_KEY")])
        admin.prompt.create_template("qa")
        admin.prompt.create_version("qa", [("system", SYSTEM), ("user", "{{ question }}")],
                                    variables=[variable("question")], index="kb", top_k=3)
        admin.prompt.approve("qa@1")
        admin.prompt.set_alias("qa", "production", 1)
        self.bundle("kb-qa", "demo", {"max_tokens": 24, "seed": 1})
        self.bundle("ext-qa", "ext", {"max_tokens": 400})

    def bundle(self, name: str, route: str, parameters: dict):
        """A pipeline bundle over prompt `qa@1` and index `kb`, approved and aliased `production`."""
        admin = self.clients["admin"]
        admin.registry.create_model(name, kind="pipeline")
        b = admin.registry.create_pipeline_version(name, prompt_template="qa@1", index="kb", route=route,
                                                   parameters=parameters)
        admin.registry.approve(b.name)
        admin.registry.set_alias(name, "production", b.version)
        return b

    def rubric(self, name: str):
        """A judge's rubric: a prompt template `name` with the variables question, reference and
        answer (version 1, not approved); the PromptVersion."""
        admin = self.clients["admin"]
        admin.prompt.create_template(name)
        return admin.prompt.create_version(name, [
            ("system", "Score the answer from 1 to 5 against the reference."),
            ("user", "Question: {{ question }}\nReference: {{ reference }}\nAnswer: {{ answer }}")],
            variables=[variable("question"), variable("reference"), variable("answer")])

    def client(self, role: str = "reader") -> Client:
        return self.clients[role]

    def spans(self, trace_id: str, want_services: int, timeout: float = 10.0) -> list[spanstore.StoredSpan]:
        """The trace's spans once `want_services` processes have exported theirs and the trace has
        stopped growing (processes export in batches every 0.5 s)."""
        deadline = time.monotonic() + timeout
        count, stable_since = -1, time.monotonic()
        while True:
            spans = spanstore.read_trace(self.home / "traces.db", trace_id)
            if len(spans) != count:
                count, stable_since = len(spans), time.monotonic()
            done = len({s.service for s in spans}) >= want_services and time.monotonic() - stable_since > 1.0
            if done or time.monotonic() > deadline:
                return spans
            time.sleep(0.2)

    def restart(self, service: str) -> None:
        proc = self.procs[service]
        if proc.proc is not None and proc.proc.poll() is None:
            proc.terminate()
        proc.start(timeout=180)

    def close(self) -> None:
        for c in self.clients.values():
            c.close()
        for p in reversed(self.procs.values()):
            if p.proc is not None and p.proc.poll() is None:
                try:
                    p.terminate(timeout=20)
                except Exception:  # noqa: BLE001 - a process that will not stop is killed
                    p.kill()
        self.fake.stop()
