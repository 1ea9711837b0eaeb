"""`llmops release start | status | list | watch | abort`: progressive releases of pipeline
bundles, with automatic rollback."""

from __future__ import annotations

import argparse
import re

from llmops.api.finetuning.v1 import finetuning_pb2 as fpb
from llmops.api.finetuning.v1 import release_pb2 as pb
from llmops.cli.tune import state_name
from llmops.client import Client

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def duration(text: str) -> float:
    """`300`, `300s`, `5m`, `1.5h`, `500ms` as seconds."""
    m = _DURATION.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 30s, 5m, 1h)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _state(r: pb.Release) -> str:
    return {fpb.JOB_STATE_SUCCEEDED: "promoted", fpb.JOB_STATE_FAILED: "rolled back",
            fpb.JOB_STATE_CANCELLED: "aborted"}.get(r.state, state_name(r.state))


def line(r: pb.Release) -> str:
    return (f"{r.name}  {_state(r):<11} {r.candidate_version} replacing {r.stable_version} on {r.alias}  "
            f"{r.percent}% (step {min(r.steps_passed + 1, len(r.steps))} of {len(r.steps)}: "
            f"{','.join(map(str, r.steps))})" + (f"\n  {r.outcome}" if r.outcome else ""))


def signals(r: pb.Release) -> str:
    out = []
    for side, s in (("candidate", r.candidate_signals), ("stable", r.stable_signals)):
        if s:
            judged = f"  judge {s['judge_score']:.2f} ({int(s['judged'])} judged)" if "judged" in s else ""
            out.append(f"  {side:<9} {int(s.get('requests', 0)):>6} requests  errors {s.get('error_rate', 0):.1%}  "
                       f"thumbs down {s.get('thumbs_down_rate', 0):.1%}  p95 {s.get('latency_p95_ms', 0):.0f} ms{judged}")
    return "\n".join(out)


def cmd_start(client: Client, args) -> None:
    margins = None
    if any(v is not None for v in (args.max_error_rate_increase, args.max_thumbs_down_increase,
                                   args.max_latency_ratio, args.min_requests)):
        margins = {"max_error_rate_increase": 0.05 if args.max_error_rate_increase is None
                   else args.max_error_rate_increase,
                   "max_thumbs_down_rate_increase": 0.1 if args.max_thumbs_down_increase is None
                   else args.max_thumbs_down_increase,
                   "max_latency_p95_ratio": 1.5 if args.max_latency_ratio is None else args.max_latency_ratio,
                   "min_requests": args.min_requests or 0}
    steps = [int(x) for x in args.steps.split(",")] if args.steps else None
    r = client.release.start(args.candidate, alias=args.alias, steps=steps, interval_s=args.interval,
                             margins=margins, judge_route=args.judge or "", rubric=args.rubric or "",
                             judge_sample_percent=args.judge_sample)
    print(line(r))
    if args.watch:
        watch(client, r.name)


def watch(client: Client, name: str) -> None:
    for e in client.release.watch(name):
        print(f"{state_name(e.state):<10} {e.message}")
    r = client.release.get(name)
    print(line(r))


def cmd_status(client: Client, args) -> None:
    r = client.release.get(args.name)
    print(line(r))
    if r.candidate_signals:
        print(signals(r))


def cmd_list(client: Client, args) -> None:
    for r in client.release.list():
        print(line(r))


def cmd_watch(client: Client, args) -> None:
    watch(client, args.name)


def cmd_abort(client: Client, args) -> None:
    print(line(client.release.abort(args.name)))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("release", help="progressive releases of pipeline bundles: canary steps watched on live "
                                       "feedback, rolled back on a breach")
    rs = p.add_subparsers(dest="action", required=True)
    c = rs.add_parser("start", help="start a release (approver)")
    c.add_argument("candidate", help="the bundle version, NAME@VERSION (approved)")
    c.add_argument("--alias", default="production")
    c.add_argument("--steps", help="canary percentages ending at 100 (default 10,50,100)")
    c.add_argument("--interval", type=duration, default=0.0, help="per step, e.g. 5m (default 5m)")
    c.add_argument("--max-error-rate-increase", type=float, help="in rate units (default 0.05)")
    c.add_argument("--max-thumbs-down-increase", type=float, help="in rate units (default 0.1)")
    c.add_argument("--max-latency-ratio", type=float, help="candidate p95 / stable p95 (default 1.5)")
    c.add_argument("--min-requests", type=int, help="per side and step before judging (default 20)")
    c.add_argument("--judge", metavar="ROUTE", help="an LLM judge scoring a sample of both versions' live answers")
    c.add_argument("--rubric", metavar="TEMPLATE@ALIAS", help="the judge's rubric (a prompt template)")
    c.add_argument("--judge-sample", type=int, default=0, metavar="PERCENT", help="answers judged (default 10)")
    c.add_argument("--watch", action="store_true", help="follow it to its end")
    c.set_defaults(run=cmd_start)
    c = rs.add_parser("status", help="one release: its step, share and live signals")
    c.add_argument("name")
    c.set_defaults(run=cmd_status)
    c = rs.add_parser("list", help="releases, newest first")
    c.set_defaults(run=cmd_list)
    c = rs.add_parser("watch", help="follow a release's events")
    c.add_argument("name")
    c.set_defaults(run=cmd_watch)
    c = rs.add_parser("abort", help="end a release: the stable version gets all traffic back (approver)")
    c.add_argument("name")
    c.set_defaults(run=cmd_abort)
