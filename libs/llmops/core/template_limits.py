"""The bounds and kinds of user-authored templates, without Jinja2: a service that only sends
templates to its render workers (`sandbox.RenderPool`) need not load Jinja2 itself (9 MiB)."""

from __future__ import annotations

MAX_OUTPUT_CHARS = 200_000
TIME_LIMIT_S = 1.0
PROMPT = "prompt"  # prompt templates: strict (an undefined variable is an error)
CHAT = "chat"  # model chat templates, rendered as transformers renders them


def too_slow(where: str, time_limit_s: float) -> str:
    return f"{where}: rendering took longer than {time_limit_s:g} s and was stopped"
