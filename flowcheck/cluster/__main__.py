"""``python -m flowcheck.cluster``: bring the kind + Cilium cluster up or down outside pytest.

``scripts/cluster-up`` and ``scripts/cluster-down`` call this, so the scripts, the pytest plugin
and CI share one implementation (tool lookup, cluster reuse, Cilium install, ``cilium status
--wait``, the context guard).

    python -m flowcheck.cluster up [--name N] [--load-image IMAGE ...]
        create or reuse the cluster, copy local images into its nodes, install/upgrade Cilium, wait
    python -m flowcheck.cluster down [--name N]
        delete the kind cluster
    python -m flowcheck.cluster connectivity-test --junit-file F [--test REGEX ...]
        `cilium connectivity test`; the tests that need the internet are always excluded
    python -m flowcheck.cluster cleanup [...]
        same as `flowcheck cleanup`

Errors are one line on stderr (exit 1; 2 for bad input), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from flowcheck.cluster.cilium import OFFLINE_TEST_EXCLUSIONS
from flowcheck.cluster.cleanup import add_cleanup_command
from flowcheck.cluster.kind import DEFAULT_CLUSTER_NAME, Kind
from flowcheck.cluster.process import SubprocessRunner
from flowcheck.cluster.session import ClusterOptions, LiveCluster
from flowcheck.cluster.tools import default_bin_dirs
from flowcheck.errors import FlowcheckError, InputError, report_internal_error

DEFAULT_NAME = os.environ.get("FLOWCHECK_CLUSTER_NAME", DEFAULT_CLUSTER_NAME)


def _say(line: str) -> None:
    print(f"flowcheck: {line}", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flowcheck.cluster",
                                     description="Manage flowcheck's kind + Cilium cluster.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    up = sub.add_parser("up", help="create or reuse the kind cluster, install or upgrade Cilium, wait until ready")
    up.add_argument("--name", default=DEFAULT_NAME, help=f"kind cluster name (default {DEFAULT_NAME})")
    up.add_argument("--kubeconfig", default=None)
    up.add_argument("--no-upgrade", action="store_true",
                    help="leave an existing Cilium installation as it is (default: `cilium upgrade` to the pin)")
    up.add_argument("--load-image", action="append", default=[], metavar="IMAGE", dest="load_images",
                    help="a local Docker image to copy into every node (`kind load docker-image`), e.g. a probe "
                         "image built here or one the nodes cannot pull; repeatable")
    up.set_defaults(func=_cmd_up)
    down = sub.add_parser("down", help="delete the kind cluster")
    down.add_argument("--name", default=DEFAULT_NAME, help=f"kind cluster name (default {DEFAULT_NAME})")
    down.add_argument("--kubeconfig", default=None)
    down.set_defaults(func=_cmd_down)
    ct = sub.add_parser("connectivity-test", help="run `cilium connectivity test` on the kind cluster (JUnit)")
    ct.add_argument("--name", default=DEFAULT_NAME, help=f"kind cluster name (default {DEFAULT_NAME})")
    ct.add_argument("--kubeconfig", default=None)
    ct.add_argument("--junit-file", required=True, type=Path)
    ct.add_argument("--test", action="append", default=[], metavar="REGEX",
                    help="cilium --test filter, repeatable; added to the exclusion of the tests that need the "
                         f"internet, which is always kept ({' '.join(OFFLINE_TEST_EXCLUSIONS)})")
    ct.set_defaults(func=_cmd_connectivity_test)
    add_cleanup_command(sub)
    return parser


def _cmd_up(args: argparse.Namespace) -> int:
    options = ClusterOptions(cluster_name=args.name, kubeconfig=args.kubeconfig, keep_cluster=True,
                             upgrade_cilium=not args.no_upgrade, load_images=tuple(args.load_images))
    LiveCluster.bring_up(options, progress=_say)  # nothing deployed: there is nothing to tear down
    _say(f"cluster {args.name} is ready (context kind-{args.name})")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    kind = Kind.find(SubprocessRunner(), bin_dirs=default_bin_dirs(Path.cwd()), kubeconfig=args.kubeconfig,
                     progress=_say)
    if args.name not in kind.clusters():
        _say(f"no kind cluster named {args.name}")
        return 0
    _say(f"deleting kind cluster {args.name}")
    kind.delete(args.name)
    return 0


def _cmd_connectivity_test(args: argparse.Namespace) -> int:
    options = ClusterOptions(cluster_name=args.name, kubeconfig=args.kubeconfig, keep_cluster=True)
    live = LiveCluster.bring_up(options, progress=_say)
    report = live.connectivity_test(args.junit_file, tests=tuple(args.test))  # + OFFLINE_TEST_EXCLUSIONS, always
    for result in report.with_status("failed"):
        print(f"FAILED {result.name}: {result.failure_text}", flush=True)
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        result: int = func(args)
        return result
    except InputError as exc:
        print(f"flowcheck: error: {exc}", file=sys.stderr)
        return 2
    except FlowcheckError as exc:
        print(f"flowcheck: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("flowcheck: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a flowcheck bug: its own exit code, never 1 (a cluster that failed)
        return report_internal_error(exc)


if __name__ == "__main__":
    raise SystemExit(main())
