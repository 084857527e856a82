"""LiveCluster end to end against the fakes: bring-up, guard, deploy, policies, teardown (also on failure/Ctrl-C)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from flowcheck.cli import main
from flowcheck.cluster import session as session_module
from flowcheck.cluster.deployed import DeployedTopology
from flowcheck.cluster.options import ClusterOptions, ClusterSetup, ClusterTarget
from flowcheck.cluster.session import STATE_FORMAT, LiveCluster
from flowcheck.cluster.workloads import NamespaceInput, PodSpecInput, TopologyInput
from flowcheck.errors import ClusterError, ContextRefused, InputError
from flowcheck.manifests.documents import SourceDocument, read_documents
from flowcheck.probe.executor import CompletedExec
from tests.cluster.fakes import (
    ExecReply,
    FakeClock,
    FakeCluster,
    FakeRunner,
    data,
    endpoint_list,
    image_pull_status,
    kubelet_making_ready,
    unreachable,
)

REPO = Path(__file__).resolve().parents[2]
RUN = "20260827-142958-9f3a1c"

TOPOLOGY = TopologyInput(
    namespaces=(NamespaceInput("default"), NamespaceInput("monitoring", {"team": "observability"}),
                NamespaceInput("tenant"), NamespaceInput("kube-system")),
    workloads=(
        PodSpecInput("default", "my-api", {"app": "my-api"}, (("http", 8080, "TCP"), ("metrics", 9090, "TCP"))),
        PodSpecInput("monitoring", "prometheus", {"app.kubernetes.io/name": "prometheus"}, (("web", 9090, "TCP"),)),
        PodSpecInput("tenant", "client", {"app": "client", "app.kubernetes.io/name": "prometheus"},
                     (("http", 8080, "TCP"),), service_account="client"),
        PodSpecInput("kube-system", "coredns", {"k8s-app": "kube-dns"}, (("dns", 53, "UDP"),),
                     service_account="coredns", existing=True),
    ))


class World:
    """A fake machine: tools in .bin/, a fake kind/cilium CLI, a fake API server, a fake clock."""

    def __init__(self, root: Path, *, cluster_exists: bool = False, cilium_installed: bool = False) -> None:
        self.root = root
        for tool in ("kind", "cilium", "docker"):
            path = root / ".bin" / tool
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("#!/bin/sh\nexit 99\n")  # never run: the runner is fake
            path.chmod(0o755)
        (root / "manifests" / "cilium").mkdir(parents=True)
        (root / "manifests" / "cilium" / "VERSION").write_text("1.19.0\n")
        self.clock = FakeClock()
        self.api = FakeCluster(clock=self.clock, kubelet=kubelet_making_ready())
        self.api.add_kind_nodes()
        for ns in ("default", "kube-system"):
            self.api.add_namespace(ns)
        self.api.add_pod("kube-system", "coredns-7db6d8ff4d-5xq2k", {"k8s-app": "kube-dns"}, ip="10.244.0.3",
                         node="flowcheck-control-plane")
        self.kind_clusters = ["flowcheck"] if cluster_exists else []
        if cilium_installed:
            self._add_agents()
        self.api.exec_handler = self._exec
        self.progress: list[str] = []
        self.endpoint_lists: list[str] = []  # the agents asked for their endpoint list, in order
        self.runner = FakeRunner()
        self.runner.on("kind", "get", "clusters", result=self._get_clusters)
        self.runner.on("kind", "create", "cluster", result=self._create)
        self.runner.on("kind", "delete", "cluster", result=self._delete)
        self.runner.on("kind", "export", "logs", stdout="Exporting logs for cluster \"flowcheck\" to:\n/tmp/x\n")
        self.runner.on("cilium", "install", result=self._install)
        self.runner.on("cilium", "upgrade")
        self.runner.on("cilium", "status", stdout=data("cilium-status-healthy.json"))

    def _get_clusters(self, argv: list[str]) -> CompletedExec:
        if not self.kind_clusters:
            return CompletedExec(0, "", data("kind-get-clusters-none.stderr"))
        return CompletedExec(0, "".join(f"{c}\n" for c in self.kind_clusters), "")

    def _create(self, argv: list[str]) -> CompletedExec:
        self.kind_clusters.append(argv[argv.index("--name") + 1])
        return CompletedExec(0, "", 'Creating cluster "flowcheck" ...\n')

    def _delete(self, argv: list[str]) -> CompletedExec:
        self.kind_clusters.remove(argv[argv.index("--name") + 1])
        return CompletedExec(0, "", 'Deleting cluster "flowcheck" ...\n')

    def _add_agents(self) -> None:
        """One agent per node, the control plane's too (a DaemonSet tolerates its taint)."""
        self.api.add_cilium_agents(["cilium-4xk2p", "cilium-9hq7w", "cilium-tz5lm"],
                                   nodes=["flowcheck-worker", "flowcheck-worker2", "flowcheck-control-plane"])

    def _install(self, argv: list[str]) -> CompletedExec:
        self._add_agents()
        return CompletedExec(0, "🔮 Auto-detected Kubernetes kind: kind\n", "")

    def revision(self) -> int:
        """Every policy change bumps every agent's repository revision by one: a create, a delete, a replace
        that changed the spec (its generation)."""
        deleted = sum(1 for name in self.api.names() if name.startswith("delete_") and (
            "network_policy" in name or "custom_object" in name))
        present = len(self.api.network_policies) + len(self.api.custom)
        spec_changes = sum((p.metadata.generation or 1) - 1 for p in self.api.network_policies.values()) + sum(
            int(o["metadata"].get("generation", 1)) - 1 for o in self.api.custom.values())
        return 10 + present + 2 * deleted + spec_changes  # each deleted one was created first

    def _exec(self, ns: str, pod: str, container: str | None, argv: list[str], stdin: str | None) -> ExecReply:
        if argv[:3] == ["cilium-dbg", "policy", "get"]:
            return ExecReply(stdout=f"'{self.revision()}'")
        if argv[:3] == ["cilium-dbg", "endpoint", "list"]:
            # the agent's endpoints realize the current revision at once (the delay is test_realization's)
            node = self.api.pods[(ns, pod)].spec.node_name
            local = [p for p in self.api.pods.values() if p.spec.node_name == node and p.status.pod_ip
                     and not p.metadata.name.startswith("cilium-")]
            self.endpoint_lists.append(pod)
            return ExecReply(stdout=endpoint_list(local, self.revision()))
        if argv[:2] == ["hubble", "observe"]:
            return ExecReply(stdout=data("hubble-flows-probes.jsonl") if pod == "cilium-4xk2p" else "")
        raise AssertionError(f"unexpected exec {argv} in {ns}/{pod}")

    def options(self, *, context: str | None = None, allow_context: str | None = None, upgrade_cilium: bool = False,
                keep_cluster: bool = False) -> ClusterOptions:
        return ClusterOptions(target=ClusterTarget(context=context, allow_context=allow_context),
                              setup=ClusterSetup(repo_root=self.root, upgrade_cilium=upgrade_cilium),
                              keep_cluster=keep_cluster, run_id=RUN)

    def bring_up(self, **kwargs: Any) -> LiveCluster:
        return LiveCluster.bring_up(self.options(**kwargs), runner=self.runner, api_factory=self.api.clients,
                                    progress=self.progress.append, clock=self.clock, sleep=self.clock.sleep)


