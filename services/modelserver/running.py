"""The running batch of continuous batching: rows decoding together over one KV cache.

Rows are left-padded to a common width: each row's real tokens end at the last column, and
`mask` marks which columns are real. Rows arrive and leave between decode steps:

- `join` puts freshly prefilled rows beside the running ones, padding whichever cache is
  narrower on the left (zeros, masked out), so a request starts at the next step instead of
  waiting for the batch to finish;
- `keep` drops finished rows and then the leading columns no remaining row uses, so the cache
  shrinks back when a long prompt leaves.

Positions are per row (`positions`: the next token's position), so padding never shifts a row's
rotary positions. Joining needs plain `DynamicLayer` caches (full attention); a model with other
cache layers (sliding windows, linear attention) or an engine that keeps its own cache has
`joinable` False, and the scheduler then starts rows only when the batch is empty."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from services.modelserver.sampling import RowSampler, TextStream


@dataclass
class Row:
    """One request's row: its text so far, its random stream and its timings."""

    job: object  # engine.Job
    stream: TextStream
    generator: torch.Generator | None
    started: float = field(default_factory=time.monotonic)
    first: float = 0.0
    last: float = 0.0
    gaps: list[float] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.job.sampling.max_tokens - len(self.stream.ids)


def _layers(cache) -> list | None:
    """The cache's layers when every one is a plain full-attention `DynamicLayer`, else None."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not DynamicLayer for layer in layers):
        return None
    return list(layers)


def _pad_left(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing <= 0:
        return t
    pad = [0, 0] * (t.dim() - 1 - dim % t.dim()) + [missing, 0]
    return F.pad(t, pad)


@dataclass
class Batch:
    rows: list[Row]
    cache: object  # transformers DynamicCache
    mask: torch.Tensor  # [rows, width], 1 where a row has a real token
    positions: torch.Tensor  # [rows, 1], the position of each row's next token
    logits: torch.Tensor  # [rows, vocabulary], the next token's logits
    _sampler: RowSampler | None = None

    @property
    def joinable(self) -> bool:
        return _layers(self.cache) is not None

    @property
    def sampler(self) -> RowSampler:
        if self._sampler is None:  # rebuilt only when the rows change
            self._sampler = RowSampler([r.job.sampling for r in self.rows], [r.generator for r in self.rows],
                                       self.logits.device)
        return self._sampler

    def join(self, other: Batch) -> Batch:
        """This batch's rows followed by `other`'s, over one cache."""
        mine, theirs = _layers(self.cache), _layers(other.cache)
        if mine is None or theirs is None:
            raise ValueError("this model's cache cannot take rows mid-batch")
        width = max(self.mask.shape[1], other.mask.shape[1])
        for a, b in zip(mine, theirs, strict=True):
            a.keys = torch.cat([_pad_left(a.keys, width, -2), _pad_left(b.keys, width, -2)])
            a.values = torch.cat([_pad_left(a.values, width, -2), _pad_left(b.values, width, -2)])
        self.mask = torch.cat([_pad_left(self.mask, width, 1), _pad_left(other.mask, width, 1)])
        self.positions = torch.cat([self.positions, other.positions])
        self.logits = torch.cat([self.logits, other.logits])
        self.rows = self.rows + other.rows
        self._sampler = None
        return self

    def keep(self, indices: list[int]) -> None:
        """Keep only these rows (in this order), then trim columns no row uses any more."""
        if len(indices) == len(self.rows):
            return
        index = torch.tensor(indices, dtype=torch.long, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask = self.mask[index]
        self.positions = self.positions[index]
        self.logits = self.logits[index]
        self.rows = [self.rows[i] for i in indices]
        self._sampler = None
        used = self.mask.any(0).nonzero()
        start = int(used[0]) if len(used) else 0
        layers = _layers(self.cache)
        if start and layers is not None:
            for layer in layers:
                layer.keys = layer.keys[:, :, start:]
                layer.values = layer.values[:, :, start:]
            self.mask = self.mask[:, start:]
