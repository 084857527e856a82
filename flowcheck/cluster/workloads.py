"""Probe pods: one per class of workloads that Cilium cannot tell apart (and per node), carrying their labels.

Each pod runs ``python3 /flowcheck/server.py --name <ns/pod> --http <tcp ports> --udp <udp ports>``
(an HTTP server also answers plain TCP connects, so every TCP port is served as HTTP) from a
ConfigMap holding the probe ``server.py`` and ``agent.py``, read from the installed
``flowcheck.probe`` package at run time. The pod is locked down the way a restricted namespace
would require: non-root with a fixed uid, read-only root filesystem, all capabilities dropped, no
privilege escalation, seccomp ``RuntimeDefault``, no service-account token, requests and limits.
The namespaced sysctl ``net.ipv4.ip_unprivileged_port_start=0`` (on Kubernetes' safe list) lets the
non-root server bind ports below 1024 such as 53 and 80.

One pod per class: workloads that share a security identity (and the named ports and IP a decision
may depend on) are one ``PodSpecInput`` whose ``stands_for`` lists them all; the harness builds
those classes. The server's identity is the pod's own ``namespace/name``, so an answer tells which
pod -- which class, on which node -- replied.

Placement (``schedulable_nodes``, ``build_pod(node=...)``): with two or more nodes a probe pod can
be scheduled on (no ``NoSchedule``/``NoExecute`` taint -- kind keeps the control plane's on a
multi-node cluster -- not cordoned, Ready), every class gets one pod on each of two of them, pinned
by a required node affinity on ``kubernetes.io/hostname``, so every path can be probed once within
a node and once across nodes, by construction rather than by the scheduler's choice (cilium-cli
places its echo pods the same way, with required (anti-)affinity on that label). With one such
node the pods carry a soft topology spread and every path is same-node.

Readiness: pods are Ready when the server accepts connections on every TCP port (an exec readiness
probe connecting to 127.0.0.1 -- loopback, so no network policy is involved and no flow shows up in
Hubble). The wait is a watch with a deadline; a timeout names every pod not ready and why.

``existing: true`` workloads (cluster DNS) are never deployed: they are matched to Running and Ready
pods by their labels in their namespace, one per node (the first by name on each node, so the choice
is deterministic), so they too can be reached within a node and across nodes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, NamedTuple, cast

from flowcheck.cluster.deployed import DeployedPod
from flowcheck.cluster.kube import (
    RUN_LABEL,
    KubeClients,
    api_error,
    call,
    create_or_conflict,
    read_or_none,
)
from flowcheck.errors import ClusterError

DEFAULT_PROBE_IMAGE = "python:3-alpine"
PROBE_CONTAINER = "probe"
PROBE_DIR = "/flowcheck"
AGENT_PATH = f"{PROBE_DIR}/agent.py"
SERVER_PATH = f"{PROBE_DIR}/server.py"
PROBE_FILES = ("agent.py", "server.py")
# A fixed non-root uid/gid (the "nonroot" id of distroless images); python:3-alpine runs under any uid.
PROBE_UID = 65532
POD_READY_TIMEOUT_S = 180.0
WATCH_RETRY_PAUSE_S = 1.0
WATCH_CONNECT_TIMEOUT_S = 10.0
WATCH_READ_SLACK_S = 30.0
# Waiting reasons a pod does not recover from on its own: fail at once instead of at the deadline.
HOPELESS_WAITING_REASONS = frozenset({"InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError",
                                      "CreateContainerError", "CrashLoopBackOff"})
PROTOCOLS = ("TCP", "UDP", "SCTP")
HOSTNAME_LABEL = "kubernetes.io/hostname"
MAX_NAME = 63

_READINESS_SCRIPT = ("import socket, sys\n"
                     "for port in sys.argv[1:]:\n"
                     "    socket.create_connection(('127.0.0.1', int(port)), 1).close()\n")


class PortSpec(NamedTuple):
    """A port the workload serves: ``("http", 8080, "TCP")``."""

    name: str
    port: int
    protocol: str


@dataclass(frozen=True, slots=True)
class NamespaceInput:
    """A namespace of the topology and the labels its policies may select on."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PodSpecInput:
    """One workload to deploy (or, with ``existing``, to find). Built from the topology by the caller."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    ports: tuple[tuple[str, int, str], ...] = ()  # (name, port, protocol); stored as PortSpec
    service_account: str = "default"
    existing: bool = False
    stands_for: tuple[str, ...] = ()
    """Every workload (``namespace/name``) this pod stands for; empty means just this one."""
    copies: int = 1
    """Pods per node (two when members of the class must be probed against each other on one node)."""

    def __post_init__(self) -> None:
        ports = tuple(PortSpec(*p) for p in self.ports)
        for port in ports:
            if port.protocol not in PROTOCOLS:
                raise ClusterError(f"workload {self.workload}: port {port.name or port.port} has protocol "
                                   f"{port.protocol!r}, expected one of {', '.join(PROTOCOLS)}")
            if not 1 <= port.port <= 65535:
                raise ClusterError(f"workload {self.workload}: port {port.port} is out of range")
        object.__setattr__(self, "ports", ports)
        object.__setattr__(self, "labels", dict(self.labels))

    @property
    def workload(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def members(self) -> tuple[str, ...]:
        return self.stands_for or (self.workload,)

    @property
    def port_specs(self) -> tuple[PortSpec, ...]:
        """``ports`` with their type: ``__post_init__`` stored them as ``PortSpec``s."""
        return cast("tuple[PortSpec, ...]", self.ports)

    def ports_of(self, protocol: str) -> list[int]:
        return sorted({p.port for p in self.port_specs if p.protocol == protocol})


@dataclass(frozen=True, slots=True)
class TopologyInput:
    """What to deploy: namespaces (with labels) and workloads."""

    namespaces: tuple[NamespaceInput, ...]
    workloads: tuple[PodSpecInput, ...]

    def namespace_labels(self) -> dict[str, dict[str, str]]:
        """Every namespace a workload or the topology names, with its labels (workload-only ones: none)."""
        out: dict[str, dict[str, str]] = {ns.name: dict(ns.labels) for ns in self.namespaces}
        for w in self.workloads:
            out.setdefault(w.namespace, {})
        return out


@dataclass(frozen=True, slots=True)
class PodResources:
    """Requests and limits of a probe pod (the agent runs inside it too, with up to 256 probes at once)."""

    cpu_request: str = "10m"
    memory_request: str = "32Mi"
    cpu_limit: str = "1"
    memory_limit: str = "256Mi"


# ---------------------------------------------------------------------------------------------
# Manifests


def load_probe_files(package: str = "flowcheck.probe") -> dict[str, str]:
    """``agent.py`` and ``server.py`` as installed with flowcheck (read at run time, not copied)."""
    files = {}
    root = resources.files(package)
    for name in PROBE_FILES:
        try:
            files[name] = root.joinpath(name).read_text(encoding="utf-8")
        except (FileNotFoundError, OSError) as exc:
            raise ClusterError(f"the probe pods need {package.replace('.', '/')}/{name}, which is missing from "
                               f"the installed flowcheck ({exc})") from exc
    return files


def config_map_name(run_id: str) -> str:
    return f"flowcheck-probe-{run_id}"


def build_config_map(namespace: str, run_id: str, files: Mapping[str, str]) -> Any:
    from kubernetes import client

    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=config_map_name(run_id), namespace=namespace, labels={RUN_LABEL: run_id}),
        data=dict(files))


def server_command(spec: PodSpecInput, pod_name: str | None = None) -> list[str]:
    """The probe server's argv for ``spec``'s pod ``pod_name`` (docs/contracts.md, "The probe server"):
    it answers as ``namespace/pod``."""
    argv = ["python3", SERVER_PATH, "--name", f"{spec.namespace}/{pod_name or spec.name}"]
    tcp = spec.ports_of("TCP")
    udp = spec.ports_of("UDP")
    if tcp:
        argv += ["--http", ",".join(str(p) for p in tcp)]
    if udp:
        argv += ["--udp", ",".join(str(p) for p in udp)]
    return argv


def build_pod(spec: PodSpecInput, *, run_id: str, image: str = DEFAULT_PROBE_IMAGE,
              resources_: PodResources | None = None, pod_name: str | None = None, node: str | None = None) -> Any:
    """The ``V1Pod`` standing for ``spec``, named ``pod_name`` (default: the workload's name), pinned to the
    node whose ``kubernetes.io/hostname`` label is ``node`` when given (see the module docstring)."""
    from kubernetes import client

    if spec.existing:
        raise ClusterError(f"workload {spec.workload} is `existing`: it is matched, never deployed")
    if spec.ports_of("SCTP"):
        raise ClusterError(f"workload {spec.workload}: the probe server serves TCP and UDP, not SCTP "
                           f"(port(s) {', '.join(map(str, spec.ports_of('SCTP')))})")
    res = resources_ or PodResources()
    labels = {**spec.labels, RUN_LABEL: run_id}
    tcp = spec.ports_of("TCP")
    readiness = None
    if tcp:
        readiness = client.V1Probe(
            _exec=client.V1ExecAction(command=["python3", "-c", _READINESS_SCRIPT, *map(str, tcp)]),
            period_seconds=2, timeout_seconds=5, failure_threshold=3)
    container = client.V1Container(
        name=PROBE_CONTAINER,
        image=image,
        image_pull_policy="IfNotPresent",
        command=server_command(spec, pod_name),
        ports=[client.V1ContainerPort(name=p.name or None, container_port=p.port, protocol=p.protocol)
               for p in spec.port_specs],
        env=[client.V1EnvVar(name="PYTHONDONTWRITEBYTECODE", value="1"),
             client.V1EnvVar(name="PYTHONUNBUFFERED", value="1")],
        readiness_probe=readiness,
        resources=client.V1ResourceRequirements(
            requests={"cpu": res.cpu_request, "memory": res.memory_request},
            limits={"cpu": res.cpu_limit, "memory": res.memory_limit}),
        security_context=client.V1SecurityContext(
            allow_privilege_escalation=False, read_only_root_filesystem=True, run_as_non_root=True,
            run_as_user=PROBE_UID, run_as_group=PROBE_UID,
            capabilities=client.V1Capabilities(drop=["ALL"]),
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault")),
        volume_mounts=[client.V1VolumeMount(name="flowcheck", mount_path=PROBE_DIR, read_only=True),
                       client.V1VolumeMount(name="tmp", mount_path="/tmp")],
    )
    spec_ = client.V1PodSpec(
        containers=[container],
        service_account_name=spec.service_account,
        automount_service_account_token=False,
        enable_service_links=False,
        restart_policy="Always",
        termination_grace_period_seconds=2,
        security_context=client.V1PodSecurityContext(
            run_as_non_root=True, run_as_user=PROBE_UID, run_as_group=PROBE_UID, fs_group=PROBE_UID,
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
            sysctls=[client.V1Sysctl(name="net.ipv4.ip_unprivileged_port_start", value="0")]),
        affinity=_pinned_to(node) if node else None,
        topology_spread_constraints=None if node else [client.V1TopologySpreadConstraint(
            max_skew=1, topology_key=HOSTNAME_LABEL, when_unsatisfiable="ScheduleAnyway",
            node_taints_policy="Honor",
            label_selector=client.V1LabelSelector(match_labels={RUN_LABEL: run_id}))],
        volumes=[client.V1Volume(name="flowcheck", config_map=client.V1ConfigMapVolumeSource(
                     name=config_map_name(run_id), default_mode=0o444)),
                 client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource(size_limit="16Mi"))],
    )
    return client.V1Pod(api_version="v1", kind="Pod",
                        metadata=client.V1ObjectMeta(name=pod_name or spec.name, namespace=spec.namespace,
                                                     labels=labels),
                        spec=spec_)


def _pinned_to(hostname: str) -> Any:
    """A required node affinity on ``kubernetes.io/hostname`` (the label cilium-cli places by)."""
    from kubernetes import client

    term = client.V1NodeSelectorTerm(match_expressions=[client.V1NodeSelectorRequirement(
        key=HOSTNAME_LABEL, operator="In", values=[hostname])])
    return client.V1Affinity(node_affinity=client.V1NodeAffinity(
        required_during_scheduling_ignored_during_execution=client.V1NodeSelector(node_selector_terms=[term])))


def replica_name(name: str, index: int | None, copy: int = 0) -> str:
    """The name of a class's pod: ``web-n0``, ``web-n1`` on the ``index``-th placement node, ``web-n0-2`` for
    its second copy there; without placement (``index`` None) ``web`` and ``web-2``. At most 63
    characters (a DNS label)."""
    suffix = (f"-n{index}" if index is not None else "") + (f"-{copy + 1}" if copy else "")
    if not suffix:
        return name
    return name[:MAX_NAME - len(suffix)].rstrip("-.") + suffix


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node: its name, its ``kubernetes.io/hostname`` label, its InternalIP (empty when it reports none)
    and whether a probe pod (which tolerates no taint) can be scheduled on it."""

    name: str
    hostname: str
    internal_ip: str = ""
    schedulable: bool = True


def cluster_nodes(clients: KubeClients) -> list[NodeInfo]:
    """Every node of the cluster, sorted by name (one ``list_node``): what placement chooses from and what
    a probe to ``remote-node`` aims at.

    A node's address is the first ``status.addresses`` entry of type ``InternalIP`` (``V1NodeStatus.addresses``,
    ``V1NodeAddress(address, type)`` in the Kubernetes Python client; on kind, the node container's address
    on the ``kind`` Docker network)."""
    nodes = call(clients, "listing the nodes", clients.core.list_node).items
    found = []
    for node in sorted(nodes, key=lambda n: n.metadata.name):
        labels = node.metadata.labels or {}
        addresses = (node.status.addresses if node.status is not None else None) or []
        internal = next((a.address for a in addresses if a.type == "InternalIP" and a.address), "")
        found.append(NodeInfo(node.metadata.name, labels.get(HOSTNAME_LABEL, node.metadata.name), internal,
                              _schedulable(node)))
    return found


def _schedulable(node: Any) -> bool:
    spec = node.spec
    if spec is not None and spec.unschedulable:
        return False
    if any(t.effect in ("NoSchedule", "NoExecute") for t in (spec.taints if spec is not None else None) or []):
        return False
    conditions = node.status.conditions if node.status is not None else None
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])


