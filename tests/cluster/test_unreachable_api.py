"""An API server that does not answer: every place that talks to it reports a ``ClusterError`` that
names what was being done and the kube context, never a urllib3 traceback.

The fakes raise what the real client raises (``fakes.unreachable``/``fakes.exec_unreachable``;
``test_client_contract.py`` gets the same from the real client against a closed port).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from urllib3.exceptions import ProtocolError

from flowcheck.cluster import kube
from flowcheck.cluster.cleanup import cleanup
from flowcheck.cluster.hubble import collect_flows
from flowcheck.cluster.kube import apply_policy, prepare_policy, remove_policy
from flowcheck.cluster.podexec import ExecStartError, PodTarget, exec_in_pod
from flowcheck.cluster.realization import RevisionReader, agent_pods, wait_for_revisions
from flowcheck.cluster.workloads import PodSpecInput, build_pod, create_probe_pod, wait_for_pods_ready
from flowcheck.errors import ClusterError
from flowcheck.manifests.documents import read_documents
from tests.cluster.fakes import (
    ExecReply,
    FakeClock,
    FakeCluster,
    exec_unreachable,
    kubelet_making_ready,
    unreachable,
)

REPO = Path(__file__).resolve().parents[2]
RUN = "20260827-142958-9f3a1c"
UNREACHABLE = ("cannot reach the Kubernetes API server of context kind-flowcheck (https://127.0.0.1:41231): "
               "Failed to establish a new connection: [Errno 111] Connection refused")
ESCAPED = re.escape(UNREACHABLE)


def test_a_call_names_the_step_the_context_and_the_server() -> None:
    cluster = FakeCluster()
    cluster.fail("read_namespace", unreachable("/api/v1/namespaces/monitoring"))
    with pytest.raises(ClusterError) as err:
        kube.ensure_namespace(cluster.clients(), "monitoring", {}, RUN)
    assert str(err.value) == f"reading namespace monitoring: {UNREACHABLE}"
    assert isinstance(err.value.__cause__, Exception) and type(err.value.__cause__).__name__ == "MaxRetryError"


def test_applying_and_removing_a_policy() -> None:
    cluster = FakeCluster()
    cluster.add_namespace("default")
    doc = next(d for d in read_documents([REPO / "manifests" / "network-policies"]) if d.name == "allow-get-only")
    cluster.fail("create_namespaced_custom_object", unreachable())
    with pytest.raises(ClusterError, match=r"^applying CiliumNetworkPolicy default/allow-get-only \(.*allow-get-only"
                                           r"\.yaml \(document 0\)\): cannot reach the Kubernetes API server of "
                                           r"context kind-flowcheck"):
        apply_policy(cluster.clients(), prepare_policy(doc, RUN))
    applied = apply_policy(cluster.clients(), prepare_policy(doc, RUN))
    cluster.fail("delete_namespaced_custom_object", unreachable())
    with pytest.raises(ClusterError, match=rf"^deleting CiliumNetworkPolicy default/allow-get-only: {ESCAPED}"):
        remove_policy(cluster.clients(), applied)


def test_exec_is_not_a_start_failure_and_names_the_context() -> None:
    cluster = FakeCluster()
    cluster.add_cilium_agents(["cilium-a"])
    cluster.exec_handler = lambda *a: ExecReply(stdout="'5'")
    cluster.fail("exec", exec_unreachable())
    with pytest.raises(ClusterError) as err:
        exec_in_pod(cluster.clients(), PodTarget("kube-system", "cilium-a", "cilium-agent"), ["cilium-dbg", "version"],
                    timeout_s=5)
    assert not isinstance(err.value, ExecStartError)  # another binary would not fare better
    assert str(err.value) == ("cannot exec `cilium-dbg version` in pod kube-system/cilium-a (container cilium-agent): "
                              "cannot reach the Kubernetes API server of context kind-flowcheck "
                              "(https://127.0.0.1:41231): [Errno 111] Connection refused")


def test_ctrl_c_while_exec_connects_stays_a_keyboard_interrupt() -> None:
    cluster = FakeCluster()
    cluster.add_cilium_agents(["cilium-a"])
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        try:
            raise kube._api_exception_type()(status=0, reason="")  # what ws_client.websocket_call does with it
        except Exception as wrapped:
            cluster.fail("exec", wrapped)
    with pytest.raises(KeyboardInterrupt):
        exec_in_pod(cluster.clients(), PodTarget("kube-system", "cilium-a"), ["true"], timeout_s=5)


def test_the_revision_wait_retries_an_unreachable_agent_and_does_not_try_the_old_binary() -> None:
    cluster = FakeCluster()
    cluster.add_cilium_agents(["cilium-a"])
    cluster.exec_handler = lambda *a: ExecReply(stdout="'12'")
    cluster.fail("exec", exec_unreachable())
    clock = FakeClock()
    after = wait_for_revisions(RevisionReader(cluster.clients), {"cilium-a": 12}, timeout_s=10, clock=clock,
                               sleep=clock.sleep)
    assert after == {"cilium-a": 12}
    assert [c["command"][0] for c in cluster.exec_calls] == ["cilium-dbg"]  # the failed attempt never started one
    cluster.fail("list_namespaced_pod", unreachable())
    with pytest.raises(ClusterError, match=rf"^listing the cilium agent pods: {ESCAPED}"):
        agent_pods(cluster.clients())


def test_collecting_hubble_flows() -> None:
    cluster = FakeCluster()
    cluster.add_cilium_agents(["cilium-a"])
    cluster.exec_handler = lambda *a: ExecReply()
    cluster.fail("exec", exec_unreachable())
    with pytest.raises(ClusterError, match=r"^cannot collect Hubble flows from cilium-a: cannot exec `hubble observe "
                                           r".*: cannot reach the Kubernetes API server of context kind-flowcheck"):
        collect_flows(cluster.clients, ["cilium-a"], since=datetime(2026, 8, 27, tzinfo=UTC), until=None,
                      pods=["a/b"])


def test_a_broken_watch_is_followed_by_a_new_list() -> None:
    clock = FakeClock()
    cluster = FakeCluster(clock=clock, kubelet=kubelet_making_ready())
    cluster.add_namespace("default")
    create_probe_pod(cluster.clients(), build_pod(PodSpecInput("default", "my-api", {"app": "my-api"},
                                                               (("http", 8080, "TCP"),)), run_id=RUN), "default/my-api")
    cluster.fail("watch", ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer")))
    ready = wait_for_pods_ready(cluster.clients(), [("default", "my-api")], RUN, timeout_s=60, clock=clock,
                                sleep=clock.sleep)
    assert list(ready) == [("default", "my-api")]
    assert cluster.names("watch") == ["watch", "watch"]  # the broken one, then one after listing again
    assert len(cluster.names("list_namespaced_pod")) == 2


def test_a_watch_and_list_that_cannot_connect_fail_the_wait() -> None:
    clock = FakeClock()
    cluster = FakeCluster(clock=clock)
    cluster.add_namespace("default")
    cluster.add_pod("default", "my-api", {kube.RUN_LABEL: RUN}, ready=False, phase="Pending", ip=None)
    cluster.fail("watch", unreachable())
    cluster.fail("list_namespaced_pod", unreachable(), after=1)  # the list before the watch still works
    with pytest.raises(ClusterError, match=rf"^listing pods in default: {ESCAPED}"):
        wait_for_pods_ready(cluster.clients(), [("default", "my-api")], RUN, timeout_s=60, clock=clock,
                            sleep=clock.sleep)


def test_creating_a_probe_pod() -> None:
    cluster = FakeCluster()
    cluster.add_namespace("default")
    cluster.fail("create_namespaced_pod", unreachable())
    pod = build_pod(PodSpecInput("default", "my-api", {"app": "my-api"}), run_id=RUN)
    with pytest.raises(ClusterError, match=rf"^creating the probe pod for default/my-api: {ESCAPED}"):
        create_probe_pod(cluster.clients(), pod, "default/my-api")


def test_cleanup_stops_at_once_with_one_error() -> None:
    cluster = FakeCluster()
    cluster.fail("list_pod_for_all_namespaces", unreachable())
    with pytest.raises(ClusterError, match=rf"^listing pods: {ESCAPED}$"):
        cleanup(cluster.clients(), run_id=RUN)
    assert cluster.names() == ["list_pod_for_all_namespaces"]


def test_cleanup_of_cilium_policies_stops_too() -> None:
    cluster = FakeCluster()
    cluster.fail("list_cluster_custom_object", unreachable())
    with pytest.raises(ClusterError, match=rf"^listing CiliumNetworkPolicys: {ESCAPED}$"):
        cleanup(cluster.clients(), run_id=RUN)
