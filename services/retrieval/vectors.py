"""Chunks in Milvus through pymilvus' MilvusClient: the same code for the embedded engine and for
a Milvus standalone or cluster named by URI. One collection per index; each chunk row holds its
chunk id (`{document_id}#{n}`, the primary key), document id, text, metadata (JSON) and vector."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from llmops.core.errors import InvalidArgument, Unavailable
from services.retrieval.filters import string_literal

log = logging.getLogger(__name__)

METRICS = {"cosine": "COSINE", "inner_product": "IP", "l2": "L2"}
MAX_TEXT = 65535
# Inserts go in batches: Milvus Lite 2.5 takes ~4,500 rows/s in batches of 1,000 but ~130 rows/s
# when one insert carries 5,000 rows of 384-d vectors (measured here).
INSERT_BATCH = 1000
OUTPUT = ["chunk_id", "document_id", "text", "metadata"]


EMBEDDED_KEEPALIVE = {"grpc.keepalive_time_ms": 300_000, "grpc.keepalive_permit_without_calls": False}


@dataclass(frozen=True)
class ChunkRow:
    chunk_id: str
    document_id: str
    text: str
    metadata: dict
    vector: np.ndarray


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    document_id: str
    text: str
    metadata: dict
    score: float


def _quote(values: Sequence[str]) -> str:
    return "[" + ", ".join(string_literal(v, "document_ids") for v in values) + "]"


def _unreachable(exc: Exception) -> bool:
    """Whether a pymilvus or grpc error means Milvus could not be reached (vs. a bad request)."""
    import grpc

    if isinstance(exc, grpc.RpcError):
        return exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    text = str(exc).lower()
    return any(s in text for s in ("fail connecting", "unavailable", "connection refused", "deadline", "timeout",
                                   "not connected", "channel closed"))


def _milvus_call(fn: Callable | None = None, *, filtered: bool = False) -> Callable:
    """Connection failures become UNAVAILABLE (and the next call reconnects). With `filtered`,
    the call evaluates a caller's filter (`expression`, its last argument): any other engine error
    is then the filter's fault, so INVALID_ARGUMENT."""
    if fn is None:
        return functools.partial(_milvus_call, filtered=filtered)

    @functools.wraps(fn)
    def wrapper(self: VectorStore, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except Unavailable:
            raise
        except Exception as exc:
            if _unreachable(exc):
                self._drop_client()
                log.warning("Milvus at %s unreachable: %s", self.uri, exc)
                raise Unavailable(f"the vector store (Milvus at {self.uri}) is unreachable; retry shortly") from None
            if filtered and (args[-1] if args else kwargs.get("expression")):
                detail = str(getattr(exc, "message", "") or exc).splitlines()[0][:200]
                raise InvalidArgument(f"the engine could not evaluate this filter ({detail}); check the field "
                                      "types it compares") from None
            raise

    return wrapper


class VectorStore:
    """Connects lazily, so the service starts (reporting NOT_SERVING) while Milvus is down."""

    def __init__(self, uri: str, token: str = ""):
        self.uri = uri
        self._token = token
        # Milvus Lite (a local file) searches exactly (FLAT: recall 1.0, correct under any filter);
        # a Milvus server gets HNSW. See docs/retrieval.md for the measurements behind this.
        self.embedded = "://" not in uri
        self._lock = threading.Lock()
        self._conn = None

    @property
    def _client(self):
        with self._lock:
            if self._conn is None:
                from pymilvus import MilvusClient

                # Milvus Lite's gRPC server keeps C-core's defaults: pings at most every 5 min and
                # none on idle connections. pymilvus pings every 10 s, which earns GOAWAY
                # ENHANCE_YOUR_CALM ("too_many_pings") during long calls and a torn-down channel.
                # A Milvus server accepts pymilvus's defaults.
                options = {"grpc_options": EMBEDDED_KEEPALIVE} if self.embedded else {}
                self._conn = MilvusClient(uri=self.uri, token=self._token, timeout=10, **options)
            return self._conn

    def _drop_client(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a dead connection is not an error
                pass

    def ping(self) -> bool:
        try:
            self._list()
            return True
        except Exception:  # noqa: BLE001 - any failure means unhealthy
            return False

    @_milvus_call
    def _list(self) -> list[str]:
        return self._client.list_collections()

    @_milvus_call
    def create_collection(self, name: str, dimension: int, metric: str) -> None:
        from pymilvus import DataType, MilvusClient

        if self._client.has_collection(name):
            return  # created before a crash: adopt it
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=512)
        schema.add_field("document_id", DataType.VARCHAR, max_length=256)
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT)
        schema.add_field("metadata", DataType.JSON)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        index = self._client.prepare_index_params()
        if self.embedded:
            index.add_index("vector", index_type="FLAT", metric_type=METRICS[metric])
        else:
            index.add_index("vector", index_type="HNSW", metric_type=METRICS[metric],
                            params={"M": 16, "efConstruction": 200})
        self._client.create_collection(name, schema=schema, index_params=index)
        self._client.load_collection(name)

    @_milvus_call
    def drop_collection(self, name: str) -> None:
        if self._client.has_collection(name):
            self._client.drop_collection(name)

    @_milvus_call
    def replace_documents(self, collection: str, document_ids: Sequence[str], rows: Sequence[ChunkRow]) -> None:
        """Remove every chunk of `document_ids`, then write `rows` (their new chunks)."""
        if document_ids:
            self._client.delete(collection, filter=f"document_id in {_quote(document_ids)}")
        for start in range(0, len(rows), INSERT_BATCH):
            self._client.insert(collection, [
                {"chunk_id": r.chunk_id, "document_id": r.document_id, "text": r.text[:MAX_TEXT],
                 "metadata": r.metadata, "vector": r.vector.tolist()} for r in rows[start:start + INSERT_BATCH]])

    @_milvus_call
    def delete_documents(self, collection: str, document_ids: Sequence[str]) -> None:
        if document_ids:
            self._client.delete(collection, filter=f"document_id in {_quote(document_ids)}")

    @_milvus_call(filtered=True)
    def document_ids_matching(self, collection: str, expression: str, limit: int = 16384) -> list[str]:
        rows = self._client.query(collection, filter=expression, output_fields=["document_id"], limit=limit)
        return sorted({r["document_id"] for r in rows})

    @_milvus_call(filtered=True)
    def search(self, collection: str, vector: np.ndarray, top_k: int, expression: str) -> list[Hit]:
        params = {} if self.embedded else {"params": {"ef": max(64, top_k)}}
        result = self._client.search(collection, [vector.tolist()], limit=top_k, filter=expression or "",
                                     output_fields=OUTPUT, search_params=params)
        hits = []
        for h in result[0]:
            e = h.get("entity", h)
            hits.append(Hit(e["chunk_id"], e["document_id"], e["text"], e.get("metadata") or {}, float(h["distance"])))
        return hits

    def close(self) -> None:
        self._drop_client()
