"""What a deployment produced: the probe pods (and matched existing pods) with their IPs and nodes.

``DeployedTopology`` is plain data with a JSON round trip (``to_json`` / ``from_json``) so that
pytest-xdist workers can reuse the one deployment the first worker made: the harness writes it to
a shared file and the other workers build their ``PodExecutor`` from it. The JSON carries a format
version; an unknown version is refused rather than half-read.
"""

from __future__ import annotations

import json
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

    def by_ip(self, ip: str) -> DeployedPod | None:
        for pod in self.pods:
            if pod.ip == ip:
                return pod
        return None

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

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DeployedTopology:
        try:
            data: Any = json.loads(text)
        except ValueError as exc:
            raise ClusterError(f"cannot read the shared deployment state: {exc}") from exc
        return cls.from_dict(data)

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
