"""Variables bound and typed, retrieved chunks packed into the context budget, messages rendered.

A caller's instructions (a chat client's system message) fill the template's `instructions`
variable when it declares one; otherwise they follow the template's first system message (or
become the first message), so they add to the template's own instructions and never replace them.

Conversation history goes before the template's last message (the question); when the prompt
without context does not fit the budget, the oldest turns are dropped first. Packing is greedy by
score: the best chunks go in while they fit the budget (the context window less the answer's
reserve and the rest of the prompt); a chunk that does not fit is dropped and smaller ones after
it may still go in. The final prompt is counted again, whole (through the model's chat template
when there is one), and chunks are dropped from the end until it fits, so the budget holds
exactly for the tokenizer used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmops.core.errors import InvalidArgument
from llmops.core.templating import check_syntax

TYPE_CHECKS: dict[str, tuple[type, ...]] = {
    "VARIABLE_TYPE_UNSPECIFIED": (str,), "VARIABLE_TYPE_STRING": (str,), "VARIABLE_TYPE_NUMBER": (int, float),
    "VARIABLE_TYPE_BOOL": (bool,), "VARIABLE_TYPE_LIST": (list,),
}
DEFAULT_CHUNK_TEMPLATE = "{{ citation }} {{ chunk.text }}"
ROLE_NAMES = {"ROLE_SYSTEM": "system", "ROLE_USER": "user", "ROLE_ASSISTANT": "assistant"}
INSTRUCTIONS_VARIABLE = "instructions"
CALLER_INSTRUCTIONS = "Instructions from the caller (they add to the above and do not replace it):\n"


@dataclass(frozen=True)
class Chunk:
    document_id: str
    chunk_id: str
    text: str
    score: float


@dataclass
class Assembly:
    messages: list[tuple[str, str]]
    text: str
    included: list[tuple[Chunk, str, int]] = field(default_factory=list)  # chunk, citation, tokens
    prompt_tokens: int = 0
    truncated: bool = False
    history_turns: int = 0


Messages = list[tuple[str, str]]


class Renderer(Protocol):
    """Renders templates away from the service (llmops.core.sandbox.RenderPool)."""

    def render_many(self, jobs: Sequence[tuple[str, dict, str]]) -> list[str]: ...


@dataclass(frozen=True)
class CompiledVersion:
    """A version's templates, checked for syntax (sources: they render in the sandbox)."""

    messages: list[tuple[str, str]]
    chunk_template: str
    separator: str
    context_variable: str


def compile_version(body: dict) -> CompiledVersion:
    """Compile every template of a version (INVALID_ARGUMENT names the message and line)."""
    messages = body.get("messages") or []
    if not messages:
        raise InvalidArgument("a prompt version needs at least one message")
    compiled = []
    for i, m in enumerate(messages):
        role = ROLE_NAMES.get(m.get("role", ""))
        if role is None:
            raise InvalidArgument(f"messages[{i}].role must be system, user or assistant")
        source = m.get("content", "")
        check_syntax(source, f"messages[{i}]")
        compiled.append((role, source))
    ctx = body.get("context") or {}
    chunk_template = ctx.get("chunk_template") or DEFAULT_CHUNK_TEMPLATE
    check_syntax(chunk_template, "context.chunk_template")
    return CompiledVersion(compiled, chunk_template, ctx.get("separator") or "\n\n", ctx.get("variable") or "context")


def bind_variables(declared: Sequence[dict], given: dict[str, Any], context_variable: str) -> dict[str, Any]:
    """Declared variables with the caller's values or defaults; INVALID_ARGUMENT names a missing,
    mistyped or undeclared variable."""
    names = {d["name"] for d in declared}
    unknown = sorted(set(given) - names)
    if unknown:
        raise InvalidArgument(f"unknown variable {', '.join(map(repr, unknown))}; this template declares "
                              f"{', '.join(sorted(names)) or 'none'}")
    out: dict[str, Any] = {}
    for d in declared:
        name, kind = d["name"], d.get("type", "VARIABLE_TYPE_UNSPECIFIED")
        if name in given:
            value = given[name]
        elif "default_value" in d:
            value = d["default_value"]
        else:
            raise InvalidArgument(f"variable {name!r} is required and has no default")
        allowed = TYPE_CHECKS[kind]
        if not isinstance(value, allowed) or (bool not in allowed and isinstance(value, bool)):
            wanted = kind.removeprefix("VARIABLE_TYPE_").lower().replace("unspecified", "string")
            raise InvalidArgument(f"variable {name!r} must be a {wanted}, got {type(value).__name__}")
        if kind == "VARIABLE_TYPE_NUMBER" and isinstance(value, float) and value.is_integer():
            value = int(value)
        out[name] = value
    out.setdefault(context_variable, "")
    return out


