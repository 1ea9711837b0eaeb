"""Packing history and chunks under a budget, with a word counter standing in for a tokenizer:
history goes before the question, the oldest turns are dropped first, and a whole-prompt counter
(the model's chat template) decides the final fit."""

from __future__ import annotations

import pytest

from llmops.core.errors import InvalidArgument
from services.prompt import assemble

BODY = {"messages": [{"role": "ROLE_SYSTEM", "content": "ctx: {{ context }}"},
                     {"role": "ROLE_USER", "content": "{{ question }}"}]}
CHUNKS = [assemble.Chunk("d1", "d1#0", "alpha beta gamma", 0.9), assemble.Chunk("d2", "d2#0", "delta epsilon", 0.5)]
RENDERER = None


@pytest.fixture(autouse=True)
def _renderer(render_pool):
    global RENDERER
    RENDERER = render_pool


HISTORY = [("user", "one two three four"), ("assistant", "five six seven eight")]


def words(text: str) -> int:
    return len(text.split())


def run(budget, history=HISTORY, count_messages=None):
    version = assemble.compile_version(BODY)
    return assemble.assemble(RENDERER, version, {"question": "what now", "context": ""}, CHUNKS, words, budget,
                             history=history, count_messages=count_messages)


def test_history_goes_between_the_system_message_and_the_question():
    out = run(None)
    assert [r for r, _ in out.messages] == ["system", "user", "assistant", "user"]
    assert out.messages[1][1] == "one two three four" and out.messages[-1][1] == "what now"
    assert out.history_turns == 2 and len(out.included) == 2


def test_oldest_turns_are_dropped_first_then_chunks():
    without_context = words(assemble.flatten(assemble.assemble(
        RENDERER, assemble.compile_version(BODY), {"question": "what now", "context": ""}, [], words, None,
        history=HISTORY).messages))
    roomy = run(without_context + 3)  # the history fits; only the best chunk that fits goes in
    assert roomy.history_turns == 2 and [c.chunk_id for c, _, _ in roomy.included] == ["d2#0"]
    out = run(without_context - 3)  # the prompt without context no longer fits: the oldest turn goes
    assert out.history_turns == 1 and out.messages[1] == ("assistant", "five six seven eight")
    assert out.truncated and out.prompt_tokens <= without_context - 3


def test_the_whole_prompt_counter_decides_the_fit():
    overhead = 10  # e.g. a chat template's special tokens per prompt

    def chat(messages):
        return sum(words(t) for _, t in messages) + overhead

    full = run(None, count_messages=chat)
    assert full.prompt_tokens == chat(full.messages)
    out = run(full.prompt_tokens - 1, count_messages=chat)
    assert out.prompt_tokens <= full.prompt_tokens - 1 and out.truncated


def test_a_prompt_that_cannot_fit_names_the_budget():
    with pytest.raises(InvalidArgument) as info:
        run(2, history=[])
    assert "over the budget of 2" in info.value.message


def test_caller_instructions_follow_the_templates_system_message_and_count_in_the_budget():
    version = assemble.compile_version(BODY)
    out = assemble.assemble(RENDERER, version, {"question": "what now", "context": ""}, CHUNKS, words, None,
                            instructions="Answer in French.")
    system = out.messages[0][1]
    assert system.startswith("ctx: [1] alpha beta gamma") and system.endswith(
        assemble.CALLER_INSTRUCTIONS + "Answer in French.")
    plain = run(None, history=())
    assert out.prompt_tokens == plain.prompt_tokens + words(assemble.CALLER_INSTRUCTIONS + "Answer in French.")
    # no system message in the template: the instructions become the first message
    no_system = assemble.compile_version({"messages": [{"role": "ROLE_USER", "content": "{{ question }}"}]})
    out = assemble.assemble(RENDERER, no_system, {"question": "q", "context": ""}, [], None, None,
                            instructions="Be brief.")
    assert out.messages == [("system", "Be brief."), ("user", "q")]
