"""Keys are manageable: list, revoke and expiry take effect over the wire within a second;
concurrent updates lose no key; a malformed key file stops a service at start with a clear
error; service keys hold the least role they need."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import grpc
import pytest

from llmops.cli.stack import SERVICE_KEYS
from llmops.client import Client
from llmops.core import auth
from llmops.core.auth import Role
from llmops.testing.services import ROOT, ServiceProcess, code_of

pytestmark = pytest.mark.slow  # the whole stack


def test_revoked_and_expired_keys_are_refused_within_a_second(rag):
    keys_file = rag.home / "keys.json"
    key = auth.add_key(keys_file, "short-lived", "reader", expires_in_s=2.0)
    doomed = auth.add_key(keys_file, "doomed", "reader")
    address = {"registry": rag.procs["registry"].address}
    with Client(address, key) as short, Client(address, doomed) as revoked:
        short.registry.list_models()
        revoked.registry.list_models()
        listed = {e.name: e for e in auth.list_keys(keys_file)}
        assert listed["short-lived"].expires and not listed["doomed"].expires and "sha256" not in str(listed.keys())
        assert auth.revoke_key(keys_file, "doomed") and not auth.revoke_key(keys_file, "doomed")
        time.sleep(1.2)
        code, _ = code_of(revoked.registry.list_models)
        assert code is grpc.StatusCode.UNAUTHENTICATED
        time.sleep(1.0)
        code, message = code_of(short.registry.list_models)
        assert code is grpc.StatusCode.UNAUTHENTICATED and "expired" in message


def test_concurrent_key_updates_lose_nothing(tmp_path):
    path = tmp_path / "keys.json"
    threads = [threading.Thread(target=auth.add_key, args=(path, f"k{i}", "reader")) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {e.name for e in auth.list_keys(path)} == {f"k{i}" for i in range(24)}
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not list(tmp_path.glob("*.tmp"))


def test_a_malformed_key_file_stops_a_service_at_start_with_a_clear_error(tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text('{"keys": [{"name": "x", "role": "superuser", "sha256": "00"}]}')
    proc = ServiceProcess("registry", {"LLMOPS_HOME": str(tmp_path), "LLMOPS_REGISTRY_KEYS_FILE": str(keys)},
                          tmp_path).launch()
    assert proc.proc.wait(60) == 2
    log = proc.log.read_text()
    assert "keys[0] is malformed" in log and "superuser" in log and "Traceback" not in log
    keys.write_text("{not json")
    with pytest.raises(auth.KeyFileError, match="is not a key file"):
        auth.KeyStore(keys)


def test_the_cli_lists_and_revokes_keys(tmp_path):
    env = {"LLMOPS_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-m", "llmops.cli.main"]
    out = subprocess.run([*run, "keys", "create", "ci", "--role", "editor", "--expires", "12h", "--grant",
                          "FeedbackService/ListInferences"], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    key = out.stdout.strip()
    listing = subprocess.run([*run, "keys", "list"], env=env, cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    assert "ci" in listing and "editor" in listing and key not in listing and auth.hash_key(key) not in listing
    assert "+ FeedbackService/ListInferences" in listing
    assert json.loads((tmp_path / "keys.json").read_text())["keys"][0]["expires"] > time.time() + 11 * 3600
    subprocess.run([*run, "keys", "revoke", "ci"], env=env, cwd=ROOT, check=True, capture_output=True)
    assert auth.list_keys(tmp_path / "keys.json") == []
    bad = subprocess.run([*run, "keys", "create", "x", "--role", "reader", "--expires", "soon"], env=env, cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "not a duration" in bad.stderr


def test_service_keys_hold_the_least_role_they_need():
    assert SERVICE_KEYS["pipeline"][0] is Role.READER  # logging answers is granted, not editing
    assert set(SERVICE_KEYS["pipeline"][1]) == {"FeedbackService/LogInference", "FeedbackService/LogInferences"}
    assert all(role <= Role.EDITOR for role, _ in SERVICE_KEYS.values())
    p = auth.Principal("service-pipeline", Role.READER, frozenset(SERVICE_KEYS["pipeline"][1]))
    assert p.granted("/llmops.feedback.v1.FeedbackService/LogInferences")
    assert not p.granted("/llmops.feedback.v1.FeedbackService/ExportDataset")
