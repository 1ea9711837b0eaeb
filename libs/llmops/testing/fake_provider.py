"""A stand-in for an external OpenAI-compatible provider: a real HTTP server on loopback that
speaks `POST /v1/chat/completions`, streaming (server-sent events) included. It answers
"echo: <last user message>", checks the bearer key, and can be told to answer 429 or to put the
key it received into an error (a careless provider), so tests can see it never leaks further."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeProvider:
    def __init__(self, key: str):
        self.key = key
        self.mode = "ok"  # ok | rate_limited | leaky_error | down
        self.requests: list[dict] = []
        self.token_delay_s = 0.0
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
                question = body["messages"][-1]["content"]
                words = f"echo: {question}".split(" ")[: body.get("max_tokens") or 16]
                usage = {"prompt_tokens": sum(len(m["content"].split()) for m in body["messages"]),
                         "completion_tokens": len(words)}
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                if not body.get("stream"):
                    return self._json(200, {"id": "cmpl-1", "object": "chat.completion", "model": body["model"],
                                            "choices": [{"index": 0, "finish_reason": "stop",
                                                         "message": {"role": "assistant", "content": " ".join(words)}}],
                                            "usage": usage})
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()

                def send(obj) -> None:
                    data = f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n".encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()

                provider.open_streams += 1
                try:
                    for i, w in enumerate(words):
                        time.sleep(provider.token_delay_s)
                        send({"id": "cmpl-1", "object": "chat.completion.chunk", "model": body["model"],
                              "choices": [{"index": 0, "delta": {"content": (" " if i else "") + w},
                                           "finish_reason": None}]})
                    send({"id": "cmpl-1", "object": "chat.completion.chunk", "model": body["model"],
                          "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
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
