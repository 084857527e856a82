"""The harness's adapter over the cluster layer: topology conversion, Hubble evidence, connectivity test.

The cluster layer itself is tested in tests/cluster with recorded outputs and fakes; here only the
adapter's own logic runs: over a stand-in ``LiveCluster`` that serves recorded Hubble flows, and over
a ``LiveCluster`` rebuilt from its state with a fake process runner for the connectivity test.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowcheck.cluster.deployed import DeployedPod, DeployedTopology
from flowcheck.cluster.hubble import parse_flow_lines
from flowcheck.cluster.options import ClusterOptions, ClusterSetup, ClusterTarget
from flowcheck.cluster.session import STATE_FORMAT, LiveCluster
from flowcheck.harness.backends import EvidenceQuery
from flowcheck.harness.cluster_backend import ClusterLiveBackend, topology_input
from flowcheck.model.topology import Port, Topology, Workload, load_topology
from flowcheck.probe.executor import CompletedExec
from tests.cluster.fakes import FakeCluster, FakeRunner, data
from tests.conftest import REPO_ROOT

PODS = (DeployedPod("tenant/client", "tenant", "client", "10.244.1.17", "flowcheck-worker", "probe", False),
        DeployedPod("default/my-api", "default", "my-api", "10.244.2.31", "flowcheck-worker2", "probe", False),
        DeployedPod("kube-system/coredns", "kube-system", "coredns-5d78c9869d-abcde", "10.244.0.3",
                    "flowcheck-control-plane", "coredns", True))


class StandInCluster:
    """What ``ClusterLiveBackend`` uses of a ``LiveCluster`` for evidence: deployment and flows."""

    def __init__(self) -> None:
        self.deployed = DeployedTopology("run-1", "kind-flowcheck", PODS)
        self.description = "kind cluster flowcheck (context kind-flowcheck), Cilium 1.19.0"
        self.flow_requests: list[dict[str, Any]] = []

    def executor(self) -> Any:
        return object()

    def hubble_flows(self, *, since: datetime, until: datetime, workloads: list[str]) -> list[Any]:
        self.flow_requests.append({"since": since, "until": until, "workloads": workloads})
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
    scrape = EvidenceQuery("7", "tenant/client", "default/my-api", "10.244.1.17", "10.244.2.31", 9090, "TCP")
    evidence = backend.evidence([scrape], since, until)
    assert cluster.flow_requests == [{"since": since, "until": until, "workloads": ["tenant/client"]}]
    lines = evidence["7"]
    assert any("DROPPED" in line and "POLICY_DENIED" in line for line in lines), lines
    assert all("14:28" not in line for line in lines)  # the same drop two minutes earlier is outside the window


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

