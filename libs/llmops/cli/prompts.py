"""`llmops prompts ...`: prompt templates from the command line."""

from __future__ import annotations

import argparse
import difflib
import json

from llmops.api.prompt.v1 import prompt_pb2 as pb
from llmops.cli import aliases
from llmops.client import Client
from llmops.client.prompt import variable


def _role(r: int) -> str:
    return pb.Role.Name(r).removeprefix("ROLE_").lower()


def version_text(v: pb.PromptVersion) -> str:
    """A version as text (for show and diff)."""
    lines = [f"# {v.name}"]
    for var in v.variables:
        kind = pb.VariableType.Name(var.type).removeprefix("VARIABLE_TYPE_").lower()
        default = f" = {json.dumps(var.default_value.string_value or var.default_value.number_value)}" \
            if var.HasField("default_value") else ""
        lines.append(f"variable {var.name}: {kind}{default}")
    if v.retrieval.index:
        lines.append(f"retrieval: index {v.retrieval.index}, top_k {v.retrieval.top_k}")
    for m in v.messages:
        lines.append(f"--- {_role(m.role)}")
        lines.extend(m.content.splitlines())
    return "\n".join(lines)


def cmd_create(client: Client, args) -> None:
    p = client.prompt
    if args.new:
        p.create_template(args.template, args.description)
    messages = []
    if args.system:
        messages.append(("system", args.system))
    messages.append(("user", args.user))
    variables = [variable(*spec.split(":", 1)) if ":" in spec else variable(spec) for spec in args.variable or []]
    v = p.create_version(args.template, messages, variables=variables, index=args.index or "", top_k=args.top_k)
    print(f"created {v.name}")


def cmd_list(client: Client, args) -> None:
    for t in client.prompt.list_templates():
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(t.aliases.items()))
        print(f"{t.name.removeprefix('prompts/'):<28} latest {t.latest_version:<4} {aliases}")


def cmd_show(client: Client, args) -> None:
    print(version_text(client.prompt.get_version(args.ref)))


def cmd_review(client: Client, args) -> None:
    review = client.prompt.approve if args.approve else client.prompt.reject
    v = review(args.ref, args.comment)
    print(f"{v.name}: {pb.ApprovalState.Name(v.approval).removeprefix('APPROVAL_STATE_').lower()} by {v.reviewer}")


def cmd_events(client: Client, args) -> None:
    for e in client.prompt.events(args.template or ""):
        what = pb.PromptEventType.Name(e.type).removeprefix("PROMPT_EVENT_TYPE_").lower()
        alias = f" {e.alias} -> {e.version} (was {e.previous_version or '-'})" if e.alias else f" version {e.version}"
        print(f"{e.event_time.ToJsonString()[:19]}  {e.template.removeprefix('prompts/')}  {what}{alias}  by "
              f"{e.actor}{'  ' + repr(e.comment) if e.comment else ''}")


def cmd_render(client: Client, args) -> None:
    variables = dict(kv.split("=", 1) for kv in args.var or [])
    out = client.prompt.assemble(args.ref, variables, context_window_tokens=args.context_window,
                                 reserve_output_tokens=args.reserve, tokenizer_model=args.tokenizer_model or "")
    for m in out.messages:
        print(f"--- {_role(m.role)}\n{m.content}")
    print(f"--- {out.template_version}; {out.prompt_tokens} tokens; {len(out.chunks)} chunks"
          + (" (some dropped to fit)" if out.truncated else ""))
    for c in out.chunks:
        print(f"  {c.citation} {c.chunk_id} score {c.score:.3f} ({c.tokens} tokens)")


def cmd_diff(client: Client, args) -> None:
    a, b = (version_text(client.prompt.get_version(r)).splitlines() for r in (args.a, args.b))
    print("\n".join(difflib.unified_diff(a, b, args.a, args.b, lineterm="")) or "no differences")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prompts", help="prompt templates")
    s = p.add_subparsers(dest="action", required=True)
    a = s.add_parser("create", help="add a version to a template (--new creates the template)")
    a.add_argument("template")
    a.add_argument("--new", action="store_true")
    a.add_argument("--description", default="")
    a.add_argument("--system", help="system message template")
    a.add_argument("--user", required=True, help="user message template, e.g. '{{ question }}'")
    a.add_argument("--variable", action="append", metavar="NAME[:TYPE]")
    a.add_argument("--index", help="retrieval index for the {{ context }} variable")
    a.add_argument("--top-k", type=int, default=5)
    a.set_defaults(run=cmd_create)
    a = s.add_parser("list", help="templates")
    a.set_defaults(run=cmd_list)
    a = s.add_parser("show", help="one version (name@version or name@alias)")
    a.add_argument("ref")
    a.set_defaults(run=cmd_show)
    aliases.add_command(s, "prompt", "prompt template")
    for verb in ("approve", "reject"):
        a = s.add_parser(verb, help=f"{verb} a version (name@version) for protected aliases (role approver)")
        a.add_argument("ref")
        a.add_argument("--comment", default="")
        a.set_defaults(run=cmd_review, approve=verb == "approve")
    a = s.add_parser("events", help="the audit log: versions created, reviewed, aliases moved")
    a.add_argument("template", nargs="?")
    a.set_defaults(run=cmd_events)
    a = s.add_parser("render", help="assemble a prompt (with retrieved context)")
    a.add_argument("ref")
    a.add_argument("--var", action="append", metavar="NAME=VALUE")
    a.add_argument("--context-window", type=int, default=0)
    a.add_argument("--reserve", type=int, default=0)
    a.add_argument("--tokenizer-model", help="registry model whose tokenizer.json counts tokens")
    a.set_defaults(run=cmd_render)
    a = s.add_parser("diff", help="differences between two versions")
    a.add_argument("a")
    a.add_argument("b")
    a.set_defaults(run=cmd_diff)
