"""The prompt tests' stack (llmops.testing.prompt_stack)."""

from __future__ import annotations

import pytest

from llmops.testing.prompt_stack import PromptStack


@pytest.fixture
def stack(keys, key_store, tmp_path, spans):
    s = PromptStack(keys, key_store, tmp_path, spans[0])
    yield s
    s.close()
