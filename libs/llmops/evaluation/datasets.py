"""Where training and evaluation data come from, and the rows they hold.

A dataset is named by a URI and a version:
- a Delta table (a path or an s3/gs/abfss URL, as `ExportDataset` writes it) at a table version;
- a JSONL artifact in the registry, `registry:NAME` at a version number or alias (uploaded with
  `llmops datasets upload`): one JSON object per line.

Rows are either chat rows (`messages`: role/content pairs ending with the assistant's answer, the
OpenAI fine-tuning format) or evaluation rows (`question` and `reference_answer`, optionally
`key_phrases`: phrases any of which in an answer makes it right, and `sources`: the documents that
hold the answer, for scoring retrieval). Tuning needs chat rows; evaluation takes either (a chat
row's question is every message before the last, its reference the last).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llmops.core.errors import InvalidArgument, NotFound

REGISTRY_SCHEME = "registry:"
JSONL_FILE = "data.jsonl"
JSONL_FORMAT = "jsonl-dataset"
ROLES = ("system", "user", "assistant")

# (registry model, version number or alias or '' for the newest, destination folder) -> the version
# number fetched; raises NotFound
Fetch = Callable[[str, str, Path], str]


@dataclass(frozen=True)
class Expectation:
    """What else an evaluation row says about a right answer (empty: the reference alone)."""

    key_phrases: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    uri: str
    version: str  # the version actually read (Delta table version, registry version number)
    chat: list[list[dict]]  # chat rows (empty for an evaluation-only table)
    evaluation: list[tuple[list[dict], str]]  # (prompt messages, reference answer)
    expectations: list[Expectation] = field(default_factory=list)  # one per evaluation row

    def expectation(self, i: int) -> Expectation:
        return self.expectations[i] if i < len(self.expectations) else Expectation()


def parse_ref(ref: str) -> tuple[str, str]:
    """`uri@version` (the CLI's form) as (uri, version); no `@`: the latest version."""
    uri, sep, version = ref.rpartition("@")
    if not sep or "/" in version:
        return ref, ""
    return uri, version


def is_registry(uri: str) -> bool:
    return uri.startswith(REGISTRY_SCHEME)


def load(uri: str, version: str = "", fetch: Fetch | None = None, scratch: Path | None = None) -> Dataset:
    """Read a dataset; NOT_FOUND when it does not exist, INVALID_ARGUMENT naming what is wrong."""
    if not uri:
        raise InvalidArgument("dataset_uri is required: a Delta table (from `llmops feedback export`) or "
                              "`registry:NAME` (from `llmops datasets upload`)")
    if is_registry(uri):
        if fetch is None or scratch is None:
            raise InvalidArgument(f"{uri}: registry datasets need a registry connection")
        name = uri.removeprefix(REGISTRY_SCHEME)
        number = fetch(name, version, scratch)
        path = scratch / JSONL_FILE
        if not path.exists():
            raise InvalidArgument(f"{uri}@{number} holds no {JSONL_FILE}; upload datasets with "
                                  "`llmops datasets upload`")
        return _from_records(uri, number, read_jsonl(path, uri))
    return _delta(uri, version)


def read_jsonl(path: Path, uri: str) -> list[dict]:
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise InvalidArgument(f"dataset {uri} line {n} is not JSON: {exc}") from None
        if not isinstance(record, dict):
            raise InvalidArgument(f"dataset {uri} line {n} is not a JSON object")
        records.append(record)
    return records


def _delta(uri: str, version: str) -> Dataset:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    if version and not version.isdigit():
        raise InvalidArgument(f"dataset_version {version!r} must be a table version number")
    try:
        table = DeltaTable(uri, version=int(version) if version else None)
    except TableNotFoundError:
        raise NotFound(f"no Delta table at {uri}; export one with `llmops feedback export`") from None
    except Exception as exc:  # noqa: BLE001 - e.g. a version the table does not have
        raise NotFound(f"cannot read {uri} at version {version or 'latest'}: {str(exc)[:200]}") from None
    columns = set(table.schema().to_arrow().names)
    wanted = [c for c in ("messages", "question", "reference_answer") if c in columns]
    records = table.to_pyarrow_table(columns=wanted).to_pylist() if wanted else [{}] * len(table.to_pyarrow_table())
    return _from_records(uri, str(table.version()), records, columns=columns)


def _from_records(uri: str, version: str, records: list[dict], columns: set[str] | None = None) -> Dataset:
    if columns is None:
        columns = set().union(*(r.keys() for r in records)) if records else {"messages"}
    chat: list[list[dict]] = []
    evaluation: list[tuple[list[dict], str]] = []
    expectations: list[Expectation] = []
    if "messages" in columns:
        for i, r in enumerate(records):
            messages = r.get("messages")
            if not _is_chat(messages):
                raise InvalidArgument(f"dataset {uri} row {i}: messages must be role/content pairs "
                                      f"({'/'.join(ROLES)}) ending with the assistant's answer")
            row = [{"role": m["role"], "content": m["content"]} for m in messages]
            chat.append(row)
            evaluation.append(question_of(row))
    elif {"question", "reference_answer"} <= columns:
        for i, r in enumerate(records):
            q, a = r.get("question"), r.get("reference_answer")
            if not isinstance(q, str) or not isinstance(a, str) or not q.strip():
                raise InvalidArgument(f"dataset {uri} row {i}: question and reference_answer must be text")
            evaluation.append(([{"role": "user", "content": q}], a))
            expectations.append(Expectation(_texts(r, "key_phrases", uri, i), _texts(r, "sources", uri, i)))
    else:
        raise InvalidArgument(f"dataset {uri} lacks required column(s): messages (or question and "
                              f"reference_answer); it has {', '.join(sorted(columns)) or 'none'}")
    if not records:
        raise InvalidArgument(f"dataset {uri} (version {version}) is empty")
    return Dataset(uri, version, chat, evaluation, expectations)


def _texts(record: dict, key: str, uri: str, row: int) -> tuple[str, ...]:
    value = record.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InvalidArgument(f"dataset {uri} row {row}: {key} must be a list of non-empty strings")
    return tuple(value)


def from_jsonl(path: Path) -> Dataset:
    """A local JSONL file (the format `llmops datasets upload` takes), for client-side evaluation."""
    if not path.is_file():
        raise NotFound(f"no dataset file {path}")
    return _from_records(path.name, "file", read_jsonl(path, path.name))


def load_for_client(ref: str, registry) -> Dataset:
    """What the CLI's `--dataset` names: a local `.jsonl` file, or `URI@VERSION` (a Delta table or
    `registry:NAME`) read through the registry client."""
    import tempfile

    if ref.endswith(".jsonl") and not is_registry(ref):
        return from_jsonl(Path(ref))
    uri, version = parse_ref(ref)
    with tempfile.TemporaryDirectory() as tmp:
        return load(uri, version, registry_fetch(registry), Path(tmp))


def question_of(row: list[dict]) -> tuple[list[dict], str]:
    """A chat row as an evaluation question: (every message before the last, the last's text)."""
    return row[:-1], row[-1]["content"]


def _is_chat(messages) -> bool:
    return bool(messages) and isinstance(messages, list) and all(
        isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str) for m in messages
    ) and messages[-1]["role"] == "assistant" and len(messages) >= 2


