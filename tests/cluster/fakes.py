"""Fakes at the boundaries of the cluster layer: processes, the Kubernetes API, exec streams, time.

* ``FakeRunner`` answers commands from scripted, recorded-shape outputs and records every argv.
* ``FakeCluster`` is an in-memory API server behind fake ``CoreV1Api``/``AppsV1Api``/
  ``NetworkingV1Api``/``CustomObjectsApi`` classes with the official client's method names and
  argument order. It stores and returns the client's real model objects (``V1Pod``, ``V1Namespace``
  ...; plain dicts for custom objects, as the real client does), raises the real ``ApiException``
  with a ``metav1.Status`` body, and records every call in order.
* ``FakeWatch`` plays a "kubelet" that makes pods Ready (or not) and advances the fake clock.
* ``FakeExecStream`` behaves like ``kubernetes.stream.ws_client.WSClient`` for one exec.
* DaemonSets and Deployments with a ``status`` (``add_daemonset``/``add_deployment``) and container
  logs (``pod_logs``, ``previous_pod_logs``) serve the pre-upgrade check's preflight wait.
* ``unreachable()`` and ``exec_unreachable()`` are what the real client raises when the API server
  does not answer (urllib3's ``MaxRetryError``; exec's ``ApiException(status=0)`` wrapping the
  socket error) -- the shapes ``tests/cluster/test_client_contract.py`` gets from the real client.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError, NewConnectionError

from flowcheck.cluster.kube import KubeClients
from flowcheck.cluster.process import DEFAULT_INTERRUPT_GRACE_S
from flowcheck.probe.executor import CompletedExec

DATA = Path(__file__).resolve().parent.parent / "data" / "cluster"


def data(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Time


class FakeClock:
    """A monotonic clock that only moves when told to (``sleep`` advances it and is recorded)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


# ---------------------------------------------------------------------------------------------
# Processes


Handler = Callable[[list[str]], CompletedExec]


class FakeRunner:
    """A ``ProcessRunner`` answering by the tool's base name and subcommand words."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.graces: list[float] = []  # each call's interrupt_grace_s, in call order
        self._rules: list[tuple[tuple[str, ...], Handler]] = []

    def on(self, *prefix: str, result: CompletedExec | Handler | None = None, stdout: str = "", stderr: str = "",
           returncode: int = 0) -> None:
        """Answer commands whose ``[basename(argv0), *argv[1:]]`` starts with ``prefix`` (latest rule wins)."""
        if result is None:
            result = CompletedExec(returncode, stdout, stderr)
        if callable(result):
            handler: Handler = result
        else:
            fixed = result

            def handler(_argv: list[str]) -> CompletedExec:
                return fixed

        self._rules.insert(0, (prefix, handler))

    def run(self, argv: Sequence[str], *, stdin: str | None = None, timeout_s: float | None = None,
            env: Any = None, interrupt_grace_s: float = DEFAULT_INTERRUPT_GRACE_S) -> CompletedExec:
        args = [str(a) for a in argv]
        self.calls.append(args)
        self.graces.append(interrupt_grace_s)
        key = [Path(args[0]).name, *args[1:]]
        for prefix, handler in self._rules:
            if tuple(key[:len(prefix)]) == prefix:
                return handler(args)
        raise AssertionError(f"unexpected command {key}")

    def commands(self) -> list[list[str]]:
        """Calls with argv[0] shortened to the tool name."""
        return [[Path(c[0]).name, *c[1:]] for c in self.calls]


# ---------------------------------------------------------------------------------------------
# Kubernetes API


def api_error(status: int, reason: str, message: str, **details: Any) -> ApiException:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": status}
    if details:
        body["details"] = details
    return ApiException(status=status, reason=reason, body=json.dumps(body))


API_HOST, API_PORT = "127.0.0.1", 41231  # where kind publishes the API server of the fake cluster
REFUSED = "Failed to establish a new connection: [Errno 111] Connection refused"


def unreachable(path: str = "/api/v1/namespaces") -> MaxRetryError:
    """What the real client raises for a REST call or a watch when nothing answers at the API server's address."""
    return MaxRetryError(HTTPSConnectionPool(API_HOST, API_PORT), path,
                         NewConnectionError(HTTPSConnection(API_HOST, API_PORT), REFUSED))


def exec_unreachable() -> ApiException:
    """What ``kubernetes.stream.stream`` raises when the exec websocket cannot connect."""
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError as refused:
        try:
            raise ApiException(status=0, reason=str(refused))  # ws_client.websocket_call's wrapping
        except ApiException as wrapped:
            return wrapped


def not_found(kind: str, name: str) -> ApiException:
    return api_error(404, "NotFound", f'{kind} "{name}" not found', name=name, kind=kind)


def already_exists(kind: str, name: str) -> ApiException:
    return api_error(409, "AlreadyExists", f'{kind} "{name}" already exists', name=name, kind=kind)


