"""Where the live half of a check runs: the interfaces a live back end implements.

A ``BackendProvider`` is the expensive, once-per-run part: it brings up (or reuses) a cluster,
deploys the topology's probe pods and applies the policies, and returns a JSON-serialisable state
so every pytest-xdist worker can ``attach`` to the same deployment instead of making its own;
``tear_down`` runs once, in the controlling process. The ``LiveBackend`` it attaches is what the
harness probes through: the ``ProbeExecutor`` seam of the probe layer, plus what the harness needs
to know about the deployment -- where each path is probed from and to (``routes``: one pod per
class of workloads, on one node or two), which workloads can run the agent, what a probe server
answers as, how the cluster answers denials -- whether the policies are enforced yet
(``unrealized``), an optional source of evidence (Hubble flows) and, on a Cilium cluster,
``cilium connectivity test``. A back end that knows its nodes' addresses also implements
``NodeAddressing`` (optional: without it, paths to ``host`` and ``remote-node`` are not probed).

The Kubernetes implementation lives in ``flowcheck.harness.cluster_backend``; the tests plug in the
network-namespace lab and fakes through the ``pytest_flowcheck_backend`` hook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from flowcheck.cluster.cilium import ConnectivityReport
from flowcheck.cluster.hubble import FlowRecord, ProbeFacts
from flowcheck.manifests.documents import SourceDocument
from flowcheck.model.topology import Topology
from flowcheck.probe.classify import ClassifierSettings
from flowcheck.probe.executor import ProbeExecutor

SAME_NODE = "same-node"
CROSS_NODE = "cross-node"


@dataclass(frozen=True, slots=True)
class ProbeRoute:
    """Where one path is probed: from probe target ``source`` (the pod the agent runs in) to probe target
    ``destination``, on which nodes. Targets are what the executor knows (``namespace/pod`` on a cluster,
    the workload's name where each workload has one pod)."""

    source: str
    destination: str
    source_node: str = ""
    destination_node: str = ""

    @property
    def placement(self) -> str:
        """``same-node``, ``cross-node``, or empty when the back end has no notion of nodes."""
        if not self.source_node or not self.destination_node:
            return ""
        return SAME_NODE if self.source_node == self.destination_node else CROSS_NODE

    def describe(self) -> str:
        """``tenant/client-n0@worker -> default/web-n1@worker2`` (nodes only where known)."""
        def at(target: str, node: str) -> str:
            return f"{target}@{node}" if node else target

        return f"{at(self.source, self.source_node)} -> {at(self.destination, self.destination_node)}"


@dataclass(frozen=True, slots=True)
class EvidenceQuery:
    """One probe whose flows are wanted: its 5-tuple (``source_port`` as the agent reported it, None when
    it reported none), the targets it ran between, and the probe's id."""

    probe_id: str
    source: str
    destination: str
    source_ip: str
    destination_ip: str
    port: int | None
    protocol: str
    source_port: int | None = None

    def facts(self, since: datetime, until: datetime) -> ProbeFacts:
        """The 5-tuple and time window ``hubble.match`` and ``evidence.judge`` read for this probe."""
        return ProbeFacts(self.source_ip, self.destination_ip, self.port, self.protocol, since, until,
                          src_port=self.source_port)


class LiveBackend(Protocol):
    """A deployed topology the harness can probe."""

    @property
    def executor(self) -> ProbeExecutor: ...

    @property
    def description(self) -> str:
        """One line for reports: what was probed (e.g. ``kind cluster flowcheck, Cilium 1.19.0``)."""
        ...

    @property
    def notes(self) -> Mapping[str, str]:
        """Facts about the deployment for the run's metadata (nodes used, shared probe pods, denial settings)."""
        ...

    def cannot_probe_from(self, workload: str) -> str | None:
        """Why the agent cannot run inside ``workload`` (e.g. an existing pod), or None when it can."""
        ...

    def is_probe_server(self, workload: str) -> bool:
        """True when ``workload`` runs flowcheck's probe server (so answers carry its identity)."""
        ...

    def routes(self, source: str, destination: str | None) -> tuple[ProbeRoute, ...]:
        """Where ``source`` -> ``destination`` (workloads) is probed: once within a node and once across
        nodes where the deployment allows it; empty when no pair of distinct pods stands for the two.
        ``destination`` None: the route out of the topology, from one of ``source``'s pods (``placement.route_out``)."""
        ...

    def server_name(self, target: str) -> str:
        """The identity the probe server at ``target`` answers with."""
        ...

    def classifier_settings(self, route: ProbeRoute) -> ClassifierSettings:
        """What the cluster answers denials with on this route (403 body, DNS reject rcode)."""
        ...

    def unrealized(self) -> Sequence[str]:
        """What is not yet enforcing the applied policies (one line each); empty when everything is."""
        ...

    def evidence(self, queries: Sequence[EvidenceQuery], since: datetime,
                 until: datetime) -> Mapping[str, Sequence[FlowRecord]] | None:
        """The Hubble flows of each probe's 5-tuple, per probe id; None when the back end has no evidence."""
        ...

    def connectivity_test(self, junit_file: Path, *, tests: Sequence[str] = ()) -> ConnectivityReport | None:
        """``cilium connectivity test`` on this back end; None when it is not a Cilium cluster."""
        ...


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """A node a probe can aim at: its name and address."""

    node: str
    address: str


@dataclass(frozen=True, slots=True)
class SourceNodes:
    """The node addresses seen from one source pod: its own node (Cilium's ``host`` entity from there) and
    the other nodes (``remote-node`` from there), the preferred one first; where either is missing, why
    (``why_no_own``, ``why_no_others``; an empty ``why_no_others`` means the cluster has one node)."""

    own: NodeAddress | None
    others: tuple[NodeAddress, ...] = ()
    why_no_own: str = ""
    why_no_others: str = ""


NO_NODE_ADDRESSES = "the live back end gives pod addresses only, not the nodes'"


@runtime_checkable
class NodeAddressing(Protocol):
    """Optional for a ``LiveBackend``: the node addresses probes to ``host`` and ``remote-node`` aim at.

    A separate protocol, so a back end written before it keeps working unchanged: one without
    ``source_nodes`` has those paths "not probed" (``source_nodes`` below), as before."""

    def source_nodes(self, source: str) -> SourceNodes:
        """The nodes seen from probe target ``source`` (a route's source pod)."""
        ...


def source_nodes(backend: LiveBackend, source: str) -> SourceNodes:
    """What ``backend`` knows of the nodes around ``source``; nothing when it does not implement
    ``NodeAddressing``."""
    if isinstance(backend, NodeAddressing):
        return backend.source_nodes(source)
    return SourceNodes(None, (), NO_NODE_ADDRESSES, NO_NODE_ADDRESSES)


@dataclass(frozen=True, slots=True)
class SetupRequest:
    """What a provider needs to set up a run."""

    topology: Topology
    policies: tuple[SourceDocument, ...]
    repo_root: Path
    progress: Callable[[str], None]


class BackendProvider(Protocol):
    """Sets up a live back end once per run, attaches to it in every process, tears it down once."""

    def set_up(self, request: SetupRequest) -> dict[str, Any]:
        """Bring everything up; return the JSON-serialisable state ``attach``/``tear_down`` take.

        A set-up that fails part-way removes what it created before raising.
        """
        ...

    def attach(self, state: Mapping[str, Any]) -> LiveBackend:
        """A back end bound to the state of a set-up (made by this process or another)."""
        ...

    def tear_down(self, state: Mapping[str, Any], *, failed: bool) -> None:
        """Remove what the set-up created; ``failed`` says the run had failures (keep diagnostics)."""
        ...
