"""`llmops index ...`: retrieval indexes from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from llmops.client import Client
from llmops.client.retrieval import folder_documents


def cmd_create(client: Client, args) -> None:
    i = client.retrieval.create_index(args.index, embedding_model=args.embedding_model or "",
                                      chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap, metric=args.metric)
    print(f"created {i.name}: {i.embedding_model} ({i.dimension}-d), chunks of {i.chunking.chunk_size_tokens} tokens, "
          f"collection {i.collection}")


def cmd_list(client: Client, args) -> None:
    indexes = client.retrieval.list_indexes()
    if not indexes:
        print("no indexes")
    for i in indexes:
        print(f"{i.name.removeprefix('indexes/'):<24} v{i.version:<6} {i.document_count:>7} docs {i.chunk_count:>8} chunks  "
              f"{i.embedding_model}")


def cmd_ingest(client: Client, args) -> None:
    docs = folder_documents(Path(args.folder))
    if not docs:
        raise SystemExit(f"{args.folder} has no .md, .txt or .html files")
    with tqdm(total=len(docs), unit="doc", desc=f"ingest {Path(args.folder).name}") as bar:
        def progress(p):
            bar.update(p.documents_done - bar.n)
            bar.set_postfix(chunks=p.chunks_done)

        last = client.retrieval.ingest(args.index, docs, progress)
    print(f"{last.documents_done} documents, {last.chunks_done} chunks; index version {last.index_version}")


def cmd_search(client: Client, args) -> None:
    resp = client.retrieval.search(args.index, args.query, top_k=args.top_k)
    print(f"index version {resp.index_version}")
    for rank, h in enumerate(resp.hits, 1):
        snippet = " ".join(h.text.split())[:110]
        print(f"{rank:>2}. {h.score:.3f}  {h.chunk_id:<36} {snippet}")


def cmd_sync(client: Client, args) -> None:
    from llmops.api.retrieval.v1 import retrieval_pb2 as pb

    mode = pb.SYNC_MODE_CONTINUOUS if args.continuous else pb.SYNC_MODE_TRIGGERED
    request = pb.SyncIndexRequest(index=args.index, table_uri=args.table_uri, id_column=args.id_column,
                                  text_column=args.text_column, metadata_columns=args.metadata_column or [], mode=mode)
    bar = None
    for p in client.retrieval.stub.SyncIndex(request):
        if bar is None:
            bar = tqdm(unit="row", desc=f"sync {args.index} <- table v{p.table_version}")
        bar.update(p.rows_upserted + p.rows_deleted - bar.n)
        if p.pass_complete:
            bar.close()
            bar = None
            print(f"table version {p.table_version}: {p.rows_upserted} rows embedded, {p.rows_deleted} deleted; "
                  f"index version {p.index_version}")


def cmd_delete(client: Client, args) -> None:
    client.retrieval.delete_index(args.index)
    print(f"deleted {args.index}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="retrieval indexes")
    s = p.add_subparsers(dest="action", required=True)
    a = s.add_parser("create", help="create an index")
    a.add_argument("index")
    a.add_argument("--embedding-model", help="default all-MiniLM-L6-v2, or a local sentence-transformers folder")
    a.add_argument("--chunk-size", type=int, default=0, help="tokens per chunk (default: 256 or the model's limit)")
    a.add_argument("--chunk-overlap", type=int, default=32)
    a.add_argument("--metric", choices=["cosine", "inner_product", "l2"], default="cosine")
    a.set_defaults(run=cmd_create)
    a = s.add_parser("list", help="indexes")
    a.set_defaults(run=cmd_list)
    a = s.add_parser("ingest", help="ingest the .md/.txt/.html files of a folder")
    a.add_argument("index")
    a.add_argument("folder")
    a.set_defaults(run=cmd_ingest)
    a = s.add_parser("search", help="search an index by text")
    a.add_argument("index")
    a.add_argument("query")
    a.add_argument("--top-k", type=int, default=5)
    a.set_defaults(run=cmd_search)
    a = s.add_parser("sync", help="sync an index from a Delta table (incremental)")
    a.add_argument("index")
    a.add_argument("table_uri")
    a.add_argument("--id-column", required=True)
    a.add_argument("--text-column", required=True)
    a.add_argument("--metadata-column", action="append")
    a.add_argument("--continuous", action="store_true", help="keep following new table versions")
    a.set_defaults(run=cmd_sync)
    a = s.add_parser("delete", help="delete an index and its collection")
    a.add_argument("index")
    a.set_defaults(run=cmd_delete)