def matches(labels: dict[str, str] | None, selector: str | None) -> bool:
    if not selector:
        return True
    labels = labels or {}
    for term in selector.split(","):
        if "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key) != value:
                return False
        elif term not in labels:
            return False
    return True


KIND_NODE_IPS = {"flowcheck-worker": "172.18.0.2", "flowcheck-worker2": "172.18.0.3",
                 "flowcheck-control-plane": "172.18.0.4"}
"""The fake kind nodes' addresses on the ``kind`` Docker network (the agents, host-network pods, share them)."""
OTHER_NODE_IP = "172.18.0.9"


def node_ip(node: str) -> str:
    """A fake node's InternalIP (what a pod on it reports as ``status.hostIP``)."""
    return KIND_NODE_IPS.get(node, OTHER_NODE_IP)


def ready_pod_status(ip: str, node: str) -> Any:
    """A Running, Ready pod's status; ``host_ip`` (``status.hostIP``) is its node's address."""
    return client.V1PodStatus(
        phase="Running", pod_ip=ip, host_ip=node_ip(node),
        conditions=[client.V1PodCondition(type="PodScheduled", status="True"),
                    client.V1PodCondition(type="Initialized", status="True"),
                    client.V1PodCondition(type="ContainersReady", status="True"),
                    client.V1PodCondition(type="Ready", status="True")],
        container_statuses=[client.V1ContainerStatus(
            name="probe", image="python:3-alpine", image_id="", ready=True, restart_count=0,
            state=client.V1ContainerState(running=client.V1ContainerStateRunning()))])


def unschedulable_status() -> Any:
    return client.V1PodStatus(
        phase="Pending",
        conditions=[client.V1PodCondition(
            type="PodScheduled", status="False", reason="Unschedulable",
            message="0/3 nodes are available: 1 node(s) had untolerated taint "
                    "{node-role.kubernetes.io/control-plane: }, 2 Insufficient memory.")])


def image_pull_status(reason: str = "ImagePullBackOff") -> Any:
    return client.V1PodStatus(
        phase="Pending",
        conditions=[client.V1PodCondition(type="PodScheduled", status="True"),
                    client.V1PodCondition(type="Ready", status="False", reason="ContainersNotReady",
                                          message="containers with unready status: [probe]")],
        container_statuses=[client.V1ContainerStatus(
            name="probe", image="python:3-alpine", image_id="", ready=False, restart_count=0,
            state=client.V1ContainerState(waiting=client.V1ContainerStateWaiting(
                reason=reason, message='Back-off pulling image "python:3-alpine"')))])


@dataclass
class ExecReply:
    stdout: str = ""
    stderr: str = ""
    status: str = '{"metadata":{},"status":"Success"}'
    never_finishes: bool = False


ExecHandler = Callable[[str, str, str | None, list[str], str | None], ExecReply]


