"""``flowcheck cleanup``: remove what flowcheck runs left in a cluster (objects labelled flowcheck.io/run)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from flowcheck.cli.common import default_cluster_name
from flowcheck.cli.exit_codes import ExitCode

if TYPE_CHECKING:  # the cluster layer is imported when the command runs, not by every `flowcheck` start
    from flowcheck.cluster.kube import ApiFactory
    from flowcheck.cluster.process import ProcessRunner


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "cleanup",
        help="remove what flowcheck runs left in a cluster (objects labelled flowcheck.io/run)",
        description="Find and remove leftovers of flowcheck runs: namespaces, pods, ConfigMaps, service accounts "
                    "and policies labelled flowcheck.io/run (restoring policies they replaced and removing labels "
                    "they added to pre-existing namespaces). Only a kind cluster flowcheck manages is touched, "
                    "unless --allow-context names the context.",
    )
    name = default_cluster_name()
    parser.add_argument("--cluster-name", default=name,
                        help=f"kind cluster name (default {name}, or $FLOWCHECK_CLUSTER_NAME; its context is "
                             "kind-NAME)")
    parser.add_argument("--context", default=None, help="kube context (default: kind-<cluster name>)")
    parser.add_argument("--allow-context", metavar="NAME", default=None,
                        help="opt in to cleaning a context that is not a kind cluster flowcheck manages")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--run", dest="run_id", metavar="ID", default=None,
                        help="only this run's leftovers (default: every flowcheck run's)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, *, runner: ProcessRunner | None = None, api_factory: ApiFactory | None = None,
        out: TextIO | None = None, repo_root: Path | None = None) -> int:
    """0 when everything found was removed (or nothing was left over); 1, listing them, when some
    removals failed."""
    from flowcheck.cluster.cleanup import clean_up_cluster
    from flowcheck.cluster.options import ClusterTarget

    stream = out or sys.stdout
    target = ClusterTarget(name=args.cluster_name, context=args.context, allow_context=args.allow_context,
                           kubeconfig=args.kubeconfig)
    outcome = clean_up_cluster(target, run_id=args.run_id, dry_run=args.dry_run,
                               progress=lambda line: print(f"flowcheck cleanup: {line}", file=stream),
                               runner=runner, api_factory=api_factory, repo_root=repo_root)
    report = outcome.report
    scope = f"run {args.run_id}" if args.run_id else "any flowcheck run"
    if not report.actions and not report.problems:
        print(f"flowcheck cleanup: nothing left over from {scope} in {outcome.context}", file=stream)
    if report.problems:
        print("flowcheck: error: cleanup incomplete:\n" + "\n".join(f"  {p}" for p in report.problems),
              file=sys.stderr)
        return ExitCode.FAILED
    return ExitCode.OK
