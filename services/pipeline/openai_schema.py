"""The request bodies of the OpenAI-compatible API, declared field by field: every OpenAI request
field is either a typed field here (checked for type and range, 400 naming it otherwise) or
refused as unknown; none is ignored. Which fields a pipeline, a registry model and a provider
honour is the parameter policy in docs/pipeline.md; `PROVIDER_ONLY` lists those that only a
provider behind a route can act on (passed to it verbatim)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

INT32 = 2**31 - 1
INT64 = 2**63 - 1
# Fields passed verbatim to a route's provider targets (generation's `provider_options`).
PROVIDER_ONLY = ("logit_bias", "parallel_tool_calls", "reasoning_effort", "service_tier", "metadata", "store",
                 "prediction", "modalities", "audio", "web_search_options", "verbosity", "prompt_cache_key",
                 "safety_identifier")


class Body(BaseModel):
    """Types are checked as sent (no "1" for 1) and unknown fields are refused."""

    model_config = ConfigDict(strict=True, extra="forbid")


class TextPart(Body):
    type: Literal["text"]
    text: str


class FunctionCall(Body):
    name: str
    arguments: str


class ToolCall(Body):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(Body):
    """One message; content is text or text parts. An assistant message sent back as the SDK
    returned it may carry `refusal`, `annotations` and null `audio`/`function_call`."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = Field(None, max_length=64)
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None
    annotations: list[dict[str, Any]] | None = None  # citations of an earlier answer: not sent on
    audio: None = None
    function_call: None = None

    def text(self) -> str:
        if self.content is None:
            return self.refusal or ""
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class StreamOptions(Body):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None  # nothing here is obfuscated


class FunctionDefinition(Body):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(Body):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(Body):
    name: str


class NamedToolChoice(Body):
    type: Literal["function"]
    function: NamedFunction


class JsonSchema(Body):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(Body):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchema | None = None


Float = Annotated[float, Field(allow_inf_nan=False)]


class Sampling(Body):
    """The sampling fields chat and legacy completions share."""

    max_tokens: int | None = Field(None, ge=1, le=INT32)
    temperature: Float | None = Field(None, ge=0, le=2)
    top_p: Float | None = Field(None, ge=0, le=1)
    seed: int | None = Field(None, ge=-INT64 - 1, le=INT64)
    stop: str | list[str] | None = Field(None, max_length=4)
    n: int | None = Field(None, ge=1, le=8)
    presence_penalty: Float | None = Field(None, ge=-2, le=2)
    frequency_penalty: Float | None = Field(None, ge=-2, le=2)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, max_length=256)
    logit_bias: dict[str, Float] | None = None


class ChatBody(Sampling):
    """`POST /v1/chat/completions`."""

    model: str = Field(min_length=1, description="a pipeline `name@alias` or a generation route name")
    messages: list[Message] = Field(min_length=1, max_length=1024)
    max_completion_tokens: int | None = Field(None, ge=1, le=INT32)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    tools: list[Tool] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    # passed to a route's providers as they are
    reasoning_effort: str | None = None
    service_tier: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    prediction: dict[str, Any] | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    verbosity: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    # deprecated by OpenAI: refused with a pointer to their replacement
    functions: Any = None
    function_call: Any = None


class CompletionBody(Sampling):
    """`POST /v1/completions` (the legacy prompt API)."""

    model: str = Field(min_length=1)
    prompt: str | list[str] = Field(min_length=1)
    logprobs: int | None = Field(None, ge=0, le=5)
    echo: bool | None = None
    suffix: str | None = None
    best_of: int | None = Field(None, ge=1, le=8)


class EmbeddingBody(Body):
    """`POST /v1/embeddings`."""

    model: str = Field(min_length=1, description="an index name or the embedding model's name")
    input: str | list[str] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)
    user: str | None = Field(None, max_length=256)
