"""``flowcheck pre-upgrade TARGET_VERSION``: does any flow's verdict change when Cilium is upgraded?

``scripts/pre-upgrade-check`` runs this (``python -m flowcheck pre-upgrade``). Everything after the
first ``--`` goes to both ``pytest suites/`` runs. The steps are ``flowcheck.harness.preupgrade``'s;
this module turns the command line into ``PreUpgradeOptions`` and a failed step into its one
message and exit code (0 nothing changed, 1 a change or a failed step, 2 bad input or a refused
context).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowcheck.cli.common import default_cluster_name
from flowcheck.cli.exit_codes import ExitCode, exit_code_for
from flowcheck.errors import InputError

if TYPE_CHECKING:  # the harness is imported when the command runs, not by every `flowcheck` start
    from flowcheck.harness.preupgrade import PreUpgradeOptions


class _ExtraArgsAfterDoubleDash(argparse.ArgumentParser):
    """A parser that hands everything after the first ``--`` to pytest (``args.pytest_args``).

    argparse (3.11) matches an ``nargs="*"`` positional as soon as the first positional is seen, so
    ``pre-upgrade 1.20.0 --context C -- -k dns`` would reject ``-k dns``. Splitting at ``--`` before
    parsing keeps the documented form working wherever the options stand.
    """

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        words = list(sys.argv[1:] if args is None else args)
        extra: list[str] = []
        if "--" in words:
            cut = words.index("--")
            words, extra = words[:cut], words[cut + 1:]
        parsed, rest = super().parse_known_args(words, namespace)
        parsed.pytest_args = [*(getattr(parsed, "pytest_args", None) or []), *extra]
        return parsed, rest


USAGE = ("%(prog)s TARGET_VERSION [--cluster-name N] [--context C --allow-context C] [--values FILE] "
         "[--report-dir DIR] [-- PYTEST_ARG ...]")
DESCRIPTION = ("Run the suites on the current Cilium, run the upgrade guide's preflight check for TARGET_VERSION, "
               "upgrade, wait until every agent has rolled, run the suites again and compare. Arguments after -- go "
               "to both pytest runs. Exit 0 when nothing changed, 1 on a change or a failed step, 2 on bad input or "
               "a refused context. Runs on flowcheck's kind cluster unless --context NAME --allow-context NAME names "
               "an existing one.")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "pre-upgrade",
        help="check that no flow's verdict changes when Cilium is upgraded to TARGET_VERSION",
        usage=USAGE,
        description=DESCRIPTION,
    )
    # The subparser's class is chosen by whoever created `subparsers`; only its `--` handling is changed.
    parser.__class__ = _ExtraArgsAfterDoubleDash
    name = default_cluster_name()
    parser.add_argument("target", metavar="TARGET_VERSION", help="the Cilium version to upgrade to, e.g. 1.20.0")
    parser.add_argument("--cluster-name", default=name,
                        help=f"flowcheck's kind cluster (default {name}, or $FLOWCHECK_CLUSTER_NAME; created with "
                             "the pinned Cilium when absent)")
    parser.add_argument("--context", metavar="NAME", default=None,
                        help="an existing cluster's kube context instead of the kind cluster (needs --allow-context)")
    parser.add_argument("--allow-context", metavar="NAME", default=None,
                        help="the explicit opt-in to run against --context NAME (the same name)")
    parser.add_argument("--values", metavar="FILE", type=Path, default=None,
                        help="Helm values for the upgrade (default manifests/cilium/values.yaml on kind; required "
                             "for an existing cluster)")
    parser.add_argument("--report-dir", metavar="DIR", type=Path, default=None,
                        help="where the runs' reports and baselines go (default flowcheck-report/pre-upgrade-<time>)")
    parser.set_defaults(pytest_args=[], func=run)  # pytest_args: what follows `--` (_ExtraArgsAfterDoubleDash)


def options_from_args(args: argparse.Namespace, *, python: str = sys.executable,
                      now: datetime | None = None) -> PreUpgradeOptions:
    """The parsed command line as options; a malformed TARGET_VERSION is an ``InputError``."""
    from flowcheck.cluster.options import ClusterTarget
    from flowcheck.harness.preupgrade import PreUpgradeOptions, default_report_dir
    from flowcheck.harness.preupgrade.versions import CiliumVersion

    target = CiliumVersion.parse(args.target)
    if target is None:
        raise InputError(f"TARGET_VERSION {args.target!r} is not a Cilium release version like 1.20.0 "
                         "(MAJOR.MINOR.PATCH, optionally v-prefixed or with a -pre.N suffix)")
    return PreUpgradeOptions(target=target, values=args.values, pytest_args=tuple(args.pytest_args), python=python,
                             cluster=ClusterTarget(name=args.cluster_name, context=args.context,
                                                   allow_context=args.allow_context),
                             report_dir=args.report_dir or default_report_dir(now))


def run(args: argparse.Namespace) -> int:
    from flowcheck.harness.preupgrade import PreUpgradeCheck, StepFailed

    options = options_from_args(args)
    try:
        PreUpgradeCheck(options).run()
    except StepFailed as failure:  # it names the step and what to look at: printed as it renders itself
        print(failure.render(), file=sys.stderr, flush=True)
        return exit_code_for(failure)
    return ExitCode.OK
