"""``flowcheck diff``: what a policy change does to reachability, path by path.

Examples::

    flowcheck diff --topology fixtures/topology.yaml --policies manifests/network-policies --base origin/main
    flowcheck diff --topology T --policies new/ --base-policies old/ --format json
    flowcheck diff ... --base HEAD~1 --intent reports/matrix.json --step-summary --fail-on-change

The policies after the change are ``--policies`` (the working tree); before it, the same paths at the
git ref ``--base`` (read from git's objects: nothing in the working tree changes) or the paths
``--base-policies``. Both are decided over the one ``--topology``. ``--intent`` takes the report of a
suites run (``matrix.json`` or its directory, ``--flowcheck-report``): its paths with an expected
verdict are the declared intent, and those whose verdict the change flips are listed first.

Exit status: 0, or 1 with ``--fail-on-change`` when any path (or declared path) changed; 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flowcheck.cli.common import add_model_arguments, print_notes
from flowcheck.cli.exit_codes import ExitCode
from flowcheck.errors import InputError
from flowcheck.manifests.git_ref import paths_at_ref
from flowcheck.model.engine import Model
from flowcheck.model.flows import WorkloadEndpoint
from flowcheck.model.plan_diff import IntentPath, decide_paths, diff_models, example_port_notes, outside_paths
from flowcheck.model.policies import load_policies
from flowcheck.model.policy import PolicySet
from flowcheck.model.topology import Topology, load_topology

# The report layer is imported when the command runs: every other command's start skips it.

FORMATS = ("text", "markdown", "json", "html")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "diff",
        help="what a policy change does: the paths it opens, closes or moves behind the L7 proxy (offline)",
        description="Decide every workload -> workload path of the topology, and every path to or from outside the "
                    "cluster (world, other entities, CIDR blocks, FQDNs) that a rule before or after names, under "
                    "the policies before and after a change, and list what moved: opened, closed, now "
                    "L7-filtered or no longer, any other verdict change -- with the model's reasons before and "
                    "after. The declared intent (--intent) comes first.",
    )
    add_model_arguments(parser)
    add_base_arguments(parser, required=True, purpose="the policies before the change")
    parser.add_argument("--intent", action="append", default=[], metavar="FILE",
                        help="an intent file (*.flowcheck.yaml), or a suites run's matrix.json (or its "
                             "--flowcheck-report directory): its paths with an expected verdict are the declared "
                             "intent; repeatable")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="text (default), markdown (a PR comment), json (decided flows before and after), "
                             "html (one page with the service map of the change)")
    add_step_summary_argument(parser)
    parser.add_argument("--fail-on-change", action="store_true",
                        help="exit 1 when any path, or any declared path, changed")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flowcheck.report.diff_report import (
        DiffContext,
        diff_json,
        render_diff_html,
        render_diff_markdown,
        render_diff_text,
    )
    from flowcheck.report.markdown import append_step_summary
    from flowcheck.report.records import decided_record

    topology = load_topology(args.topology)
    after_policies = load_policies(args.policies)
    print_notes(after_policies.notes)
    with base_policies(args) as (before_policies, base_label):
        print_notes([f"base: {note}" for note in before_policies.notes])
    before = Model(topology, before_policies, args.semantics)
    after = Model(topology, after_policies, args.semantics)
    intent = read_intent(args.intent, topology)
    outside = outside_paths(before, after)
    print_notes(example_port_notes(outside))
    old, new = decide_paths(before, after, outside)
    diff = diff_models(before, after, intent, plans=(old, new))
    head_label = "working tree" if args.base else ", ".join(map(str, args.policies))
    context = DiffContext(base_label, head_label, {
        "topology": str(args.topology), "policies": ", ".join(map(str, args.policies)), "semantics": args.semantics})
    if args.format == "json":
        sys.stdout.write(json.dumps(diff_json(diff, context), indent=2) + "\n")
    elif args.format == "markdown":
        sys.stdout.write(render_diff_markdown(diff, context))
    elif args.format == "html":
        sys.stdout.write(render_diff_html(diff, context, [decided_record(p.flow, p.decision) for p in old],
                                          [decided_record(p.flow, p.decision) for p in new]))
    else:
        sys.stdout.write(render_diff_text(diff, context))
    if args.step_summary:
        append_step_summary(render_diff_markdown(diff, context))
    return ExitCode.FAILED if args.fail_on_change and diff.changed else ExitCode.OK


def add_base_arguments(parser: argparse.ArgumentParser, *, required: bool, purpose: str) -> None:
    """``--base REF`` | ``--base-policies PATH...``: the policies before a change (diff, replay)."""
    before = parser.add_mutually_exclusive_group(required=required)
    before.add_argument("--base", metavar="REF",
                        help=f"{purpose}: the --policies paths at this git ref (origin/main, HEAD~1, a commit), read "
                             "without touching the working tree")
    before.add_argument("--base-policies", action="extend", nargs="+", metavar="PATH",
                        help=f"{purpose}, as paths (files or directories)")


def add_step_summary_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--step-summary", action="store_true",
                        help="also append the Markdown to $GITHUB_STEP_SUMMARY (when set; cut to GitHub's 1 MiB)")


@contextmanager
def base_policies(args: argparse.Namespace) -> Iterator[tuple[PolicySet, str]]:
    """The policies before the change, and how to name them; errors in files exported from git name
    ``REF:path``, not the temporary directory they were read from."""
    if args.base is None:
        yield load_policies(args.base_policies), ", ".join(map(str, args.base_policies))
        return
    with paths_at_ref(args.policies, args.base) as tree:
        for path in tree.absent:
            print(f"note: {path} does not exist at {args.base}: the base has no policies there", file=sys.stderr)
        try:
            policies = load_policies(tree.paths)
        except InputError as exc:
            raise InputError(_name_at_ref(str(exc), tree.paths, args.base)) from None
        notes = tuple(_name_at_ref(note, tree.paths, args.base) for note in policies.notes)
        short = tree.commit[:12]
        label = short if tree.commit.startswith(args.base) else f"{args.base} ({short})"
        yield PolicySet(policies.policies, notes), label


def _name_at_ref(text: str, exported: Sequence[Path], ref: str) -> str:
    """``/tmp/flowcheck-base-x/0/manifests/p.yaml`` -> ``HEAD~1:manifests/p.yaml`` in a message."""
    for path in exported:
        text = text.replace(f"{_export_root(path)}/", f"{ref}:")
    return text


def _export_root(path: Path) -> Path:
    """The temporary directory one exported path was written under (``.../flowcheck-base-x/<index>``)."""
    for parent in path.parents:
        if parent.parent.name.startswith("flowcheck-base-"):
            return parent
    return path.parent


INTENT_SUFFIXES = (".flowcheck.yaml", ".flowcheck.yml")


def _intent_file_paths(path: str, topology: Topology) -> list[IntentPath]:
    """The paths an intent file declares, as its pytest items check them (a mistake is bad input, exit 2)."""
    from flowcheck.harness.intent_file import read_intent as read_intent_file

    declared = []
    for entry in read_intent_file(path):
        expectation = entry.expectation(topology)
        if expectation.verdict is not None:
            declared.append(IntentPath(expectation.flow, expectation.verdict, f"{path}::{entry.name}"))
    return declared


def read_intent(reports: Sequence[str], topology: Topology) -> list[IntentPath]:
    """The declared paths of intent files (``*.flowcheck.yaml``) and of suites runs' reports (every record with an
    expected verdict), each path once."""
    from flowcheck.report.files import read_matrix

    found: dict[tuple[object, ...], IntentPath] = {}
    without_flow = unknown = 0
    for report in reports:
        if report.endswith(INTENT_SUFFIXES):
            for path in _intent_file_paths(report, topology):
                found.setdefault((path.flow, path.expected), path)
            continue
        for record in read_matrix(report).flows:
            if record.expected is None:
                continue
            if record.flow is None:
                without_flow += 1
                continue
            ends = [e for e in (record.flow.source, record.flow.destination) if isinstance(e, WorkloadEndpoint)]
            if any(e.ref not in {w.ref for w in topology.workloads} for e in ends):
                unknown += 1
                continue
            found.setdefault((record.flow, record.expected), IntentPath(record.flow, record.expected, record.test))
    if without_flow:
        print(f"note: {without_flow} declared paths of {', '.join(reports)} were not decided: their records do not "
              "carry the flow (a matrix.json of format 1; run the suites again with this flowcheck)", file=sys.stderr)
    if unknown:
        print(f"note: {unknown} declared paths of {', '.join(reports)} were not decided: they name workloads the "
              "topology does not have", file=sys.stderr)
    return list(found.values())