@dataclass
class FakeCluster:
    """In-memory cluster state shared by the fake API classes."""

    namespaces: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, Any] = field(default_factory=dict)
    pods: dict[tuple[str, str], Any] = field(default_factory=dict)
    config_maps: dict[tuple[str, str], Any] = field(default_factory=dict)
    service_accounts: dict[tuple[str, str], Any] = field(default_factory=dict)
    network_policies: dict[tuple[str, str], Any] = field(default_factory=dict)
    custom: dict[tuple[str, str | None, str], dict[str, Any]] = field(default_factory=dict)
    events: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    daemonsets: set[tuple[str, str]] = field(default_factory=set)
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    failures: dict[str, list[BaseException | None]] = field(default_factory=dict)
    exec_handler: ExecHandler | None = None
    exec_calls: list[dict[str, Any]] = field(default_factory=list)
    exec_subprotocol: str = "v5.channel.k8s.io"
    kubelet: Callable[[Any], Any] | None = None  # pod -> new status when a watch runs (None: no change)
    watch_seconds: float = 2.0  # fake time a watch event costs
    clock: FakeClock | None = None
    clients_made: list[int] = field(default_factory=list)  # thread ids of api_factory calls
    daemonset_objects: dict[tuple[str, str], Any] = field(default_factory=dict)  # full V1DaemonSet (with status)
    deployments: dict[tuple[str, str], Any] = field(default_factory=dict)
    pod_logs: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (namespace, pod, container) -> log
    previous_pod_logs: dict[tuple[str, str, str], str] = field(default_factory=dict)  # the previous container's
    context: str = "kind-flowcheck"  # what the real client factory records for error messages
    _rv: int = 100
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- helpers for tests -------------------------------------------------------------------

    def fail(self, method: str, exc: BaseException, *, after: int = 0) -> None:
        """Make the next call of ``method`` (after ``after`` more that succeed) raise ``exc``."""
        self.failures.setdefault(method, []).extend([*([None] * after), exc])

    def names(self, prefix: str = "") -> list[str]:
        """The recorded calls' method names (optionally only those starting with ``prefix``)."""
        return [c[0] for c in self.calls if c[0].startswith(prefix)]

    def add_namespace(self, name: str, labels: dict[str, str] | None = None,
                      annotations: dict[str, str] | None = None, phase: str = "Active") -> None:
        self.namespaces[name] = client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"kubernetes.io/metadata.name": name, **(labels or {})},
                                         annotations=annotations, resource_version=self.next_rv()),
            status=client.V1NamespaceStatus(phase=phase))

    def add_pod(self, namespace: str, name: str, labels: dict[str, str], *, ip: str | None = "10.244.1.3",
                node: str = "flowcheck-worker", ready: bool = True, phase: str = "Running",
                container: str = "coredns") -> None:
        status = ready_pod_status(ip or "", node) if ready else client.V1PodStatus(phase=phase, pod_ip=ip)
        if ready:
            status.phase = phase
        self.pods[(namespace, name)] = client.V1Pod(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace, labels=labels,
                                         resource_version=self.next_rv()),
            spec=client.V1PodSpec(containers=[client.V1Container(name=container, image="registry.k8s.io/coredns")],
                                  node_name=node),
            status=status)

    def add_node(self, name: str, *, taints: Sequence[tuple[str, str]] = (), ready: bool = True,
                 unschedulable: bool = False, internal_ip: str | None = None) -> None:
        """A ``V1Node`` as kind registers it (``kubernetes.io/hostname`` = the name; ``status.addresses``
        an InternalIP and a Hostname, ``V1NodeAddress``); ``taints`` are (key, effect) pairs;
        ``internal_ip`` "" registers none."""
        address = node_ip(name) if internal_ip is None else internal_ip
        addresses = ([client.V1NodeAddress(address=address, type="InternalIP")] if address else []) + [
            client.V1NodeAddress(address=name, type="Hostname")]
        self.nodes[name] = client.V1Node(
            metadata=client.V1ObjectMeta(name=name, labels={"kubernetes.io/hostname": name,
                                                            "kubernetes.io/os": "linux"},
                                         resource_version=self.next_rv()),
            spec=client.V1NodeSpec(unschedulable=unschedulable or None,
                                   taints=[client.V1Taint(key=k, effect=e) for k, e in taints] or None),
            status=client.V1NodeStatus(addresses=addresses,
                                       conditions=[client.V1NodeCondition(type="Ready",
                                                                          status="True" if ready else "False")]))

    def add_kind_nodes(self, workers: int = 2, name: str = "flowcheck") -> None:
        """A multi-node kind cluster: the control plane keeps its NoSchedule taint, the workers have none."""
        self.add_node(f"{name}-control-plane", taints=[("node-role.kubernetes.io/control-plane", "NoSchedule")])
        for i in range(workers):
            self.add_node(f"{name}-worker{i + 1 if i else ''}")

    def add_cilium_agents(self, names: Sequence[str] = ("cilium-4xk2p", "cilium-9hq7w"),
                          nodes: Sequence[str] | None = None) -> None:
        """Agent pods, by default on ``flowcheck-worker``, ``flowcheck-worker2``, ... (or on ``nodes``)."""
        self.daemonsets.add(("kube-system", "cilium"))
        for i, name in enumerate(names):
            node = nodes[i] if nodes is not None else f"flowcheck-worker{i + 1 if i else ''}"
            self.add_pod("kube-system", name, {"k8s-app": "cilium"}, ip=f"172.18.0.{i + 2}", node=node,
                         container="cilium-agent")

    def add_daemonset(self, namespace: str, name: str, *, desired: int, ready: int, available: int | None = None,
                      updated: int | None = None, match_labels: dict[str, str] | None = None) -> None:
        """A DaemonSet with the status fields the DaemonSet controller writes (``apps/v1``)."""
        labels = match_labels or {"k8s-app": name}
        available = ready if available is None else available
        self.daemonset_objects[(namespace, name)] = client.V1DaemonSet(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace, labels=dict(labels), generation=1,
                                         resource_version=self.next_rv()),
            spec=client.V1DaemonSetSpec(selector=client.V1LabelSelector(match_labels=dict(labels)),
                                        template=client.V1PodTemplateSpec()),
            status=client.V1DaemonSetStatus(
                current_number_scheduled=desired, desired_number_scheduled=desired, number_misscheduled=0,
                number_ready=ready, number_available=available or None,  # omitempty: absent when 0
                number_unavailable=(desired - available) or None,
                updated_number_scheduled=desired if updated is None else updated, observed_generation=1))

    def add_deployment(self, namespace: str, name: str, *, replicas: int, ready: int,
                       match_labels: dict[str, str] | None = None) -> None:
        """A Deployment whose status counts ``ready`` of ``replicas`` (zero counts are absent, as in the API)."""
        labels = match_labels or {"k8s-app": name}
        self.deployments[(namespace, name)] = client.V1Deployment(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace, labels=dict(labels), generation=1,
                                         resource_version=self.next_rv()),
            spec=client.V1DeploymentSpec(replicas=replicas,
                                         selector=client.V1LabelSelector(match_labels=dict(labels)),
                                         template=client.V1PodTemplateSpec()),
            status=client.V1DeploymentStatus(replicas=replicas, ready_replicas=ready or None,
                                             available_replicas=ready or None, updated_replicas=replicas,
                                             unavailable_replicas=(replicas - ready) or None, observed_generation=1))

    def next_rv(self) -> str:
        with self.lock:
            self._rv += 1
            return str(self._rv)

    def record(self, method: str, *args: Any, **kwargs: Any) -> None:
        with self.lock:
            self.calls.append((method, args, kwargs))
            pending = self.failures.get(method)
            exc = pending.pop(0) if pending else None
        if exc is not None:
            raise exc

    def clients(self) -> KubeClients:
        """An ``api_factory``: a fresh set of fake API objects per call (like one ApiClient per thread)."""
        owner = threading.get_ident()
        self.clients_made.append(owner)
        core = FakeCoreV1Api(self)

        def stream(func: Callable[..., Any], name: str, namespace: str, **kwargs: Any) -> FakeExecStream:
            return self.stream(func, name, namespace, _owner_thread=owner, **kwargs)

        return KubeClients(core=core, apps=FakeAppsV1Api(self), networking=FakeNetworkingV1Api(self),
                           custom=FakeCustomObjectsApi(self), watch=lambda: FakeWatch(self), stream=stream,
                           context=self.context, server=f"https://{API_HOST}:{API_PORT}")

    # --- exec (kubernetes.stream.stream replacement) ----------------------------------------

    def stream(self, func: Callable[..., Any], name: str, namespace: str, **kwargs: Any) -> FakeExecStream:
        assert func.__name__ == "connect_get_namespaced_pod_exec", func
        assert kwargs["_preload_content"] is False
        self.record("exec", name, namespace, **{k: v for k, v in kwargs.items() if not k.startswith("_")})
        if (namespace, name) not in self.pods:
            raise not_found("pods", name)
        command = [str(a) for a in kwargs["command"]]
        call: dict[str, Any] = {"namespace": namespace, "pod": name, "container": kwargs.get("container"),
                "command": command, "stdin_enabled": kwargs.get("stdin"),
                "thread": threading.get_ident(), "client_owner_thread": kwargs.get("_owner_thread")}
        with self.lock:
            self.exec_calls.append(call)
        assert self.exec_handler is not None, "no exec handler configured"
        handler = self.exec_handler
        stream = FakeExecStream(lambda stdin: handler(namespace, name, kwargs.get("container"), command, stdin),
                                call, expects_stdin=bool(kwargs.get("stdin")))
        stream.subprotocol = self.exec_subprotocol
        return stream


