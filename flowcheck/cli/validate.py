"""``flowcheck validate PATH...``: manifests against the Kubernetes and Cilium CRD schemas, offline.

With ``--topology`` it also says what in the policies matches nothing in that topology (warnings;
``--strict`` fails on them). ``--format json`` prints everything as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from flowcheck.cli.common import TOPOLOGY_HELP, add_strict_argument, keep_warnings, print_notes, report_warnings
from flowcheck.cli.exit_codes import ExitCode
from flowcheck.errors import FlowcheckError, PolicyError
from flowcheck.manifests.documents import SourceDocument, unapplied_files
from flowcheck.manifests.validation import validate_paths
from flowcheck.model.policies import parse_policies
from flowcheck.model.topology import load_topology
from flowcheck.model.unmatched import MatchWarning, unmatched
from flowcheck.vocabulary import counted


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "validate",
        help="validate policy manifests offline against the Kubernetes and Cilium CRD schemas",
        description="Validate NetworkPolicy and CiliumNetworkPolicy manifests (files, directories, "
                    "kustomizations) against Kubernetes' OpenAPI schemas and Cilium's CRD schema. An object "
                    "defined twice and a path holding no object are errors. With --topology, also warn about "
                    "what in the policies matches nothing in that topology.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="file or directory (recursive)")
    parser.add_argument("--topology", metavar="FILE", help=TOPOLOGY_HELP)
    add_strict_argument(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    documents: list[SourceDocument] = []
    report = validate_paths(args.paths, keep=documents)
    warnings: list[MatchWarning] = []
    if args.topology is not None:
        topology = load_topology(args.topology)
        if report.ok:
            try:
                policies = parse_policies(documents, validate=False)  # validated above
            except FlowcheckError as exc:  # a schema-valid document the model still refuses
                report = type(report)(report.checked, (_as_policy_error(exc),), report.notes)
            else:
                warnings = unmatched(topology, policies)
    unapplied = [str(f) for f in unapplied_files(args.paths, documents)] if report.ok else []
    if args.format == "json":
        keep_warnings(args, warnings, unapplied)
        print(json.dumps({
            "kind": "flowcheck-validate",
            "format": 1,
            "checked": len(report.checked),
            "errors": [_error_json(e) for e in report.errors],
            "warnings": [w.to_json() for w in warnings],
            "unapplied": unapplied,
            "notes": list(report.notes),
        }, indent=2))
    else:
        print_notes(report.notes)
        report_warnings(args, warnings, [f"{path}: no kustomization lists it, so applying them (kubectl apply -k, "
                                         "Flux) never applies it" for path in unapplied])
        for error in report.errors:
            print(f"error: {error}", file=sys.stderr)
        summary = f"{counted(len(report.checked), 'object')} checked, {counted(len(report.errors), 'error')}"
        if unapplied:
            summary += f", {counted(len(unapplied), 'file')} no kustomization applies"
        print(summary + (f", {counted(len(warnings), 'warning')}" if args.topology is not None else ""))
    return ExitCode.OK if report.ok else ExitCode.BAD_INPUT


def _as_policy_error(exc: FlowcheckError) -> PolicyError:
    return exc if isinstance(exc, PolicyError) else PolicyError("<policies>", None, "", str(exc))


def _error_json(error: PolicyError) -> dict[str, Any]:
    return {"path": error.path, "document": error.document, "field": error.field, "message": error.message}
