"""``flowcheck replay``: flows a cluster really carried, decided against the policies.

Examples::

    hubble observe -o json --since 1h > flows.jsonl
    flowcheck replay flows.jsonl --topology fixtures/topology.yaml --policies manifests/network-policies
    flowcheck replay flows.jsonl --topology T --policies P --base origin/main   # what this change newly drops
    hubble observe -o json --last 10000 | flowcheck replay - --topology T --policies P --format json

The export is ``hubble observe -o json`` output, one JSON object per line (``-`` reads standard
input). Every record is mapped to the topology's workloads, entities or FQDNs and kept once per
distinct path; each path is decided under ``--policies`` and, with ``--base REF`` or
``--base-policies``, under the policies before the change too (``flowcheck.model.replay``). Records
that cannot be replayed are counted by reason, never dropped silently.

Exit status: 0, or 1 with ``--fail-on-drop`` when any observed path would be dropped (the headline);
2 for bad input (a file without a single flow record, an unknown ref).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from flowcheck.cli.common import add_model_arguments, print_notes
from flowcheck.cli.diff import add_base_arguments, add_step_summary_argument, base_policies
from flowcheck.cli.exit_codes import ExitCode
from flowcheck.errors import InputError
from flowcheck.model.engine import Model
from flowcheck.model.hubble_flow import FlowRecord, parse_flow_line
from flowcheck.model.policies import load_policies
from flowcheck.model.replay import observe, replay
from flowcheck.model.topology import load_topology

# The report layer is imported when the command runs: every other command's start skips it.

FORMATS = ("text", "markdown", "json")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "replay",
        help="decide the flows Hubble observed against the policies: what would this change drop? (offline)",
        description="Read flows exported with `hubble observe -o json`, map them to the topology's workloads, "
                    "entities and FQDNs, and decide every distinct observed path against the policies (and, with "
                    "--base, against the policies before the change): the observed paths that would be dropped "
                    "come first. Records that cannot be replayed are counted, with the reason.",
    )
    parser.add_argument("flows", metavar="FLOWS.jsonl", help="`hubble observe -o json` output; - for standard input")
    add_model_arguments(parser)
    add_base_arguments(parser, required=False,
                       purpose="also decide under the policies before the change (the headline is then what it newly "
                               "drops)")
    parser.add_argument("--format", choices=FORMATS, default="text")
    add_step_summary_argument(parser)
    parser.add_argument("--fail-on-drop", action="store_true",
                        help="exit 1 when any observed path would be dropped (the headline is not empty)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flowcheck.report.markdown import append_step_summary
    from flowcheck.report.replay_report import ReplayContext, render_replay_markdown, render_replay_text, replay_json

    records, not_flows = read_export(args.flows)
    topology = load_topology(args.topology)
    policies = load_policies(args.policies)
    print_notes(policies.notes)
    after = Model(topology, policies, args.semantics)
    before: Model | None = None
    base_label: str | None = None
    if args.base is not None or args.base_policies:
        with base_policies(args) as (old, base_label):
            print_notes([f"base: {note}" for note in old.notes])
        before = Model(topology, old, args.semantics)
    result = replay(observe(records, topology), after, before)
    context = ReplayContext("standard input" if args.flows == "-" else str(args.flows), not_flows, base_label,
                            {"topology": str(args.topology), "policies": ", ".join(map(str, args.policies)),
                             "semantics": args.semantics})
    if args.format == "json":
        sys.stdout.write(json.dumps(replay_json(result, context), indent=2) + "\n")
    elif args.format == "markdown":
        sys.stdout.write(render_replay_markdown(result, context))
    else:
        sys.stdout.write(render_replay_text(result, context))
    if args.step_summary:
        append_step_summary(render_replay_markdown(result, context))
    return ExitCode.FAILED if args.fail_on_drop and result.would_drop else ExitCode.OK


def read_export(source: str) -> tuple[list[FlowRecord], int]:
    """The flow records of a ``hubble observe -o json`` export and how many lines were not flows.

    A line that is not JSON is counted (and named on stderr), not fatal: an export cut short mid-line
    still replays; a file without one flow record is bad input.
    """
    name = "standard input" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, expected a file of `hubble observe -o json` lines") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start}); expected `hubble observe "
                         "-o json` lines") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None
    records: list[FlowRecord] = []
    not_flows = 0
    not_json: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        record = parse_flow_line(line)
        if record is not None:
            records.append(record)
            continue
        not_flows += 1
        try:
            json.loads(line)
        except ValueError:
            not_json.append(number)
    if not records:
        first = f" (line {not_json[0]} is not JSON)" if not_json else ""
        raise InputError(f"{name}: no Hubble flow record found{first}; expected `hubble observe -o json` output, "
                         'one {"flow": {...}, "node_name": ..., "time": ...} object per line')
    if not_json:
        print(f"note: {name}: {len(not_json)} line{'s' if len(not_json) != 1 else ''} not JSON (first: line "
              f"{not_json[0]}), counted as not flows", file=sys.stderr)
    return records, not_flows
