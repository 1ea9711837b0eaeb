"""Transport security, optional and the same for every listener and channel.

Servers: `LLMOPS_<SERVICE>_TLS_CERT_FILE` and `_TLS_KEY_FILE` (PEM) turn on TLS for the service's
gRPC port, its HTTP API and its /metrics; `_TLS_CLIENT_CA_FILE` also requires client certificates
signed by that CA (mutual TLS). `LLMOPS_TLS_CERT_FILE`, `LLMOPS_TLS_KEY_FILE` and
`LLMOPS_TLS_CLIENT_CA_FILE` are the defaults for every service.

Clients (the Python client, the CLI, services calling services): `LLMOPS_TLS_CA_FILE` makes every
channel TLS, trusting that CA; `LLMOPS_TLS_CLIENT_CERT_FILE` / `_KEY_FILE` present a client
certificate.

Without TLS a service bound to anything but loopback says so loudly at start: its API keys and
payload would cross the network in clear text.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from llmops.core.config import ConfigError


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path!r}: {exc.strerror}") from None


@dataclass(frozen=True)
class ServerTLS:
    cert_file: str
    key_file: str
    client_ca_file: str = ""

    @classmethod
    def of(cls, cert_file: str, key_file: str, client_ca_file: str = "") -> ServerTLS | None:
        """The settings, None when TLS is off; ConfigError when only half is given."""
        cert_file = cert_file or os.environ.get("LLMOPS_TLS_CERT_FILE", "")
        key_file = key_file or os.environ.get("LLMOPS_TLS_KEY_FILE", "")
        client_ca_file = client_ca_file or os.environ.get("LLMOPS_TLS_CLIENT_CA_FILE", "")
        if not cert_file and not key_file:
            return None
        if not (cert_file and key_file):
            raise ConfigError("TLS needs both a certificate and a key file (…_TLS_CERT_FILE and …_TLS_KEY_FILE)")
        for path, what in ((cert_file, "TLS certificate"), (key_file, "TLS key"), (client_ca_file, "client CA")):
            if path:
                _read(path, what)
        return cls(cert_file, key_file, client_ca_file)

    def grpc_credentials(self) -> grpc.ServerCredentials:
        ca = _read(self.client_ca_file, "client CA") if self.client_ca_file else None
        return grpc.ssl_server_credentials([(_read(self.key_file, "TLS key"), _read(self.cert_file, "TLS certificate"))],
                                           root_certificates=ca, require_client_auth=ca is not None)

    def uvicorn_options(self) -> dict:
        import ssl

        options = {"ssl_certfile": self.cert_file, "ssl_keyfile": self.key_file}
        if self.client_ca_file:
            options.update(ssl_ca_certs=self.client_ca_file, ssl_cert_reqs=ssl.CERT_REQUIRED)
        return options


@dataclass(frozen=True)
class ClientTLS:
    ca_file: str
    cert_file: str = ""
    key_file: str = ""

    def grpc_credentials(self) -> grpc.ChannelCredentials:
        cert = _read(self.cert_file, "client certificate") if self.cert_file else None
        key = _read(self.key_file, "client key") if self.key_file else None
        return grpc.ssl_channel_credentials(_read(self.ca_file, "CA"), key, cert)


def client_from_env() -> ClientTLS | None:
    ca = os.environ.get("LLMOPS_TLS_CA_FILE", "")
    if not ca:
        return None
    return ClientTLS(ca, os.environ.get("LLMOPS_TLS_CLIENT_CERT_FILE", ""),
                     os.environ.get("LLMOPS_TLS_CLIENT_KEY_FILE", ""))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:  # anything else that is not an IP address ('', 0.0.0.0, a name) may face the network
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(service: str, host: str, tls: ServerTLS | None) -> str:
    """The loud start-up line for a service reachable from the network in clear text ('' if not)."""
    if tls is not None or is_loopback(host):
        return ""
    return (f"{service} listens on {host or 'every interface'} WITHOUT TLS: API keys and user payload cross the "
            f"network in clear text. Set LLMOPS_{service.upper()}_TLS_CERT_FILE and _TLS_KEY_FILE (or bind "
            "127.0.0.1 behind a TLS-terminating proxy).")
