"""A topology from a repository's own manifests: what ``flowcheck init`` writes.

Every workload's labels, ports and service account are already in the repository: the pod template
of each Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob, and each bare Pod. This
module reads them from documents (``flowcheck.manifests`` reads files, directories, multi-document
YAML, ``List`` objects, rendered Helm output and kustomizations) and builds the topology the model
needs (docs/contracts.md, "Topology file"):

* namespaces with their labels, from the ``Namespace`` objects when the repository has them, and
  every namespace a workload lives in;
* per workload: the pod template's labels, every container's ports with their names and protocols,
  the service account;
* ports a Service sends to that no container declares (``targetPort`` by number, or the Service's
  ``port`` when it has none): a pod serves them all the same. A ``targetPort`` by name resolves
  only through a container port of that name, which is declared already.

Workloads in ``kube-system`` are marked ``existing``: the cluster runs them, and a stand-in probe pod
with their labels would take their Service's traffic. Everything it could not read exactly is a
note, never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flowcheck.manifests.documents import SourceDocument
from flowcheck.model.identity import METADATA_NAME_LABEL
from flowcheck.model.policy import PolicySet
from flowcheck.model.topology import PROTOCOLS, Port, Topology, Workload
from flowcheck.model.unmatched import unmatched
from flowcheck.vocabulary import DNS_PORT

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")
EXISTING_NAMESPACES = frozenset({"kube-system"})
DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True, slots=True)
class Inventory:
    """The topology read from manifests, and notes on what was assumed or left out."""

    topology: Topology
    notes: tuple[str, ...]


def inventory(documents: Iterable[SourceDocument]) -> Inventory:
    """The topology of the workloads among ``documents`` (see the module docstring)."""
    notes: list[str] = []
    namespaces: dict[str, dict[str, str]] = {}
    found: list[tuple[SourceDocument, Workload]] = []
    services: list[tuple[SourceDocument, str, dict[str, str], list[dict[str, Any]]]] = []
    for doc in documents:
        body, kind = doc.body, doc.kind
        where = f"{doc.path} (document {doc.index})"
        if kind == "Namespace":
            name = _name(body)
            if name and "/" not in name:
                labels = _labels(_mapping(body.get("metadata")).get("labels"))
                labels.pop(METADATA_NAME_LABEL, None)  # implied
                namespaces[name] = labels
        elif kind in WORKLOAD_KINDS:
            workload = _workload(doc, notes, where)
            if workload is not None:
                found.append((doc, workload))
        elif kind == "Service":
            spec = _mapping(body.get("spec"))
            selector = _labels(spec.get("selector"))
            ports = [p for p in _list(spec.get("ports")) if isinstance(p, dict)]
            if selector and ports:
                services.append((doc, _namespace(body), selector, ports))
    workloads = _unique([w for _, w in found], notes)
    workloads = [_with_service_ports(w, services, notes) for w in workloads]
    for w in workloads:
        namespaces.setdefault(w.namespace, {})
    ordered = sorted(workloads, key=lambda w: (w.namespace, w.name))
    return Inventory(Topology.build(dict(sorted(namespaces.items())), ordered), tuple(notes))


def _workload(doc: SourceDocument, notes: list[str], where: str) -> Workload | None:
    body, kind = doc.body, doc.kind
    name = _name(body)
    namespace = _namespace(body)
    if not name or "/" in name or "/" in namespace:
        notes.append(f"{where}: {kind} without a usable metadata.name and namespace left out")
        return None
    spec = _mapping(body.get("spec"))
    if kind == "Pod":
        template: dict[str, Any] = {"metadata": _mapping(body.get("metadata")), "spec": spec}
    elif kind == "CronJob":
        template = _mapping(_mapping(_mapping(spec.get("jobTemplate")).get("spec")).get("template"))
    else:
        template = _mapping(spec.get("template"))
    pod_spec = _mapping(template.get("spec"))
    if pod_spec.get("hostNetwork") is True:
        notes.append(f"{where}: {kind} {name} runs with hostNetwork: true, so Cilium gives it its node's identity "
                     "(the host and remote-node entities), not a pod identity, and pod policies do not select it; "
                     "left out (state paths to it with the host or remote-node entity)")
        return None
    labels = _labels(_mapping(template.get("metadata")).get("labels"))
    if not labels:
        notes.append(f"{where}: {kind} {name} has no pod labels: no selector can select it")
    if not _mapping(body.get("metadata")).get("namespace"):
        notes.append(f"{where}: {kind} {name} has no metadata.namespace; assumed {DEFAULT_NAMESPACE!r}")
    ports: list[Port] = []
    init_containers = _list(pod_spec.get("initContainers"))
    for container in [*init_containers, *_list(pod_spec.get("containers"))]:
        if not isinstance(container, dict):
            continue
        if container in init_containers and container.get("restartPolicy") != "Always":
            continue  # an init container serves nothing once the pod runs (a sidecar, restartPolicy Always, does)
        for index, raw in enumerate(_list(container.get("ports"))):
            port = _container_port(raw)
            if port is None:
                notes.append(f"{where}: {kind} {name}: container {container.get('name')!r} ports[{index}] left out: "
                             f"expected containerPort 1-65535 and protocol TCP, UDP or SCTP, got {raw!r}")
            elif port not in ports:
                ports.append(port)
    account = pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount") or "default"
    return Workload(namespace, name, labels, tuple(ports), str(account), None, namespace in EXISTING_NAMESPACES)


def _container_port(raw: Any) -> Port | None:
    if not isinstance(raw, dict):
        return None
    number = raw.get("containerPort")
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 65535:
        return None
    protocol = str(raw.get("protocol") or "TCP").upper()
    if protocol not in PROTOCOLS:
        return None
    name = raw.get("name")
    return Port(name if isinstance(name, str) and name else None, number, protocol)


def _unique(workloads: list[Workload], notes: list[str]) -> list[Workload]:
    """Two workloads of one name in one namespace (a Deployment and a StatefulSet): the second is renamed."""
    seen: set[str] = set()
    out: list[Workload] = []
    for w in workloads:
        name = w.name
        counter = 2
        while f"{w.namespace}/{name}" in seen:
            name = f"{w.name}-{counter}"
            counter += 1
        if name != w.name:
            notes.append(f"two workloads named {w.namespace}/{w.name}: the second is {w.namespace}/{name}")
            w = Workload(w.namespace, name, w.labels, w.ports, w.service_account, w.ip, w.existing)
        seen.add(f"{w.namespace}/{name}")
        out.append(w)
    return out


def _with_service_ports(workload: Workload, services: list[tuple[SourceDocument, str, dict[str, str],
                                                                  list[dict[str, Any]]]],
                        notes: list[str]) -> Workload:
    """``workload`` with the ports a Service selecting it sends to, that no container declares."""
    ports = list(workload.ports)
    for doc, namespace, selector, service_ports in services:
        if namespace != workload.namespace or any(workload.labels.get(k) != v for k, v in selector.items()):
            continue
        for raw in service_ports:
            protocol = str(raw.get("protocol") or "TCP").upper()
            target = raw.get("targetPort", raw.get("port"))
            if isinstance(target, str) and not target.isdigit():
                if not any(p.name == target and p.protocol == protocol for p in ports):
                    notes.append(f"{doc.path} (document {doc.index}): Service {doc.name} sends to port "
                                 f"{target!r}, which no container of {workload.ref} names; left out")
                continue
            if isinstance(target, bool) or not isinstance(target, int | str):
                continue
            number = int(target)
            if not 1 <= number <= 65535 or protocol not in PROTOCOLS:
                continue
            if not any(p.port == number and p.protocol == protocol for p in ports):
                ports.append(Port(None, number, protocol))
                notes.append(f"{workload.ref}: serves {protocol}/{number}, the target of Service {doc.name} "
                             "(no container declares it)")
    if len(ports) == len(workload.ports):
        return workload
    return Workload(workload.namespace, workload.name, workload.labels, tuple(ports), workload.service_account,
                    workload.ip, workload.existing)


CLUSTER_DNS = Workload("kube-system", "kube-dns", {"k8s-app": "kube-dns"},
                       (Port("dns", DNS_PORT, "UDP"), Port("dns-tcp", DNS_PORT, "TCP")), existing=True)
"""The cluster's DNS as kind and most distributions run it: CoreDNS pods labelled ``k8s-app=kube-dns``."""


