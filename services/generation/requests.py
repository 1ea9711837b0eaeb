"""A Generate request checked field by field and turned into what targets send: OpenAI JSON for
messages and options, and only the sampling fields the caller set. Every refusal names its field
(a BadRequest field violation, `param` over HTTP)."""

from __future__ import annotations

import re

from google.protobuf import json_format

from llmops.api.generation.v1 import generation_pb2 as pb
from llmops.core import openai_format as oa
from llmops.core.errors import InvalidArgument
from services.generation.backends import GenRequest

ROLES = frozenset({"system", "user", "assistant", "tool"})
MAX_CHOICES = 8
MAX_TOOLS = 128
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# OpenAI chat fields a route passes verbatim to provider targets (docs/pipeline.md has the policy).
PROVIDER_OPTIONS = frozenset({
    "logit_bias", "parallel_tool_calls", "reasoning_effort", "service_tier", "metadata", "store", "prediction",
    "modalities", "audio", "web_search_options", "verbosity", "prompt_cache_key", "safety_identifier",
})


def _messages(request) -> list[dict]:
    out = []
    for i, m in enumerate(request.messages):
        if m.role not in ROLES:
            raise InvalidArgument(f"messages[{i}].role {m.role[:20]!r} must be system, user, assistant or tool",
                                  field=f"messages[{i}].role")
        if m.tool_calls and m.role != "assistant":
            raise InvalidArgument(f"messages[{i}]: only assistant messages carry tool_calls",
                                  field=f"messages[{i}].tool_calls")
        if m.role == "tool" and not m.tool_call_id:
            raise InvalidArgument(f"messages[{i}] is a tool message without the tool_call_id it answers",
                                  field=f"messages[{i}].tool_call_id")
        out.append(oa.message_to_json(m))
    return out


def check_sampling(s, prefix: str = "") -> dict:
    """The set sampling fields as OpenAI JSON, each within its bounds."""
    for name, (low, high) in oa.SAMPLING_RANGES.items():
        if s.HasField(name) and not low <= getattr(s, name) <= high:
            raise InvalidArgument(f"{prefix}{name} {getattr(s, name):g} must be between {low:g} and {high:g}",
                                  field=f"{prefix}{name}")
    if s.max_tokens < 0:
        raise InvalidArgument(f"{prefix}max_tokens must be >= 1 (0: the default)", field=f"{prefix}max_tokens")
    if len(s.stop) > 4 or any(not x or len(x) > 64 for x in s.stop):
        raise InvalidArgument(f"{prefix}stop takes up to 4 sequences of 1-64 characters", field=f"{prefix}stop")
    return oa.sampling_to_json(s)


def _tools(request) -> tuple[list[dict], str | dict | None]:
    if len(request.tools) > MAX_TOOLS:
        raise InvalidArgument(f"send at most {MAX_TOOLS} tools", field="tools")
    names = set()
    for i, t in enumerate(request.tools):
        if t.type not in ("", "function"):
            raise InvalidArgument(f"tools[{i}].type {t.type[:20]!r}: only function tools are supported",
                                  field=f"tools[{i}].type")
        if not FUNCTION_NAME.match(t.function.name):
            raise InvalidArgument(f"tools[{i}].function.name must be 1-64 letters, digits, _ or -",
                                  field=f"tools[{i}].function.name")
        names.add(t.function.name)
    tools = [{**t, "type": "function"} for t in oa.tools_to_json(request.tools)]
    choice = oa.tool_choice_to_json(request.tool_choice) if request.HasField("tool_choice") else None
    if isinstance(choice, str) and choice not in ("none", "auto", "required"):
        raise InvalidArgument(f"tool_choice {choice[:20]!r} must be none, auto, required or a function",
                              field="tool_choice")
    if choice not in (None, "none", "auto") and not tools:
        raise InvalidArgument("tool_choice needs tools", field="tool_choice")
    if isinstance(choice, dict) and choice["function"]["name"] not in names:
        raise InvalidArgument(f"tool_choice names function {choice['function']['name'][:64]!r}, which is not "
                              "among the tools", field="tool_choice.function.name")
    return tools, choice


def _response_format(request) -> dict | None:
    if not request.HasField("response_format"):
        return None
    f = request.response_format
    if f.type not in ("text", "json_object", "json_schema"):
        raise InvalidArgument(f"response_format.type {f.type[:20]!r} must be text, json_object or json_schema",
                              field="response_format.type")
    if f.type == "json_schema" and not (f.json_schema.name and f.json_schema.HasField("schema")):
        raise InvalidArgument("response_format.json_schema needs a name and a schema",
                              field="response_format.json_schema")
    return oa.response_format_to_json(f)


def check(request: pb.GenerateRequest | pb.StreamGenerateRequest, capture_content: bool = False) -> GenRequest:
    if bool(request.messages) == bool(request.prompt):
        raise InvalidArgument("send either messages or a prompt (exactly one)", field="messages")
    sampling = check_sampling(request.sampling, "sampling.")
    n = request.n or 1
    if not 1 <= n <= MAX_CHOICES:
        raise InvalidArgument(f"n {request.n} must be 1-{MAX_CHOICES}", field="n")
    if not 0 <= request.top_logprobs <= 20:
        raise InvalidArgument("top_logprobs must be 0-20", field="top_logprobs")
    if request.top_logprobs and not request.logprobs:
        raise InvalidArgument("top_logprobs needs logprobs", field="top_logprobs")
    if len(request.user) > 256:
        raise InvalidArgument("user is longer than 256 characters", field="user")
    options = json_format.MessageToDict(request.provider_options) if request.HasField("provider_options") else {}
    unknown = sorted(set(options) - PROVIDER_OPTIONS)
    if unknown:
        raise InvalidArgument(f"provider_options {unknown[0]!r} is not passed to providers; known: "
                              f"{', '.join(sorted(PROVIDER_OPTIONS))}", field=f"provider_options.{unknown[0]}")
    tools, choice = _tools(request)
    return GenRequest(_messages(request), request.prompt, request.sampling.max_tokens, sampling, n=n,
                      logprobs=request.logprobs, top_logprobs=request.top_logprobs, tools=tools, tool_choice=choice,
                      response_format=_response_format(request), user=request.user, provider_options=options,
                      capture_content=capture_content)
