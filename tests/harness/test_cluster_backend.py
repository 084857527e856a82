"""The harness's adapter over the cluster layer: probe classes, routes, denial settings, Hubble evidence,
connectivity test.

The cluster layer itself is tested in tests/cluster with recorded outputs and fakes; here only the
adapter's own logic runs: over a stand-in ``LiveCluster`` that serves recorded Hubble flows, and over
a ``LiveCluster`` rebuilt from its state with a fake process runner for the connectivity test.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowcheck.cluster.cilium_config import NodeDenials
from flowcheck.cluster.deployed import DeployedPod, DeployedTopology
from flowcheck.cluster.hubble import parse_flow_lines
from flowcheck.cluster.options import ClusterOptions, ClusterSetup, ClusterTarget
from flowcheck.cluster.session import STATE_FORMAT, LiveCluster
from flowcheck.harness.backends import EvidenceQuery, NodeAddress, NodeAddressing, ProbeRoute, SourceNodes
from flowcheck.harness.cluster_backend import ClusterLiveBackend, topology_input
from flowcheck.model.topology import Port, Topology, Workload, load_topology
from flowcheck.probe.classify import ClassifierSettings
from flowcheck.probe.executor import CompletedExec
from tests.cluster.fakes import FakeCluster, FakeRunner, data
from tests.conftest import REPO_ROOT

PODS = (DeployedPod("tenant/client", "tenant", "client", "10.244.1.17", "flowcheck-worker", "probe", False),
        DeployedPod("default/my-api", "default", "my-api", "10.244.2.31", "flowcheck-worker2", "probe", False),
        DeployedPod("kube-system/coredns", "kube-system", "coredns-5d78c9869d-abcde", "10.244.0.3",
                    "flowcheck-control-plane", "coredns", True))
W1, W2 = "flowcheck-worker", "flowcheck-worker2"
PLACED = tuple(DeployedPod(workload, ns, f"{name}-n{i}", f"10.244.{i + 1}.{10 + k}", node, "probe", False,
                           stands_for=members)
               for k, (workload, ns, name, members) in enumerate([
                   ("tenant/client", "tenant", "client", ("tenant/client",)),
                   ("default/web", "default", "web", ("default/web", "default/web-2"))])
               for i, node in enumerate((W1, W2)))
PLACED = (*PLACED, *(DeployedPod("default/web", "default", f"web-n{i}-2", f"10.244.{i + 1}.30", node, "probe", False,
                                 stands_for=("default/web", "default/web-2")) for i, node in enumerate((W1, W2))))


class StandInCluster:
    """What ``ClusterLiveBackend`` uses of a ``LiveCluster`` for evidence: deployment and flows."""

    def __init__(self, pods: tuple[DeployedPod, ...] = PODS, nodes: tuple[str, ...] = ()) -> None:
        self.deployed = DeployedTopology("run-1", "kind-flowcheck", pods, nodes)
        self.description = "kind cluster flowcheck (context kind-flowcheck), Cilium 1.19.0"
        self.flow_requests: list[dict[str, Any]] = []
        self.denials: dict[str, NodeDenials] = {}

    def executor(self) -> Any:
        return object()

    def hubble_flows(self, *, since: datetime, until: datetime, workloads: list[str],
                     ports: list[int]) -> list[Any]:
        self.flow_requests.append({"since": since, "until": until, "workloads": workloads, "ports": ports})
        return parse_flow_lines(data("hubble-flows-probes.jsonl"))


def test_topology_becomes_the_cluster_layers_input() -> None:
    topology = load_topology(REPO_ROOT / "fixtures" / "topology.yaml")
    converted = topology_input(topology)
    my_api = next(w for w in converted.workloads if w.name == "my-api")
    assert (my_api.namespace, dict(my_api.labels)) == ("default", {"app": "my-api"})
    assert [tuple(p) for p in my_api.ports] == [("http", 8080, "TCP"), ("metrics", 9090, "TCP")]
    coredns = next(w for w in converted.workloads if w.name == "coredns")
    assert coredns.existing
    assert coredns.service_account == "coredns"
    assert converted.namespace_labels()["monitoring"] == {"kubernetes.io/metadata.name": "monitoring"}


def test_unnamed_ports_get_a_name_pods_can_carry() -> None:
    topology = Topology.build({"a": {}}, [Workload("a", "w", {"app": "w"}, (Port(None, 5353, "UDP"),))])
    [workload] = topology_input(topology).workloads
    assert [tuple(p) for p in workload.ports] == [("udp-5353", 5353, "UDP")]


def test_evidence_is_each_probes_own_hubble_flows() -> None:
    cluster = StandInCluster()
    backend = ClusterLiveBackend(cluster)  # type: ignore[arg-type]
    since = datetime(2026, 8, 27, 14, 30, 10, tzinfo=UTC)
    until = datetime(2026, 8, 27, 14, 30, 20, tzinfo=UTC)
    first = EvidenceQuery("7", "tenant/client", "default/my-api", "10.244.1.17", "10.244.2.31", 9090, "TCP", 41234)
    second = EvidenceQuery("8", "tenant/client", "default/my-api", "10.244.1.17", "10.244.2.31", 9090, "TCP", 41236)
    evidence = backend.evidence([first, second], since, until)
    assert cluster.flow_requests == [{"since": since, "until": until, "workloads": ["tenant/client"],
                                      "ports": [41234, 41236]}]
    assert [f.uuid[-2:] for f in evidence["7"]] == ["02", "01"]  # each probe its own drop; the one two
    assert [f.uuid[-2:] for f in evidence["8"]] == ["10", "09"]  # minutes earlier is outside the window


def test_a_probe_without_a_source_port_gets_the_unnarrowed_flows() -> None:
    cluster = StandInCluster()
    backend = ClusterLiveBackend(cluster)  # type: ignore[arg-type]
    old_agent = EvidenceQuery("7", "tenant/client", "default/my-api", "10.244.1.17", "10.244.2.31", 9090, "TCP")
    backend.evidence([old_agent], datetime(2026, 8, 27, 14, 30, 10, tzinfo=UTC),
                     datetime(2026, 8, 27, 14, 30, 20, tzinfo=UTC))
    assert cluster.flow_requests[0]["ports"] == []


def test_workloads_sharing_an_identity_share_a_probe_class() -> None:
    """Issue 13.3: web and web-2 differ only in name (one identity, the same named ports): one class."""
    topology = Topology.build({"default": {}}, [
        Workload("default", "web", {"app": "web"}, (Port("http", 8080, "TCP"),)),
        Workload("default", "web-2", {"app": "web"}, (Port("http", 8080, "TCP"), Port(None, 9000, "TCP"))),
        Workload("default", "web-3", {"app": "web"}, (Port("http", 8081, "TCP"),)),  # "http" means another port
        Workload("default", "api", {"app": "api"}, (Port("http", 8080, "TCP"),)),
        Workload("default", "web-ip", {"app": "web"}, (Port("http", 8080, "TCP"),), ip="10.244.9.9")])
    classes = topology_input(topology).workloads
    assert [(w.name, w.stands_for, w.copies) for w in classes] == [
        ("web", ("default/web", "default/web-2"), 2), ("web-3", ("default/web-3",), 1),
        ("api", ("default/api",), 1), ("web-ip", ("default/web-ip",), 1)]
    assert [tuple(p) for p in classes[0].ports] == [("http", 8080, "TCP"), ("tcp-9000", 9000, "TCP")]


def test_routes_are_one_same_node_and_one_cross_node_pair_of_distinct_pods() -> None:
    backend = ClusterLiveBackend(StandInCluster(PLACED, (W1, W2)))  # type: ignore[arg-type]
    assert backend.routes("tenant/client", "default/web") == (
        ProbeRoute("tenant/client-n0", "default/web-n0", W1, W1),
        ProbeRoute("tenant/client-n0", "default/web-n1", W1, W2))
    # two workloads of one class: between two different pods of it, never a pod to itself
    assert backend.routes("default/web", "default/web-2") == (
        ProbeRoute("default/web-n0", "default/web-n0-2", W1, W1),
        ProbeRoute("default/web-n0", "default/web-n1", W1, W2))
    assert backend.server_name("default/web-n1") == "default/web-n1"
    assert backend.notes == {"placement": "same-node and cross-node, on flowcheck-worker, flowcheck-worker2",
                             "shared probe pods": "default/web stands for default/web, default/web-2"}


NODE_ADDRESSES = (("flowcheck-control-plane", "172.18.0.4"), (W1, "172.18.0.2"), (W2, "172.18.0.3"))


def with_host_ips(pods: tuple[DeployedPod, ...], addresses: dict[str, str]) -> tuple[DeployedPod, ...]:
    return tuple(replace(p, host_ip=addresses.get(p.node, "")) for p in pods)


def test_host_is_the_source_pods_own_node_and_remote_node_another_one() -> None:
    cluster = StandInCluster(with_host_ips(PLACED, dict(NODE_ADDRESSES)), (W1, W2))
    cluster.deployed = replace(cluster.deployed, node_addresses=NODE_ADDRESSES)
    backend = ClusterLiveBackend(cluster)  # type: ignore[arg-type]
    nodes = backend.source_nodes("tenant/client-n1")
    assert nodes.own == NodeAddress(W2, "172.18.0.3")
    assert nodes.others == (NodeAddress(W1, "172.18.0.2"), NodeAddress("flowcheck-control-plane", "172.18.0.4"))
    assert isinstance(backend, NodeAddressing)


def test_a_one_node_cluster_has_no_remote_node_and_an_unknown_host_ip_says_so() -> None:
    pods = (replace(PODS[0], host_ip="172.18.0.2"), PODS[1])
    cluster = StandInCluster(pods, (W1,))
    cluster.deployed = replace(cluster.deployed, node_addresses=((W1, "172.18.0.2"),))
    backend = ClusterLiveBackend(cluster)  # type: ignore[arg-type]
    assert backend.source_nodes("tenant/client") == SourceNodes(NodeAddress(W1, "172.18.0.2"), (), "", "")
    missing = backend.source_nodes("default/my-api")
    assert missing.own is None and "reported no status.hostIP for pod default/my-api" in missing.why_no_own
    unknown = ClusterLiveBackend(StandInCluster(pods, (W1,)))  # type: ignore[arg-type]
    assert unknown.source_nodes("tenant/client").why_no_others == "the deployment recorded no node addresses"


def test_denial_settings_follow_the_nodes_of_a_route() -> None:
    cluster = StandInCluster(PLACED, (W1, W2))
    backend = ClusterLiveBackend(cluster)  # type: ignore[arg-type]
    route = ProbeRoute("tenant/client-n0", "default/web-n1", W1, W2)
    assert backend.classifier_settings(route) == ClassifierSettings()  # nothing read: Cilium's defaults
    cluster.denials = {W1: NodeDenials(W1, "Access denied", "nameError", "agent"),
                       W2: NodeDenials(W2, "Nope", "refused", "agent")}
    # the 403 may come from either end's proxy; the DNS proxy is the source's
    assert backend.classifier_settings(route) == ClassifierSettings(("Access denied", "Nope"), "NXDOMAIN")


def test_deployment_facts_come_from_the_cluster() -> None:
    backend = ClusterLiveBackend(StandInCluster())  # type: ignore[arg-type]
    assert backend.cannot_probe_from("tenant/client") is None
    assert "existing pod" in (backend.cannot_probe_from("kube-system/coredns") or "")
    assert backend.is_probe_server("default/my-api")
    assert not backend.is_probe_server("kube-system/coredns")
    assert backend.description.endswith("Cilium 1.19.0")


def test_connectivity_test_excludes_internet_scenarios_and_reads_junit(tmp_path: Path) -> None:
    runner = FakeRunner()
    junit = tmp_path / "report" / "cilium.xml"

    def run(argv: list[str]) -> CompletedExec:
        junit.write_text(data("connectivity-junit.xml"))
        return CompletedExec(1, "", "[cilium-test-1] 1 tests failed")

    runner.on("cilium", "connectivity", "test", result=run)
    bin_dir = tmp_path / ".bin"
    bin_dir.mkdir()
    (bin_dir / "cilium").write_text("#!/bin/sh\n")
    (bin_dir / "cilium").chmod(0o755)
    # A worker's session, as the provider attaches it: rebuilt from the shared state, no cilium CLI yet.
    # The explicitly allowed context keeps kind out of it, so the connectivity test is the only command.
    options = ClusterOptions(target=ClusterTarget(context="kind-flowcheck", allow_context="kind-flowcheck"),
                             setup=ClusterSetup(repo_root=tmp_path))
    state = {"format": STATE_FORMAT, "run_id": "run-1", "context": "kind-flowcheck",
             "deployed": DeployedTopology("run-1", "kind-flowcheck", PODS).to_dict()}
    cluster = LiveCluster.from_state(options, state, runner=runner, api_factory=FakeCluster().clients)
    backend = ClusterLiveBackend(cluster)
    report = backend.connectivity_test(junit, tests=("client-egress",))
    [argv] = runner.commands()
    assert argv[argv.index("--context") + 1] == "kind-flowcheck"
    tests = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--test"]
    assert tests == ["!/pod-to-world", "!/pod-to-cidr", "client-egress"]
    assert report.returncode == 1
    assert {r.status for r in report.results} == {"passed", "skipped", "failed"}

