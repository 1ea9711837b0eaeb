"""A stand-in for an external OpenAI-compatible provider: a real HTTP server on loopback that
speaks `POST /v1/chat/completions`, streaming (server-sent events) included. It answers
"echo: <last user message>", checks the bearer key, and can be told to answer 429 or to put the
key it received into an error (a careless provider), so tests can see it never leaks further.

Like a real provider it calls tools: given `tools` (and a tool_choice other than `none`) it
calls the chosen or first function with arguments made from its JSON schema, and answers a
`tool` message with "tool said: <content>"; given a `json_schema` response format it answers a
JSON object of that schema; `n` choices, `logprobs` and `top_logprobs` are honoured."""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def instance(schema: dict, text: str):
    """A value of a JSON schema (enough of it for tests): strings are `text`."""
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return instance(schema["anyOf"][0], text)
    if kind == "object" or "properties" in schema:
        return {k: instance(v, text) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [instance(schema.get("items") or {"type": "string"}, text)]
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(kind, text)


def _text(content) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content)
    return content or ""


def answer(body: dict) -> tuple[str, dict | None]:
    """(text, tool call or None) for a request."""
    messages = body["messages"]
    last = messages[-1]
    question = _text(last.get("content"))
    if last["role"] == "tool":
        return f"tool said: {question}", None
    tools, choice = body.get("tools") or [], body.get("tool_choice", "auto")
    if tools and choice != "none":
        fn = tools[0]["function"]
        if isinstance(choice, dict):
            fn = next(t["function"] for t in tools if t["function"]["name"] == choice["function"]["name"])
        args = instance(fn.get("parameters") or {}, question)
        return "", {"id": f"call_{len(messages)}", "type": "function",
                    "function": {"name": fn["name"], "arguments": json.dumps(args)}}
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return json.dumps(instance(fmt["json_schema"].get("schema") or {}, question)), None
    if fmt.get("type") == "json_object":
        return json.dumps({"answer": question}), None
    words = f"echo: {question}".split(" ")[: body.get("max_tokens") or 16]
    return " ".join(words), None


def logprobs(text: str, top: int) -> dict:
    return {"content": [{"token": w, "logprob": -0.25, "bytes": list(w.encode()),
                         "top_logprobs": [{"token": w, "logprob": -0.25, "bytes": list(w.encode())}][:top]}
                        for w in text.split(" ")]}


class FakeProvider:
    def __init__(self, key: str):
        self.key = key
        self.mode = "ok"  # ok | rate_limited | leaky_error | down
        self.requests: list[dict] = []
        self.token_delay_s = 0.0
        self.answer_delay_s = 0.0  # before every answer (a slow provider)
        self.open_streams = 0  # streams being written now
        self.disconnects = 0  # streams whose client went away before the end
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes

            def log_message(self, *args):  # quiet
                pass

            def _json(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                provider.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                time.sleep(provider.answer_delay_s)
                if self.path != "/v1/chat/completions":
                    return self._json(404, {"error": {"message": f"no route {self.path}"}})
                sent = self.headers.get("authorization", "")
                if provider.mode == "leaky_error":
                    return self._json(400, {"error": {"message": f"bad request from key {sent[7:]}"}})
                if sent != f"Bearer {provider.key}":
                    return self._json(401, {"error": {"message": "invalid api key"}})
                if provider.mode == "rate_limited":
                    return self._json(429, {"error": {"message": "rate limit reached"}}, {"retry-after": "7"})
                if provider.mode == "down":
                    return self._json(503, {"error": {"message": "overloaded"}})
                text, call = answer(body)
                n = body.get("n") or 1
                usage = {"prompt_tokens": sum(len(_text(m.get("content")).split()) for m in body["messages"]),
                         "completion_tokens": n * max(1, len(text.split()))}
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                finish = "tool_calls" if call else "stop"
                top = body.get("top_logprobs") or 0
                if not body.get("stream"):
                    message = {"role": "assistant", "content": text or None, "refusal": None}
                    if call:
                        message["tool_calls"] = [call]
                    return self._json(200, {"id": "cmpl-1", "object": "chat.completion", "created": int(time.time()),
                                            "model": body["model"], "usage": usage,
                                            "choices": [{"index": i, "finish_reason": finish, "message": message,
                                                         "logprobs": logprobs(text, top) if body.get("logprobs")
                                                         else None} for i in range(n)]})
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()

                def send(obj) -> None:
                    data = f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n".encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()

                def chunk(i: int, delta: dict, finish_reason=None, lp=None) -> dict:
                    return {"id": "cmpl-1", "object": "chat.completion.chunk", "created": int(time.time()),
                            "model": body["model"], "choices": [{"index": i, "delta": delta, "logprobs": lp,
                                                                 "finish_reason": finish_reason}]}

                provider.open_streams += 1
                try:
                    for i in range(n):
                        send(chunk(i, {"role": "assistant", "content": ""}))
                        if call:
                            args = call["function"]["arguments"]
                            half = math.ceil(len(args) / 2)
                            send(chunk(i, {"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                                           "function": {"name": call["function"]["name"],
                                                                        "arguments": ""}}]}))
                            for part in (args[:half], args[half:]):
                                send(chunk(i, {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
                        for j, w in enumerate(text.split(" ") if text else []):
                            time.sleep(provider.token_delay_s)
                            piece = (" " if j else "") + w
                            send(chunk(i, {"content": piece},
                                       lp=logprobs(w, top) if body.get("logprobs") else None))
                        send(chunk(i, {}, finish))
                    if (body.get("stream_options") or {}).get("include_usage"):
                        send({"id": "cmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": usage})
                    send("[DONE]")
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    provider.disconnects += 1
                    self.close_connection = True
                finally:
                    provider.open_streams -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeProvider:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