@pytest.fixture(autouse=True)
def _probe_files(monkeypatch: pytest.MonkeyPatch) -> None:
    # agent.py/server.py are written by another engineer; the deployment only ships them
    monkeypatch.setattr(session_module, "load_probe_files",
                        lambda: {"agent.py": "# agent\n", "server.py": "# server\n"})
    monkeypatch.delenv("FLOWCHECK_BIN_DIR", raising=False)


def test_bring_up_creates_the_cluster_installs_cilium_and_waits(tmp_path: Path) -> None:
    world = World(tmp_path)
    live = world.bring_up()
    assert (live.context, live.created_cluster, live.run_id) == ("kind-flowcheck", True, RUN)
    assert world.runner.commands() == [
        ["kind", "get", "clusters"],
        ["kind", "create", "cluster", "--name", "flowcheck", "--config", str(tmp_path / "manifests/kind/cluster.yaml")],
        ["kind", "get", "clusters"],
        ["cilium", "install", "--context", "kind-flowcheck", "--version", "1.19.0", "--values",
         str(tmp_path / "manifests/cilium/values.yaml"), "--set", "k8sServiceHost=flowcheck-control-plane",
         "--set", "cluster.name=kind-flowcheck"],
        ["cilium", "status", "--context", "kind-flowcheck", "--wait", "--wait-duration", "600s", "--interactive=false"],
        ["cilium", "status", "--context", "kind-flowcheck", "-o", "json"]]
    assert world.api.names() == ["read_namespaced_daemon_set"]  # "is Cilium installed?" -- no other API call
    assert live.cilium_status is not None and live.cilium_status.healthy
    assert "creating kind cluster flowcheck" in " ".join(world.progress)


