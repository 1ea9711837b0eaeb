"""Checks that a folder is a loadable Hugging Face causal language model before anything uploads
or serves it: a `config.json` naming a `*ForCausalLM` architecture, weights as safetensors only
(never pickles), and a fast tokenizer (`tokenizer.json`). Reads JSON only; imports no torch."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from llmops.core.errors import InvalidArgument

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


@dataclass(frozen=True)
class ModelFolderInfo:
    architecture: str
    model_type: str
    context_window: int
    vocab_size: int
    weight_files: tuple[str, ...]
    has_chat_template: bool


def context_window(config: dict) -> int:
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        if isinstance(config.get(key), int) and config[key] > 0:
            return config[key]
    return 0


def inspect_folder(folder: Path | str) -> ModelFolderInfo:
    """INVALID_ARGUMENT naming what is missing when `folder` is not a causal-LM folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidArgument(f"{folder} is not a folder")
    try:
        config = json.loads((folder / "config.json").read_text())
    except FileNotFoundError:
        raise InvalidArgument(f"{folder} has no config.json; it is not a Hugging Face model folder") from None
    except ValueError as exc:
        raise InvalidArgument(f"{folder}/config.json is not valid JSON: {exc}") from None
    archs = [a for a in config.get("architectures") or [] if a.endswith("ForCausalLM")]
    if not archs:
        raise InvalidArgument(f"{folder}/config.json names no *ForCausalLM architecture "
                              f"(found {config.get('architectures')}); only causal language models can be served")
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    weights = tuple(sorted(p.name for p in folder.glob("*.safetensors")))
    if not weights:
        hint = f" (found {', '.join(pickles)}: convert them to safetensors)" if pickles else ""
        raise InvalidArgument(f"{folder} has no *.safetensors weights{hint}")
    if pickles:
        raise InvalidArgument(f"{folder} also holds pickled weights ({', '.join(pickles)}); remove them, "
                              "only safetensors are accepted")
    if not (folder / "tokenizer.json").is_file():
        raise InvalidArgument(f"{folder} has no tokenizer.json (a fast tokenizer is needed to count tokens)")
    tok_config = {}
    if (folder / "tokenizer_config.json").is_file():
        tok_config = json.loads((folder / "tokenizer_config.json").read_text())
    has_template = bool(tok_config.get("chat_template")) or (folder / "chat_template.jinja").is_file()
    return ModelFolderInfo(archs[0], str(config.get("model_type", "")), context_window(config),
                           int(config.get("vocab_size") or 0), weights, has_template)
