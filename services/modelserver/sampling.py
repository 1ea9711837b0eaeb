"""Per-request sampling and streamed detokenisation, independent of the model: each row of a
batch keeps its own temperature, top_p, seed and stop sequences, and a step samples every row in
a few tensor operations on the model's device (`RowSampler`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Sampling:
    max_tokens: int = 64
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0  # 0: greedy
    stop: tuple[str, ...] = ()
    seed: int = 0  # 0: not seeded
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    top_logprobs: int = -1  # -1: no log probabilities; 0: the chosen token's only


def penalize(logits: torch.Tensor, params: Sampling, generated: list[int]) -> torch.Tensor:
    """OpenAI's presence and frequency penalties over the tokens generated so far."""
    if not generated or not (params.presence_penalty or params.frequency_penalty):
        return logits
    ids, counts = torch.tensor(generated).unique(return_counts=True)
    logits = logits.clone()
    logits[ids] -= params.presence_penalty + params.frequency_penalty * counts.to(logits.dtype)
    return logits


def logprobs(logits: torch.Tensor, token: int, top: int) -> tuple[float, list[tuple[int, float]]]:
    """The chosen token's log probability and the `top` most likely tokens with theirs."""
    lp = torch.log_softmax(logits.float(), dim=-1)
    best = lp.topk(top) if top else None
    return float(lp[token]), ([] if best is None else [(int(i), float(v)) for v, i in zip(best.values.tolist(), best.indices.tolist(), strict=True)])


class RowSampler:
    """Samples one token for every row of a batch at once.

    Greedy rows take the argmax; the others draw by the exponential race (argmax of p / E with
    E ~ Exp(1), which picks token i with probability p_i, as vLLM does) after temperature and
    top_p. A seeded row draws its noise from its own generator, so the same seed gives the same
    answer whatever else shares the batch; the other rows share one draw."""

    def __init__(self, rows: list[Sampling], generators: list[torch.Generator | None], device):
        self.greedy = torch.tensor([s.temperature <= 0 or s.top_p <= 0 for s in rows], device=device)
        self.all_greedy = bool(self.greedy.all())
        self.temperature = torch.tensor([s.temperature if s.temperature > 0 else 1.0 for s in rows],
                                        device=device).unsqueeze(1)
        # 2.0: never cut (a cumulative sum can round to just above 1.0)
        self.top_p = torch.tensor([s.top_p if s.top_p < 1 else 2.0 for s in rows], device=device).unsqueeze(1)
        self.any_top_p = any(0 < s.top_p < 1 for s in rows)
        self.generators = generators
        self.unseeded = torch.tensor([g is None for g in generators], device=device)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """Token ids [rows] from logits [rows, vocabulary]."""
        best = logits.argmax(-1)
        if self.all_greedy:
            return best
        probs = torch.softmax(logits.float() / self.temperature, dim=-1)
        if self.any_top_p:  # keep the smallest set of tokens whose probabilities reach top_p
            ordered, order = probs.sort(dim=-1, descending=True)
            ordered.masked_fill_(ordered.cumsum(-1) - ordered >= self.top_p, 0.0)
            probs = torch.zeros_like(probs).scatter_(-1, order, ordered)
        noise = torch.empty_like(probs)
        if bool(self.unseeded.any()):
            noise[self.unseeded] = torch.empty_like(noise[self.unseeded]).exponential_()
        for i, g in enumerate(self.generators):
            if g is not None:
                noise[i].exponential_(generator=g)
        return torch.where(self.greedy, best, (probs / noise).argmax(-1))


@dataclass
class TextStream:
    """Turns a growing list of token ids into text deltas. Holds back an incomplete UTF-8
    character and anything that could still become a stop sequence, and cuts at a stop.

    With `step` (token id -> the text it adds, e.g. a `tokenizers.decoders.DecodeStream`) the
    text grows by one token's worth at a time; without it, the whole output is decoded again at
    every token (quadratic in the answer's length: the fallback for tokenizers that clean up
    spaces on decode). Stop sequences are looked for only where a new one could begin."""

    decode: object  # ids -> text
    stop: tuple[str, ...] = ()
    step: object = None  # token id -> new text, or None
    ids: list[int] = field(default_factory=list)
    text: str = ""
    sent: int = 0  # characters already emitted
    stopped: bool = False

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        if self.step is not None:
            self.text += self.step(token_id) or ""
        else:
            self.text = self.decode(self.ids)
        text = self.text
        for s in self.stop:
            at = text.find(s, max(0, self.sent - len(s) + 1))
            if at >= 0:
                self.stopped = True
                return self._take(text[:at])
        if text.endswith("\ufffd"):  # a character split across tokens
            return ""
        hold = max((len(s) - 1 for s in self.stop), default=0)
        return self._take(text[:len(text) - hold] if hold else text)

    def flush(self) -> str:
        """What was held back, once generation ends without a stop."""
        return "" if self.stopped else self._take(self.text.rstrip("\ufffd"))

    def _take(self, text: str) -> str:
        if len(text) <= self.sent:
            return ""
        delta, self.sent = text[self.sent:], len(text)
        return delta
