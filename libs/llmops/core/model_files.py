"""Small files of registry model versions, for services that need a model's tokenizer or shape
without its weights (the `tokenizers` library, no model code, no torch): files are kept per
content digest (content never changes), and model references are resolved for `resolve_ttl_s`
(an alias that moves is followed within that time, or at once through `pin`)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable

from llmops.api.registry.v1 import registry_pb2 as rpb
from llmops.core.errors import FailedPrecondition

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "config.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"


def estimate_tokens(text: str) -> int:
    """For providers, whose tokenizer we do not have: about four bytes per token."""
    return math.ceil(len(text.encode()) / 4)


class ModelFiles:
    def __init__(self, registry_stub, resolve_ttl_s: float = 5.0, *, renderer=None):
        """`renderer` (a sandbox.RenderPool) renders chat templates, which users upload: without
        one, chat prompts are counted by their messages' text alone."""
        self._stub = registry_stub
        self._renderer = renderer
        self._ttl = resolve_ttl_s
        self._files: dict[str, bytes] = {}
        self._counters: dict[str, Callable[[str], int]] = {}
        self._prompt_counters: dict[str, Callable[[list[dict], str], int]] = {}
        self._has_chat_template: dict[str, bool] = {}
        self._resolved: dict[str, tuple[float, rpb.ModelVersion]] = {}
        self._models: dict[str, tuple[float, rpb.Model]] = {}

    async def _fresh(self, cache: dict, key: str, fetch):
        """`cache[key]` when fetched less than `resolve_ttl_s` ago, else `await fetch()` (kept)."""
        hit = cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        value = await fetch()
        cache[key] = (time.monotonic(), value)
        return value

    async def resolve(self, model_ref: str) -> rpb.ModelVersion:
        return await self._fresh(self._resolved, model_ref, lambda: self._stub.GetModelVersion(
            rpb.GetModelVersionRequest(name=model_ref)))

    async def model(self, name: str) -> rpb.Model:
        """The registered model (aliases, canaries), resolved for `resolve_ttl_s` like references."""
        return await self._fresh(self._models, name, lambda: self._stub.GetModel(rpb.GetModelRequest(name=name)))

    def pin(self, model_ref: str, version: rpb.ModelVersion, ttl_s: float = float("inf")) -> None:
        """Resolve `model_ref` to `version` from now on (a follower of registry events calls this
        once the new version is ready to serve)."""
        self._resolved[model_ref] = (time.monotonic() + ttl_s - self._ttl, version)

    def forget(self, model_ref: str) -> None:
        self._resolved.pop(model_ref, None)

    async def file(self, version: rpb.ModelVersion, path: str) -> bytes:
        entry = next((f for f in version.artifact.files if f.path == path), None)
        if entry is None:
            raise FailedPrecondition(f"{version.name} has no {path}; name a model version that has one")
        if entry.sha256 not in self._files:
            data = bytearray()
            async for msg in self._stub.DownloadArtifact(rpb.DownloadArtifactRequest(model_version=version.name,
                                                                                       path=path)):
                if msg.WhichOneof("part") == "chunk":
                    data += msg.chunk
            self._files[entry.sha256] = bytes(data)
        return self._files[entry.sha256]

    async def count_function(self, version: rpb.ModelVersion) -> Callable[[str], int]:
        entry = next((f for f in version.artifact.files if f.path == TOKENIZER_FILE), None)
        if entry is None or entry.sha256 not in self._counters:
            data = await self.file(version, TOKENIZER_FILE)
            from tokenizers import Tokenizer

            tok = Tokenizer.from_str(data.decode())
            self._counters[entry.sha256] = lambda text: len(tok.encode(text, add_special_tokens=False).ids)
        return self._counters[entry.sha256]

    async def prompt_counter(self, version: rpb.ModelVersion) -> Callable[[list[dict], str], int]:
        """Exact input tokens of a request as the model server will see it: chat messages
        rendered with the model's chat template (in a sandbox, as transformers does), or a raw
        prompt with the tokenizer's special tokens."""
        if version.name in self._prompt_counters:
            return self._prompt_counters[version.name]
        data = await self.file(version, TOKENIZER_FILE)
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(data.decode())
        paths = {f.path for f in version.artifact.files}
        tok_config = json.loads(await self.file(version, TOKENIZER_CONFIG_FILE)) if TOKENIZER_CONFIG_FILE in paths else {}
        source = tok_config.get("chat_template") or ""
        if not source and CHAT_TEMPLATE_FILE in paths:
            source = (await self.file(version, CHAT_TEMPLATE_FILE)).decode()
        template = None
        if isinstance(source, str) and source and self._renderer is not None:
            from llmops.core import templating

            templating.check_syntax(source, f"{version.name} chat template")
            template = source
        specials = {k: v for k, v in tok_config.items() if k in ("bos_token", "eos_token") and isinstance(v, str)}
        renderer = self._renderer

        def count(messages: list[dict], prompt: str) -> int:
            if messages:
                if template is None:  # the model server refuses these; count the text
                    return sum(len(tok.encode(m["content"], add_special_tokens=False).ids) for m in messages)
                text = renderer.render(template, {"messages": messages, "add_generation_prompt": True, **specials},
                                       f"{version.name} chat template", "chat")
                return len(tok.encode(text, add_special_tokens=False).ids)
            return len(tok.encode(prompt, add_special_tokens=True).ids)

        self._prompt_counters[version.name] = count
        self._has_chat_template[version.name] = template is not None
        return count

    async def chat_counter(self, version: rpb.ModelVersion) -> Callable[[list[dict]], int] | None:
        """Exact tokens of chat messages through the version's chat template; None when it has
        no chat template (then only plain text can be counted)."""
        count = await self.prompt_counter(version)
        if not self._has_chat_template[version.name]:
            return None
        return lambda messages: count(messages, "")

    async def counter(self, model_ref: str) -> tuple[str, Callable[[str], int]]:
        """(resolved version name, token counting function) for a registry model reference."""
        version = await self.resolve(model_ref)
        return version.name, await self.count_function(version)

    async def config(self, version: rpb.ModelVersion) -> dict:
        """The version's config.json ({} when it has none)."""
        if not any(f.path == CONFIG_FILE for f in version.artifact.files):
            return {}
        try:
            return json.loads(await self.file(version, CONFIG_FILE))
        except ValueError:
            return {}
