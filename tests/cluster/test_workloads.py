"""Probe pods: the pod spec, the probe files ConfigMap, readiness (watch + deadline), existing pods."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from kubernetes import client

from flowcheck.cluster.kube import to_plain
from flowcheck.cluster.workloads import (
    AGENT_PATH,
    NamespaceInput,
    PodSpecInput,
    TopologyInput,
    build_config_map,
    build_pod,
    find_existing_pod,
    find_existing_pods,
    load_probe_files,
    replica_name,
    schedulable_nodes,
    server_command,
    wait_for_pods_ready,
)
from flowcheck.errors import ClusterError
from tests.cluster.fakes import FakeClock, FakeCluster, image_pull_status, kubelet_making_ready, unschedulable_status
from tests.ports import free_ports

RUN = "20260827-142958-9f3a1c"
MY_API = PodSpecInput("default", "my-api", {"app": "my-api"}, (("http", 8080, "TCP"), ("metrics", 9090, "TCP")))
DNS_LIKE = PodSpecInput("tenant", "resolver", {"app": "resolver"},
                        (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("alt", 5353, "UDP")), service_account="resolver")


def test_server_command_serves_http_on_tcp_ports_and_udp() -> None:
    assert server_command(MY_API) == ["python3", "/flowcheck/server.py", "--name", "default/my-api",
                                      "--http", "8080,9090"]
    assert server_command(DNS_LIKE) == ["python3", "/flowcheck/server.py", "--name", "tenant/resolver",
                                        "--http", "53", "--udp", "53,5353"]


def test_probe_pod_is_locked_down_and_carries_the_workload_labels() -> None:
    pod = to_plain(build_pod(DNS_LIKE, run_id=RUN, image="python:3.12-alpine"))
    meta, spec = pod["metadata"], pod["spec"]
    assert (meta["name"], meta["namespace"]) == ("resolver", "tenant")
    assert meta["labels"] == {"app": "resolver", "flowcheck.io/run": RUN}
    assert spec["serviceAccountName"] == "resolver" and spec["automountServiceAccountToken"] is False
    psc = spec["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert psc["sysctls"] == [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    (container,) = spec["containers"]
    assert container["image"] == "python:3.12-alpine"
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsNonRoot"] is True
    assert container["ports"] == [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                  {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                  {"name": "alt", "containerPort": 5353, "protocol": "UDP"}]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert {"name": "flowcheck", "mountPath": "/flowcheck", "readOnly": True} in container["volumeMounts"]
    volume = next(v for v in spec["volumes"] if v["name"] == "flowcheck")
    assert volume["configMap"]["name"] == f"flowcheck-probe-{RUN}"
    readiness = container["readinessProbe"]["exec"]["command"]
    assert readiness[:2] == ["python3", "-c"] and readiness[3:] == ["53"]
    (spread,) = spec["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"] == {"matchLabels": {"flowcheck.io/run": RUN}}


def test_a_pod_pinned_to_a_node_has_a_required_hostname_affinity_and_answers_as_itself() -> None:
    """Issue 17.3: same-node and cross-node by construction, as cilium-cli places its echo pods."""
    pod = to_plain(build_pod(MY_API, run_id=RUN, pod_name="my-api-n1", node="flowcheck-worker2"))
    spec = pod["spec"]
    assert pod["metadata"]["name"] == "my-api-n1"
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                                            "values": ["flowcheck-worker2"]}]}]
    assert "topologySpreadConstraints" not in spec  # placed, not spread
    assert spec["containers"][0]["command"][2:4] == ["--name", "default/my-api-n1"]
    assert pod["metadata"]["labels"] == {"app": "my-api", "flowcheck.io/run": RUN}  # no label that splits identity


def test_replica_names_stay_dns_labels() -> None:
    assert replica_name("web", 0) == "web-n0"
    assert (replica_name("web", 1, 1), replica_name("web", None), replica_name("web", None, 1)) == (
        "web-n1-2", "web", "web-2")
    long = replica_name("a" * 70, 1)
    assert len(long) == 63 and long.endswith("-n1")


def test_only_nodes_a_probe_pod_can_run_on_are_used_for_placement() -> None:
    cluster = FakeCluster()
    cluster.add_kind_nodes(workers=2)  # kind keeps the control plane's NoSchedule taint on multi-node clusters
    cluster.add_node("cordoned", unschedulable=True)
    cluster.add_node("gpu", taints=[("nvidia.com/gpu", "NoSchedule")])
    cluster.add_node("draining", taints=[("node.kubernetes.io/unschedulable", "NoExecute")])
    cluster.add_node("broken", ready=False)
    cluster.add_node("soft", taints=[("dedicated", "PreferNoSchedule")])
    assert [n.name for n in schedulable_nodes(cluster.clients())] == ["flowcheck-worker", "flowcheck-worker2", "soft"]


def test_the_readiness_script_connects_to_every_listed_port() -> None:
    import socket
    import subprocess

    pod = build_pod(MY_API, run_id=RUN)
    script = pod.spec.containers[0].readiness_probe.var_exec.command[2]
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    ok = subprocess.run([sys.executable, "-c", script, str(port)], capture_output=True, timeout=10, check=False)
    listener.close()
    refused = subprocess.run([sys.executable, "-c", script, str(port)], capture_output=True, timeout=10, check=False)
    assert ok.returncode == 0 and refused.returncode != 0


def test_sctp_and_existing_workloads_are_not_deployed() -> None:
    with pytest.raises(ClusterError, match="serves TCP and UDP, not SCTP"):
        build_pod(PodSpecInput("a", "b", {}, (("s", 9999, "SCTP"),)), run_id=RUN)
    with pytest.raises(ClusterError, match="is `existing`"):
        build_pod(PodSpecInput("kube-system", "coredns", {"k8s-app": "kube-dns"}, existing=True), run_id=RUN)
    with pytest.raises(ClusterError, match="protocol 'ICMP'"):
        PodSpecInput("a", "b", {}, (("p", 1, "ICMP"),))


def test_topology_input_lists_every_namespace() -> None:
    topo = TopologyInput((NamespaceInput("monitoring", {"team": "o11y"}),), (MY_API, DNS_LIKE))
    assert topo.namespace_labels() == {"monitoring": {"team": "o11y"}, "default": {}, "tenant": {}}


def test_probe_files_come_from_the_installed_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "fakeprobe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "agent.py").write_text("print('agent')\n")
    (package / "server.py").write_text("print('server')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    files = load_probe_files("fakeprobe")
    assert files == {"agent.py": "print('agent')\n", "server.py": "print('server')\n"}
    cm = build_config_map("default", RUN, files)
    assert cm.data == files and cm.metadata.labels == {"flowcheck.io/run": RUN}
    (package / "server.py").unlink()
    with pytest.raises(ClusterError, match=r"the probe pods need fakeprobe/server\.py"):
        load_probe_files("fakeprobe")


def test_the_installed_probe_package_ships_the_agent_and_server_verbatim() -> None:
    """The ConfigMap carries flowcheck/probe/agent.py and server.py as installed: both must be there."""
    from importlib import resources

    root = resources.files("flowcheck.probe")
    files = load_probe_files()
    for name in ("agent.py", "server.py"):
        assert root.joinpath(name).is_file(), f"flowcheck/probe/{name} is missing from the installed package"
        assert files[name] == root.joinpath(name).read_text(encoding="utf-8")
    assert AGENT_PATH == "/flowcheck/agent.py"


# ---------------------------------------------------------------------------------------------
# Readiness


def _deploy(cluster: FakeCluster, *specs: PodSpecInput) -> None:
    for spec in specs:
        if spec.namespace not in cluster.namespaces:
            cluster.add_namespace(spec.namespace)
        cluster.clients().core.create_namespaced_pod(spec.namespace, build_pod(spec, run_id=RUN))


def test_pods_become_ready_through_the_watch() -> None:
    clock = FakeClock()
    cluster = FakeCluster(clock=clock, kubelet=kubelet_making_ready())
    _deploy(cluster, MY_API, DNS_LIKE)
    ready = wait_for_pods_ready(cluster.clients(), [("default", "my-api"), ("tenant", "resolver")], RUN,
                                timeout_s=60, clock=clock, sleep=clock.sleep)
    assert set(ready) == {("default", "my-api"), ("tenant", "resolver")}
    assert ready[("default", "my-api")].status.pod_ip.startswith("10.244.")
    watches = [c for c in cluster.calls if c[0] == "watch"]
    assert watches and all(c[2]["label_selector"] == f"flowcheck.io/run={RUN}" for c in watches)
    assert all(c[2]["resource_version"] for c in watches)  # resumes from the list's resourceVersion


def test_readiness_timeout_names_each_pod_and_why() -> None:
    clock = FakeClock()
    cluster = FakeCluster(clock=clock)
    _deploy(cluster, MY_API, DNS_LIKE)
    cluster.pods[("default", "my-api")].status = unschedulable_status()
    cluster.pods[("tenant", "resolver")].status = image_pull_status()
    cluster.events[("default", "my-api")] = [client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="my-api.1"), involved_object=client.V1ObjectReference(name="my-api"),
        type="Warning", reason="FailedScheduling", message="0/3 nodes are available: 2 Insufficient memory.")]
    with pytest.raises(ClusterError) as err:
        wait_for_pods_ready(cluster.clients(), [("default", "my-api"), ("tenant", "resolver")], RUN,
                            timeout_s=30, clock=clock, sleep=clock.sleep)
    message = str(err.value)
    assert message.startswith("2 probe pod(s) not ready after 30 s:")
    assert ("default/my-api: Pending; PodScheduled=False (Unschedulable: 0/3 nodes are available: 1 node(s) had "
            "untolerated taint") in message
    assert "(last event: Warning FailedScheduling: 0/3 nodes are available: 2 Insufficient memory.)" in message
    assert ('tenant/resolver: Pending; Ready=False (ContainersNotReady: containers with unready status: [probe]); '
            'container probe waiting (ImagePullBackOff: Back-off pulling image "python:3-alpine")') in message
    assert clock.now - 1000.0 >= 30  # it waited until the deadline, through watches, without real sleeping


def test_a_pod_that_cannot_recover_fails_at_once() -> None:
    clock = FakeClock()
    cluster = FakeCluster(clock=clock, kubelet=lambda pod: image_pull_status("InvalidImageName"))
    _deploy(cluster, MY_API)
    with pytest.raises(ClusterError, match="probe pod default/my-api cannot start: container probe: InvalidImageName"):
        wait_for_pods_ready(cluster.clients(), [("default", "my-api")], RUN, timeout_s=300, clock=clock)
    assert clock.now - 1000.0 < 300


def test_nothing_to_wait_for() -> None:
    cluster = FakeCluster()
    assert wait_for_pods_ready(cluster.clients(), [], RUN, timeout_s=1) == {}
    assert cluster.calls == []


# ---------------------------------------------------------------------------------------------
# Existing workloads

COREDNS = PodSpecInput("kube-system", "coredns", {"k8s-app": "kube-dns"},
                       (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")), service_account="coredns", existing=True)


def test_existing_workload_maps_to_the_first_running_ready_pod_by_name() -> None:
    cluster = FakeCluster()
    cluster.add_pod("kube-system", "coredns-7db6d8ff4d-zz9", {"k8s-app": "kube-dns"}, ip="10.244.0.4", node="cp")
    cluster.add_pod("kube-system", "coredns-7db6d8ff4d-5xq2k", {"k8s-app": "kube-dns"}, ip="10.244.0.3", node="cp")
    cluster.add_pod("kube-system", "coredns-7db6d8ff4d-aaa", {"k8s-app": "kube-dns"}, ready=False, phase="Pending",
                    ip=None)
    pod = find_existing_pod(cluster.clients(), COREDNS)
    assert (pod.pod_name, pod.ip, pod.node, pod.container, pod.existing) == (
        "coredns-7db6d8ff4d-5xq2k", "10.244.0.3", "cp", "coredns", True)
    assert cluster.calls[0][2]["label_selector"] == "k8s-app=kube-dns"


def test_an_existing_workload_is_matched_once_per_node() -> None:
    cluster = FakeCluster()
    for name, node in (("coredns-b", "worker"), ("coredns-a", "worker"), ("coredns-c", "worker2")):
        cluster.add_pod("kube-system", name, {"k8s-app": "kube-dns"}, ip=f"10.244.0.{ord(name[-1])}", node=node)
    found = find_existing_pods(cluster.clients(), COREDNS)
    assert [(p.pod_name, p.node) for p in found] == [("coredns-a", "worker"), ("coredns-c", "worker2")]


def test_existing_workload_without_matching_pods_is_a_clear_error() -> None:
    with pytest.raises(ClusterError, match="existing workload kube-system/coredns: no pod in namespace kube-system "
                                           "has labels k8s-app=kube-dns"):
        find_existing_pod(FakeCluster().clients(), COREDNS)


def test_existing_workload_whose_pods_are_not_running() -> None:
    cluster = FakeCluster()
    cluster.add_pod("kube-system", "coredns-1", {"k8s-app": "kube-dns"}, ready=False, phase="Pending", ip=None)
    with pytest.raises(ClusterError, match=r"1 pod\(s\) match k8s-app=kube-dns but none is Running and Ready "
                                           r"\(coredns-1: Pending\)"):
        find_existing_pod(cluster.clients(), COREDNS)


def test_the_pod_command_starts_the_real_probe_server_and_passes_readiness() -> None:
    """The container's command and readiness probe, run locally against flowcheck/probe/server.py."""
    import json
    import socket
    import subprocess
    import time
    import urllib.request
    from importlib import resources

    server = resources.files("flowcheck.probe").joinpath("server.py")
    # Packaged with flowcheck (the ConfigMap ships it into every probe pod): its absence is a failure.
    assert server.is_file(), "flowcheck/probe/server.py is missing from the installed package"
    tcp1, tcp2, udp = free_ports(socket.SOCK_STREAM, socket.SOCK_STREAM, socket.SOCK_DGRAM)
    spec = PodSpecInput("default", "my-api", {"app": "my-api"},
                        (("http", tcp1, "TCP"), ("metrics", tcp2, "TCP"), ("dns", udp, "UDP")))
    pod = build_pod(spec, run_id=RUN)
    command = [sys.executable if a == "python3" else str(server) if a == "/flowcheck/server.py" else a
               for a in pod.spec.containers[0].command]
    readiness = [sys.executable, *pod.spec.containers[0].readiness_probe.var_exec.command[1:]]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(readiness, capture_output=True, timeout=10, check=False).returncode != 0:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the readiness probe never passed"
            time.sleep(0.05)
        with urllib.request.urlopen(f"http://127.0.0.1:{tcp2}/metrics", timeout=5) as answer:
            assert json.loads(answer.read())["server"] == "default/my-api"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
