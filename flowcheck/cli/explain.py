"""``flowcheck explain``: what the policies do to given flows, and why."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from flowcheck.cli.common import add_json_version_argument, add_model_arguments, load_model, port_argument
from flowcheck.cli.exit_codes import ExitCode
from flowcheck.errors import TopologyError
from flowcheck.model.decided_flow import decided_flow_json, document_header
from flowcheck.model.explain import Explanation, explain, explanations_text
from flowcheck.model.flows import FLOW_PROTOCOLS, Flow, endpoint_from_text, load_flows, parse_flow
from flowcheck.model.topology import Topology

# The flows format, briefly, for --help (README "Topology and flows files" has it in full).
FLOWS_HELP = ("YAML or JSON list of flows, each {from: NS/NAME, to: NS/NAME | {entity: world, ip: IP} | "
              "{fqdn: NAME, ip: IP}, protocol: TCP|UDP|SCTP|ICMP, port: N|NAME, http: {method, path, headers}, "
              "dns: {query: NAME}, icmp: {type: N}}")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "explain",
        help="say what the policies do to given flows, and why",
        description="Decide given flows with the policy model and list the reasons (policy kind, namespace/name, "
                    "direction, rule). Endpoints: namespace/name (a workload), an entity (world, host, "
                    "remote-node, kube-apiserver, ...; entity:world@1.1.1.1 adds its IP) or, as destination, "
                    "fqdn:NAME@IP. An address the source got by resolving a name is fqdn:NAME@IP (toFQDNs rules "
                    "judge it on NAME); entity:world@IP is one no DNS answer gave, which no toFQDNs rule selects "
                    "(a drop names the toFQDNs rule that would open it were it an answer for a name it matches).",
    )
    add_model_arguments(parser)
    parser.add_argument("--flows", metavar="FILE", help=FLOWS_HELP)
    parser.add_argument("--from", dest="source", metavar="EP", help="source endpoint")
    parser.add_argument("--to", dest="destination", metavar="EP", help="destination endpoint")
    parser.add_argument("--port", type=port_argument, metavar="PORT",
                        help="destination port: a number, or the name of a port the destination workload serves "
                             "(metrics); not for ICMP; 53 with --dns-query")
    parser.add_argument("--protocol", type=str.upper, choices=FLOW_PROTOCOLS,
                        help="TCP, UDP, SCTP or ICMP; left out: the protocol of the port --port names, else UDP with "
                             "--dns-query, else TCP (as flows files and suites read it)")
    parser.add_argument("--icmp-type", type=int, help="ICMP type for --protocol ICMP (default 8, echo request)")
    parser.add_argument("--http-method", metavar="M", help="an HTTP request with this method")
    parser.add_argument("--http-path", metavar="P", help="an HTTP request for this path")
    parser.add_argument("--http-header", metavar="'K: V'", action="append", default=[],
                        help="an HTTP request header (repeatable)")
    parser.add_argument("--http-host", metavar="H", help="the HTTP Host (:authority) of the request")
    parser.add_argument("--dns-query", metavar="NAME", help="a DNS query for NAME")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    add_json_version_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model = load_model(args)
    flows = flows_from_args(args, model.topology)
    explained = explain(model, flows)
    if args.format == "json":
        if args.json_version == 1:
            print(json.dumps([e.to_json() for e in explained], indent=2))
        else:
            document = document_header("explain", semantics=args.semantics)
            document["flows"] = [explanation_json(e) for e in explained]
            print(json.dumps(document, indent=2))
    else:
        sys.stdout.write(explanations_text(explained))
    return ExitCode.OK


def explanation_json(explained: Explanation) -> dict[str, object]:
    """A decided flow (version 2), with ``semantics_note`` when the other ``--semantics`` decides otherwise."""
    out = decided_flow_json(explained.flow, explained.decision)
    if explained.semantics_note:
        out["semantics_note"] = explained.semantics_note
    return out


def flows_from_args(args: argparse.Namespace, topology: Topology) -> list[Flow]:
    single = [args.source, args.destination, args.port, args.protocol, args.icmp_type, args.http_method, args.http_path,
              args.http_host, args.dns_query]
    if args.flows:
        if any(v is not None for v in single) or args.http_header:
            raise TopologyError("command line", "--flows", "give either --flows or --from/--to/..., not both")
        return load_flows(args.flows, topology)

    def fail(field: str, message: str) -> TopologyError:
        return TopologyError("command line", field, message)

    if args.source is None or args.destination is None:
        raise fail("--from/--to", "explain needs --flows FILE, or --from EP --to EP --port N --protocol P")
    # Left-out options mean what they mean in a flows file (``flowcheck.model.flows.resolve_transport``).
    raw: dict[str, object] = {"from": endpoint_from_text(args.source), "to": endpoint_from_text(args.destination),
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
             "http": "--http-*", "http.method": "--http-method", "http.path": "--http-path",
             "http.headers": "--http-header", "http.host": "--http-host", "dns": "--dns-query"}

    def fail_option(field: str, message: str) -> TopologyError:
        key = field.split(".")[0].split("[")[0]
        return TopologyError("command line", names.get(field, names.get(key, field)), message)

    return [parse_flow(raw, "", fail_option, topology)]
