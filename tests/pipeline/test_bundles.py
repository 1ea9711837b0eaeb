"""Bundle parameters are checked by the CLI before a bundle is registered and by the pipeline
before one runs: unknown names and out-of-range values are refused with the name."""

from __future__ import annotations

import pytest

from llmops.client.pipeline import BundleParameters
from llmops.core.errors import InvalidArgument


def test_defaults_and_values():
    assert BundleParameters.parse({}) == BundleParameters()
    p = BundleParameters.parse({"max_tokens": 64.0, "temperature": 0.7, "stop": ["\n\n"], "top_k": 4, "seed": 2})
    assert (p.max_tokens, p.temperature, p.stop, p.top_k, p.seed) == (64, 0.7, ("\n\n",), 4, 2)
    assert isinstance(p.max_tokens, int)  # Struct numbers arrive as floats


@pytest.mark.parametrize("raw,named", [
    ({"max_token": 5}, "unknown pipeline parameter 'max_token'"),
    ({"max_tokens": 0}, "max_tokens must be 1-32768"),
    ({"max_tokens": 2.5}, "max_tokens must be a whole number"),
    ({"max_tokens": True}, "max_tokens must be a whole number"),
    ({"temperature": 3}, "temperature must be 0-2"),
    ({"top_p": 0}, "top_p must be in (0, 1]"),
    ({"temperature": "hot"}, "temperature must be a number"),
    ({"stop": "x"}, "stop must be a list"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop must be a list of up to 4"),
    ({"question_variable": ""}, "question_variable must be a variable name"),
])
def test_bad_parameters_are_refused_by_name(raw, named):
    with pytest.raises(InvalidArgument) as info:
        BundleParameters.parse(raw)
    assert named in info.value.message


def test_a_caller_overrides_sampling_within_the_bounds_and_pins_of_the_bundle():
    from llmops.api.common.v1.chat_pb2 import SamplingParams

    p = BundleParameters.parse({"max_tokens": 100, "temperature": 0.2, "seed": 7, "stop": ["##"],
                                "bounds": {"temperature": [0, 0.5]}, "pinned": ["seed"]})
    used = p.sampling()
    assert (used.max_tokens, round(used.temperature, 6), used.seed, list(used.stop)) == (100, 0.2, 7, ["##"])
    assert not used.HasField("presence_penalty")  # unset stays unset: the target's default holds
    used = p.sampling(SamplingParams(temperature=0.4, seed=7, max_tokens=50, stop=["END"]))
    assert (round(used.temperature, 6), used.seed, used.max_tokens, list(used.stop)) == (0.4, 7, 50, ["END"])
    for overrides, field in [(SamplingParams(temperature=0.6), "sampling.temperature"),
                             (SamplingParams(seed=8), "sampling.seed"),
                             (SamplingParams(max_tokens=101), "sampling.max_tokens")]:
        with pytest.raises(InvalidArgument) as info:
            p.sampling(overrides, "sampling.")
        assert info.value.field_violations[0].field == field
    for raw in ({"bounds": {"temperature": [0, 3]}}, {"bounds": {"seed": [0, 1]}}, {"pinned": ["top_k"]}):
        with pytest.raises(InvalidArgument):
            BundleParameters.parse(raw)
