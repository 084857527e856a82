"""``flowcheck cluster up|down|connectivity-test``: flowcheck's kind + Cilium cluster outside pytest.

``scripts/cluster-up`` and ``scripts/cluster-down`` run these (``python -m flowcheck cluster ...``),
so the scripts, the pytest plugin and CI share one implementation: tool lookup, cluster reuse, the
Cilium install, ``cilium status --wait``, the context guard.

    flowcheck cluster up [--name N] [--load-image IMAGE ...]
        create or reuse the cluster, copy local images into its nodes, install/upgrade Cilium, wait
    flowcheck cluster down [--name N]
        delete the kind cluster
    flowcheck cluster connectivity-test --junit-file F [--test REGEX ...]
        `cilium connectivity test`; the tests that need the internet are always excluded
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flowcheck.cli.common import default_cluster_name, missing_action, say
from flowcheck.cli.exit_codes import ExitCode
from flowcheck.cluster.cilium import OFFLINE_TEST_EXCLUSIONS
from flowcheck.cluster.kind import Kind, context_for
from flowcheck.cluster.process import SubprocessRunner
from flowcheck.cluster.tools import default_bin_dirs


def register(subparsers: Any) -> None:
    cluster: argparse.ArgumentParser = subparsers.add_parser(
        "cluster", help="create, delete or test flowcheck's kind + Cilium cluster (what scripts/cluster-up runs)",
        description="Manage flowcheck's kind + Cilium cluster outside pytest.")
    cluster.set_defaults(func=lambda _args: missing_action(cluster))
    actions = cluster.add_subparsers(dest="cluster_command", metavar="ACTION")
    name = default_cluster_name()

    def name_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--name", default=name, help=f"kind cluster name (default {name}, or "
                                                         "$FLOWCHECK_CLUSTER_NAME)")
        parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default $KUBECONFIG or "
                                                               "~/.kube/config)")

    up = actions.add_parser("up", help="create or reuse the kind cluster, install or upgrade Cilium, wait until ready")
    name_options(up)
    up.add_argument("--no-upgrade", action="store_true",
                    help="leave an existing Cilium installation as it is (default: `cilium upgrade` to the pin)")
    up.add_argument("--load-image", action="append", default=[], metavar="IMAGE", dest="load_images",
                    help="a local Docker image to copy into every node (`kind load docker-image`), e.g. a probe "
                         "image built here or one the nodes cannot pull; repeatable")
    up.set_defaults(func=run_up)
    down = actions.add_parser("down", help="delete the kind cluster")
    name_options(down)
    down.set_defaults(func=run_down)
    test = actions.add_parser("connectivity-test", help="run `cilium connectivity test` on the kind cluster (JUnit)")
    name_options(test)
    test.add_argument("--junit-file", required=True, type=Path)
    test.add_argument("--test", action="append", default=[], metavar="REGEX",
                      help="cilium --test filter, repeatable; added to the exclusion of the tests that need the "
                           f"internet, which is always kept ({' '.join(OFFLINE_TEST_EXCLUSIONS)})")
    test.set_defaults(func=run_connectivity_test)


def run_up(args: argparse.Namespace) -> int:
    # imported here: the live-cluster machinery is only needed by these commands, not at every start
    from flowcheck.cluster.options import ClusterOptions, ClusterSetup, ClusterTarget
    from flowcheck.cluster.session import LiveCluster

    options = ClusterOptions(target=ClusterTarget(name=args.name, kubeconfig=args.kubeconfig),
                             setup=ClusterSetup(upgrade_cilium=not args.no_upgrade,
                                                load_images=tuple(args.load_images)),
                             keep_cluster=True)
    LiveCluster.bring_up(options, progress=say)  # nothing deployed: there is nothing to tear down
    say(f"cluster {args.name} is ready (context {context_for(args.name)})")
    return ExitCode.OK


def run_down(args: argparse.Namespace) -> int:
    kind = Kind.find(SubprocessRunner(), bin_dirs=default_bin_dirs(Path.cwd()), kubeconfig=args.kubeconfig,
                     progress=say)
    if args.name not in kind.clusters():
        say(f"no kind cluster named {args.name}")
        return ExitCode.OK
    say(f"deleting kind cluster {args.name}")
    kind.delete(args.name)
    return ExitCode.OK


def run_connectivity_test(args: argparse.Namespace) -> int:
    from flowcheck.cluster.options import ClusterOptions, ClusterTarget
    from flowcheck.cluster.session import LiveCluster

    options = ClusterOptions(target=ClusterTarget(name=args.name, kubeconfig=args.kubeconfig), keep_cluster=True)
    live = LiveCluster.bring_up(options, progress=say)
    report = live.connectivity_test(args.junit_file, tests=tuple(args.test))  # + OFFLINE_TEST_EXCLUSIONS, always
    for result in report.with_status("failed"):
        print(f"FAILED {result.name}: {result.failure_text}", flush=True)
    return ExitCode.OK if report.ok else ExitCode.FAILED
