"""The HTTP edge every HTTP API shares: one JSON error shape for its own refusals too (404, 405,
413 before the body is read whole, 415), unknown fields named, a bug answered without internals,
and a gateway fault as 502."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel, ConfigDict
from starlette.applications import Starlette
from starlette.testclient import TestClient

from llmops.core import auth, http
from llmops.core.errors import BadGateway
from llmops.testing.services import make_keys


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    n: int


@pytest.fixture
def client(tmp_path):
    keys = make_keys(tmp_path / "keys.json")
    policy = {("POST", "/echo"): auth.Role.READER, ("GET", "/boom"): auth.Role.READER,
              ("GET", "/gateway"): auth.Role.READER}
    edge = http.HttpEdge(auth.KeyStore(tmp_path / "keys.json"), http.ServerSpans(TracerProvider()), policy)

    async def echo(call):
        return {"n": call.body.n}

    async def boom(call):
        raise RuntimeError("secret internals")

    async def gateway(call):
        raise BadGateway("the provider refused the route's credential")

    app = Starlette(routes=[edge.route("POST", "/echo", echo, body=Body, max_body=1000),
                            edge.route("GET", "/boom", boom), edge.route("GET", "/gateway", gateway)],
                    exception_handlers=edge.exception_handlers())
    with TestClient(app, raise_server_exceptions=False,
                    headers={"authorization": f"Bearer {keys['reader']}"}) as c:
        yield c


def error(resp) -> dict:
    assert resp.headers["content-type"].startswith("application/json"), resp.text
    return resp.json()["error"]


def test_refusals_share_the_json_error_shape(client):
    assert client.post("/echo", json={"n": 3}).json() == {"n": 3}
    resp = client.get("/nowhere")
    assert resp.status_code == 404 and error(resp)["reason"] == "NO_SUCH_ENDPOINT"
    resp = client.get("/echo")
    assert resp.status_code == 405 and error(resp)["type"] == "invalid_request_error"
    resp = client.post("/echo", content=b'{"n": 1, "pad": "' + b"x" * 2000 + b'"}',
                       headers={"content-type": "application/json"})
    assert resp.status_code == 413 and error(resp)["reason"] == "PAYLOAD_TOO_LARGE"
    resp = client.post("/echo", content=b"n=1", headers={"content-type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 415 and "JSON" in error(resp)["message"]
    resp = client.post("/echo", json={"n": 1, "frobnicate": True})
    assert resp.status_code == 400 and error(resp)["param"] == "frobnicate"
    assert "unknown field" in error(resp)["message"]
    resp = client.post("/echo", json={"n": "1"})
    assert resp.status_code == 400 and error(resp)["param"] == "n"


def test_a_bug_is_a_500_with_the_trace_id_and_a_gateway_fault_a_502(client):
    resp = client.get("/boom")
    assert resp.status_code == 500 and "secret" not in resp.text
    assert resp.headers["x-trace-id"] in error(resp)["message"]
    resp = client.get("/gateway")
    assert resp.status_code == 502 and error(resp)["reason"] == "UPSTREAM_CREDENTIAL_REJECTED"
