"""What a deployment produced: the probe pods (and matched existing pods) with their IPs and nodes.

``DeployedTopology`` is plain data. ``to_dict``/``from_dict`` make it part of ``LiveCluster.state()``,
the JSON-serialisable state the harness shares with pytest-xdist workers (they attach with
``LiveCluster.from_state`` and build their ``PodExecutor`` from it) and with the process that tears
down. The dict carries a format version; an unknown version is refused rather than half-read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from flowcheck.errors import ClusterError

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class DeployedPod:
    """The pod that stands for one workload of the topology."""

    workload: str  # "namespace/name", as the topology names it
    namespace: str
    pod_name: str
    ip: str
    node: str
    container: str
    existing: bool  # matched by labels (e.g. coredns), not deployed: the agent cannot run in it


@dataclass(frozen=True, slots=True)
class DeployedTopology:
    """Every workload's pod, plus the run and context they belong to."""

    run_id: str
    context: str
    pods: tuple[DeployedPod, ...]

    def pod(self, workload: str) -> DeployedPod:
        for pod in self.pods:
            if pod.workload == workload:
                return pod
        known = ", ".join(sorted(p.workload for p in self.pods)) or "none"
        raise ClusterError(f"workload {workload!r} was not deployed (deployed: {known})")

    @property
    def probe_pods(self) -> tuple[DeployedPod, ...]:
        """The pods flowcheck deployed (not the existing ones it matched)."""
        return tuple(p for p in self.pods if not p.existing)

    def cannot_probe_from(self, workload: str) -> str | None:
        """Why the probe agent cannot run inside ``workload``, or None when it can."""
        pod = self.pod(workload)
        if pod.existing:
            return (f"{workload} is an existing pod ({pod.namespace}/{pod.pod_name}) that flowcheck did not deploy; "
                    "the probe agent cannot run in it")
        return None

    def is_probe_server(self, workload: str) -> bool:
        """True when ``workload`` runs flowcheck's probe server (its answers carry its identity)."""
        return not self.pod(workload).existing

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "run_id": self.run_id, "context": self.context,
                "pods": [asdict(p) for p in self.pods]}

    @classmethod
    def from_dict(cls, data: Any) -> DeployedTopology:
        try:
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("format") != FORMAT_VERSION:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT_VERSION}")
            pods = tuple(DeployedPod(workload=str(p["workload"]), namespace=str(p["namespace"]),
                                     pod_name=str(p["pod_name"]), ip=str(p["ip"]), node=str(p["node"]),
                                     container=str(p["container"]), existing=bool(p["existing"]))
                         for p in data["pods"])
            return cls(run_id=str(data["run_id"]), context=str(data["context"]), pods=pods)
        except (ValueError, KeyError, TypeError) as exc:
            raise ClusterError(f"cannot read the shared deployment state: {exc}") from exc
