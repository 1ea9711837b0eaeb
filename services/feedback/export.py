"""Dataset export: answered requests joined with their feedback (quarantined feedback left out),
written to a Delta table as a training-ready chat dataset or an evaluation set. A chat row is the
prompt exactly as the model was given it (template, retrieved context, question) followed by the
reference answer, so a model tuned on it learns what serving will ask of it.

A row needs a reference answer: the latest correction, or the answer itself when the latest
thumbs verdict is up. `corrected_only` keeps corrected rows, `thumbs_up_only` keeps approved
ones; with neither (or both) every row with a reference goes out. Each export overwrites the
table with the current rows, so every export is a new table version and a version is the exact
dataset a fine-tune read.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from llmops.core.errors import FailedPrecondition
from services.feedback.store import FeedbackRow, InferenceRow

CHAT, EVALUATION = 1, 2
MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
CHAT_SCHEMA = pa.schema([
    ("request_id", pa.string()), ("messages", pa.list_(MESSAGE)), ("reference", pa.string()),
    ("context_ids", pa.list_(pa.string())), ("pipeline_version", pa.string()), ("model_version", pa.string()),
])
EVALUATION_SCHEMA = pa.schema([
    ("request_id", pa.string()), ("question", pa.string()), ("reference_answer", pa.string()),
    ("reference", pa.string()), ("context_ids", pa.list_(pa.string())), ("pipeline_version", pa.string()),
    ("model_version", pa.string()),
])


@dataclass(frozen=True)
class Selection:
    corrected_only: bool = False
    thumbs_up_only: bool = False


def reference(fb: list[FeedbackRow]) -> tuple[str, str] | None:
    """(reference answer kind, text or '' for the answer itself), from the latest feedback."""
    corrected = next((f for f in reversed(fb) if f.corrected_answer.strip()), None)
    verdict = next((f.thumb for f in reversed(fb) if f.thumb), 0)
    if corrected is not None:
        return "corrected", corrected.corrected_answer
    if verdict == 1:
        return "approved", ""
    return None


def select(rows: list[tuple[InferenceRow, list[FeedbackRow]]], sel: Selection
           ) -> list[tuple[InferenceRow, str, str]]:
    """(inference, reference kind, reference answer) of the rows that go out."""
    out = []
    for inference, fb in rows:
        if inference.error:  # a failed request has no answer to learn from
            continue
        ref = reference(fb)
        if ref is None:
            continue
        kind, text = ref
        if sel.corrected_only != sel.thumbs_up_only:  # exactly one flag: only that kind
            if (kind == "corrected") != sel.corrected_only:
                continue
        out.append((inference, kind, text or inference.answer))
    return out


def arrow_table(selected: list[tuple[InferenceRow, str, str]], fmt: int) -> pa.Table:
    if fmt == CHAT:
        return pa.Table.from_pylist([{
            "request_id": i.request_id, "reference": kind, "context_ids": i.chunk_ids,
            "messages": [*(i.prompt_messages or [{"role": "user", "content": i.question}]),
                         {"role": "assistant", "content": answer}],
            "pipeline_version": i.pipeline_version, "model_version": i.model_version,
        } for i, kind, answer in selected], schema=CHAT_SCHEMA)
    return pa.Table.from_pylist([{
        "request_id": i.request_id, "question": i.question, "reference_answer": answer, "reference": kind,
        "context_ids": i.chunk_ids, "pipeline_version": i.pipeline_version, "model_version": i.model_version,
    } for i, kind, answer in selected], schema=EVALUATION_SCHEMA)


def write(uri: str, table: pa.Table) -> int:
    """Overwrite the Delta table at `uri` with `table`; returns the new table version."""
    from deltalake import DeltaTable, write_deltalake

    if table.num_rows == 0:
        raise FailedPrecondition("no rows match the filter: nothing to export (rows need a correction or a "
                                 "thumbs-up; quarantined feedback is left out)")
    write_deltalake(uri, table, mode="overwrite", schema_mode="overwrite")
    return DeltaTable(uri).version()
