"""What a deployment produced: the probe pods (and matched existing pods) with their IPs and nodes.

``DeployedTopology`` is plain data. ``to_dict``/``from_dict`` make it part of ``LiveCluster.state()``,
the JSON-serialisable state the harness shares with pytest-xdist workers (they attach with
``LiveCluster.from_state`` and build their ``PodExecutor`` from it) and with the process that tears
down. The dict carries a format version; an unknown version is refused rather than half-read. The
keys added within version 2 (``host_ip``, ``node_addresses``: what probes to ``host`` and
``remote-node`` aim at) are optional, so a state written without them still reads (those probes then
say why they cannot be made).

A workload may have several pods (one per placement node), and a pod may stand for several workloads
(one probe pod per class of workloads Cilium cannot tell apart): ``replicas(workload)`` are a
workload's pods, and a pod is addressed by its ``key`` (``namespace/pod``) -- the probe *target* the
executor runs the agent in and sends probes to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowcheck.errors import ClusterError

FORMAT_VERSION = 2


@dataclass(frozen=True, slots=True)
class DeployedPod:
    """A pod standing for one or more workloads of the topology."""

    workload: str  # "namespace/name" of the workload the pod was made for (the first it stands for)
    namespace: str
    pod_name: str
    ip: str
    node: str
    container: str
    existing: bool  # matched by labels (e.g. coredns), not deployed: the agent cannot run in it
    stands_for: tuple[str, ...] = ()  # every workload the pod stands for; empty: just ``workload``
    host_ip: str = ""  # its node's address (``status.hostIP``); empty when the API reported none

    @property
    def key(self) -> str:
        """The pod as a probe target: ``namespace/pod``."""
        return f"{self.namespace}/{self.pod_name}"

    @property
    def members(self) -> tuple[str, ...]:
        return self.stands_for or (self.workload,)

    def to_dict(self) -> dict[str, Any]:
        return {"workload": self.workload, "namespace": self.namespace, "pod_name": self.pod_name, "ip": self.ip,
                "node": self.node, "container": self.container, "existing": self.existing,
                "stands_for": list(self.stands_for), "host_ip": self.host_ip}


@dataclass(frozen=True, slots=True)
class DeployedTopology:
    """Every workload's pods, the nodes they were placed on, and the run and context they belong to."""

    run_id: str
    context: str
    pods: tuple[DeployedPod, ...]
    nodes: tuple[str, ...] = ()
    """The nodes probe pods were deliberately placed on (two: same-node and cross-node), or the one node."""
    node_addresses: tuple[tuple[str, str], ...] = ()
    """Every node of the cluster with its InternalIP (name, address), sorted by name; empty when unknown."""

    def other_nodes(self, node: str) -> tuple[tuple[str, str], ...]:
        """The nodes other than ``node`` that have an address: the placement nodes first (they are known to
        run pods), then the rest by name."""
        others = [(name, address) for name, address in self.node_addresses if name != node and address]
        return tuple(sorted(others, key=lambda pair: (pair[0] not in self.nodes, pair[0])))

    def replicas(self, workload: str) -> tuple[DeployedPod, ...]:
        """The pods standing for ``workload``, by node."""
        found = tuple(sorted((p for p in self.pods if workload in p.members), key=lambda p: (p.node, p.pod_name)))
        if not found:
            known = ", ".join(sorted({m for p in self.pods for m in p.members})) or "none"
            raise ClusterError(f"workload {workload!r} was not deployed (deployed: {known})")
        return found

    def pod(self, target: str) -> DeployedPod:
        """The pod ``namespace/pod``; a workload's name gives its first pod (``replicas``)."""
        for pod in self.pods:
            if pod.key == target:
                return pod
        return self.replicas(target)[0]

    @property
    def probe_pods(self) -> tuple[DeployedPod, ...]:
        """The pods flowcheck deployed (not the existing ones it matched)."""
        return tuple(p for p in self.pods if not p.existing)

    def cannot_probe_from(self, workload: str) -> str | None:
        """Why the probe agent cannot run inside ``workload``, or None when it can."""
        pod = self.replicas(workload)[0]
        if pod.existing:
            return (f"{workload} is an existing pod ({pod.namespace}/{pod.pod_name}) that flowcheck did not deploy; "
                    "the probe agent cannot run in it")
        return None

    def is_probe_server(self, workload: str) -> bool:
        """True when ``workload`` runs flowcheck's probe server (its answers carry its identity)."""
        return not self.replicas(workload)[0].existing

    def shared(self) -> dict[str, tuple[str, ...]]:
        """Probe pods standing for more than one workload: first workload -> all it stands for."""
        return {p.workload: p.members for p in self.pods if len(p.members) > 1}

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "run_id": self.run_id, "context": self.context,
                "pods": [p.to_dict() for p in self.pods], "nodes": list(self.nodes),
                "node_addresses": [list(pair) for pair in self.node_addresses]}

    @classmethod
    def from_dict(cls, data: Any) -> DeployedTopology:
        try:
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("format") != FORMAT_VERSION:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT_VERSION}")
            pods = tuple(DeployedPod(workload=str(p["workload"]), namespace=str(p["namespace"]),
                                     pod_name=str(p["pod_name"]), ip=str(p["ip"]), node=str(p["node"]),
                                     container=str(p["container"]), existing=bool(p["existing"]),
                                     stands_for=tuple(str(m) for m in p.get("stands_for", ())),
                                     host_ip=str(p.get("host_ip") or ""))
                         for p in data["pods"])
            addresses = tuple((str(name), str(address)) for name, address in data.get("node_addresses", ()))
            return cls(run_id=str(data["run_id"]), context=str(data["context"]), pods=pods,
                       nodes=tuple(str(n) for n in data.get("nodes", ())), node_addresses=addresses)
        except (ValueError, KeyError, TypeError) as exc:
            raise ClusterError(f"cannot read the shared deployment state: {exc}") from exc
