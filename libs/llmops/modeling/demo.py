"""The demo model: a byte-level BPE tokenizer and a small Llama-shaped causal LM (about 5 M
parameters) trained from scratch on text kept in the repository (the project's `docs/`), in a
few minutes on two CPU cores. The result is an ordinary Hugging Face folder (config.json,
model.safetensors, tokenizer.json, tokenizer_config.json with a chat template), so everything
that serves or tunes it also accepts any other causal-LM folder.

Each markdown section becomes both plain text and a chat turn (the heading as the question, the
section as the answer, ending with the end-of-turn token), so the model learns the chat format
and when to stop."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
END = "<|end|>"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@dataclass(frozen=True)
class DemoSpec:
    """Shape and training budget; the defaults are the demo model, tests shrink `steps`."""

    vocab_size: int = 4096
    hidden_size: int = 256
    layers: int = 4
    heads: int = 4
    context_window: int = 512
    seq_len: int = 128
    batch_size: int = 8
    steps: int = 300
    lr: float = 3e-3
    seed: int = 1234


@dataclass(frozen=True)
class DemoResult:
    folder: Path
    parameters: int
    first_loss: float
    final_loss: float
    train_seconds: float
    tokens_seen: int


def corpus_documents(root: Path) -> list[str]:
    """Plain sections and chat-formatted sections of every markdown file under `root`."""
    out = []
    for path in sorted(root.glob("**/*.md")):
        text = path.read_text(encoding="utf-8")
        out.append(text)
        for section in re.split(r"\n(?=#{1,3} )", text):
            heading, _, body = section.partition("\n")
            heading, body = heading.lstrip("# ").strip(), body.strip()
            if heading and len(body) > 40:
                out.append(f"<|user|>\n{heading}?<|end|>\n<|assistant|>\n{body[:600]}<|end|>\n")
    return out


def train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return tok


def build(root: Path, folder: Path, spec: DemoSpec = DemoSpec(),
          progress: Callable[[int, float], None] | None = None) -> DemoResult:
    """Train the tokenizer and the model on the markdown under `root`, save both into `folder`.
    `progress(step, loss)` is called after every step."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    random.seed(spec.seed)
    torch.manual_seed(spec.seed)
    texts = corpus_documents(root)
    if not texts:
        raise ValueError(f"no markdown text under {root} to train on")
    raw = train_tokenizer(texts, spec.vocab_size)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<|bos|>", eos_token=END,
                                        pad_token="<|pad|>", chat_template=CHAT_TEMPLATE)
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
    data = torch.tensor(ids, dtype=torch.long)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=spec.hidden_size, intermediate_size=spec.hidden_size * 8 // 3,
        num_hidden_layers=spec.layers, num_attention_heads=spec.heads, num_key_value_heads=spec.heads,
        max_position_embeddings=spec.context_window, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    optim = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=spec.lr, total_steps=spec.steps, pct_start=0.1)
    model.train()
    first = last = float("nan")
    started = time.monotonic()
    span = spec.seq_len + 1
    for step in range(1, spec.steps + 1):
        starts = torch.randint(0, max(1, len(data) - span), (spec.batch_size,))
        batch = torch.stack([data[s:s + span] for s in starts.tolist()])
        loss = model(input_ids=batch[:, :-1], labels=batch[:, :-1]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        sched.step()
        optim.zero_grad(set_to_none=True)
        last = loss.item()
        first = last if step == 1 else first
        if progress:
            progress(step, last)
    elapsed = time.monotonic() - started
    model.eval()
    model.generation_config.max_new_tokens = 128
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return DemoResult(folder, sum(p.numel() for p in model.parameters()), first, last, elapsed,
                      spec.steps * spec.batch_size * spec.seq_len)
