"""``flowcheck plan``: every workload to every workload on every served port, decided by the model."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from flowcheck.cli.common import add_model_arguments, load_model
from flowcheck.cli.exit_codes import ExitCode
from flowcheck.model.matrix import decide_matrix
from flowcheck.model.render import plan_json
from flowcheck.report.flow_list import render_flow_markdown, render_flow_table
from flowcheck.report.html_page import render_plan_html
from flowcheck.report.records import CheckedFlow
from flowcheck.report.terminal import render_plan_table

FORMATS = ("table", "json", "markdown", "matrix", "html")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "plan",
        help="predict every workload -> workload flow on every served port from the policies (offline)",
        description="Decide, with the policy model, every flow from every workload of the topology to every "
                    "workload on every port it serves (or only --port/--protocol).",
    )
    add_model_arguments(parser)
    parser.add_argument("--port", type=int, help="only this destination port")
    parser.add_argument("--protocol", type=str.upper, choices=("TCP", "UDP", "SCTP"), help="only this protocol")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table: one flow per line with its decisive reason; matrix: the truth table "
                             "(sources x destination:port); html: the truth table as one self-contained page")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model = load_model(args)
    planned = decide_matrix(model, port=args.port, protocol=args.protocol)
    if args.format == "json":
        document = plan_json(planned)
        document["warnings"] = [w.to_json() for w in args.match_warnings]  # what matches nothing (cli.common)
        print(json.dumps(document, indent=2))
        return ExitCode.OK
    flows = [CheckedFlow(source=p.flow.source.describe(), destination=p.flow.destination.describe(),
                         protocol=p.flow.protocol, port=p.flow.port, model=p.decision.verdict,
                         model_reasons=p.decision.reasons) for p in planned]
    metadata = {"semantics": args.semantics, "topology": str(args.topology),
                "policies": ", ".join(map(str, args.policies))}
    if args.format == "markdown":
        sys.stdout.write(render_flow_markdown(flows))
    elif args.format == "html":
        sys.stdout.write(render_plan_html(flows, metadata=metadata))
    elif args.format == "matrix":
        sys.stdout.write(render_plan_table(flows, metadata=metadata) + "\n")
    else:
        sys.stdout.write(render_flow_table(flows))
    return ExitCode.OK
