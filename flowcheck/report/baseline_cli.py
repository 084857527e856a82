"""``flowcheck baseline record|compare``: the argparse wiring of ``baseline``.

``flowcheck/cli.py`` adds these with ``add_baseline_command(subparsers)``; each leaf sets ``func``
to a function taking the parsed arguments and returning an exit code, as the other subcommands do.
Exit codes follow the command's contract (design §4): 0 done / no change, 1 differences found
(``compare``), 2 bad input -- a malformed, missing or unreadable file, named with its field, as one
line on stderr, never a traceback. The commands turn ``InputError`` into that line themselves, so
they behave the same whether ``cli.main`` or this module's ``main`` runs them.

Examples::

    flowcheck baseline record reports/before/matrix.json --output before.baseline.json \\
        --meta cilium_version=1.16.5
    flowcheck baseline compare before.baseline.json reports/after/      # a run dir works as NEW
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from flowcheck.errors import InputError
from flowcheck.report.baseline import (
    compare_baselines,
    dump_baseline,
    read_baseline,
    record_baseline,
    render_diff,
    write_baseline,
)
from flowcheck.report.files import read_matrix

EXIT_OK = 0
EXIT_CHANGES = 1
EXIT_BAD_INPUT = 2


def add_baseline_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``baseline`` (with ``record`` and ``compare``) to ``subparsers``; returns the ``baseline`` parser.

    ``subparsers`` is what ``ArgumentParser.add_subparsers()`` returned (typed ``Any`` because
    argparse's ``_SubParsersAction`` is private).
    """
    baseline: argparse.ArgumentParser = subparsers.add_parser(
        "baseline",
        help="record a run's verdicts as a baseline, or compare two baselines (before/after an upgrade)",
        description="Record what every flow did in a run (from its matrix.json) and compare two such "
                    "baselines: exit 1 when any flow's verdict changed, a flow is new or a flow was removed.",
    )
    baseline.set_defaults(func=lambda _args: _missing_subcommand(baseline))
    actions = baseline.add_subparsers(dest="baseline_command", metavar="ACTION")

    record = actions.add_parser(
        "record",
        help="write a baseline from a run's matrix.json",
        description="Write a baseline from a run's matrix.json (or the --flowcheck-report directory): per "
                    "flow, the observed verdict, or the model's verdict for flows that were never probed.",
    )
    record.add_argument("matrix", metavar="MATRIX", help="matrix.json, or the report directory containing it")
    record.add_argument("-o", "--output", metavar="FILE",
                        help="where to write the baseline (default: standard output)")
    record.add_argument("--meta", metavar="KEY=VALUE", action="append", type=_key_value, default=[],
                        help="add or override run metadata, e.g. --meta cilium_version=1.16.5 (repeatable)")
    record.set_defaults(func=_cmd_record)

    compare = actions.add_parser(
        "compare",
        help="print every flow whose verdict changed between two baselines; exit 1 if any did",
        description="Compare two baselines (or run reports): print every flow whose verdict changed, every "
                    "new and every removed flow. Exit 0 when there is no difference, 1 when there is (or when the "
                    "new run has flows whose probe failed: an error is never a pass), 2 when a file is malformed.",
    )
    compare.add_argument("old", metavar="OLD", help="baseline file, matrix.json or report directory (before)")
    compare.add_argument("new", metavar="NEW", help="baseline file, matrix.json or report directory (after)")
    compare.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    compare.set_defaults(func=_cmd_compare)
    return baseline


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _missing_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_BAD_INPUT


def _cmd_record(args: argparse.Namespace) -> int:
    try:
        report = read_matrix(args.matrix)
        baseline = record_baseline(report, dict(args.meta))
        if args.output:
            try:
                write_baseline(baseline, args.output)
            except OSError as exc:
                raise InputError(f"{args.output}: cannot write the baseline: {exc.strerror or exc}") from None
            print(f"baseline of {len(baseline.entries)} flows written to {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(dump_baseline(baseline))
    except InputError as exc:
        print(f"flowcheck: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    try:
        old = read_baseline(args.old)
        new = read_baseline(args.new)
    except InputError as exc:
        print(f"flowcheck: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    diff = compare_baselines(old, new)
    if args.format == "json":
        sys.stdout.write(json.dumps(diff.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_diff(diff, old_label=args.old, new_label=args.new))
    return EXIT_CHANGES if diff.failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``baseline ...`` on its own (``python -m flowcheck.report.baseline_cli baseline compare A B``)."""
    parser = argparse.ArgumentParser(prog="flowcheck")
    add_baseline_command(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