def test_bring_up_reuses_a_cluster_and_leaves_its_cilium_alone(tmp_path: Path) -> None:
    world = World(tmp_path, cluster_exists=True, cilium_installed=True)
    live = world.bring_up()
    assert not live.created_cluster
    assert [c[:2] for c in world.runner.commands()] == [["kind", "get"], ["cilium", "status"], ["cilium", "status"]]
    live.teardown()
    assert world.kind_clusters == ["flowcheck"]  # a reused cluster is never deleted


def test_bring_up_can_upgrade_cilium_to_the_pin(tmp_path: Path) -> None:
    world = World(tmp_path, cluster_exists=True, cilium_installed=True)
    world.api.config_maps[("kube-system", "cilium-config")] = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="cilium-config", namespace="kube-system"),
        data={"cluster-name": "kind-flowcheck", "cluster-id": "0"})
    world.bring_up(upgrade_cilium=True)
    [upgrade] = [c for c in world.runner.commands() if c[:2] == ["cilium", "upgrade"]]
    assert upgrade[-4:] == ["--set", "k8sServiceHost=flowcheck-control-plane", "--set", "cluster.name=kind-flowcheck"]


def test_an_upgrade_keeps_the_cluster_name_the_cluster_runs_with(tmp_path: Path) -> None:
    """Whatever installed it named the cluster otherwise: an upgrade must not rename it."""
    world = World(tmp_path, cluster_exists=True, cilium_installed=True)
    world.api.config_maps[("kube-system", "cilium-config")] = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="cilium-config", namespace="kube-system"), data={})
    world.bring_up(upgrade_cilium=True)
    [upgrade] = [c for c in world.runner.commands() if c[:2] == ["cilium", "upgrade"]]
    assert upgrade[-2:] == ["--set", "cluster.name=default"]  # no cluster-name key: Cilium's default


