"""The live back end on a real cluster: ``flowcheck.cluster.LiveCluster`` behind the harness's interfaces.

``set_up`` (once per run) brings the kind cluster up or checks the explicitly allowed context,
deploys one probe pod per topology workload, applies the repository's policies and waits until
every Cilium agent has realized them; a failure part-way tears down what was created. Its state
(``LiveCluster.state()``) is what every pytest-xdist worker attaches to -- read-only, without
teardown rights -- and what the controlling process tears down from at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from flowcheck.cluster.cilium import ConnectivityReport
from flowcheck.cluster.deployed import DeployedTopology
from flowcheck.cluster.hubble import ProbeFacts, match
from flowcheck.cluster.options import ClusterOptions
from flowcheck.cluster.session import LiveCluster
from flowcheck.cluster.workloads import NamespaceInput, PodSpecInput, TopologyInput
from flowcheck.harness.backends import EvidenceQuery, SetupRequest
from flowcheck.model.topology import Topology
from flowcheck.probe.executor import ProbeExecutor


def topology_input(topology: Topology) -> TopologyInput:
    """The model's topology in the cluster layer's terms (unnamed ports get ``<proto>-<port>``)."""
    namespaces = tuple(NamespaceInput(name, dict(labels)) for name, labels in topology.namespaces.items())
    workloads = tuple(
        PodSpecInput(namespace=w.namespace, name=w.name, labels=dict(w.labels),
                     ports=tuple((p.name or f"{p.protocol.lower()}-{p.port}", p.port, p.protocol) for p in w.ports),
                     service_account=w.service_account, existing=w.existing)
        for w in topology.workloads)
    return TopologyInput(namespaces, workloads)


class ClusterLiveBackend:
    """A ``LiveBackend`` over a deployed ``LiveCluster``."""

    def __init__(self, cluster: LiveCluster) -> None:
        self.cluster = cluster
        self._executor = cluster.executor()

    @property
    def executor(self) -> ProbeExecutor:
        return self._executor

    @property
    def description(self) -> str:
        return self.cluster.description

    def cannot_probe_from(self, workload: str) -> str | None:
        return self._deployed.cannot_probe_from(workload)

    def is_probe_server(self, workload: str) -> bool:
        return self._deployed.is_probe_server(workload)

    @property
    def _deployed(self) -> DeployedTopology:
        deployed = self.cluster.deployed
        assert deployed is not None, "attached clusters always carry their deployment"
        return deployed

    def evidence(self, queries: Sequence[EvidenceQuery], since: datetime,
                 until: datetime) -> Mapping[str, tuple[str, ...]]:
        """The Hubble flows of each probe (``hubble observe`` in every agent, matched per probe)."""
        workloads = sorted({q.source for q in queries})
        flows = self.cluster.hubble_flows(since=since, until=until, workloads=workloads)
        return {q.probe_id: tuple(f.summary() for f in match(flows, ProbeFacts(
            q.source_ip, q.destination_ip, q.port, q.protocol, since, until))) for q in queries}

    def connectivity_test(self, junit_file: Path, *, tests: Sequence[str] = ()) -> ConnectivityReport:
        """``cilium connectivity test`` on this cluster (``LiveCluster.connectivity_test``): the
        internet-dependent scenarios excluded (kind in CI has no guaranteed egress), plus the caller's
        ``--test`` filters."""
        return self.cluster.connectivity_test(junit_file, tests=tests)


class ClusterBackendProvider:
    """``BackendProvider`` for kind (created or reused) or an explicitly allowed existing context."""

    def __init__(self, options: ClusterOptions) -> None:
        self.options = options

    def set_up(self, request: SetupRequest) -> dict[str, Any]:
        cluster = LiveCluster.bring_up(self.options, progress=request.progress)
        try:
            cluster.deploy(topology_input(request.topology))
            cluster.apply_policies(request.policies)
        except BaseException:
            cluster.teardown(failed=True, quiet=True)
            raise
        return cluster.state()

    def attach(self, state: Mapping[str, Any]) -> ClusterLiveBackend:
        return ClusterLiveBackend(LiveCluster.from_state(self.options, state, owner=False))

    def tear_down(self, state: Mapping[str, Any], *, failed: bool) -> None:
        LiveCluster.from_state(self.options, state, owner=True).teardown(failed=failed)
