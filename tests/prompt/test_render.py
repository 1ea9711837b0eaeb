"""Sandboxed rendering: values stay data, escapes are refused, loops and output are bounded, and
every failure names the variable or line."""

from __future__ import annotations

import time

import pytest

from llmops.core.errors import InvalidArgument
from services.prompt.render import compile_template, render


def run(source: str, **variables) -> str:
    return render(compile_template(source, "t"), variables, "t")


def refused(source: str, **variables) -> str:
    with pytest.raises(InvalidArgument) as info:
        run(source, **variables)
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
        compile_template("ok\n{% if %}\n", "messages[0]")