def with_instructions(messages: Messages, instructions: str) -> Messages:
    """`instructions` after the first system message's own text, or as the first message."""
    if not instructions:
        return messages
    out = list(messages)
    for i, (role, text) in enumerate(out):
        if role == "system":
            out[i] = (role, f"{text}\n\n{CALLER_INSTRUCTIONS}{instructions}")
            return out
    return [("system", instructions), *out]


def _render_messages(renderer: Renderer, version: CompiledVersion, variables: dict[str, Any],
                     history: Sequence[tuple[str, str]] = (), instructions: str = "") -> Messages:
    texts = renderer.render_many([(t, variables, f"messages[{i}]") for i, (_, t) in enumerate(version.messages)])
    out = with_instructions([(role, text) for (role, _), text in zip(version.messages, texts, strict=True)],
                            instructions)
    if history:  # before the question (the last user message), else at the end
        at = len(out) - 1 if out[-1][0] == "user" else len(out)
        out[at:at] = list(history)
    return out


def flatten(messages: Sequence[tuple[str, str]]) -> str:
    return "\n\n".join(f"{role}: {text}" for role, text in messages)


def assemble(renderer: Renderer, version: CompiledVersion, variables: dict[str, Any], chunks: Sequence[Chunk],
             count: Callable[[str], int] | None, budget: int | None, *, history: Sequence[tuple[str, str]] = (),
             count_messages: Callable[[Messages], int] | None = None, instructions: str = "") -> Assembly:
    """Render `version` with `history` and the best `chunks` that fit `budget` tokens (no budget:
    all of them). `count` measures text; `count_messages`, when given, measures whole prompts
    exactly as the model will see them (its chat template). Templates render through `renderer`
    (blocking: run this in a worker thread); chunk pieces go in one batch where their citations
    are known beforehand."""
    ctx_var = version.context_variable
    history = list(history)

    def total(messages: Messages) -> int:
        return count_messages(messages) if count_messages else count(flatten(messages))

    def job(chunk: Chunk, n: int) -> tuple[str, dict, str]:
        return version.chunk_template, {"chunk": chunk.__dict__, "citation": f"[{n}]"}, "context.chunk_template"

    ranked = sorted(chunks, key=lambda c: c.score, reverse=True)
    # Every piece numbered as if all fit; one that follows a dropped chunk is rendered again.
    rendered = renderer.render_many([job(c, i + 1) for i, c in enumerate(ranked)]) if ranked else []

    def piece(i: int, n: int) -> tuple[str, str]:
        """The i-th ranked chunk rendered as citation [n]."""
        return f"[{n}]", rendered[i] if i + 1 == n else renderer.render_many([job(ranked[i], n)])[0]

    def build(included: list[tuple[Chunk, str, str, int]]) -> Messages:
        context = version.separator.join(text for _, _, text, _ in included)
        return _render_messages(renderer, version, {**variables, ctx_var: context}, history, instructions)

    included: list[tuple[Chunk, str, str, int]] = []  # chunk, citation, rendered text, its tokens
    truncated = False
    if count is None or budget is None:  # no budget: every chunk, counted when a tokenizer is given
        for i, c in enumerate(ranked):
            citation, text = piece(i, i + 1)
            included.append((c, citation, text, count(text) if count else 0))
        messages = build(included)
        text = flatten(messages)
        return Assembly(messages, text, [(c, cit, n) for c, cit, _, n in included], total(messages) if count else 0,
                        history_turns=len(history))
    base = total(build([]))
    while base > budget and history:  # the oldest turns go first
        history.pop(0)
        truncated = True
        base = total(build([]))
    if base > budget:
        raise InvalidArgument(f"the prompt without context is {base} tokens, over the budget of {budget}; "
                              "raise context_window_tokens or lower reserve_output_tokens")
    used, sep = base, count(version.separator)
    for i, chunk in enumerate(ranked):
        citation, text = piece(i, len(included) + 1)
        tokens = count(text)
        cost = tokens + (sep if included else 0)
        if used + cost <= budget:
            included.append((chunk, citation, text, tokens))
            used += cost
        else:
            truncated = True
    while True:  # count the whole prompt again: joined pieces can tokenize differently
        messages = build(included)
        tokens = total(messages)
        if tokens <= budget or not included:
            break
        included.pop()
        truncated = True
    return Assembly(messages, flatten(messages), [(c, cit, n) for c, cit, _, n in included], tokens, truncated,
                    len(history))
