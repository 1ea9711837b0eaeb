"""Typed wrapper over llmops.generation.v1.GenerationService."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from llmops.api.common.v1.chat_pb2 import ChatMessage
from llmops.api.generation.v1 import generation_pb2 as pb
from llmops.api.generation.v1 import generation_pb2_grpc
from llmops.client.base import CallError, ServiceClient, operation
from llmops.core.openai_format import parse_into, sampling_from_json


def registry_target(ref: str, weight: int = 1) -> pb.Target:
    """A registry model `name@alias` (or `name@version`) served by a model server."""
    return pb.Target(registry_model=ref, weight=weight)


def provider_target(base_url: str, model: str, credential_ref: str = "", weight: int = 1) -> pb.Target:
    """An OpenAI-compatible provider; `credential_ref` is `env:NAME` or `secret:name`, never the key."""
    return pb.Target(provider=pb.ProviderTarget(base_url=base_url, model=model, credential_ref=credential_ref),
                     weight=weight)


def _messages(messages) -> list[ChatMessage]:
    return [m if isinstance(m, ChatMessage) else ChatMessage(role=m[0], content=m[1]) if isinstance(m, tuple)
            else ChatMessage(role=m["role"], content=m["content"]) for m in messages or []]


class GenerationClient(ServiceClient):
    service = "generation"

    def __init__(self, channel):
        super().__init__(channel)
        self.stub = generation_pb2_grpc.GenerationServiceStub(channel)

    @operation("create_route")
    def create_route(self, route_id: str, targets: list[pb.Target], **limits) -> pb.Route:
        return self._unary(self.stub.CreateRoute, pb.CreateRouteRequest(
            route_id=route_id, route=pb.Route(targets=targets, limits=pb.Limits(**limits))))

    @operation("get_route")
    def get_route(self, name: str) -> pb.Route:
        return self._unary(self.stub.GetRoute, pb.GetRouteRequest(name=name))

    @operation("list_routes")
    def list_routes(self, page_size: int = 100) -> list[pb.Route]:
        return self._paged(self.stub.ListRoutes, lambda t: pb.ListRoutesRequest(page_size=page_size, page_token=t),
                           "routes")

    @staticmethod
    def request(route: str, messages=None, prompt: str = "", *, max_tokens: int = 0, temperature: float | None = None,
                top_p: float | None = None, stop: list[str] | None = None, seed: int | None = None, n: int = 0,
                logprobs: bool = False, top_logprobs: int = 0, response_format: dict | None = None,
                stream: bool = False) -> pb.GenerateRequest | pb.StreamGenerateRequest:
        """`messages` as ChatMessage, (role, content) tuples or {"role", "content"} dicts; sampling
        left as None is not sent (the target's default holds); `response_format` as OpenAI's JSON
        (`{"type": "json_schema", "json_schema": {...}}`, provider targets only); `stream`: the
        StreamGenerate request (the same fields)."""
        sampling = sampling_from_json({"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p,
                                       "stop": stop, "seed": seed})
        request = (pb.StreamGenerateRequest if stream else pb.GenerateRequest)(
            route=route, messages=_messages(messages), prompt=prompt, sampling=sampling, n=n, logprobs=logprobs,
            top_logprobs=top_logprobs)
        if response_format is not None:
            parse_into(request.response_format, response_format)
        return request

    @operation("generate")
    def generate(self, route: str, messages=None, prompt: str = "", *, timeout: float | None = None,
                 **sampling) -> pb.GenerateResponse:
        return self._unary(self.stub.Generate, self.request(route, messages, prompt, **sampling), timeout=timeout)

    def stream(self, route: str, messages=None, prompt: str = "", *, timeout: float | None = None,
               **sampling) -> Iterator[pb.StreamGenerateResponse]:
        """Deltas as they come; the last message carries finish_reason and usage. Closing the
        iterator (or breaking out of the loop) cancels the call."""
        call = self.stub.StreamGenerate(self.request(route, messages, prompt, stream=True, **sampling),
                                        timeout=timeout)
        try:
            yield from call
        except grpc.RpcError as err:
            raise CallError.from_rpc(err) from None
        finally:
            call.cancel()

    @operation("count_tokens")
    def count_tokens(self, route: str, texts: list[str]) -> pb.CountTokensResponse:
        return self._unary(self.stub.CountTokens, pb.CountTokensRequest(route=route, texts=texts))

    @operation("get_usage")
    def get_usage(self, caller: str = "", route: str = "") -> list[pb.UsageRecord]:
        return list(self._unary(self.stub.GetUsage, pb.GetUsageRequest(caller=caller, route=route)).records)
