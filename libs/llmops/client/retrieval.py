"""Typed wrapper over llmops.retrieval.v1.RetrievalService."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from google.protobuf import json_format, struct_pb2

from llmops.api.retrieval.v1 import retrieval_pb2 as pb
from llmops.api.retrieval.v1 import retrieval_pb2_grpc
from llmops.client.base import ServiceClient, operation

METRICS = {"cosine": pb.METRIC_COSINE, "inner_product": pb.METRIC_INNER_PRODUCT, "l2": pb.METRIC_L2}
INGEST_SUFFIXES = (".md", ".txt", ".html", ".htm")
BATCH = 32


def condition(field: str, op: int, value: str | float | bool | list) -> pb.Filter:
    """A one-condition filter: `condition("lang", pb.FILTER_OPERATOR_EQ, "en")`, `condition("tag",
    pb.FILTER_OPERATOR_IN, ["a", "b"])`; combine them with `pb.Filter(all=...)` or `any=`."""
    v = struct_pb2.Value()
    if isinstance(value, list):
        v.list_value.SetInParent()
        v.list_value.extend(value)
    elif isinstance(value, bool):
        v.bool_value = value
    elif isinstance(value, int | float):
        v.number_value = value
    else:
        v.string_value = value
    return pb.Filter(condition=pb.FilterCondition(field=field, op=op, value=v))


def document(doc_id: str, text: str, metadata: dict | None = None) -> pb.Document:
    meta = struct_pb2.Struct()
    json_format.ParseDict(metadata or {}, meta)
    return pb.Document(id=doc_id, text=text, metadata=meta)


def folder_documents(folder: Path) -> list[pb.Document]:
    """One document per .md/.txt/.html file, id = path relative to the folder."""
    out = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in INGEST_SUFFIXES:
            rel = path.relative_to(folder).as_posix()
            out.append(document(rel, path.read_text(errors="replace"), {"source": rel, "type": path.suffix.lstrip(".")}))
    return out


class RetrievalClient(ServiceClient):
    service = "retrieval"

    def __init__(self, channel):
        super().__init__(channel)
        self.stub = retrieval_pb2_grpc.RetrievalServiceStub(channel)

    @operation("create_index")
    def create_index(self, index_id: str, *, embedding_model: str = "", chunk_size: int = 0, chunk_overlap: int = 32,
                     metric: str = "cosine") -> pb.Index:
        chunking = pb.Chunking(chunk_size_tokens=chunk_size, chunk_overlap_tokens=chunk_overlap)  # 0: the model's
        return self._unary(self.stub.CreateIndex, pb.CreateIndexRequest(index_id=index_id, index=pb.Index(
            embedding_model=embedding_model, metric=METRICS[metric], chunking=chunking)))

    @operation("get_index")
    def get_index(self, name: str) -> pb.Index:
        return self._unary(self.stub.GetIndex, pb.GetIndexRequest(name=name))

    @operation("list_indexes")
    def list_indexes(self) -> list[pb.Index]:
        return self._paged(self.stub.ListIndexes, lambda token: pb.ListIndexesRequest(page_size=100, page_token=token),
                           "indexes")

    @operation("delete_index")
    def delete_index(self, name: str) -> None:
        self._unary(self.stub.DeleteIndex, pb.DeleteIndexRequest(name=name))

    @operation("upsert_documents")
    def upsert(self, index: str, documents: list[pb.Document]) -> pb.UpsertDocumentsResponse:
        return self._unary(self.stub.UpsertDocuments, pb.UpsertDocumentsRequest(index=index, documents=documents),
                           timeout=600)

    @operation("ingest")
    def ingest(self, index: str, documents: Iterable[pb.Document],
               progress: Callable[[pb.IngestDocumentsResponse], None] | None = None) -> pb.IngestDocumentsResponse:
        """Stream documents in batches; `progress` sees each progress message."""

        def requests() -> Iterator[pb.IngestDocumentsRequest]:
            batch: list[pb.Document] = []
            for d in documents:
                batch.append(d)
                if len(batch) == BATCH:
                    yield pb.IngestDocumentsRequest(index=index, documents=batch)
                    batch = []
            if batch:
                yield pb.IngestDocumentsRequest(index=index, documents=batch)

        last = pb.IngestDocumentsResponse()
        for last in self.stub.IngestDocuments(requests()):
            if progress:
                progress(last)
        return last

    @operation("delete_documents")
    def delete_documents(self, index: str, document_ids: list[str] | None = None,
                         filter: pb.Filter | None = None) -> pb.DeleteDocumentsResponse:
        return self._unary(self.stub.DeleteDocuments, pb.DeleteDocumentsRequest(
            index=index, document_ids=document_ids or [], filter=filter))

    @operation("search")
    def search(self, index: str, text: str = "", *, vector: list[float] | None = None, top_k: int = 10,
               filter: pb.Filter | None = None) -> pb.SearchResponse:
        request = pb.SearchRequest(index=index, top_k=top_k, filter=filter)
        if vector is not None:
            request.vector.values.extend(vector)
        else:
            request.text = text
        return self._unary(self.stub.Search, request)
