"""``flowcheck validate PATH...``: manifests against the Kubernetes and Cilium CRD schemas, offline."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from flowcheck.cli.common import print_notes
from flowcheck.cli.exit_codes import ExitCode
from flowcheck.manifests.validation import validate_paths


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "validate",
        help="validate policy manifests offline against the Kubernetes and Cilium CRD schemas",
        description="Validate NetworkPolicy and CiliumNetworkPolicy manifests (files, directories, "
                    "kustomizations) against Kubernetes' OpenAPI schemas and Cilium's CRD schema.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="file or directory (recursive)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = validate_paths(args.paths)
    print_notes(report.notes)
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    print(f"{len(report.checked)} objects checked, {len(report.errors)} errors")
    return ExitCode.OK if report.ok else ExitCode.BAD_INPUT