def test_an_api_server_that_does_not_answer_fails_the_bring_up_with_one_clear_error(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.api.fail("read_namespaced_daemon_set", unreachable("/apis/apps/v1/namespaces/kube-system/daemonsets/cilium"))
    with pytest.raises(ClusterError, match=r"^checking for the cilium DaemonSet: cannot reach the Kubernetes API "
                                           r"server of context kind-flowcheck \(https://127\.0\.0\.1:41231\): "
                                           r"Failed to establish a new connection: \[Errno 111\] Connection refused$"):
        world.bring_up()
    assert world.kind_clusters == []  # the cluster it had just created was deleted again


def test_a_mismatched_opt_in_is_refused_before_a_cluster_is_created(tmp_path: Path) -> None:
    world = World(tmp_path)
    with pytest.raises(ContextRefused, match="--allow-context names 'staging'"):
        world.bring_up(allow_context="staging")
    assert world.runner.commands() == []


def test_an_existing_context_is_refused_without_opt_in(tmp_path: Path) -> None:
    world = World(tmp_path, cluster_exists=True)
    with pytest.raises(ContextRefused) as err:
        world.bring_up(context="staging-eu")
    assert "it is not 'kind-flowcheck'" in str(err.value) and "--allow-context staging-eu" in str(err.value)
    assert world.runner.commands() == [["kind", "get", "clusters"]]  # looked, changed nothing
    assert world.api.calls == []


def test_an_explicitly_allowed_context_is_only_checked_never_changed(tmp_path: Path) -> None:
    world = World(tmp_path, cilium_installed=True)
    live = world.bring_up(context="staging-eu", allow_context="staging-eu")
    assert live.context == "staging-eu" and not live.created_cluster
    assert world.runner.commands() == [
        ["cilium", "status", "--context", "staging-eu", "--wait", "--wait-duration", "600s", "--interactive=false"],
        ["cilium", "status", "--context", "staging-eu", "-o", "json"]]


def test_deploy_apply_probe_and_teardown(tmp_path: Path) -> None:
    world = World(tmp_path, cluster_exists=True, cilium_installed=True)
    with world.bring_up() as live:
        deployed = live.deploy(TOPOLOGY)
        # two schedulable workers (the control plane keeps its taint): one pod per workload on each
        assert [(p.key, p.node) for p in deployed.probe_pods] == [
            ("default/my-api-n0", "flowcheck-worker"), ("default/my-api-n1", "flowcheck-worker2"),
            ("monitoring/prometheus-n0", "flowcheck-worker"), ("monitoring/prometheus-n1", "flowcheck-worker2"),
            ("tenant/client-n0", "flowcheck-worker"), ("tenant/client-n1", "flowcheck-worker2")]
        assert deployed.nodes == ("flowcheck-worker", "flowcheck-worker2")
        assert [p.key for p in deployed.replicas("default/my-api")] == ["default/my-api-n0", "default/my-api-n1"]
        assert deployed.pod("kube-system/coredns").pod_name == "coredns-7db6d8ff4d-5xq2k"
        assert DeployedTopology.from_dict(json.loads(json.dumps(live.state()))["deployed"]) == deployed
        pod = world.api.pods[("default", "my-api-n1")]
        required = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
        term = required.node_selector_terms[0]
        assert (term.match_expressions[0].key, term.match_expressions[0].values) == (
            "kubernetes.io/hostname", ["flowcheck-worker2"])  # placed by construction, not by the scheduler
        assert pod.spec.topology_spread_constraints is None
        assert pod.spec.containers[0].command[2:4] == ["--name", "default/my-api-n1"]  # answers as the pod it is
        # what was created: namespaces with labels, one ConfigMap per namespace, the missing service account
        assert world.api.namespaces["monitoring"].metadata.labels["team"] == "observability"
        assert world.api.namespaces["tenant"].metadata.labels["flowcheck.io/run"] == RUN
        assert sorted(world.api.config_maps) == [("default", f"flowcheck-probe-{RUN}"),
                                                 ("monitoring", f"flowcheck-probe-{RUN}"),
                                                 ("tenant", f"flowcheck-probe-{RUN}")]
        assert world.api.config_maps[("tenant", f"flowcheck-probe-{RUN}")].data == {
            "agent.py": "# agent\n", "server.py": "# server\n"}
        assert set(world.api.service_accounts) == {("default", "default"), ("monitoring", "default"),
                                                   ("tenant", "client")}
        assert any("every path is probed same-node and cross-node" in line for line in world.progress)

        world.api.calls.clear()
        applied = live.apply_policies(read_documents([REPO / "manifests" / "network-policies"]))
        assert [a.outcome for a in applied.policies] == ["created"] * 4
        assert applied.revisions_before == {"cilium-4xk2p": 10, "cilium-9hq7w": 10, "cilium-tz5lm": 10}
        assert applied.realized_targets == {"cilium-4xk2p": 14, "cilium-9hq7w": 14, "cilium-tz5lm": 14}
        names = world.api.names()
        first_create = names.index("create_namespaced_network_policy")
        assert names[:first_create].count("exec") == 3  # every agent's revision read before applying
        # then each agent's endpoint list: every pod on its node (coredns on the control plane too) has
        # realized the four new policies
        assert sorted(world.endpoint_lists) == ["cilium-4xk2p", "cilium-9hq7w", "cilium-tz5lm"]
        assert live.unrealized() == []

        executor = live.executor()
        assert executor.address_of("default/my-api-n1") == deployed.pod("default/my-api-n1").ip
        flows = live.hubble_flows(since=datetime(2026, 8, 27, 14, 30, tzinfo=UTC), ports=[41234])
        assert len(flows) == 10
        hubble_calls = [c for c in world.api.exec_calls if c["command"][0] == "hubble"]
        assert hubble_calls[0]["command"].count("--pod") == 6  # the six probe pods, not coredns
        assert hubble_calls[0]["command"][-2:] == ["--port", "41234"]

    # teardown: everything created is gone, in order; pre-existing namespaces stay
    deletes = [n for n in world.api.names() if n.startswith(("delete_", "patch_"))]
    assert deletes == (["delete_namespaced_pod"] * 6 + ["delete_namespaced_custom_object"]
                       + ["delete_namespaced_network_policy"] * 3 + ["delete_namespaced_config_map"] * 3
                       + ["delete_namespaced_service_account"] * 3 + ["delete_namespace"] * 2)
    assert sorted(world.api.namespaces) == ["default", "kube-system"]
    assert not world.api.pods.keys() - {("kube-system", p) for p in ("coredns-7db6d8ff4d-5xq2k", "cilium-4xk2p",
                                                                      "cilium-9hq7w", "cilium-tz5lm")}
    assert world.api.network_policies == {} and world.api.custom == {}
    assert world.kind_clusters == ["flowcheck"]


def test_deploy_records_each_pods_node_address_and_every_nodes_internal_ip(tmp_path: Path) -> None:
    """What probes to ``host`` and ``remote-node`` aim at: a pod's ``status.hostIP`` and the nodes'
    ``status.addresses`` InternalIPs, the control plane's too (it is a remote node, though it runs no probe pod)."""
    world = World(tmp_path, cluster_exists=True, cilium_installed=True)
    with world.bring_up() as live:
        deployed = live.deploy(TOPOLOGY)
        assert [(p.key, p.host_ip) for p in deployed.replicas("tenant/client")] == [
            ("tenant/client-n0", "172.18.0.2"), ("tenant/client-n1", "172.18.0.3")]
        assert deployed.pod("kube-system/coredns").host_ip == "172.18.0.4"
        assert deployed.node_addresses == (("flowcheck-control-plane", "172.18.0.4"),
                                           ("flowcheck-worker", "172.18.0.2"), ("flowcheck-worker2", "172.18.0.3"))
        # the placement node first (it is known to run pods), then the rest by name
        assert deployed.other_nodes("flowcheck-worker") == (("flowcheck-worker2", "172.18.0.3"),
                                                            ("flowcheck-control-plane", "172.18.0.4"))
        assert world.api.names().count("list_node") == 1  # placement and addresses come from one listing
        shared = DeployedTopology.from_dict(json.loads(json.dumps(live.state()))["deployed"])
        assert shared == deployed  # every xdist worker aims at the same addresses


def test_a_node_without_an_internal_ip_is_left_out_of_the_addresses_probes_aim_at(tmp_path: Path) -> None:
    world = World(tmp_path, cluster_exists=True, cilium_installed=True)
    world.api.add_node("flowcheck-control-plane", taints=[("node-role.kubernetes.io/control-plane", "NoSchedule")],
                       internal_ip="")
    with world.bring_up() as live:
        deployed = live.deploy(TOPOLOGY)
        assert dict(deployed.node_addresses)["flowcheck-control-plane"] == ""
        assert deployed.other_nodes("flowcheck-worker2") == (("flowcheck-worker", "172.18.0.2"),)


def test_a_state_written_without_node_addresses_still_reads() -> None:
    """The keys were added within format 2: a state without them reads, with the addresses unknown."""
    old = {"format": 2, "run_id": "r", "context": "kind-flowcheck", "nodes": ["w"],
           "pods": [{"workload": "a/b", "namespace": "a", "pod_name": "b", "ip": "10.244.1.2", "node": "w",
                     "container": "probe", "existing": False}]}
    deployed = DeployedTopology.from_dict(old)
    assert deployed.pods[0].host_ip == "" and deployed.node_addresses == ()


def _with_default_deny_narrowed(documents: list[SourceDocument]) -> list[SourceDocument]:
    """The same policies with one spec changed (default-deny-ingress selects only app=web)."""
    narrowed = {"matchLabels": {"app": "web"}}
    return [dataclasses.replace(d, body={**d.body, "spec": {**d.body["spec"], "podSelector": narrowed}})
            if d.body["metadata"]["name"] == "default-deny-ingress" else d for d in documents]


def test_a_replaced_policy_is_awaited_like_a_created_one(tmp_path: Path) -> None:
    """Issue 17.4: a second run re-applies the policies (replaced, not created); a changed spec must be
    realized by every probe pod's endpoint before the first probe."""
    world = World(tmp_path, cluster_exists=True, cilium_installed=True)
    live = world.bring_up()
    live.deploy(TOPOLOGY)
    documents = list(read_documents([REPO / "manifests" / "network-policies"]))
    live.apply_policies(documents)
    # another run changes one policy's spec and re-applies them all
    changed = _with_default_deny_narrowed(documents)
    second = LiveCluster.from_state(world.options(), json.loads(json.dumps(live.state())), owner=True,
                                    runner=world.runner, api_factory=world.api.clients, clock=world.clock,
                                    sleep=world.clock.sleep)
    world.endpoint_lists.clear()
    lagging = {"n": 0}
    real_exec = world.api.exec_handler
    assert real_exec is not None

    def one_agent_regenerates_late(ns: str, pod: str, container: str | None, argv: list[str],
                                   stdin: str | None) -> ExecReply:
        reply = real_exec(ns, pod, container, argv, stdin)
        if argv[:3] == ["cilium-dbg", "endpoint", "list"] and pod == "cilium-9hq7w" and lagging["n"] < 2:
            lagging["n"] += 1  # the first two lists still show the revision before the change
            return ExecReply(stdout=reply.stdout.replace(f'"policy-revision": {world.revision()}',
                                                         f'"policy-revision": {world.revision() - 1}'))
        return reply

    world.api.exec_handler = one_agent_regenerates_late
    applied = second.apply_policies(changed)
    assert [a.outcome for a in applied.policies] == ["replaced"] * 4
    assert [a.changed for a in applied.policies] == [True, False, False, False]  # only the spec change counts
    assert applied.realized_targets == {a: r + 1 for a, r in applied.revisions_before.items()}
    assert world.endpoint_lists.count("cilium-9hq7w") == 3  # polled until the late agent caught up
    assert world.clock.sleeps[-2:] == [2.0, 2.0]


def test_a_replaced_policy_that_is_never_realized_fails_the_set_up(tmp_path: Path) -> None:
    world = World(tmp_path, cluster_exists=True, cilium_installed=True)
    live = world.bring_up()
    live.deploy(TOPOLOGY)
    documents = list(read_documents([REPO / "manifests" / "network-policies"]))
    live.apply_policies(documents)
    real_exec = world.api.exec_handler
    assert real_exec is not None
    stuck = world.revision()  # every agent stays at the revision before the change

    def stuck_endpoints(ns: str, pod: str, container: str | None, argv: list[str], stdin: str | None) -> ExecReply:
        reply = real_exec(ns, pod, container, argv, stdin)
        if argv[:3] == ["cilium-dbg", "endpoint", "list"]:
            return ExecReply(stdout=reply.stdout.replace(f'"policy-revision": {world.revision()}',
                                                         f'"policy-revision": {stuck}'))
        return reply

    world.api.exec_handler = stuck_endpoints
    changed = _with_default_deny_narrowed(documents)
    with pytest.raises(ClusterError, match=r"policies not realized within 30 s by the probe pods' endpoints:\n"
                                           r"  default/my-api-n0: realized revision 14, waiting for >= 15"):
        live.apply_policies(changed)


def test_teardown_runs_when_deploy_fails(tmp_path: Path) -> None:
    world = World(tmp_path, cluster_exists=True, cilium_installed=True)
    world.api.kubelet = lambda pod: image_pull_status()
    with pytest.raises(ClusterError, match=r"probe pod.* not ready after 180 s"), world.bring_up() as live:
        live.deploy(TOPOLOGY)
    assert sorted(world.api.namespaces) == ["default", "kube-system"]
    assert world.api.config_maps == {} and world.api.service_accounts == {}
    assert ["kind", "export", "logs", str(tmp_path / "flowcheck-report" / f"kind-logs-{RUN}"), "--name",
            "flowcheck"] in world.runner.commands()


def test_ctrl_c_while_probing_still_cleans_up(tmp_path: Path) -> None:
    world = World(tmp_path, cluster_exists=True, cilium_installed=True)
    live = world.bring_up()

    def run() -> None:
        with live:
            live.deploy(TOPOLOGY)
            live.apply_policies(read_documents([REPO / "manifests" / "network-policies"]))
            raise KeyboardInterrupt  # Ctrl-C while probing

    with pytest.raises(KeyboardInterrupt):
        run()
    assert sorted(world.api.namespaces) == ["default", "kube-system"]
    assert world.api.network_policies == {} and world.api.custom == {}


def test_a_created_cluster_is_deleted_unless_kept(tmp_path: Path) -> None:
    world = World(tmp_path)
    with world.bring_up() as live:
        live.deploy(TOPOLOGY)
    assert world.kind_clusters == []
    assert "delete_namespace" not in world.api.names()  # the whole cluster went: no object-by-object cleanup

    kept = World(tmp_path / "kept")
    with kept.bring_up(keep_cluster=True) as live:
        live.deploy(TOPOLOGY)
    assert kept.kind_clusters == ["flowcheck"]
    assert sorted(kept.api.namespaces) == ["default", "kube-system"]


def test_labels_added_to_existing_namespaces_are_removed(tmp_path: Path) -> None:
    world = World(tmp_path, cluster_exists=True, cilium_installed=True)
    topo = TopologyInput((NamespaceInput("default", {"team": "web"}),), (TOPOLOGY.workloads[0],))
    with world.bring_up() as live:
        live.deploy(topo)
        assert world.api.namespaces["default"].metadata.labels["team"] == "web"
    assert "team" not in world.api.namespaces["default"].metadata.labels
    assert "default" in world.api.namespaces


def test_teardown_problems_name_the_cleanup_command(tmp_path: Path) -> None:
    world = World(tmp_path, cluster_exists=True, cilium_installed=True)
    live = world.bring_up()
    live.deploy(TOPOLOGY)
    from tests.cluster.fakes import api_error

    world.api.fail("delete_namespaced_pod", api_error(500, "InternalError", "etcdserver: request timed out"))
    with pytest.raises(ClusterError) as err:
        live.teardown()
    message = str(err.value)
    assert "deleting pod tenant/client-n1: deleting pod tenant/client-n1: 500 InternalError: etcdserver" in message
    assert f"`flowcheck cleanup --context kind-flowcheck --run {RUN}`" in message
    assert sorted(world.api.namespaces) == ["default", "kube-system"]  # the other steps still ran
    live.teardown()  # idempotent


def test_an_attached_session_probes_but_never_changes_or_tears_down(tmp_path: Path) -> None:
    world = World(tmp_path, cluster_exists=True, cilium_installed=True)
    owner = world.bring_up()
    owner.deploy(TOPOLOGY)
    shared = json.loads(json.dumps(owner.state()))  # what the harness passes to the xdist workers
    worker = LiveCluster.from_state(world.options(), shared, runner=world.runner, api_factory=world.api.clients)
    assert worker.executor().address_of("tenant/client") == owner.executor().address_of("tenant/client")
    with pytest.raises(ClusterError, match="cannot deploy"):
        worker.deploy(TOPOLOGY)
    worker.teardown()
    assert "tenant" in world.api.namespaces
    owner.teardown()
    assert "tenant" not in world.api.namespaces


def test_attach_rechecks_the_guard(tmp_path: Path) -> None:
    world = World(tmp_path, cluster_exists=False)
    state = {"format": STATE_FORMAT, "run_id": "r", "context": "kind-flowcheck",
             "deployed": DeployedTopology("r", "kind-flowcheck", ()).to_dict()}
    with pytest.raises(ContextRefused, match="does not list 'flowcheck'"):
        LiveCluster.from_state(world.options(), state, runner=world.runner, api_factory=world.api.clients)


def test_another_process_can_tear_down_from_the_json_state(tmp_path: Path) -> None:
    world = World(tmp_path, cluster_exists=True, cilium_installed=True)
    setup = world.bring_up()
    setup.deploy(TOPOLOGY)
    setup.apply_policies(read_documents([REPO / "manifests" / "network-policies"]))
    state = json.loads(json.dumps(setup.state()))  # what crosses the process boundary
    assert state["description"] == "kind cluster flowcheck (context kind-flowcheck), Cilium 1.19.0"

    worker = LiveCluster.from_state(world.options(), state, runner=world.runner, api_factory=world.api.clients)
    assert worker.deployed == setup.deployed and worker.description == setup.description
    assert worker.deployed is not None and worker.deployed.cannot_probe_from("kube-system/coredns")
    assert worker.deployed.cannot_probe_from("tenant/client") is None
    assert worker.deployed.is_probe_server("default/my-api") and not worker.deployed.is_probe_server(
        "kube-system/coredns")
    worker.teardown()
    assert "tenant" in world.api.namespaces  # a worker never tears down

    controller = LiveCluster.from_state(world.options(), state, owner=True, runner=world.runner,
                                        api_factory=world.api.clients, progress=world.progress.append)
    controller.teardown(failed=True)
    assert sorted(world.api.namespaces) == ["default", "kube-system"]
    assert world.api.network_policies == {} and world.api.custom == {} and world.api.config_maps == {}
    assert ["kind", "export", "logs", str(tmp_path / "flowcheck-report" / f"kind-logs-{RUN}"), "--name",
            "flowcheck"] in world.runner.commands()


def test_a_cluster_created_by_the_set_up_is_deleted_by_the_controller(tmp_path: Path) -> None:
    world = World(tmp_path)
    state = world.bring_up().state()
    assert state["created_cluster"] is True
    LiveCluster.from_state(world.options(), state, owner=True, runner=world.runner,
                           api_factory=world.api.clients).teardown()
    assert world.kind_clusters == []


def test_unreadable_state_is_refused(tmp_path: Path) -> None:
    world = World(tmp_path)
    with pytest.raises(ClusterError, match=r"unreadable cluster state \(format 7, expected 2\)"):
        LiveCluster.from_state(world.options(), {"format": 7}, runner=world.runner, api_factory=world.api.clients)


def _cluster_command_on(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``flowcheck cluster`` bring the cluster up on ``world`` (its fake tools and API)."""
    real_bring_up = LiveCluster.bring_up.__func__  # type: ignore[attr-defined]

    def bring_up(cls: type[LiveCluster], options: ClusterOptions, **_kwargs: Any) -> LiveCluster:
        options = dataclasses.replace(options, setup=dataclasses.replace(options.setup, repo_root=world.root),
                                      run_id=RUN)
        live: LiveCluster = real_bring_up(cls, options, runner=world.runner, api_factory=world.api.clients,
                                          progress=world.progress.append, clock=world.clock, sleep=world.clock.sleep)
        return live

    monkeypatch.setattr(LiveCluster, "bring_up", classmethod(bring_up))


def test_the_cluster_command_connectivity_test_keeps_the_internet_exclusions_with_test_filters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    world = World(tmp_path, cluster_exists=True, cilium_installed=True)
    _cluster_command_on(world, monkeypatch)

    def connectivity(argv: list[str]) -> CompletedExec:
        Path(argv[argv.index("--junit-file") + 1]).write_text(data("connectivity-junit.xml"))
        return CompletedExec(0, "", "")

    world.runner.on("cilium", "connectivity", "test", result=connectivity)
    junit = tmp_path / "out" / "junit.xml"
    assert main(["cluster", "connectivity-test", "--name", "flowcheck", "--junit-file", str(junit), "--test",
                 "client-egress"]) == 1  # the recorded run has a failed test
    (argv,) = [c for c in world.runner.commands() if c[1:3] == ["connectivity", "test"]]
    filters = [argv[i + 1] for i, word in enumerate(argv) if word == "--test"]
    assert filters == ["!/pod-to-world", "!/pod-to-cidr", "client-egress"]
    assert "cilium connectivity test:" in capsys.readouterr().out + "\n".join(world.progress)


def test_the_cluster_command_up_loads_local_images_into_the_nodes(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(tmp_path)
    _cluster_command_on(world, monkeypatch)
    world.runner.on("kind", "load", "docker-image")
    assert main(["cluster", "up", "--name", "flowcheck", "--load-image", "flowcheck-probe:dev",
                 "--load-image", "python:3-alpine"]) == 0
    commands = world.runner.commands()
    loads = [c for c in commands if c[1:3] == ["load", "docker-image"]]
    assert loads == [["kind", "load", "docker-image", "flowcheck-probe:dev", "--name", "flowcheck"],
                     ["kind", "load", "docker-image", "python:3-alpine", "--name", "flowcheck"]]
    # into the cluster just created, before Cilium is installed (its pods may use them)
    assert commands.index(loads[0]) > commands.index(next(c for c in commands if c[1:3] == ["create", "cluster"]))
    assert commands.index(loads[-1]) < commands.index(next(c for c in commands if c[1] == "install"))


def test_the_pinned_version_file_is_read_one_way_everywhere(tmp_path: Path) -> None:
    world = World(tmp_path)
    (tmp_path / "manifests" / "cilium" / "VERSION").write_text("latest\n")
    with pytest.raises(InputError, match=r"manifests/cilium/VERSION holds 'latest', not a Cilium release version "
                                         r"like 1\.19\.0"):
        world.bring_up()
    (tmp_path / "manifests" / "cilium" / "VERSION").write_text("v1.19.0\n")
    assert world.options().setup.resolved_cilium_version() == "1.19.0"


def test_a_bug_in_the_cluster_command_is_exit_3(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise TypeError("unexpected keyword argument 'progress'")

    monkeypatch.setattr(LiveCluster, "bring_up", broken)
    monkeypatch.delenv("FLOWCHECK_DEBUG", raising=False)
    assert main(["cluster", "up", "--name", "flowcheck"]) == 3
    assert "flowcheck: internal error (a flowcheck bug): TypeError" in capsys.readouterr().err
