"""``flowcheck plan``: every workload to every workload on every served port, decided by the model.

``--format json`` writes a document of decided flows (docs/contracts.md, "Decided flows"):
``plan_header`` and one ``decided_flow_json`` per planned flow; ``--json-version 1`` writes the
shape before decided flows (``{"results": [...]}``). The header and the per-flow dict are built by
those functions only. ``--by identity --format json`` writes a document of its own kind and format
(``identity_plan_header``), which ``--json-version`` does not choose. Either document is streamed as
it is decided (``flowcheck.cli.json_stream``), compact unless ``--indent`` or a terminal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from flowcheck.cli.common import add_json_version_argument, add_model_arguments, load_model, port_argument
from flowcheck.cli.exit_codes import ExitCode
from flowcheck.cli.json_stream import write_encoded_json_stream, write_json_stream
from flowcheck.cli.plan_encoding import encoded_plan_records
from flowcheck.errors import InputError
from flowcheck.model.decided_flow import decided_flow_json, document_header
from flowcheck.model.engine import Model
from flowcheck.model.flows import WorkloadEndpoint
from flowcheck.model.identity_plan import identities_json, identity_plan_header, iter_identity_plan
from flowcheck.model.matrix import PlannedFlow, decide_matrix, iter_matrix, iter_matrix_classes
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
    parser.add_argument("--port", type=port_argument, metavar="PORT",
                        help="only this destination port: a number, or a port name of the topology (metrics)")
    parser.add_argument("--protocol", type=str.upper, choices=("TCP", "UDP", "SCTP"), help="only this protocol")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table: one flow per line with its decisive reason; matrix: the truth table "
                             "(sources x destination:port); html: the truth table as one self-contained page; "
                             "json: one decided flow per entry")
    parser.add_argument("--by", choices=BY, default="workload",
                        help="workload (default): one line per workload flow; identity: one line per source "
                             "identity, destination identity and port, with the workloads it stands for "
                             "(--format table, markdown or json)")
    parser.add_argument("--indent", type=_indent, metavar="N",
                        help="--format json: indent by N spaces (default: compact, one line -- or 2 when "
                             "stdout is a terminal); indenting is slower and the output larger")
    add_json_version_argument(parser)
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
    if args.by == "identity" and isinstance(args.port, str):
        raise InputError(f"--by identity: --port takes a number here, got the port name {args.port!r} (a name "
                         "can stand for different numbers in the workloads of one identity)")
    if args.by == "identity" and args.json_version is not None:
        raise InputError("--json-version: not with --by identity (its JSON document has a format of its own, "
                         "docs/contracts.md)")
    if args.indent is not None and args.format != "json":
        raise InputError(f"--indent: lays out --format json only, not --format {args.format}")
    model = load_model(args)
    indent = args.indent if args.indent is not None else (2 if sys.stdout.isatty() else None)
    if args.by == "identity":
        return _run_by_identity(args, model, indent)
    if args.format == "json":
        _write_plan_json(args, model, indent)
        return ExitCode.OK
    from flowcheck.report.flow_list import render_flow_markdown, render_flow_table
    from flowcheck.report.html_page import render_plan_html
    from flowcheck.report.records import decided_record
    from flowcheck.report.terminal import render_plan_table

    planned = plan_flows(model, args.port, args.protocol)
    metadata = {"semantics": args.semantics, "topology": str(args.topology),
                "policies": ", ".join(map(str, args.policies))}
    flows = [decided_record(p.flow, p.decision) for p in planned]
    if args.format == "markdown":
        sys.stdout.write(render_flow_markdown(flows))
    elif args.format == "html":
        sys.stdout.write(render_plan_html(flows, metadata=metadata))
    elif args.format == "matrix":
        sys.stdout.write(render_plan_table(flows, metadata=metadata) + "\n")
    else:
        sys.stdout.write(render_flow_table(flows))
    return ExitCode.OK


def _write_plan_json(args: argparse.Namespace, model: Model, indent: int | None) -> None:
    """The plan as JSON, streamed as it is decided: version 2 (decided flows, with the warnings) or 1 (as before)."""
    record: Callable[[PlannedFlow], dict[str, Any]]
    if args.json_version == 1:
        head, key, record = plan_head(), "results", plan_record
    else:
        head, key, record = {**plan_header(args), **_warnings_head(args)}, "flows", _decided_flow
    if isinstance(args.port, str):  # a port name: every destination port of that name, as the tables show it
        planned = plan_flows(model, args.port, args.protocol)
        write_json_stream(sys.stdout, head, key, map(record, planned), indent=indent)
    elif indent is None:
        cells = iter_matrix_classes(model, port=args.port, protocol=args.protocol)
        write_encoded_json_stream(sys.stdout, head, key, encoded_plan_records(cells, record))
    else:
        planned_flows = iter_matrix(model, port=args.port, protocol=args.protocol)
        write_json_stream(sys.stdout, head, key, map(record, planned_flows), indent=indent)


def _decided_flow(planned: PlannedFlow) -> dict[str, Any]:
    return decided_flow_json(planned.flow, planned.decision)


def _warnings_head(args: argparse.Namespace) -> dict[str, Any]:
    """What in the policies matches nothing (``cli.common.load_model``): known before the first flow."""
    return {"warnings": [w.to_json() for w in args.match_warnings]}


def _run_by_identity(args: argparse.Namespace, model: Model, indent: int | None) -> int:
    """``--by identity``: one path per (source identity, destination identity, port) with its workloads."""
    paths = iter_identity_plan(model, port=args.port, protocol=args.protocol)
    if args.format == "json":
        head = {**identity_plan_header(**_planned(args)), "by": "identity", **_warnings_head(args),
                "identities": identities_json(model)}
        write_json_stream(sys.stdout, head, "results", (p.to_json() for p in paths), indent=indent)
    else:
        from flowcheck.report.identity_list import render_identity_markdown, render_identity_table

        render = render_identity_markdown if args.format == "markdown" else render_identity_table
        sys.stdout.write(render(list(paths), model.identities))
    return ExitCode.OK


def plan_header(args: argparse.Namespace) -> dict[str, Any]:
    """What a plan document says before its flows: kind, format, and what was planned."""
    return document_header("plan", **_planned(args))


def _planned(args: argparse.Namespace) -> dict[str, Any]:
    """What was planned, as both plan documents say it after their kind and format."""
    return {"semantics": args.semantics, "topology": str(args.topology), "policies": [str(p) for p in args.policies]}


def plan_flows(model: Model, port: int | str | None, protocol: str | None) -> list[PlannedFlow]:
    """The plan, restricted to ``port`` (a number, or a port name: every destination port of that name)."""
    if port is None or isinstance(port, int):
        return decide_matrix(model, port=port, protocol=protocol)
    workloads = model.topology.workloads
    numbers = sorted({(p.protocol, p.port) for w in workloads for p in w.named_port(port)
                      if protocol is None or p.protocol == protocol})
    if not numbers:
        names = sorted({p.name for w in workloads for p in w.ports if p.name})
        raise InputError(f"--port {port}: no workload of the topology serves a "
                         f"{protocol + ' ' if protocol else ''}port named {port!r} "
                         f"(port names: {', '.join(names) or 'none'})")
    order: dict[str, tuple[int, dict[tuple[str, int | None], int]]] = {
        w.ref: (i, {(p.protocol, p.port): j for j, p in enumerate(w.ports)}) for i, w in enumerate(workloads)}
    named = {(w.ref, p.protocol, p.port) for w in workloads for p in w.named_port(port)}
    chosen = [p for proto, number in numbers for p in decide_matrix(model, port=number, protocol=proto)
              if isinstance(p.flow.destination, WorkloadEndpoint)
              and (p.flow.destination.ref, p.flow.protocol, p.flow.port) in named]

    def place(planned: PlannedFlow) -> tuple[int, int, int]:
        src, dst = planned.flow.source, planned.flow.destination
        assert isinstance(src, WorkloadEndpoint) and isinstance(dst, WorkloadEndpoint)
        index, ports = order[dst.ref]
        return order[src.ref][0], index, ports[(planned.flow.protocol, planned.flow.port)]

    return sorted(chosen, key=place)
