"""The entry point: one object holding a channel per service."""

from __future__ import annotations

import functools
import os

import grpc

from llmops.client.evaluation import EvaluationClient
from llmops.client.feedback import FeedbackClient
from llmops.client.finetuning import FineTuningClient
from llmops.client.generation import GenerationClient
from llmops.client.pipeline import PipelineClient
from llmops.client.prompt import PromptClient
from llmops.client.registry import RegistryClient
from llmops.client.release import ReleaseClient
from llmops.client.retrieval import RetrievalClient
from llmops.core import channels
from llmops.core.localenv import DEFAULT_PORTS, LocalConfig, service_address


class Client:
    def __init__(self, addresses: dict[str, str], api_key: str, *, default_timeout_s: float = channels.DEFAULT_TIMEOUT_S):
        self.addresses = dict(addresses)
        self.api_key = api_key
        self._timeout = default_timeout_s
        self._channels: dict[str, grpc.Channel] = {}

    @classmethod
    def local(cls, config: LocalConfig | None = None) -> Client:
        """From the config `llmops up` wrote; `LLMOPS_API_KEY` and `LLMOPS_<SERVICE>_ADDRESS` override it."""
        config = config or LocalConfig.load()
        addresses = {s: service_address(s) for s in DEFAULT_PORTS}
        for service, address in config.services.items():
            if not os.environ.get(f"LLMOPS_{service.upper()}_ADDRESS"):  # the environment wins
                addresses[service] = address
        return cls(addresses, os.environ.get("LLMOPS_API_KEY") or config.api_key)

    def channel(self, service: str) -> grpc.Channel:
        if service not in self._channels:
            self._channels[service] = channels.sync_channel(
                self.addresses[service], self.api_key, default_timeout_s=self._timeout)
        return self._channels[service]

    @functools.cached_property
    def registry(self) -> RegistryClient:
        return RegistryClient(self.channel("registry"))

    @functools.cached_property
    def retrieval(self) -> RetrievalClient:
        return RetrievalClient(self.channel("retrieval"))

    @functools.cached_property
    def prompt(self) -> PromptClient:
        return PromptClient(self.channel("prompt"))

    @functools.cached_property
    def generation(self) -> GenerationClient:
        return GenerationClient(self.channel("generation"))

    @functools.cached_property
    def pipeline(self) -> PipelineClient:
        return PipelineClient(self.channel("pipeline"))

    @functools.cached_property
    def feedback(self) -> FeedbackClient:
        return FeedbackClient(self.channel("feedback"))

    @functools.cached_property
    def finetuning(self) -> FineTuningClient:
        return FineTuningClient(self.channel("finetuning"))

    @functools.cached_property
    def evaluation(self) -> EvaluationClient:
        """Evaluation runs (served by the fine-tuning service)."""
        return EvaluationClient(self.channel("finetuning"))

    @functools.cached_property
    def release(self) -> ReleaseClient:
        """Progressive releases (served by the fine-tuning service)."""
        return ReleaseClient(self.channel("finetuning"))

    def close(self) -> None:
        for ch in self._channels.values():
            ch.close()
        self._channels.clear()
        for wrapper in ("registry", "retrieval", "prompt", "generation", "pipeline", "feedback", "finetuning",
                        "evaluation", "release"):
            self.__dict__.pop(wrapper, None)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
