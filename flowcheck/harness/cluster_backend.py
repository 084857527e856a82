"""The live back end on a real cluster: ``flowcheck.cluster.LiveCluster`` behind the harness's interfaces.

``set_up`` (once per run) brings the kind cluster up or checks the explicitly allowed context,
deploys one probe pod per class of workloads Cilium cannot tell apart (``probe_classes``) on each of
two nodes where it can (``placement``), applies the repository's policies and waits until every
deployed pod's endpoint has realized them, and reads what each node's agent answers denials with;
a failure part-way tears down what was created. Its state (``LiveCluster.state()``) is what every
pytest-xdist worker attaches to -- read-only, without teardown rights -- and what the controlling
process tears down from at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from flowcheck.cluster.cilium import ConnectivityReport
from flowcheck.cluster.cilium_config import describe as describe_denials
from flowcheck.cluster.deployed import DeployedTopology
from flowcheck.cluster.hubble import FlowRecord, match
from flowcheck.cluster.options import ClusterOptions
from flowcheck.cluster.session import LiveCluster
from flowcheck.cluster.workloads import NamespaceInput, PodSpecInput, TopologyInput
from flowcheck.harness.backends import EvidenceQuery, NodeAddress, ProbeRoute, SetupRequest, SourceNodes
from flowcheck.harness.placement import route_out, routes_between
from flowcheck.harness.probe_classes import probe_classes
from flowcheck.model.topology import Topology
from flowcheck.probe.classify import DEFAULT_SETTINGS, ClassifierSettings
from flowcheck.probe.executor import ProbeExecutor


def topology_input(topology: Topology) -> TopologyInput:
    """The model's topology in the cluster layer's terms: one pod spec per probe class."""
    namespaces = tuple(NamespaceInput(name, dict(labels)) for name, labels in topology.namespaces.items())
    workloads = tuple(
        PodSpecInput(namespace=c.first.namespace, name=c.first.name, labels=dict(c.first.labels), ports=c.ports,
                     service_account=c.first.service_account, existing=c.first.existing, stands_for=c.refs,
                     copies=c.copies)
        for c in probe_classes(topology))
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

    @property
    def notes(self) -> Mapping[str, str]:
        deployed = self._deployed
        notes = {}
        if len(deployed.nodes) >= 2:
            notes["placement"] = f"same-node and cross-node, on {', '.join(deployed.nodes)}"
        elif deployed.nodes:
            notes["placement"] = f"same-node only: one schedulable node ({deployed.nodes[0]})"
        shared = deployed.shared()
        if shared:
            notes["shared probe pods"] = "; ".join(f"{first} stands for {', '.join(members)}"
                                                   for first, members in sorted(shared.items()))
        denials = describe_denials(self.cluster.denials)
        if denials:
            notes["denials"] = denials
        return notes

    def cannot_probe_from(self, workload: str) -> str | None:
        return self._deployed.cannot_probe_from(workload)

    def is_probe_server(self, workload: str) -> bool:
        return self._deployed.is_probe_server(workload)

    def routes(self, source: str, destination: str | None) -> tuple[ProbeRoute, ...]:
        deployed = self._deployed
        sources = [(p.key, p.node) for p in deployed.replicas(source)]
        if destination is None:
            return route_out(sources)
        return routes_between(sources, [(p.key, p.node) for p in deployed.replicas(destination)])

    def server_name(self, target: str) -> str:
        return self._deployed.pod(target).key  # the probe server answers as its pod (cluster.workloads)

    def classifier_settings(self, route: ProbeRoute) -> ClassifierSettings:
        """An HTTP denial may come from the proxy on either end (egress or ingress L7 policy); a DNS
        denial from the DNS proxy on the source's node."""
        denials = self.cluster.denials
        source, destination = denials.get(route.source_node), denials.get(route.destination_node)
        if source is None and destination is None:
            return DEFAULT_SETTINGS
        ends = [d for d in (source, destination) if d is not None]
        messages = tuple(dict.fromkeys(d.http_403_message for d in ends))
        return ClassifierSettings(messages, (source or ends[0]).settings.dns_denied_rcode)

    def unrealized(self) -> Sequence[str]:
        return self.cluster.unrealized()

    def source_nodes(self, source: str) -> SourceNodes:
        """The source pod's own node from its ``status.hostIP``; the other nodes from their InternalIPs
        (the placement nodes first), all read when the pods were deployed."""
        deployed = self._deployed
        pod = deployed.pod(source)
        own = NodeAddress(pod.node, pod.host_ip) if pod.host_ip else None
        why_no_own = "" if own else f"the Kubernetes API reported no status.hostIP for pod {pod.key}"
        others = tuple(NodeAddress(name, address) for name, address in deployed.other_nodes(pod.node))
        why_no_others = ""
        if not deployed.node_addresses:
            why_no_others = "the deployment recorded no node addresses"
        elif not others and len(deployed.node_addresses) > 1:
            why_no_others = f"no node other than {pod.node} reports an InternalIP"
        return SourceNodes(own, others, why_no_own, why_no_others)

    @property
    def _deployed(self) -> DeployedTopology:
        deployed = self.cluster.deployed
        assert deployed is not None, "attached clusters always carry their deployment"
        return deployed

    def evidence(self, queries: Sequence[EvidenceQuery], since: datetime,
                 until: datetime) -> Mapping[str, Sequence[FlowRecord]]:
        """The Hubble flows of each probe (``hubble observe`` in every agent, narrowed to the probes' pods and
        source ports, then matched per probe on its 5-tuple)."""
        if not queries:
            return {}
        pods = sorted({q.source for q in queries})
        ports = [q.source_port for q in queries if q.source_port is not None]
        narrowed = ports if len(ports) == len(queries) else []  # a probe without a port needs every flow
        flows = self.cluster.hubble_flows(since=since, until=until, workloads=pods, ports=narrowed)
        return {q.probe_id: tuple(match(flows, q.facts(since, until))) for q in queries}

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
            cluster.read_denials()
        except BaseException:
            cluster.teardown(failed=True, quiet=True)
            raise
        return cluster.state()

    def attach(self, state: Mapping[str, Any]) -> ClusterLiveBackend:
        return ClusterLiveBackend(LiveCluster.from_state(self.options, state, owner=False))

    def tear_down(self, state: Mapping[str, Any], *, failed: bool) -> None:
        LiveCluster.from_state(self.options, state, owner=True).teardown(failed=failed)
