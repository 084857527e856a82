"""``flowcheck plan``: every workload to every workload on every served port, decided by the model.

``--format json`` writes a document of decided flows (docs/contracts.md, "Decided flows"):
``plan_header`` and one ``decided_flow_json`` per planned flow; ``--json-version 1`` writes the
shape before decided flows (``{"results": [...]}``). The header and the per-flow dict are built by
those two functions only, so how the document is written (at once, or streamed) is one call here.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from flowcheck.cli.common import add_json_version_argument, add_model_arguments, load_model, port_argument
from flowcheck.cli.exit_codes import ExitCode
from flowcheck.errors import InputError
from flowcheck.model.decided_flow import decided_flow_json, document_header
from flowcheck.model.engine import Model
from flowcheck.model.flows import WorkloadEndpoint
from flowcheck.model.matrix import PlannedFlow, decide_matrix
from flowcheck.model.render import plan_json
from flowcheck.report.flow_list import render_flow_markdown, render_flow_table
from flowcheck.report.html_page import render_plan_html
from flowcheck.report.records import decided_record
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
    parser.add_argument("--port", type=port_argument, metavar="PORT",
                        help="only this destination port: a number, or a port name of the topology (metrics)")
    parser.add_argument("--protocol", type=str.upper, choices=("TCP", "UDP", "SCTP"), help="only this protocol")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table: one flow per line with its decisive reason; matrix: the truth table "
                             "(sources x destination:port); html: the truth table as one self-contained page; "
                             "json: one decided flow per entry")
    add_json_version_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model = load_model(args)
    planned = plan_flows(model, args.port, args.protocol)
    metadata = {"semantics": args.semantics, "topology": str(args.topology),
                "policies": ", ".join(map(str, args.policies))}
    if args.format == "json":
        if args.json_version == 1:
            print(json.dumps(plan_json(planned), indent=2))
        else:
            document = plan_header(args)
            document["flows"] = [decided_flow_json(p.flow, p.decision) for p in planned]
            print(json.dumps(document, indent=2))
        return ExitCode.OK
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


def plan_header(args: argparse.Namespace) -> dict[str, Any]:
    """What a plan document says before its flows: kind, format, and what was planned."""
    return document_header("plan", semantics=args.semantics, topology=str(args.topology),
                           policies=[str(p) for p in args.policies])


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
