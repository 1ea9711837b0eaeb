"""The `llmops` command line."""

from __future__ import annotations

import argparse
import sys
import time

import grpc

from llmops.cli import (
    datasets,
    evaluations,
    feedback,
    generate,
    index,
    models,
    pipelines,
    prompts,
    release,
    stack,
    tracecmd,
    tune,
)
from llmops.client import CallError, Client
from llmops.core import auth, localenv
from llmops.core.errors import DomainError


def cmd_up(args) -> None:
    config = stack.up(free_ports=args.free_ports)
    print(f"config written to {localenv.config_path()}")
    if args.show_key:
        print(f"admin API key: {config.api_key}")


def cmd_down(args) -> None:
    stack.down()


def cmd_status(args) -> None:
    for s in stack.status():
        print(f"{s.name:<11} {s.health:<12} {s.address or '-':<18} pid {s.pid or '-'}")


def cmd_trace(args) -> None:
    print(tracecmd.render(args.trace_id) if args.trace_id else tracecmd.recent())


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_s(text: str) -> float:
    """`90s`, `15m`, `12h`, `30d` as seconds."""
    unit = DURATION_UNITS.get(text[-1:].lower())
    try:
        value = float(text[:-1]) * unit if unit else float(text)
    except ValueError:
        value = -1
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 15m, 12h or 30d")
    return value


def cmd_keys_create(args) -> None:
    key = auth.add_key(localenv.keys_path(), args.name, args.role, expires_in_s=args.expires or 0.0,
                       grants=tuple(args.grant or ()))
    print(key)
    print(f"stored (hashed) in {localenv.keys_path()}; this is the only time the key is shown", file=sys.stderr)


def cmd_keys_list(args) -> None:
    now = time.time()
    print(f"{'name':<24} {'role':<9} {'created':<17} expires")
    for e in sorted(auth.list_keys(localenv.keys_path()), key=lambda e: e.name):
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.created)) if e.created else "-"
        expires = ("never" if not e.expires else
                   f"{'EXPIRED ' if e.expired(now) else ''}{time.strftime('%Y-%m-%d %H:%M', time.localtime(e.expires))}")
        grants = f"  (+ {', '.join(e.grants)})" if e.grants else ""
        print(f"{e.name:<24} {e.role.name.lower():<9} {created:<17} {expires}{grants}")


def cmd_keys_revoke(args) -> None:
    if not auth.revoke_key(localenv.keys_path(), args.name):
        raise SystemExit(f"no key named {args.name!r}")
    print(f"revoked the key of {args.name}; services refuse it within a second")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmops", description="llmops: an open LLMOps platform")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="start every service on loopback")
    p.add_argument("--free-ports", action="store_true", help="pick free ports instead of the defaults")
    p.add_argument("--show-key", action="store_true", help="print the admin API key")
    p.set_defaults(run=cmd_up, local=True)
    p = sub.add_parser("down", help="stop the services")
    p.set_defaults(run=cmd_down, local=True)
    p = sub.add_parser("status", help="health of each service")
    p.set_defaults(run=cmd_status, local=True)
    p = sub.add_parser("trace", help="show a trace as a waterfall (no id: recent traces)")
    p.add_argument("trace_id", nargs="?")
    p.set_defaults(run=cmd_trace, local=True)
    p = sub.add_parser("keys", help="API keys")
    ks = p.add_subparsers(dest="action", required=True)
    k = ks.add_parser("create", help="create a key for NAME with a role")
    k.add_argument("name")
    k.add_argument("--role", required=True, choices=[r.name.lower() for r in auth.Role])
    k.add_argument("--expires", type=duration_s, help="lifetime, e.g. 12h or 30d (default: no expiry)")
    k.add_argument("--grant", action="append", metavar="SERVICE/METHOD",
                   help="a single method allowed beyond the role, e.g. FeedbackService/LogInferences (repeatable)")
    k.set_defaults(run=cmd_keys_create, local=True)
    k = ks.add_parser("list", help="the keys: name, role, created, expiry (never the keys themselves)")
    k.set_defaults(run=cmd_keys_list, local=True)
    k = ks.add_parser("revoke", help="remove NAME's key")
    k.add_argument("name")
    k.set_defaults(run=cmd_keys_revoke, local=True)
    models.register(sub)
    index.register(sub)
    prompts.register(sub)
    generate.register(sub)
    pipelines.register(sub)
    feedback.register(sub)
    tune.register(sub)
    evaluations.register(sub)
    release.register(sub)
    datasets.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "local", False):
        try:
            args.run(args)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    from llmops.core import telemetry  # only commands that call services are traced

    provider = telemetry.create_tracer_provider("llmops-cli")
    from opentelemetry import trace

    trace.set_tracer_provider(provider)
    client = Client.local()
    try:
        with trace.get_tracer("llmops.cli").start_as_current_span(f"llmops {args.command} {getattr(args, 'action', '')}".strip()) as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            try:
                args.run(client, args)
            except (CallError, grpc.RpcError) as exc:
                if isinstance(exc, grpc.RpcError):  # streams raise grpc's own error
                    exc = CallError.from_rpc(exc)
                print(f"error: {exc.code.name}: {exc.message}", file=sys.stderr)
                print(f"trace {trace_id}", file=sys.stderr)
                return 1
            except DomainError as exc:  # checks made here before calling (e.g. a model folder)
                print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
                return 1
        print(f"trace {trace_id}", file=sys.stderr)
        return 0
    finally:
        client.close()
        provider.shutdown()


if __name__ == "__main__":
    sys.exit(main())