def schedulable_nodes(clients: KubeClients) -> list[NodeInfo]:
    """Nodes a probe pod (which tolerates no taint) can run on, sorted by name: not cordoned, no
    NoSchedule/NoExecute taint, Ready."""
    return [n for n in cluster_nodes(clients) if n.schedulable]


# ---------------------------------------------------------------------------------------------
# API operations


def ensure_service_account(clients: KubeClients, namespace: str, name: str, run_id: str) -> bool:
    """Create the service account if it does not exist; True when flowcheck created it.

    A 409 means someone else (e.g. the controller creating ``default`` in a fresh namespace) got
    there first, which is as good.
    """
    from kubernetes import client

    if read_or_none(clients, f"reading service account {namespace}/{name}",
                    clients.core.read_namespaced_service_account, name, namespace) is not None:
        return False
    body = client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name, namespace=namespace,
                                                                labels={RUN_LABEL: run_id}),
                                   automount_service_account_token=False)
    return create_or_conflict(clients, f"creating service account {namespace}/{name}",
                              clients.core.create_namespaced_service_account, namespace, body) is None


def create_probe_pod(clients: KubeClients, pod: Any, workload: str) -> None:
    """Create a probe pod; a name clash explains whose pod is in the way."""
    namespace = pod.metadata.namespace
    name = pod.metadata.name
    conflict = create_or_conflict(clients, f"creating the probe pod for {workload}", clients.core.create_namespaced_pod,
                                  namespace, pod)
    if conflict is not None:
        raise ClusterError(_clash_message(clients, namespace, name, workload)) from conflict


