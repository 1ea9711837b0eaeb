"""Config, pagination, safe paths, keys and the blob store."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmops.core import auth, pagination
from llmops.core.blobstore import BlobStore
from llmops.core.config import ConfigError, from_env
from llmops.core.errors import DataLoss, InvalidArgument, ResourceExhausted
from llmops.core.paths import confined, safe_relative_path


@dataclass(frozen=True)
class Sample:
    host: str = "127.0.0.1"
    port: int = 0
    ratio: float = 0.5
    debug: bool = False
    names: tuple[str, ...] = ("production",)
    url: str | None = None


def test_config_reads_typed_values_and_names_bad_variables():
    cfg = from_env(Sample, "X", {"X_PORT": "8080", "X_RATIO": "0.25", "X_DEBUG": "yes", "X_NAMES": "a, b"})
    assert cfg == Sample(port=8080, ratio=0.25, debug=True, names=("a", "b"))
    with pytest.raises(ConfigError, match="X_PORT"):
        from_env(Sample, "X", {"X_PORT": "eighty"})
    with pytest.raises(ConfigError, match="X_DEBUG"):
        from_env(Sample, "X", {"X_DEBUG": "maybe"})
    assert from_env(Sample, "X", {}, port=9).port == 9


def test_page_tokens_round_trip_and_refuse_tampering():
    token = pagination.encode("abc", {"kind": 1})
    assert pagination.decode(token, {"kind": 1}) == "abc"
    assert pagination.decode("", {"kind": 1}) is None
    with pytest.raises(InvalidArgument, match="different query"):
        pagination.decode(token, {"kind": 2})
    for bad in ("%%%", "bm90IGpzb24", token[:-3]):
        with pytest.raises(InvalidArgument):
            pagination.decode(bad, {"kind": 1})
    assert pagination.page_size(0) == 50 and pagination.page_size(5000) == 1000
    with pytest.raises(InvalidArgument):
        pagination.page_size(-1)


def test_a_page_is_fetched_one_row_long_and_hands_on_the_last_key():
    class Request:
        page_size, page_token = 2, ""

    rows = list(range(10, 15))
    page = pagination.start(Request(), {"list": "n"}, int)
    assert (page.position, page.limit) == (None, 3)
    got, token = page.finish(rows[:page.limit], lambda r: r)
    assert got == [10, 11] and pagination.decode(token, {"list": "n"}, int) == 11
    Request.page_token = token
    page = pagination.start(Request(), {"list": "n"}, int)
    assert page.position == 11
    got, token = page.finish([12], lambda r: r)  # fewer than a page: the last one
    assert (got, token) == ([12], "")
    with pytest.raises(InvalidArgument, match="different query"):
        pagination.start(Request(), {"list": "other"}, int)


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/abs", "%2e%2e/x", "a\\b", "a//b", "a/./b", "x#y", "x?y",
                                  "", "a\x00b", ".git/config", "C:/x"])
def test_unsafe_paths_are_refused(path):
    with pytest.raises(InvalidArgument):
        safe_relative_path(path)


def test_safe_paths_are_kept_and_symlinks_out_are_refused(tmp_path):
    assert safe_relative_path("tokenizer/vocab.json") == "tokenizer/vocab.json"
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    assert confined(root, "a/b.json") == (root / "a/b.json").resolve()
    with pytest.raises(InvalidArgument, match="link"):
        confined(root, "link/escape.json")


def test_keys_are_stored_hashed_and_map_to_roles(tmp_path):
    path = tmp_path / "keys.json"
    key = auth.add_key(path, "ci", "editor")
    assert key not in path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    store = auth.KeyStore(path)
    assert store.lookup(key) == auth.Principal("ci", auth.Role.EDITOR)
    assert store.lookup("llm_other") is None
    assert auth.Principal("x", auth.Role.APPROVER).has(auth.Role.EDITOR)
    assert not auth.Principal("x", auth.Role.REVIEWER).has(auth.Role.EDITOR)
    with pytest.raises(InvalidArgument):
        auth.add_key(path, "x", "superuser")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_blob_store_stores_only_verified_content(tmp_path):
    store = BlobStore(str(tmp_path / "blobs"))
    data = os.urandom(3000)
    w = store.writer(max_bytes=10_000)
    w.write(data[:1000])
    w.write(data[1000:])
    assert w.commit(_digest(data), len(data)) is True
    assert b"".join(store.read(_digest(data))) == data and store.size(_digest(data)) == 3000
    again = store.writer(10_000)
    again.write(data)
    assert again.commit(_digest(data), len(data)) is False  # already there
    lying = store.writer(10_000)
    lying.write(data)
    with pytest.raises(DataLoss):
        lying.commit(_digest(b"other"), len(data))
    big = store.writer(max_bytes=100)
    with pytest.raises(ResourceExhausted):
        big.write(os.urandom(101))
    assert not list(Path(store.spool_dir).iterdir())
    assert len(list((tmp_path / "blobs").glob("sha256/*/*"))) == 1


def test_blob_store_through_fsspec_url(tmp_path):
    store = BlobStore(f"memory://llmops-test-{os.getpid()}", spool_dir=tmp_path / "spool")
    data = b"hello blobs"
    w = store.writer(100)
    w.write(data)
    w.commit(_digest(data), len(data))
    assert store.exists(_digest(data)) and b"".join(store.read(_digest(data))) == data


def test_torch_processes_wait_passively_unless_told_otherwise():
    from llmops.core import cpu

    env = cpu.torch_thread_env({})
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["OMP_NUM_THREADS"] == str(cpu.cores()) == env["MKL_NUM_THREADS"]
    assert cpu.torch_thread_env({"LLMOPS_TORCH_THREADS": "1"})["OMP_NUM_THREADS"] == "1"
    given = cpu.torch_thread_env({"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "3"})
    assert "OMP_WAIT_POLICY" not in given and "OMP_NUM_THREADS" not in given  # the operator's settings win
    assert cpu.may_tune_threads(env)  # nobody chose a count: the model server may measure one
    assert not cpu.may_tune_threads(given) and not cpu.may_tune_threads(cpu.torch_thread_env({"LLMOPS_TORCH_THREADS": "2"}))


def test_long_lived_objects_are_frozen_and_new_garbage_is_still_collected():
    import gc
    import weakref

    from llmops.core import heap

    class Node:
        pass

    kept = [Node() for _ in range(100)]
    try:
        assert heap.freeze_long_lived() >= len(kept)  # start-up objects leave the collector's generations
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle made after start-up: only the cyclic collector frees it
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
