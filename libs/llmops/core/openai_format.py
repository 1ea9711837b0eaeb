"""OpenAI's chat JSON and our protos, both ways: the pipeline's OpenAI-compatible API turns
client requests into generation requests and answers back into OpenAI JSON, and the generation
gateway turns the same requests into provider requests and provider answers back into protos.

The proto messages for tools, tool calls and response formats carry OpenAI's field names, so
`json_format` maps them exactly; a plain text message takes a fast path (the common case on
the hot path of every request).
"""

from __future__ import annotations

from google.protobuf import json_format

from llmops.api.common.v1 import chat_pb2
from llmops.api.generation.v1 import generation_pb2 as gpb

FINISH_NAMES = {gpb.FINISH_REASON_STOP: "stop", gpb.FINISH_REASON_LENGTH: "length",
                gpb.FINISH_REASON_TOOL_CALLS: "tool_calls", gpb.FINISH_REASON_CONTENT_FILTER: "content_filter"}
FINISH_CODES = {name: code for code, name in FINISH_NAMES.items()}
SAMPLING_FIELDS = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")
# OpenAI's ranges of the numeric sampling fields: what the gateway, the model server and a pipeline
# bundle's bounds all check against.
SAMPLING_RANGES = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0), "presence_penalty": (-2.0, 2.0),
                   "frequency_penalty": (-2.0, 2.0)}


def finish_name(code: int) -> str:
    return FINISH_NAMES.get(code, "stop")


def finish_code(name: str | None) -> int:
    """A provider's finish reason (`function_call`, the deprecated name, counts as tool calls)."""
    if name == "function_call":
        return gpb.FINISH_REASON_TOOL_CALLS
    return FINISH_CODES.get(name or "stop", gpb.FINISH_REASON_STOP)


def _plain(value: float) -> float:
    """A float32 proto value as the decimal the caller wrote (0.3, not 0.30000001192092896)."""
    return float(f"{value:.6g}")


# -- messages ------------------------------------------------------------------------------------

def message_to_json(m: chat_pb2.ChatMessage) -> dict:
    if not (m.tool_calls or m.tool_call_id or m.name):
        return {"role": m.role, "content": m.content}
    out: dict = {"role": m.role, "content": m.content or None}
    if m.tool_calls:
        out["tool_calls"] = [tool_call_to_json(c) for c in m.tool_calls]
    if m.tool_call_id:
        out["tool_call_id"] = m.tool_call_id
    if m.name:
        out["name"] = m.name
    return out


def message_from_json(d: dict) -> chat_pb2.ChatMessage:
    out = chat_pb2.ChatMessage(role=d["role"], content=d.get("content") or "", tool_call_id=d.get("tool_call_id") or "",
                               name=d.get("name") or "")
    for call in d.get("tool_calls") or ():
        out.tool_calls.append(tool_call_from_json(call))
    return out


def tool_call_to_json(c: chat_pb2.ToolCall) -> dict:
    return {"id": c.id, "type": c.type or "function",
            "function": {"name": c.function.name, "arguments": c.function.arguments}}


def tool_call_from_json(d: dict) -> chat_pb2.ToolCall:
    fn = d.get("function") or {}
    return chat_pb2.ToolCall(id=d.get("id") or "", type=d.get("type") or "function",
                             function=chat_pb2.FunctionCall(name=fn.get("name") or "",
                                                            arguments=fn.get("arguments") or ""))


# -- request options -----------------------------------------------------------------------------

def sampling_to_json(s: chat_pb2.SamplingParams) -> dict:
    """The sampling fields that are set, and only those (a target's defaults hold for the rest)."""
    out: dict = {}
    for name in SAMPLING_FIELDS:
        if s.HasField(name):
            value = getattr(s, name)
            out[name] = value if name == "seed" else _plain(value)
    if s.stop:
        out["stop"] = list(s.stop)
    return out


def sampling_from_json(d: dict) -> chat_pb2.SamplingParams:
    out = chat_pb2.SamplingParams(max_tokens=d.get("max_tokens") or 0)
    for name in SAMPLING_FIELDS:
        if d.get(name) is not None:
            setattr(out, name, d[name])
    stop = d.get("stop")
    out.stop.extend([stop] if isinstance(stop, str) else stop or [])
    return out


def tools_to_json(tools) -> list[dict]:
    return [json_format.MessageToDict(t, preserving_proto_field_name=True) for t in tools]


def tool_choice_to_json(c: gpb.ToolChoice) -> str | dict | None:
    kind = c.WhichOneof("choice")
    if kind == "mode":
        return c.mode
    if kind == "function":
        return {"type": "function", "function": {"name": c.function}}
    return None


def tool_choice_from_json(value: str | dict | None) -> gpb.ToolChoice | None:
    if value is None:
        return None
    if isinstance(value, str):
        return gpb.ToolChoice(mode=value)
    return gpb.ToolChoice(function=value["function"]["name"])


def response_format_to_json(f: gpb.ResponseFormat) -> dict:
    return json_format.MessageToDict(f, preserving_proto_field_name=True)


def parse_into(message, d: dict):
    """`message` filled from an OpenAI JSON object with the same field names."""
    return json_format.ParseDict(d, message)


# -- log probabilities -----------------------------------------------------------------------------

def _bytes(value) -> list[int] | None:
    return list(value) if value else None


def logprobs_to_json(items) -> list[dict]:
    """OpenAI's `logprobs.content` list."""
    return [{"token": t.token, "logprob": t.logprob, "bytes": _bytes(t.token_bytes),
             "top_logprobs": [{"token": a.token, "logprob": a.logprob, "bytes": _bytes(a.token_bytes)}
                              for a in t.top_logprobs]} for t in items]


def logprobs_from_json(content: list[dict] | None) -> list[gpb.TokenLogprob]:
    out = []
    for t in content or ():
        out.append(gpb.TokenLogprob(
            token=t.get("token") or "", logprob=float(t.get("logprob") or 0.0), token_bytes=bytes(t.get("bytes") or b""),
            top_logprobs=[gpb.TopLogprob(token=a.get("token") or "", logprob=float(a.get("logprob") or 0.0),
                                         token_bytes=bytes(a.get("bytes") or b""))
                          for a in t.get("top_logprobs") or ()]))
    return out
