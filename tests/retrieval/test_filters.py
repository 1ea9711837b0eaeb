"""The typed filter becomes a Milvus expression with no caller text spliced in."""

from __future__ import annotations

import pytest

from llmops.api.retrieval.v1 import retrieval_pb2 as pb
from llmops.client.retrieval import condition as cond
from llmops.core.errors import InvalidArgument
from services.retrieval.filters import to_expression


def test_conditions_and_combinations():
    assert to_expression(None) == ""
    assert to_expression(cond("lang", pb.FILTER_OPERATOR_EQ, "en")) == 'metadata["lang"] == "en"'
    assert to_expression(cond("year", pb.FILTER_OPERATOR_GE, 2020)) == 'metadata["year"] >= 2020'
    assert to_expression(cond("score", pb.FILTER_OPERATOR_LT, 0.5)) == 'metadata["score"] < 0.5'
    assert to_expression(cond("draft", pb.FILTER_OPERATOR_NE, True)) == 'metadata["draft"] != true'
    assert to_expression(cond("tag", pb.FILTER_OPERATOR_IN, ["a", "b"])) == 'metadata["tag"] in ["a", "b"]'
    both = pb.Filter(all=pb.FilterList(filters=[cond("a", pb.FILTER_OPERATOR_EQ, 1),
                                                pb.Filter(any=pb.FilterList(filters=[cond("b", pb.FILTER_OPERATOR_EQ, "x"),
                                                                                     cond("c", pb.FILTER_OPERATOR_GT, 2)]))]))
    assert to_expression(both) == '(metadata["a"] == 1 and (metadata["b"] == "x" or metadata["c"] > 2))'


def test_values_cannot_inject_expressions():
    evil = 'x" or 1 == 1 or metadata["y'
    expr = to_expression(cond("lang", pb.FILTER_OPERATOR_EQ, evil))
    assert expr == 'metadata["lang"] == "x\\" or 1 == 1 or metadata[\\"y"'


@pytest.mark.parametrize("bad,message", [
    (cond('lang"] or true or metadata["x', pb.FILTER_OPERATOR_EQ, "en"), "identifier"),
    (cond("lang", pb.FILTER_OPERATOR_UNSPECIFIED, "en"), "operator"),
    (cond("lang", pb.FILTER_OPERATOR_IN, "en"), "list"),
    (cond("lang", pb.FILTER_OPERATOR_IN, []), "1-"),
    (pb.Filter(all=pb.FilterList()), "at least one"),
    (cond("tag", pb.FILTER_OPERATOR_IN, ["a", 1]), "must all be strings, all numbers or all booleans"),
    (cond("tag", pb.FILTER_OPERATOR_EQ, "two\nlines"), "line break"),
    (pb.Filter(condition=pb.FilterCondition(field="a", op=pb.FILTER_OPERATOR_EQ)), "string, number or boolean"),
])
def test_malformed_filters_name_the_problem(bad, message):
    with pytest.raises(InvalidArgument, match=message):
        to_expression(bad)


def test_strings_are_written_as_the_engine_reads_them():
    # characters as they are (the engine does not decode JSON's \u escapes); only \\ and \" escaped
    assert to_expression(cond("a", pb.FILTER_OPERATOR_EQ, "Müller 日本 😀")) == 'metadata["a"] == "Müller 日本 😀"'
    assert to_expression(cond("a", pb.FILTER_OPERATOR_EQ, 'back\\slash "q"\t')) == \
        'metadata["a"] == "back\\\\slash \\"q\\"\t"'


def test_depth_is_bounded():
    f = cond("a", pb.FILTER_OPERATOR_EQ, 1)
    for _ in range(10):
        f = pb.Filter(all=pb.FilterList(filters=[f]))
    with pytest.raises(InvalidArgument, match="deeper"):
        to_expression(f)
