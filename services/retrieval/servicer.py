"""RetrievalService: request validation, proto <-> domain, and the order of writes (Milvus first,
then the SQL record, so a crash in between is repaired by re-upserting the same documents)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator

import numpy as np
from google.protobuf import json_format

from llmops.api.retrieval.v1 import retrieval_pb2 as pb
from llmops.api.retrieval.v1 import retrieval_pb2_grpc
from llmops.core import auth, pagination, telemetry
from llmops.core.auth import Role
from llmops.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from llmops.core.timeutil import now_us, timestamp
from services.retrieval import embedding, filters, sync
from services.retrieval.config import RetrievalConfig
from services.retrieval.ingest import Doc, chunk_documents
from services.retrieval.store import IndexRecord, IndexStore
from services.retrieval.vectors import VectorStore

log = logging.getLogger(__name__)
SERVICE = pb.DESCRIPTOR.services_by_name["RetrievalService"].full_name
POLICY = auth.Policy.for_service(SERVICE, {
    "CreateIndex": Role.EDITOR, "GetIndex": Role.READER, "ListIndexes": Role.READER, "DeleteIndex": Role.EDITOR,
    "UpsertDocuments": Role.EDITOR, "IngestDocuments": Role.EDITOR, "DeleteDocuments": Role.EDITOR,
    "Search": Role.READER, "SyncIndex": Role.EDITOR, "EmbedTexts": Role.READER,
})
MAX_EMBED_TEXTS = 2048
INDEX_CACHE_S = 1.0
INDEX_ID = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
DOC_ID = re.compile(r"^[^\x00-\x1f#]{1,256}$")
METRIC_NAMES = {pb.METRIC_UNSPECIFIED: "cosine", pb.METRIC_COSINE: "cosine",
                pb.METRIC_INNER_PRODUCT: "inner_product", pb.METRIC_L2: "l2"}
METRIC_PB = {"cosine": pb.METRIC_COSINE, "inner_product": pb.METRIC_INNER_PRODUCT, "l2": pb.METRIC_L2}


def index_id(name: str) -> str:
    name = name.removeprefix("indexes/")
    if not INDEX_ID.match(name or ""):
        raise InvalidArgument(f"index name {name[:80]!r} is invalid: use 1-63 lowercase letters, digits, '-' or '_', "
                              "starting with a letter")
    return name


def index_to_pb(r: IndexRecord) -> pb.Index:
    return pb.Index(
        name=f"indexes/{r.name}", embedding_model=r.embedding_model, dimension=r.dimension,
        chunking=pb.Chunking(chunk_size_tokens=r.chunk_size, chunk_overlap_tokens=r.chunk_overlap),
        metric=METRIC_PB[r.metric], collection=r.collection, version=r.version, document_count=r.document_count,
        chunk_count=r.chunk_count, source_table_uri=r.source_table_uri, source_table_version=r.source_table_version,
        create_time=timestamp(r.create_time_us), update_time=timestamp(r.update_time_us),
    )


class RetrievalServicer(retrieval_pb2_grpc.RetrievalServiceServicer):
    def __init__(self, store: IndexStore, vectors: VectorStore, config: RetrievalConfig):
        self._store = store
        self._db = store.db
        self._vectors = vectors
        self._config = config
        self._tables = config.table_locations()
        self._models = config.model_locations()
        self._write_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)  # one writer per index
        self._cache: dict[str, tuple[float, IndexRecord]] = {}  # searches read the index record from here

    async def _index(self, name: str) -> IndexRecord:
        """The index record, cached for searches: this process drops it on every write, and a
        record older than INDEX_CACHE_S is re-read (writes by other replicas)."""
        hit = self._cache.get(name)
        if hit is not None and time.monotonic() - hit[0] < INDEX_CACHE_S:
            return hit[1]
        record = await self._db.run_read(self._store.get, name)
        self._cache[name] = (time.monotonic(), record)
        return record

    def _changed(self, record: IndexRecord) -> IndexRecord:
        self._cache[record.name] = (time.monotonic(), record)
        return record

    # -- indexes -------------------------------------------------------------------------------

    async def CreateIndex(self, request: pb.CreateIndexRequest, context) -> pb.Index:
        name = index_id(request.index_id)
        if request.enable_hybrid:
            raise InvalidArgument("hybrid (BM25) search is not available on this Milvus engine; create the index without it")
        given = request.index
        model_name = given.embedding_model or self._config.default_embedding_model
        if not embedding.is_packaged(model_name):  # a folder: only inside the model roots
            model_name = self._models.resolve(model_name, "embedding_model")
        embedder = await asyncio.to_thread(embedding.load, model_name)
        limit = embedder.max_chunk_tokens
        size = given.chunking.chunk_size_tokens or min(256, limit)
        overlap = given.chunking.chunk_overlap_tokens if given.HasField("chunking") else 32
        if not 16 <= size <= min(8192, limit):
            raise InvalidArgument(f"chunk_size_tokens must be 16-{limit} for {model_name} (it reads {embedder.max_tokens} "
                                  f"tokens at most, two of them special), got {size}")
        if not 0 <= overlap < size:
            raise InvalidArgument(f"chunk_overlap_tokens must be >= 0 and below chunk_size_tokens ({size}), got {overlap}")
        metric = METRIC_NAMES.get(given.metric)
        if metric is None:
            raise InvalidArgument(f"unknown metric {given.metric}", field="index.metric")
        telemetry.annotate(index=name)
        await self._db.run_read(self._store_absent, name)
        collection = "llmops_" + name.replace("-", "_")
        await asyncio.to_thread(self._vectors.create_collection, collection, embedder.dimension, metric)
        t = now_us()
        record = IndexRecord(name, model_name, embedder.dimension, size, overlap, metric, collection, False, 0, 0, 0,
                             "", -1, t, t)
        return index_to_pb(await self._db.run(self._store.create, record))

    def _store_absent(self, name: str) -> None:
        try:
            self._store.get(name)
        except NotFound:
            return
        raise AlreadyExists(f"index {name!r} already exists")

    async def GetIndex(self, request: pb.GetIndexRequest, context) -> pb.Index:
        return index_to_pb(await self._db.run_read(self._store.get, index_id(request.name)))

    async def ListIndexes(self, request: pb.ListIndexesRequest, context) -> pb.ListIndexesResponse:
        page = pagination.start(request, {"list": "indexes"}, str)
        rows, token = page.finish(await self._db.run_read(self._store.list, page.position, page.limit),
                                  lambda r: r.name)
        return pb.ListIndexesResponse(indexes=[index_to_pb(r) for r in rows], next_page_token=token)

    async def DeleteIndex(self, request: pb.DeleteIndexRequest, context) -> pb.DeleteIndexResponse:
        name = index_id(request.name)
        async with self._write_locks[name]:
            record = await self._db.run(self._store.delete, name)
            self._cache.pop(name, None)
            await asyncio.to_thread(self._vectors.drop_collection, record.collection)
        return pb.DeleteIndexResponse()

    # -- documents -----------------------------------------------------------------------------

    def _docs(self, documents) -> list[Doc]:
        if not documents:
            raise InvalidArgument("no documents given")
        if len(documents) > self._config.max_documents_per_call:
            raise InvalidArgument(f"at most {self._config.max_documents_per_call} documents per call; "
                                  "stream more through IngestDocuments")
        out: dict[str, Doc] = {}
        for i, d in enumerate(documents):
            if not DOC_ID.match(d.id):
                raise InvalidArgument(f"documents[{i}].id must be 1-256 characters without control characters or '#'")
            if not d.text.strip():
                raise InvalidArgument(f"documents[{i}] ({d.id!r}) has no text")
            if len(d.text) > self._config.max_document_chars:
                raise InvalidArgument(f"documents[{i}] ({d.id!r}) has {len(d.text)} characters; the limit is "
                                      f"{self._config.max_document_chars}")
            out[d.id] = Doc(d.id, d.text, json_format.MessageToDict(d.metadata))  # the last one of an id wins
        return list(out.values())

    async def _upsert(self, name: str, docs: list[Doc], skip_unchanged: bool = False) -> tuple[IndexRecord, int, int]:
        """Chunk, embed and store `docs`; returns the index, chunks written and documents embedded.
        With `skip_unchanged`, documents whose content is already indexed are left alone (a resumed
        sync does not embed twice what an interrupted pass already stored)."""
        async with self._write_locks[name]:
            index = await self._db.run_read(self._store.get, name)
            if skip_unchanged:
                known = await self._db.run_read(self._store.known_hashes, name, [d.id for d in docs])
                docs = [d for d in docs if known.get(d.id) != d.content_sha256()]
                if not docs:
                    return index, 0, 0
            embedder = await asyncio.to_thread(embedding.load, index.embedding_model)
            rows, counts = await asyncio.to_thread(chunk_documents, docs, embedder, index.chunk_size,
                                                   index.chunk_overlap, self._config.embed_batch_size)
            await asyncio.to_thread(self._vectors.replace_documents, index.collection, [d.id for d in docs], rows)
            record = self._changed(await self._db.run(self._store.record_upsert, name,
                                                      [(d.id, counts[d.id], d.content_sha256()) for d in docs]))
            return record, len(rows), len(docs)

    async def UpsertDocuments(self, request: pb.UpsertDocumentsRequest, context) -> pb.UpsertDocumentsResponse:
        name = index_id(request.index)
        docs = self._docs(request.documents)
        telemetry.annotate(index=name, documents=len(docs))
        record, chunks, _ = await self._upsert(name, docs)
        telemetry.annotate(index_version=record.version, chunks=chunks)
        return pb.UpsertDocumentsResponse(document_count=len(docs), chunk_count=chunks, index_version=record.version)

    async def IngestDocuments(self, request_iterator, context) -> AsyncIterator[pb.IngestDocumentsResponse]:
        name, done_docs, done_chunks = "", 0, 0
        async for msg in request_iterator:
            if not name:
                name = index_id(msg.index)
                telemetry.annotate(index=name)
            if not msg.documents:
                continue
            record, chunks, _ = await self._upsert(name, self._docs(msg.documents))
            done_docs += len(msg.documents)
            done_chunks += chunks
            yield pb.IngestDocumentsResponse(documents_done=done_docs, chunks_done=done_chunks, index_version=record.version)
        if not name:
            raise InvalidArgument("an ingest stream needs at least one message naming the index")

    async def _delete(self, name: str, ids: list[str]) -> tuple[int, IndexRecord]:
        async with self._write_locks[name]:
            index = await self._db.run_read(self._store.get, name)
            await asyncio.to_thread(self._vectors.delete_documents, index.collection, ids)
            gone, record = await self._db.run(self._store.record_delete, name, ids)
            return gone, self._changed(record)

    async def DeleteDocuments(self, request: pb.DeleteDocumentsRequest, context) -> pb.DeleteDocumentsResponse:
        name = index_id(request.index)
        has_filter = request.HasField("filter")
        if bool(request.document_ids) == has_filter:
            raise InvalidArgument("give either document_ids or a filter")
        expression = filters.to_expression(request.filter) if has_filter else ""
        telemetry.annotate(index=name, filter=expression)
        ids = list(request.document_ids)
        for i, d in enumerate(ids):
            if not DOC_ID.match(d):
                raise InvalidArgument(f"document_ids[{i}] must be 1-256 characters without control characters or '#'")
        if not ids:
            index = await self._db.run_read(self._store.get, name)
            ids = await asyncio.to_thread(self._vectors.document_ids_matching, index.collection, expression)
        gone, record = await self._delete(name, ids)
        return pb.DeleteDocumentsResponse(document_count=gone, index_version=record.version)

    # -- sync from Delta tables ----------------------------------------------------------------

    async def SyncIndex(self, request: pb.SyncIndexRequest, context) -> AsyncIterator[pb.SyncIndexResponse]:
        name = index_id(request.index)
        if not request.table_uri:
            raise InvalidArgument("table_uri is empty; name a Delta table (a path or an object-store URI)")
        if not request.id_column or not request.text_column:
            raise InvalidArgument("id_column and text_column are required")
        if request.mode == pb.SYNC_MODE_UNSPECIFIED:
            raise InvalidArgument("mode is required: SYNC_MODE_TRIGGERED (one pass) or SYNC_MODE_CONTINUOUS")
        uri = self._tables.resolve(request.table_uri, "table_uri")
        spec = sync.TableSpec(uri, request.id_column, request.text_column, tuple(request.metadata_columns))
        telemetry.annotate(index=name, table_uri=spec.uri)
        table = await asyncio.to_thread(sync.open_table, spec.uri)
        await asyncio.to_thread(sync.check_columns, table, spec)
        index = await self._db.run_read(self._store.get, name)
        if index.source_table_uri and index.source_table_uri != spec.uri:
            raise FailedPrecondition(f"index {name!r} follows {index.source_table_uri!r}; sync another table into a new index")
        while True:
            until = (await asyncio.to_thread(sync.open_table, spec.uri)).version()
            since = index.source_table_version if index.source_table_uri else -1
            if until > since:
                last = pb.SyncIndexResponse()
                async for last in self._sync_pass(name, spec, since, until):
                    yield last
                index = self._changed(await self._db.run(self._store.set_source, name, spec.uri, until))
                yield pb.SyncIndexResponse(table_version=until, rows_upserted=last.rows_upserted,
                                           rows_deleted=last.rows_deleted, pass_complete=True,
                                           index_version=index.version)
            elif request.mode == pb.SYNC_MODE_TRIGGERED:
                yield pb.SyncIndexResponse(table_version=until, pass_complete=True, index_version=index.version)
            if request.mode == pb.SYNC_MODE_TRIGGERED:
                return
            await asyncio.sleep(self._config.sync_poll_s)

    async def _sync_pass(self, name: str, spec: sync.TableSpec, since: int, until: int):
        changes = await asyncio.to_thread(sync.changes, spec, since, until)
        telemetry.annotate(sync_method=changes.method, since=since, until=until,
                  changed=len(changes.upserts), deleted=len(changes.deletes))
        log.info("sync %s from %s@%d..%d (%s): %d upserts, %d deletes", name, spec.uri, since, until,
                 changes.method, len(changes.upserts), len(changes.deletes))
        upserted = deleted = 0
        if changes.deletes:
            deleted, record = await self._delete(name, changes.deletes)
            yield pb.SyncIndexResponse(table_version=until, rows_deleted=deleted, index_version=record.version)
        batch = self._config.sync_batch_documents
        for start in range(0, len(changes.upserts), batch):
            record, _, embedded = await self._upsert(name, changes.upserts[start:start + batch], skip_unchanged=True)
            upserted += embedded
            yield pb.SyncIndexResponse(table_version=until, rows_upserted=upserted, rows_deleted=deleted,
                                       index_version=record.version)

    # -- embeddings ----------------------------------------------------------------------------

    async def EmbedTexts(self, request: pb.EmbedTextsRequest, context) -> pb.EmbedTextsResponse:
        """Texts embedded by an index's model (or the packaged one, by name) in batches of
        embed_batch_size; a text longer than the model reads is refused, never cut silently."""
        if not request.model:
            raise InvalidArgument("model is required: an index name or the embedding model's name", field="model")
        if not 1 <= len(request.texts) <= MAX_EMBED_TEXTS:
            raise InvalidArgument(f"send 1-{MAX_EMBED_TEXTS} texts", field="texts")
        if embedding.is_packaged(request.model):
            model_name = request.model
        else:
            model_name = (await self._index(index_id(request.model))).embedding_model
        embedder = await asyncio.to_thread(embedding.load, model_name)
        counts = await asyncio.to_thread(lambda: [embedder.count_tokens(t) for t in request.texts])
        for i, (text, n) in enumerate(zip(request.texts, counts, strict=True)):
            if not text.strip():
                raise InvalidArgument(f"texts[{i}] is empty", field=f"texts[{i}]")
            if n > embedder.max_chunk_tokens:
                raise InvalidArgument(f"texts[{i}] has {n} tokens; {model_name} reads at most "
                                      f"{embedder.max_chunk_tokens}: split it", field=f"texts[{i}]")
        vectors = await asyncio.to_thread(embedder.encode, list(request.texts), self._config.embed_batch_size)
        telemetry.annotate(embedding_model=model_name, texts=len(request.texts), tokens=sum(counts))
        return pb.EmbedTextsResponse(embeddings=[pb.Embedding(values=v.tolist()) for v in vectors],
                                     embedding_model=model_name, input_tokens=sum(counts))

    # -- search --------------------------------------------------------------------------------

    async def Search(self, request: pb.SearchRequest, context) -> pb.SearchResponse:
        name = index_id(request.index)
        top_k = request.top_k
        if not 1 <= top_k <= self._config.max_top_k:
            raise InvalidArgument(f"top_k must be 1-{self._config.max_top_k}, got {request.top_k}")
        expression = filters.to_expression(request.filter) if request.HasField("filter") else ""
        if request.hybrid:
            raise InvalidArgument("hybrid search is not available on this Milvus engine; search without hybrid")
        index = await self._index(name)
        query = request.WhichOneof("query")
        if query == "text":
            if not request.text.strip():
                raise InvalidArgument("the query text is empty")
            embedder = await asyncio.to_thread(embedding.load, index.embedding_model)
            vector = (await asyncio.to_thread(embedder.encode, [request.text]))[0]
        elif query == "vector":
            vector = np.asarray(request.vector.values, dtype=np.float32)
            if vector.shape[0] != index.dimension:
                raise InvalidArgument(f"the vector has {vector.shape[0]} dimensions; index {name!r} has {index.dimension}")
            if not np.all(np.isfinite(vector)):
                raise InvalidArgument("the vector has NaN or infinite components")
        else:
            raise InvalidArgument("give a query: text or vector")
        hits = await asyncio.to_thread(self._vectors.search, index.collection, vector, top_k, expression)
        telemetry.annotate(index=name, index_version=index.version, top_k=top_k, filter=expression,
                  hit_ids=[h.chunk_id for h in hits], hit_scores=[h.score for h in hits])
        out = pb.SearchResponse(index_version=index.version)
        for h in hits:
            out.hits.add(document_id=h.document_id, chunk_id=h.chunk_id, text=h.text, score=h.score).metadata.update(
                h.metadata)
        return out