def require_chat(ds: Dataset) -> list[list[dict]]:
    """The chat rows a tuning job trains on; INVALID_ARGUMENT when the dataset has none."""
    if not ds.chat:
        raise InvalidArgument(f"dataset {ds.uri} lacks required column(s): messages (it is an evaluation set); "
                              "export it with `--format chat`")
    return ds.chat


def registry_fetch(registry) -> Fetch:
    """A Fetch over a (sync) RegistryClient; its CallErrors pass through to the caller."""
    def fetch(name: str, version: str, dest: Path) -> str:
        if not version:
            version = str(registry.get_model(name).latest_version)
            if version == "0":
                raise NotFound(f"dataset {REGISTRY_SCHEME}{name} has no versions yet")
        return str(registry.download_version(f"{name}@{version}", dest).version)
    return fetch


def upload(registry, name: str, path: Path, description: str = ""):
    """Register a JSONL file as a new version of dataset `name` (checked first; created when new).
    Returns the ModelVersion; the dataset is then `registry:NAME` at that version."""
    import shutil
    import tempfile

    _from_records(f"{REGISTRY_SCHEME}{name}", "new", read_jsonl(path, str(path)))  # refuse bad rows before storing
    registry.ensure_model(name, description=description or "JSONL dataset")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(path, Path(tmp) / JSONL_FILE)
        return registry.upload_folder(name, tmp, format=JSONL_FORMAT, description=description or path.name)