class FakeExecStream:
    """Like ``WSClient``: channels 1/2/3, ``write_stdin``, ``close_channel``, ``update``, ``is_open``."""

    def __init__(self, run: Callable[[str | None], ExecReply], call: dict[str, Any], *, expects_stdin: bool) -> None:
        self._run = run
        self._call = call
        self._expects_stdin = expects_stdin
        self._stdin: list[bytes] = []
        self._stdin_closed = False
        self._open = True
        self._channels: dict[int, bytes] = {}
        self._reply: ExecReply | None = None
        self.closed = False
        self.subprotocol = "v5.channel.k8s.io"

    def _start(self) -> None:
        if self._reply is None:
            stdin = b"".join(self._stdin).decode() if self._expects_stdin else None
            self._reply = self._run(stdin)

    def write_stdin(self, data: bytes | str) -> None:
        assert not self._stdin_closed
        self._stdin.append(data if isinstance(data, bytes) else data.encode())

    def close_channel(self, channel: int) -> None:
        assert channel == 0
        self._stdin_closed = True
        self._call["stdin"] = b"".join(self._stdin).decode()
        self._call["stdin_closed"] = True

    def is_open(self) -> bool:
        return self._open

    def update(self, timeout: float = 0) -> None:
        if not self._open:
            return
        if self._expects_stdin and not self._stdin_closed:
            return  # the program is still waiting for the end of its input
        self._start()
        assert self._reply is not None
        if self._reply.never_finishes:
            return
        for channel, text in ((1, self._reply.stdout), (2, self._reply.stderr), (3, self._reply.status)):
            if text:
                self._channels[channel] = self._channels.get(channel, b"") + text.encode()
        self._open = False

    def read_channel(self, channel: int, timeout: float = 0) -> bytes:
        return self._channels.pop(channel, b"")

    def close(self) -> None:
        self.closed = True
        self._call["closed"] = True


class _Api:
    def __init__(self, cluster: FakeCluster) -> None:
        self.c = cluster