def _clash_message(clients: KubeClients, namespace: str, name: str, workload: str) -> str:
    try:
        other = clients.core.read_namespaced_pod(name, namespace)
        run = (getattr(other.metadata, "labels", None) or {}).get(RUN_LABEL)
    except Exception:
        run = None
    if run:
        return (f"cannot deploy {workload}: pod {namespace}/{name} is left over from flowcheck run {run}; "
                f"remove it with `flowcheck cleanup --run {run}`")
    return (f"cannot deploy {workload}: a pod named {namespace}/{name} already exists and is not flowcheck's; "
            "flowcheck will not replace it")


def is_ready(pod: Any) -> bool:
    status = getattr(pod, "status", None)
    if status is None or not getattr(status, "pod_ip", None):
        return False
    return any(c.type == "Ready" and c.status == "True" for c in (status.conditions or []))


def hopeless_reason(pod: Any) -> str | None:
    """Why ``pod`` will not become ready by itself, or None while it still may."""
    status = getattr(pod, "status", None)
    if status is None:
        return None
    if status.phase in ("Failed", "Succeeded"):
        return f"phase {status.phase}"
    for cs in status.container_statuses or []:
        waiting = getattr(cs.state, "waiting", None) if cs.state else None
        if waiting is not None and waiting.reason in HOPELESS_WAITING_REASONS:
            return f"container {cs.name}: {waiting.reason}: {waiting.message or ''}".rstrip(": ")
    return None