def with_cluster_dns(topology: Topology, policies: PolicySet) -> tuple[Topology, str | None]:
    """``topology`` with the cluster's DNS (``CLUSTER_DNS``, ``existing``) when the manifests have no DNS
    server and the policies select it -- an application repository does not ship the cluster's DNS, yet its
    DNS egress rules and every ``toFQDNs`` verdict depend on it -- with a note saying so; else unchanged.

    "Select it" is exact: with it added, fewer parts of the policies match nothing (``unmatched``).
    """
    if any(p.port == DNS_PORT for w in topology.workloads for p in w.ports) or \
            any(w.ref == CLUSTER_DNS.ref for w in topology.workloads):
        return topology, None
    namespaces = {name: {k: v for k, v in labels.items() if k != METADATA_NAME_LABEL}
                  for name, labels in topology.namespaces.items()}
    candidate = Topology.build(namespaces, [*topology.workloads, CLUSTER_DNS], topology.path)
    if len(unmatched(candidate, policies)) >= len(unmatched(topology, policies)):
        return topology, None
    return candidate, (f"{CLUSTER_DNS.ref}: added as an existing workload (k8s-app=kube-dns, 53/UDP and 53/TCP): "
                       "the policies select the cluster's DNS, which the manifests do not define; check its labels "
                       "against your cluster's DNS pods")


def topology_yaml(topology: Topology) -> dict[str, Any]:
    """The topology in its file's form (docs/contracts.md, "Topology file"), implied labels left out."""
    namespaces: dict[str, Any] = {}
    for name, labels in topology.namespaces.items():
        own = {k: v for k, v in labels.items() if k != METADATA_NAME_LABEL}
        namespaces[name] = {"labels": own} if own else {}
    workloads = []
    for w in topology.workloads:
        entry: dict[str, Any] = {"name": w.name, "namespace": w.namespace, "labels": dict(w.labels)}
        if w.ports:
            entry["ports"] = [{**({"name": p.name} if p.name else {}), "port": p.port, "protocol": p.protocol}
                              for p in w.ports]
        if w.service_account != "default":
            entry["serviceAccount"] = w.service_account
        if w.ip:
            entry["ip"] = w.ip
        if w.existing:
            entry["existing"] = True
        workloads.append(entry)
    return {"namespaces": namespaces, "workloads": workloads}


def _list(value: Any) -> list[Any]:
    """A list field, or nothing when the document holds something else there (schema validation says so)."""
    return value if isinstance(value, list) else []


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _labels(value: Any) -> dict[str, str]:
    """String labels (the API server accepts no other; an unquoted ``true`` would be refused there)."""
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _name(body: dict[str, Any]) -> str:
    name = _mapping(body.get("metadata")).get("name")
    return name if isinstance(name, str) else ""


def _namespace(body: dict[str, Any]) -> str:
    namespace = _mapping(body.get("metadata")).get("namespace")
    return namespace if isinstance(namespace, str) and namespace else DEFAULT_NAMESPACE