class FakeCoreV1Api(_Api):
    # nodes
    def list_node(self, **kwargs: Any) -> Any:
        self.c.record("list_node", **kwargs)
        return client.V1NodeList(items=[copy.deepcopy(n) for _, n in sorted(self.c.nodes.items())])

    # namespaces
    def read_namespace(self, name: str) -> Any:
        self.c.record("read_namespace", name)
        if name not in self.c.namespaces:
            raise not_found("namespaces", name)
        return copy.deepcopy(self.c.namespaces[name])

    def create_namespace(self, body: Any) -> Any:
        self.c.record("create_namespace", body)
        name = body.metadata.name
        if name in self.c.namespaces:
            raise already_exists("namespaces", name)
        stored = copy.deepcopy(body)
        stored.metadata.labels = {**(stored.metadata.labels or {}), "kubernetes.io/metadata.name": name}
        stored.metadata.resource_version = self.c.next_rv()
        stored.status = client.V1NamespaceStatus(phase="Active")
        self.c.namespaces[name] = stored
        return copy.deepcopy(stored)

    def patch_namespace(self, name: str, body: dict[str, Any], **kwargs: Any) -> Any:
        self.c.record("patch_namespace", name, body, **kwargs)
        assert kwargs.get("_content_type") == "application/merge-patch+json"
        ns = self.c.namespaces.get(name)
        if ns is None:
            raise not_found("namespaces", name)
        meta = body.get("metadata", {})
        for attr, key in (("labels", "labels"), ("annotations", "annotations")):
            current = dict(getattr(ns.metadata, attr) or {})
            for k, v in (meta.get(key) or {}).items():
                if v is None:
                    current.pop(k, None)
                else:
                    current[k] = v
            setattr(ns.metadata, attr, current or None)
        return copy.deepcopy(ns)

    def delete_namespace(self, name: str, **kwargs: Any) -> Any:
        self.c.record("delete_namespace", name)
        if name not in self.c.namespaces:
            raise not_found("namespaces", name)
        del self.c.namespaces[name]
        for store in (self.c.pods, self.c.config_maps, self.c.service_accounts, self.c.network_policies):
            for key in [k for k in store if k[0] == name]:
                del store[key]
        return client.V1Status(status="Success")

    def list_namespace(self, label_selector: str | None = None, **kwargs: Any) -> Any:
        self.c.record("list_namespace", label_selector=label_selector)
        items = [copy.deepcopy(n) for n in self.c.namespaces.values() if matches(n.metadata.labels, label_selector)]
        return client.V1NamespaceList(items=items, metadata=client.V1ListMeta(resource_version=self.c.next_rv()))

    # service accounts
    def read_namespaced_service_account(self, name: str, namespace: str) -> Any:
        self.c.record("read_namespaced_service_account", name, namespace)
        if (namespace, name) not in self.c.service_accounts:
            raise not_found("serviceaccounts", name)
        return self.c.service_accounts[(namespace, name)]

    def create_namespaced_service_account(self, namespace: str, body: Any) -> Any:
        self.c.record("create_namespaced_service_account", namespace, body)
        self.c.service_accounts[(namespace, body.metadata.name)] = body
        return body

    def delete_namespaced_service_account(self, name: str, namespace: str) -> Any:
        self.c.record("delete_namespaced_service_account", name, namespace)
        if self.c.service_accounts.pop((namespace, name), None) is None:
            raise not_found("serviceaccounts", name)

    def list_service_account_for_all_namespaces(self, label_selector: str | None = None) -> Any:
        self.c.record("list_service_account_for_all_namespaces", label_selector=label_selector)
        return client.V1ServiceAccountList(items=[s for s in self.c.service_accounts.values()
                                                  if matches(s.metadata.labels, label_selector)])

    # config maps
    def create_namespaced_config_map(self, namespace: str, body: Any) -> Any:
        self.c.record("create_namespaced_config_map", namespace, body)
        if namespace not in self.c.namespaces:
            raise not_found("namespaces", namespace)
        self.c.config_maps[(namespace, body.metadata.name)] = body
        return body

    def read_namespaced_config_map(self, name: str, namespace: str) -> Any:
        self.c.record("read_namespaced_config_map", name, namespace)
        if (namespace, name) not in self.c.config_maps:
            raise not_found("configmaps", name)
        return copy.deepcopy(self.c.config_maps[(namespace, name)])

    def delete_namespaced_config_map(self, name: str, namespace: str) -> Any:
        self.c.record("delete_namespaced_config_map", name, namespace)
        if self.c.config_maps.pop((namespace, name), None) is None:
            raise not_found("configmaps", name)

    def list_config_map_for_all_namespaces(self, label_selector: str | None = None) -> Any:
        self.c.record("list_config_map_for_all_namespaces", label_selector=label_selector)
        return client.V1ConfigMapList(items=[m for m in self.c.config_maps.values()
                                             if matches(m.metadata.labels, label_selector)])

    # pods
    def create_namespaced_pod(self, namespace: str, body: Any) -> Any:
        self.c.record("create_namespaced_pod", namespace, body)
        key = (namespace, body.metadata.name)
        if key in self.c.pods:
            raise already_exists("pods", body.metadata.name)
        stored = copy.deepcopy(body)
        stored.metadata.resource_version = self.c.next_rv()
        stored.status = client.V1PodStatus(phase="Pending")
        self.c.pods[key] = stored
        return copy.deepcopy(stored)

    def read_namespaced_pod(self, name: str, namespace: str) -> Any:
        self.c.record("read_namespaced_pod", name, namespace)
        if (namespace, name) not in self.c.pods:
            raise not_found("pods", name)
        return copy.deepcopy(self.c.pods[(namespace, name)])

    def delete_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> Any:
        self.c.record("delete_namespaced_pod", name, namespace)
        if self.c.pods.pop((namespace, name), None) is None:
            raise not_found("pods", name)

    def list_namespaced_pod(self, namespace: str, label_selector: str | None = None, **kwargs: Any) -> Any:
        self.c.record("list_namespaced_pod", namespace, label_selector=label_selector, **kwargs)
        items = [copy.deepcopy(p) for (ns, _), p in sorted(self.c.pods.items(), key=lambda kv: kv[0])
                 if ns == namespace and matches(p.metadata.labels, label_selector)]
        return client.V1PodList(items=items, metadata=client.V1ListMeta(resource_version=self.c.next_rv()))

    def list_pod_for_all_namespaces(self, label_selector: str | None = None, **kwargs: Any) -> Any:
        self.c.record("list_pod_for_all_namespaces", label_selector=label_selector)
        return client.V1PodList(items=[copy.deepcopy(p) for p in self.c.pods.values()
                                       if matches(p.metadata.labels, label_selector)])

    def list_namespaced_event(self, namespace: str, field_selector: str | None = None, **kwargs: Any) -> Any:
        self.c.record("list_namespaced_event", namespace, field_selector=field_selector)
        name = (field_selector or "").removeprefix("involvedObject.name=")
        return client.CoreV1EventList(items=list(self.c.events.get((namespace, name), [])))

    def connect_get_namespaced_pod_exec(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("exec goes through stream(), never a direct call")

    def read_namespaced_pod_log(self, name: str, namespace: str, container: str | None = None,
                                previous: bool = False, **kwargs: Any) -> Any:
        """A container's log as one string (what the client returns with ``_preload_content``)."""
        self.c.record("read_namespaced_pod_log", name, namespace, container=container, previous=previous, **kwargs)
        if (namespace, name) not in self.c.pods:
            raise not_found("pods", name)
        logs = self.c.previous_pod_logs if previous else self.c.pod_logs
        key = (namespace, name, container or "")
        if key not in logs:
            # The API server's 400 for a container with no (previous) instance to read from.
            what = "previous terminated container" if previous else "container"
            raise api_error(400, "BadRequest", f'{what} "{container}" in pod "{name}" not found')
        text = logs[key]
        tail_lines = kwargs.get("tail_lines")
        if tail_lines is not None:
            text = "".join(text.splitlines(keepends=True)[-int(tail_lines):])
        return text


class FakeAppsV1Api(_Api):
    def read_namespaced_daemon_set(self, name: str, namespace: str) -> Any:
        self.c.record("read_namespaced_daemon_set", name, namespace)
        if (namespace, name) in self.c.daemonset_objects:
            return copy.deepcopy(self.c.daemonset_objects[(namespace, name)])
        if (namespace, name) not in self.c.daemonsets:
            raise not_found("daemonsets.apps", name)
        return client.V1DaemonSet(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace),
            spec=client.V1DaemonSetSpec(selector=client.V1LabelSelector(match_labels={"k8s-app": name}),
                                        template=client.V1PodTemplateSpec()))

    def read_namespaced_deployment(self, name: str, namespace: str) -> Any:
        self.c.record("read_namespaced_deployment", name, namespace)
        if (namespace, name) not in self.c.deployments:
            raise not_found("deployments.apps", name)
        return copy.deepcopy(self.c.deployments[(namespace, name)])


