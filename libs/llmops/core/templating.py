"""Jinja2 templates authored by users (prompt templates, model chat templates), rendered with
bounds. This module renders in the current process; services never call `render_here` on a
template a user wrote: they go through `sandbox.RenderPool`, which runs it in a killable worker
process with a memory limit (the bounds here stop the common cases early and cleanly; the worker's
limits are what holds against the rest: a huge `**` or `%` is one C call no tracer can stop).

- Jinja2's sandbox (`ImmutableSandboxedEnvironment`, jinja2 >= 3.1.6) refuses attribute tricks
  such as `''.__class__.__mro__` and `|attr('format')`;
- caller values are only ever variables, so `{{ ... }}` inside a value comes out literally;
- `*` and `**` are bounded, output is capped, and rendering stops once it runs past its time
  limit (a tracer on the template's own frames checks the clock);
- errors become INVALID_ARGUMENT naming the variable or the template line.
"""

from __future__ import annotations

import datetime
import functools
import sys
import time
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from llmops.core.errors import InvalidArgument
from llmops.core.template_limits import CHAT, MAX_OUTPUT_CHARS, PROMPT, TIME_LIMIT_S, too_slow

MAX_SEQUENCE = 100_000  # longest string or list that `*` may build
MAX_EXPONENT = 64
TEMPLATE_FILE = "<template>"


class _TooSlow(Exception):
    pass


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def wrap_str_format(self, value):
        return None  # no sandboxed str.format either: is_safe_attribute refuses it

    def is_safe_attribute(self, obj, attr, value) -> bool:
        # str.format can reach attributes the sandbox guards; templates have no need for it.
        if attr in ("format", "format_map"):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponents above {MAX_EXPONENT} are not allowed in templates")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int) and len(seq) * n > MAX_SEQUENCE:
                    raise SecurityError(f"repeating a sequence past {MAX_SEQUENCE} items is not allowed in templates")
        return super().call_binop(context, operator, left, right)


def _raise_exception(message: str) -> None:
    raise TemplateError(message)  # chat templates call it to refuse a conversation they cannot render


def _strftime_now(fmt: str) -> str:
    return datetime.datetime.now().strftime(fmt)  # chat templates stamp today's date


def _environments() -> dict[str, jinja2.Environment]:
    # Chat templates get what transformers' apply_chat_template gives them.
    chat = _Environment(trim_blocks=True, lstrip_blocks=True)
    chat.globals.update(raise_exception=_raise_exception, strftime_now=_strftime_now)
    return {PROMPT: _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True), CHAT: chat}


ENVIRONMENTS = _environments()


def check_syntax(source: str, where: str) -> None:
    """INVALID_ARGUMENT with the line of a syntax error. Only parses: compiling would fold
    constant expressions (`"%0300000000d" % 1`, `'a'|center(10**8)`), which evaluates template
    code, so it happens in the sandbox worker, never in the service."""
    try:
        ENVIRONMENTS[PROMPT].parse(source)
    except TemplateSyntaxError as exc:
        raise InvalidArgument(f"{where}: template syntax error on line {exc.lineno}: {exc.message}") from None


@functools.lru_cache(maxsize=256)
def _cached(source: str, kind: str) -> jinja2.Template:
    return ENVIRONMENTS[kind].from_string(source)


def render_here(source: str, variables: Mapping[str, Any], where: str, kind: str = PROMPT,
                time_limit_s: float = TIME_LIMIT_S, max_chars: int = MAX_OUTPUT_CHARS, *,
                deadline: float | None = None) -> str:
    """Render in this process with bounded time and output (what a sandbox worker runs); a
    `deadline` (monotonic clock) shared by several renders replaces the time limit's own."""
    try:
        template = _cached(source, kind)
    except TemplateSyntaxError as exc:
        raise InvalidArgument(f"{where}: template syntax error on line {exc.lineno}: {exc.message}") from None
    if deadline is None:
        deadline = time.monotonic() + time_limit_s

    def tracer(frame, event, arg):
        # Only frames of compiled templates are traced, so the check costs little.
        if frame.f_code.co_filename != TEMPLATE_FILE:
            return None
        if time.monotonic() > deadline:
            raise _TooSlow
        return tracer

    pieces: list[str] = []
    size = 0
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        for piece in template.generate(**variables):
            size += len(piece)
            if size > max_chars:
                raise InvalidArgument(f"{where}: the rendered text passed {max_chars} characters; output is capped")
            if time.monotonic() > deadline:
                raise _TooSlow
            pieces.append(piece)
    except _TooSlow:
        raise InvalidArgument(too_slow(where, time_limit_s)) from None
    except UndefinedError as exc:
        if "unsafe" in (exc.message or ""):
            raise InvalidArgument(f"{where}: refused by the template sandbox: {exc.message}") from None
        raise InvalidArgument(f"{where}: {exc.message}; pass it as a variable or give it a default") from None
    except SecurityError as exc:
        raise InvalidArgument(f"{where}: refused by the template sandbox: {exc}") from None
    except TemplateError as exc:
        raise InvalidArgument(f"{where}: the template refused to render: {str(exc)[:300]}") from None
    except (TypeError, ValueError, ArithmeticError, OverflowError, LookupError) as exc:
        raise InvalidArgument(f"{where}: {type(exc).__name__}: {str(exc)[:300]}") from None
    finally:
        sys.settrace(previous)
    return "".join(pieces)
