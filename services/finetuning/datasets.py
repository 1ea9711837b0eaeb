"""Training data: a Delta table (as `ExportDataset` writes it, chat format) at a given version,
checked for the columns a tuning job needs and turned into chat rows."""

from __future__ import annotations

from llmops.core.errors import InvalidArgument, NotFound

REQUIRED = ("messages",)


def load_rows(uri: str, version: str) -> tuple[list[list[dict]], int]:
    """(chat rows, the table version read); NOT_FOUND for no table, INVALID_ARGUMENT naming what
    is missing or wrong."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    if not uri:
        raise InvalidArgument("dataset_uri is required: a Delta table (e.g. from `llmops feedback export`)")
    if version and not version.isdigit():
        raise InvalidArgument(f"dataset_version {version!r} must be a table version number")
    try:
        table = DeltaTable(uri, version=int(version) if version else None)
    except TableNotFoundError:
        raise NotFound(f"no Delta table at {uri}; export one with `llmops feedback export`") from None
    except Exception as exc:  # noqa: BLE001 - e.g. a version the table does not have
        raise NotFound(f"cannot read {uri} at version {version or 'latest'}: {str(exc)[:200]}") from None
    columns = set(table.schema().to_arrow().names)
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InvalidArgument(f"dataset {uri} lacks required column(s): {', '.join(missing)} (has "
                              f"{', '.join(sorted(columns))}); export it with `--format chat`")
    rows = []
    for i, messages in enumerate(table.to_pyarrow_table(columns=["messages"]).column("messages").to_pylist()):
        if not messages or not isinstance(messages, list) or messages[-1].get("role") != "assistant" or not all(
                m.get("role") in ("system", "user", "assistant") and isinstance(m.get("content"), str)
                for m in messages):
            raise InvalidArgument(f"dataset {uri} row {i}: messages must be role/content pairs ending with the "
                                  "assistant's answer")
        rows.append([{"role": m["role"], "content": m["content"]} for m in messages])
    if not rows:
        raise InvalidArgument(f"dataset {uri} (version {table.version()}) is empty")
    return rows, table.version()
