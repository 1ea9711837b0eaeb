"""Sandboxed rendering: values stay data, escapes are refused, loops and output are bounded, and
every failure names the variable or line; hostile templates that no in-process bound can stop
(one huge C-level operation) are killed in their worker process, and the pool keeps serving."""

from __future__ import annotations

import time

import pytest

from llmops.core import templating
from llmops.core.errors import InvalidArgument
from llmops.core.templating import check_syntax

POOL = None


@pytest.fixture(autouse=True)
def _pool(render_pool):
    global POOL
    POOL = render_pool


def run(source: str, **variables) -> str:
    check_syntax(source, "t")
    return POOL.render(source, variables, "t")


def refused(source: str, kind: str = templating.PROMPT, **variables) -> str:
    with pytest.raises(InvalidArgument) as info:
        POOL.render(source, variables, "t", kind)
    return info.value.message


def test_values_are_variables_never_templates():
    assert run("Q: {{ question }}", question="{{ 7 * 7 }} {% raw %}") == "Q: {{ 7 * 7 }} {% raw %}"
    assert run("{{ items | join(', ') }} {{ name | upper }}", items=["a", "b"], name="x") == "a, b X"


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ 'a' | attr('format') }}",
    "{{ ('{0.__class__}' | attr('format'))(1) }}",
    "{{ '{0.__class__}'.format(1) }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ self.__init__ }}",
])
def test_sandbox_escapes_are_invalid_argument(source):
    message = refused(source)
    assert "sandbox" in message or "undefined" in message


def test_huge_loops_are_stopped_within_a_second_and_output_is_capped():
    start = time.monotonic()
    message = refused("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
    assert "stopped" in message and time.monotonic() - start < 1.5
    assert "capped" in refused("{% for i in range(100000) %}" + "x" * 50 + "{% endfor %}")
    assert "sandbox" in refused("{{ 'x' * 100000000 }}")
    assert "sandbox" in refused("{{ 10 ** 100000 }}")


def test_missing_variables_and_syntax_errors_name_their_cause():
    assert "'question' is undefined" in refused("Q: {{ question }}")
    with pytest.raises(InvalidArgument, match="line 2"):
        check_syntax("ok\n{% if %}\n", "messages[0]")


@pytest.mark.parametrize("source", [
    "{{ (((9**64)**64)**64)**64 }}",  # one big-integer power: seconds of CPU in a single C call
    '{{ "%0300000000d" % 1 }}',  # 300 MB from one formatting call
    "{{ 'a' | center(300000000) }}",
    "{{ ('x' * 90000) | replace('x', 'y' * 90000) }}",
])
def test_hostile_templates_are_stopped_within_about_a_second_and_the_pool_recovers(render_pool, source):
    start = time.monotonic()
    message = refused(source)
    assert time.monotonic() - start < 1.6
    assert "stopped" in message or "MB" in message or "capped" in message
    assert run("still {{ x }}", x="serving") == "still serving"


def test_chat_templates_render_as_transformers_renders_them(render_pool):
    source = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
              "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    text = render_pool.render(source, {"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": True},
                              "chat", templating.CHAT)
    assert text == "<|user|>hi\n<|assistant|>"
    assert "refused to render: no system" in refused("{{ raise_exception('no system') }}", templating.CHAT)