def describe_pod(pod: Any) -> str:
    """Phase, unmet conditions and container states, in one line (for timeout messages)."""
    status = getattr(pod, "status", None)
    if status is None:
        return "no status yet"
    parts = [status.phase or "no phase"]
    for c in status.conditions or []:
        if c.status != "True":
            detail = ": ".join(x for x in (c.reason, c.message) if x)
            parts.append(f"{c.type}={c.status}" + (f" ({detail})" if detail else ""))
    for cs in status.container_statuses or []:
        state = cs.state
        if state is not None and state.waiting is not None:
            detail = ": ".join(x for x in (state.waiting.reason, state.waiting.message) if x)
            parts.append(f"container {cs.name} waiting" + (f" ({detail})" if detail else ""))
        elif state is not None and state.terminated is not None:
            t = state.terminated
            parts.append(f"container {cs.name} terminated ({t.reason or ''} exit {t.exit_code})")
        if cs.restart_count:
            parts.append(f"{cs.restart_count} restart(s)")
    return "; ".join(parts)


def last_event(clients: KubeClients, namespace: str, name: str) -> str | None:
    """The newest event about the pod (``Warning FailedScheduling: 0/3 nodes ...``), if any."""
    try:
        events = clients.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    except Exception:
        return None
    if not events:
        return None

    def when(e: Any) -> str:
        stamp = e.last_timestamp or e.event_time or getattr(e.metadata, "creation_timestamp", None)
        return str(stamp or "")

    newest = max(events, key=when)
    return f"{newest.type or ''} {newest.reason or ''}: {newest.message or ''}".strip()


