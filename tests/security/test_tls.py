"""Optional TLS on every listener and channel, on loopback with a CA made for the test: gRPC
(plain and mutual TLS), the HTTP APIs and /metrics; a plaintext client is refused by a TLS
server; a service bound beyond loopback without TLS says so at start."""

from __future__ import annotations

import functools
import ssl
import subprocess

import grpc
import httpx
import pytest

from llmops.client import Client
from llmops.core import tls
from llmops.core.server import ServerConfig
from llmops.testing.services import ServerThread, ServiceProcess, code_of
from services.feedback.config import FeedbackConfig
from services.feedback.server import build as build_feedback

pytestmark = pytest.mark.slow  # the whole stack over TLS


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all signed by it."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=llmops test CA", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return d


def test_a_service_process_serves_grpc_and_metrics_over_tls(pki, keys, keys_file, tmp_path, monkeypatch):
    env = {"LLMOPS_HOME": str(tmp_path), "LLMOPS_REGISTRY_TLS_CERT_FILE": str(pki / "server.pem"),
           "LLMOPS_REGISTRY_TLS_KEY_FILE": str(pki / "server.key"),
           "LLMOPS_REGISTRY_KEYS_FILE": str(keys_file)}
    proc = ServiceProcess("registry", env, tmp_path).start()
    try:
        with Client({"registry": proc.address}, keys["reader"]) as plain:  # no CA: plaintext
            code, _ = code_of(plain.registry.list_models)
            assert code is grpc.StatusCode.UNAVAILABLE
        monkeypatch.setenv("LLMOPS_TLS_CA_FILE", str(pki / "ca.pem"))
        with Client({"registry": proc.address}, keys["reader"]) as secure:
            assert secure.registry.list_models() == []
        metrics = httpx.get(f"https://{proc.metrics_address}/metrics", verify=ssl.create_default_context(cafile=str(pki / "ca.pem")), timeout=10)
        assert metrics.status_code == 200 and "llmops_rpc_requests_total" in metrics.text
        assert "(TLS)" in proc.log.read_text()
    finally:
        proc.terminate()


def test_mutual_tls_requires_a_client_certificate(pki, keys, key_store, tmp_path, monkeypatch):
    from services.registry.config import RegistryConfig
    from services.registry.server import build

    config = RegistryConfig(database_url=f"sqlite:///{tmp_path / 'reg.db'}", artifact_root=str(tmp_path / "art"))
    server = ServerConfig(port=0, tls_cert_file=str(pki / "server.pem"), tls_key_file=str(pki / "server.key"),
                          tls_client_ca_file=str(pki / "ca.pem"))
    thread = ServerThread(functools.partial(build, config=config), key_store, server).start()
    try:
        monkeypatch.setenv("LLMOPS_TLS_CA_FILE", str(pki / "ca.pem"))
        with Client({"registry": thread.address}, keys["reader"]) as anonymous:
            assert code_of(anonymous.registry.list_models)[0] is grpc.StatusCode.UNAVAILABLE
        monkeypatch.setenv("LLMOPS_TLS_CLIENT_CERT_FILE", str(pki / "client.pem"))
        monkeypatch.setenv("LLMOPS_TLS_CLIENT_KEY_FILE", str(pki / "client.key"))
        with Client({"registry": thread.address}, keys["reader"]) as known:
            assert known.registry.list_models() == []
    finally:
        thread.stop()


def test_the_http_api_beside_grpc_serves_https(pki, key_store, tmp_path):
    config = FeedbackConfig(database_url=f"sqlite:///{tmp_path / 'fb.db'}", export_root=str(tmp_path / "x"), http_port=0)
    server = ServerConfig(port=0, tls_cert_file=str(pki / "server.pem"), tls_key_file=str(pki / "server.key"))
    thread = ServerThread(functools.partial(build_feedback, config=config), key_store, server).start()
    try:
        port = thread.server.http_port
        assert httpx.get(f"https://127.0.0.1:{port}/healthz", verify=ssl.create_default_context(cafile=str(pki / "ca.pem")), timeout=10).text == "ok"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        thread.stop()


def test_clear_text_beyond_loopback_is_announced(pki):
    assert tls.exposure_warning("registry", "127.0.0.1", None) == ""
    assert tls.exposure_warning("registry", "::1", None) == ""
    loud = tls.exposure_warning("registry", "0.0.0.0", None)
    assert "WITHOUT TLS" in loud and "LLMOPS_REGISTRY_TLS_CERT_FILE" in loud
    assert "WITHOUT TLS" in tls.exposure_warning("registry", "10.1.2.3", None)
    assert tls.exposure_warning("registry", "0.0.0.0", tls.ServerTLS.of(str(pki / "server.pem"),
                                                                         str(pki / "server.key"))) == ""
    from llmops.core.config import ConfigError

    with pytest.raises(ConfigError, match="both a certificate and a key"):
        tls.ServerTLS.of(str(pki / "server.pem"), "")


def test_the_model_server_checks_its_token_on_every_endpoint_over_https(pki, tmp_path):
    token = "ms-secret-token"
    env = {"LLMOPS_HOME": str(tmp_path), "LLMOPS_MODELSERVER_TOKEN": token,
           "LLMOPS_MODELSERVER_TLS_CERT_FILE": str(pki / "server.pem"),
           "LLMOPS_MODELSERVER_TLS_KEY_FILE": str(pki / "server.key")}
    proc = ServiceProcess("modelserver", env, tmp_path, module="services.modelserver",
                          prefix="LLMOPS_MODELSERVER").start(timeout=180)
    verify = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    try:
        with httpx.Client(base_url=f"https://{proc.address}", verify=verify, timeout=30) as http:
            assert http.get("/readyz").status_code == 200  # probes stay open
            body = {"items": [{"model": "nope@1", "prompt": "hi"}]}
            for path, payload in (("/generate_batch", body), ("/generate", {"model": "nope@1"}), ("/status", {}),
                                  ("/load", {"model": "nope@1"}), ("/stream", {"model": "nope@1"})):
                for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Bearer {token}x"}):
                    resp = http.post(path, json=payload, headers=headers)
                    assert resp.status_code == 401, (path, headers, resp.status_code)
                ok = http.post(path, json=payload, headers={"authorization": f"Bearer {token}"})
                assert ok.status_code != 401, path
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://{proc.address}/readyz", timeout=5)
    finally:
        proc.terminate()
