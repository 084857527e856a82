"""``flowcheck baseline record|compare``: what every flow did in a run, and what changed between two.

Examples::

    flowcheck baseline record reports/before/matrix.json --output before.baseline.json \\
        --meta cilium_version=1.16.5
    flowcheck baseline compare before.baseline.json reports/after/      # a run dir works as NEW

``compare`` exits 1 when any flow's verdict changed, a flow is new or was removed, or the new run
has flows whose probe failed (an error is never a pass); a malformed, missing or unreadable file is
bad input (exit 2), named with its field.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from flowcheck.cli.common import missing_action
from flowcheck.cli.exit_codes import ExitCode
from flowcheck.errors import InputError

# The report layer is imported by the actions that use it, not by every `flowcheck` start.


def register(subparsers: Any) -> None:
    baseline: argparse.ArgumentParser = subparsers.add_parser(
        "baseline",
        help="record a run's verdicts as a baseline, or compare two baselines (before/after an upgrade)",
        description="Record what every flow did in a run (from its matrix.json) and compare two such "
                    "baselines: exit 1 when any flow's verdict changed, a flow is new or a flow was removed.",
    )
    baseline.set_defaults(func=lambda _args: missing_action(baseline))
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
    record.set_defaults(func=run_record)

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
    compare.set_defaults(func=run_compare)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def run_record(args: argparse.Namespace) -> int:
    from flowcheck.report.baseline import dump_baseline, record_baseline, write_baseline
    from flowcheck.report.files import read_matrix

    baseline = record_baseline(read_matrix(args.matrix), dict(args.meta))
    if args.output:
        try:
            write_baseline(baseline, args.output)
        except OSError as exc:
            raise InputError(f"{args.output}: cannot write the baseline: {exc.strerror or exc}") from None
        print(f"baseline of {len(baseline.entries)} flows written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(dump_baseline(baseline))
    return ExitCode.OK


def run_compare(args: argparse.Namespace) -> int:
    from flowcheck.report.baseline import compare_baselines, read_baseline, render_diff

    old = read_baseline(args.old)
    new = read_baseline(args.new)
    diff = compare_baselines(old, new)
    if args.format == "json":
        sys.stdout.write(json.dumps(diff.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_diff(diff, old_label=args.old, new_label=args.new))
    return ExitCode.FAILED if diff.failed else ExitCode.OK
