"""`llmops models|prompts alias NAME ALIAS [VERSION] [--delete]`: one alias command for every
versioned resource (the services share one alias contract)."""

from __future__ import annotations

import argparse


def add_command(sub: argparse._SubParsersAction, client_attr: str, noun: str) -> None:
    """Add `alias` to a command group whose client (`client.<client_attr>`) has `set_alias` and
    `delete_alias`."""
    a = sub.add_parser("alias", help=f"point an alias of a {noun} at a version (or --delete it)")
    a.add_argument("name", metavar=noun.replace(" ", "-"))
    a.add_argument("alias")
    a.add_argument("version", type=int, nargs="?")
    a.add_argument("--delete", action="store_true", help="remove the alias")
    a.set_defaults(run=lambda client, args: _run(getattr(client, client_attr), args))


def _run(api, args) -> None:
    if args.delete:
        api.delete_alias(args.name, args.alias)
        print(f"alias {args.alias} removed from {args.name}")
        return
    if args.version is None:
        raise SystemExit("give a version number, or --delete")
    resource = api.set_alias(args.name, args.alias, args.version)
    print(f"{args.name}@{args.alias} -> version {resource.aliases[args.alias]}")
