"""Per-request sampling and streamed detokenisation, independent of the model: each row of a
batch keeps its own temperature, top_p, seed and stop sequences."""

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


def sample(logits: torch.Tensor, params: Sampling, generator: torch.Generator | None) -> int:
    """One token id from a row of logits."""
    if params.temperature <= 0 or params.top_p <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits.float() / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_p, order = probs.sort(descending=True)
        keep = sorted_p.cumsum(-1) - sorted_p < params.top_p  # the smallest set reaching top_p
        sorted_p = sorted_p * keep
        return int(order[torch.multinomial(sorted_p / sorted_p.sum(), 1, generator=generator)])
    return int(torch.multinomial(probs, 1, generator=generator))


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
