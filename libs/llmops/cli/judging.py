"""`--judge ROUTE --rubric TEMPLATE@ALIAS`, shared by the commands that score answers
(`models compare`, `pipelines eval`)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser, scored: str) -> None:
    """The two flags; `scored` says what the judge scores ("every answer", ...)."""
    parser.add_argument("--judge", metavar="ROUTE", help=f"also score {scored} with this route as judge")
    parser.add_argument("--rubric", metavar="TEMPLATE@ALIAS", help="the judge's rubric: a prompt template with "
                        "variables question, reference and answer (required with --judge)")


def judge_of(client, args):
    """The `Judge` the flags name, or None without --judge."""
    if bool(args.judge) != bool(args.rubric):
        raise SystemExit("--judge and --rubric go together: the route that judges and the rubric it follows")
    if not args.judge:
        return None
    from llmops.evaluation.judge import Judge

    return Judge(client, args.judge, args.rubric)
