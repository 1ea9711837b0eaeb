"""`llmops feedback give | list | queue | summary | watch | quarantine | export`."""

from __future__ import annotations

import argparse
import time

from llmops.api.feedback.v1 import feedback_pb2 as pb
from llmops.client import Client

THUMB = {pb.THUMB_UP: "up", pb.THUMB_DOWN: "down"}


def _feedback_line(f: pb.Feedback) -> str:
    parts = [f"{f.name:<14}", f.request_id, THUMB.get(f.thumb, "-"), f"rating {f.rating or '-'}",
             pb.FeedbackSource.Name(f.source).removeprefix("FEEDBACK_SOURCE_").lower(), f"by {f.created_by}"]
    if f.labels:
        parts.append("labels " + ",".join(f.labels))
    if f.corrected_answer:
        parts.append("corrected")
    if f.quarantined:
        parts.append("QUARANTINED")
    return "  ".join(parts)


def cmd_give(client: Client, args) -> None:
    f = client.feedback.give(request_id=args.request_id, thumb=args.thumb, rating=args.rating,
                             corrected_answer=args.correct or "", comment=args.comment or "", labels=args.label,
                             source=args.source, idempotency_key=args.idempotency_key or "")
    print(_feedback_line(f))


def cmd_list(client: Client, args) -> None:
    for f in client.feedback.list(pipeline=args.pipeline, label=args.label, source=args.source or "",
                                  start_us=int((time.time() - args.hours * 3600) * 1e6)):
        print(_feedback_line(f))


def cmd_queue(client: Client, args) -> None:
    for r in client.feedback.inferences(pipeline=args.pipeline, awaiting_review=True, limit=args.limit):
        print(f"{r.request_id}  {r.pipeline_version}  {r.model_version}\n  Q: {r.question[:200]}\n"
              f"  A: {r.answer[:200]}")


def cmd_summary(client: Client, args) -> None:
    rows = client.feedback.summary(args.pipeline, start_us=int((time.time() - args.hours * 3600) * 1e6))
    print(f"{'pipeline version':<30} {'model version':<30} {'requests':>8} {'errors':>6} {'feedback':>8} "
          f"{'approval':>8} {'down':>5} {'rating':>6} {'fixes':>5} {'p50 ms':>8} {'p95 ms':>8} {'tokens':>8}")
    for s in rows:
        print(f"{s.pipeline_version:<30} {s.model_version:<30} {s.requests:>8} {s.error_rate:>6.0%} "
              f"{s.feedback_count:>8} {s.approval_rate:>8.0%} {s.thumbs_down_rate:>5.0%} {s.mean_rating:>6.2f} "
              f"{s.corrections:>5} {s.latency_p50_ms:>8.1f} {s.latency_p95_ms:>8.1f} {s.total_tokens:>8}")


def cmd_watch(client: Client, args) -> None:
    try:
        for item in client.feedback.watch(args.pipeline):
            if item.WhichOneof("item") == "inference":
                r = item.inference
                print(f"answer   {r.request_id}  {r.model_version}  {r.latency_ms:.0f} ms  Q: {r.question[:80]}",
                      flush=True)
            else:
                print(f"feedback {_feedback_line(item.feedback)}", flush=True)
    except KeyboardInterrupt:
        pass


def cmd_quarantine(client: Client, args) -> None:
    n = client.feedback.quarantine(names=args.name, created_by=args.created_by or "", release=args.release)
    print(f"{n} feedback {'released' if args.release else 'quarantined'}")


def cmd_export(client: Client, args) -> None:
    out = client.feedback.export(args.table, format=args.format, corrected_only=args.corrected_only,
                                 thumbs_up_only=args.thumbs_up_only, pipeline_version=args.pipeline_version or "")
    print(f"{out.table_uri}  version {out.table_version}  {out.row_count} rows")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("feedback", help="feedback on answers, monitoring and dataset export")
    fs = p.add_subparsers(dest="action", required=True)
    c = fs.add_parser("give", help="feedback on one answer (by its request id)")
    c.add_argument("request_id")
    c.add_argument("--up", dest="thumb", action="store_const", const="up")
    c.add_argument("--down", dest="thumb", action="store_const", const="down")
    c.add_argument("--rating", type=int, default=0, help="1-5")
    c.add_argument("--correct", help="the corrected answer")
    c.add_argument("--comment")
    c.add_argument("--label", action="append", default=[])
    c.add_argument("--source", choices=["reviewer", "end_user", "judge"], default="reviewer")
    c.add_argument("--idempotency-key")
    c.set_defaults(run=cmd_give)
    c = fs.add_parser("list", help="recent feedback, newest first")
    c.add_argument("--pipeline", default="")
    c.add_argument("--label", default="")
    c.add_argument("--source", choices=["reviewer", "end_user", "judge"])
    c.add_argument("--hours", type=float, default=24 * 7)
    c.set_defaults(run=cmd_list)
    c = fs.add_parser("queue", help="answers awaiting review")
    c.add_argument("--pipeline", default="")
    c.add_argument("--limit", type=int, default=20)
    c.set_defaults(run=cmd_queue)
    c = fs.add_parser("summary", help="volume, approval, rating, corrections, latency and tokens per version")
    c.add_argument("pipeline", nargs="?", default="")
    c.add_argument("--hours", type=float, default=24)
    c.set_defaults(run=cmd_summary)
    c = fs.add_parser("watch", help="answers and feedback as they arrive (Ctrl-C to stop)")
    c.add_argument("pipeline", nargs="?", default="")
    c.set_defaults(run=cmd_watch)
    c = fs.add_parser("quarantine", help="exclude feedback from exports and summaries")
    c.add_argument("--name", action="append", default=[], help="feedback/ID (repeatable)")
    c.add_argument("--created-by", help="everything this principal sent")
    c.add_argument("--release", action="store_true", help="include it again")
    c.set_defaults(run=cmd_quarantine)
    c = fs.add_parser("export", help="write a Delta table for fine-tuning (chat) or evaluation")
    c.add_argument("table", help="a table name (under the service's export root) or an s3:// / gs:// URL")
    c.add_argument("--format", choices=["chat", "evaluation"], default="chat")
    c.add_argument("--corrected-only", action="store_true")
    c.add_argument("--thumbs-up-only", action="store_true")
    c.add_argument("--pipeline-version")
    c.set_defaults(run=cmd_export)