class FakeNetworkingV1Api(_Api):
    def create_namespaced_network_policy(self, namespace: str, body: dict[str, Any]) -> Any:
        self.c.record("create_namespaced_network_policy", namespace, body)
        if namespace not in self.c.namespaces:
            raise not_found("namespaces", namespace)
        obj: Any = client.V1NetworkPolicy.from_dict(body)  # what the typed client does with a dict body
        key = (namespace, obj.metadata.name)
        if key in self.c.network_policies:
            raise already_exists("networkpolicies.networking.k8s.io", obj.metadata.name)
        obj.metadata.resource_version = self.c.next_rv()
        obj.metadata.generation = 1
        self.c.network_policies[key] = obj
        return copy.deepcopy(obj)

    def read_namespaced_network_policy(self, name: str, namespace: str) -> Any:
        self.c.record("read_namespaced_network_policy", name, namespace)
        if (namespace, name) not in self.c.network_policies:
            raise not_found("networkpolicies.networking.k8s.io", name)
        return copy.deepcopy(self.c.network_policies[(namespace, name)])

    def replace_namespaced_network_policy(self, name: str, namespace: str, body: dict[str, Any]) -> Any:
        self.c.record("replace_namespaced_network_policy", name, namespace, body)
        current = self.c.network_policies.get((namespace, name))
        if current is None:
            raise not_found("networkpolicies.networking.k8s.io", name)
        if body["metadata"].get("resourceVersion") != current.metadata.resource_version:
            raise api_error(409, "Conflict", "the object has been modified; please apply your changes to the "
                                             "latest version and try again")
        obj: Any = client.V1NetworkPolicy.from_dict(body)
        obj.metadata.resource_version = self.c.next_rv()
        # as the API server does: the generation moves with the spec, not with labels or annotations
        obj.metadata.generation = (current.metadata.generation or 1) + (obj.spec != current.spec)
        self.c.network_policies[(namespace, name)] = obj
        return copy.deepcopy(obj)

    def delete_namespaced_network_policy(self, name: str, namespace: str, **kwargs: Any) -> Any:
        self.c.record("delete_namespaced_network_policy", name, namespace)
        if self.c.network_policies.pop((namespace, name), None) is None:
            raise not_found("networkpolicies.networking.k8s.io", name)

    def list_network_policy_for_all_namespaces(self, label_selector: str | None = None, **kwargs: Any) -> Any:
        self.c.record("list_network_policy_for_all_namespaces", label_selector=label_selector)
        return client.V1NetworkPolicyList(items=[copy.deepcopy(p) for p in self.c.network_policies.values()
                                                 if matches(p.metadata.labels, label_selector)])