def wait_for_pods_ready(clients: KubeClients, pods: Sequence[tuple[str, str]], run_id: str, *,
                        timeout_s: float = POD_READY_TIMEOUT_S, clock: Callable[[], float] = time.monotonic,
                        sleep: Callable[[float], None] = time.sleep) -> dict[tuple[str, str], Any]:
    """Wait (list, then watch) until every ``(namespace, name)`` pod is Ready; return the Ready pods.

    Raises ``ClusterError`` at the deadline naming every pod not ready and why, or at once when a
    pod cannot recover (image name invalid, crash loop, ...).
    """
    deadline = clock() + timeout_s
    selector = f"{RUN_LABEL}={run_id}"
    ready: dict[tuple[str, str], Any] = {}
    latest: dict[tuple[str, str], Any] = {}
    by_namespace: dict[str, set[str]] = {}
    for namespace, name in pods:
        by_namespace.setdefault(namespace, set()).add(name)

    def observe(namespace: str, pod: Any, pending: set[str]) -> None:
        name = pod.metadata.name
        if name not in pending:
            return
        latest[(namespace, name)] = pod
        if is_ready(pod):
            pending.discard(name)
            ready[(namespace, name)] = pod
            return
        reason = hopeless_reason(pod)
        if reason:
            raise ClusterError(f"probe pod {namespace}/{name} cannot start: {reason}"
                               + _event_suffix(clients, namespace, name))

    def list_and_observe(namespace: str, pending: set[str]) -> Any:
        listing = call(clients, f"listing pods in {namespace}", clients.core.list_namespaced_pod, namespace,
                       label_selector=selector)
        for pod in listing.items:
            observe(namespace, pod, pending)
        return listing

    pending_by_ns = {ns: set(names) for ns, names in by_namespace.items()}
    for namespace in sorted(pending_by_ns):
        pending = pending_by_ns[namespace]
        while pending and clock() < deadline:
            listing = list_and_observe(namespace, pending)
            remaining = deadline - clock()
            if not pending or remaining <= 0:
                break
            if not _watch_until_ready(clients, namespace, selector, listing.metadata.resource_version, remaining,
                                      pending, observe, clock, deadline):
                sleep(WATCH_RETRY_PAUSE_S)  # the watch failed: do not hammer the API server
        if clock() >= deadline:
            break
    if any(pending_by_ns.values()):
        # One last look at every namespace still waited for, so the message reflects the present.
        for namespace, pending in sorted(pending_by_ns.items()):
            if pending:
                list_and_observe(namespace, pending)
        missing = [(ns, n) for ns, pending in sorted(pending_by_ns.items()) for n in sorted(pending)]
        if missing:
            raise _not_ready_error(clients, missing, latest, timeout_s)
    return ready


