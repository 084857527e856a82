"""The kind cluster's lifecycle, through the ``kind`` CLI.

Only kind's documented commands are used: ``kind get clusters``, ``kind create cluster --name N
--config FILE`` (never ``--wait``: with ``disableDefaultCNI`` the nodes stay NotReady until Cilium
is installed, so a wait could only time out), ``kind delete cluster --name N``, ``kind export logs
DIR --name N`` and ``kind load docker-image IMAGE --name N``. kind names the kube context
``kind-<name>``; the context guard relies on that and on ``kind get clusters`` listing the name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from flowcheck.cluster.process import ProcessRunner, run_checked, tail
from flowcheck.cluster.tools import find_tool
from flowcheck.errors import ClusterError

DEFAULT_CLUSTER_NAME = "flowcheck"
"""The kind cluster flowcheck manages when no name is given (its kube context: ``kind-flowcheck``)."""

# kind prints this (through its logger, on stderr) instead of a list when there are no clusters.
NO_CLUSTERS_MESSAGE = "No kind clusters found."

# Creating three nodes pulls the node image the first time: minutes on a CI runner.
CREATE_TIMEOUT_S = 900.0
DELETE_TIMEOUT_S = 300.0
EXPORT_LOGS_TIMEOUT_S = 300.0
LOAD_IMAGE_TIMEOUT_S = 600.0
QUERY_TIMEOUT_S = 60.0


def context_for(name: str) -> str:
    """The kube context kind writes for cluster ``name``."""
    return f"kind-{name}"


def control_plane_node(name: str) -> str:
    """The control-plane node of kind cluster ``name``: its container name, resolvable on kind's Docker network."""
    return f"{name}-control-plane"


def parse_clusters(stdout: str, stderr: str = "") -> list[str]:
    """Cluster names from ``kind get clusters`` (one per line on stdout; none -> a log line)."""
    names = []
    for line in stdout.splitlines():
        name = line.strip()
        if name and name != NO_CLUSTERS_MESSAGE:
            names.append(name)
    return names


class Kind:
    """The ``kind`` commands flowcheck needs, run through a ``ProcessRunner``."""

    def __init__(self, runner: ProcessRunner, kind_path: str, *, kubeconfig: str | None = None,
                 progress: Callable[[str], None] = lambda _line: None) -> None:
        self._runner = runner
        self._kind = kind_path
        self._kubeconfig = kubeconfig
        self._progress = progress

    @classmethod
    def find(cls, runner: ProcessRunner, *, bin_dirs: Sequence[Path], kubeconfig: str | None = None,
             progress: Callable[[str], None] = lambda _line: None) -> Kind:
        """``Kind`` over the kind CLI found in ``bin_dirs`` or on PATH (``ToolMissing`` when there is none)."""
        return cls(runner, find_tool("kind", bin_dirs=bin_dirs), kubeconfig=kubeconfig, progress=progress)

    def clusters(self) -> list[str]:
        result = run_checked(self._runner, [self._kind, "get", "clusters"], what="listing kind clusters",
                             timeout_s=QUERY_TIMEOUT_S)
        return parse_clusters(result.stdout, result.stderr)

    def create(self, name: str, config: Path) -> None:
        """``kind create cluster`` from ``config``; no ``--wait`` (the nodes need the CNI first)."""
        argv = [self._kind, "create", "cluster", "--name", name, "--config", str(config)]
        if self._kubeconfig:
            argv += ["--kubeconfig", self._kubeconfig]
        run_checked(self._runner, argv, what=f"creating kind cluster {name}", timeout_s=CREATE_TIMEOUT_S)

    def delete(self, name: str) -> None:
        argv = [self._kind, "delete", "cluster", "--name", name]
        if self._kubeconfig:
            argv += ["--kubeconfig", self._kubeconfig]
        run_checked(self._runner, argv, what=f"deleting kind cluster {name}", timeout_s=DELETE_TIMEOUT_S)

    def export_logs(self, name: str, directory: Path) -> Path | None:
        """Export the nodes' logs for a post-mortem; never raises (it runs while handling a failure)."""
        try:
            result = self._runner.run([self._kind, "export", "logs", str(directory), "--name", name],
                                      timeout_s=EXPORT_LOGS_TIMEOUT_S)
        except ClusterError as exc:
            self._progress(f"could not export kind logs: {exc}")
            return None
        if result.returncode != 0:
            self._progress(f"could not export kind logs (exit {result.returncode}){tail(result, 3)}")
            return None
        self._progress(f"kind logs exported to {directory}")
        return directory

    def load_image(self, name: str, image: str) -> None:
        """Copy a local Docker image into every node (so pods do not pull it)."""
        run_checked(self._runner, [self._kind, "load", "docker-image", image, "--name", name],
                    what=f"loading image {image} into kind cluster {name}", timeout_s=LOAD_IMAGE_TIMEOUT_S)