class FakeCustomObjectsApi(_Api):
    GROUP = "cilium.io"
    VERSION = "v2"

    def _check(self, group: str, version: str) -> None:
        assert (group, version) == (self.GROUP, self.VERSION)

    def create_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                        body: dict[str, Any]) -> Any:
        self.c.record("create_namespaced_custom_object", group, version, namespace, plural, body)
        self._check(group, version)
        return self._create(plural, namespace, body)

    def create_cluster_custom_object(self, group: str, version: str, plural: str, body: dict[str, Any]) -> Any:
        self.c.record("create_cluster_custom_object", group, version, plural, body)
        self._check(group, version)
        return self._create(plural, None, body)

    def _create(self, plural: str, namespace: str | None, body: dict[str, Any]) -> Any:
        if namespace is not None and namespace not in self.c.namespaces:
            raise not_found("namespaces", namespace)
        name = body["metadata"]["name"]
        key = (plural, namespace, name)
        if key in self.c.custom:
            raise already_exists(f"{plural}.cilium.io", name)
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = self.c.next_rv()
        stored["metadata"]["generation"] = 1
        self.c.custom[key] = stored
        return copy.deepcopy(stored)

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str, name: str) -> Any:
        self.c.record("get_namespaced_custom_object", group, version, namespace, plural, name)
        return self._get(plural, namespace, name)

    def get_cluster_custom_object(self, group: str, version: str, plural: str, name: str) -> Any:
        self.c.record("get_cluster_custom_object", group, version, plural, name)
        return self._get(plural, None, name)

    def _get(self, plural: str, namespace: str | None, name: str) -> Any:
        if (plural, namespace, name) not in self.c.custom:
            raise not_found(f"{plural}.cilium.io", name)
        return copy.deepcopy(self.c.custom[(plural, namespace, name)])

    def replace_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str, name: str,
                                         body: dict[str, Any]) -> Any:
        self.c.record("replace_namespaced_custom_object", group, version, namespace, plural, name, body)
        return self._replace(plural, namespace, name, body)

    def replace_cluster_custom_object(self, group: str, version: str, plural: str, name: str,
                                      body: dict[str, Any]) -> Any:
        self.c.record("replace_cluster_custom_object", group, version, plural, name, body)
        return self._replace(plural, None, name, body)

    def _replace(self, plural: str, namespace: str | None, name: str, body: dict[str, Any]) -> Any:
        current = self.c.custom.get((plural, namespace, name))
        if current is None:
            raise not_found(f"{plural}.cilium.io", name)
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise api_error(409, "Conflict", "the object has been modified")
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = self.c.next_rv()
        spec_changed = {k: v for k, v in body.items() if k not in ("metadata", "status")} != {
            k: v for k, v in current.items() if k not in ("metadata", "status")}
        stored["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + spec_changed
        self.c.custom[(plural, namespace, name)] = stored
        return copy.deepcopy(stored)

    def delete_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                        name: str, **kwargs: Any) -> Any:
        self.c.record("delete_namespaced_custom_object", group, version, namespace, plural, name)
        if self.c.custom.pop((plural, namespace, name), None) is None:
            raise not_found(f"{plural}.cilium.io", name)

    def delete_cluster_custom_object(self, group: str, version: str, plural: str, name: str, **kwargs: Any) -> Any:
        self.c.record("delete_cluster_custom_object", group, version, plural, name)
        if self.c.custom.pop((plural, None, name), None) is None:
            raise not_found(f"{plural}.cilium.io", name)

    def list_cluster_custom_object(self, group: str, version: str, plural: str, label_selector: str | None = None,
                                   **kwargs: Any) -> Any:
        self.c.record("list_cluster_custom_object", group, version, plural, label_selector=label_selector)
        items = [copy.deepcopy(o) for (p, _, _), o in self.c.custom.items()
                 if p == plural and matches(o["metadata"].get("labels"), label_selector)]
        return {"apiVersion": "cilium.io/v2", "kind": "List", "items": items, "metadata": {"resourceVersion": "1"}}


