"""``flowcheck plan``: every workload to every workload on every served port, decided by the model."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from flowcheck.cli.common import add_model_arguments, load_model
from flowcheck.cli.exit_codes import ExitCode
from flowcheck.cli.json_stream import write_encoded_json_stream, write_json_stream
from flowcheck.cli.plan_encoding import encoded_plan_records
from flowcheck.errors import InputError
from flowcheck.model.engine import Model
from flowcheck.model.identity_plan import identities_json, iter_identity_plan
from flowcheck.model.matrix import decide_matrix, iter_matrix, iter_matrix_classes
from flowcheck.model.render import plan_head, plan_record

# The report layer (tables, HTML) is imported by the formats that use it: JSON needs none of it.

FORMATS = ("table", "json", "markdown", "matrix", "html")
BY = ("workload", "identity")
IDENTITY_FORMATS = ("table", "json", "markdown")


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
    parser.add_argument("--by", choices=BY, default="workload",
                        help="workload (default): one line per workload flow; identity: one line per source "
                             "identity, destination identity and port, with the workloads it stands for "
                             "(--format table, markdown or json)")
    parser.add_argument("--indent", type=_indent, metavar="N",
                        help="--format json: indent by N spaces (default: compact, one line -- or 2 when "
                             "stdout is a terminal); indenting is slower and the output larger")
    parser.set_defaults(func=run)


def _indent(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of spaces, got {text!r}") from None
    if not 0 <= value <= 16:
        raise argparse.ArgumentTypeError(f"expected 0 to 16 spaces, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    if args.by == "identity" and args.format not in IDENTITY_FORMATS:
        raise InputError(f"--by identity: --format {args.format} draws workloads; use --format "
                         f"{', '.join(IDENTITY_FORMATS)}")
    model = load_model(args)
    indent = args.indent if args.indent is not None else (2 if sys.stdout.isatty() else None)
    if args.by == "identity":
        return _run_by_identity(args, model, indent)
    if args.format == "json":
        head = {**plan_head(), **_warnings_head(args)}
        if indent is None:
            cells = iter_matrix_classes(model, port=args.port, protocol=args.protocol)
            write_encoded_json_stream(sys.stdout, head, "results", encoded_plan_records(cells, plan_record))
        else:
            records = map(plan_record, iter_matrix(model, port=args.port, protocol=args.protocol))
            write_json_stream(sys.stdout, head, "results", records, indent=indent)
        return ExitCode.OK
    from flowcheck.report.flow_list import render_flow_markdown, render_flow_table
    from flowcheck.report.html_page import render_plan_html
    from flowcheck.report.records import CheckedFlow
    from flowcheck.report.terminal import render_plan_table

    planned = decide_matrix(model, port=args.port, protocol=args.protocol)
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


def _warnings_head(args: argparse.Namespace) -> dict[str, Any]:
    """What in the policies matches nothing (``cli.common.load_model``): known before the first flow."""
    return {"warnings": [w.to_json() for w in args.match_warnings]}


def _run_by_identity(args: argparse.Namespace, model: Model, indent: int | None) -> int:
    """``--by identity``: one path per (source identity, destination identity, port) with its workloads."""
    paths = iter_identity_plan(model, port=args.port, protocol=args.protocol)
    if args.format == "json":
        head = {"by": "identity", **_warnings_head(args), "identities": identities_json(model)}
        write_json_stream(sys.stdout, head, "results", (p.to_json() for p in paths), indent=indent)
    else:
        from flowcheck.report.identity_list import render_identity_markdown, render_identity_table

        render = render_identity_markdown if args.format == "markdown" else render_identity_table
        sys.stdout.write(render(list(paths), model.identities))
    return ExitCode.OK
