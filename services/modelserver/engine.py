"""The inference engine: a causal LM from a Hugging Face folder, run through DeepSpeed-inference
(kernel injection in fp16 on CUDA; fp32 without kernel injection on CPU, where the kernels do
not exist), with plain transformers only as a logged fallback when DeepSpeed cannot initialise.

`run_batch` decodes several requests together (left-padded, one KV cache), each row with its own
sampling, stop sequences and cancellation, and reports every token as it is produced. Our own
decode loop, rather than `generate`, is what lets a batch stream per row, stop a cancelled row
at the next token, and time each token."""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from llmops.modeling.folder import inspect_folder
from services.modelserver.sampling import Sampling, TextStream, logprobs, penalize, sample

log = logging.getLogger(__name__)


class RequestError(ValueError):
    """A request this model cannot run (the caller's to fix)."""


@dataclass
class Result:
    finish_reason: str  # stop | length | cancelled
    input_tokens: int
    output_tokens: int
    queue_s: float
    ttft_s: float
    total_s: float
    token_times_s: list[float]  # gaps between consecutive tokens

    def as_dict(self) -> dict:
        gaps = self.token_times_s
        return {
            "finish_reason": self.finish_reason, "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens, "queue_ms": self.queue_s * 1e3, "ttft_ms": self.ttft_s * 1e3,
            "total_ms": self.total_s * 1e3,
            "per_token_ms": (sum(gaps) / len(gaps) * 1e3) if gaps else 0.0,
            "token_times_ms": [round(g * 1e3, 3) for g in gaps],
        }


@dataclass
class Job:
    """One request. `emit(kind, payload)` is called from the engine thread: ("delta", str) for
    text, ("logprob", dict) per token when asked for, then ("done", Result) or ("error", str)
    once."""

    prompt_ids: list[int]
    sampling: Sampling
    emit: Callable[[str, object], None]
    cancelled: threading.Event = field(default_factory=threading.Event)
    enqueued: float = field(default_factory=time.monotonic)
    cancel_at: float = 0.0

    def cancel(self) -> None:
        """Stop at the next token (callable from any thread)."""
        if not self.cancelled.is_set():
            self.cancel_at = time.monotonic()
            self.cancelled.set()


def pick_device() -> str:
    wanted = os.environ.get("LLMOPS_MODELSERVER_DEVICE", "auto")
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return wanted


def _deepspeed(model, device: str):
    """(module to call, backend description); plain transformers when DeepSpeed fails."""
    if os.environ.get("LLMOPS_MODELSERVER_ENGINE", "deepspeed") != "deepspeed":
        return model, "transformers"
    try:
        os.environ.setdefault("DS_ACCELERATOR", "cuda" if device == "cuda" else "cpu")
        import deepspeed

        if device == "cuda":
            engine = deepspeed.init_inference(model, dtype=torch.float16, replace_with_kernel_inject=True)
            return engine, "deepspeed-inference (kernel injection, fp16, cuda)"
        engine = deepspeed.init_inference(model, dtype=torch.float32, replace_with_kernel_inject=False)
        return engine, "deepspeed-inference (fp32, cpu)"
    except Exception as exc:  # noqa: BLE001 - any failure falls back, loudly
        log.warning("DeepSpeed-inference failed to initialise (%s: %s); falling back to plain transformers",
                    type(exc).__name__, exc)
        return model, "transformers (DeepSpeed fallback)"


