"""The context guard, and the PodExecutor (ProbeExecutor for pods) with one ApiClient per thread."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flowcheck.cluster.deployed import DeployedPod, DeployedTopology
from flowcheck.cluster.executor import PodExecutor
from flowcheck.cluster.guard import check_context, check_context_asking_kind
from flowcheck.cluster.kind import Kind
from flowcheck.cluster.tools import find_tool
from flowcheck.errors import ClusterError, ContextRefused
from flowcheck.probe.executor import ProbeExecutor
from tests.cluster.fakes import ExecReply, FakeCluster, FakeRunner, data


def test_the_kind_cluster_flowcheck_manages_is_accepted() -> None:
    assert check_context("kind-flowcheck", cluster_name="flowcheck", kind_clusters=["flowcheck"]) == "kind-flowcheck"


@pytest.mark.parametrize(("context", "clusters", "reason"), [
    ("prod-eu-1", ["flowcheck"], "it is not 'kind-flowcheck'"),
    ("kind-other", ["flowcheck", "other"], "it is not 'kind-flowcheck'"),
    ("kind-flowcheck", [], "`kind get clusters` does not list 'flowcheck' (it lists: none)"),
    ("kind-flowcheck", None, "kind was not available to confirm"),
])
def test_other_contexts_are_refused(context: str, clusters: list[str] | None, reason: str) -> None:
    with pytest.raises(ContextRefused) as err:
        check_context(context, cluster_name="flowcheck", kind_clusters=clusters)
    assert err.value.context == context
    assert reason in str(err.value)
    assert f"pass --allow-context {context}" in str(err.value)


def test_explicit_opt_in_must_name_exactly_this_context() -> None:
    assert check_context("staging", cluster_name="flowcheck", kind_clusters=None, allow_context="staging") == "staging"
    with pytest.raises(ContextRefused, match="--allow-context names 'staging-2', not this context"):
        check_context("staging", cluster_name="flowcheck", kind_clusters=None, allow_context="staging-2")


def test_there_is_no_implicit_current_context() -> None:
    with pytest.raises(ContextRefused, match="never uses the kubeconfig's current context"):
        check_context(None, cluster_name="flowcheck", kind_clusters=["flowcheck"])


def _kind_cli(runner: FakeRunner) -> Kind:
    runner.on("kind", "get", "clusters", stdout=data("kind-get-clusters.stdout"))
    return Kind(runner, "/x/.bin/kind")


def test_kind_is_asked_only_when_the_context_is_not_allowed_explicitly() -> None:
    runner = FakeRunner()
    assert check_context_asking_kind("staging", cluster_name="flowcheck", allow_context="staging",
                                     kind=lambda: _kind_cli(runner)) == ("staging", None)
    assert runner.calls == []
    context, kind = check_context_asking_kind("kind-flowcheck", cluster_name="flowcheck", allow_context=None,
                                              kind=lambda: _kind_cli(runner))
    assert context == "kind-flowcheck" and kind is not None
    assert runner.commands() == [["kind", "get", "clusters"]]
    _context, kind = check_context_asking_kind("kind-flowcheck", cluster_name="flowcheck",
                                               allow_context="kind-flowcheck", kind=lambda: _kind_cli(runner),
                                               need_kind=True)  # a teardown that deletes the cluster
    assert kind is not None


def test_a_missing_kind_refuses_the_context_and_says_how_to_get_kind(tmp_path: Path) -> None:
    def no_kind() -> Kind:
        return Kind(FakeRunner(), find_tool("kind", bin_dirs=[tmp_path], path=str(tmp_path)))

    with pytest.raises(ContextRefused) as err:
        check_context_asking_kind("kind-flowcheck", cluster_name="flowcheck", allow_context=None, kind=no_kind)
    assert "kind was not available to confirm" in str(err.value)
    assert "(kind not found on PATH or in .bin/: run scripts/install-tools" in str(err.value)
    assert check_context_asking_kind("staging", cluster_name="flowcheck", allow_context="staging",
                                     kind=no_kind) == ("staging", None)


DEPLOYED = DeployedTopology("run-1", "kind-flowcheck", (
    DeployedPod("tenant/client", "tenant", "client", "10.244.1.17", "flowcheck-worker", "probe", False),
    DeployedPod("default/my-api", "default", "my-api", "10.244.2.31", "flowcheck-worker2", "probe", False),
    DeployedPod("kube-system/coredns", "kube-system", "coredns-7db6d8ff4d-5xq2k", "10.244.0.3",
                "flowcheck-control-plane", "coredns", True),
))


def test_deployed_state_round_trips_through_json() -> None:
    assert DeployedTopology.from_dict(json.loads(json.dumps(DEPLOYED.to_dict()))) == DEPLOYED
    assert [p.workload for p in DEPLOYED.probe_pods] == ["tenant/client", "default/my-api"]
    with pytest.raises(ClusterError, match=r"cannot read the shared deployment state: format 99, expected 2"):
        DeployedTopology.from_dict({"format": 99})


@pytest.fixture
def cluster() -> FakeCluster:
    c = FakeCluster()
    for pod in DEPLOYED.pods:
        c.add_pod(pod.namespace, pod.pod_name, {}, ip=pod.ip, container=pod.container)
    return c


def test_pod_executor_is_a_probe_executor(cluster: FakeCluster) -> None:
    executor: ProbeExecutor = PodExecutor(DEPLOYED, cluster.clients)
    assert executor.address_of("default/my-api") == "10.244.2.31"
    with pytest.raises(ClusterError, match=r"workload 'default/nope' was not deployed \(deployed: default/my-api, "):
        executor.address_of("default/nope")


def test_run_agent_execs_the_agent_with_the_plan_on_stdin(cluster: FakeCluster) -> None:
    cluster.exec_handler = lambda ns, pod, container, argv, stdin: ExecReply(
        stdout='{"id": "1", "outcome": "timeout", "elapsed": 2.0}\n', status=data("exec-status-success.json"))
    result = PodExecutor(DEPLOYED, cluster.clients).run_agent("tenant/client", '{"probes": [{"id": "1"}]}', timeout_s=9)
    assert result.returncode == 0 and result.stdout.startswith('{"id": "1", "outcome": "timeout"')
    (call,) = cluster.exec_calls
    assert (call["namespace"], call["pod"], call["container"]) == ("tenant", "client", "probe")
    assert call["stdin"] == '{"probes": [{"id": "1"}]}'
    # the agent from /flowcheck (the ConfigMap), its bytecode cached in the pod's /tmp (flowcheck.probe.launch)
    python, no_site, dash_c, code = call["command"]
    assert (python, no_site, dash_c) == ("python3", "-S", "-c")
    assert "sys.path[0]='/flowcheck'" in code and "import agent as agent" in code
    assert "sys.pycache_prefix='/tmp/flowcheck-pycache'" in code


def test_a_malformed_plan_is_a_result_not_an_exception(cluster: FakeCluster) -> None:
    cluster.exec_handler = lambda *a: ExecReply(stderr="agent: malformed plan: expected an object\n",
                                                status=data("exec-status-exit-code.json"))
    result = PodExecutor(DEPLOYED, cluster.clients).run_agent("tenant/client", "[]", timeout_s=9)
    assert (result.returncode, result.stderr) == (2, "agent: malformed plan: expected an object\n")


def test_an_agent_that_cannot_start_is_a_cluster_error(cluster: FakeCluster) -> None:
    cluster.exec_handler = lambda *a: ExecReply(status=data("exec-status-start-failure.json"))
    with pytest.raises(ClusterError, match=r"could not start the probe agent in tenant/client: .*Internal error"):
        PodExecutor(DEPLOYED, cluster.clients).run_agent("tenant/client", "{}", timeout_s=9)


def test_existing_pods_cannot_run_the_agent(cluster: FakeCluster) -> None:
    with pytest.raises(ClusterError, match=r"kube-system/coredns is an existing workload \(pod "
                                           r"kube-system/coredns-7db6d8ff4d-5xq2k\): .*cannot run its probe agent"):
        PodExecutor(DEPLOYED, cluster.clients).run_agent("kube-system/coredns", "{}", timeout_s=9)
    assert cluster.exec_calls == []


def test_concurrent_probing_uses_one_api_client_per_thread(cluster: FakeCluster) -> None:
    barrier = threading.Barrier(4)

    def agent(ns: str, pod: str, container: str | None, argv: list[str], stdin: str | None) -> ExecReply:
        return ExecReply(stdout=f"{pod}:{threading.get_ident()}\n")

    cluster.exec_handler = agent
    executor = PodExecutor(DEPLOYED, cluster.clients)

    def probe(i: int) -> str:
        barrier.wait(timeout=10)  # four threads at once
        source = ("tenant/client", "default/my-api")[i % 2]
        return executor.run_agent(source, "{}", timeout_s=9).stdout

    with ThreadPoolExecutor(max_workers=4) as pool:
        outputs = list(pool.map(probe, range(8)))
    assert len(outputs) == 8
    assert len(cluster.clients_made) == len(set(cluster.clients_made)) == 4  # one bundle per worker thread
    # every exec went through the ApiClient bundle built by (and for) the thread that ran it
    assert all(call["client_owner_thread"] == call["thread"] for call in cluster.exec_calls)
    assert {call["thread"] for call in cluster.exec_calls} == set(cluster.clients_made)
