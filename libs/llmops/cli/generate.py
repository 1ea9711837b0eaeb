"""`llmops routes ...`, `llmops generate` and `llmops usage`: the generation gateway from the
command line."""

from __future__ import annotations

import argparse
import sys

from llmops.api.generation.v1 import generation_pb2 as pb
from llmops.client import Client
from llmops.client.generation import provider_target, registry_target


def _target(text: str) -> pb.Target:
    """`registry:name@alias[=weight]` or `provider:URL|model|credential_ref[=weight]`."""
    spec, _, weight = text.rpartition("=") if text.rsplit("=", 1)[-1].isdigit() else (text, "", "1")
    kind, _, rest = spec.partition(":")
    if kind == "registry":
        return registry_target(rest, int(weight))
    if kind == "provider":
        url, model, cred = (rest.split("|") + ["", ""])[:3]
        return provider_target(url, model, cred, int(weight))
    raise SystemExit(f"bad target {text!r}: use registry:NAME@ALIAS[=WEIGHT] or provider:URL|MODEL|CREDENTIAL_REF[=WEIGHT]")


def _print_route(r: pb.Route) -> None:
    lim = r.limits
    print(f"{r.name}")
    for t in r.targets:
        what = (f"registry {t.registry_model}" if t.WhichOneof("kind") == "registry_model"
                else f"provider {t.provider.model} at {t.provider.base_url} (credential {t.provider.credential_ref or '-'})")
        print(f"  {'weight ' + str(t.weight) if t.weight else 'fallback':<10} {what}")
    print(f"  limits: {lim.requests_per_minute or '-'} rpm, {lim.tokens_per_minute or '-'} tpm, "
          f"budget {lim.token_budget or '-'}, max output {lim.max_output_tokens or '-'}")


def cmd_create(client: Client, args) -> None:
    _print_route(client.generation.create_route(
        args.route, [_target(t) for t in args.target], requests_per_minute=args.rpm, tokens_per_minute=args.tpm,
        token_budget=args.budget, max_output_tokens=args.max_output_tokens))


def cmd_list(client: Client, args) -> None:
    for r in client.generation.list_routes():
        _print_route(r)


def cmd_show(client: Client, args) -> None:
    _print_route(client.generation.get_route(args.route))


def cmd_generate(client: Client, args) -> None:
    messages = ([("system", args.system)] if args.system else []) + [("user", args.text)]
    sampling = dict(max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed)
    if not args.stream:
        r = client.generation.generate(args.route, messages, **sampling)
        print(r.text)
        usage = r.usage
        served = r.served_by
    else:
        served = ""
        for msg in client.generation.stream(args.route, messages, **sampling):
            served = served or msg.served_by
            sys.stdout.write(msg.delta)
            sys.stdout.flush()
            usage = msg.usage
        print()
    print(f"[{served}: {usage.input_tokens} in, {usage.output_tokens} out, first token after "
          f"{usage.time_to_first_token.ToMilliseconds()} ms]", file=sys.stderr)


def cmd_usage(client: Client, args) -> None:
    records = client.generation.get_usage(args.caller or "", args.route or "")
    if not records:
        print("no usage recorded")
    for u in records:
        print(f"{u.caller:<20} {u.route:<20} {u.requests:>8} requests {u.input_tokens:>10} in {u.output_tokens:>10} out")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("routes", help="generation routes")
    s = p.add_subparsers(dest="action", required=True)
    a = s.add_parser("create", help="create a route")
    a.add_argument("route")
    a.add_argument("--target", action="append", required=True,
                   help="registry:NAME@ALIAS[=WEIGHT] or provider:URL|MODEL|CREDENTIAL_REF[=WEIGHT]; "
                        "weight 0 = fallback only; repeat for several")
    a.add_argument("--rpm", type=int, default=0, help="requests per minute per caller")
    a.add_argument("--tpm", type=int, default=0, help="tokens per minute per caller")
    a.add_argument("--budget", type=int, default=0, help="total tokens per caller")
    a.add_argument("--max-output-tokens", type=int, default=0)
    a.set_defaults(run=cmd_create)
    a = s.add_parser("list", help="all routes")
    a.set_defaults(run=cmd_list)
    a = s.add_parser("show", help="one route")
    a.add_argument("route")
    a.set_defaults(run=cmd_show)
    p = sub.add_parser("generate", help="generate through a route")
    p.add_argument("route")
    p.add_argument("text")
    p.add_argument("--system", default="")
    p.add_argument("--max-tokens", type=int, default=0)
    p.add_argument("--temperature", type=float, default=None, help="default: the target's")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--stream", action="store_true")
    p.set_defaults(run=cmd_generate, action="")
    p = sub.add_parser("usage", help="token usage per caller and route")
    p.add_argument("--caller")
    p.add_argument("--route")
    p.set_defaults(run=cmd_usage, action="")
