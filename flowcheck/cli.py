"""The ``flowcheck`` command.

Subcommands compose the layers; each is a small function taking parsed arguments and returning an
exit code. Exit codes are a contract scripts rely on (README "The flowcheck command"):

    0    done (no failure, no change)
    1    a failure or a change: a mismatch, a changed verdict, a cluster or tool that failed
    2    bad input: the message names the file, the document and the field (or the option)
    3    internal error: a flowcheck bug (set FLOWCHECK_DEBUG=1 for the traceback)
    130  interrupted (Ctrl-C)
    141  stdout was closed early (``flowcheck plan | head``): nothing more is printed, as a Unix
         tool killed by SIGPIPE (128 + 13) would end

A ``FlowcheckError`` becomes a one-line message on stderr, never a traceback, so CI can tell a
policy regression (1) from a mistake in its input (2) and from a flowcheck bug (3).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
from collections.abc import Callable, Sequence

from flowcheck import __version__
from flowcheck.cluster.cleanup import add_cleanup_command
from flowcheck.errors import EXIT_INTERNAL as EXIT_INTERNAL  # re-exported: 3 in this command's table too
from flowcheck.errors import (
    ContextRefused,
    FlowcheckError,
    InputError,
    TopologyError,
    report_internal_error,
)
from flowcheck.harness.preupgrade import add_preupgrade_command
from flowcheck.manifests.validation import validate_paths
from flowcheck.model.engine import SEMANTICS, Model
from flowcheck.model.explain import explain, explanations_text
from flowcheck.model.flows import FLOW_PROTOCOLS, Flow, load_flows, parse_flow
from flowcheck.model.matrix import decide_matrix
from flowcheck.model.policies import load_policies
from flowcheck.model.render import plan_json
from flowcheck.model.topology import Topology, load_topology
from flowcheck.report.baseline_cli import add_baseline_command
from flowcheck.report.flow_list import render_flow_markdown, render_flow_table
from flowcheck.report.html_page import render_plan_html
from flowcheck.report.records import CheckedFlow
from flowcheck.report.terminal import render_plan_table

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as the shell reports it
EXIT_STDOUT_CLOSED = 141  # 128 + SIGPIPE

# The topology and flows formats, briefly, for --help (README "Topology and flows files" has them in full).
TOPOLOGY_HELP = ("the scenario's workloads (YAML): `namespaces: {NAME: {labels: {...}}}` and `workloads:` list "
                 "of {name, namespace, labels, ports: [{port, protocol, name}], serviceAccount, ip, existing}; "
                 "see fixtures/topology.yaml")
FLOWS_HELP = ("YAML or JSON list of flows, each {from: NS/NAME, to: NS/NAME | {entity: world, ip: IP} | "
              "{fqdn: NAME, ip: IP}, protocol: TCP|UDP|SCTP|ICMP, port: N, http: {method, path, headers}, "
              "dns: {query: NAME}, icmp: {type: N}}")

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowcheck",
        description="Prove that a cluster's network policies do what their authors meant: predict "
                    "every path from the policies (offline) and probe it on a kind + Cilium cluster.",
    )
    parser.add_argument("--version", action="version", version=f"flowcheck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = sub.add_parser(
        "validate",
        help="validate policy manifests offline against the Kubernetes and Cilium CRD schemas",
        description="Validate NetworkPolicy and CiliumNetworkPolicy manifests (files, directories, "
                    "kustomizations) against Kubernetes' OpenAPI schemas and Cilium's CRD schema.",
    )
    validate.add_argument("paths", nargs="+", metavar="PATH", help="file or directory (recursive)")
    validate.set_defaults(func=_cmd_validate)

    plan_cmd = sub.add_parser(
        "plan",
        help="predict every workload -> workload flow on every served port from the policies (offline)",
        description="Decide, with the policy model, every flow from every workload of the topology to every "
                    "workload on every port it serves (or only --port/--protocol).",
    )
    _add_model_arguments(plan_cmd)
    plan_cmd.add_argument("--port", type=int, help="only this destination port")
    plan_cmd.add_argument("--protocol", type=str.upper, choices=("TCP", "UDP", "SCTP"), help="only this protocol")
    plan_cmd.add_argument("--format", choices=("table", "json", "markdown", "matrix", "html"), default="table",
                          help="table: one flow per line with its decisive reason; matrix: the truth table "
                               "(sources x destination:port); html: the truth table as one self-contained page")
    plan_cmd.set_defaults(func=_cmd_plan)

    explain_cmd = sub.add_parser(
        "explain",
        help="say what the policies do to given flows, and why",
        description="Decide given flows with the policy model and list the reasons (policy kind, namespace/name, "
                    "direction, rule). Endpoints: namespace/name (a workload), an entity (world, host, "
                    "remote-node, kube-apiserver, ...; entity:world@1.1.1.1 adds its IP) or, as destination, "
                    "fqdn:NAME@IP. An address the source got by resolving a name is fqdn:NAME@IP (toFQDNs rules "
                    "judge it on NAME); entity:world@IP is one no DNS answer gave, which no toFQDNs rule selects "
                    "(a drop names the toFQDNs rule that would open it were it an answer for a name it matches).",
    )
    _add_model_arguments(explain_cmd)
    explain_cmd.add_argument("--flows", metavar="FILE", help=FLOWS_HELP)
    explain_cmd.add_argument("--from", dest="source", metavar="EP", help="source endpoint")
    explain_cmd.add_argument("--to", dest="destination", metavar="EP", help="destination endpoint")
    explain_cmd.add_argument("--port", type=int, help="destination port (not for ICMP)")
    explain_cmd.add_argument("--protocol", type=str.upper, choices=FLOW_PROTOCOLS, default="TCP")
    explain_cmd.add_argument("--icmp-type", type=int, help="ICMP type for --protocol ICMP (default 8, echo request)")
    explain_cmd.add_argument("--http-method", metavar="M", help="an HTTP request with this method")
    explain_cmd.add_argument("--http-path", metavar="P", help="an HTTP request for this path")
    explain_cmd.add_argument("--http-header", metavar="'K: V'", action="append", default=[],
                             help="an HTTP request header (repeatable)")
    explain_cmd.add_argument("--http-host", metavar="H", help="the HTTP Host (:authority) of the request")
    explain_cmd.add_argument("--dns-query", metavar="NAME", help="a DNS query for NAME")
    explain_cmd.add_argument("--format", choices=("text", "json"), default="text")
    explain_cmd.set_defaults(func=_cmd_explain)

    add_baseline_command(sub)
    add_cleanup_command(sub)
    add_preupgrade_command(sub)
    return parser


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topology", required=True, metavar="FILE", help=TOPOLOGY_HELP)
    parser.add_argument("--policies", required=True, action="extend", nargs="+", metavar="PATH",
                        help="policy files or directories (recursive; multi-document YAML, List objects, "
                             "kustomization directories); repeatable")
    parser.add_argument("--semantics", choices=SEMANTICS, default="cilium",
                        help="cilium (default): what Cilium does; kubernetes: the NetworkPolicy specification")


def _load_model(args: argparse.Namespace) -> Model:
    topology = load_topology(args.topology)
    policies = load_policies(args.policies)
    _print_notes(policies.notes)
    return Model(topology, policies, args.semantics)


def _cmd_plan(args: argparse.Namespace) -> int:
    model = _load_model(args)
    planned = decide_matrix(model, port=args.port, protocol=args.protocol)
    if args.format == "json":
        print(json.dumps(plan_json(planned), indent=2))
        return EXIT_OK
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
    return EXIT_OK


def _cmd_explain(args: argparse.Namespace) -> int:
    model = _load_model(args)
    flows = _flows_from_args(args, model.topology)
    explained = explain(model, flows)
    if args.format == "json":
        print(json.dumps([e.to_json() for e in explained], indent=2))
    else:
        sys.stdout.write(explanations_text(explained))
    return EXIT_OK


def _flows_from_args(args: argparse.Namespace, topology: Topology) -> list[Flow]:
    single = [args.source, args.destination, args.port, args.icmp_type, args.http_method, args.http_path,
              args.http_host, args.dns_query]
    if args.flows:
        if any(v is not None for v in single) or args.http_header:
            raise TopologyError("command line", "--flows", "give either --flows or --from/--to/..., not both")
        return load_flows(args.flows, topology)

    def fail(field: str, message: str) -> TopologyError:
        return TopologyError("command line", field, message)

    if args.source is None or args.destination is None:
        raise fail("--from/--to", "explain needs --flows FILE, or --from EP --to EP --port N --protocol P")
    raw: dict[str, object] = {"from": _endpoint_arg(args.source), "to": _endpoint_arg(args.destination),
                              "protocol": args.protocol}
    if args.port is not None:
        raw["port"] = args.port
    if args.icmp_type is not None:
        raw["icmp"] = {"type": args.icmp_type}
    if args.http_method or args.http_path or args.http_header or args.http_host:
        headers: dict[str, str] = {}
        for header in args.http_header:
            name, sep, value = header.partition(":")
            if not sep or not name.strip():
                raise fail("--http-header", f"expected 'Name: value', got {header!r}")
            headers[name.strip()] = value.strip()
        http: dict[str, object] = {"method": args.http_method or "GET", "path": args.http_path or "/",
                                   "headers": headers}
        if args.http_host:
            http["host"] = args.http_host
        raw["http"] = http
    if args.dns_query:
        raw["dns"] = {"query": args.dns_query}
    names = {"from": "--from", "to": "--to", "port": "--port", "protocol": "--protocol", "icmp": "--icmp-type",
             "http": "--http-*", "dns": "--dns-query"}

    def fail_option(field: str, message: str) -> TopologyError:
        key = field.split(".")[0].split("[")[0]
        return TopologyError("command line", names.get(key, field), message)

    return [parse_flow(raw, "", fail_option, topology)]


def _endpoint_arg(text: str) -> str | dict[str, str]:
    """``ns/name`` stays a workload; ``entity:world@1.1.1.1``, ``world``, ``fqdn:api.example.com@IP`` otherwise."""
    if "/" in text and not text.startswith(("entity:", "fqdn:")):
        return text
    kind, sep, rest = text.partition(":")
    if not sep or kind not in ("entity", "fqdn"):
        kind, rest = "entity", text
    name, at, ip = rest.partition("@")
    out = {kind: name}
    if at:
        out["ip"] = ip
    return out


def _cmd_validate(args: argparse.Namespace) -> int:
    report = validate_paths(args.paths)
    _print_notes(report.notes)
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    print(f"{len(report.checked)} objects checked, {len(report.errors)} errors")
    return EXIT_OK if report.ok else EXIT_BAD_INPUT


# A note repeated for many objects ("<file> (document N): <Kind> <name> <what>", the shape the model's
# notes have) is said once: what happened, how many objects, and the first few of them.
_OBJECT_NOTE = re.compile(r"^(?P<where>.+? \(document \d+(?:, item \d+)?\)): (?P<object>\S+ \S+) (?P<what>.+)$")
_NOTE_EXAMPLES = 5


def summarize_notes(notes: Sequence[str]) -> list[str]:
    """The notes to print: each distinct one once; one with a count for those repeated per object."""
    groups: dict[str, list[str]] = {}
    for note in notes:
        match = _OBJECT_NOTE.match(note)
        if match is None:
            groups.setdefault(note, [])
            continue
        groups.setdefault(match["what"], []).append(note)
    lines = []
    for what, members in groups.items():
        if len(members) <= 1:
            lines.append(members[0] if members else what)
            continue
        objects = []
        for member in members[:_NOTE_EXAMPLES]:
            match = _OBJECT_NOTE.match(member)
            assert match is not None
            objects.append(f"{match['object']} ({match['where']})")
        more = f", and {len(members) - _NOTE_EXAMPLES} more" if len(members) > _NOTE_EXAMPLES else ""
        plural = "have " + what[len("has "):] if what.startswith("has ") else what
        lines.append(f"{len(members)} objects {plural}: {', '.join(objects)}{more}")
    return lines


def _print_notes(notes: Sequence[str]) -> None:
    for line in summarize_notes(notes):
        print(f"note: {line}", file=sys.stderr)


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not complain about the closed pipe.

    The recipe from Python's documentation of SIGPIPE (``signal`` module, "Note on SIGPIPE").
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # stdout is not a file descriptor (e.g. captured in-process): nothing will flush to it


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Command | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        code = func(args)
        sys.stdout.flush()  # a reader that went away shows here, not as a complaint at interpreter exit
        return code
    except BrokenPipeError:
        _stdout_to_devnull()
        return EXIT_STDOUT_CLOSED
    except (InputError, ContextRefused) as exc:  # a refused context is the user's input to fix
        print(f"flowcheck: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FlowcheckError as exc:
        print(f"flowcheck: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("flowcheck: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        return report_internal_error(exc)


if __name__ == "__main__":
    raise SystemExit(main())
