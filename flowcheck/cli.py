"""The ``flowcheck`` command.

Subcommands compose the layers; each is a small function taking parsed arguments and returning an
exit code. Exit codes are a contract scripts rely on (design §4): 0 done, 2 bad input (the message
names the file, the document and the field), 1 anything else. A ``FlowcheckError`` becomes a
one-line message on stderr, never a traceback; an unexpected exception is reported as an internal
error (set ``FLOWCHECK_DEBUG=1`` to see its traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from flowcheck import __version__
from flowcheck.errors import FlowcheckError, InputError
from flowcheck.model.validation import validate_paths

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2

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
    return parser


def _cmd_validate(args: argparse.Namespace) -> int:
    report = validate_paths(args.paths)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    print(f"{len(report.checked)} objects checked, {len(report.errors)} errors")
    return EXIT_OK if report.ok else EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Command | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return func(args)
    except InputError as exc:
        print(f"flowcheck: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FlowcheckError as exc:
        print(f"flowcheck: error: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("flowcheck: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("FLOWCHECK_DEBUG"):
            traceback.print_exc()
        print(f"flowcheck: internal error: {type(exc).__name__}: {exc} "
              "(set FLOWCHECK_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