def _watch_until_ready(clients: KubeClients, namespace: str, selector: str, resource_version: str | None,
                       remaining_s: float, pending: set[str], observe: Callable[[str, Any, set[str]], None],
                       clock: Callable[[], float], deadline: float) -> bool:
    """Follow pod events from ``resource_version`` until ``pending`` empties, the watch ends or time is up.

    Returns False when the watch failed with an API error (e.g. 410 Gone) or its connection broke
    or went silent: the caller lists again, and that list names the context when the API server
    cannot be reached at all.
    """
    watcher = clients.watch()
    try:
        # The server ends the watch after timeout_seconds; the client-side read timeout only fires
        # when the connection itself went silent (a dead API server), a little later.
        for event in watcher.stream(clients.core.list_namespaced_pod, namespace, label_selector=selector,
                                    resource_version=resource_version,
                                    timeout_seconds=max(1, math.ceil(remaining_s)),
                                    _request_timeout=(WATCH_CONNECT_TIMEOUT_S, remaining_s + WATCH_READ_SLACK_S)):
            kind = event.get("type")
            obj = event.get("object")
            if kind == "DELETED" and obj is not None and obj.metadata.name in pending:
                raise ClusterError(f"probe pod {namespace}/{obj.metadata.name} was deleted while flowcheck "
                                   "waited for it")
            if kind in ("ADDED", "MODIFIED") and obj is not None:
                observe(namespace, obj, pending)
            if not pending or clock() >= deadline:
                break
    except ClusterError:
        raise
    except Exception as exc:
        if api_error(clients, f"watching the probe pods in {namespace}", exc) is None:
            raise ClusterError(f"watching the probe pods in {namespace} failed: {type(exc).__name__}: {exc}") from exc
        return False
    finally:
        watcher.stop()
    return True


def _event_suffix(clients: KubeClients, namespace: str, name: str) -> str:
    event = last_event(clients, namespace, name)
    return f" (last event: {event})" if event else ""


def _not_ready_error(clients: KubeClients, missing: list[tuple[str, str]], latest: Mapping[tuple[str, str], Any],
                     timeout_s: float) -> ClusterError:
    lines = []
    for namespace, name in missing:
        pod = latest.get((namespace, name))
        state = describe_pod(pod) if pod is not None else "not observed"
        lines.append(f"  {namespace}/{name}: {state}{_event_suffix(clients, namespace, name)}")
    return ClusterError(f"{len(missing)} probe pod(s) not ready after {timeout_s:g} s:\n" + "\n".join(lines))


def deployed_pod(spec: PodSpecInput, pod: Any, *, container: str = PROBE_CONTAINER) -> DeployedPod:
    """The pod as deployed: its IP (``status.podIP``), node (``spec.nodeName``) and node address
    (``status.hostIP``, ``V1PodStatus.host_ip``: the address of the node the pod runs on, set once it
    is scheduled and started -- what a probe to the ``host`` entity aims at)."""
    return DeployedPod(workload=spec.workload, namespace=spec.namespace, pod_name=pod.metadata.name,
                       ip=pod.status.pod_ip, node=pod.spec.node_name or "", container=container,
                       existing=spec.existing, stands_for=spec.members, host_ip=pod.status.host_ip or "")


def find_existing_pods(clients: KubeClients, spec: PodSpecInput) -> list[DeployedPod]:
    """Map an ``existing: true`` workload to Running, Ready pods with its labels: the first by name on each
    node, so it can be reached within a node and across nodes."""
    selector = ",".join(f"{k}={v}" for k, v in sorted(spec.labels.items()))
    if not selector:
        raise ClusterError(f"existing workload {spec.workload} has no labels to find its pods by")
    pods = call(clients, f"finding pods for existing workload {spec.workload}", clients.core.list_namespaced_pod,
                spec.namespace, label_selector=selector).items
    if not pods:
        raise ClusterError(f"existing workload {spec.workload}: no pod in namespace {spec.namespace} has "
                           f"labels {selector}")
    candidates = sorted((p for p in pods if p.status is not None and p.status.phase == "Running" and is_ready(p)),
                        key=lambda p: p.metadata.name)
    if not candidates:
        states = "; ".join(f"{p.metadata.name}: {describe_pod(p)}" for p in sorted(pods, key=lambda p: p.metadata.name))
        raise ClusterError(f"existing workload {spec.workload}: {len(pods)} pod(s) match {selector} but none is "
                           f"Running and Ready ({states})")
    chosen: dict[str, Any] = {}
    for pod in candidates:
        chosen.setdefault(pod.spec.node_name or "", pod)
    found = []
    for pod in chosen.values():
        containers = pod.spec.containers or []
        found.append(deployed_pod(spec, pod, container=containers[0].name if containers else ""))
    return found


def find_existing_pod(clients: KubeClients, spec: PodSpecInput) -> DeployedPod:
    """The first of ``find_existing_pods`` (by pod name)."""
    return min(find_existing_pods(clients, spec), key=lambda p: p.pod_name)