class FakeWatch:
    """``kubernetes.watch.Watch`` stand-in: each ``stream`` call lets the fake kubelet act once per pod."""

    def __init__(self, cluster: FakeCluster) -> None:
        self.c = cluster
        self.stopped = False

    def stream(self, func: Callable[..., Any], namespace: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        assert func.__name__ == "list_namespaced_pod"
        assert "resource_version" in kwargs and "timeout_seconds" in kwargs
        self.c.record("watch", namespace, **kwargs)
        selector = kwargs.get("label_selector")
        pods = [(key, p) for key, p in sorted(self.c.pods.items(), key=lambda kv: kv[0])
                if key[0] == namespace and matches(p.metadata.labels, selector)]
        for _key, pod in pods:
            new_status = self.c.kubelet(pod) if self.c.kubelet else None
            if new_status is None:
                continue
            if self.c.clock is not None:
                self.c.clock.advance(self.c.watch_seconds)
            pod.status = new_status
            pod.metadata.resource_version = self.c.next_rv()
            yield {"type": "MODIFIED", "object": copy.deepcopy(pod), "raw_object": {}}
            if self.stopped:
                return
        # nothing more happens: the server ends the watch after timeout_seconds
        if self.c.clock is not None:
            self.c.clock.advance(float(kwargs["timeout_seconds"]))

    def stop(self) -> None:
        self.stopped = True


def required_hostname(pod: Any) -> str | None:
    """The node a pod's required node affinity on ``kubernetes.io/hostname`` pins it to, if any."""
    affinity = pod.spec.affinity
    required = (affinity.node_affinity.required_during_scheduling_ignored_during_execution
                if affinity is not None and affinity.node_affinity is not None else None)
    for term in required.node_selector_terms if required is not None else []:
        for expression in term.match_expressions or []:
            if expression.key == "kubernetes.io/hostname" and expression.operator == "In":
                return str(expression.values[0])
    return None


def kubelet_making_ready(nodes: Sequence[str] = ("flowcheck-worker", "flowcheck-worker2")) -> Callable[[Any], Any]:
    """A scheduler + kubelet: a pod pinned by a required node affinity goes to that node, any other pod to
    the next node in turn; it gets an IP on that node's pod subnet and becomes Ready."""
    counter = {"n": 0}

    def act(pod: Any) -> Any:
        if pod.status is not None and pod.status.pod_ip:
            return None
        counter["n"] += 1
        n = counter["n"]
        pod.spec.node_name = required_hostname(pod) or nodes[(n - 1) % len(nodes)]
        subnet = nodes.index(pod.spec.node_name) + 1 if pod.spec.node_name in nodes else 9
        return ready_pod_status(f"10.244.{subnet}.{10 + n}", pod.spec.node_name)

    return act


def endpoint_list(pods: Sequence[Any], revision: int) -> str:
    """``cilium-dbg endpoint list -o json`` of an agent whose node runs ``pods``, each endpoint realized at
    ``revision``: the assembled recorded endpoint (tests/data/cluster/endpoint-list.json, id 1187) with
    each pod's namespace, name and IP, behind the host endpoint."""
    document = json.loads(data("endpoint-list.json"))
    host = next(e for e in document if e["id"] == 72)
    template = next(e for e in document if e["id"] == 1187)
    items = [host]
    for i, pod in enumerate(pods):
        item = copy.deepcopy(template)
        item["id"] = 2000 + i
        ids = item["status"]["external-identifiers"]
        ids["k8s-namespace"], ids["k8s-pod-name"] = pod.metadata.namespace, pod.metadata.name
        ids["pod-name"] = f"{pod.metadata.namespace}/{pod.metadata.name}"
        item["status"]["networking"]["addressing"] = [{"ipv4": pod.status.pod_ip, "ipv4-pool-name": "default"}]
        for side in ("realized", "spec"):
            item["status"]["policy"][side]["policy-revision"] = revision
        items.append(item)
    for item in (host, *items[1:]):
        item["status"]["policy"]["realized"]["policy-revision"] = revision
    return json.dumps(items, indent=2) + "\n\n"
