"""What several commands share: the model's arguments, the default cluster name, notes and progress."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence

from flowcheck.cli.exit_codes import ExitCode
from flowcheck.cluster.kind import DEFAULT_CLUSTER_NAME
from flowcheck.model.decided_flow import JSON_FORMAT, JSON_VERSIONS
from flowcheck.model.engine import Model
from flowcheck.model.policies import load_policies
from flowcheck.model.semantics import SEMANTICS
from flowcheck.model.topology import load_topology
from flowcheck.model.unmatched import MatchWarning, unmatched
from flowcheck.vocabulary import counted

CLUSTER_NAME_ENV = "FLOWCHECK_CLUSTER_NAME"
"""Overrides the default ``--cluster-name`` (``--name``) of every command and of ``scripts/``: set it
once to work with another kind cluster. An explicit option wins; the pytest plugin reads its own
``--flowcheck-cluster-name`` / ini key (``scripts/e2e`` passes the name on)."""

# The topology format, briefly, for --help (README "Topology and flows files" has it in full).
TOPOLOGY_HELP = ("the scenario's workloads (YAML): `namespaces: {NAME: {labels: {...}}}` and `workloads:` list "
                 "of {name, namespace, labels, ports: [{port, protocol, name}], serviceAccount, ip, existing}; "
                 "see fixtures/topology.yaml")


def default_cluster_name(environ: Mapping[str, str] | None = None) -> str:
    """``$FLOWCHECK_CLUSTER_NAME``, else flowcheck's own kind cluster name."""
    env = os.environ if environ is None else environ
    return env.get(CLUSTER_NAME_ENV) or DEFAULT_CLUSTER_NAME


def say(line: str) -> None:
    """A progress line on stdout, flushed (long steps must show they are alive)."""
    print(f"flowcheck: {line}", flush=True)


def missing_action(parser: argparse.ArgumentParser) -> int:
    """A command group (``baseline``, ``cluster``) given without its action: its help, and bad input."""
    parser.print_help(sys.stderr)
    return ExitCode.BAD_INPUT


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topology", required=True, metavar="FILE", help=TOPOLOGY_HELP)
    parser.add_argument("--policies", required=True, action="extend", nargs="+", metavar="PATH",
                        help="policy files or directories (recursive; multi-document YAML, List objects, "
                             "kustomization directories); repeatable")
    parser.add_argument("--semantics", choices=SEMANTICS, default="cilium",
                        help="cilium (default): what Cilium does; kubernetes: the NetworkPolicy specification")
    add_strict_argument(parser)


def add_strict_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strict", action="store_true",
                        help="fail (exit 1) when a warning says part of a policy matches nothing in the topology "
                             "(for CI)")


def add_json_version_argument(parser: argparse.ArgumentParser) -> None:
    """``--json-version 1|2``: version 2 (decided flows, docs/contracts.md "Decided flows") unless a script asks
    for the shape it was written against. Not given, it is None (version 2), so a command can tell an explicit
    choice from the default and refuse it where it means nothing (``plan --by identity``)."""
    parser.add_argument("--json-version", type=int, choices=JSON_VERSIONS, default=None, metavar="N",
                        help=f"the JSON shape for --format json: {JSON_FORMAT} (default: one decided flow per "
                             "entry, as every command writes it) or 1 (the shape before decided flows)")


def port_argument(text: str) -> int | str:
    """``--port``: a number (1-65535) or a port name as the topology gives it (``metrics``)."""
    if text.isdigit():
        number = int(text)
        if not 1 <= number <= 65535:
            raise argparse.ArgumentTypeError(f"port {text} is out of range (1-65535)")
        return number
    if not text.strip() or text != text.strip():
        raise argparse.ArgumentTypeError(f"expected a port number (1-65535) or a port name such as 'metrics', "
                                         f"got {text!r}")
    return text


def load_model(args: argparse.Namespace) -> Model:
    topology = load_topology(args.topology)
    policies = load_policies(args.policies)
    print_notes(policies.notes)
    model = Model(topology, policies, args.semantics)
    report_warnings(args, unmatched(topology, policies))
    return model


def report_warnings(args: argparse.Namespace, warnings: Sequence[MatchWarning], other: Sequence[str] = ()) -> None:
    """Print the warnings (``warning: ...`` on stderr: ``other``, findings that are not about a policy such as
    a file no kustomization applies, then ``warnings``) and keep them on ``args``: ``--strict`` turns them
    into a failure once the command has printed its output (``flowcheck.cli.main``)."""
    keep_warnings(args, warnings, other)
    for text in [*other, *(w.describe() for w in warnings)]:
        print(f"warning: {text}", file=sys.stderr)
    count = len(warnings) + len(other)
    if count and getattr(args, "strict", False):
        print(f"flowcheck: {counted(count, 'warning')} and --strict: failing", file=sys.stderr)


def keep_warnings(args: argparse.Namespace, warnings: Sequence[MatchWarning], other: Sequence[str] = ()) -> None:
    """Keep what a command found on ``args`` without printing it (its JSON output carries it)."""
    args.match_warnings = list(warnings)
    args.other_warnings = list(other)


def strict_failure(args: argparse.Namespace) -> bool:
    """True when ``--strict`` was given and the command found warnings."""
    found = getattr(args, "match_warnings", None) or getattr(args, "other_warnings", None)
    return bool(getattr(args, "strict", False) and found)


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


def print_notes(notes: Sequence[str]) -> None:
    for line in summarize_notes(notes):
        print(f"note: {line}", file=sys.stderr)