class Engine:
    def __init__(self, name: str, model, tokenizer, device: str, backend: str, context_window: int):
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.backend = backend
        self.context_window = context_window
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        self.eos_ids = self._eos_ids()
        # Only the last position's logits are sampled: models that can skip the rest of the vocabulary
        # projection do (for a 400-token prompt on SmolLM2 that projection was a sixth of the prefill).
        self._last_logits_only = ({"logits_to_keep": 1} if "logits_to_keep" in
                                  inspect.signature(self._hf_model().forward).parameters else {})
        self.last_cancel_s: float | None = None  # from a cancel request to its row stopping
        self.last_cancel_tokens: int | None = None  # tokens that row had generated when it stopped

    @classmethod
    def load(cls, folder: Path | str, name: str = "", device: str | None = None) -> Engine:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = Path(folder)
        info = inspect_folder(folder)
        device = device or pick_device()
        dtype = torch.float16 if device == "cuda" else torch.float32
        started = time.monotonic()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, use_safetensors=True).eval()
        if device == "cuda":
            model = model.to(device)
        module, backend = _deepspeed(model, device)
        log.info("loaded %s (%s, %d params) with %s in %.1f s", name or folder, info.architecture,
                 sum(p.numel() for p in model.parameters()), backend, time.monotonic() - started)
        return cls(name or str(folder), module, tokenizer, device, backend, info.context_window or 2048)

    def _eos_ids(self) -> set[int]:
        ids = set()
        for candidate in (self.tokenizer.eos_token_id, getattr(self._hf_model().generation_config, "eos_token_id", None)):
            if isinstance(candidate, int):
                ids.add(candidate)
            elif isinstance(candidate, list):
                ids.update(candidate)
        return ids

    def _hf_model(self):
        return getattr(self.model, "module", self.model)

    # -- prompts -------------------------------------------------------------------------------

    def encode(self, prompt: str = "", messages: list[dict] | None = None, render=None) -> list[int]:
        """Token ids of a raw prompt, or of chat messages through the model's chat template.
        `render(source, variables)` renders the template (a sandbox: templates come with uploaded
        models); without it, transformers renders it in this process."""
        if messages:
            if not self.tokenizer.chat_template:
                raise RequestError(f"{self.name} has no chat template; send a raw prompt instead of messages")
            if render is None:
                text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            else:
                specials = {k: v for k, v in self.tokenizer.special_tokens_map.items() if isinstance(v, str)}
                text = render(self.tokenizer.get_chat_template(),
                              {**specials, "messages": messages, "add_generation_prompt": True})
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if not prompt:
            raise RequestError("send a prompt or messages")
        return self.tokenizer(prompt)["input_ids"]

    def check(self, prompt_ids: list[int], sampling: Sampling) -> None:
        if sampling.max_tokens < 1:
            raise RequestError("max_tokens must be at least 1")
        need = len(prompt_ids) + sampling.max_tokens
        if need > self.context_window:
            raise RequestError(f"the prompt has {len(prompt_ids)} tokens and max_tokens is {sampling.max_tokens}: "
                               f"{need} tokens exceed the context window of {self.context_window}")

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def stream_decoder(self):
        """token id -> the text it adds, decoding incrementally (one token's work per token); None
        for a tokenizer whose decode cleans up spaces, which only a whole decode reproduces."""
        raw = getattr(self.tokenizer, "_tokenizer", None)
        if raw is None or getattr(self.tokenizer, "clean_up_tokenization_spaces", False):
            return None
        from tokenizers.decoders import DecodeStream

        stream = DecodeStream(skip_special_tokens=True)
        return lambda token_id: stream.step(raw, token_id)

    def info(self) -> dict:
        return {"name": self.name, "backend": self.backend, "device": self.device,
                "context_window": self.context_window}

    # -- decoding ------------------------------------------------------------------------------

    def _forward(self, ids, mask, positions, cache):
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
                         **self._last_logits_only)
        return out.logits[:, -1, :], out.cache

    @torch.inference_mode()
    def run_batch(self, jobs: list[Job]) -> None:
        """Decode `jobs` together until every row has finished; never raises (a failure is
        reported to every row as an error)."""
        try:
            self._run(jobs)
        except Exception as exc:  # reported to each job; the engine thread goes on
            log.exception("batch of %d failed", len(jobs))
            for job in jobs:
                job.emit("error", f"generation failed: {type(exc).__name__}")

    def _run(self, jobs: list[Job]) -> None:
        from transformers import DynamicCache

        started = time.monotonic()
        width = max(len(j.prompt_ids) for j in jobs)
        ids = torch.full((len(jobs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(jobs), width), dtype=torch.long)
        for i, job in enumerate(jobs):  # left padding: every row's last token is at the end
            ids[i, width - len(job.prompt_ids):] = torch.tensor(job.prompt_ids)
            mask[i, width - len(job.prompt_ids):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        dev = self.device
        ids, mask, positions = ids.to(dev), mask.to(dev), positions.to(dev)
        streams = [TextStream(self.decode, job.sampling.stop, self.stream_decoder()) for job in jobs]
        generators = []
        for job in jobs:
            g = None
            if job.sampling.seed:
                g = torch.Generator().manual_seed(job.sampling.seed)
            generators.append(g)
        done: list[str | None] = [None] * len(jobs)
        first: list[float] = [0.0] * len(jobs)
        last: list[float] = [0.0] * len(jobs)
        gaps: list[list[float]] = [[] for _ in jobs]
        logits, cache = self._forward(ids, mask, positions, DynamicCache())
        while True:
            now = time.monotonic()
            logits = logits.float().cpu()
            nxt = []
            for i, job in enumerate(jobs):
                if done[i] is not None:
                    nxt.append(self.pad_id)
                    continue
                if job.cancelled.is_set():
                    done[i] = "cancelled"
                    self._finish(job, streams[i], done[i], started, first[i], gaps[i])
                    nxt.append(self.pad_id)
                    continue
                row = penalize(logits[i], job.sampling, streams[i].ids)
                token = sample(row, job.sampling, generators[i])
                nxt.append(token)
                if job.sampling.top_logprobs >= 0:
                    job.emit("logprob", self._logprob(row, token, job.sampling.top_logprobs))
                if first[i] == 0.0:
                    first[i] = now
                else:
                    gaps[i].append(now - last[i])
                last[i] = now
                if token in self.eos_ids:
                    done[i] = "stop"
                else:
                    delta = streams[i].push(token)
                    if delta:
                        job.emit("delta", delta)
                    if streams[i].stopped:
                        done[i] = "stop"
                    elif len(streams[i].ids) >= job.sampling.max_tokens:
                        done[i] = "length"
                if done[i] is not None:
                    self._finish(job, streams[i], done[i], started, first[i], gaps[i])
            if all(d is not None for d in done):
                return
            step = torch.tensor(nxt, dtype=torch.long, device=dev).unsqueeze(1)
            mask = torch.cat([mask, torch.ones((len(jobs), 1), dtype=torch.long, device=dev)], dim=1)
            positions = positions[:, -1:] + 1
            logits, cache = self._forward(step, mask, positions, cache)

    def _logprob(self, row: torch.Tensor, token: int, top: int) -> dict:
        chosen, best = logprobs(row, token, top)

        def entry(tid: int, value: float) -> dict:
            text = self.tokenizer.decode([tid])
            return {"token": text, "logprob": value, "bytes": list(text.encode())}

        return {**entry(token, chosen), "top_logprobs": [entry(t, v) for t, v in best]}

    def _finish(self, job: Job, stream: TextStream, reason: str, started: float, first: float,
                gaps: list[float]) -> None:
        if reason == "cancelled":
            self.last_cancel_s = time.monotonic() - job.cancel_at if job.cancel_at else None
            self.last_cancel_tokens = len(stream.ids)
        else:
            tail = stream.flush()
            if tail:
                job.emit("delta", tail)
        now = time.monotonic()
        generated = len(stream.ids) + (1 if reason == "stop" and not stream.stopped else 0)  # the EOS token
        job.emit("done", Result(reason, len(job.prompt_ids), generated, started - job.enqueued,
                                (first - job.enqueued) if first else 0.0, now - job.enqueued, gaps))

