"""The inference engine: a causal LM from a Hugging Face folder, run through DeepSpeed-inference
(kernel injection in fp16 on CUDA; fp32 without kernel injection on CPU, where the kernels do
not exist), with plain transformers only as a logged fallback when DeepSpeed cannot initialise.

`prefill` starts rows (left-padded, one KV cache) and `step` decodes one token for every row of a
running batch (`running.Batch`), each row with its own sampling, stop sequences and
cancellation, reporting every token as it is produced. Our own decode loop, rather than
`generate`, is what lets rows join and leave a running batch (continuous batching, see
`scheduler.py`), stream per row, stop a cancelled row at the next token, and time each token."""

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

from llmops.core import cpu
from llmops.modeling.folder import inspect_folder
from services.modelserver.running import Batch, Row
from services.modelserver.sampling import Sampling, TextStream, logprobs, penalize

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
    finished: bool = False  # "done" or "error" was emitted (set on the engine thread)
    on_end: Callable[[], None] | None = None  # the scheduler frees the job's row (called once, at the end)

    def end(self, kind: str, payload: object) -> None:
        """Emit the last event ("done" or "error") and free the row."""
        self.finished = True
        if self.on_end is not None:
            self.on_end()
        self.emit(kind, payload)

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
        self.threads = torch.get_num_threads()  # for decode steps (see tune_threads)
        self.prefill_threads = self.threads  # prompts are big matrices: every core

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

    # -- threads -------------------------------------------------------------------------------

    @torch.inference_mode()
    def tune_threads(self, rows: int, candidates: tuple[int, ...] | None = None) -> int:
        """Set (on the calling thread, the engine's) the torch thread count that decodes `rows`
        rows fastest, among 1 and every core, timed on this model; the count chosen. Prefill
        keeps every core (a 400-token prompt on SmolLM2 took 1.0 s on one thread, 0.6 s on two).

        A decode step is a few dozen small operations: for a small model, waking OpenMP threads
        for each costs more than they save (the demo model: 820 tokens/s on one thread, 595 on
        two), while a larger model's matrices are worth splitting. Only on CPU, and only when no
        count was set by hand (`llmops.core.cpu`)."""
        from transformers import DynamicCache

        if self.device != "cpu" or not cpu.may_tune_threads():
            return torch.get_num_threads()
        self.prefill_threads = torch.get_num_threads()
        candidates = candidates or tuple(sorted({1, self.prefill_threads}))
        if len(candidates) == 1:
            return candidates[0]
        ids = torch.full((rows, 16), self.pad_id, dtype=torch.long, device=self.device)
        mask = torch.ones_like(ids)
        positions = torch.arange(16, device=self.device).expand(rows, 16)
        timings = {}
        for threads in candidates * 2:  # twice each, interleaved: the best of two
            torch.set_num_threads(threads)
            _, cache = self._forward(ids, mask, positions, DynamicCache())
            step, m, pos = ids[:, -1:], torch.cat([mask, mask[:, -1:]], 1), positions[:, -1:] + 1
            started = time.perf_counter()
            for _ in range(4):
                self._forward(step, m, pos, cache)
                cache.crop(-1)
            elapsed = time.perf_counter() - started
            timings[threads] = min(timings.get(threads, elapsed), elapsed)
        best = min(timings, key=timings.get)
        torch.set_num_threads(best)
        log.info("%s decodes %d rows with %d torch thread(s) (4 steps: %s)", self.name, rows, best,
                 ", ".join(f"{k} thread(s) {v * 1e3:.1f} ms" for k, v in sorted(timings.items())))
        self.threads = best
        return best

    # -- decoding ------------------------------------------------------------------------------

    def _forward(self, ids, mask, positions, cache):
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
                         **self._last_logits_only)
        return out.logits[:, -1, :], out.cache

    def _generator(self, sampling: Sampling) -> torch.Generator | None:
        if not sampling.seed:
            return None
        return torch.Generator(device=self.device).manual_seed(sampling.seed)

    @torch.inference_mode()
    def prefill(self, jobs: list[Job]) -> Batch:
        """Run the prompts of `jobs` (left-padded, one forward pass): a batch ready to step."""
        from transformers import DynamicCache

        width = max(len(j.prompt_ids) for j in jobs)
        ids = torch.full((len(jobs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(jobs), width), dtype=torch.long)
        for i, job in enumerate(jobs):  # left padding: every row's last token is at the end
            ids[i, width - len(job.prompt_ids):] = torch.tensor(job.prompt_ids)
            mask[i, width - len(job.prompt_ids):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        dev = self.device
        rows = [Row(job, TextStream(self.decode, job.sampling.stop, self.stream_decoder()),
                    self._generator(job.sampling)) for job in jobs]
        mask = mask.to(dev)
        if self.prefill_threads != self.threads:
            torch.set_num_threads(self.prefill_threads)
        try:
            logits, cache = self._forward(ids.to(dev), mask, positions.to(dev), DynamicCache())
        finally:
            if self.prefill_threads != self.threads:
                torch.set_num_threads(self.threads)
        return Batch(rows, cache, mask, positions[:, -1:].to(dev) + 1, logits)

    @torch.inference_mode()
    def step(self, batch: Batch) -> Batch | None:
        """Sample one token for every row, report it, drop the rows that ended and run the others
        one position on; None once every row has ended."""
        now = time.monotonic()
        logits = batch.logits.float()
        for i, row in enumerate(batch.rows):  # penalties are rare: only their rows pay, row by row
            s = row.job.sampling
            if s.presence_penalty or s.frequency_penalty:
                logits[i] = penalize(logits[i], s, row.stream.ids)
        tokens = batch.sampler(logits).tolist()
        alive: list[int] = []
        for i, (row, token) in enumerate(zip(batch.rows, tokens, strict=True)):
            reason = self._advance(row, token, logits, i, now)
            if reason is None:
                alive.append(i)
            else:
                self._finish(row, reason)
        if not alive:
            return None
        batch.keep(alive)
        step = torch.tensor([tokens[i] for i in alive], dtype=torch.long, device=self.device).unsqueeze(1)
        batch.mask = torch.cat([batch.mask, torch.ones_like(step)], dim=1)
        batch.logits, batch.cache = self._forward(step, batch.mask, batch.positions, batch.cache)
        batch.positions = batch.positions + 1
        return batch

    def _advance(self, row: Row, token: int, logits: torch.Tensor, i: int, now: float) -> str | None:
        """Report `token` on `row`; the finish reason when the row ends here."""
        job, stream = row.job, row.stream
        if job.cancelled.is_set():
            return "cancelled"
        if job.sampling.top_logprobs >= 0:
            job.emit("logprob", self._logprob(logits[i], token, job.sampling.top_logprobs))
        if row.first == 0.0:
            row.first = now
        else:
            row.gaps.append(now - row.last)
        row.last = now
        if token in self.eos_ids:
            return "stop"
        delta = stream.push(token)
        if delta:
            job.emit("delta", delta)
        if stream.stopped:
            return "stop"
        return "length" if len(stream.ids) >= job.sampling.max_tokens else None

    def run_batch(self, jobs: list[Job]) -> None:
        """Decode `jobs` together until every row has finished; never raises (a failure is
        reported to every row as an error). The scheduler does the same step by step, letting
        rows join and leave."""
        try:
            batch = self.prefill(jobs)
            while batch is not None:
                batch = self.step(batch)
        except Exception as exc:  # noqa: BLE001 - reported to each job; the caller goes on
            self.fail(jobs, exc)

    def fail(self, jobs: list[Job], exc: Exception) -> None:
        log.error("generation of %d rows failed", len(jobs), exc_info=exc)
        for job in jobs:
            if not job.finished:
                try:
                    job.end("error", f"generation failed: {type(exc).__name__}")
                except Exception:  # a caller that is gone (its event loop closed) stops no one else
                    log.warning("could not report the failure to a request", exc_info=True)

    def _logprob(self, row: torch.Tensor, token: int, top: int) -> dict:
        chosen, best = logprobs(row, token, top)

        def entry(tid: int, value: float) -> dict:
            text = self.tokenizer.decode([tid])
            return {"token": text, "logprob": value, "bytes": list(text.encode())}

        return {**entry(token, chosen), "top_logprobs": [entry(t, v) for t, v in best]}

    def _finish(self, row: Row, reason: str) -> None:
        job, stream = row.job, row.stream
        if reason == "cancelled":
            self.last_cancel_s = time.monotonic() - job.cancel_at if job.cancel_at else None
            self.last_cancel_tokens = len(stream.ids)
        else:
            tail = stream.flush()
            if tail:
                job.emit("delta", tail)
        now = time.monotonic()
        generated = len(stream.ids) + (1 if reason == "stop" and not stream.stopped else 0)  # the EOS token
        job.end("done", Result(reason, len(job.prompt_ids), generated, row.started - job.enqueued,
                                (row.first - job.enqueued) if row.first else 0.0, now - job.enqueued, row.gaps))
