"""Rendering templates safely. Templates are authored by editors, values come from callers:

- Jinja2's sandbox (`ImmutableSandboxedEnvironment`, jinja2 >= 3.1.6) refuses attribute tricks
  such as `''.__class__.__mro__` and `|attr('format')`;
- caller values are only ever variables, so `{{ ... }}` inside a value comes out literally;
- `*` and `**` are bounded (no gigabyte strings), output is capped, and rendering stops once it
  runs past its time limit (a tracer on the template's own frames checks the clock);
- errors become INVALID_ARGUMENT naming the variable or the template line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from llmops.core.errors import InvalidArgument

MAX_OUTPUT_CHARS = 200_000
MAX_SEQUENCE = 100_000  # longest string or list that `*` may build
MAX_EXPONENT = 64
TIME_LIMIT_S = 1.0


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


ENV = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
TEMPLATE_FILE = "<template>"


def compile_template(source: str, where: str) -> jinja2.Template:
    """The compiled template; INVALID_ARGUMENT with the line of a syntax error."""
    try:
        return ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise InvalidArgument(f"{where}: template syntax error on line {exc.lineno}: {exc.message}") from None


def render(template: jinja2.Template, variables: Mapping[str, Any], where: str,
           time_limit_s: float = TIME_LIMIT_S, max_chars: int = MAX_OUTPUT_CHARS) -> str:
    """Render with bounded time and output (run it in a worker thread: it blocks)."""
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
        raise InvalidArgument(f"{where}: rendering took longer than {time_limit_s:g} s and was stopped") from None
    except UndefinedError as exc:
        if "unsafe" in (exc.message or ""):
            raise InvalidArgument(f"{where}: refused by the template sandbox: {exc.message}") from None
        raise InvalidArgument(f"{where}: {exc.message}; pass it as a variable or give it a default") from None
    except SecurityError as exc:
        raise InvalidArgument(f"{where}: refused by the template sandbox: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, OverflowError) as exc:
        raise InvalidArgument(f"{where}: {type(exc).__name__}: {exc}") from None
    finally:
        sys.settrace(previous)
    return "".join(pieces)
