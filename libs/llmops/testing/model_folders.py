"""Model folders for tests: a Hugging Face-shaped folder of a given size, a minimal safetensors
file, and the digests of a folder's files."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path


def safetensors_bytes(payload: bytes) -> bytes:
    """A minimal valid safetensors file holding one uint8 tensor."""
    header = json.dumps({"w": {"dtype": "U8", "shape": [len(payload)], "data_offsets": [0, len(payload)]}}).encode()
    return struct.pack("<Q", len(header)) + header + payload


def make_model_folder(root: Path, total_bytes: int = 10 * 1024 * 1024) -> Path:
    """A Hugging Face-shaped folder of about `total_bytes`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    (root / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE"}}))
    (root / "generation_config.json").write_text("{}")
    (root / "model.safetensors").write_bytes(safetensors_bytes(os.urandom(total_bytes)))
    return root


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def folder_digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256(p.read_bytes()) for p in root.rglob("*") if p.is_file()}
