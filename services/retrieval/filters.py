"""The typed metadata filter translated into a Milvus boolean expression. Field names must be
identifiers and values are rendered as literals of the expression language, so no caller text is
ever spliced into the expression.

Milvus' expression strings take characters as they are, with `\\` and `\"` as the only escapes
(JSON's `\u00fc` is not decoded, so `"Müller.pdf"` written the JSON way never matches); a line
break cannot stand in one at all, so such a value is refused. IN lists mixing types fail inside
the engine, so they are refused here too."""

from __future__ import annotations

import math
import re

from google.protobuf import struct_pb2

from llmops.api.retrieval.v1 import retrieval_pb2 as pb
from llmops.core.errors import InvalidArgument

FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_DEPTH = 8
MAX_CONDITIONS = 64
MAX_IN_VALUES = 1000
OPS = {
    pb.FILTER_OPERATOR_EQ: "==", pb.FILTER_OPERATOR_NE: "!=", pb.FILTER_OPERATOR_LT: "<",
    pb.FILTER_OPERATOR_LE: "<=", pb.FILTER_OPERATOR_GT: ">", pb.FILTER_OPERATOR_GE: ">=",
}
METADATA_FIELD = "metadata"


def string_literal(text: str, where: str = "value") -> str:
    """`text` as a Milvus expression string, exact for every character but line breaks
    (INVALID_ARGUMENT)."""
    if "\n" in text or "\r" in text:
        raise InvalidArgument(f"{where}: a line break cannot be matched in a filter; remove it from the value")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value: struct_pb2.Value, where: str):
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return string_literal(value.string_value, where)
    if kind == "number_value":
        if not math.isfinite(value.number_value):
            raise InvalidArgument(f"{where}: numbers must be finite")
        n = value.number_value
        return str(int(n)) if n.is_integer() else repr(n)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    raise InvalidArgument(f"{where}: the value must be a string, number or boolean (got {kind or 'nothing'})")


def _condition(c: pb.FilterCondition, where: str) -> str:
    if not FIELD.match(c.field):
        raise InvalidArgument(f"{where}: field {c.field[:80]!r} must be an identifier ([A-Za-z_][A-Za-z0-9_]*)")
    target = f'{METADATA_FIELD}["{c.field}"]'
    if c.op == pb.FILTER_OPERATOR_IN:
        if c.value.WhichOneof("kind") != "list_value":
            raise InvalidArgument(f"{where}: IN needs a list value")
        items = c.value.list_value.values
        if not items or len(items) > MAX_IN_VALUES:
            raise InvalidArgument(f"{where}: IN needs 1-{MAX_IN_VALUES} values, got {len(items)}")
        if len({v.WhichOneof("kind") for v in items}) > 1:
            raise InvalidArgument(f"{where}: IN values must all be strings, all numbers or all booleans")
        return f"{target} in [{', '.join(_literal(v, where) for v in items)}]"
    if c.op not in OPS:
        raise InvalidArgument(f"{where}: operator is missing; use EQ, NE, LT, LE, GT, GE or IN")
    return f"{target} {OPS[c.op]} {_literal(c.value, where)}"


def to_expression(f: pb.Filter | None) -> str:
    """The Milvus expression for `f` ('' for no filter); INVALID_ARGUMENT naming the problem."""
    if f is None or f.WhichOneof("kind") is None:
        return ""
    count = [0]

    def walk(node: pb.Filter, depth: int, where: str) -> str:
        if depth > MAX_DEPTH:
            raise InvalidArgument(f"filter nests deeper than {MAX_DEPTH} levels")
        kind = node.WhichOneof("kind")
        if kind == "condition":
            count[0] += 1
            if count[0] > MAX_CONDITIONS:
                raise InvalidArgument(f"filter has more than {MAX_CONDITIONS} conditions")
            return _condition(node.condition, where)
        if kind in ("all", "any"):
            parts = [walk(child, depth + 1, f"{where}.{kind}[{i}]") for i, child in enumerate(getattr(node, kind).filters)]
            if not parts:
                raise InvalidArgument(f"{where}: '{kind}' needs at least one filter")
            joiner = " and " if kind == "all" else " or "
            return "(" + joiner.join(parts) + ")"
        raise InvalidArgument(f"{where}: empty filter; set condition, all or any")

    return walk(f, 0, "filter")
