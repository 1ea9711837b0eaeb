"""Registry, retrieval and prompt in threads, wired to each other: the stack the prompt tests and
the assembly benchmark run against."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from llmops.client import Client
from llmops.client.retrieval import folder_documents
from llmops.core.server import ServerConfig
from llmops.testing.services import ROOT, ServerThread
from services.prompt.config import PromptConfig
from services.prompt.server import build as build_prompt
from services.registry.config import RegistryConfig
from services.registry.server import build as build_registry
from services.retrieval.config import RetrievalConfig
from services.retrieval.server import build as build_retrieval

DOCS = ROOT / "docs"


def train_tokenizer(folder: Path) -> Path:
    """A small byte-level BPE tokenizer trained on the docs: the 'target model's tokenizer'."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train([str(p) for p in sorted(DOCS.glob("*.md"))], trainers.BpeTrainer(vocab_size=800, show_progress=False))
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return folder


class PromptStack:
    """Registry, retrieval and prompt in threads, wired to each other, with docs/ indexed and a
    tokenizer registered as model `target@production`."""

    def __init__(self, keys, key_store, tmp_path, provider):
        self.registry = ServerThread(functools.partial(build_registry, config=RegistryConfig(
            database_url=f"sqlite:///{tmp_path / 'reg.db'}", artifact_root=str(tmp_path / 'art'))), key_store).start()
        self.retrieval = ServerThread(functools.partial(build_retrieval, config=RetrievalConfig(
            database_url=f"sqlite:///{tmp_path / 'ret.db'}", milvus_data_dir=str(tmp_path / 'milvus'))),
            key_store).start()
        self.prompt = ServerThread(functools.partial(build_prompt, tracer_provider=provider, config=PromptConfig(
            database_url=f"sqlite:///{tmp_path / 'prompt.db'}", retrieval_address=self.retrieval.address,
            registry_address=self.registry.address)), key_store, ServerConfig(port=0)).start()
        addresses = {"registry": self.registry.address, "retrieval": self.retrieval.address,
                     "prompt": self.prompt.address}
        self.clients = {role: Client(addresses, key) for role, key in keys.items()}
        admin = self.clients["admin"]
        admin.retrieval.create_index("docs", chunk_size=96, chunk_overlap=0)
        admin.retrieval.ingest("docs", folder_documents(DOCS))
        self.tokenizer_dir = train_tokenizer(tmp_path / "tokenizer")
        admin.registry.create_model("target")
        admin.registry.upload_folder("target", self.tokenizer_dir)
        admin.registry.approve("target@1")
        admin.registry.set_alias("target", "production", 1)

    def count(self, text: str) -> int:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.tokenizer_dir / "tokenizer.json"))
        return len(tok.encode(text, add_special_tokens=False).ids)

    def close(self) -> None:
        for c in self.clients.values():
            c.close()
        for t in (self.prompt, self.retrieval, self.registry):
            if t.server is not None:
                t.stop()
